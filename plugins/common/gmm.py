"""Gaussian-mixture formulas shared by the ``gmm`` models and the BGJ theories: class-conditional
expectations of the two-layer network's summary statistics (quadrature) and the optimum indicators.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from hdbench_plugins.common.quadrature import normal_nodes, qmc_normal


@functools.lru_cache(maxsize=8)
def _hermite(n):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def class_nodes(s, m, R, lam, xp, n_a=16, n=8):
    """Nodes ``(a, b1, b2)`` (flattened) and weights of E over ``a ~ N(s, 1/lam)``,
    ``b ~ N(0, R/lam)`` for one class ``s = +-1``: Gauss-Hermite in ``a``; given ``a``, ``b1`` and then
    ``b2 | b1`` by Gauss-Legendre split at the ReLU kinks ``b_i = -m_i a`` (each kink involves one
    variable only in these coordinates)."""
    z, wz = _hermite(n_a)
    a = s + z / np.sqrt(lam)                                                  # [A]
    var1 = xp.maximum(R[0][0], 1e-12) / lam
    b1, w1 = normal_nodes(xp.zeros_like(a), xp.sqrt(var1) * xp.ones_like(a), [-m[0] * a], xp, n=n)   # [A, N1]
    slope = (R[0][1] / lam) / var1
    cond_sd = xp.sqrt(xp.maximum(R[1][1] / lam - slope * R[0][1] / lam, 0.0))
    b2, w2 = normal_nodes(slope * b1, cond_sd * xp.ones_like(b1), [(-m[1] * a)[:, None]], xp, n=n)  # [A, N1, N2]
    w = wz[:, None, None] * w1[:, :, None] * w2
    a_full = xp.broadcast_to(a[:, None, None], w.shape)
    b1_full = xp.broadcast_to(b1[:, :, None], w.shape)
    return a_full.ravel(), b1_full.ravel(), b2.ravel(), w.ravel()


def _sigmoid(z, xp):
    return 0.5 * (1 + xp.tanh(z / 2))


def binary_expectations(v, m, R, lam, xp=np, **quadrature):
    """Population expectations of the binary GMM at statistics (v, m, R): a dict with
    ``risk``, ``error_rate``, ``Eg[i] = E[e g(h_i)]``, ``Ea[i] = E[e 1_i a]``, ``Eb[i, j] = E[e 1_i b_j]``,
    ``B[i, j] = E[1_i 1_j e^2]`` with ``e = sigmoid(yhat) - y``."""
    out = {"risk": 0.0, "error_rate": 0.0, "Eg": 0.0, "Ea": 0.0, "Eb": 0.0, "B": 0.0}
    for s, y in ((1.0, 1.0), (-1.0, 0.0)):
        a, b1, b2, w = class_nodes(s, m, R, lam, xp, **quadrature)
        h = xp.stack([m[0] * a + b1, m[1] * a + b2])                    # [2, N]
        act = xp.maximum(h, 0.0)
        ind = (h > 0) * 1.0
        yhat = v[0] * act[0] + v[1] * act[1]
        e = _sigmoid(yhat, xp) - y
        b = xp.stack([b1, b2])
        out["risk"] = out["risk"] + 0.5 * xp.sum(w * (xp.logaddexp(0.0, yhat) - y * yhat))
        out["error_rate"] = out["error_rate"] + 0.5 * xp.sum(w * ((yhat > 0) != (y > 0.5)))
        out["Eg"] = out["Eg"] + 0.5 * xp.sum(w * e * act, axis=1)
        out["Ea"] = out["Ea"] + 0.5 * xp.sum(w * e * ind * a, axis=1)
        out["Eb"] = out["Eb"] + 0.5 * xp.einsum("n,in,jn->ij", w * e, ind, b)
        out["B"] = out["B"] + 0.5 * xp.einsum("n,in,jn->ij", w * e * e, ind, ind)
    return out


@dataclasses.dataclass(frozen=True)
class Mixture:
    """Components of a Gaussian mixture in the basis of its orthonormal mean directions: component
    ``c`` (probability ``probs[c]``, label ``labels[c]``) has mean ``sum_a means[c][a] mu_a``."""
    means: tuple
    labels: tuple
    probs: tuple


BINARY = Mixture(means=((1.0,), (-1.0,)), labels=(1.0, 0.0), probs=(0.5, 0.5))
XOR = Mixture(means=((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)), labels=(1.0, 1.0, 0.0, 0.0),
              probs=(0.25,) * 4)


def mixture_expectations(v, M, R, lam, mixture, xp=np, log2_n=11, seed=0):
    """Population expectations of a two-layer ReLU network ``yhat = v . relu(W x)`` with sigmoid
    output on a Gaussian mixture (``x ~ N(mean_c, I/lam)``), at statistics ``v`` [K],
    ``M = W mu^T`` [K, A] and ``R`` [K, K] (Gram matrix of the parts of W orthogonal to the means).

    Given the component, ``h = W x ~ N(M mean_c, G/lam)``, ``G = M M^T + R``: a K-dimensional
    expectation (quasi-Monte Carlo, ``qmc_normal``). The noise of the mean read-outs ``zeta = mu x -
    mean_c`` and of ``b = W^perp x`` enters only through its regression on ``h``:
    ``E[zeta | h] = M^T G^{-1} (h - M mean_c)``, ``E[b | h] = R G^{-1} (h - M mean_c)``. Returns
    ``risk``, ``error_rate``, ``Eg[i] = E[e relu(h_i)]``, ``Ex[i, a] = E[e 1_i <mu_a, x>]``,
    ``Eb[i, j] = E[e 1_i b_j]``, ``B[i, j] = E[1_i 1_j e^2]`` with ``e = sigmoid(yhat) - y``."""
    K = M.shape[0]
    z = xp.asarray(qmc_normal(K, log2_n, seed), dtype=M.dtype)            # [N, K]
    G = M @ M.T + R
    # eigh, not Cholesky: G becomes nearly singular once several units share a mean direction
    s, U = xp.linalg.eigh(G)
    s = xp.maximum(s, 0.0)
    dh = z @ (U * xp.sqrt(s / lam)).T                                       # h - M mean_c
    G_pinv = (U * xp.where(s > 1e-6 * s[-1], 1.0 / xp.maximum(s, 1e-30), 0.0)) @ U.T
    out = {"risk": 0.0, "error_rate": 0.0, "Eg": 0.0, "E1": 0.0, "Eh": 0.0, "B": 0.0}
    for mean, y, p in zip(mixture.means, mixture.labels, mixture.probs):
        h = M @ xp.asarray(mean, dtype=M.dtype) + dh
        act, ind = xp.maximum(h, 0.0), (h > 0) * 1.0
        yhat = act @ v
        e = _sigmoid(yhat, xp) - y
        ei = e[:, None] * ind
        out["risk"] = out["risk"] + p * xp.mean(xp.logaddexp(0.0, yhat) - y * yhat)
        out["error_rate"] = out["error_rate"] + p * xp.mean((yhat > 0) != (y > 0.5))
        out["Eg"] = out["Eg"] + p * xp.mean(e[:, None] * act, axis=0)
        out["E1"] = out["E1"] + p * xp.outer(xp.mean(ei, axis=0), xp.asarray(mean, dtype=M.dtype))
        out["Eh"] = out["Eh"] + p * (ei.T @ dh) / len(z)                     # E[e 1_i (h - M mean_c)_k]
        out["B"] = out["B"] + p * (ei * e[:, None]).T @ ind / len(z)
    regress = G_pinv @ xp.concatenate([M, R], axis=1)                       # G^{-1} [M | R]
    Eh = out.pop("Eh")
    out["Ex"] = out.pop("E1") + Eh @ regress[:, :M.shape[1]]
    out["Eb"] = Eh @ regress[:, M.shape[1]:]
    return out


def reached_optimum(v, m, xp=np):
    """Both units committed to opposite classes (|m_i| > 0.5, m_1 m_2 < 0) with output signs that
    match them (v_i m_i > 0): the optimal configuration, up to relabelling the units."""
    m1, m2, v1, v2 = m[..., 0], m[..., 1], v[..., 0], v[..., 1]
    return ((m1 * m2 < 0) & (xp.abs(m1) > 0.5) & (xp.abs(m2) > 0.5) & (v1 * m1 > 0) & (v2 * m2 > 0)) * 1.0


def xor_optimum(v, mmu, mnu, xp=np):
    """Per-seed indicator for ``gmm-xor``: every mixture component (+mu, -mu, +nu, -nu) is taken by
    exactly one unit (its largest signed overlap, above 0.25: a unit alone on a component settles
    near 0.55-0.6 at lam = 1000, alpha = 0.1), with v > 0 on the class-1 means (+-mu) and v < 0 on
    the class-0 means (+-nu)."""
    over = xp.stack([mmu, -mmu, mnu, -mnu], axis=-1)                    # [..., 4 units, 4 components]
    best = xp.argmax(over, axis=-1)
    committed = xp.max(over, axis=-1) > 0.25
    sign_ok = xp.where(best < 2, v > 0, v < 0)
    covered = xp.stack([xp.sum(best == k, axis=-1) for k in range(4)], axis=-1)
    return (xp.all(committed & sign_ok, axis=-1) & xp.all(covered == 1, axis=-1)) * 1.0


class Binary:
    """BGJ's binary mixture as formulas of its summary statistics ``v`` [K], ``M = W means^T`` [K, A]
    and ``R`` [K, K] (the parts of W orthogonal to the means): shared by ``gmm-binary`` and its theories."""

    mixture = BINARY
    units = 2
    overlap_params = ("v0", "m0")

    @classmethod
    def initial_overlaps(cls, p):
        """``(v, M, R)`` of the overlaps initialisation (``M = W mu^T``, one column per mean)."""
        return np.array(p["v0"]), np.array([p["m0"]]).T, p["r0"] * np.eye(cls.units)

    @staticmethod
    def statistics(v, M, R):
        """BGJ's summary statistics by name, from ``v`` [K], ``M`` [K, A], ``R`` [K, K] (any leading axes)."""
        return {"v_1": v[..., 0], "v_2": v[..., 1], "m_1": M[..., 0, 0], "m_2": M[..., 1, 0],
                "R_1_1": R[..., 0, 0], "R_1_2": R[..., 0, 1], "R_2_2": R[..., 1, 1]}

    @staticmethod
    def optimum(v, M, xp=np):
        return reached_optimum(v, M[..., 0], xp)

    @staticmethod
    def population(v, M, R, lam, xp=np):
        ex = binary_expectations(v, M[:, 0], R, lam, xp)
        return {"risk": ex["risk"], "error_rate": ex["error_rate"]}


class Xor(Binary):
    """BGJ's XOR mixture (four units; means ``+-mu`` for class 1, ``+-nu`` for class 0) as formulas of
    its summary statistics."""

    mixture = XOR
    units = 4
    overlap_params = ("v0", "mmu0", "mnu0")

    @classmethod
    def initial_overlaps(cls, p):
        return np.array(p["v0"]), np.array([p["mmu0"], p["mnu0"]]).T, p["r0"] * np.eye(cls.units)

    @staticmethod
    def statistics(v, M, R):
        out = {f"v_{i}": v[..., i] for i in range(4)}
        out.update({f"mmu_{i}": M[..., i, 0] for i in range(4)})
        out.update({f"mnu_{i}": M[..., i, 1] for i in range(4)})
        out.update({f"R_{i}_{j}": R[..., i, j] for i in range(4) for j in range(i, 4)})
        return out

    @staticmethod
    def optimum(v, M, xp=np):
        return xor_optimum(v, M[..., 0], M[..., 1], xp)

    @staticmethod
    def population(v, M, R, lam, xp=np):
        ex = mixture_expectations(v, M, R, lam, XOR, xp, log2_n=10)
        return {"risk": ex["risk"], "error_rate": ex["error_rate"]}
