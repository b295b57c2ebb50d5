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
from hdbench import InputError, Model, Param

from .spectra import SPECTRUM_PARAMS, check_spectrum, spectrum


RIDGE = Param(0.0, float, low=0.0, doc="ridge penalty: objective = mean loss + (ridge/2)|theta|^2 "
              "(DMFT papers' lambda = alpha * ridge)")


def ridge_penalty(theta, p):
    return 0.5 * p["ridge"] * jnp.dot(theta, theta)


def unit_teacher(key, d):
    v = jax.random.normal(key, (d,))
    return v / jnp.linalg.norm(v)


def init_from_overlaps(key, d, theta_star, m0, q0):
    """``m0 theta* + sqrt(q0 - m0^2) u`` with ``u`` uniform on the unit sphere orthogonal to ``theta*``."""
    u = jax.random.normal(key, (d,))
    u = u - jnp.dot(u, theta_star) * theta_star
    u = u / jnp.linalg.norm(u)
    return m0 * theta_star + jnp.sqrt(jnp.maximum(q0 - m0**2, 0.0)) * u


class SingleIndexStart(Model):
    """Teacher ``theta*`` uniform on the unit sphere; student start with overlaps ``m0``, ``q0``."""

    @classmethod
    def check_params(cls, p):
        check_spectrum(p)
        if p["q0"] < p["m0"] ** 2:
            raise InputError(f"model '{cls.name}': q0 = {p['q0']} is not allowed with m0 = {p['m0']} "
                             f"(need q0 >= m0^2 = {p['m0'] ** 2:g})")

    def teacher(self, key, d, p):
        return unit_teacher(key, d)

    def init(self, key, d, teacher, p):
        return init_from_overlaps(key, d, teacher, p["m0"], p["q0"])


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
