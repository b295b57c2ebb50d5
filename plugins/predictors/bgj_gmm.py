"""BGJ effective dynamics for ``gmm-binary`` (one_pass.md section 3), our time (``delta = gamma/d``).

Statistics ``u = (v, m, R)`` (R = perpendicular overlaps); with ``e = sigmoid(yhat) - y`` and the
model's population expectations:
``dv_i/dt = -gamma (E[e relu(h_i)] + alpha v_i)``,
``dm_i/dt = -gamma (v_i E[e 1_i a] + alpha m_i)``,
``dR_ij/dt = -gamma (v_i E[e 1_i b_j] + v_j E[e 1_j b_i]) - 2 gamma alpha R_ij + (gamma^2/lam) v_i v_j B_ij``,
``B_ij = E[1_i 1_j e^2]``: the corrector, the only term of order ``gamma^2`` (``population-gf`` drops
it). From BGJ's random initialisation the statistics start at ``m = 0``, ``R = I`` (to leading order
in d) and ``v ~ N(0, I_2)``: the prediction is the average over that law of ``v(0)`` (a 6 x 6
Gauss-Hermite rule), including the fraction of initial conditions that end at the optimum. The model
is symmetric under ``(v, m) -> (-v, -m)`` (with the classes swapped), so only the 18 trajectories
with ``v1(0) > 0`` are solved (one vmapped solve): the means of ``v`` and ``m`` are exactly 0, and
``R``, the risk, the error rate and the optimum indicator are even. Float64 RK4, step <= ``DT``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hdbench_plugins.models.gmm import binary_expectations, reached_optimum
from hdbench_plugins.predictors.odeint import make_rk4, substeps

DT = 0.25          # RK4 step: statistics within 2e-7 of step 0.05 (measured)
V0_NODES = 6       # Gauss-Hermite nodes per axis for v(0); only the v1(0) > 0 half is solved
QUADRATURE = {"n_a": 8, "n": 5}   # Eb (the least accurate) within ~2e-6 relative of a 40 x 12 rule


def gmm_rates(u, gamma, lam, alpha, correction):
    v, m, R = u
    ex = binary_expectations(v, m, R, lam, jnp, **QUADRATURE)
    dv = -gamma * (ex["Eg"] + alpha * v)
    dm = -gamma * (v * ex["Ea"] + alpha * m)
    G = v[:, None] * ex["Eb"]
    dR = -gamma * (G + G.T) - 2 * gamma * alpha * R
    if correction:
        dR = dR + (gamma**2 / lam) * jnp.outer(v, v) * ex["B"]
    return dv, dm, dR


@functools.lru_cache(maxsize=16)
def _solver(lam, alpha, correction, n_sub):
    def rhs(u, gamma):
        return jax.vmap(lambda one: gmm_rates(one, gamma, lam, alpha, correction))(u)
    return make_rk4(rhs, n_sub)


@functools.lru_cache(maxsize=16)
def _population(lam):
    """Risk and error rate along all trajectories (jitted, the solver's quadrature)."""
    def one(v, m, R):
        ex = binary_expectations(v, m, R, lam, jnp, **QUADRATURE)
        return {"risk": ex["risk"], "error_rate": ex["error_rate"]}
    return jax.jit(jax.vmap(jax.vmap(one)))


def initial_states(p):
    """Initial statistics and their weights: one state (overlaps init) or the v(0) ~ N(0, I) rule."""
    if p["init"] == "overlaps":
        return np.array([p["v0"]]), np.array([p["m0"]]), p["r0"] * np.eye(2)[None], np.ones(1)
    z, w = np.polynomial.hermite_e.hermegauss(V0_NODES)
    v0 = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    weights = np.outer(w, w).ravel() / np.sum(w) ** 2
    half = v0[:, 0] > 0                      # the mirror image (-v0) gives the same even statistics
    v0, weights = v0[half], 2 * weights[half]
    n = len(weights)
    return v0, np.zeros((n, 2)), np.broadcast_to(np.eye(2), (n, 2, 2)).copy(), weights


def solve_gmm_binary(s, times, correction=True):
    p = s.model_params
    gamma = s.dynamics_params["gamma"]
    times = np.asarray(times, float)
    v0, m0, R0, weights = initial_states(p)
    with jax.enable_x64(True):
        solve = _solver(p["lam"], p["alpha"], correction, substeps(times, DT))
        v, m, R = solve((jnp.asarray(v0), jnp.asarray(m0), jnp.asarray(R0)), jnp.asarray(np.diff(times)), gamma)
        v = np.concatenate([v0[None], np.asarray(v)])              # [T, n, 2]
        m = np.concatenate([m0[None], np.asarray(m)])
        R = np.concatenate([R0[None], np.asarray(R)])
        pops = _population(p["lam"])(jnp.asarray(v), jnp.asarray(m), jnp.asarray(R))
        risk, err = np.asarray(pops["risk"]), np.asarray(pops["error_rate"])
    stats = {"v_1": v[..., 0], "v_2": v[..., 1], "m_1": m[..., 0], "m_2": m[..., 1],
             "R_1_1": R[..., 0, 0], "R_1_2": R[..., 0, 1], "R_2_2": R[..., 1, 1], "risk": risk,
             "error_rate": err, "reached_optimum": reached_optimum(np.moveaxis(v, -1, 0), np.moveaxis(m, -1, 0))}
    out = {k: val @ weights for k, val in stats.items()}
    if p["init"] == "random":               # odd under (v, m) -> (-v, -m): zero on the symmetric law
        for k in ("v_1", "v_2", "m_1", "m_2"):
            out[k] = np.zeros(len(times))
    return out
