"""Multi-pass least squares with a ridge penalty: the Volterra equations of docs/theory/multipass.md section 4.

Internally in DMFT units (docs/theory/multipass.md section 0): ``X`` with ``N(0, 1/d)`` entries, coordinates
O(1), time ``s = gamma t / alpha``, temperature ``tau = gamma`` (SGD, SGF) or 0 (gradient descent /
flow), penalty ``lambda = alpha * ridge``. ``mu`` is the spectral law of ``A = X^T X`` (``alpha`` times
the Marchenko-Pastur law of ``X^T X / n``; atom ``(1 - alpha)+`` at 0). With ``a = x + lambda``,
``E = exp(-a s)``, ``theta0 = m0 theta* + c u`` (``c^2 = q0 - m0^2``) and
``B(x) = (1 - E) x / a + E m0 - 1``, gradient flow gives per eigenvalue ``x``

    E[e_x^2]       = B^2 + sigma^2 x (1 - E)^2 / a^2 + E^2 c^2,
    psi integrand  = x B^2 + sigma^2 x^2 (1 - E)^2 / a^2 + x E^2 c^2 - 2 sigma^2 x (1 - E) / a,

``E_GF = int E[e_x^2] dmu``, ``psi_GF = alpha^-1 int (psi integrand) dmu + sigma^2``,
``m = int [(1 - E) x / a + E m0] dmu`` (the mean of SGD follows gradient flow). SGD / SGF add
``psi(s) = psi_GF(s) + (tau/alpha) int_0^s k_2(s-u) psi(u) du``, ``E(s) = E_GF(s) + tau int_0^s k_1(s-u) psi(u) du``,
``k_p(s) = int x^p exp(-2 a s) dmu``. Back in our units: ``D = E``, ``train_risk = psi/2``,
``risk = (D + sigma^2)/2``, ``q = D + 2m - 1``. Stable iff ``(tau/alpha) int x^2/(2a) dmu < 1``; past
that psi grows exponentially (SGD diverges): the grid step is then at most ``H_UNSTABLE`` (the
trapezoid's error compounds in the growth rate), and every observable is +inf from the first time
``q`` passes the simulation's ``BLOWUP``, where the simulation declares a seed diverged.

Solved by the trapezoidal rule on ``STEPS`` and ``2 STEPS`` points, Richardson-extrapolated
(second order, kernels smooth): ``lsq-volterra-multipass`` at ridge 0 equals ``lsq-homogenized-sgd``
(an eigen-decomposition, no time stepping) to 1e-8.
"""
from __future__ import annotations

import numpy as np

from hdbench import YES, no
from hdbench.simulate import BLOWUP
from hdbench_plugins.solvers.dmft_scaffold import interpolate
from hdbench_plugins.solvers.least_squares import mp_quadrature
from hdbench_plugins.solvers.regime import (adapted_momentum, flow_clock, isotropic_data, rate_along_the_clock, sgd_gamma,
                                            small_batches)


STEPS = 1000
H_UNSTABLE = 0.01    # s-step past the stability edge: the trapezoid's error compounds in the growth rate


MULTIPASS_DYNAMICS = ("gd", "sgf", "sgd", "sgd-epochs", "momentum")   # momentum: SGD at sgd_gamma


def dmft_units(s):
    """``(s_scale, tau, lam)``: ``s = s_scale * t``, the temperature and the DMFT ridge."""
    gamma, alpha = sgd_gamma(s), s.alpha
    tau = 0.0 if s.dynamics == "gd" else gamma
    return gamma / alpha, tau, alpha * s.model_params.get("ridge", 0.0)


def supports_multipass(s, models=("linear",), batch_limit=True, second_order=False, adaptive=False):
    """Isotropic finite data under a multi-pass dynamics, with ``B/n`` small unless the theory is exact
    at any batch fraction (``batch_limit`` False); dimension-adapted momentum for a theory with its
    velocity (``second_order``); AdaGrad-Norm for a theory with its accumulator (``adaptive``)."""
    dynamics = MULTIPASS_DYNAMICS + (("adagrad-norm",) if adaptive else ())
    if s.model not in models:
        return no(f"model '{s.model}' is not one of {', '.join(models)}")
    if not isotropic_data(s):
        return isotropic_data(s)
    if s.alpha is None:
        return no("online data: this theory needs finite data (alpha)")
    if s.dynamics not in dynamics:
        return no(f"dynamics '{s.dynamics}' is not one of {', '.join(dynamics)}")
    if not batch_limit and not adapted_momentum(s):
        return YES
    return small_batches(s, second_order=second_order)


def gradient_flow(x, w, p0, alpha, lam, sigma, m0, q0, s_grid):
    """``(E_GF, psi_GF, m)`` on ``s_grid`` (module doc), ``x, w``: nodes and weights of the continuous part."""
    c2 = max(q0 - m0**2, 0.0)
    a = x + lam
    E = np.exp(-np.outer(s_grid, a))                       # [S, nodes]
    fill = (1 - E) * x / a
    B = fill + E * m0 - 1
    e2 = B**2 + sigma**2 * x * (1 - E) ** 2 / a**2 + E**2 * c2
    psi = x * B**2 + sigma**2 * x**2 * (1 - E) ** 2 / a**2 + x * E**2 * c2 - 2 * sigma**2 * fill
    E0 = np.exp(-lam * s_grid)
    err = e2 @ w + p0 * ((E0 * m0 - 1) ** 2 + E0**2 * c2)
    return err, psi @ w / alpha + sigma**2, (fill + E * m0) @ w + p0 * E0 * m0


def _solve_on_grid(n, s_max, x, w, p0, alpha, lam, tau, sigma, m0, q0):
    """``tau``: the temperature as a function of the clock ``s`` (constant without a schedule)."""
    h = s_max / n
    grid = h * np.arange(n + 1)
    temp = np.broadcast_to(np.asarray(tau(grid), float), grid.shape)
    err, psi_gf, m = gradient_flow(x, w, p0, alpha, lam, sigma, m0, q0, grid)
    decay = np.exp(-2 * np.outer(grid, x + lam))
    k1, k2 = decay @ (w * x), decay @ (w * x**2)
    psi = psi_gf.copy()
    if temp.any():
        c = h / alpha
        for i in range(1, n + 1):   # psi_i = f_i + (h/alpha) [K_i (tau psi)_0/2 + sum_j K_{i-j} (tau psi)_j + K_0 (tau psi)_i/2]
            memory = k2[i] * temp[0] * psi[0] / 2 + k2[i - 1:0:-1] @ (temp[1:i] * psi[1:i])
            psi[i] = (psi_gf[i] + c * memory) / (1 - c * temp[i] * k2[0] / 2)
            if not psi[i] < BLOWUP:      # diverged: nothing later is needed (and it would overflow)
                psi[i:] = np.inf
                break
        tp = temp * psi
        for i in range(1, n + 1):
            err[i] += h * (k1[i] * tp[0] / 2 + k1[i - 1:0:-1] @ tp[1:i] + k1[0] * tp[i] / 2)
    return grid, err, psi, m


def solve_volterra_multipass(s, times, steps=STEPS):
    p = s.model_params
    scale, tau, lam = dmft_units(s)
    l, w, p0 = mp_quadrature(s.alpha)
    x = s.alpha * l
    s_times = scale * flow_clock(s, times)
    s_max = max(float(s_times[-1]), 1e-12)
    factor = rate_along_the_clock(s, scale, float(np.max(times)))
    temperature = (lambda sv: tau) if factor is None else (lambda sv: tau * factor(sv))
    hottest = tau if factor is None else tau * float(np.max(factor(np.linspace(0.0, s_max, 2001))))
    if hottest / s.alpha * (w @ (x**2 / (2 * (x + lam)))) >= 1:        # past the stability edge
        steps = max(steps, int(np.ceil(s_max / H_UNSTABLE)))
    args = (x, w, p0, s.alpha, lam, temperature, p["sigma"], p["m0"], p["q0"])
    coarse = _solve_on_grid(steps, s_max, *args)
    fine = _solve_on_grid(2 * steps, s_max, *args)
    out = {}
    with np.errstate(invalid="ignore"):             # inf - inf past a divergence: caught below
        for name, i in (("D", 1), ("psi", 2), ("m", 3)):
            out[name] = (4 * interpolate(s_times, fine[0], fine[i]) - interpolate(s_times, coarse[0], coarse[i])) / 3
        res = {"risk": 0.5 * (out["D"] + p["sigma"] ** 2), "D": out["D"], "m": out["m"],
               "q": out["D"] + 2 * out["m"] - 1, "train_risk": out["psi"] / 2}
        sane = np.isfinite(res["q"]) & (res["q"] < BLOWUP) & (out["D"] >= 0) & (out["psi"] >= 0)
    diverged = np.cumsum(~sane) > 0              # from the first insane time on
    return {k: np.where(diverged, np.inf, v) for k, v in res.items()}
