"""Streaming least squares with any covariance spectrum (docs/theory/one_pass.md section 5), in our conventions
(per-sample step ``gamma/d``, ``t = samples/d``, ``Sigma = diag(lambda_j)`` with mean 1).

With ``e = theta - theta*`` and ``rho_j = E (u_j^T e)^2`` (``rho_j(0) = D0/d``, ``D0 = q0 - 2 m0 + 1``),
the risk ``P = (sum_j lambda_j rho_j + sigma^2)/2`` solves the Volterra equation
``P(t) = F(t) + int_0^t kern(t - s) P(s) ds``, ``F`` = the risk along gradient flow,
``kern(t) = (gamma^2/d) sum_j lambda_j^2 exp(-2 gamma lambda_j t)``. Then
``D = D0 <e^{-2 gamma lambda t}> + int_0^t kD(t - s) 2 P(s) ds`` with
``kD(t) = (gamma^2/d) sum_j lambda_j exp(-2 gamma lambda_j t)``; the mean of ``e`` follows gradient flow
exactly, so ``m = 1 + (m0 - 1) <e^{-gamma lambda t}>``, ``q = D + 2m - 1`` (``<.>``: mean over the spectrum).
Convergent iff ``(gamma/2) tr(Sigma)/d < 1``; the limit is ``P = (sigma^2/2) / (1 - gamma/2)``.
Under a learning-rate schedule ``gamma f(t)`` the equations hold on the clock ``u = int_0^t gamma f``,
where the kernel is a convolution again and the rate weights the memory:
``P(u) = F(u) + int_0^u <lambda^2 e^{-2 lambda (u - v)}> gamma f(t(v)) P(v) dv`` and
``D(u) = D0 <e^{-2 lambda u}> + int_0^u <lambda e^{-2 lambda (u - v)}> 2 gamma f(t(v)) P(v) dv``, with ``F``
and ``m`` read at ``u`` (at constant gamma, ``u = gamma t`` gives the equations above).

- ``lsq-volterra``: the d -> infinity limit above, solved by product integration: ``P`` piecewise
  linear, the kernel (a sum of exponentials) integrated exactly on each step, so stiff directions
  (large ``lambda``) cost nothing; clock steps ``h = min(u_max/1000, 1/(4 lambda_max))`` and ``h/2``,
  Richardson-extrapolated (at most ``MAX_STEPS`` points): within 2e-8 relative of the closed forms
  (tests/test_volterra.py).
- ``lsq-exact-recursion``: the exact expected recursion at finite d for Gaussian data, batch B,
  optax's heavy-ball momentum ``beta`` (0 for SGD): ``v <- beta v + G``, ``theta <- theta - eta v``
  with ``eta = gamma B/d`` and ``G`` the batch-mean gradient. Per eigenvector ``j``, with
  ``A = E e_j^2``, ``C = E e_j v_j``, ``V = E v_j^2`` (``A(0) = D0/d``, ``C(0) = V(0) = 0``) and, by
  Isserlis, ``E G_j^2 = (1 + 1/B) lambda_j^2 A + (lambda_j/B) (sum_i lambda_i A_i + sigma^2)``:
  ``V' = beta^2 V + 2 beta lambda_j C + E G_j^2``, ``C' = beta C + lambda_j A - eta V'``,
  ``A' = A - 2 eta (beta C + lambda_j A) + eta^2 V'``; the means ``E v_j' = beta E v_j + lambda_j E e_j``,
  ``E e_j' = E e_j - eta E v_j'``. At ``beta = 0`` this is ``A' = (1 - 2 eta lambda_j +
  (1 + 1/B) eta^2 lambda_j^2) A + (eta^2 lambda_j/B) (sum_i lambda_i A_i + sigma^2)``. Its only gap
  to the simulation's seed means is Monte Carlo; its gap to ``lsq-volterra`` is the pure finite-d
  effect (for momentum, with ``lsq-volterra`` at ``sgd_gamma = gamma/(1 - beta)``: the fixed-beta
  limit, ``hdbench_plugins.solvers.regime.sgd_gamma``). Under a learning-rate schedule step ``k`` has
  ``eta = (gamma B/d) f((k + 1/2) B/d)``, as in the simulation.
"""
from __future__ import annotations

import numpy as np

from hdbench import YES, no
from hdbench_plugins.common.spectra import spectrum
from hdbench_plugins.common.momentum import heavy_ball
from hdbench_plugins.solvers.dmft_scaffold import interpolate
from hdbench_plugins.solvers.regime import (flow_clock, rate_along_the_clock, schedule_of, sgd_gamma, streaming_sgd,
                                            unregularised)


MAX_STEPS = 4000         # grid points of the fine solve; capped (stiff spectra): 5e-6 relative at d = 1e4, beta = 1 (measured)


def _spectrum_weights(s):
    lam, counts = np.unique(spectrum(s.d, s.model_params), return_counts=True)
    return lam, counts / s.d


def supports_linear_online(s, any_batch=False):
    """Streaming least squares: online SGD or heavy-ball momentum on fresh samples (``any_batch``:
    any ``B``, else ``B << d``)."""
    if s.model != "linear":
        return no(f"model '{s.model}' is not the linear (least-squares) model")
    if s.dynamics not in ("online-sgd", "momentum") or s.alpha is not None:
        return no(f"dynamics '{s.dynamics}'{' on finite data' if s.alpha is not None else ''} is not online SGD "
                  "or momentum on fresh samples (streaming theory)")
    if not unregularised(s):
        return unregularised(s)
    return YES if any_batch else streaming_sgd(s)


def _interval_weights(a, h, m):
    """``h int_0^1 exp(-a (k - u) h) (1 - u) du`` and ``... u du`` for k = 1..m, for each rate a [U]:
    arrays [m, U] (the exact integrals of one exponential against the two hat functions)."""
    x = a * h
    k = np.arange(1, m + 1)[:, None]
    near = np.exp(-a * (k - 1) * h)          # e^{-a (k-1) h}
    far = np.exp(-a * k * h)                 # e^{-a k h}
    small = x < 1e-4
    xs = np.where(small, 1.0, x)
    alpha = np.where(small, far * (0.5 + x / 6), (near - far * (1 + xs)) / xs**2)
    beta = np.where(small, far * (0.5 + x / 3), (near * (xs - 1) + far) / xs**2)
    return h * alpha, h * beta


def _kernel_weights(rates, h, m, coef):
    """``sum_u coef_u * _interval_weights(rates_u)``: [m] arrays, accumulated over chunks of the
    spectrum so memory stays O(m x chunk) however many distinct eigenvalues there are."""
    A, B = np.zeros(m), np.zeros(m)
    for lo in range(0, len(rates), 256):
        a, b = _interval_weights(rates[lo:lo + 256], h, m)
        A += a @ coef[lo:lo + 256]
        B += b @ coef[lo:lo + 256]
    return A, B


def _volterra_on_grid(n, u_max, rate, sigma, D0, lam, w):
    """``P`` and ``D`` on ``n + 1`` equally spaced points of the clock [0, u_max] (product trapezoid);
    ``rate(u)`` is the learning rate ``gamma f`` there, which weights ``P`` inside the memory."""
    h = u_max / n
    grid = h * np.arange(n + 1)
    g = np.broadcast_to(rate(grid), grid.shape)
    rates = 2 * lam
    decay = np.exp(-np.outer(grid, rates))                              # [n+1, U]
    F = 0.5 * (D0 * decay @ (w * lam) + sigma**2)
    A, B = _kernel_weights(rates, h, n, w * lam**2)                   # kernel weights, lag 1..n
    P = np.empty(n + 1)
    P[0] = F[0]
    for i in range(1, n + 1):
        # int_0^{u_i} kern(u_i - v) g(v) P(v) dv = sum_j A[i-j-1] (gP)_j + B[i-j-1] (gP)_{j+1}, j = 0..i-1
        gP = g[:i] * P[:i]
        history = A[i - 1::-1] @ gP + B[i - 1:0:-1] @ gP[1:]
        P[i] = (F[i] + history) / (1 - B[0] * g[i])
    aD, bD = _kernel_weights(rates, h, n, w * lam)
    D = D0 * decay @ w
    gP = g * P
    for i in range(1, n + 1):
        D[i] += 2 * (aD[i - 1::-1] @ gP[:i] + bD[i - 1::-1] @ gP[1:i + 1])
    return grid, P, D


def solve_volterra(s, times):
    """Product trapezoid at steps h and h/2 of the clock ``u = int_0^t gamma f``, Richardson-extrapolated
    (error O(h^4) for smooth P), read at the output times by a cubic spline (outputs are grid points
    without a schedule)."""
    p = s.model_params
    gamma, sigma = sgd_gamma(s), p["sigma"]
    D0 = p["q0"] - 2 * p["m0"] + 1
    lam, w = _spectrum_weights(s)
    times = np.asarray(times, float)
    clock = gamma * flow_clock(s, times)
    u_max = max(float(clock[-1]), 1e-12)
    factor = rate_along_the_clock(s, gamma, times[-1])
    rate = (lambda u: gamma) if factor is None else (lambda u: gamma * factor(u))
    per = max(len(times) - 1, 1)          # a multiple of the output intervals: outputs on the grid
    n = per * int(np.ceil(u_max / min(u_max / 1000, 1.0 / (4 * lam.max())) / per))
    n = min(n, per * max(1, MAX_STEPS // (2 * per)))
    grid, P1, D1 = _volterra_on_grid(n, u_max, rate, sigma, D0, lam, w)
    _, P2, D2 = _volterra_on_grid(2 * n, u_max, rate, sigma, D0, lam, w)
    P, D = (4 * P2[::2] - P1) / 3, (4 * D2[::2] - D1) / 3
    risk, D = interpolate(clock, grid, P), interpolate(clock, grid, D)
    m = 1 + (p["m0"] - 1) * (np.exp(-np.outer(clock, lam)) @ w)
    return {"risk": risk, "D": D, "m": m, "q": D + 2 * m - 1}


def solve_exact_recursion(s, times):
    p = s.model_params
    sigma, d, B = p["sigma"], s.d, s.dynamics_params["batch_size"]
    eta0, beta = heavy_ball(d, s.dynamics_params) if s.dynamics == "momentum" else (s.dynamics_params["gamma"] * B / d, 0.0)
    lam, w = _spectrum_weights(s)
    mult = w * d                                                        # eigenvectors per value
    A = np.full(len(lam), (p["q0"] - 2 * p["m0"] + 1) / d)             # per eigenvector (one of each value)
    C, V = np.zeros(len(lam)), np.zeros(len(lam))
    e_mean, v_mean = np.ones(len(lam)), np.zeros(len(lam))             # E e_j / E e_j(0), E v_j / E e_j(0)
    steps = np.rint(np.asarray(times, float) * d / B).astype(int)      # the simulator's step count
    schedule = schedule_of(s)                                   # step k's size: eta0 f((k + 1/2) B/d)
    factor = np.ones(steps[-1]) if schedule is None else schedule((np.arange(steps[-1]) + 0.5) * B / d)
    etas = (eta0 * factor).tolist()
    out = {"risk": [], "D": [], "m": []}
    done, step_of = 0, None
    for target in steps:
        for eta in etas[done:target]:
            if beta == 0:                                               # SGD: no velocity to carry
                if step_of != eta:                                      # the step's coefficients, once per step size
                    step_of, contract, noise = eta, 1 - 2 * eta * lam + (1 + 1 / B) * eta**2 * lam**2, eta**2 * lam / B
                    shrink = 1 - eta * lam
                A = contract * A + noise * (mult @ (lam * A) + sigma**2)
                e_mean = shrink * e_mean
                continue
            G2 = (1 + 1 / B) * lam**2 * A + lam / B * (mult @ (lam * A) + sigma**2)
            V = beta**2 * V + 2 * beta * lam * C + G2
            pull = beta * C + lam * A                                   # E e_j v_j' before the step
            A, C = A - 2 * eta * pull + eta**2 * V, pull - eta * V
            v_mean = beta * v_mean + lam * e_mean
            e_mean = e_mean - eta * v_mean
        done = target
        out["risk"].append(0.5 * (mult @ (lam * A) + sigma**2))
        out["D"].append(mult @ A)
        out["m"].append(1 + (p["m0"] - 1) * (w @ e_mean))
    D, m = np.array(out["D"]), np.array(out["m"])
    return {"risk": np.array(out["risk"]), "D": D, "m": m, "q": D + 2 * m - 1}
