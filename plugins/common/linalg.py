"""Small dense linear algebra for model code that JAX vmaps over seeds, written with matrix
products only. jax 0.10.2 on CPU can deadlock (every thread parked in ``block_until_ready``) when a
vmapped graph runs LAPACK custom calls in parallel batches (observed here: a batched QR of the
class means in gmm-multiclass hung the test suite; XLA's ``--xla_cpu_multi_thread_eigen=false``
did not prevent it). These loops are unrolled over at most a few dozen columns."""
from __future__ import annotations

import jax.numpy as jnp


def orthonormal_columns(G):
    """Gram-Schmidt (twice, for rounding) on the columns of a tall matrix ``G`` [n, k]: for Gaussian
    ``G`` the result is a uniformly random orthonormal k-frame, like the Q of a QR factorisation."""
    cols = []
    for j in range(G.shape[1]):
        v = G[:, j]
        for _ in range(2):
            for q in cols:
                v = v - jnp.dot(q, v) * q
        cols.append(v / jnp.linalg.norm(v))
    return jnp.stack(cols, axis=1)


def cholesky_psd(B):
    """A lower-triangular ``L`` with ``L L^T = B`` for a positive semi-definite ``B`` [r, r]; a pivot
    below ``1e-7 tr B`` (a direction ``B`` does not have) gives a zero column."""
    r = B.shape[0]
    tiny = 1e-7 * jnp.trace(B) + 1e-30
    L = jnp.zeros_like(B)
    for j in range(r):
        v = B[j:, j] - L[j:, :j] @ L[j, :j]
        pivot = jnp.sqrt(jnp.maximum(v[0], tiny))
        L = L.at[j:, j].set(jnp.where(v[0] > tiny, v / pivot, 0.0))
    return L
