"""``saad-solla``: online SGD on the soft committee machine (Saad & Solla 1995; Goldt et al. 2019),
docs/theory/one_pass.md section 2, in our conventions (per-sample step ``gamma/d`` = their ``eta/d``, same time).

Order parameters ``Q`` (K x K), ``R`` (K x M), ``v`` (K); ``C`` is the covariance of all K + M
pre-activations ``[[Q, R], [R^T, T]]``, ``c_u = A`` (teacher units) or ``-v_j`` (student units):
``dR_in/dt = gamma v_i sum_u c_u I3(i, n, u)``,
``dQ_ik/dt = gamma v_i sum_u c_u I3(i, k, u) + gamma v_k sum_u c_u I3(k, i, u)
            + gamma^2 v_i v_k [sum_{u u'} c_u c_u' I4(i, k, u, u') + sigma^2 J2(i, k)]``,
``dv_i/dt = gamma sum_u c_u I2(i, u)`` when the second layer trains.
``I2, I3, I4, J2`` in closed form for erf (Saad-Solla) and linear ``g``; the ``I4`` terms are one
broadcast tensor expression over the symmetric triangles (no Python loops over units). ``population-gf`` drops the ``gamma^2``
term. Integrated with RK4 in JAX, float64, ``lax.scan`` over output times (step <= ``DT`` = 0.05), compiled
once per (K, M, activation, number of times) with ``gamma``, ``sigma``, ``A`` as traced arguments;
under a learning-rate schedule ``gamma`` is ``gamma f(t)``, ``f`` compiled in (one solver per schedule);
under AdaGrad-Norm ``gamma f(t)/sqrt(b^2 + G)`` with ``dG/dt = E|grad_W loss|^2/d`` (the trace of the noise term).
ReLU: ``I3`` and ``J2`` in closed form (Stein's lemma), the ``gamma^2`` noise term by quasi-Monte Carlo.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hdbench import YES, no
from hdbench_plugins.common.committee import named_overlaps, generalisation_error, initial_overlaps, pair_kernel, second_layer
from hdbench_plugins.common.quadrature import qmc_normal
from hdbench_plugins.common.odeint import make_rk4, substeps
from hdbench_plugins.solvers.regime import isotropic_data, schedule_of, sgd_gamma, streaming_sgd


DT = 0.05          # maximal RK4 step: measured relative error of eg ~1e-8 against DT = 0.001


SUPPORTED = ("erf", "linear", "relu")


def _integrals(act, C, K):
    """``I3[i, b, u]`` (i a student unit; b, u any unit) and ``J2[i, k]`` (i, k students), for
    pre-activation covariance ``C`` whose first K units are the student's."""
    N = C.shape[0]
    if act == "linear":   # g' = 1: I3 = C_bu, J2 = 1
        return jnp.broadcast_to(C, (K, N, N)), jnp.ones((K, K))
    if act == "relu":
        # Stein: E[1_i x_b relu_u] = C_bi E[delta(x_i) relu(x_u)] + C_bu E[1_i 1_u], with
        # E[delta(x_i) relu(x_u)] = sqrt(C_ii C_uu - C_iu^2) / (2 pi C_ii), E[1_i 1_u] = 1/4 + asin(rho)/(2 pi)
        P, D = _relu_pairs(C)
        I3 = C[:K][:, :, None] * D[:K][:, None, :] + C[None] * P[:K][:, None, :]
        return I3, P[:K, :K]
    one = 1.0 + jnp.diagonal(C)
    Cs, os_ = C[:K], one[:K]
    Cii = os_[:, None, None]
    I3 = (2 / np.pi) * (C[None] * Cii - Cs[:, :, None] * Cs[:, None, :]) / (
        Cii * jnp.sqrt(Cii * one[None, None, :] - Cs[:, None, :] ** 2))
    J2 = (2 / np.pi) / jnp.sqrt(os_[:, None] * os_[None, :] - C[:K, :K] ** 2)
    return I3, J2


def _relu_pairs(C):
    """``P[a, b] = E[1_a 1_b]`` and ``D[a, b] = E[delta(x_a) relu(x_b)]`` for ReLU units."""
    d = jnp.diagonal(C)
    sd = jnp.sqrt(d)
    rho = jnp.clip(C / (sd[:, None] * sd[None, :]), -1.0, 1.0)
    P = 0.25 + jnp.arcsin(rho) / (2 * np.pi)
    D = jnp.sqrt(jnp.maximum(d[:, None] * d[None, :] - C**2, 0.0)) / (2 * np.pi * d[:, None])
    return P, D


RELU_QMC_LOG2_N = 13   # 16384 nodes (with mirror images) for the ReLU noise term (no closed-form I4)


def noise_term(act, C, c, K):
    """``sum_{u, w} c_u c_w I4[i, k, u, w]`` with ``I4 = E[g'(x_i) g'(x_k) g(x_u) g(x_w)]`` (K x K).

    erf: the closed form on the triangles ``i <= k``, ``u <= w`` only (a quarter of the K^2 (K+M)^2
    elements, one arcsin each). linear: ``c C c``. ReLU: ``E[1_i 1_k (c . relu(x))^2]`` by quasi-Monte
    Carlo (no closed-form I4), which costs O(nodes K^2) rather than O(K^2 (K+M)^2)."""
    N = C.shape[0]
    if act == "linear":
        return jnp.full((K, K), c @ C @ c)
    if act == "relu":
        z = jnp.asarray(qmc_normal(N, RELU_QMC_LOG2_N), C.dtype)
        x = z @ jnp.linalg.cholesky(C + 1e-12 * jnp.eye(N, dtype=C.dtype)).T
        a = (x[:, :K] > 0).astype(C.dtype)
        out = (jnp.maximum(x, 0.0) @ c) ** 2
        return (a * out[:, None]).T @ a / len(z)
    iu, ku = np.triu_indices(K)
    uu, wu = np.triu_indices(N)
    weight = (c[uu] * c[wu] * np.where(uu == wu, 1.0, 2.0))[None, :]           # [1, Q]
    one = 1.0 + jnp.diagonal(C)
    c11, c22, c12 = one[iu][:, None], one[ku][:, None], C[iu, ku][:, None]       # [P, 1]
    c13, c14, c23, c24 = C[iu][:, uu], C[iu][:, wu], C[ku][:, uu], C[ku][:, wu]  # [P, Q]
    c33, c44, c34 = one[uu][None], one[wu][None], C[uu, wu][None]                # [1, Q]
    L4 = c11 * c22 - c12**2
    L0 = L4 * c34 - c23 * c24 * c11 - c13 * c14 * c22 + c12 * c13 * c24 + c12 * c14 * c23
    L1 = L4 * c33 - c23**2 * c11 - c13**2 * c22 + 2 * c12 * c13 * c23
    L2 = L4 * c44 - c24**2 * c11 - c14**2 * c22 + 2 * c12 * c14 * c24
    I4 = (4 / np.pi**2) * jnp.arcsin(L0 * jax.lax.rsqrt(L1 * L2)) * jax.lax.rsqrt(L4)
    upper = jnp.sum(weight * I4, axis=1)                                         # [P]
    quad = jnp.zeros((K, K), C.dtype).at[iu, ku].set(upper)
    return quad + jnp.triu(quad, 1).T


def rates(state, gamma, sigma, A, act, K, M, trained, correction):
    """Time derivatives of (Q, R, v)."""
    Q, R, v = state
    C = jnp.block([[Q, R], [R.T, jnp.eye(M)]])
    c = jnp.concatenate([-v, jnp.full((M,), A)])
    I3, J2 = _integrals(act, C, K)
    drive = jnp.einsum("ibu,u->ib", I3, c)            # sum_u c_u I3(i, b, u)
    dR = gamma * v[:, None] * drive[:, K:]
    first = gamma * v[:, None] * drive[:, :K]
    dQ = first + first.T
    if correction:
        quad = noise_term(act, C, c, K)
        dQ = dQ + gamma**2 * jnp.outer(v, v) * (quad + sigma**2 * J2)
    if trained:
        dv = gamma * pair_kernel(act, jnp.diagonal(Q)[:, None], jnp.diagonal(C)[None, :], C[:K], jnp) @ c
    else:
        dv = jnp.zeros_like(v)
    return dQ, dR, dv


def mean_square_gradient(state, sigma, A, act, K, M):
    """``E|grad_W loss|^2 / d = sum_i v_i^2 (sum_{u,u'} c_u c_u' I4(i, i, u, u') + sigma^2 J2(i, i))``:
    the trace of the noise term (a second layer's O(1) gradient is O(1/d) of it)."""
    Q, R, v = state
    C = jnp.block([[Q, R], [R.T, jnp.eye(M)]])
    c = jnp.concatenate([-v, jnp.full((M,), A)])
    _, J2 = _integrals(act, C, K)
    return jnp.sum(v * v * (jnp.diagonal(noise_term(act, C, c, K)) + sigma**2 * jnp.diagonal(J2)))


@functools.lru_cache(maxsize=32)
def _solver(act, K, M, trained, correction, n_sub, schedule=None):
    """Jitted RK4 for one shape and learning-rate schedule, on the state ``(Q, R, v, G)``: rate
    ``gamma f(t) / sqrt(1 + G / b^2)`` with AdaGrad-Norm's accumulator ``dG/dt = E|grad loss|^2/d``
    (``inverse_b2 = 0`` for a fixed rate, so one program serves both); cached so that a warm call
    never recompiles."""
    f = (lambda t: 1.0) if schedule is None else schedule.traced()

    def rhs(state, t, gamma, sigma, A, inverse_b2):
        Q, R, v, G = state
        rate = gamma * f(t) / jnp.sqrt(1.0 + jnp.maximum(G, 0.0) * inverse_b2)
        dQ, dR, dv = rates((Q, R, v), rate, sigma, A, act, K, M, trained, correction)
        if not correction:          # a flow has no per-sample noise to accumulate
            return dQ, dR, dv, jnp.zeros_like(G)
        dG = jax.lax.cond(inverse_b2 > 0, lambda: mean_square_gradient((Q, R, v), sigma, A, act, K, M),
                          lambda: jnp.zeros_like(G))
        return dQ, dR, dv, dG
    return make_rk4(rhs, n_sub, timed=True)


def solve_committee(s, times, correction=True):
    p = s.model_params
    K, M, act = p["K"], p["M"], p["activation"]
    gamma = sgd_gamma(s)                # momentum at fixed beta: SGD at gamma/(1 - beta); AdaGrad-Norm: gamma/b
    inverse_b2 = s.dynamics_params["b"] ** -2 if s.dynamics == "adagrad-norm" else 0.0
    times = np.asarray(times, float)
    Q0, R0 = initial_overlaps(p)
    intervals = np.diff(times)
    with jax.enable_x64(True):
        solve = _solver(act, K, M, p["train_second_layer"], correction, substeps(times, DT), schedule_of(s))
        state0 = (jnp.asarray(Q0), jnp.asarray(R0), jnp.asarray(second_layer(p)), jnp.zeros(()))
        Q, R, v, _ = solve(state0, jnp.asarray(intervals), gamma, p["sigma"], p["A"], inverse_b2)
        Q = np.concatenate([Q0[None], np.asarray(Q)])
        R = np.concatenate([R0[None], np.asarray(R)])
        v = np.concatenate([second_layer(p)[None], np.asarray(v)])
    eg = np.array([float(generalisation_error(act, Q[t], R[t], np.eye(M), v[t], np.full(M, p["A"]), np))
                   for t in range(len(times))])
    out = {"gen_error": eg, "risk": eg + 0.5 * p["sigma"] ** 2, **named_overlaps(Q, R, v)}
    bad = ~np.isfinite(eg)
    if bad.any():   # a blow-up: +inf from the first non-finite time on (a predicted divergence)
        first = bad.argmax()
        for key in out:
            out[key][first:] = np.inf
    return out


def supports_committee(s, online=True, isotropic=True):
    if s.model != "committee":
        return no(f"model '{s.model}' is not committee")
    p = s.model_params
    if p["activation"] not in SUPPORTED:
        return no(f"activation '{p['activation']}' has no closed-form I4 here (supported: {', '.join(SUPPORTED)})")
    if p["init"] != "overlaps":
        return no("random initialisation: the ODE needs the initial overlaps (use init = 'overlaps')")
    if isotropic and not isotropic_data(s):
        return isotropic_data(s)
    return streaming_sgd(s, adaptive=True) if online else YES
