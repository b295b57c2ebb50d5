"""The sample side of the DMFT: from ``C_theta``, ``m`` and the response, the force statistics ``R_G``, ``mu``,
``C_G`` and the train loss, by Monte Carlo over paths (GLMs, committees) or exactly (square loss on a
linear teacher). Every side returns ``(R_G, mu, C_G, train, up)``.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import solve_triangular

from hdbench_plugins.solvers.dmft.linalg import unit_lower_inverse
from hdbench_plugins.solvers.dmft.parameter_side import RHO


CHUNK = 1000         # Monte-Carlo paths per vmapped chunk (GLM sample side)


BLOWUP = 1e3         # |margin| beyond this (margins are O(1)): the path has diverged


@dataclasses.dataclass(frozen=True)
class SquareLinear:
    """Square loss on a linear teacher ``y = r* + sigma eps``: its side is exact in expectation over the
    clocks (``square_side_moments``), so its fixed point needs no Monte Carlo (``exact_paths``)."""
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
    """The soft committee machine of committee.py: output ``sum_a v_a g(r_a)`` over ``hidden`` margins,
    square loss, teacher ``y = A sum_n g(r*_n) + sigma eps`` over ``teachers`` orthonormal units, second
    layer fixed (``v``: one value for every unit, or a tuple of ``hidden``). The parameter of one
    coordinate is the vector of its ``hidden`` first-layer weights."""
    hidden: int
    teachers: int
    activation: str
    A: float
    v: float | tuple
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


def square_side_moments(consts, S, Rt):
    """The square-loss sample side (linear teacher) for any clock with independent increments, exactly in
    expectation over the clocks: from ``E dZ = h`` and ``E dZ^2 = m2`` alone (each one number, or one per
    step), the outputs a Monte-Carlo
    side would give with infinitely many clock paths. ``S = E zeta zeta^T``: the covariance of the
    residuals before the responses, ``C_theta - m - m^T + E theta*^2 + sigma^2``.

    Why it is exact: the margins solve ``(I + Rt D) r = zeta``, ``D = diag(dZ)``, ``Rt`` strictly lower.
    Write ``dZ = h + Delta`` (``E Delta = 0``, ``E Delta^2 = v = m2 - h^2``): ``r = Lbar zeta - G Delta r``
    with ``Lbar = (I + Rt diag(h))^-1`` and ``G = Lbar Rt`` (strictly lower). ``r_j`` depends on the increments
    before ``j`` only, so ``Delta_j`` is independent of ``r_j``, of ``zeta`` and of every earlier
    ``Delta``: ``E Delta_j r_j Delta_l r_l = v a_j [j = l]`` with ``a = diag E r r^T``. Hence
    ``E L = Lbar``, ``A = E r r^T = P + v G diag(a) G^T`` with ``P = Lbar S Lbar^T``, whose diagonal is
    the unit-lower-triangular system ``(I - v G o G) a = diag P`` (``o``: entrywise), and
    ``E dZ_j r_j r_l = h_j A(j, l) - v a_j G(l, j)``. O(K^3) in a few BLAS calls, no paths: a Monte-Carlo
    side costs O(K^3) a path and is heavy-tailed under SGF (each margin a geometric Brownian motion
    whose second moment a few paths carry). ``v = 0`` (the flow clock) is the deterministic path."""
    alpha = float(consts[0])
    S, Rt = np.asarray(S, float), np.asarray(Rt, float)
    K = len(S)
    T = K - 1
    h = np.append(np.broadcast_to(np.asarray(consts[1], float), (T,)), 0.0)    # E dZ per step (one each on an uneven grid)
    m2 = np.broadcast_to(np.asarray(consts[2], float), (T,))    # one per step under a schedule
    eye = np.eye(K)
    Lbar = solve_triangular(eye + Rt * h, eye, lower=True, unit_diagonal=True)
    G = Lbar @ Rt
    v = np.append(m2 - h[:T] ** 2, 0.0)   # Var Delta_j (the last step has no force)
    P = Lbar @ S @ Lbar.T
    a = solve_triangular(eye - G * G * v, np.diag(P).copy(), lower=True, unit_diagonal=True)
    Ga = G * (v * a)
    A = P + Ga @ G.T
    E = h[:, None] * A - Ga.T             # E[j, l] = E dZ_j r_j r_l
    RG = alpha * h[:T, None] * Lbar[:T, :T]
    CG = np.tril(alpha * h[:T, None] * E[:T, :T].T, -1)
    CG = CG + CG.T + np.diag(alpha * m2 * a[:T])
    return RG, -RG.sum(1), CG, a / 2, np.zeros(T)


def epoch_square_side(alpha, S, Rt, cells, visit, kicks):
    """The square-loss sample side (linear teacher) under the epoch clock, exactly in expectation over
    the clocks: each epoch of ``cells`` steps kicks each sample with probability ``visit``, at a
    uniformly random step, independently across epochs; a kick at step i has the size ``kicks[i]`` (one
    ``tau`` at a constant rate; ``tau f_i`` under a schedule), so the grid's steps are
    ``h_i = (visit / cells) kicks[i]``. ``S``, ``Rt`` and the outputs as ``square_side_moments``'s.

    Why it is exact: the residuals solve ``rho = zeta - Rt D rho``. Epoch e's kick at step i moves every
    later residual by ``-tau_i Rt(., i) rho_i``, and ``rho_i`` depends on earlier epochs only, so
    ``rho^(e) = A_i rho^(e-1)`` with ``A_i = I - tau_i Rt(., i) e_i^T``, ``i`` independent of
    ``rho^(e-1)``. Hence, epoch by epoch and each in ``O(K^2 cells)``, with ``q = visit / cells``:
    ``M = E rho rho^T -> (1 - visit) M + q sum_i A_i M A_i^T``; the mean response
    ``Lbar -> Abar Lbar`` with ``Abar = I - Rt(., cells) diag(h)``; ``R_G(k, .) = alpha h_k Lbar(k, .)`` from
    the epochs before k's; ``C_G(k, k) = alpha tau_k^2 q M(k, k)``; and for j in an earlier epoch
    ``C_G(k, j) = alpha tau_k tau_j q^2 E[rho_k rho_j | kicks at j and k]``, the column ``A_j M e_j``
    pinned at j's epoch and carried through the later epochs by ``Abar``. Two kicks never share an
    epoch. No paths: the dependent increments that rule out ``square_side_moments`` are averaged
    exactly."""
    S, Rt = np.asarray(S, float), np.asarray(Rt, float)
    K = len(S)
    T = K - 1
    q = visit / cells
    tau = np.broadcast_to(np.asarray(kicks, float), (T,))
    h = q * tau
    M, Lbar, W = S.copy(), np.eye(K), np.zeros((K, K))
    RG, lower, diag, train = np.zeros((T, T)), np.zeros((T, T)), np.zeros(T), np.zeros(K)
    for start in range(0, T, cells):
        idx = np.arange(start, min(start + cells, T))
        R, Mii = Rt[:, idx], np.diag(M)[idx]
        Rh = R * h[idx]
        RG[idx] = alpha * h[idx, None] * Lbar[idx, :T]      # a kick at k: no other one earlier in k's epoch
        lower[idx] = alpha * q * q * tau[idx, None] * W[idx, :T] * tau[None, :]
        diag[idx] = alpha * q * tau[idx] ** 2 * Mii
        Lbar -= Rh @ Lbar[idx]                             # earlier epochs' columns through this epoch
        W -= Rh @ W[idx]
        W[:, idx] = M[:, idx] - R * (tau[idx] * Mii)        # this epoch's kick pinned at j: A_j M e_j
        MR = M[:, idx] @ Rh.T
        M = M - (MR + MR.T) + (Rh * (tau[idx] * Mii)) @ R.T
        train[idx] = np.diag(M)[idx] / 2
    train[T] = M[T, T] / 2
    CG = lower + lower.T + np.diag(diag)
    return RG, -RG.sum(1), CG, train, np.zeros(T)


@functools.lru_cache(maxsize=32)
def glm_side(spec, K, chunks, tangents, width=None, implicit=False, cells=0, stein=False):
    """Jitted Monte-Carlo sample side of a GLM: (consts, steps [T], Lperp, m, Rt, xi [N, K], rstar [N], eps [N],
    dZ [N, K], prior [N, K], past [K, K], jumps) -> (R_G, mu, C_G, train loss, R_G(k, k + 1)), ``steps``
    the grid's steps ``E dZ_k`` (one each: an uneven grid is an SGD step each under a schedule); the first ``tangents``
    paths of each chunk carry the tangents. With ``width`` (jump clocks) the tangents use Woodbury over
    each path's jump indices ``jumps`` [N, width] (O(K m^2) per path); without, a dense triangular
    inverse (O(K^3)). ``stein`` (dense tangents only): the response mixes the tangents with Stein's
    estimator mode by mode of the field (``_stein_mixed``: finite variance where the tangents are
    heavy-tailed); the solver asks for it under the flow clock.

    ``cells`` > 0: the epoch clock (a jump clock) with epochs of ``cells`` steps. Its increments are
    dependent, so the current increment is averaged out by conditioning on it,
    ``E[f dZ_k] = h E[f | kick at k]``; given a kick at k a path has no other kick in k's epoch before k,
    so each statistic of step k is taken on the path with that kick (index ``prior[n, k]``,
    ``clocks.epoch_priors``) taken back out, margin and tangent alike, and ``C_G(k, j)`` keeps the forces
    of ``past[k, j]`` (earlier epochs) only. Every path counts at every step with the weight ``h``, as
    for independent increments (where ``prior`` is void and ``past`` is ``j < k``). The train loss is
    averaged exactly over the phase of the current epoch (``_phase_averaged``, ``consts[4]`` the visit
    probability of a cell) where ``consts[3] > 0``: it does not feed back, so the solver asks for it in
    the averaging phase only. On an uneven grid (a schedule) step k's kicks are ``steps[k] / consts[4]``.

    ``implicit``: the force of step k is linearly implicit in the margin,
    ``G_k = [l'(r_k) + l''_+(r_k) (r_{k+1} - r_k)] dZ_k`` with ``l''_+ = max(l'', 0)``: the DMFT of
    gradient descent with that (Rosenbrock-Euler) step, stable for any ``h`` on the convex part of the
    loss where the explicit step needs ``h l'' < 2`` (phase retrieval: ``l'' ~ 4 y``, unbounded labels).
    Then ``G_k`` depends on ``zeta_{k+1}`` too, and ``R_G`` gains the entry ``R_G(k, k + 1)``."""
    from hdbench_plugins.common.glm import activation, label, loss_value
    T = K - 1
    epochs = cells > 0
    if epochs and (width is None or implicit):
        raise ValueError("the epoch clock is a jump clock: its GLM side is the explicit, sparse one")

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
    def run(consts, steps, Lperp, m, Rt, xi, rstar, eps, dZ, prior, past, jumps):
        alpha, m2 = consts[0], consts[2]
        phase = _epoch_phase(Rt.reshape(K, 1, K, 1), cells) if epochs else None
        U, S, Vt = jnp.linalg.svd(Lperp)              # zeta = rs m / RHO + U diag(S) z, z = V^T xi
        V = Vt.T

        def body(acc, inp):
            xi_c, rs, ep, dz, before, J = inp
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
            if width is None:
                _, r = jax.lax.scan(step, (jnp.zeros_like(zeta), jnp.zeros_like(rs)), jnp.arange(K))
                r = r.T                                                       # [c, K]
            else:
                r = _jump_margins(zeta, y, dz, J, Rt, dl)
            # a path that diverges (phase retrieval's large labels) is cut at its first bad step, so it
            # cannot poison the others; the earliest such step over all paths is returned (one earlier
            # for the implicit scheme, whose force at k - 1 already depends on r_k)
            r, dz, first = _cut_diverged(r, dz)
            r_next = jnp.concatenate([r[:, 1:], r[:, -1:]], axis=1)
            P, H2 = force(r, r_next, y[:, None]), dforce(r, r_next, y[:, None])
            train_loss = loss(r, y[:, None]).sum(0)
            P_past, H2_path = P * dz, H2            # the path's own forces, for C_G's past and the tangents
            if epochs:              # the statistics given a kick at k: the epoch's earlier kick taken back out
                Rkc = Rt[jnp.arange(K)[None, :], before]                       # Rt(k, c(k))
                kick = jnp.take_along_axis(P_past, before, axis=1)
                curv = jnp.take_along_axis(H2 * dz, before, axis=1)
                r_given = r + Rkc * kick
                P, H2 = force(r_given, r_given, y[:, None]), dforce(r_given, r_given, y[:, None])
                train_loss = jax.lax.cond(consts[3] > 0, lambda: _phase_averaged(
                    lambda x: loss(x[..., 0], y.reshape((-1,) + (1,) * (x.ndim - 2))),
                    r_given[..., None], P[..., None], phase, steps, consts[4]), lambda: train_loss)
            if width is None:
                # (I + Rt D1 + Rt D2 S) dr = dzeta, S the shift to the next step: lower triangular with
                # diagonal e = 1 + Rt(k, k-1) D2_{k-1} (1 for the explicit scheme, D2 = 0)
                X = Rt[None] * (H2_path * dz)[:tangents, None, :]
                if implicit:
                    D2 = (stiffness(r, y[:, None]) * dz)[:tangents]
                    X = X.at[:, :, 1:].add(Rt[None, :, :-1] * D2[:, None, :-1])
                    e = 1 + jnp.diagonal(X, axis1=1, axis2=2)
                    J = unit_lower_inverse(jnp.tril(X, -1) / e[:, :, None]) / e[:, None, :]
                    J_next = jnp.concatenate([J[:, 1:], jnp.zeros_like(J[:, :1])], axis=1)
                    paths_tangent = H2[:tangents, :, None] * J + stiffness(r, y[:, None])[:tangents, :, None] * J_next
                else:
                    paths_tangent = H2[:tangents, :, None] * unit_lower_inverse(X)
                tangent = paths_tangent.sum(0)
                stein_sums = (jnp.zeros((K, K)),) * 3
                if stein:
                    projected = paths_tangent @ U               # per path, on the field's modes
                    z = xi_c @ V
                    stein_sums = (jnp.einsum("nk,na->ka", P, z), jnp.einsum("nk,na->ka", P * P, z * z),
                                  (projected ** 2).sum(0))
            else:
                Jt = J[:tangents]
                Ds = jnp.take_along_axis((H2_path * dz)[:tangents], Jt, axis=1)
                W = _woodbury(Rt, Jt, Ds)
                if epochs:          # the tangent row without the earlier kick c: J_k + Rt(k, c) l''_c tau J_c
                    a = (Rkc * curv)[:tangents]
                    bt = before[:tangents]
                    W = (W + a[:, :, None] * jnp.take_along_axis(W, bt[:, :, None], axis=1)
                         - a[:, :, None] * (Jt[:, None, :] == bt[:, :, None]))
                tangent = jnp.diag(H2[:tangents].sum(0)) - _scatter_columns(H2[:tangents, :, None] * W, Jt, K)
                stein_sums = (jnp.zeros((K, K)),) * 3
            acc = (acc[0] + tangent,
                   acc[1] + jnp.einsum("nk,nj->kj", P, P_past),
                   acc[2] + (P * P).sum(0),
                   acc[3] + (P * rs[:, None]).sum(0),
                   acc[4] + train_loss,
                   jnp.minimum(acc[5], jnp.where(first < K, first - (1 if implicit else 0), K).min()),
                   tuple(a + b for a, b in zip(acc[6], stein_sums)))
            return acc, None
        zero = (jnp.zeros((K, K)), jnp.zeros((K, K)), jnp.zeros(K), jnp.zeros(K), jnp.zeros(K), jnp.asarray(K),
                (jnp.zeros((K, K)),) * 3)
        inputs = tuple(_chunked(a, chunks) for a in (xi, rstar, eps, dZ, prior, jumps))
        sums, _ = jax.lax.scan(body, zero, inputs)
        N = xi.shape[0]
        Hj, PP, P2, Pr, train = (x / N for x in sums[:5])
        Hj = Hj * N / (chunks * tangents)
        if stein and width is None:
            Hj = _stein_mixed(Hj, sums[6], chunks * tangents, N, S, U)
        RG = alpha * steps[:, None] * jnp.tril(Hj[:T, :T])
        up = alpha * steps * jnp.diagonal(Hj, 1) * implicit      # R_G(k, k + 1): 0 unless implicit (Stein's noise there)
        mu = alpha * steps * Pr[:T] / RHO - (RG @ m[:T] + up * m[1:]) / RHO
        CG = alpha * steps[:, None] * jnp.where(past[:T, :T], PP[:T, :T], 0.0)
        CG = CG + CG.T + jnp.diag(alpha * m2 * P2[:T])
        return RG, mu, CG, jnp.where(jnp.arange(K) < sums[5], train, jnp.inf), up
    return run


@functools.lru_cache(maxsize=32)
def committee_side(spec, K, chunks, tangents, cells=0, stein=False):
    """Jitted Monte-Carlo sample side of a committee: the GLM side (``glm_side``, explicit step, dense
    tangents) with vector margins ``r_k`` [p], ``p = spec.hidden``. Inputs: ``Lperp`` [Kp, Kp],
    ``m`` [Kp, M], ``Rt`` [Kp, Kp] (index ``k p + a``), ``xi`` [N, Kp], ``rstar`` [N, M], ``eps`` [N],
    ``dZ``, ``prior`` [N, K], ``past`` [K, K] (``epochs``: as in ``glm_side``); outputs as ``parameter_side``
    takes them: ``R_G [T, T, p, p]``, ``mu [T, p, M]``, ``C_G [T, T, p, p]``, the train loss [K], and zeros
    for ``R_G(k, k + 1)``. ``stein``: the response mixes in Stein's estimator (``_stein_mixed``) as
    ``glm_side``'s does (the solver asks for it under the flow clock, for both: a committee of one unit
    stays that GLM side on every clock). ``steps`` [T]: as ``glm_side``'s."""
    from hdbench_plugins.common.committee import g
    T, p = K - 1, spec.hidden
    epochs = cells > 0

    v = jnp.broadcast_to(jnp.asarray(spec.v, jnp.float64), (p,))

    def loss(r, y):
        return 0.5 * (jnp.dot(v, g(spec.activation, r)) - y) ** 2

    grad, hess, value = jax.vmap(jax.grad(loss)), jax.vmap(jax.hessian(loss)), jax.vmap(loss)

    @jax.jit
    def run(consts, steps, Lperp, m, Rt, xi, rstar, eps, dZ, prior, past, jumps):
        alpha, m2 = consts[0], consts[2]
        Rt4 = Rt.reshape(K, p, K, p)
        phase = _epoch_phase(Rt4, cells) if epochs else None
        U, S, Vt = jnp.linalg.svd(Lperp)              # as glm_side: zeta = rs m^T / RHO + U diag(S) z
        V = Vt.T

        def body(acc, inp):
            xi_c, rs, ep, dz, before = inp
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
            train_loss = value(flat, ys).reshape(-1, K).sum(0)
            X = jnp.einsum("iajc,njcb->niajb", Rt4, (H * dz[:, :, None, None])[:tangents]).reshape(-1, K * p, K * p)
            J = unit_lower_inverse(X).reshape(-1, K, p, K, p)                 # dr_(k a) / dzeta_(j b)
            P_past = P * dz[:, :, None]
            if epochs:              # as glm_side: the statistics of step k without the epoch's earlier kick
                Rkc = Rt4[jnp.arange(K)[None, :], :, before, :]                  # [c, K, p, p]: Rt(k, c(k))
                pick = before[:, :, None, None]
                r = r + jnp.einsum("nkab,nkb->nka", Rkc, jnp.take_along_axis(P_past, before[:, :, None], axis=1))
                A = jnp.einsum("nkab,nkbc->nkac", Rkc, jnp.take_along_axis(H * dz[:, :, None, None], pick, axis=1))
                Jc = jnp.take_along_axis(J, pick[:tangents, :, :, :, None], axis=1)
                J = J + jnp.einsum("nkab,nkbjc->nkajc", A[:tangents], Jc)
                flat = r.reshape(-1, p)
                P, H = grad(flat, ys).reshape(-1, K, p), hess(flat, ys).reshape(-1, K, p, p)

                def margins_loss(x):
                    out = (v * g(spec.activation, x)).sum(-1) - y.reshape((-1,) + (1,) * (x.ndim - 2))
                    return 0.5 * out ** 2
                train_loss = jax.lax.cond(consts[3] > 0, lambda: _phase_averaged(margins_loss, r, P, phase, steps, consts[4]),
                                          lambda: train_loss)
            paths_tangent = jnp.einsum("nkab,nkbjc->nkajc", H[:tangents], J).reshape(-1, K * p, K * p)
            stein_sums = (jnp.zeros((K * p, K * p)),) * 3
            if stein:
                projected = paths_tangent @ U               # per path, on the field's modes (glm_side)
                flat_P, z = P.reshape(-1, K * p), xi_c @ V
                stein_sums = (jnp.einsum("nk,na->ka", flat_P, z), jnp.einsum("nk,na->ka", flat_P ** 2, z * z),
                              (projected ** 2).sum(0))
            acc = (acc[0] + paths_tangent.sum(0),
                   acc[1] + jnp.einsum("nka,njb->kjab", P, P_past),
                   acc[2] + jnp.einsum("nka,nkb->kab", P, P),
                   acc[3] + jnp.einsum("nka,nm->kam", P, rs),
                   acc[4] + train_loss,
                   jnp.minimum(acc[5], first.min()),
                   tuple(a + b for a, b in zip(acc[6], stein_sums)))
            return acc, None
        M = m.shape[1]
        zero = (jnp.zeros((K * p, K * p)), jnp.zeros((K, K, p, p)), jnp.zeros((K, p, p)), jnp.zeros((K, p, M)),
                jnp.zeros(K), jnp.asarray(K), (jnp.zeros((K * p, K * p)),) * 3)
        inputs = tuple(_chunked(a, chunks) for a in (xi, rstar, eps, dZ, prior))
        sums, _ = jax.lax.scan(body, zero, inputs)
        N = xi.shape[0]
        Hj, PP, P2, Pr, train = (x / N for x in sums[:5])
        Hj = Hj * N / (chunks * tangents)
        if stein:
            Hj = _stein_mixed(Hj, sums[6], chunks * tangents, N, S, U)
        Hj = Hj.reshape(K, p, K, p).transpose(0, 2, 1, 3)                 # [k, j, a, c]
        lower = jnp.tril(jnp.ones((T, T)))[:, :, None, None]
        RG = alpha * steps[:, None, None, None] * Hj[:T, :T] * lower
        mu = alpha * steps[:, None, None] * Pr[:T] / RHO - jnp.einsum("kjab,jbm->kam", RG, m.reshape(K, p, M)[:T]) / RHO
        CG = alpha * steps[:, None, None, None] * jnp.where(past[:T, :T, None, None], PP[:T, :T], 0.0)
        CG = CG + CG.transpose(1, 0, 3, 2) + jnp.eye(T)[:, :, None, None] * (alpha * m2 * P2[:T])[:, None]
        return RG, mu, CG, jnp.where(jnp.arange(K) < sums[5], train, jnp.inf), jnp.zeros((T, p, p))
    return run


def _stein_mixed(path_mean, stein, n_tangent, n, S, U):
    """The response ``E dP_k / dzeta_j`` [K, K] from two unbiased estimators, mode by mode of the field
    ``zeta = rs m / RHO + U diag(S) z`` (``z`` standard normal): the pathwise one (the tangents,
    ``path_mean`` on ``n_tangent`` paths) and Stein's, ``E[P_k z_a] / S_a`` (``n`` paths), each mode's
    pair weighted by the inverse of its sampled variance. ``stein``: the sums over paths of ``P_k z_a``,
    ``(P_k z_a)^2`` and of the squared projected tangents.

    Why: where a margin lingers at an unstable point (phase retrieval, ``l'' = -2y`` at ``r = 0``) the
    tangent grows like ``exp(2 y s)``: the pathwise estimator is heavy-tailed, and a few thousand paths
    miss the rare large ones (its mean is off by many of its own standard errors). Stein's estimator
    needs ``P`` alone, whose moments are finite, and is accurate on the field's slow, large modes, where
    those tangents live; the pathwise one keeps the fast, small modes, where Stein's divides by a
    small ``S_a`` (docs/validation/dmft.md)."""
    PZ, PZ2, TU2 = stein
    mean_p = path_mean @ U
    var_p = jnp.maximum(TU2 / n_tangent - mean_p ** 2, 0.0) / n_tangent
    usable = S > 1e-8          # margins are O(1); a field that is 0 at s = 0 has modes of S ~ 1e-150
    Ss = jnp.where(usable, S, 1.0)
    mean_s = PZ / n / Ss
    var_s = jnp.maximum(PZ2 / n - (PZ / n) ** 2, 0.0) / n / Ss ** 2
    total = var_p + var_s
    w = jnp.where(usable & (total > 0), var_s / jnp.where(total > 0, total, 1.0), 1.0)
    return (w * mean_p + (1 - w) * mean_s) @ U.T


def _epoch_phase(Rt4, cells):
    """For step k, the candidate kicks of its epoch before k: indices ``cand`` [K, cells], the blocks
    ``Rt(k, cand)`` [K, cells, p, p] and the mask ``cand < k``, for sums over the current epoch's phase."""
    K = Rt4.shape[0]
    k = np.arange(K)
    cand = (k // cells * cells)[:, None] + np.arange(cells)[None, :]
    before = cand < k[:, None]
    cand = np.minimum(cand, K - 1)
    return jnp.asarray(cand), Rt4[k[:, None], :, cand, :], jnp.asarray(before)


def _phase_averaged(loss, r_given, force_given, phase, steps, q):
    """``sum_paths E loss(r_k)`` [K] averaged exactly over where the current epoch kicked the path: not
    yet (probability ``1 - (k - start) q``, margin ``r_given``), or at a step ``c`` before k (each
    probability ``q``, the visit probability of a cell; margin ``r_given_k - Rt(k, c) tau_c l'(r_given_c)``,
    the kick ``tau_c = h_c / q`` from the grid's steps ``steps`` [T]). The Monte Carlo is left with the
    other epochs' phases. Margins and forces [n, K, p]; ``loss`` maps margins [..., p] to losses [...]."""
    cand, Rkc, before = phase
    kick = jnp.append(steps, 0.0)[cand] / q                                    # [K, cells]
    hyp = r_given[:, :, None] - jnp.einsum("kjab,nkjb->nkja", Rkc, force_given[:, cand] * kick[None, :, :, None])
    return ((1 - before.sum(1) * q) * loss(r_given)
            + q * jnp.where(before, loss(hyp), 0.0).sum(2)).sum(0)


def _jump_margins(zeta, y, dz, S, Rt, dl):
    """The explicit scheme's margins [c, K] when the forces are zero off each path's jump indices ``S``
    [c, m] (sorted, padded with a kick-free index): a scan over the m jumps, not the K steps,
    ``r = zeta - Rt[:, S] G_S`` with ``G_(S_i) = l'(r_(S_i)) dZ_(S_i)``."""
    RtS = jnp.take(Rt, S, axis=1).transpose(1, 0, 2)                           # [c, K, m]
    RtSS = jnp.take_along_axis(RtS, S[:, :, None], axis=1)                      # [c, m, m]
    zS, dzS = jnp.take_along_axis(zeta, S, axis=1), jnp.take_along_axis(dz, S, axis=1)

    def step(G, i):
        r_i = zS[:, i] - (RtSS[:, i] * G).sum(1)
        return G.at[:, i].set(dl(r_i, y) * dzS[:, i]), None
    G, _ = jax.lax.scan(step, jnp.zeros_like(zS), jnp.arange(S.shape[1]))
    # a diverged kick (G = inf) must not reach the steps before it through Rt = 0 (0 * inf = nan)
    return zeta - jnp.where(RtS != 0, RtS * G[:, None, :], 0.0).sum(2)


def _woodbury(Rt, S, Ds):
    """Per path, ``W = Rt[:, S] D_S (I + Rt[S, S] D_S)^-1`` [c, K, m], so that
    ``(I + Rt D)^-1 = I - W E_S`` when ``D`` is zero off the jump indices ``S`` (``E_S``: the selector)."""
    RtS = jnp.take(Rt, S, axis=1).transpose(1, 0, 2)                           # [c, K, m]
    RtSS = jnp.take_along_axis(RtS, S[:, :, None], axis=1)                      # [c, m, m]: Rt[S_i, S_j]
    inner = unit_lower_inverse(jnp.tril(RtSS * Ds[:, None, :], -1))
    return (RtS * Ds[:, None, :]) @ inner


def _scatter_columns(X, S, K):
    """``sum_n X[n, :, i]`` added to column ``S[n, i]``: [K, K] (a scatter-add: a one-hot product costs
    K times more)."""
    rows = X.transpose(0, 2, 1).reshape(-1, K)
    return jnp.zeros((K, K), X.dtype).at[S.reshape(-1)].add(rows).T


def first_blowup(RG, mu, CG, train, up, limit=1e12):
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
