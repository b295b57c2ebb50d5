"""Gaussian expectations of piecewise-smooth integrands (ReLU, sign, hinge kinks): Gauss-Legendre
on ``mu +- width sd``, split at the kinks, so convergence stays exponential (1-D and nested rules);
and symmetrised quasi-Monte Carlo nodes for the several-dimensional ones (``qmc_normal``). ``xp`` is numpy or
jax.numpy, so theories (float64) and model observables (JAX) use the same rule."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def _legendre(n):
    return np.polynomial.legendre.leggauss(n)


def normal_nodes(mu, sd, breaks, xp, n=10, width=10.0):
    """Nodes and weights of E over N(mu, sd^2) (``mu``, ``sd`` arrays of one shape; a new last axis
    holds the nodes). Gauss-Legendre with ``n`` nodes on each piece of ``mu +- width sd``, cut at
    ``mu + sd (-6, -3, -1, 0, 1, 3, 6)`` (so the Gaussian is resolved however wide the range) and at
    ``breaks`` (arrays broadcastable to ``mu``: the kinks of the integrand), so integrands that are
    smooth between the breaks converge exponentially."""
    x, w = _legendre(n)
    sd = xp.maximum(sd, 1e-12)
    lo, hi = mu - width * sd, mu + width * sd
    cuts = [mu + c * sd for c in (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)]
    cuts += [xp.broadcast_to(xp.clip(b, lo, hi), mu.shape) for b in breaks]
    edges = xp.sort(xp.stack([lo, *cuts, hi], axis=-1), axis=-1)            # [..., P + 1]
    a, b = edges[..., :-1, None], edges[..., 1:, None]                     # [..., P, 1]
    half, mid = (b - a) / 2, (b + a) / 2
    z = mid + half * x                                                     # [..., P, n]
    m, s = mu[..., None, None], sd[..., None, None]
    pdf = xp.exp(-0.5 * ((z - m) / s) ** 2) / (np.sqrt(2 * np.pi) * s)
    shape = z.shape[:-2] + (z.shape[-2] * z.shape[-1],)
    nodes, weights = z.reshape(shape), (half * w * pdf).reshape(shape)
    return nodes, weights / xp.sum(weights, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=16)
def qmc_normal(k, log2_n, seed=0):
    """``2^(log2_n + 1)`` standard normal nodes in ``k`` dimensions (equal weights): scrambled Sobol
    points through the inverse normal CDF, with their mirror images (``z`` and ``-z``), so odd
    moments vanish exactly and an uninformative start stays a fixed point of the rule."""
    from scipy.special import ndtri
    from scipy.stats import qmc
    z = ndtri(qmc.Sobol(k, scramble=True, seed=seed).random_base2(log2_n))
    return np.concatenate([z, -z])
