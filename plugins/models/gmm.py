"""Models ``gmm-binary`` and ``gmm-xor``: Ben Arous-Gheissari-Jagannath's Gaussian mixtures
classified by a two-layer ReLU network (docs/theory/one_pass.md section 3).

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

``gmm-xor`` (class ``GMMXor``) has four units and two mean directions; both models share the
interface the theories use: ``mixture`` (components), ``units``, ``statistics(v, M, R)``,
``optimum(v, M)``, ``population(v, M, R, lam)`` with ``M = W mu^T`` [units, means].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import hdbench
from hdbench import InputError, Model, Param

from hdbench_plugins.common.linear import unit_teacher
from hdbench_plugins.common.linalg import orthonormal_columns
from hdbench_plugins.common.gmm import Binary, Xor


SHARED_PARAMS = {
    "alpha": Param(0.1, float, low=0.0, doc="L2 regularisation"),
    "init": Param("random", str, choices=("random", "overlaps")),
    "r0": Param(1.0, float, low=0.0, low_open=True, doc="overlaps init: R = r0 I"),
}


class GMMBinary(Binary, Model):
    name = "gmm-binary"
    description = "BGJ binary Gaussian mixture, two ReLU units + sigmoid output, L2 regularisation"
    params = {
        "lam": Param(100.0, float, low=0.0, low_open=True, doc="signal-to-noise: x ~ N(+-mu, I/lam)"),
        **SHARED_PARAMS,
        "v0": Param((1.0, -1.0), tuple, doc="overlaps init: second layer"),
        "m0": Param((0.5, -0.5), tuple, doc="overlaps init: <W_i, mu>"),
    }

    @classmethod
    def check_params(cls, p):
        for key in cls.overlap_params:
            if len(p[key]) != cls.units or not all(isinstance(x, (int, float)) for x in p[key]):
                raise InputError(f"model '{cls.name}': {key} = {list(p[key])} is not allowed "
                                 f"(expected {cls.units} numbers)")
            p[key] = tuple(map(float, p[key]))

    @classmethod
    def check_scenario(cls, s):
        if s.alpha is not None:
            raise InputError(f"model '{cls.name}': alpha (finite data) is not supported yet; use online dynamics")

    def teacher(self, key, d, p):
        return unit_teacher(key, d)[None, :]                             # rows: the mean directions

    def init(self, key, d, teacher, p):
        kw, kv = jax.random.split(key)
        if p["init"] == "random":
            return {"W": jax.random.normal(kw, (self.units, d)) / jnp.sqrt(d),
                    "v": jax.random.normal(kv, (self.units,))}
        v0, M0, R0 = self.initial_overlaps(p)
        U = jax.random.normal(kw, (d, self.units))
        U = U - teacher.T @ (teacher @ U)
        U = orthonormal_columns(U)
        W = jnp.asarray(M0, jnp.float32) @ teacher + jnp.sqrt(R0[0, 0]) * U.T
        return {"W": W, "v": jnp.asarray(v0, jnp.float32)}

    def sample(self, key, n, d, teacher, p):
        kc, kz = jax.random.split(key)
        c = jax.random.choice(kc, len(self.mixture.probs), (n,), p=jnp.asarray(self.mixture.probs))
        means = jnp.asarray(self.mixture.means, jnp.float32) @ teacher
        y = jnp.asarray(self.mixture.labels, jnp.float32)[c]
        return means[c] + jax.random.normal(kz, (n, d)) / jnp.sqrt(p["lam"]), y

    def loss(self, params, x, y, p):
        W, v = params["W"], params["v"]
        yhat = jnp.dot(v, jnp.maximum(W @ x, 0.0))
        return -y * yhat + jnp.logaddexp(0.0, yhat) + 0.5 * p["alpha"] * (jnp.sum(v * v) + jnp.sum(W * W))

    def observables(self, params, teacher, data, p):
        W, v = params["W"], params["v"]
        M = W @ teacher.T
        Wp = W - M @ teacher
        R = Wp @ Wp.T
        return {**self.statistics(v, M, R), **self.population(v, M, R, p["lam"], jnp),
                "reached_optimum": self.optimum(v, M, jnp)}

    def observable_names(self, p, finite):
        K, A = self.units, len(self.mixture.means[0])
        return tuple(self.statistics(np.zeros(K), np.zeros((K, A)), np.zeros((K, K)))) + (
            "risk", "error_rate", "reached_optimum")

    def divergence_statistic(self, obs):
        return sum(obs[name] for name in obs if name.startswith("R_") and name[2] == name[4])


class GMMXor(Xor, GMMBinary):
    """``gmm-xor``: BGJ's XOR-type mixture, ``y ~ Bernoulli(1/2)``; class 1 at ``+-mu``, class 0 at
    ``+-nu`` (orthonormal means, each sign with probability 1/2), ``x ~ N(mean, I/lam)``; four hidden
    ReLU units, sigmoid output, the same loss and L2 term as ``gmm-binary``. Observables: BGJ's 22
    statistics ``v_i``, ``mmu_i = <W_i, mu>``, ``mnu_i = <W_i, nu>``, ``R_i_j`` (i <= j, parts of W
    orthogonal to both means), ``risk`` and ``error_rate`` (a 4-dimensional Gaussian integral per
    component, by quasi-Monte Carlo: ``mixture_expectations``), and ``reached_optimum`` (each
    component taken by one unit with the matching output sign).

    Initialisation: ``init = "random"`` (BGJ: ``W_i ~ N(0, I/d)``, ``v_i ~ N(0, 1)``), or
    ``init = "overlaps"``: exactly ``v0``, ``mmu0``, ``mnu0`` and ``R = r0 I``."""

    name = "gmm-xor"
    description = "BGJ XOR Gaussian mixture, four ReLU units + sigmoid output, L2 regularisation"
    params = {
        "lam": Param(1000.0, float, low=0.0, low_open=True, doc="signal-to-noise: x ~ N(mean, I/lam)"),
        **SHARED_PARAMS,
        "v0": Param((1.0, 1.0, -1.0, -1.0), tuple, doc="overlaps init: second layer"),
        "mmu0": Param((0.3, -0.3, 0.05, -0.05), tuple, doc="overlaps init: <W_i, mu>"),
        "mnu0": Param((0.05, 0.05, 0.3, -0.3), tuple, doc="overlaps init: <W_i, nu>"),
    }

    def teacher(self, key, d, p):
        q = orthonormal_columns(jax.random.normal(key, (d, 2)))
        return q.T                                                         # rows mu, nu


@hdbench.hookimpl
def hdbench_models():
    return [GMMBinary, GMMXor]
