"""``dln-dmft``: multi-pass learning on a diagonal linear network by the DMFT of docs/theory/multipass.md with a
two-dimensional, nonlinear parameter process (docs/theory/dln.md, "Multi-pass"): full-batch GD (flow clock), SGF
(Gaussian clock) and multi-pass SGD with small batches (Poisson clock), each validated against simulation.
The loss is square, so the sample side depends on the clock through ``E dZ`` and ``E dZ^2`` alone
(``dmft.square_side_moments``): SGF and SGD share one DMFT (docs/theory/multipass.md's "SGD = SME" for linear models,
here with a nonlinear parameter process), and differ only where their simulations do, in SGF's own step
(``simulated_step``).

Units as in the DMFT solver (docs/theory/multipass.md section 0): our DLN data ``x ~ N(0, I_d)`` with O(1) coordinates is
``sqrt(d)`` times DMFT's ``X ~ N(0, 1/d)``, so the gradient of our mean loss in ``w`` is
``X^T (r - y) / alpha`` and time is ``s = gamma t / alpha``, temperature ``tau = gamma`` (the linear
model's map; here ``E w*^2`` is the teacher's, not 1).

Parameter side, one coordinate per particle, per atom of ``w*`` (``k < T`` grid steps):
``F_k = sum_{j <= k} R_G(k, j) (w_j - w*) + eta_k``, ``eta ~ N(0, C_G)`` (square loss: ``mu = -R_G 1``),
- product:    ``u_{k+1} = u_k - v_k F_k``,        ``v_{k+1} = v_k - u_k F_k``;
- difference: ``u_{k+1} = u_k (1 - 2 F_k)``,     ``v_{k+1} = v_k (1 + 2 F_k)``;
``C_theta(k, j) = E w_k w_j``, ``m_k = E w_k w*`` over particles, and the response
``Rt(k, j) = E dw_k / dH_j`` (``H_j`` entering as ``F_j -> F_j - H_j``; it starts at
``Rt(j + 1, j) = E[u_j^2 + v_j^2]``, resp. ``4 E[u_j^2 + v_j^2]``) exact per particle (the memoryless
Jacobian, closed through the memory term by a triangular solve), on ``tangent_particles`` of them. The
sample side is the square-loss one of the DMFT solver in expectation over the clocks, exactly (no sample paths).
Fixed point with damping and common random numbers, then fresh-noise averaging, as ``dmft.solve``; two or
three grids extrapolate to the simulated algorithm's step (``LEVELS``, ``simulated_step``).

The fixed point is converged well below the Monte-Carlo noise (``tol = 2e-4``; docs/validation/dmft.md).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hdbench_plugins.solvers import dmft
from hdbench_plugins.solvers.dln_flow import coordinate_law
from hdbench_plugins.solvers.dmft_scaffold import Unstable, combine, extrapolation_weights, interpolate, iterate, serial_blas, summarise_replicas
from hdbench_plugins.solvers.multipass import dmft_units


CLOCK_OF = {"gd": "flow", "sgf": "gaussian", "sgd": "poisson"}
SUPPORTED = ("gd", "sgf", "sgd")   # each validated against simulation (docs/validation/dmft.md)
LEVELS = {"flow": 2, "gaussian": 3, "poisson": 3}   # grids (steps x 1, 2, 4): the white noise's O(h) is curved in q
REPLICAS = 4          # independent solves, whose spread is the reported unc(NAME)
CHUNK = 512           # particles per call without tangents
TANGENT_FLOATS = 2**26   # with tangents a call holds a few [n, T, T] float32 arrays: n T^2 <= this (256 MB each)
BLOWUP = 1e6          # |E (w - w*)^2| beyond this (O(1) when sane): the grid or the dynamics diverged
FINEST_STEPS = 200    # the finest level at most: the response costs O(T^3) per tangent particle
STEP = 0.16           # grid step in s times the initial stiffness k S0 (k = 1 for u*v, 4 for u^2 - v^2; S = u^2 + v^2)


@functools.partial(jax.jit, static_argnames=("product", "tangents"))
def particle_sums(RG, eta, wstar, u0, v0, spike, *, product, tangents):
    """Sums over particles (rows of ``eta`` [N, T]) of one atom: ``w w^T`` [K, K], ``w`` [K], the response
    ``dw/dH`` [K, T] (if ``tangents``), and per time ``|w|``, ``c`` (q or p), ``|w - w*| < spike/2``.

    The response in two parts. The scan carries, besides ``(u, v)``, their sensitivities to each earlier
    ``F_j`` with ``F`` held fixed (2 x T numbers, O(T) a step): the memoryless Jacobian ``A(k, j) =
    dw_k / dF_j``, strictly causal. The memory then closes it exactly: ``dF = R_G dw - dH``, so
    ``X = dw_{<T} / dH`` solves the unit-lower-triangular ``(I - A_{<T} R_G) X = -A_{<T}`` and
    ``dw / dH = A (R_G X - I)`` (= ``X`` but for its last row): one batched triangular solve (BLAS-3)
    instead of carrying the K x T tangent matrix through every step of the scan, which was memory-bound
    and 10x slower at T = 200 (the two agree to float32 rounding, 1e-5 relative at T = 400)."""
    T = eta.shape[1]
    K = T + 1

    def weight(u, v):
        return u * v if product else u * u - v * v

    def one(eta_p):
        def step(carry, k):
            u, v, W, Su, Sv = carry
            F = jnp.dot(RG[k], W[:T] - wstar) + eta_p[k]
            hit = (jnp.arange(T) == k).astype(u.dtype)
            if product:
                u1, v1 = u - v * F, v - u * F
            else:
                u1, v1 = u * (1 - 2 * F), v * (1 + 2 * F)
            if tangents:       # d(u, v)_{k+1} / dF_j: propagated for j < k, the step's own derivative for j = k
                if product:
                    Su, Sv = Su - F * Sv - hit * v, Sv - F * Su - hit * u
                    row = v1 * Su + u1 * Sv
                else:
                    Su, Sv = Su * (1 - 2 * F) - 2 * hit * u, Sv * (1 + 2 * F) + 2 * hit * v
                    row = 2 * u1 * Su - 2 * v1 * Sv
            else:
                row = Su
            W = W.at[k + 1].set(weight(u1, v1))
            return (u1, v1, W, Su, Sv), (u1 * u1 - v1 * v1 if product else u1 * v1, row)

        dtype = eta_p.dtype
        W0 = jnp.zeros(K, dtype).at[0].set(weight(u0, v0))
        nt = T if tangents else 0
        start = (u0.astype(dtype), v0.astype(dtype), W0, jnp.zeros(nt, dtype), jnp.zeros(nt, dtype))
        (_, _, W, _, _), (c, rows) = jax.lax.scan(step, start, jnp.arange(T))
        c = jnp.concatenate([jnp.reshape(u0 * u0 - v0 * v0 if product else u0 * v0, (1,)).astype(dtype), c])
        return W, c, rows

    W, c, rows = jax.vmap(one)(eta)
    stats = jnp.stack([jnp.abs(W).sum(0), c.sum(0), (jnp.abs(W - wstar) < 0.5 * spike).sum(0)])
    if tangents:
        A = jnp.concatenate([jnp.zeros((eta.shape[0], 1, T), eta.dtype), rows], axis=1)     # [N, K, T]
        X = jax.scipy.linalg.solve_triangular(jnp.eye(T, dtype=eta.dtype) - A[:, :T] @ RG, -A[:, :T],
                                              lower=True, unit_diagonal=True)
        last = jnp.einsum("nj,jl,nlm->m", A[:, T], RG, X) - A[:, T].sum(0)     # row T of A (R_G X - I)
        response = jnp.concatenate([X.sum(0), last[None]], axis=0)
    else:
        response = jnp.zeros((K, 0), eta.dtype)
    return W.T @ W, W.sum(0), response, stats


def parameter_side(law, RG, CG, xi, tangent_particles):
    """``(C [K, K], m [K], Rt [K, K], curves)`` from particles ``xi`` [atoms, N, T] of standard normals
    (``eta = chol(C_G) xi``), atoms weighted; ``curves``: per-time ``l1``, ``c``, ``l1_off``,
    ``support_recovery``."""
    A, N, T = xi.shape
    K = T + 1
    L = dmft.psd_cholesky(CG)
    C, m, Rt = np.zeros((K, K)), np.zeros(K), np.zeros((K, T))
    l1, c, off, rec = (np.zeros(K) for _ in range(4))
    RGj = jnp.asarray(RG, jnp.float32)
    nt = min(N, tangent_particles)
    tchunk = max(1, min(nt, TANGENT_FLOATS // T**2))
    chunks = [(i, min(i + tchunk, nt), True) for i in range(0, nt, tchunk)]
    chunks += [(i, min(i + CHUNK, N), False) for i in range(nt, N, CHUNK)]
    for a in range(A):
        eta = xi[a] @ L.T
        sums = [0.0, 0.0, 0.0, 0.0]
        for start, stop, tangents in chunks:
            out = particle_sums(RGj, jnp.asarray(eta[start:stop], jnp.float32), np.float32(law.targets[a]),
                             np.float32(law.u0), np.float32(law.v0), np.float32(law.spike),
                             product=law.product, tangents=tangents)
            for i in (0, 1, 3):
                sums[i] = sums[i] + np.asarray(out[i], float)
            if tangents:
                sums[2] = sums[2] + np.asarray(out[2], float)
        wa = law.weights[a]
        C += wa * sums[0] / N
        m += wa * law.targets[a] * sums[1] / N
        Rt += wa * sums[2] / nt
        l1 += wa * sums[3][0] / N
        c += wa * sums[3][1] / N
        off += wa * (law.targets[a] == 0) * sums[3][0] / N
        rec += wa * sums[3][2] / N
    Rt_full = np.zeros((K, K))
    Rt_full[:, :T] = np.tril(Rt, -1)
    return (C + C.T) / 2, m, Rt_full, {"l1": l1, "c": c, "l1_off": off, "support_recovery": rec}


def solve(law, alpha, tau, clock, s_max, T, particles=8192, tangent_particles=512, seed=0,
          damping=0.6, tol=2e-4, max_iter=60, average=3, coarsen=0, start=None):
    """The fixed point on ``T`` steps of ``h = s_max / T``: ``(grid, curves, (R_G, C_G))``, the curves per
    grid point (each averaged over ``average`` fresh-noise iterates) of ``C(k, k)``, ``m``, train loss and
    the particle statistics, or ``None`` if the grid step is unstable. ``start``: a fixed point ``(R_G, C_G)``
    to iterate from (another replica's on this grid: fewer iterations to the same tolerance).
    ``coarsen``: the particles' normals are drawn ``2^coarsen`` times finer and summed in pairs, so that the
    levels of one Richardson extrapolation (same ``seed``) share their noise. The sample side is exact
    (``dmft.square_side_moments``): only the particles are Monte Carlo."""
    h = s_max / T
    K = T + 1
    consts = (alpha, h, dmft.clock_second_moment(clock, h, tau))
    Ew2 = float(law.weights @ law.targets**2)
    rng = np.random.default_rng(seed)
    A = len(law.targets)

    def draw():
        xi = rng.standard_normal((A * particles, T * 2**coarsen))
        for _ in range(coarsen):
            xi = (xi[:, 0::2] + xi[:, 1::2]) / np.sqrt(2)
        return dmft.moment_matched(xi).reshape(A, particles, T)

    noise = {"xi": draw()}

    def update(kernels):
        RG, CG = kernels
        C, m, Rt, curves = parameter_side(law, RG, CG, noise["xi"], tangent_particles)
        S = C - m[:, None] - m[None, :] + Ew2 + law.sigma**2
        if not (np.isfinite(S).all() and np.isfinite(Rt).all() and np.abs(S).max() < BLOWUP):
            raise Unstable
        nRG, _, nCG, train, _ = dmft.square_side_moments(consts, S, Rt)
        if not (np.isfinite(nRG).all() and np.isfinite(nCG).all()):
            raise Unstable
        return {"q": np.diag(C), "m": m, "train": train, **curves}, (nRG, nCG)

    def redraw():
        noise["xi"] = draw()

    kernels = (np.zeros((T, T)), np.zeros((T, T))) if start is None else tuple(np.array(a) for a in start)
    try:
        fixed = iterate(update, kernels, redraw, damping=damping, tol=tol, max_iter=max_iter, average=average,
                        undamped_first=clock == "flow" and start is None)
    except Unstable:
        return None          # the explicit grid step is unstable here (or the dynamics diverges)
    history = fixed.history
    return h * np.arange(K), {k: np.mean([hst[k] for hst in history], axis=0) for k in history[0]}, fixed.kernels


def coarse_steps(s, least=25):
    """Steps of the coarse grid: ``h k S0 <= STEP`` and at least ``least``."""
    law = coordinate_law(s)
    scale, _, _ = dmft_units(s)
    stiffness = law.k * law.S(law.w0, law.c0)
    steps = max(least, int(np.ceil(stiffness * scale * s.t_max / STEP)))
    return steps


@serial_blas
def predict_dln_dmft(s, times, steps=None, levels=None, particles=8192, tangent_particles=512, replicas=None, seed=0):
    """Curves on ``times``: extrapolated (``simulated_step``) over grids of ``steps`` (default ``coarse_steps``)
    and ``2 steps``. The mean of ``replicas`` (default ``REPLICAS``) independent solves (seeds) and
    ``unc(NAME)``, the standard error of that mean: the particles' Monte Carlo (the sample side is exact).
    Not the grid's error."""
    steps = steps or coarse_steps(s)
    law = coordinate_law(s)
    scale, tau, _ = dmft_units(s)
    clock = CLOCK_OF[s.dynamics]
    if clock != "flow" and tau == 0:
        tau = s.dynamics_params["gamma"]
    replicas = replicas or REPLICAS
    levels = levels or LEVELS[clock]
    s_times = scale * np.asarray(times, float)
    s_max = max(float(s_times[-1]), 1e-9)
    while True:
        runs = _replicas(s, law, clock, tau, s_times, s_max, steps, levels, particles, tangent_particles, replicas,
                         seed)
        if runs is not None:
            break
        if steps * 2**levels > FINEST_STEPS:
            return {k: np.full(len(times), np.inf) for k in _names(law)}
        steps *= 2
    return summarise_replicas(runs)


def _replicas(s, law, clock, tau, s_times, s_max, steps, levels, particles, tangent_particles, replicas, seed):
    """The observables of each replica (a Richardson extrapolation over the levels), or ``None`` if a grid is
    unstable. Replica ``r > 0`` iterates from replica ``r - 1``'s fixed point on each grid (with its own noise,
    to the same tolerance), in fewer iterations than from zero."""
    fixed = [None] * levels
    runs = []
    weights = extrapolation_weights(levels, s_max / steps, simulated_step(s))
    for r in range(replicas):
        levels_out = []
        for i in range(levels):
            solved = solve(law, s.alpha, tau, clock, s_max, steps * 2**i, particles, tangent_particles,
                           seed=seed + 7919 * r, coarsen=levels - 1 - i, start=fixed[i])
            if solved is None:
                return None
            grid, st, fixed[i] = solved
            st["log_shrink_rate"] = _log_shrink_rate(st["c"], law.c0, grid[1])
            levels_out.append({k: interpolate(s_times, grid, v) for k, v in st.items()})
        runs.append(_observables(s, law, clock, combine(weights, levels_out)))
    return runs


def simulated_step(s):
    """The grid step (in s) whose DMFT is the simulated algorithm itself, where the curves are extrapolated
    to: GD and SGF are simulated by explicit (Euler-Maruyama) steps of ``h``, which a grid of step
    ``scale h`` takes exactly as the simulation does (the same explicit update of ``(u, v)`` and of the
    residuals, the same Gaussian per-sample re-weighting); multi-pass SGD is the Poisson clock's limit (0).
    SGF's simulation has an O(h) bias of its own (about 1% in q at h = 0.01; docs/validation/dmft.md), which
    extrapolating to h = 0 would count as the theory's error."""
    if CLOCK_OF[s.dynamics] in ("flow", "gaussian"):
        return dmft_units(s)[0] * s.dynamics_params["h"]
    return 0.0


def _observables(s, law, clock, combined):
    if clock == "flow":
        # GD at step dt shrinks each coordinate's c by 1 - (dt f)^2 a step, so log(c / c0) = -dt rate(dt): the
        # rate is extrapolated to the simulation's step like every curve, then exponentiated (a line through the
        # grids' c would not keep log c's zero constant term)
        combined["c"] = law.c0 * np.exp(-simulated_step(s) * combined["log_shrink_rate"])
    Ew2 = float(law.weights @ law.targets**2)
    Cww = combined["q"]
    return {"risk": 0.5 * (Cww - 2 * combined["m"] + Ew2 + law.sigma**2), law.conserved_name: combined["c"],
            "l1": combined["l1"], "l1_off": combined["l1_off"], "support_recovery": combined["support_recovery"],
            "train_risk": combined["train"]}


def _log_shrink_rate(c, c0, h):
    """``-log(c / c0) / h`` on a grid of step ``h`` (0 where ``c0 = 0``): a first-order estimate of
    ``int_0^s E f^2``, ``f`` a coordinate's gradient (each explicit step multiplies c by ``1 - (h f)^2``)."""
    if c0 == 0:
        return np.zeros_like(c)
    return -np.log(np.maximum(c / c0, 1e-300)) / h


def _names(law):
    return ("risk", law.conserved_name, "l1", "l1_off", "support_recovery", "train_risk")
