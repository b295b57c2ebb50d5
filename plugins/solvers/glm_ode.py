"""``glm-ode``: online SGD on the single-index GLM (docs/theory/one_pass.md section 1, docs/conventions.md oracle 4).

With ``g = d loss / d lambda`` and ``(lambda, lambda*) ~ N(0, [[q, m], [m, 1]])``:
``dm/dt = -gamma E[g lambda*]``, ``dq/dt = -2 gamma E[g lambda] + gamma^2 E[g^2]``.
The ``gamma^2 E[g^2]`` term is the high-dimensional (critical-scaling) correction; ``population-gf``
is this ODE without it. Expectations by the model's own nested Gauss-Legendre quadrature (split at
kinks; float64), with exactly the model's link/activation/loss functions. Regression noise enters
``E[g^2]`` as ``sigma^2 E[f'(lambda)^2]``; for the sign link the noisy teacher variable
``t = lambda* + sigma eps`` is integrated and ``lambda*`` replaced by ``E[lambda* | lambda, t]``.
Integrated by RK45 (rtol 1e-9); under a learning-rate schedule ``gamma`` is ``gamma f(t)``; under
AdaGrad-Norm ``gamma f(t)/sqrt(b^2 + G)`` with ``dG/dt = E[g^2]`` (``E|grad loss|^2/d`` on isotropic data).
Dimension-adapted momentum (``kappa``) adds the velocity's overlaps ``u = <w, theta*>``, ``r = <w, theta>``,
``s = |w|^2``: ``m' = -gamma u``, ``q' = -2 gamma r``, ``u' = kappa (E[g lambda*] - u)``,
``r' = kappa (E[g lambda] - r) - gamma s``, ``s' = 2 kappa (E[g <w, x>] - s) + kappa^2 E[g^2]``.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from hdbench import no
from hdbench_plugins.common.glm import (activation, activation_prime, expectation_nodes, label, loss_grad,
                                        population, teacher_variance)
from hdbench_plugins.solvers.regime import adaptive_ode, adapted_momentum, isotropic_data, streaming_sgd, unregularised


def glm_moments(m, q, p, correction=True):
    """``E[g lambda]``, ``E[g lambda*]`` and ``E[g^2]`` (with regression noise; 0 without ``correction``)
    under ``(lambda, lambda*) ~ N(0, [[q, m], [m, 1]])``."""
    lam, t, w = expectation_nodes(m, q, p, np)
    var_t = teacher_variance(p)
    fprime = activation_prime(p["activation"], lam, np)
    g = loss_grad(p["loss"], activation(p["activation"], lam, np), label(t, p, np), np) * fprime
    if p["link"] == "sign":
        beta = np.linalg.lstsq(np.array([[q, m], [m, var_t]]), np.array([m, 1.0]), rcond=1e-12)[0]
        lam_star = beta[0] * lam + beta[1] * t
    else:
        lam_star = t
    g2 = 0.0
    if correction:
        noise = p["sigma"] ** 2 * np.sum(w * fprime**2) if p["link"] != "sign" else 0.0
        g2 = np.sum(w * g * g) + noise
    return np.sum(w * g * lam), np.sum(w * g * lam_star), g2


def glm_rates(m, q, p, gamma, correction=True):
    """``(dm/dt, dq/dt), E[g^2]`` of online SGD (``correction``), or of population gradient flow
    (``E[g^2]`` then 0: the flow has no per-sample gradients)."""
    g_lam, g_star, g2 = glm_moments(m, q, p, correction)
    return (-gamma * g_star, -2 * gamma * g_lam + gamma**2 * g2), g2


def heavy_ball_rates(y, p, gamma, kappa, correction=True):
    """Dimension-adapted momentum, ``theta' = -gamma w``, ``w' = kappa (G - w)``: the rates of
    ``(m, q, u, r, s) = (<theta, theta*>, |theta|^2, <w, theta*>, <w, theta>, |w|^2)`` and ``E[g^2]``.
    ``E[g <w, x>]`` regresses ``<w, x>`` on ``(lambda, lambda*)`` (covariances ``r``, ``u``)."""
    m, q, u, r, s = y
    g_lam, g_star, g2 = glm_moments(m, max(q, 0.0), p, correction)
    a, b = np.linalg.lstsq(np.array([[max(q, 0.0), m], [m, 1.0]]), np.array([r, u]), rcond=1e-12)[0]
    return (-gamma * u, -2 * gamma * r, kappa * (g_star - u), kappa * (g_lam - r) - gamma * s,
            2 * kappa * (a * g_lam + b * g_star - s) + kappa**2 * g2), g2


def solve_glm(scenario, times, correction=True):
    p = dict(scenario.model_params)
    times = np.asarray(times, float)

    kappa = scenario.dynamics_params.get("kappa") if adapted_momentum(scenario) else None

    def step(t, y, gamma):
        if kappa is not None:
            return heavy_ball_rates(y, p, gamma, kappa, correction)
        return glm_rates(y[0], max(y[1], 0.0), p, gamma, correction)

    # momentum at fixed beta: SGD at gamma/(1 - beta); times f(t) under a schedule; AdaGrad-Norm's
    # accumulator; dimension-adapted momentum: the velocity's overlaps, from w = 0
    start = [p["m0"], p["q0"]] + ([0.0, 0.0, 0.0] if kappa is not None else [])
    rhs, y0 = adaptive_ode(scenario, step, start)
    sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, method="RK45",
                    rtol=1e-9, atol=1e-11, events=_blow_up)
    # The theory itself may diverge in finite time (e.g. gamma too large): +inf from there on, so
    # the scorer compares it only where the simulation is finite too.
    reached = sol.y.shape[1]
    m = np.full(len(times), np.inf)
    q = np.full(len(times), np.inf)
    m[:reached], q[:reached] = sol.y[:2]
    out = {"m": m, "q": q}
    pops = [population(mi, qi, p, np) for mi, qi in zip(m[:reached], q[:reached])]
    for key in pops[0]:
        out[key] = np.full(len(times), np.inf)
        out[key][:reached] = [float(v[key]) for v in pops]
    return out


def _blow_up(_, y):
    return 1e8 - abs(y[1])


_blow_up.terminal = True   # solve_ivp stops at the first blow-up event


def supports_online_glm(s):
    if s.model != "glm":
        return no(f"model '{s.model}' is not glm")
    if not isotropic_data(s):
        return isotropic_data(s)
    if not unregularised(s):
        return unregularised(s)
    return streaming_sgd(s, adaptive=True, second_order=True)
