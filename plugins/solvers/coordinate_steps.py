"""Per-coordinate normalised steps (signSGD, Adam) on fresh samples: the two constants of their limit.

Coordinate j of a batch-mean gradient is ``g = B^-1 sum_b x_bj r_b`` (``x_bj ~ N(0, lam_j)``,
residual ``r_b`` of variance ``s^2 = 2 risk``). In units of its noise scale ``sqrt(lam_j) s / sqrt(B)``
it is ``w = A^(1/2) xi + sqrt(B) A eps`` to first order in ``eps = sqrt(lam_j) e_j / s`` (``e_j`` the
coordinate's error, ``A = chi^2_B / B`` the batch's mean ``z^2``, ``xi ~ N(0, 1)``): the residual's
own share ``z e_j sqrt(lam_j)`` makes the mean. signSGD's step ``sign(g)`` and Adam's ``m/sqrt(v)``
do not depend on the scale, so the step ``u`` is a function of the ``w`` history alone, and two
numbers fix the limit (the state moves O(1/d) over the O(1/(1 - b2)) steps the step remembers):

- ``c = dE[u]/d eps`` at ``eps = 0``, the drift: ``E[u] = c sqrt(lam_j) e_j / s``;
- ``n`` = the long-run variance ``sum_k Cov(u_0, u_k)`` at ``eps = 0``: the noise that adds up in
  ``e_j``. Writing ``sum_k u_k = sum_i w_i S_i`` with ``S_i = sum_l (1 - b1) b1^l / sqrt(v_{i+l})``
  (the i-th gradient's share of every later step), the terms are uncorrelated (flipping ``w_i``'s
  sign changes no ``v``), so ``n = E[(w S)^2]``.

With ``d/B`` steps of ``gamma B/d`` per unit time, each coordinate obeys
``d e_j = -gamma c sqrt(lam_j) e_j / s dt`` plus noise of variance ``gamma^2 B n / d`` per unit time.

signSGD: ``c = 2 E[sqrt(A)] / sqrt(2 pi) sqrt(B) = (2/sqrt(pi)) Gamma((B+1)/2) / Gamma(B/2)`` (the
sign of ``w`` given ``A`` is a probit in ``eps``; ``2/pi`` at B = 1) and ``n = 1``, exactly. Adam:
the two expectations over the stationary process of ``optax.adam``'s moments ``m``, ``v`` (bias
correction only shapes its first O(1/(1 - b2)) steps, O(1/d) in time), by Monte Carlo with the
pathwise derivative for ``c``; a fixed seed makes them deterministic, and their standard errors are
returned to be checked against.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import lfilter
from scipy.special import gammaln

CHUNK = 32   # chains per batch of the Monte Carlo


def sign_constants(batch: int) -> tuple[float, float]:
    """``(c, n)`` of ``sign(g)`` for a batch of ``batch`` samples (exact)."""
    return 2 / np.sqrt(np.pi) * np.exp(gammaln((batch + 1) / 2) - gammaln(batch / 2)), 1.0


def _ema(x, b, start):
    """``y_k = b y_{k-1} + (1 - b) x_k`` along axis 1, from ``y_{-1} = start`` (one per row)."""
    return lfilter([1 - b], [1, -b], x, axis=1, zi=(b * start)[:, None])[0]


@lru_cache(maxsize=64)
def adam_constants(b1: float, b2: float, batch: int, chains: int = 256, steps: int = 20_000,
                   seed: int = 0) -> tuple[float, float, float, float]:
    """``(c, n, c_se, n_se)`` of Adam's step ``m/sqrt(v)`` (module docstring), over ``chains``
    stationary runs of ``steps`` steps each (standard errors across chains)."""
    rng = np.random.default_rng(seed)
    burn = int(min(5 / (1 - b2), 50_000))          # v starts at its mean; this lets its spread settle
    tail = int(np.ceil(40 / (1 - b1))) if b1 > 0 else 1     # S_i needs the steps after i
    keep = slice(burn, burn + steps)
    c_chain, n_chain = [], []
    for _ in range(0, chains, CHUNK):                # chunks bound the memory (~25 MB per array)
        shape = (CHUNK, burn + steps + tail)
        A = rng.chisquare(batch, size=shape) / batch
        w = np.sqrt(A) * rng.standard_normal(shape)
        h = np.sqrt(batch) * A                         # dw/d eps
        ones, zeros = np.ones(CHUNK), np.zeros(CHUNK)
        m, v = _ema(w, b1, zeros), _ema(w * w, b2, ones)
        dm, dv = _ema(h, b1, zeros), _ema(2 * w * h, b2, zeros)
        root = np.sqrt(v)
        du = dm / root - 0.5 * m * dv / (v * root)
        # S_i = (1 - b1) sum_l b1^l / sqrt(v_{i+l}): the same filter run backwards in time
        S = _ema((1 / root)[:, ::-1], b1, zeros)[:, ::-1]
        c_chain.append(du[:, keep].mean(1))
        n_chain.append(((w * S)[:, keep] ** 2).mean(1))
    c_chain, n_chain = np.concatenate(c_chain), np.concatenate(n_chain)
    se = lambda x: float(x.std(ddof=1) / np.sqrt(len(x)))
    return float(c_chain.mean()), float(n_chain.mean()), se(c_chain), se(n_chain)


def step_constants(s) -> tuple[float, float]:
    """``(c, n)`` of ``s``'s per-coordinate step (``sign-sgd`` or ``adam``)."""
    p = s.dynamics_params
    if s.dynamics == "sign-sgd":
        return sign_constants(p["batch_size"])
    c, n, _, _ = adam_constants(float(p["b1"]), float(p["b2"]), int(p["batch_size"]))
    return c, n
