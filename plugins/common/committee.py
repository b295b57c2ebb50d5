"""Soft-committee formulas shared by the ``committee`` model and its theories: activations ``g``, the
pair kernel ``I2 = E[g(a) g(b)]`` and the generalisation error as a function of the overlaps
``(Q, R, T, v, A)`` (docs/theory/one_pass.md section 2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


ACTIVATIONS = ("erf", "linear", "relu")


def g(name, z):
    if name == "erf":
        return jax.scipy.special.erf(z / np.sqrt(2.0))
    if name == "relu":
        return jnp.maximum(z, 0.0)
    return z


def pair_kernel(name, Caa, Cbb, Cab, xp=jnp):
    """``I2 = E[g(a) g(b)]`` for centred Gaussians with variances Caa, Cbb and covariance Cab."""
    if name == "erf":
        return (2 / np.pi) * xp.arcsin(Cab / xp.sqrt((1 + Caa) * (1 + Cbb)))
    if name == "linear":
        return Cab
    sa, sb = xp.sqrt(Caa), xp.sqrt(Cbb)     # relu: the order-1 arc-cosine kernel
    r = xp.clip(Cab / xp.maximum(sa * sb, 1e-30), -1.0, 1.0)
    return sa * sb * (xp.sqrt(1 - r * r) + r * (np.pi - xp.arccos(r))) / (2 * np.pi)


def generalisation_error(name, Q, R, T, v, A, xp=jnp):
    """``E (yhat - y_clean)^2 / 2`` from the order parameters."""
    dq, dt = xp.diagonal(Q), xp.diagonal(T)
    ss = pair_kernel(name, dq[:, None], dq[None, :], Q, xp)
    st = pair_kernel(name, dq[:, None], dt[None, :], R, xp)
    tt = pair_kernel(name, dt[:, None], dt[None, :], T, xp)
    return 0.5 * (v @ ss @ v - 2 * v @ st @ A + A @ tt @ A)


def initial_overlaps(p):
    """The overlaps ``(Q0, R0)`` that ``init = "overlaps"`` realises exactly."""
    K, M = p["K"], p["M"]
    Q0 = p["q_off"] * np.ones((K, K)) + (p["q0"] - p["q_off"]) * np.eye(K)
    R0 = p["r_off"] * np.ones((K, M))
    R0[np.arange(min(K, M)), np.arange(min(K, M))] = p["r0"]
    return Q0, R0


def overlap_names(K, M):
    """The overlap observables in the order the model reports them: per student unit ``i``, ``Q_i_j``
    (``j >= i``), ``R_i_n`` and ``v_i``."""
    return list(named_overlaps(np.zeros((K, K)), np.zeros((K, M)), np.zeros(K)))


def named_overlaps(Q, R, v):
    """``{name: value}`` from ``Q`` [..., K, K], ``R`` [..., K, M] and ``v`` [..., K] (any leading axes)."""
    K, M = R.shape[-2:]
    out = {}
    for i in range(K):
        out.update({f"Q_{i}_{j}": Q[..., i, j] for j in range(i, K)})
        out.update({f"R_{i}_{n}": R[..., i, n] for n in range(M)})
        out[f"v_{i}"] = v[..., i]
    return out
