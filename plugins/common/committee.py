"""Soft-committee formulas shared by the ``committee`` model and its theories: activations ``g``, the
pair kernel ``I2 = E[g(a) g(b)]`` and the generalisation error as a function of the overlaps
``(Q, R, T, v, A)`` (docs/theory/one_pass.md section 2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hdbench import InputError


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
    """The overlaps ``(Q0, R0)`` that ``init = "overlaps"`` realises exactly: the matrices ``Q0``,
    ``R0`` where given, else built from ``q0, q_off`` and ``r0, r_off``."""
    K, M = p["K"], p["M"]
    Q0 = p["q_off"] * np.ones((K, K)) + (p["q0"] - p["q_off"]) * np.eye(K)
    R0 = p["r_off"] * np.ones((K, M))
    R0[np.arange(min(K, M)), np.arange(min(K, M))] = p["r0"]
    if p.get("Q0") is not None:
        Q0 = np.array(p["Q0"], float)
    if p.get("R0") is not None:
        R0 = np.array(p["R0"], float)
    return Q0, R0


def second_layer(p):
    """The initial second layer ``v`` [K]: ``V0`` where given, else ``v0`` for every unit."""
    return np.array(p["V0"], float) if p.get("V0") is not None else np.full(p["K"], float(p["v0"]))


def parse_vector(where, name, value):
    """A vector parameter: a non-empty list of finite numbers, as a tuple of floats."""
    try:
        entries = tuple(float(x) for x in value)
    except (TypeError, ValueError):
        entries = None
    if not entries or not np.all(np.isfinite(entries)) or any(isinstance(x, bool) for x in value):
        raise InputError(f"{where}: {name} = {value!r} is not allowed (expected a list of numbers)")
    return entries


def parse_matrix(where, name, value):
    """A matrix parameter: rows of finite numbers (a list of lists), as a tuple of tuples of floats."""
    try:
        rows = tuple(tuple(float(x) for x in row) for row in value)
    except (TypeError, ValueError):
        rows = None
    if not rows or len({len(r) for r in rows}) != 1 or not np.all(np.isfinite(rows)) \
            or any(isinstance(x, bool) for row in value for x in row):
        raise InputError(f"{where}: {name} = {value!r} is not allowed (expected rows of numbers, all of one length)")
    return rows


def psd_root(A):
    """A factor ``C`` with ``C C^T = A`` for a positive semi-definite ``A``: Cholesky's when ``A`` is
    definite, else the symmetric root (rounding's tiny negative eigenvalues set to 0)."""
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        pass
    w, V = np.linalg.eigh(A)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


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
