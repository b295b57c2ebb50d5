"""Model ``dln``: diagonal linear network regression (docs/theory/dln.md; García Malaxechebarría et al. 2026).

Scaling — the one exception to docs/conventions.md's O(1) norms: coordinates are O(1), ``|w|^2 ~ d``.
``x ~ N(0, I_d)``, ``y = <x, w*> + sigma sqrt(d) eps``; the student is ``w = u (.) v``
(``parametrisation = "product"``) or ``w = u^2 - v^2`` (``"difference"``) with per-sample loss
``(<x, w> - y)^2 / 2``, so SGD with per-sample step ``gamma/d`` moves each coordinate by O(d^-1/2).

Teacher: ``round(rho d)`` coordinates at random positions are ``+-spike`` (random signs), the rest 0
(``rho = 1``: dense). Start, the same in every coordinate: ``u0 = a``, ``v0 = b`` (``b`` unset: 0 for
the product, ``a`` for the difference, so ``w0 = 0`` either way); small ``a`` is the rich regime,
large ``a`` the lazy one.

Observables (exact, per d):
- ``risk = (|w - w*|^2 / d + sigma^2) / 2`` (population risk / d); ``train_risk = |X w - y|^2 / (2 n d)``;
- ``q_mean`` = mean of ``q = u^2 - v^2`` (product) or ``p_mean`` = mean of ``p = u v`` (difference):
  the conserved quantity of gradient flow that SGD noise shrinks (the effective initialisation);
- ``l1 = |w|_1 / d``; ``l1_off`` = the part of it off the true support;
- ``support_recovery``: fraction of coordinates with ``|w_i - w*_i| < spike/2`` (thresholding at
  ``spike/2`` then recovers the support and signs there).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import hdbench
from hdbench import InputError, Model, Param
from hdbench_plugins.common.dln import PARAMETRISATIONS, spike_count, initial_uv, weight


class DiagonalLinearNetwork(Model):
    name = "dln"
    description = "diagonal linear network w = u*v or u^2 - v^2, sparse or dense teacher, O(1) coordinates"
    params = {
        "parametrisation": Param("product", str, choices=PARAMETRISATIONS, doc="w = u*v or w = u^2 - v^2"),
        "rho": Param(0.1, float, low=0.0, high=1.0, doc="fraction of nonzero teacher coordinates"),
        "spike": Param(2.0, float, low=0.0, low_open=True, doc="size of the nonzero teacher coordinates"),
        "sigma": Param(0.0, float, low=0.0, doc="label noise: y = <x, w*> + sigma sqrt(d) eps"),
        "a": Param(0.5, float, low=0.0, low_open=True, doc="initial u in every coordinate (rich/lazy knob)"),
        "b": Param(None, float, optional=True,
                   doc="initial v in every coordinate (default: 0 for product, a for difference)"),
    }

    @classmethod
    def check_params(cls, p):
        if p["b"] is not None and p["parametrisation"] == "difference" and p["b"] < 0:
            raise InputError(f"model 'dln': b = {p['b']} is not allowed (expected >= 0 for the difference "
                             "parametrisation; only b^2 matters)")

    @classmethod
    def check_scenario(cls, s):
        if spike_count(s.d, s.model_params) < 1 and s.model_params["sigma"] == 0:
            raise InputError(f"model 'dln': rho = {s.model_params['rho']} is not allowed with d = {s.d} and "
                             "sigma = 0 (no teacher coordinate and no noise: nothing to learn)")

    def teacher(self, key, d, p):
        k_pos, k_sign = jax.random.split(key)
        k = spike_count(d, p)
        signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (d,)), 1.0, -1.0)
        on = jax.random.permutation(k_pos, jnp.arange(d) < k)
        return p["spike"] * signs * on

    def init(self, key, d, teacher, p):
        u0, v0 = initial_uv(p)
        return {"u": jnp.full((d,), u0), "v": jnp.full((d,), v0)}

    def sample(self, key, n, d, teacher, p):
        kx, ke = jax.random.split(key)
        X = jax.random.normal(kx, (n, d))
        return X, X @ teacher + p["sigma"] * jnp.sqrt(d) * jax.random.normal(ke, (n,))

    def loss(self, theta, x, y, p):
        return 0.5 * (jnp.dot(weight(theta["u"], theta["v"], p), x) - y) ** 2

    def observables(self, theta, teacher, data, p):
        u, v = theta["u"], theta["v"]
        w = weight(u, v, p)
        e = w - teacher
        off = teacher == 0
        out = {"risk": 0.5 * (jnp.mean(e * e) + p["sigma"] ** 2)}
        if p["parametrisation"] == "product":
            out["q_mean"] = jnp.mean(u * u - v * v)
        else:
            out["p_mean"] = jnp.mean(u * v)
        out["l1"] = jnp.mean(jnp.abs(w))
        out["l1_off"] = jnp.mean(jnp.where(off, jnp.abs(w), 0.0))
        out["support_recovery"] = jnp.mean(jnp.abs(e) < 0.5 * p["spike"])
        if data is not None:
            X, y = data
            out["train_risk"] = 0.5 * jnp.mean((X @ w - y) ** 2) / w.shape[0]
        return out

    def observable_names(self, p, finite):
        conserved = "q_mean" if p["parametrisation"] == "product" else "p_mean"
        return ("risk", conserved, "l1", "l1_off", "support_recovery") + (("train_risk",) if finite else ())

    def counted_observables(self, p, d):
        return {"support_recovery": d}

    def divergence_statistic(self, obs):
        return obs["risk"]


@hdbench.hookimpl
def hdbench_models():
    return [DiagonalLinearNetwork]
