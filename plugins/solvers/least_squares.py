"""Least-squares theories on isotropic data (docs/conventions.md oracles 1-3).

All three share the conventions: per-sample step ``gamma/d``, ``t = samples/d``, ``|theta*| = 1``,
``theta0`` with overlaps ``m0, q0`` (``D0 = q0 - 2 m0 + 1``), label noise ``sigma``.

- ``lsq-online-ode``: online SGD on ``x ~ N(0, Sigma)``, eigenvalues ``lam_j`` (distinct values with
  fractions ``f_j`` of the d directions). Per group, ``D_j`` = the part of ``|theta - theta*|^2`` and
  ``M_j`` = the part of ``<theta - theta*, theta*>`` along its eigenvectors:
  ``dM_j/dt = -gamma lam_j M_j``,
  ``dD_j/dt = -2 gamma lam_j D_j + gamma^2 f_j lam_j (sum_k lam_k D_k + sigma^2)``,
  from ``D_j(0) = f_j D0``, ``M_j(0) = f_j (m0 - 1)`` (``theta*`` uniform on the sphere); risk
  ``(sum lam_j D_j + sigma^2)/2``, ``m = 1 + sum M_j``, ``D = sum D_j``, ``q = D + 2m - 1``. On
  isotropic data it is oracle 1, ``dD/dt = (gamma^2 - 2 gamma) D + gamma^2 sigma^2`` (integrated
  numerically, RK45 rtol 1e-10, so the closed form stays an independent check); on any spectrum it
  is homogenized SGD / the High Line ODE (Collins-Woodfin et al. 2024). AdaGrad-Norm adds its
  accumulator, ``dG/dt = E|grad loss|^2/d = 2 risk tr(Sigma)/d`` (``regime.adaptive_ode``).
  Dimension-adapted momentum (``kappa``: ``dtheta/dt = -gamma w``, ``dw/dt = kappa (G - w)``) carries,
  per group, ``C_j`` (e against w) and ``V_j`` (w against w) and the mean ``W_j``:
  ``D_j' = -2 gamma C_j``, ``C_j' = -gamma V_j + kappa (lam_j D_j - C_j)``,
  ``V_j' = 2 kappa (lam_j C_j - V_j) + kappa^2 f_j lam_j (sum_k lam_k D_k + sigma^2)``,
  ``M_j' = -gamma W_j``, ``W_j' = kappa (lam_j M_j - W_j)``, from ``C = V = W = 0``; as
  ``kappa -> infinity`` it is the SGD system above. signSGD and Adam (``sign-sgd``, ``adam``): each
  coordinate moves by ``gamma B/d`` times a step ``u`` with ``E[u] = c sqrt(lam_j) e_j / sqrt(2 risk)``
  and long-run variance ``n`` (``coordinate_steps``: signSGD at B = 1 has ``c = 2/pi``, ``n = 1``), so
  ``D_j' = -2 gamma c sqrt(lam_j) D_j / sqrt(2 risk) + gamma^2 B n f_j`` (``f_j`` over directions
  with ``lam_j > 0``), ``M_j' = -gamma c sqrt(lam_j) M_j / sqrt(2 risk)``. Adam's ``v`` remembers
  ``tau = B/(d (1 - b2))`` of t and holds the bias-corrected average ``S`` of ``2 risk`` over it
  (``P' = 2 risk - P/tau``, ``S = P/(tau (1 - e^{-t/tau}))``): ``sqrt(2 risk)`` becomes ``sqrt(S)``
  in the drift and the noise is scaled by ``2 risk/S`` (docs/theory/one_pass.md section 8).
- ``lsq-gf-mp``: gradient flow on n = alpha d samples (oracle 2), integrals over the
  Marchenko-Pastur law of ``X^T X / n`` (ratio ``c = 1/alpha``).
- ``lsq-homogenized-sgd``: multi-pass SGD = SGF for a linear model (oracle 3): per MP eigenvalue
  ``l``, ``dw/dt = -2 gamma l w + 2 gamma^2 Lhat(t) l``. The system is linear with a
  diagonal-plus-rank-one matrix, symmetrisable by the quadrature weights, so it is solved exactly by
  one ``eigh`` (no time stepping).

Both finite-data theories use ``w(l, t)`` = d x E(component of ``theta - thetahat`` along the
eigenvector of ``l``)^2, from which (with ``thetahat`` the least-squares solution)
``D = int_{l>0} [w - 2 sigma^2 c e^{-gamma l t}/l + sigma^2 c/l] dmu + D0 P(l=0)``,
``train_risk = Lhat = int l w dmu / 2 + sigma^2 (1 - c P(l>0)) / 2``,
``m = 1 + (m0 - 1) [int_{l>0} e^{-gamma l t} dmu + P(l=0)]``, ``q = D + 2m - 1``,
``risk = (D + sigma^2)/2``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal

from scipy.integrate import solve_ivp

from hdbench import no
from hdbench_plugins.common.spectra import spectrum
from hdbench_plugins.solvers.coordinate_steps import step_constants
from hdbench_plugins.solvers.regime import COORDINATEWISE, adaptive_ode, adapted_momentum, isotropic_data, unregularised


def mp_quadrature(alpha: float, nodes: int = 256):
    """Nodes ``l_k``, weights ``W_k`` of the continuous part of the Marchenko-Pastur law of
    ``X^T X / n`` (``X`` n x d, ``c = d/n = 1/alpha``), and the atom ``P(l = 0) = max(0, 1 - alpha)``.

    The continuous part is a free Poisson law: ``c pi_alpha`` for alpha >= 1 and, for alpha < 1 (its
    n nonzero eigenvalues are those of ``X X^T / n``), ``pi_{1/alpha}`` with mass alpha; ``pi_r``
    (rate r, jump 1) has the Jacobi matrix ``diag(r, r+1, r+1, ...)``, ``sqrt(r)`` off the diagonal.
    Gauss quadrature from it (Golub-Welsch) is exact on polynomials of degree ``2 nodes - 1`` and
    converges exponentially for smooth integrands at every alpha, the hard edge of alpha = 1 included.
    """
    rate = max(alpha, 1.0 / alpha)
    diagonal = np.full(nodes, rate + 1.0)
    diagonal[0] = rate
    x, vectors = eigh_tridiagonal(diagonal, np.full(nodes - 1, np.sqrt(rate)))
    scale = 1.0 / alpha if alpha >= 1 else 1.0
    return scale * x, min(alpha, 1.0) * vectors[0] ** 2, max(0.0, 1.0 - alpha)


def overlaps(p):
    m0, q0, sigma = p["m0"], p["q0"], p["sigma"]
    return m0, q0, sigma, q0 - 2 * m0 + 1


def supports_isotropic_linear(s):
    if s.model != "linear":
        return no(f"model '{s.model}' is not the linear (least-squares) model")
    if not isotropic_data(s):
        return isotropic_data(s)
    return unregularised(s)




def solve_online(s, times, correction=True, lag=True):
    """``lsq-online-ode``'s per-eigenvalue ODE (module docstring), under ``s``'s learning rate; for
    dimension-adapted momentum the second-order system with the velocity's moments. ``correction``
    False drops the SGD noise (``population-gf``'s flow); ``lag`` False drops Adam's finite memory
    (its d -> infinity limit at fixed b2)."""
    m0, q0, sigma, D0 = overlaps(s.model_params)
    lam_all = spectrum(s.d, s.model_params)
    lam, counts = np.unique(lam_all, return_counts=True)
    frac, mean_lam, k = counts / counts.sum(), float(lam_all.mean()), len(counts)
    noise = frac * lam if correction else 0.0 * lam
    kappa = s.dynamics_params.get("kappa") if adapted_momentum(s) else None

    def sgd(t, y, gamma):
        D, M = y[:k], y[k:]
        two_risk = lam @ D + sigma**2
        dD = -2 * gamma * lam * D + gamma**2 * noise * two_risk
        return np.concatenate([dD, -gamma * lam * M]), two_risk * mean_lam

    def heavy_ball(t, y, gamma):
        # e' = -gamma w, w' = kappa (G - w): moments D = E e^2, C = E e w, V = E w^2 and the means M, W
        D, M, C, V, W = y.reshape(5, k)
        two_risk = lam @ D + sigma**2
        return np.concatenate([-2 * gamma * C, -gamma * W, -gamma * V + kappa * (lam * D - C),
                               2 * kappa * (lam * C - V) + kappa**2 * noise * two_risk,
                               kappa * (lam * M - W)]), two_risk * mean_lam

    def coordinate(t, y, gamma):
        # E[u_j] = c sqrt(lam_j) e_j / sqrt(S), the long-run variance n 2 risk / S adds up in e_j; S, the
        # gradient scale Adam's v holds, is 2 risk averaged over its memory (2 risk itself in the limit)
        D, M = y[:k], y[k:2 * k]
        two_risk = lam @ np.maximum(D, 0.0) + sigma**2
        weight = -memory * np.expm1(-t / memory) if memory else 0.0     # bias-corrected EMA's total weight
        scale = y[2 * k] / weight if weight > 0 else two_risk
        pull = gamma * drift * np.sqrt(lam / scale)
        lag = [two_risk - y[2 * k] / memory] if memory else []
        return np.concatenate([-2 * pull * D + gamma**2 * spread * two_risk / scale, -pull * M, lag]), 0.0

    def optimum(t, y, *_):      # a noise-free normalised flow on noiseless data reaches e = 0 in finite time
        return lam @ y[:k] - 1e-14 * (lam @ start[:k])
    optimum.terminal = True

    coordinatewise = s.dynamics in COORDINATEWISE
    drift, variance = step_constants(s) if coordinatewise else (0.0, 0.0)
    batch = s.dynamics_params.get("batch_size", 1)
    # Adam's v averages over 1/(1 - b2) steps: B/(d (1 - b2)) in t, its lag behind the risk (0 as d -> infinity)
    memory = batch / (s.d * (1 - s.dynamics_params["b2"])) if s.dynamics == "adam" and lag else 0.0
    # a zero-variance direction gets no step (sign(0) = 0, Adam's 0/eps)
    spread = batch * variance * frac * (lam > 0) if correction else 0.0 * lam
    start = np.concatenate([frac * D0, frac * (m0 - 1)] + ([np.zeros(3 * k)] if kappa is not None else [])
                           + ([np.zeros(1)] if memory else []))
    law = heavy_ball if kappa is not None else coordinate if coordinatewise else sgd
    rhs, y0 = adaptive_ode(s, law, start)
    times = np.asarray(times, float)
    reaches_optimum = coordinatewise and not correction and sigma == 0
    sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, method="RK45", rtol=1e-10,
                    atol=1e-12 / k, events=optimum if reaches_optimum else None)
    if sol.status < 0:
        raise RuntimeError(f"lsq-online-ode: the ODE solver stopped at t = {sol.t[-1]:.4g}: {sol.message}")
    y = np.zeros((len(y0), len(times)))
    y[:, :len(sol.t)] = sol.y          # past a reached optimum: e = 0
    D, m = y[:k].sum(0), 1 + y[k:2 * k].sum(0)
    return {"m": m, "q": D + 2 * m - 1, "D": D, "risk": 0.5 * (lam @ y[:k] + sigma**2)}
