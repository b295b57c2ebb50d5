"""Diagonal-linear-network formulas shared by the ``dln`` model and its theories: the teacher's
spike count, the start ``(u0, v0)`` and the weight ``w(u, v)`` of each parametrisation.
"""
from __future__ import annotations

PARAMETRISATIONS = ("product", "difference")


def spike_count(d, p):
    """Number of nonzero teacher coordinates, ``round(rho d)``."""
    return int(round(p["rho"] * d))


def initial_uv(p):
    """``(u0, v0)`` of every coordinate."""
    b = p["b"]
    if b is None:
        b = 0.0 if p["parametrisation"] == "product" else p["a"]
    return p["a"], b


def weight(u, v, p):
    return u * v if p["parametrisation"] == "product" else u * u - v * v
