"""The two factorisations the DMFT needs: unit-lower-triangular inverses in pure XLA (batched) and a
causal factor of a PSD covariance.
"""
from __future__ import annotations


import jax.numpy as jnp
import numpy as np



def unit_lower_inverse(X):
    """``(I + X)^-1`` for ``X`` strictly lower triangular, batched over leading axes (pure XLA
    matmuls by block recursion: no batched LAPACK, see linalg.py)."""
    n = X.shape[-1]
    if n <= 12:
        rows = []
        eye = jnp.eye(n, dtype=X.dtype)
        for k in range(n):
            row = jnp.broadcast_to(eye[k], X.shape[:-2] + (n,))
            if k:
                row = row - jnp.einsum("...j,...jc->...c", X[..., k, :k], jnp.stack(rows, axis=-2))
            rows.append(row)
        return jnp.stack(rows, axis=-2)
    h = n // 2
    Ai = unit_lower_inverse(X[..., :h, :h])
    Bi = unit_lower_inverse(X[..., h:, h:])
    low = -Bi @ X[..., h:, :h] @ Ai
    top = jnp.concatenate([Ai, jnp.zeros(X.shape[:-2] + (h, n - h), X.dtype)], axis=-1)
    return jnp.concatenate([top, jnp.concatenate([low, Bi], axis=-1)], axis=-2)


def psd_cholesky(C):
    """A lower factor ``L`` with ``L L^T = C`` for a PSD (possibly singular) ``C``: eigenvalues
    clipped at 0 and a 1e-12 relative jitter. Lower triangular so that ``zeta_k`` depends on the
    first ``k`` normals only (common random numbers stay causal across iterations)."""
    C = (C + C.T) / 2
    w, V = np.linalg.eigh(C)
    C = (V * np.maximum(w, 0.0)) @ V.T
    jitter = 1e-12 * max(np.trace(C) / len(C), 1e-300)
    return np.linalg.cholesky(C + jitter * np.eye(len(C)))
