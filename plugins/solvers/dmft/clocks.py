"""Per-sample clocks of the DMFT (docs/theory/multipass.md section 1): their increments on the grid,
their second moment, what a kick at step k implies about the past (the epoch clock), the jump
indices of the jump clocks, and moment-matched normals.
"""
from __future__ import annotations


import jax
import numpy as np
from scipy.linalg import solve_triangular



CLOCKS = ("flow", "gaussian", "poisson", "bernoulli", "epoch")


JUMP_CLOCKS = ("poisson", "bernoulli", "epoch")     # dZ = 0 except at a path's few jumps: sparse tangents


def epoch_cells(h, epoch):
    """Grid cells per epoch of length ``epoch``: the epoch clock needs a grid aligned with the epochs."""
    cells = int(round(epoch / h))
    if cells < 1 or abs(cells * h - epoch) > 1e-9 * epoch:
        raise ValueError(f"epoch clock: the grid step h = {h:g} does not divide the epoch {epoch:g}")
    return cells


def epoch_kicks(key, shape, cells, visit):
    """``[paths, steps]``, 1 where the epoch clock kicks: each path once per epoch of ``cells`` steps with
    probability ``visit`` (1 when every sample is visited; less when an epoch drops the remainder of
    n / B), at a uniformly random cell, independently across epochs. Stratified (a Latin hypercube over
    the epochs): each epoch visits exactly the expected share of the paths, spread evenly over its cells."""
    rng = _rng(key)
    paths, steps = shape
    epochs = -(-steps // cells)
    visited = int(round(paths * visit))
    kicks = np.zeros((paths, epochs * cells))
    for e in range(epochs):
        kicks[rng.permutation(paths)[:visited], e * cells + np.arange(visited) % cells] = 1.0
    return kicks[:, :steps]


def clock_increments(clock, key, shape, h, tau, epoch=None):
    """Increments ``dZ`` [paths, steps] on the grid of step ``h``. ``epoch`` (the epoch clock only): the
    epoch length; each path jumps by ``tau`` once per epoch with probability ``epoch / tau``
    (``epoch_kicks``)."""
    if clock == "flow":
        return np.full(shape, h)
    if clock == "epoch":
        return tau * epoch_kicks(key, shape, epoch_cells(h, epoch), epoch / tau)
    rng = _rng(key)
    if clock == "gaussian":
        return h + np.sqrt(tau * h) * rng.standard_normal(shape)
    if clock == "poisson":     # tau may vary by step (a schedule); at tau = 0 the clock is the flow's
        safe = np.maximum(tau, 1e-300)
        return np.where(tau > 0, safe * rng.poisson(np.minimum(h / safe, 1e12), shape), h)
    if clock == "bernoulli":
        return tau * (rng.random(shape) < h / tau).astype(float)
    raise ValueError(f"unknown clock {clock!r} (one of {', '.join(CLOCKS)})")


def _rng(key):
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def clock_second_moment(clock, h, tau):
    """``E dZ^2`` per step (the epoch clock: its mean, ``tau h``); ``tau`` a number or one per step."""
    return {"flow": h * h, "gaussian": h * h + tau * h, "poisson": tau * h + h * h, "bernoulli": tau * h,
            "epoch": tau * h}[clock]


def epoch_priors(dZ, cells):
    """``[paths, steps]``: the index of each path's kick earlier in the same epoch as step k (if none, the
    last index, which must be a step without a kick). Conditioned on a kick at k (the only steps whose
    force counts), a path has no other kick in k's epoch before k: the sample side takes that kick back
    out. Epochs of ``cells`` steps."""
    paths, steps = dZ.shape
    k = np.arange(steps)
    start = (k // cells) * cells
    last = np.where(dZ != 0, k, -1)
    last = np.maximum.accumulate(last, axis=1)             # the latest kick at or before k
    before = np.concatenate([np.full((paths, 1), -1), last[:, :-1]], axis=1)   # ... strictly before k
    assert not dZ[:, -1].any(), "the last step must be without a kick"
    return np.where(before >= start, before, steps - 1)


def epoch_past(K, cells=None):
    """``[K, K]``: True where step j's force is in step k's past given a kick at k: j < k (independent
    increments) or j in an earlier epoch (the epoch clock, ``cells`` steps an epoch)."""
    k = np.arange(K)
    if cells is None:
        return k[None, :] < k[:, None]
    return (k[None, :] // cells) < (k[:, None] // cells)


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
