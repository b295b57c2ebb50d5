"""Per-sample clocks of the DMFT (docs/theory/multipass.md section 1): their increments on the grid,
their second moment, the jump indices of the jump clocks, and moment-matched normals.
"""
from __future__ import annotations


import jax
import numpy as np
from scipy.linalg import solve_triangular



CLOCKS = ("flow", "gaussian", "poisson", "bernoulli")


JUMP_CLOCKS = ("poisson", "bernoulli")     # dZ = 0 except at a path's few jumps: sparse tangents


def clock_increments(clock, key, shape, h, tau):
    if clock == "flow":
        return np.full(shape, h)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    if clock == "gaussian":
        return h + np.sqrt(tau * h) * rng.standard_normal(shape)
    if clock == "poisson":
        return tau * rng.poisson(h / tau, shape).astype(float)
    if clock == "bernoulli":
        return tau * (rng.random(shape) < h / tau).astype(float)
    raise ValueError(f"unknown clock {clock!r} (one of {', '.join(CLOCKS)})")


def clock_second_moment(clock, h, tau):
    """``E dZ^2`` per step."""
    return {"flow": h * h, "gaussian": h * h + tau * h, "poisson": tau * h + h * h, "bernoulli": tau * h}[clock]


def moment_matched(Z):
    """The normals ``Z`` [N, n] made to have sample mean 0 and sample covariance exactly I (a triangular
    map: column k mixes columns <= k only, so the noise stays causal).

    Why: the solver's answer is a nonlinear function of the sample second moments of the normals (the
    fixed point compounds them over the time steps), so an unmatched sample biases it by O(1/N),
    which averaging replicas does not remove (docs/validation/dmft.md). Matched moments make a Gaussian
    (linear-model) side exact and leave an O(1/N)
    bias only from the higher moments. Left as drawn when N is too small to estimate the covariance."""
    N, n = Z.shape
    if N < 4 * n:
        return Z
    Z = Z - Z.mean(0)
    L = np.linalg.cholesky(Z.T @ Z / N)
    return solve_triangular(L, Z.T, lower=True).T


def jump_indices(dZ):
    """Sorted grid indices of each path's jumps, padded with the last index (where ``dZ = 0``) to a
    width rounded up to a multiple of 8 (few distinct shapes, few compilations): ``[N, width]``."""
    K = dZ.shape[1]
    jumps = dZ != 0
    counts = jumps.sum(1)
    width = max(8, int(np.ceil(counts.max() / 8)) * 8)
    order = np.argsort(~jumps, axis=1, kind="stable")[:, :width]
    if order.shape[1] < width:
        order = np.concatenate([order, np.full((len(dZ), width - order.shape[1]), K - 1)], axis=1)
    return np.where(np.arange(width) < counts[:, None], order, K - 1)
