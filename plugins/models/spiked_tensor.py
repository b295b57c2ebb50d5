"""Model ``spiked-tensor``: Ben Arous-Gheissari-Jagannath's spiked tensor PCA (k = 2: spiked matrix).

Observation ``Y = lambda v^{(x)k} + W`` with a fresh noise tensor each step (online), loss
``||Y - x^{(x)k}||^2``, ``x`` unconstrained, ``|v| = 1``. Its stochastic gradient is
``-2k lambda <v,x>^{k-1} v - 2k W[x^{k-1}] + 2k |x|^{2k-2} x``; with BGJ's symmetric noise
normalisation ``W[x^{k-1}] ~ N(0, |x|^{2(k-1)}/k I_d)`` (up to a rank-one part that vanishes as
d -> infinity). One sample is the pair ``(v, z)``, ``z ~ N(0, I_d)`` (all the observation ``Y``
contributes to the gradient), and the per-sample loss
``-2 lambda <v,x>^k + |x|^{2k} - 2 sqrt(k) stop_grad(|x|^{k-1}) <z, x>`` has exactly that gradient,
so the engine's online SGD with per-sample step ``gamma/d`` is BGJ's SGD with ``delta = gamma/d``.

Observables: ``m = <x, v>``, ``r2 = |x|^2 - m^2``, ``q = |x|^2`` and
``risk = |x|^{2k} - 2 lambda m^k`` (the population loss up to the constant ``E||Y||^2``).
Initialisation ``x0 = m0 v + sqrt(r2_0) u``, ``u`` uniform on the unit sphere orthogonal to ``v``
(``init = "overlaps"``), or uniform on the sphere of radius ``sqrt(m0^2 + r2_0)`` (``"random"``:
``m = O(d^-1/2)``, BGJ's uninformative start).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import hdbench
from hdbench import Model, Param

from hdbench_plugins.common.linear import init_from_overlaps, unit_teacher


class SpikedTensor(Model):
    name = "spiked-tensor"
    description = "spiked tensor/matrix PCA (BGJ), online, loss ||Y - x^(x)k||^2"
    params = {
        "k": Param(2, int, low=2, high=6, doc="tensor order (2 = spiked matrix)"),
        "lam": Param(1.2, float, low=0.0, doc="signal strength lambda"),
        "m0": Param(0.5, float, doc="initial <x, v>"),
        "r2_0": Param(0.5, float, low=0.0, doc="initial |x|^2 - <x, v>^2"),
        "init": Param("overlaps", str, choices=("overlaps", "random"),
                      doc="overlaps: exactly (m0, r2_0); random: uniform on the sphere |x0|^2 = m0^2 + r2_0"),
    }

    def teacher(self, key, d, p):
        return unit_teacher(key, d)

    def init(self, key, d, teacher, p):
        q0 = p["m0"] ** 2 + p["r2_0"]
        if p["init"] == "random":
            u = jax.random.normal(key, (d,))
            return jnp.sqrt(q0) * u / jnp.linalg.norm(u)
        return init_from_overlaps(key, d, teacher, p["m0"], q0)

    def sample(self, key, n, d, teacher, p):
        z = jax.random.normal(key, (n, d))
        return jnp.stack([jnp.broadcast_to(teacher, (n, d)), z], axis=1), jnp.zeros((n,))

    def loss(self, x, sample, y, p):
        v, z = sample
        k, sq = p["k"], jnp.dot(x, x)
        noise_scale = jax.lax.stop_gradient(sq ** ((k - 1) / 2))
        return -2 * p["lam"] * jnp.dot(x, v) ** k + sq**k - 2 * jnp.sqrt(k) * noise_scale * jnp.dot(z, x)

    def observables(self, x, teacher, data, p):
        m, q = jnp.dot(x, teacher), jnp.dot(x, x)
        return {"m": m, "r2": q - m * m, "q": q, "risk": q ** p["k"] - 2 * p["lam"] * m ** p["k"]}

    def observable_names(self, p, finite):
        return ("m", "r2", "q", "risk")

    def headline_observables(self, p, finite):
        return ("m", "r2")       # q = m^2 + r2; a deterministic theory's risk follows from them

    @classmethod
    def check_scenario(cls, s):
        if s.alpha is not None:
            raise hdbench.InputError("model 'spiked-tensor': alpha is not allowed (a fresh noise tensor each step)")


@hdbench.hookimpl
def hdbench_models():
    return [SpikedTensor]
