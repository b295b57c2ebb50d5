"""The parameter side of the DMFT for a quadratic penalty: linear and Gaussian, so ``C_theta``, ``m`` and the
response follow exactly from one lower-triangular system (docs/theory/multipass.md section 3).
"""
from __future__ import annotations


import numpy as np
from scipy.linalg import solve_triangular



RHO = 1.0            # E theta*_i^2 in DMFT units (|theta*| = 1)


def velocity_filter(T, a):
    """``Phi`` [T, T]: ``Phi(k, j) = (1 - a) a^(k - j)`` for ``j <= k``, the velocity's exponential moving
    average of the updates (``v_{k+1} = a v_k + (1 - a) u_k``, ``v_0 = 0``)."""
    k = np.arange(T)
    lag = k[:, None] - k[None, :]
    return np.where(lag >= 0, (1 - a) * a ** np.maximum(lag, 0), 0.0)


def parameter_side(RG, mu, CG, h, lam, Q0, R0, up=None, velocity=None):
    """Exact Gaussian parameter side, for a parameter of ``p`` components per coordinate (``p = 1``: a
    GLM; the hidden units of a committee) and a teacher of ``M``: from ``R_G [T, T, p, p]``,
    ``mu [T, p, M]``, ``C_G [T, T, p, p]``, the start ``Q0 = E theta0 theta0^T``, ``R0 = E theta0 theta*^T``,
    the flattened ``(C_theta [Kp, Kp], m = E theta theta*^T [Kp, M], Rt [Kp, Kp])``, index ``k p + a``,
    ``K = T + 1``; ``h``: the grid step, one number or one per step (the ridge's shrink). ``up[k]``
    [p, p] is ``R_G(k, k + 1)``, nonzero when the force of step k depends on the margin at its end (the
    implicit step): then ``theta_{k+1}`` appears on both sides and the system is not unit triangular.

    The update of step k is ``u_k = -h lam theta_k - sum_j R_G(k, j) theta_j - mu_k theta* - eta_k``.
    Without ``velocity``, ``theta_{k+1} = theta_k + u_k``; with ``velocity = a`` (heavy ball on the grid:
    ``a = exp(-kappa_s h)``), ``theta_{k+1} = theta_k + v_{k+1}``, ``v_{k+1} = a v_k + (1 - a) u_k``,
    i.e. the increments are ``Phi u`` (``velocity_filter``), and a field added to step j's update moves
    ``theta`` through ``Phi`` too (``Rt``)."""
    T, p, M = mu.shape
    K = T + 1
    eye = np.eye(p)
    F = np.zeros((T, p, K, p))                 # u = -F theta + b: the update's linear part
    F[:, :, :T, :] = (RG * np.tril(np.ones((T, T)))[:, :, None, None]).transpose(0, 2, 1, 3)
    F[np.arange(T), :, np.arange(T), :] += np.broadcast_to(np.asarray(h, float), (T,))[:, None, None] * lam * eye
    if up is not None:
        F[np.arange(T), :, np.arange(1, K), :] += up
    Phi = np.eye(T) if velocity is None else velocity_filter(T, velocity)
    F = np.einsum("kj,jaib->kaib", Phi, F)
    A = np.zeros((K, p, K, p))
    A[np.arange(K), :, np.arange(K), :] = eye
    A[np.arange(1, K), :, np.arange(T), :] -= eye
    A[1:] += F
    Minv = solve_triangular(A.reshape(K * p, K * p), np.eye(K * p), lower=True, unit_diagonal=up is None)
    b = np.zeros((K, p, K, p))                 # E[b b^T] of the right-hand side b_0 = theta0, b_{k+1} = -mu_k theta* - eta_k
    b[0, :, 0, :] = Q0
    b[0, :, 1:, :] = -np.einsum("am,kbm->akb", R0, mu)
    b[1:, :, 0, :] = b[0, :, 1:, :].transpose(1, 2, 0)
    b[1:, :, 1:, :] = RHO * np.einsum("kam,jbm->kajb", mu, mu) + CG.transpose(0, 2, 1, 3)
    bt = np.concatenate([R0[None], -RHO * mu]).reshape(K * p, M)      # E[b theta*^T]
    b = b.reshape(K * p, K * p)
    field = Minv[:, p:]                        # d theta / d (a field on step j's update)
    if velocity is not None:                   # the right-hand side's updates pass through the filter too
        P = np.eye(K)
        P[1:, 1:] = Phi
        P = np.kron(P, eye)
        b, bt, field = P @ b @ P.T, P @ bt, field @ np.kron(Phi, eye)
    C = Minv @ b @ Minv.T
    Rt = np.zeros((K * p, K * p))
    Rt[:, :T * p] = field
    return (C + C.T) / 2, Minv @ bt, np.tril(Rt, -1)


def diagonal_blocks(C, p):
    """``C[k p : (k+1) p, k p : (k+1) p]`` for each k: [K, p, p]."""
    K = len(C) // p
    return C.reshape(K, p, K, p)[np.arange(K), :, np.arange(K), :]
