"""Model ``gmm-binary``: Ben Arous-Gheissari-Jagannath's binary Gaussian mixture with a two-layer
network (one_pass.md section 3).

``y ~ Bernoulli(1/2)``, ``x ~ N((2y - 1) mu, I/lam)`` with ``|mu| = 1``; network output
``yhat = v . relu(W x)`` with 2 hidden units; loss ``-y yhat + log(1 + e^yhat) + (alpha/2)(|v|^2 + |W|^2)``
(the L2 term is part of every sample's loss, so a step of ``gamma/d`` per sample shrinks by
``gamma alpha`` per unit time). Summary statistics (BGJ's 7): ``v_i``, ``m_i = <W_i, mu>``,
``R_i_j = <W_i^perp, W_j^perp>`` (``W^perp`` = the part orthogonal to ``mu``).

Observables: the statistics; ``risk`` = population cross-entropy (without the L2 term);
``error_rate = P(1[yhat > 0] != y)``; ``reached_optimum`` = per-seed indicator that both units have
committed to opposite classes with matching output signs (``m_1 m_2 < 0``, ``|m_i| > 0.5``,
``v_i m_i > 0``), so its seed mean is the fraction of runs at the optimal configuration. Population values by quadrature:
given the class, ``a = <mu, x> ~ N(+-1, 1/lam)`` and ``b = W^perp x ~ N(0, R/lam)``,
``h = m a + b``; nested 1-D rules split at the ReLU kinks (see ``class_nodes``).

Initialisation: ``init = "random"`` (BGJ): ``W_i ~ N(0, I/d)``, ``v_i ~ N(0, 1)``; or
``init = "overlaps"``: exactly ``v = (v1, v2)``, ``m = (m1, m2)``, ``R = r0 I``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import hdbench
from hdbench import InputError, Model, Param

from .linear import unit_teacher
from .quadrature import normal_nodes


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


def reached_optimum(v, m, xp=np):
    """Both units committed to opposite classes (|m_i| > 0.5, m_1 m_2 < 0) with output signs that
    match them (v_i m_i > 0): the optimal configuration, up to relabelling the units."""
    return ((m[0] * m[1] < 0) & (xp.abs(m[0]) > 0.5) & (xp.abs(m[1]) > 0.5)
            & (v[0] * m[0] > 0) & (v[1] * m[1] > 0)) * 1.0


STATISTICS = ("v_1", "v_2", "m_1", "m_2", "R_1_1", "R_1_2", "R_2_2")


class GMMBinary(Model):
    name = "gmm-binary"
    description = "BGJ binary Gaussian mixture, two ReLU units + sigmoid output, L2 regularisation"
    params = {
        "lam": Param(100.0, float, low=0.0, low_open=True, doc="signal-to-noise: x ~ N(+-mu, I/lam)"),
        "alpha": Param(0.1, float, low=0.0, doc="L2 regularisation"),
        "init": Param("random", str, choices=("random", "overlaps")),
        "v0": Param((1.0, -1.0), tuple, doc="overlaps init: second layer"),
        "m0": Param((0.5, -0.5), tuple, doc="overlaps init: <W_i, mu>"),
        "r0": Param(1.0, float, low=0.0, low_open=True, doc="overlaps init: R = r0 I"),
    }

    @classmethod
    def check_params(cls, p):
        for key in ("v0", "m0"):
            if len(p[key]) != 2 or not all(isinstance(x, (int, float)) for x in p[key]):
                raise InputError(f"model 'gmm-binary': {key} = {list(p[key])} is not allowed (expected 2 numbers)")
        p["v0"], p["m0"] = tuple(map(float, p["v0"])), tuple(map(float, p["m0"]))

    @classmethod
    def check_scenario(cls, s):
        if s.alpha is not None:
            raise InputError("model 'gmm-binary': alpha (finite data) is not supported yet; use online dynamics")

    def teacher(self, key, d, p):
        return unit_teacher(key, d)

    def init(self, key, d, teacher, p):
        kw, kv = jax.random.split(key)
        if p["init"] == "random":
            return {"W": jax.random.normal(kw, (2, d)) / jnp.sqrt(d), "v": jax.random.normal(kv, (2,))}
        U = jax.random.normal(kw, (d, 2))
        U = U - jnp.outer(teacher, teacher @ U)
        U, _ = jnp.linalg.qr(U)
        W = jnp.asarray(p["m0"])[:, None] * teacher[None, :] + jnp.sqrt(p["r0"]) * U.T
        return {"W": W, "v": jnp.asarray(p["v0"], jnp.float32)}

    def sample(self, key, n, d, teacher, p):
        ky, kz = jax.random.split(key)
        y = jax.random.bernoulli(ky, 0.5, (n,)).astype(jnp.float32)
        X = (2 * y - 1)[:, None] * teacher[None, :] + jax.random.normal(kz, (n, d)) / jnp.sqrt(p["lam"])
        return X, y

    def loss(self, params, x, y, p):
        W, v = params["W"], params["v"]
        yhat = jnp.dot(v, jnp.maximum(W @ x, 0.0))
        return -y * yhat + jnp.logaddexp(0.0, yhat) + 0.5 * p["alpha"] * (jnp.sum(v * v) + jnp.sum(W * W))

    def observables(self, params, teacher, data, p):
        W, v = params["W"], params["v"]
        m = W @ teacher
        Wp = W - m[:, None] * teacher[None, :]
        R = Wp @ Wp.T
        pop = binary_expectations(v, m, R, p["lam"], jnp)
        return {"v_1": v[0], "v_2": v[1], "m_1": m[0], "m_2": m[1], "R_1_1": R[0, 0], "R_1_2": R[0, 1],
                "R_2_2": R[1, 1], "risk": pop["risk"], "error_rate": pop["error_rate"],
                "reached_optimum": reached_optimum(v, m, jnp)}

    def observable_names(self, p, finite):
        return STATISTICS + ("risk", "error_rate", "reached_optimum")

    def divergence_statistic(self, obs):
        return obs["R_1_1"] + obs["R_2_2"]


def xor_optimum(v, mmu, mnu, xp=np):
    """Per-seed indicator for ``gmm-xor``: every mixture component (+mu, -mu, +nu, -nu) is taken by
    exactly one unit (its largest signed overlap, above 0.25: a unit alone on a component settles
    near 0.55-0.6 at lam = 1000, alpha = 0.1), with v > 0 on the class-1 means (+-mu) and v < 0 on
    the class-0 means (+-nu)."""
    over = xp.stack([mmu, -mmu, mnu, -mnu], axis=-1)                    # [4 units, 4 components]
    best = xp.argmax(over, axis=-1)
    committed = xp.max(over, axis=-1) > 0.25
    sign_ok = xp.where(best < 2, v > 0, v < 0)
    covered = xp.stack([xp.sum(best == k) for k in range(4)])
    return (xp.all(committed & sign_ok) & xp.all(covered == 1)) * 1.0


class GMMXor(GMMBinary):
    """``gmm-xor``: BGJ's XOR-type mixture, ``y ~ Bernoulli(1/2)``; class 1 at ``+-mu``, class 0 at
    ``+-nu`` (orthonormal means, each sign with probability 1/2), ``x ~ N(mean, I/lam)``; four hidden
    ReLU units, sigmoid output, the same loss and L2 term as ``gmm-binary``. Observables: BGJ's 22
    statistics ``v_i``, ``mmu_i = <W_i, mu>``, ``mnu_i = <W_i, nu>``, ``R_i_j`` (i <= j, parts of W
    orthogonal to both means), and ``reached_optimum`` (each component taken by one unit with the
    matching output sign). No population risk yet (a 6-dimensional integral): no theory uses it."""

    name = "gmm-xor"
    description = "BGJ XOR Gaussian mixture, four ReLU units + sigmoid output, L2 regularisation"
    params = {
        "lam": Param(1000.0, float, low=0.0, low_open=True, doc="signal-to-noise: x ~ N(mean, I/lam)"),
        "alpha": Param(0.1, float, low=0.0, doc="L2 regularisation"),
        "init": Param("random", str, choices=("random",)),
    }

    @classmethod
    def check_params(cls, p):
        return None

    def teacher(self, key, d, p):
        q, _ = jnp.linalg.qr(jax.random.normal(key, (d, 2)))
        return q.T                                                         # rows mu, nu

    def init(self, key, d, teacher, p):
        kw, kv = jax.random.split(key)
        return {"W": jax.random.normal(kw, (4, d)) / jnp.sqrt(d), "v": jax.random.normal(kv, (4,))}

    def sample(self, key, n, d, teacher, p):
        ky, ks, kz = jax.random.split(key, 3)
        y = jax.random.bernoulli(ky, 0.5, (n,)).astype(jnp.float32)
        sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n,)), 1.0, -1.0)
        mean = sign[:, None] * jnp.where(y[:, None] > 0.5, teacher[0][None, :], teacher[1][None, :])
        return mean + jax.random.normal(kz, (n, d)) / jnp.sqrt(p["lam"]), y

    def observables(self, params, teacher, data, p):
        W, v = params["W"], params["v"]
        M = W @ teacher.T                                                  # [4, 2]
        Wp = W - M @ teacher
        R = Wp @ Wp.T
        out = {f"v_{i}": v[i] for i in range(4)}
        out.update({f"mmu_{i}": M[i, 0] for i in range(4)})
        out.update({f"mnu_{i}": M[i, 1] for i in range(4)})
        out.update({f"R_{i}_{j}": R[i, j] for i in range(4) for j in range(i, 4)})
        out["reached_optimum"] = xor_optimum(v, M[:, 0], M[:, 1], jnp)
        return out

    def observable_names(self, p, finite):
        return (tuple(f"v_{i}" for i in range(4)) + tuple(f"mmu_{i}" for i in range(4))
                + tuple(f"mnu_{i}" for i in range(4))
                + tuple(f"R_{i}_{j}" for i in range(4) for j in range(i, 4)) + ("reached_optimum",))

    def divergence_statistic(self, obs):
        return sum(obs[f"R_{i}_{i}"] for i in range(4))


@hdbench.hookimpl
def hdbench_models():
    return [GMMBinary, GMMXor]
