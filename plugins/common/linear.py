"""Single-index start shared by the linear, glm, gmm and spiked-tensor models: a unit teacher,
a student with prescribed overlaps ``m0 = <theta0, theta*>``, ``q0 = |theta0|^2``, and the ridge penalty.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from hdbench import InputError, Model, Param

from hdbench_plugins.common.spectra import check_spectrum


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
