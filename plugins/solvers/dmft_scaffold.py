"""The scaffolding every DMFT solver shares, whatever its sample and parameter sides.

- ``iterate``: the damped fixed-point iteration of the kernels with common random numbers, a
  convergence test (a tolerance, far below the Monte-Carlo floor), then ``average`` iterates with fresh random numbers;
- ``extrapolation_weights`` and ``interpolate``: Richardson extrapolation over grids ``h, h/2, h/4``
  (to ``h = 0``, or to the simulated algorithm's own step), with cubic interpolation onto the
  requested times so that the off-grid error stays below what the extrapolation removes;
- ``summarise_replicas``: the mean of independent replicas and ``unc(NAME)``, the standard error of
  that mean, combined in quadrature with the extrapolation's error estimate where there is one;
- ``serial_blas``: runs a solve with BLAS on one thread.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.interpolate import CubicSpline, make_interp_spline
from threadpoolctl import threadpool_limits

# A DMFT solve is a long chain of dense operations on matrices a few hundred wide: BLAS threads cost
# more in hand-offs than they give (docs/validation/dmft.md)
serial_blas = threadpool_limits.wrap(limits=1, user_api="blas")


# A GLM's error |theta - theta*|^2 = q - 2 m + 1 falls far below q as it learns: a stop at tol of q then
# leaves a bias of the order of the error itself, shared by every replica (docs/validation/dmft.md)
DISTANCE_TOL = 1e-3
DISTANCE_FLOOR = 1e-8      # below this the error is beneath the float32 simulation's resolution


class Unstable(Exception):
    """The grid step is unstable here (or the dynamics diverges): the caller refines or gives up."""


@dataclasses.dataclass
class FixedPoint:
    """``history``: the ``average`` iterates of the averaging phase (dicts of curves); ``kernels``: the
    last damped kernels (a start for another replica on the same grid)."""
    history: list
    kernels: tuple
    iterations: int
    converged: bool


def iterate(update, kernels, redraw, *, damping=0.6, tol=1e-3, max_iter=60, average=3,
            undamped_first=False, fresh_average=False) -> FixedPoint:
    """Iterate ``update(kernels) -> (state, new_kernels)`` to its fixed point.

    ``state`` is a dict of curves holding at least ``q`` and ``m`` (entries past a divergence may be
    non-finite; they are left out of the test). The iteration has converged when ``q`` and ``m`` move
    by less than ``tol`` times ``max(1, max |q|)`` and, where ``state`` has a ``distance`` curve (a GLM's
    ``|theta - theta*|^2 = q - 2 m + 1``), that moves by less than ``DISTANCE_TOL`` of itself at each time
    (above ``DISTANCE_FLOOR``), or after ``max_iter`` iterations; then ``redraw()``
    draws fresh random numbers before each of the ``average`` iterates that are kept. The kernels (a
    tuple of arrays) are damped, ``new = (1 - damping) old + damping update``, except after the first
    iteration when ``undamped_first`` (a deterministic start) or everywhere at ``damping = 1``.
    With ``fresh_average`` the converged iterate is not kept: every kept iterate follows a ``redraw()``
    (for a ``state`` that ``update`` computes better once ``redraw`` has been called).
    ``update`` raises :class:`Unstable` to abandon the grid."""
    history, prev, averaging, converged, it, started = [], None, False, False, 0, False
    for it in range(1, max_iter + average + 1):
        state, new = update(kernels)
        if not averaging and prev is not None:
            converged = (_change(state, prev) < tol * max(1.0, _finite_max(state["q"]))
                         and _relative_change(state.get("distance"), prev.get("distance")) < DISTANCE_TOL)
            averaging = converged or it >= max_iter
        if averaging:
            if fresh_average and not started:
                started = True
            else:
                history.append(state)
            if len(history) >= average:
                break
            redraw()
        prev = state
        beta = 1.0 if (undamped_first and it == 1) else damping
        kernels = tuple((1 - beta) * old + beta * fresh for old, fresh in zip(kernels, new))
    return FixedPoint(history, kernels, it, converged)


def _finite_max(x):
    x = np.abs(np.asarray(x))
    return x[np.isfinite(x)].max(initial=0.0)


def _change(state, prev):
    """The largest move of ``q`` and ``m`` over the times where both iterates are finite."""
    q, pq = np.asarray(state["q"]), np.asarray(prev["q"])
    rows = _finite_rows(q) & _finite_rows(pq)
    return max(np.abs(np.asarray(state[k])[rows] - np.asarray(prev[k])[rows]).max(initial=0.0) for k in ("q", "m"))


def _relative_change(x, prev):
    """The largest move of the curve ``x`` relative to itself (0 without one)."""
    if x is None:
        return 0.0
    x, prev = np.asarray(x), np.asarray(prev)
    ok = np.isfinite(x) & np.isfinite(prev)
    return float((np.abs(x[ok] - prev[ok]) / np.maximum(np.abs(x[ok]), DISTANCE_FLOOR)).max(initial=0.0))


def _finite_rows(values):
    values = np.asarray(values)
    return np.isfinite(values).reshape(len(values), -1).all(1)


def extrapolation_weights(levels, coarse, target=0.0):
    """Weights of the levels (grid steps ``coarse``, ``coarse / 2``, ``coarse / 4``) whose weighted sum is
    the polynomial in the step through them, evaluated at the step ``target``: Richardson's at 0 (the
    time-continuous limit). A solver whose grid discretises exactly as the simulated algorithm does
    (an explicit step of the same size) extrapolates to the simulation's own step instead: its O(h)
    error is then the simulation's, not an error."""
    nodes = coarse / 2.0 ** np.arange(levels)
    return tuple(float(np.prod([(target - nodes[j]) / (nodes[i] - nodes[j]) for j in range(levels) if j != i]))
                 for i in range(levels))


RICHARDSON = {n: extrapolation_weights(n, 1.0) for n in (1, 2, 3)}   # to h = 0: (1,), (-1, 2), (1/3, -2, 8/3)


def interpolate(x, grid, values):
    """Cubic interpolation along the first axis (error O(h^4), below what Richardson removes; linear
    interpolation's O(h^2) off-grid error would not cancel between levels). Non-finite values stay
    non-finite from the first time any component is."""
    finite = _finite_rows(values)
    if finite.all():
        return CubicSpline(grid, values, axis=0)(x)
    n = int(np.argmin(finite))
    out = np.full((len(x),) + values.shape[1:], np.inf)
    inside = x <= grid[n - 1]
    if n >= 2:
        out[inside] = make_interp_spline(grid[:n], values[:n], k=min(3, n - 1), axis=0)(x[inside])
    elif n == 1:
        out[inside] = values[0]
    return out


def combine(weights, curves):
    """``sum_i weights[i] * curves[i]`` per name (``curves``: one dict of arrays per level)."""
    with np.errstate(invalid="ignore"):           # inf - inf past a predicted divergence
        return {k: sum(w * c[k] for w, c in zip(weights, curves)) for k in curves[0]}


def summarise_replicas(runs, lower=None):
    """The mean over replicas of each curve and ``unc(NAME)``: the standard error of that mean (independent
    replicas: honest whatever the correlation between one solve's iterates), and where ``lower`` holds each
    replica's extrapolation one order lower, the mean gap to it in quadrature (the standard a-posteriori
    bound of the extrapolation error). A curve non-finite in any replica is +inf there."""
    n = len(runs)
    out = {}
    for name in runs[0]:
        vals = np.array([r[name] for r in runs])
        blown = ~np.isfinite(vals).all(0)
        safe = np.where(blown, 0.0, vals)
        out[name] = np.where(blown, np.inf, safe.mean(0))
        var = safe.var(0, ddof=1) / n if n > 1 else np.zeros(vals.shape[1:])
        if lower is not None:
            with np.errstate(invalid="ignore"):
                gap = vals - np.array([r[name] for r in lower])
            var = var + np.where(np.isfinite(gap).all(0), gap, 0.0).mean(0) ** 2
        if n > 1 or lower is not None:
            out[f"unc({name})"] = np.where(blown, np.inf, np.sqrt(var))
    return out
