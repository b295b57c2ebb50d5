"""Model ``linear``: least squares, ``y = <theta*, x> + sigma eps``, ``x ~ N(0, Sigma)``.

Loss ``l = (<theta, x> - y)^2 / 2 + (ridge/2) |theta|^2``: the objective is the mean loss plus a ridge
penalty, applied in full at every step whatever the batch (weights of a step sum to 1). Observables (exact, from the parameters):
``risk = (e^T Sigma e + sigma^2)/2`` with ``e = theta - theta*``; ``D = |e|^2``; ``m = <theta, theta*>``;
``q = |theta|^2``; ``train_risk = |X theta - y|^2 / (2n)`` on finite data (no penalty in either).
Initialisation: ``theta0 = m0 theta* + sqrt(q0 - m0^2) u``, ``u`` a uniform unit vector orthogonal to
``theta*`` (``|theta*| = 1``, uniform on the sphere).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import hdbench
from hdbench import Param

from hdbench_plugins.common.spectra import SPECTRUM_PARAMS, spectrum
from hdbench_plugins.common.linear import RIDGE, ridge_penalty, SingleIndexStart


class Linear(SingleIndexStart):
    name = "linear"
    description = "least squares y = <theta*, x> + sigma eps; any covariance spectrum"
    params = {
        "sigma": Param(0.0, float, low=0.0, doc="label-noise standard deviation"),
        "ridge": RIDGE,
        **SPECTRUM_PARAMS,
        "m0": Param(0.0, float, doc="initial overlap <theta0, theta*>"),
        "q0": Param(0.0, float, low=0.0, doc="initial squared norm |theta0|^2 (>= m0^2)"),
    }

    def sample(self, key, n, d, teacher, p):
        kx, ke = jax.random.split(key)
        X = jax.random.normal(kx, (n, d)) * jnp.sqrt(jnp.asarray(spectrum(d, p), jnp.float32))
        return X, X @ teacher + p["sigma"] * jax.random.normal(ke, (n,))

    def loss(self, theta, x, y, p):
        return 0.5 * (jnp.dot(theta, x) - y) ** 2 + ridge_penalty(theta, p)

    def observables(self, theta, teacher, data, p):
        e = theta - teacher
        lam = jnp.asarray(spectrum(theta.shape[0], p), jnp.float32)
        out = {"risk": 0.5 * (jnp.sum(lam * e * e) + p["sigma"] ** 2), "D": jnp.dot(e, e),
               "m": jnp.dot(theta, teacher), "q": jnp.dot(theta, theta)}
        if data is not None:
            X, y = data
            out["train_risk"] = 0.5 * jnp.mean((X @ theta - y) ** 2)
        return out

    def observable_names(self, p, finite):
        return ("risk", "D", "m", "q") + (("train_risk",) if finite else ())


@hdbench.hookimpl
def hdbench_models():
    return [Linear]
