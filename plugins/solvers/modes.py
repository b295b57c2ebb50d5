"""Per-eigenvalue ODEs of one-pass SGD on Gaussian data with a diagonal covariance (docs/theory/one_pass.md
sections 4 and 6), shared by ``glm-aniso-ode`` and ``multiclass-ode``.

The student's read-outs along eigenvector ``u_j`` are ``s_j = W u_j`` (``r`` rows), the fixed
directions' read-outs ``t_j`` (``a`` of them: teacher columns, or class means ``mu_{c,j}``). Per
mode (or bin of modes) the engine tracks ``P_j = sum s s^T`` [r, r] and ``X_j = sum s t^T`` [r, a];
``T_j = sum t t^T`` [a, a] is constant. Covariance groups ``k`` (one, or one per class) have
eigenvalues ``lam[k, j]``. SGD with per-sample step ``gamma/d`` gives, at ``t = samples/d``,
``ds_j/dt = -gamma (A_j s_j + G_j t_j)`` with ``A_j = sum_k lam_kj H_k``, ``G_j = sum_k lam_kj F_k + G0``:

- ``dP_j/dt = -gamma (A_j P_j + P_j A_j^T + G_j X_j^T + X_j G_j^T) + (gamma^2/d) (sum_k n_j lam_kj N_k + sum_b T_j[b, b] Nmean_b)``
- ``dX_j/dt = -gamma (A_j X_j + G_j T_j)``

where the coefficients ``H_k`` [r, r], ``F_k`` [r, a], ``G0`` [r, a], ``N_k``, ``Nmean_b`` [r, r] are
Gaussian expectations that depend on the state only through the aggregates
``P^k = sum_j lam_kj P_j``, ``X^k``, ``T^k`` (covariances of the read-outs under group ``k``) and
``P^1 = sum_j P_j``, ``X^1 = sum_j X_j`` (plain overlaps): the model supplies them. The
``gamma^2/d`` term is the SGD noise of each mode (``E x_j^2 = lam_j + mu_j^2``).

Modes with equal eigenvalues evolve alike and are summed exactly (``np.unique``); ``bin_modes``
merges neighbouring eigenvalues of a continuous spectrum into geometric bins (eigenvalue ratio
``(lam_max/lam_min)^(1/bins)``, count-weighted mean eigenvalue, which keeps ``tr Sigma``): an
approximation whose error tests/test_glm_aniso.py measures. Integration: adaptive RK45 (scipy),
relative tolerance 1e-8 by default; the stiffest mode (``gamma lam_max |H|``) sets the step.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from hdbench_plugins.solvers.regime import adaptive_ode

RTOL = 1e-8


@dataclasses.dataclass
class Modes:
    """Distinct modes (or bins): eigenvalues ``lam`` [k, n], multiplicities ``count`` [n] (as
    fractions of d), the summed initial blocks ``P0`` [n, r, r], ``X0`` [n, r, a], constant ``T``
    [n, a, a], and a ``tag`` [n] (e.g. clean / noisy) that binning never mixes."""

    lam: np.ndarray
    count: np.ndarray
    P0: np.ndarray
    X0: np.ndarray
    T: np.ndarray
    tag: np.ndarray

    def merged(self, labels):
        """Modes summed over equal ``labels`` (count-weighted mean eigenvalue)."""
        uniq, inv = np.unique(labels, return_inverse=True)
        n = len(uniq)
        count = np.bincount(inv, self.count, n)
        lam = np.stack([np.bincount(inv, self.count * l, n) for l in self.lam]) / np.maximum(count, 1e-300)

        def add(block):
            out = np.zeros((n,) + block.shape[1:])
            np.add.at(out, inv, block)
            return out

        tag = np.zeros(n, self.tag.dtype)
        tag[inv] = self.tag
        return Modes(lam, count, add(self.P0), add(self.X0), add(self.T), tag)


def bin_modes(modes: Modes, bins: int) -> Modes:
    """Merge modes into at most ``bins`` geometric eigenvalue bins per tag (zero eigenvalues apart);
    ``bins = 0`` keeps every distinct mode."""
    if bins <= 0 or len(modes.count) <= bins:
        return modes
    lead = modes.lam[0]
    pos = lead > 0
    lo, hi = lead[pos].min(), lead[pos].max()
    edges = np.geomspace(lo, hi, bins + 1)[1:-1] if hi > lo else np.array([])
    index = np.where(pos, 1 + np.searchsorted(edges, lead), 0)
    return modes.merged(index * (int(modes.tag.max()) + 1) + modes.tag)


Coefficients = Callable[[dict], dict]


def _weighted(lam, blocks):
    """``sum_n lam[k, n] blocks[n]`` for each k: [k, ...] (one BLAS product)."""
    return (lam @ blocks.reshape(len(blocks), -1)).reshape((len(lam),) + blocks.shape[1:])


def _per_mode(lam, coef):
    """``sum_k lam[k, n] coef[k]`` for each mode n: [n, ...]."""
    return (lam.T @ coef.reshape(len(coef), -1)).reshape((lam.shape[1],) + coef.shape[1:])


def aggregates(lam, P, X, T):
    return {"P": _weighted(lam, P), "X": _weighted(lam, X), "T": _weighted(lam, T), "P1": P.sum(0), "X1": X.sum(0)}


def solve_modes(modes: Modes, coefficients: Coefficients, s, times, blow_up=1e8, rtol=RTOL):
    """Integrate the per-mode ODEs of scenario ``s`` (its learning rate: schedule, fixed-beta momentum,
    AdaGrad-Norm by ``regime.adaptive_ode`` with ``E|grad loss|^2/d = sum_j tr(noise_j)/d``); returns
    the state at ``times`` as a list of ``(P [n, r, r], X [n, r, a])`` (``None`` after the state
    blows up: the theory diverged)."""
    lam, count, T, d = modes.lam, modes.count, modes.T, s.d
    n, r, a = modes.X0.shape
    diag_T = np.einsum("nbb->nb", T)
    size = n * r * r + n * r * a

    def unpack(y):
        return y[:n * r * r].reshape(n, r, r), y[n * r * r:size].reshape(n, r, a)

    def step(t, y, gamma):
        P, X = unpack(y)
        c = coefficients(aggregates(lam, P, X, T))
        A = _per_mode(lam, c["H"])
        G = c.get("G0", np.zeros((r, a)))[None]
        if c.get("F") is not None:
            G = G + _per_mode(lam, c["F"])
        AP = A @ P
        GX = G @ np.swapaxes(X, 1, 2)
        dP = -gamma * (AP + np.swapaxes(AP, 1, 2) + GX + np.swapaxes(GX, 1, 2))
        noise = _per_mode(lam * count, c["N"]) * d     # E[g g^T sum_(modes of j) x_j^2]
        if c.get("Nmean") is not None:
            noise = noise + _per_mode(diag_T.T, c["Nmean"])
        dP += (gamma**2 / d) * noise
        dX = -gamma * (A @ X + G @ T)
        return np.concatenate([dP.ravel(), dX.ravel()]), np.einsum("nii->", noise) / d

    def diverged(_, y):
        return blow_up - np.abs(y[:size]).max()

    diverged.terminal = True
    times = np.asarray(times, float)
    rhs, y0 = adaptive_ode(s, step, np.concatenate([modes.P0.ravel(), modes.X0.ravel()]))
    sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, method="RK45", rtol=rtol,
                    atol=rtol * 1e-3 / max(n, 1), events=diverged)
    states = [unpack(sol.y[:, i]) for i in range(sol.y.shape[1])]
    return states + [None] * (len(times) - len(states))
