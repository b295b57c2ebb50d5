"""One discrete-time DMFT solver for multi-pass learning on n = alpha d samples (docs/theory/multipass.md s.2-3).

Units. Internally DMFT units (docs/theory/multipass.md section 0): ``X`` with ``N(0, 1/d)`` entries, parameter
coordinates O(1) (``E theta*_i^2 = rho = 1``), time ``s = gamma t / alpha``, temperature ``tau = gamma``,
ridge ``lambda = alpha * ridge``. Outputs are converted back: ``q = C_theta(s, s)``, ``m = m(s)``, and
the model's exact population functions of ``(m, q)`` give ``risk``, ``error_rate``, ``gen_error``.

Clocks. Each sample moves on its own clock ``Z``; on the grid ``s_k = k h`` its increments are
``flow``: ``h`` (gradient flow); ``gaussian``: ``h + sqrt(tau h) xi`` (SGF / SME); ``poisson``:
``tau Poisson(h / tau)`` (multi-pass SGD with per-step batch fraction ``b = h / tau`` drawn with
replacement: exact for a finite-step simulation at learning rate ``h``, and the B = o(n) limit as
h -> 0); ``bernoulli``: ``tau Bernoulli(h / tau)`` (batches drawn without replacement, the scheme of
Gerbelot et al.).

Equations, ``k < T`` (``T`` steps), ``G_k = l'(r_k, y) dZ_k``:

    sample side:     r_k = zeta_k - sum_{j<k} Rt(k, j) G_j,  (zeta, r*) Gaussian, Cov zeta = C_theta,
                     Cov(zeta, r*) = m, y = label(r*, eps);
    parameter side:  theta_{k+1} = (1 - h lambda) theta_k - sum_{j<=k} R_G(k, j) theta_j - mu_k theta* - eta_k,
                     eta ~ N(0, C_G);
    closure:         C_G = alpha E[G G^T],  R_G(k, j) = alpha E[dG_k / dzeta_j],  mu_k = alpha E[dG_k / dr*],
                     C_theta = E[theta theta^T], m = E[theta theta*], Rt(k, j) = E[d theta_k / d H_j].

Committees (``CommitteeLoss``): the parameter of one coordinate is the vector of its K first-layer
weights, the margin ``r_k`` a K-vector, the teacher margin ``r*`` an M-vector; every kernel above becomes
a K x K block (``mu_k``: K x M) and the same equations hold blockwise (``parameter_side`` is written in
blocks; a GLM has blocks of 1).

Because the penalty is quadratic, the parameter side is linear and Gaussian: ``C_theta``, ``m`` and
``Rt`` follow exactly from one unit lower-triangular system (no particles, no noise). The sample side
is Monte Carlo over ``N`` paths (vmapped, in chunks, jitted once per shape), with
- Rao-Blackwellisation over the current clock increment (``dZ_k`` is independent of ``r_k``):
  ``C_G(k, j) = alpha h E[l'_k l'_j dZ_j]`` (k > j), ``C_G(k, k) = alpha E[dZ^2] E[l'_k^2]``,
  ``R_G(k, j) = alpha h E[l''_k J_kj]``;
- forward-mode tangents ``J = dr / dzeta = (I + Rt D)^-1``, ``D = diag(l''_j dZ_j)``, in closed form per
  path: a blocked triangular inverse (O(T^3)) for the dense clocks, Woodbury over the path's jumps
  (O(T m^2) for m jumps) for the jump clocks, on ``tangent_paths`` of the paths;
- ``mu`` by Stein's lemma in ``r*`` with the path ``zeta - m r*`` held fixed:
  ``mu_k = alpha h E[l'_k r*] - sum_j R_G(k, j) m_j`` (valid for discontinuous labels such as sign);
- for square loss on a linear teacher the sample side is exact given the clocks
  (``r - y = L (zeta - y)``, ``L = (I + Rt D_Z)^-1``): only the clocks are sampled, and for gradient
  flow the whole solve is deterministic;
- the normals ``(r*, eps, xi)`` moment-matched (sample mean 0, sample covariance I): removes the O(1/N)
  bias that the fixed point's nonlinear dependence on their sample moments causes;
- for gradient flow a linearly implicit margin step (``_glm_side``), stable where the explicit one
  needs ``h l'' < 2`` (phase retrieval has unbounded labels and ``l'' ~ 4 y``);
- common random numbers across iterations, damping, a convergence test at the Monte-Carlo floor, then
  ``average`` iterations with fresh random numbers, whose mean is the answer. (The predictors run
  independent replicas of the whole solve; their spread is the reported uncertainty.)
- a path whose margin diverges is cut at its first bad step; the prediction is +inf from the earliest.
``solve`` returns the grid solution; the predictors (dmft_predictors.py) extrapolate over grids (Richardson)
to remove the O(h), O(h^2) errors of the explicit scheme.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import solve_triangular

from hdbench_plugins.solvers.dmft_scaffold import iterate

RHO = 1.0            # E theta*_i^2 in DMFT units (|theta*| = 1)
CHUNK = 1000         # Monte-Carlo paths per vmapped chunk (GLM sample side)
BLOWUP = 1e3         # |margin| beyond this (margins are O(1)): the path has diverged
SQUARE_CHUNK = 250   # clock paths per chunk of the square-loss side (memory O(chunk T^2))


# -- clocks ------------------------------------------------------------------------------------
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


# -- linear algebra ----------------------------------------------------------------------------
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


# -- parameter side ----------------------------------------------------------------------------
def parameter_side(RG, mu, CG, h, lam, Q0, R0, up=None):
    """Exact Gaussian parameter side, for a parameter of ``p`` components per coordinate (``p = 1``: a
    GLM; the hidden units of a committee) and a teacher of ``M``: from ``R_G [T, T, p, p]``,
    ``mu [T, p, M]``, ``C_G [T, T, p, p]``, the start ``Q0 = E theta0 theta0^T``, ``R0 = E theta0 theta*^T``,
    the flattened ``(C_theta [Kp, Kp], m = E theta theta*^T [Kp, M], Rt [Kp, Kp])``, index ``k p + a``,
    ``K = T + 1``. ``up[k]`` [p, p] is ``R_G(k, k + 1)``, nonzero when the force of step k depends on the
    margin at its end (the implicit step): then ``theta_{k+1}`` appears on both sides and the system is
    not unit triangular."""
    T, p, M = mu.shape
    K = T + 1
    eye = np.eye(p)
    A = np.zeros((K, p, K, p))
    A[1:, :, :T, :] = (RG * np.tril(np.ones((T, T)))[:, :, None, None]).transpose(0, 2, 1, 3)
    A[np.arange(K), :, np.arange(K), :] = eye
    A[np.arange(1, K), :, np.arange(T), :] -= (1.0 - h * lam) * eye
    if up is not None:
        A[np.arange(1, K), :, np.arange(1, K), :] += up
    Minv = solve_triangular(A.reshape(K * p, K * p), np.eye(K * p), lower=True, unit_diagonal=up is None)
    b = np.zeros((K, p, K, p))                 # E[b b^T] of the right-hand side b_0 = theta0, b_{k+1} = -mu_k theta* - eta_k
    b[0, :, 0, :] = Q0
    b[0, :, 1:, :] = -np.einsum("am,kbm->akb", R0, mu)
    b[1:, :, 0, :] = b[0, :, 1:, :].transpose(1, 2, 0)
    b[1:, :, 1:, :] = RHO * np.einsum("kam,jbm->kajb", mu, mu) + CG.transpose(0, 2, 1, 3)
    bt = np.concatenate([R0[None], -RHO * mu]).reshape(K * p, M)      # E[b theta*^T]
    C = Minv @ b.reshape(K * p, K * p) @ Minv.T
    Rt = np.zeros((K * p, K * p))
    Rt[:, :T * p] = Minv[:, p:]
    return (C + C.T) / 2, Minv @ bt, np.tril(Rt, -1)


def diagonal_blocks(C, p):
    """``C[k p : (k+1) p, k p : (k+1) p]`` for each k: [K, p, p]."""
    K = len(C) // p
    return C.reshape(K, p, K, p)[np.arange(K), :, np.arange(K), :]


# -- sample sides ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SquareLinear:
    """Square loss on a linear teacher ``y = r* + sigma eps``: exact given the clocks."""
    sigma: float

    exact_paths = True


@dataclasses.dataclass(frozen=True)
class GlmLoss:
    """A single-index model: ``loss(f(r), y)``, ``y = label(r*) (+ sigma eps)``, from glm.py."""
    link: str
    activation: str
    loss: str
    sigma: float

    exact_paths = False


@dataclasses.dataclass(frozen=True)
class CommitteeLoss:
    """The soft committee machine of committee.py: output ``v sum_a g(r_a)`` over ``hidden`` margins,
    square loss, teacher ``y = A sum_n g(r*_n) + sigma eps`` over ``teachers`` orthonormal units, second
    layer fixed. The parameter of one coordinate is the vector of its ``hidden`` first-layer weights."""
    hidden: int
    teachers: int
    activation: str
    A: float
    v: float
    sigma: float

    exact_paths = False


def _cut_diverged(r, dz):
    """Margins ``r`` [c, K(, p)] and clock increments ``dz`` [c, K] zeroed from each path's first step
    with a non-finite or beyond-``BLOWUP`` margin, and that step [c] (``K`` if none)."""
    K = dz.shape[1]
    bad = ~jnp.isfinite(r) | (jnp.abs(r) > BLOWUP)
    bad = bad.reshape(bad.shape[:2] + (-1,)).any(2)
    first = jnp.where(bad.any(1), jnp.argmax(bad, axis=1), K)
    alive = jnp.arange(K)[None, :] < first[:, None]
    return jnp.where(alive.reshape(alive.shape + (1,) * (r.ndim - 2)), r, 0.0), jnp.where(alive, dz, 0.0), first


def _chunked(arr, chunks):
    return arr.reshape((chunks, -1) + arr.shape[1:])


@functools.lru_cache(maxsize=32)
def _square_side(K, chunks):
    """Jitted square-loss sample side for ``K`` grid points: (S, Rt, dZ [N, K]) ->
    sums of L, M_kj dZ_j, diag M over paths (``M = L S L^T``)."""
    T = K - 1

    @jax.jit
    def run(consts, S, Rt, dZ):
        alpha, h, m2 = consts[0], consts[1], consts[2]

        def body(acc, dz):
            L = unit_lower_inverse(Rt[None] * dz[:, None, :])
            Msym = L @ S @ jnp.swapaxes(L, 1, 2)
            diag = jnp.diagonal(Msym, axis1=1, axis2=2)
            return (acc[0] + L.sum(0), acc[1] + (Msym * dz[:, None, :]).sum(0), acc[2] + diag.sum(0)), None
        zero = (jnp.zeros((K, K)), jnp.zeros((K, K)), jnp.zeros(K))
        sums, _ = jax.lax.scan(body, zero, _chunked(dZ, chunks))
        N = dZ.shape[0]
        Lm, Md, dg = (x / N for x in sums)
        RG = alpha * h * Lm[:T, :T]
        mu = -RG.sum(1)
        CG = jnp.tril(alpha * h * Md[:T, :T], -1)
        CG = CG + CG.T + jnp.diag(alpha * m2 * dg[:T])
        return RG, mu, CG, dg / 2, jnp.zeros(T)
    return run


def _square_flow_side(consts, S, Rt, dZ):
    """The square-loss side with deterministic clocks: one path, so numpy (no compilation)."""
    alpha, h, m2 = (float(x) for x in consts)
    K = len(S)
    T = K - 1
    L = solve_triangular(np.eye(K) + Rt * np.asarray(dZ)[0][None, :], np.eye(K), lower=True, unit_diagonal=True)
    M = L @ np.asarray(S) @ L.T
    RG = alpha * h * L[:T, :T]
    CG = np.tril(alpha * h * M[:T, :T] * np.asarray(dZ)[0][None, :T], -1)
    CG = CG + CG.T + np.diag(alpha * m2 * np.diag(M)[:T])
    return RG, -RG.sum(1), CG, np.diag(M) / 2, np.zeros(T)


def square_side_moments(consts, S, Rt):
    """The square-loss side for any clock with independent increments, in expectation, exactly: the same
    outputs as ``_square_side`` with infinitely many paths, from ``E dZ = h`` and ``E dZ^2 = m2`` alone.

    Why it is exact: the margins ``r = (I + Rt D)^-1 zeta`` (``D = diag(dZ)``, ``Rt`` strictly lower) are a
    sum of chains ``Rt(k, i1) dZ_i1 Rt(i1, i2) dZ_i2 ...`` over strictly decreasing indices, so no increment
    appears twice in one chain and ``E L = (I + h Rt)^-1``; a product of two chains (the second moments)
    has each increment at most squared. With ``A = E r r^T`` and ``B(j, l) = E dZ_j r_j r_l`` (``j < l``;
    ``= h A(j, l)`` for ``j >= l``, as ``dZ_j`` is independent of ``r_j`` and of every earlier margin), row
    by row:
    ``B(j, k) = h E r_j zeta_k - sum_{i<k} Rt(k, i) E dZ_j dZ_i r_j r_i`` (that expectation is
    ``m2 A(j, j)`` at ``i = j``, else ``h B(min, max)``) and ``A(k, l) = E zeta_k r_l - sum_{j<k} Rt(k, j)
    E dZ_j r_j r_l``. O(K^3) once, where the Monte-Carlo side costs O(K^3) a path and, under SGF, is
    heavy-tailed (each margin a geometric Brownian motion whose second moment a few paths carry)."""
    alpha, h, m2 = (float(x) for x in consts)
    S, Rt = np.asarray(S, float), np.asarray(Rt, float)
    K = len(S)
    T = K - 1
    Lbar = solve_triangular(np.eye(K) + h * Rt, np.eye(K), lower=True, unit_diagonal=True)
    Zr = S @ Lbar.T                       # Zr[k, l] = E zeta_k r_l
    A = np.zeros((K, K))
    E = np.zeros((K, K))                  # E[j, l] = E dZ_j r_j r_l: h A(j, l) for j >= l, B(j, l) above
    Q = np.zeros((K, K))                  # Q[j, i] = E dZ_j dZ_i r_j r_i
    for k in range(K):
        if k:
            b = h * Zr[k, :k] - Q[:k, :k] @ Rt[k, :k]
            E[:k, k] = b
            Q[:k, k] = Q[k, :k] = h * b
        row = Zr[k, :k + 1] - Rt[k, :k] @ E[:k, :k + 1]
        A[k, :k + 1] = A[:k + 1, k] = row
        E[k, :k + 1] = h * row
        Q[k, k] = m2 * row[k]
    RG = alpha * h * Lbar[:T, :T]
    CG = np.tril(alpha * h * E[:T, :T].T, -1)
    CG = CG + CG.T + np.diag(alpha * m2 * np.diag(A)[:T])
    return RG, -RG.sum(1), CG, np.diag(A) / 2, np.zeros(T)


@functools.lru_cache(maxsize=32)
def _glm_side(spec, K, chunks, tangents, width=None, implicit=False):
    """Jitted Monte-Carlo sample side of a GLM: (Lperp, m, Rt, xi [N, K], rstar [N], eps [N], dZ [N, K],
    jumps) -> (R_G, mu, C_G, train loss, R_G(k, k + 1)); the first ``tangents`` paths of each chunk carry
    the tangents. With ``width`` (jump clocks) the tangents use Woodbury over each path's jump indices
    ``jumps`` [N, width] (O(K m^2) per path); without, a dense triangular inverse (O(K^3)).

    ``implicit``: the force of step k is linearly implicit in the margin,
    ``G_k = [l'(r_k) + l''_+(r_k) (r_{k+1} - r_k)] dZ_k`` with ``l''_+ = max(l'', 0)``: the DMFT of
    gradient descent with that (Rosenbrock-Euler) step, stable for any ``h`` on the convex part of the
    loss where the explicit step needs ``h l'' < 2`` (phase retrieval: ``l'' ~ 4 y``, unbounded labels).
    Then ``G_k`` depends on ``zeta_{k+1}`` too, and ``R_G`` gains the entry ``R_G(k, k + 1)``."""
    from hdbench_plugins.common.glm import activation, label, loss_value
    T = K - 1

    def loss(r, y):
        return loss_value(spec.loss, activation(spec.activation, r, jnp), y, jnp)

    def stiffness1(r, y):
        return jnp.maximum(jax.grad(jax.grad(loss))(r, y), 0.0) if implicit else jnp.zeros_like(r)

    def force1(r, r_next, y):
        """The force of a step from margin ``r`` to ``r_next`` (explicit: ``l'(r)``)."""
        return jax.grad(loss)(r, y) + stiffness1(r, y) * (r_next - r)

    dl = jnp.vectorize(jax.grad(loss))
    stiffness = jnp.vectorize(stiffness1)
    force = jnp.vectorize(force1)
    dforce = jnp.vectorize(jax.grad(force1))                  # d force / d r (the start of the step)

    def labels(rs, ep):
        if spec.link == "sign":
            return jnp.where(rs + spec.sigma * ep >= 0, 1.0, -1.0)
        return label(rs, {"link": spec.link}, jnp) + spec.sigma * ep

    @jax.jit
    def run(consts, Lperp, m, Rt, xi, rstar, eps, dZ, jumps):
        alpha, h, m2 = consts[0], consts[1], consts[2]

        def body(acc, inp):
            xi_c, rs, ep, dz, J = inp
            zeta = rs[:, None] * m[None, :] / RHO + xi_c @ Lperp.T          # [c, K]
            y = labels(rs, ep)

            def step(carry, k):
                # r_k = zeta_k - sum_{j<k} Rt(k, j) G_j, where G_{k-1} may depend on r_k itself
                # (linearly: solved in closed form); k = 0 reads index -1 = K - 1, where Rt and dZ are 0
                g_hist, r_prev = carry
                c = Rt[k, k - 1] * dz[:, k - 1]
                a = stiffness(r_prev, y)
                r_k = (zeta[:, k] - g_hist @ Rt[k] - c * (dl(r_prev, y) - a * r_prev)) / (1 + c * a)
                g_hist = g_hist.at[:, (k - 1) % K].set(force(r_prev, r_k, y) * dz[:, k - 1])
                return (g_hist, r_k), r_k
            _, r = jax.lax.scan(step, (jnp.zeros_like(zeta), jnp.zeros_like(rs)), jnp.arange(K))
            r = r.T                                                           # [c, K]
            # a path that diverges (phase retrieval's large labels) is cut at its first bad step, so it
            # cannot poison the others; the earliest such step over all paths is returned (one earlier
            # for the implicit scheme, whose force at k - 1 already depends on r_k)
            r, dz, first = _cut_diverged(r, dz)
            r_next = jnp.concatenate([r[:, 1:], r[:, -1:]], axis=1)
            P, H2 = force(r, r_next, y[:, None]), dforce(r, r_next, y[:, None])
            if width is None:
                # (I + Rt D1 + Rt D2 S) dr = dzeta, S the shift to the next step: lower triangular with
                # diagonal e = 1 + Rt(k, k-1) D2_{k-1} (1 for the explicit scheme, D2 = 0)
                X = Rt[None] * (H2 * dz)[:tangents, None, :]
                if implicit:
                    D2 = (stiffness(r, y[:, None]) * dz)[:tangents]
                    X = X.at[:, :, 1:].add(Rt[None, :, :-1] * D2[:, None, :-1])
                    e = 1 + jnp.diagonal(X, axis1=1, axis2=2)
                    J = unit_lower_inverse(jnp.tril(X, -1) / e[:, :, None]) / e[:, None, :]
                    J_next = jnp.concatenate([J[:, 1:], jnp.zeros_like(J[:, :1])], axis=1)
                    tangent = (jnp.einsum("nk,nkj->kj", H2[:tangents], J)
                               + jnp.einsum("nk,nkj->kj", stiffness(r, y[:, None])[:tangents], J_next))
                else:
                    tangent = jnp.einsum("nk,nkj->kj", H2[:tangents], unit_lower_inverse(X))
            else:
                Jt = J[:tangents]
                Ds = jnp.take_along_axis((H2 * dz)[:tangents], Jt, axis=1)
                W = _woodbury(Rt, Jt, Ds)
                tangent = jnp.diag(H2[:tangents].sum(0)) - _scatter_columns(H2[:tangents, :, None] * W, Jt, K)
            acc = (acc[0] + tangent,
                   acc[1] + jnp.einsum("nk,nj->kj", P, P * dz),
                   acc[2] + (P * P).sum(0),
                   acc[3] + (P * rs[:, None]).sum(0),
                   acc[4] + loss(r, y[:, None]).sum(0),
                   jnp.minimum(acc[5], jnp.where(first < K, first - (1 if implicit else 0), K).min()))
            return acc, None
        zero = (jnp.zeros((K, K)), jnp.zeros((K, K)), jnp.zeros(K), jnp.zeros(K), jnp.zeros(K), jnp.asarray(K))
        inputs = tuple(_chunked(a, chunks) for a in (xi, rstar, eps, dZ, jumps))
        sums, _ = jax.lax.scan(body, zero, inputs)
        N = xi.shape[0]
        Hj, PP, P2, Pr, train = (x / N for x in sums[:5])
        Hj = Hj * N / (chunks * tangents)
        RG = alpha * h * jnp.tril(Hj[:T, :T])
        up = alpha * h * jnp.diagonal(Hj, 1)                       # R_G(k, k + 1), 0 unless implicit
        mu = alpha * h * Pr[:T] / RHO - (RG @ m[:T] + up * m[1:]) / RHO
        CG = jnp.tril(alpha * h * PP[:T, :T], -1)
        CG = CG + CG.T + jnp.diag(alpha * m2 * P2[:T])
        return RG, mu, CG, jnp.where(jnp.arange(K) < sums[5], train, jnp.inf), up
    return run


@functools.lru_cache(maxsize=32)
def _committee_side(spec, K, chunks, tangents):
    """Jitted Monte-Carlo sample side of a committee: the GLM side (``_glm_side``, explicit step, dense
    tangents) with vector margins ``r_k`` [p], ``p = spec.hidden``. Inputs: ``Lperp`` [Kp, Kp],
    ``m`` [Kp, M], ``Rt`` [Kp, Kp] (index ``k p + a``), ``xi`` [N, Kp], ``rstar`` [N, M], ``eps`` [N],
    ``dZ`` [N, K]; outputs as ``parameter_side`` takes them: ``R_G [T, T, p, p]``, ``mu [T, p, M]``,
    ``C_G [T, T, p, p]``, the train loss [K], and zeros for ``R_G(k, k + 1)``."""
    from hdbench_plugins.common.committee import g
    T, p = K - 1, spec.hidden

    def loss(r, y):
        return 0.5 * (spec.v * g(spec.activation, r).sum() - y) ** 2

    grad, hess, value = jax.vmap(jax.grad(loss)), jax.vmap(jax.hessian(loss)), jax.vmap(loss)

    @jax.jit
    def run(consts, Lperp, m, Rt, xi, rstar, eps, dZ, jumps):
        alpha, h, m2 = consts[0], consts[1], consts[2]
        Rt4 = Rt.reshape(K, p, K, p)

        def body(acc, inp):
            xi_c, rs, ep, dz = inp
            zeta = (rs @ m.T / RHO + xi_c @ Lperp.T).reshape(-1, K, p)
            y = spec.A * g(spec.activation, rs).sum(1) + spec.sigma * ep

            def step(g_hist, k):
                r_k = zeta[:, k] - jnp.einsum("ajb,njb->na", Rt4[k], g_hist)
                return g_hist.at[:, k].set(grad(r_k, y) * dz[:, k, None]), r_k
            _, r = jax.lax.scan(step, jnp.zeros_like(zeta), jnp.arange(K))
            r = r.transpose(1, 0, 2)                                          # [c, K, p]
            r, dz, first = _cut_diverged(r, dz)
            flat, ys = r.reshape(-1, p), jnp.repeat(y, K)
            P, H = grad(flat, ys).reshape(-1, K, p), hess(flat, ys).reshape(-1, K, p, p)
            Ht = H[:tangents]
            X = jnp.einsum("iajc,njcb->niajb", Rt4, Ht * dz[:tangents, :, None, None]).reshape(-1, K * p, K * p)
            J = unit_lower_inverse(X).reshape(-1, K, p, K, p)                 # dr_(k a) / dzeta_(j b)
            acc = (acc[0] + jnp.einsum("nkab,nkbjc->kjac", Ht, J),
                   acc[1] + jnp.einsum("nka,njb->kjab", P, P * dz[:, :, None]),
                   acc[2] + jnp.einsum("nka,nkb->kab", P, P),
                   acc[3] + jnp.einsum("nka,nm->kam", P, rs),
                   acc[4] + value(flat, ys).reshape(-1, K).sum(0),
                   jnp.minimum(acc[5], first.min()))
            return acc, None
        M = m.shape[1]
        zero = (jnp.zeros((K, K, p, p)), jnp.zeros((K, K, p, p)), jnp.zeros((K, p, p)), jnp.zeros((K, p, M)),
                jnp.zeros(K), jnp.asarray(K))
        inputs = tuple(_chunked(a, chunks) for a in (xi, rstar, eps, dZ))
        sums, _ = jax.lax.scan(body, zero, inputs)
        N = xi.shape[0]
        Hj, PP, P2, Pr, train = (x / N for x in sums[:5])
        Hj = Hj * N / (chunks * tangents)
        lower = jnp.tril(jnp.ones((T, T)))[:, :, None, None]
        RG = alpha * h * Hj[:T, :T] * lower
        mu = alpha * h * Pr[:T] / RHO - jnp.einsum("kjab,jbm->kam", RG, m.reshape(K, p, M)[:T]) / RHO
        CG = alpha * h * PP[:T, :T] * jnp.tril(jnp.ones((T, T)), -1)[:, :, None, None]
        CG = CG + CG.transpose(1, 0, 3, 2) + jnp.eye(T)[:, :, None, None] * (alpha * m2 * P2[:T])[:, None]
        return RG, mu, CG, jnp.where(jnp.arange(K) < sums[5], train, jnp.inf), jnp.zeros((T, p, p))
    return run


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


def _woodbury(Rt, S, Ds):
    """Per path, ``W = Rt[:, S] D_S (I + Rt[S, S] D_S)^-1`` [c, K, m], so that
    ``(I + Rt D)^-1 = I - W E_S`` when ``D`` is zero off the jump indices ``S`` (``E_S``: the selector)."""
    RtS = jnp.take(Rt, S, axis=1).transpose(1, 0, 2)                           # [c, K, m]
    RtSS = jnp.take_along_axis(RtS, S[:, :, None], axis=1)                      # [c, m, m]: Rt[S_i, S_j]
    inner = unit_lower_inverse(jnp.tril(RtSS * Ds[:, None, :], -1))
    return (RtS * Ds[:, None, :]) @ inner


def _scatter_columns(X, S, K):
    """``sum_n X[n, :, i]`` added to column ``S[n, i]``: [K, K]."""
    return jnp.einsum("nki,nij->kj", X, jax.nn.one_hot(S, K, dtype=X.dtype))


@functools.lru_cache(maxsize=32)
def _square_jump_side(K, chunks, width):
    """The square-loss side for jump clocks (Poisson, Bernoulli): ``L = I - W E_S`` by Woodbury, so a
    path costs O(K m^2) for its ``m`` jumps instead of O(K^3). Same outputs as ``_square_side``."""
    T = K - 1

    @jax.jit
    def run(consts, S, Rt, dZ, jumps):
        alpha, h, m2 = consts[0], consts[1], consts[2]

        def body(acc, inp):
            dz, J = inp
            dzS = jnp.take_along_axis(dz, J, axis=1)                            # [c, m]
            W = _woodbury(Rt, J, dzS)
            Scol = jnp.take(S, J, axis=1).transpose(1, 0, 2)                    # S[:, S_i]: [c, K, m]
            SS = jnp.take_along_axis(Scol, J[:, :, None], axis=1)               # [c, m, m]
            WS = jnp.take_along_axis(W, J[:, :, None], axis=1)                  # W[S_i, :]: [c, m, m]
            MS = Scol - W @ SS - Scol @ jnp.swapaxes(WS, 1, 2) + W @ SS @ jnp.swapaxes(WS, 1, 2)
            diag = jnp.diag(S)[None] - 2 * jnp.einsum("nki,nki->nk", W, Scol) + jnp.einsum("nki,nij,nkj->nk", W, SS, W)
            return (acc[0] + _scatter_columns(W, J, K), acc[1] + _scatter_columns(MS * dzS[:, None, :], J, K),
                    acc[2] + diag.sum(0)), None
        zero = (jnp.zeros((K, K)), jnp.zeros((K, K)), jnp.zeros(K))
        sums, _ = jax.lax.scan(body, zero, (_chunked(dZ, chunks), _chunked(jumps, chunks)))
        N = dZ.shape[0]
        Wm, Md, dg = (x / N for x in sums)
        RG = alpha * h * (jnp.eye(T) - Wm[:T, :T])
        mu = -RG.sum(1)
        CG = jnp.tril(alpha * h * Md[:T, :T], -1)
        CG = CG + CG.T + jnp.diag(alpha * m2 * dg[:T])
        return RG, mu, CG, dg / 2, jnp.zeros(T)
    return run


def _first_blowup(RG, mu, CG, train, up, limit=1e12):
    """First grid index whose force statistics (blocks, as in ``parameter_side``) are not finite (or
    beyond ``limit``): some sample paths diverged there, and so does the expectation. ``len(train)`` if
    none."""
    T = len(mu)

    def ok(a, axes=1):
        """Finite and bounded, over all but the first ``axes`` axes."""
        return (np.isfinite(a) & (np.abs(a) < limit)).all(axis=tuple(range(axes, a.ndim)))

    lower = np.tril(np.ones((T, T), bool))          # row k: the statistics of times <= k only
    rows = (ok(RG, 2) | ~lower).all(1) & (ok(CG, 2) | ~lower).all(1) & ok(mu) & ok(train[:T]) & ok(up)
    rows = np.append(rows, np.isfinite(train[T]) & (abs(train[T]) < limit))
    return int(np.argmin(rows)) if not rows.all() else len(rows)


# -- the solver --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """Everything the solver needs, in DMFT units."""
    side: object                 # SquareLinear or GlmLoss
    alpha: float
    lam: float                   # ridge, DMFT units
    q0: float
    m0: float
    tau: float
    clock: str


@dataclasses.dataclass
class Solution:
    """The grid ``s`` [K] and, per averaged iterate [A, K], ``q = C_theta(s, s)``, ``m`` and the train
    loss ``E loss(r(s), y)``."""
    s: np.ndarray
    q: np.ndarray
    m: np.ndarray
    train: np.ndarray
    iterations: int
    converged: bool


def solve(problem: Problem, s_max: float, T: int, paths: int = 16000, tangent_paths: int = 4000, seed: int = 0,
          coarsen: int = 0, damping: float = 0.6, tol: float = 1e-3, max_iter: int = 60, average: int = 3,
          implicit: bool | None = None) -> Solution:
    """The fixed point on ``T`` steps of ``h = s_max / T`` (module doc). ``paths``: Monte-Carlo paths of
    the sample side (square loss on a linear teacher: clock paths, ``tangent_paths`` of them);
    ``tangent_paths``: how many of them also carry the tangents for ``R_G`` (O(T^3) each);
    ``coarsen``: draw the noise ``2^coarsen`` times finer and aggregate it (see ``draw``);
    ``implicit``: the linearly implicit margin step of ``_glm_side`` (default: for the flow clock of a
    Monte-Carlo side, the only clock whose increments are never negative and never a large jump; a
    linear teacher with square loss is solved exactly, with the explicit step)."""
    h = s_max / T
    K = T + 1
    p = problem
    committee = isinstance(p.side, CommitteeLoss)
    pd, md = (p.side.hidden, p.side.teachers) if committee else (1, 1)
    Q0, R0 = np.reshape(np.asarray(p.q0, float), (pd, pd)), np.reshape(np.asarray(p.m0, float), (pd, md))
    deterministic = p.clock == "flow" and p.side.exact_paths
    implicit = (p.clock == "flow" and not p.side.exact_paths and not committee) if implicit is None else implicit
    if implicit and (p.clock != "flow" or p.side.exact_paths or committee):
        raise ValueError("the implicit margin step is built for the flow clock of a Monte-Carlo (GlmLoss) side")
    if p.side.exact_paths:
        paths = 1 if deterministic else tangent_paths
        chunk = min(paths, SQUARE_CHUNK)
    else:
        chunk = CHUNK
        tangent_paths = min(tangent_paths, paths)
    if deterministic:
        tol, average = 1e-12, 1
    paths = max(chunk, int(np.ceil(paths / chunk)) * chunk)
    chunks = paths // chunk
    per_chunk = max(1, int(round(tangent_paths / chunks)))
    m2 = clock_second_moment(p.clock, h, p.tau)
    key = jax.random.PRNGKey(seed)

    def draw(key):
        """Noise on a grid ``2^coarsen`` times finer, aggregated: levels of one Richardson
        extrapolation drawn with the same seed share their randomness (their errors correlate, so
        ``2 f_{h/2} - f_h`` is less noisy than with independent draws)."""
        kz, kx, kr, ke = jax.random.split(key, 4)
        Tf = T * 2**coarsen
        dZ = clock_increments(p.clock, kz, (paths, Tf), h / 2**coarsen, p.tau)
        xi = np.asarray(jax.random.normal(kx, (paths, Tf + 1, pd), jnp.float64)) if not p.side.exact_paths else None
        for _ in range(coarsen):
            dZ = dZ[:, 0::2] + dZ[:, 1::2]
            if xi is not None:
                xi = np.concatenate([xi[:, :1], (xi[:, 1::2] + xi[:, 2::2]) / np.sqrt(2)], axis=1)
        dZ = np.concatenate([dZ, np.zeros((paths, 1))], axis=1)
        jumps = jump_indices(dZ) if sparse else np.zeros((paths, 1), np.int64)
        if p.side.exact_paths:
            return (dZ, jumps) if sparse else (dZ,)
        rstar = np.asarray(jax.random.normal(kr, (paths, md), jnp.float64))
        eps = np.asarray(jax.random.normal(ke, (paths, 1), jnp.float64))
        Z = moment_matched(np.column_stack([rstar, eps, xi.reshape(paths, -1)]))
        return Z[:, md + 1:], Z[:, :md] if committee else Z[:, 0], Z[:, md], dZ, jumps

    def side(noise):
        """The jitted sample side for this draw (jump clocks: compiled per padded jump count)."""
        width = noise[-1].shape[1] if sparse else None
        if p.side.exact_paths:
            if deterministic:
                return _square_flow_side
            return _square_jump_side(K, chunks, width) if sparse else _square_side(K, chunks)
        if committee:
            return _committee_side(p.side, K, chunks, min(per_chunk, chunk))
        return _glm_side(p.side, K, chunks, min(per_chunk, chunk), width, implicit)

    sparse = p.clock in JUMP_CLOCKS and not committee
    current = {"key": key, "valid": K}

    def redraw():
        """Fresh random numbers for the averaging phase."""
        current["key"], sub = jax.random.split(current["key"])
        current["noise"] = draw(sub)
        current["run"] = side(current["noise"])

    def update(kernels):
        RG, mu, CG, up = kernels
        C, m, Rt = parameter_side(RG, mu, CG, h, p.lam, Q0, R0, up if implicit else None)
        noise = (jnp.asarray(a) for a in current["noise"])
        if p.side.exact_paths:
            S = C - m[:, :1] - m[:, 0][None, :] + RHO + p.side.sigma ** 2
            out = current["run"](consts, jnp.asarray(S), jnp.asarray(Rt), *noise)
        else:
            # past a divergence (index ``valid``) C is huge: factor only the sane block, so that
            # its scale cannot wreck the factor of the early times
            Lperp = np.zeros((K * pd, K * pd))
            v = current["valid"] * pd
            Lperp[:v, :v] = psd_cholesky((C - m @ m.T / RHO)[:v, :v])
            out = current["run"](consts, jnp.asarray(Lperp), jnp.asarray(m if committee else m[:, 0]),
                                 jnp.asarray(Rt), *noise)
        nRG, nmu, nCG, train, nup = (np.array(x).reshape(shape) for x, shape in zip(out, (
            (T, T, pd, pd), (T, pd, md), (T, T, pd, pd), (K,), (T, pd, pd))))
        bad = _first_blowup(nRG, nmu, nCG, train, nup)
        current["valid"] = max(bad, 1)
        if bad < K:             # some paths diverge: keep the finite past, mark the rest +inf
            nRG[bad:], nRG[:, bad:], nmu[bad:], nCG[bad:], nCG[:, bad:], nup[bad:] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        sane = (np.arange(K) < bad)[:, None, None]
        state = {"q": np.where(sane, diagonal_blocks(C, pd), np.inf), "m": np.where(sane, m.reshape(K, pd, md), np.inf),
                 "train": np.where(sane[:, 0, 0], train, np.inf)}
        return state, (nRG, nmu, nCG, nup)

    with jax.enable_x64(True):
        consts = jnp.asarray([p.alpha, h, m2], jnp.float64)
        current["noise"] = draw(key)
        current["run"] = side(current["noise"])
        start = (np.zeros((T, T, pd, pd)), np.zeros((T, pd, md)), np.zeros((T, T, pd, pd)), np.zeros((T, pd, pd)))
        fixed = iterate(update, start, redraw, damping=1.0 if deterministic else damping, tol=tol,
                        max_iter=max_iter, average=average)
    history, it, converged = [(st["q"], st["m"], st["train"]) for st in fixed.history], fixed.iterations, fixed.converged
    q, m, train = (np.array(x) for x in zip(*history))
    if not committee:
        q, m = q[:, :, 0, 0], m[:, :, 0, 0]
    return Solution(s=h * np.arange(K), q=q, m=m, train=train, iterations=it, converged=converged)
