"""BGJ effective dynamics for the Gaussian-mixture models ``gmm-binary`` and ``gmm-xor``
(docs/theory/one_pass.md section 3), in our time (``delta = gamma/d``).

Statistics ``u = (v, M, R)``: second layer ``v`` [K], ``M = W mu^T`` [K, A] (overlaps with the A
mean directions), ``R`` [K, K] (Gram matrix of the parts of W orthogonal to the means). With
``e = sigmoid(yhat) - y`` and the model's population expectations (``Ex[i, a] = E[e 1_i <mu_a, x>]``,
``Eb[i, j] = E[e 1_i b_j]``, ``b = W^perp x``):
``dv_i/dt = -gamma (E[e relu(h_i)] + alpha v_i)``,
``dM_ia/dt = -gamma (v_i Ex[i, a] + alpha M_ia)``,
``dR_ij/dt = -gamma (v_i Eb[i, j] + v_j Eb[j, i]) - 2 gamma alpha R_ij + (gamma^2/lam) v_i v_j B_ij``,
``B_ij = E[1_i 1_j e^2]``: the corrector, the only term of order ``gamma^2`` (``population-gf`` drops
it; it is ``delta^2`` times ``d`` steps times ``|x^perp|^2 = d/lam``). K = 2, A = 1 for the binary
mixture (BGJ's 7 statistics; nested kink-split quadrature, ``binary_expectations``), K = 4, A = 2
for XOR (BGJ's 22; quasi-Monte Carlo in the 4 preactivations, ``mixture_expectations``).

``bgj-effective`` from BGJ's random initialisation of the binary model: the statistics start at
``M = 0``, ``R = I`` (to leading order in d) and ``v ~ N(0, I_2)``; the prediction is the average over
that law of ``v(0)`` (a 6 x 6 Gauss-Hermite rule). The model is symmetric under ``(v, M) -> (-v, -M)``
(with the classes swapped), so only the 18 trajectories with ``v1(0) > 0`` are solved. For XOR,
``M = 0`` is a fixed point of the effective ODE: leaving it is driven by the ``d^-1/2`` fluctuations,
which is ``bgj-diffusive``'s job (``bgj_diffusive_gmm``).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hdbench import YES, no
from hdbench_plugins.common.gmm import Binary, Xor, binary_expectations, mixture_expectations
from hdbench_plugins.common.quadrature import qmc_normal
from hdbench_plugins.common.odeint import make_rk4, substeps
from hdbench_plugins.solvers.regime import one_pass

DT = 0.25          # RK4 step: statistics within 2e-7 of step 0.05 (measured, binary)
V0_NODES = 6       # Gauss-Hermite nodes per axis for v(0); only the v1(0) > 0 half is solved
QUADRATURE = {"n_a": 8, "n": 5}   # binary: Eb (the least accurate) within ~2e-6 relative of a 40 x 12 rule
QMC_LOG2_N = 11    # XOR: 4096 nodes per component; drift terms within ~1e-3 relative (tests/test_gmm.py)
MODELS = {"gmm-binary": Binary, "gmm-xor": Xor}


def expectations(model, lam, log2_n=QMC_LOG2_N, nested=True):
    """``(v, M, R) -> dict`` of the expectations the drift needs (jax.numpy): the binary model's
    nested rule where ``nested``, else quasi-Monte Carlo with ``2^(log2_n+1)`` nodes per component."""
    if model is Binary and nested:
        def binary(v, M, R):
            ex = binary_expectations(v, M[:, 0], R, lam, jnp, **QUADRATURE)
            return {**ex, "Ex": ex["Ea"][:, None]}
        return binary
    return lambda v, M, R: mixture_expectations(v, M, R, lam, model.mixture, jnp, log2_n=log2_n)


def mixture_drift(u, ex, gamma, lam, alpha, correction):
    """The effective drift of ``u = (v, M, R)`` from its expectations ``ex``."""
    v, M, R = u
    dv = -gamma * (ex["Eg"] + alpha * v)
    dM = -gamma * (v[:, None] * ex["Ex"] + alpha * M)
    G = v[:, None] * ex["Eb"]
    dR = -gamma * (G + G.T) - 2 * gamma * alpha * R
    if correction:
        dR = dR + (gamma**2 / lam) * jnp.outer(v, v) * ex["B"]
    return dv, dM, dR


@functools.lru_cache(maxsize=16)
def _solver(model, lam, alpha, correction, n_sub):
    expect = expectations(model, lam)

    def rhs(u, gamma):
        return jax.vmap(lambda one: mixture_drift(one, expect(*one), gamma, lam, alpha, correction))(u)
    return make_rk4(rhs, n_sub)


@functools.lru_cache(maxsize=16)
def population_along(model, lam, qmc_log2_n=None):
    """Risk and error rate along trajectories ``[T, n, ...]`` (jitted, the model's quadrature, float32)."""
    def one(args):
        if qmc_log2_n is None:
            return model.population(*args, lam, jnp)
        ex = mixture_expectations(*args, lam, model.mixture, jnp, log2_n=qmc_log2_n)
        return {"risk": ex["risk"], "error_rate": ex["error_rate"]}

    @jax.jit
    def along(v, M, R):
        lead = v.shape[:2]
        flat = [x.reshape((-1,) + x.shape[2:]) for x in (v, M, R)]
        out = jax.lax.map(one, flat, batch_size=64)       # bounded memory: nodes x 64 states at a time
        return {k: x.reshape(lead) for k, x in out.items()}
    return along


def initial_states(model, p):
    """Initial statistics and their weights: one state (overlaps init) or the v(0) ~ N(0, I) rule."""
    if p["init"] == "overlaps":
        v0, M0, R0 = model.initial_overlaps(p)
        return v0[None], M0[None], R0[None], np.ones(1)
    z, w = np.polynomial.hermite_e.hermegauss(V0_NODES)
    v0 = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    weights = np.outer(w, w).ravel() / np.sum(w) ** 2
    half = v0[:, 0] > 0                      # the mirror image (-v0) gives the same even statistics
    v0, weights = v0[half], 2 * weights[half]
    n = len(weights)
    return v0, np.zeros((n, 2, 1)), np.broadcast_to(np.eye(2), (n, 2, 2)).copy(), weights


def supports_gmm(s, online=True):
    regime = one_pass(s, online)
    if not regime:
        return regime
    if s.model == "gmm-xor" and s.model_params["init"] == "random":
        return no("from XOR's random start, M = 0 is a fixed point of the effective ODE and the escape is "
                  "driven by d^-1/2 fluctuations: use bgj-diffusive")
    return YES


def trajectories_to_curves(model, p, v, M, R, weights):
    """Weighted means of the named statistics, risk, error rate and optimum indicator over trajectories
    ``v`` [T, n, K], ``M`` [T, n, K, A], ``R`` [T, n, K, K]."""
    # float32, like the model's own observables: tracing the same quadrature at the same shapes
    # under enable_x64 as well leaves float64 constants in JAX's caches that break the simulator.
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    pops = population_along(model, p["lam"])(f32(v), f32(M), f32(R))
    stats = {**model.statistics(v, M, R), **{k: np.asarray(x) for k, x in pops.items()},
             "reached_optimum": model.optimum(v, M)}
    return {k: np.asarray(val) @ weights for k, val in stats.items()}


def solve_gmm(s, times, correction=True):
    p = s.model_params
    model = MODELS[s.model]
    gamma = s.dynamics_params["gamma"]
    times = np.asarray(times, float)
    v0, M0, R0, weights = initial_states(model, p)
    with jax.enable_x64(True):
        solve = _solver(model, p["lam"], p["alpha"], correction, substeps(times, DT))
        v, M, R = solve((jnp.asarray(v0), jnp.asarray(M0), jnp.asarray(R0)), jnp.asarray(np.diff(times)), gamma)
    v = np.concatenate([v0[None], np.asarray(v)])              # [T, n, K]
    M = np.concatenate([M0[None], np.asarray(M)])
    R = np.concatenate([R0[None], np.asarray(R)])
    out = trajectories_to_curves(model, p, v, M, R, weights)
    if p["init"] == "random":               # odd under (v, M) -> (-v, -M): zero on the symmetric law
        for k in ("v_1", "v_2", "m_1", "m_2"):
            out[k] = np.zeros(len(times))
    return out


# ---- bgj-diffusive: the finite-d SDE of the statistics (random start, escape from M = 0) ----------

SDE_DT = 0.2            # exponential Heun step (our time); see solve_gmm_diffusive
SDE_PATHS = 512         # Monte-Carlo paths: fractions to +-0.022 (one standard error at 1/2)
SDE_LOG2_N = 8          # drift: 512 QMC nodes per component (fraction as with 1024, measured)
NOISE_LOG2_N = 6        # gradient covariance: 128 QMC nodes per component
POPULATION_LOG2_N = 11  # risk and error rate along the paths: 4096 QMC nodes per component


def gradient_covariance(v, M, R, lam, mixture, log2_n=NOISE_LOG2_N):
    """Covariance, over one sample, of the per-sample gradient of ``(v, M)`` (the L2 part is
    deterministic): ``g = (e relu(h_i), v_i e 1_i <mu_a, x>)``, by quasi-Monte Carlo over the
    ``A + K`` Gaussian coordinates (mean read-out noise, ``W^perp x``)."""
    K, A = M.shape
    z = jnp.asarray(qmc_normal(A + K, log2_n), M.dtype)
    zeta = z[:, :A] / jnp.sqrt(lam)
    b = z[:, A:] @ jnp.linalg.cholesky(R / lam + 1e-9 * jnp.eye(K, dtype=M.dtype)).T
    gs = []
    for mean, y in zip(mixture.means, mixture.labels):
        x = jnp.asarray(mean, M.dtype) + zeta                                  # [N, A]
        h = x @ M.T + b
        act, ind = jnp.maximum(h, 0.0), (h > 0) * 1.0
        e = jax.nn.sigmoid(act @ v) - y
        gM = (v * e[:, None] * ind)[:, :, None] * x[:, None, :]
        gs.append(jnp.concatenate([e[:, None] * act, gM.reshape(len(z), K * A)], axis=1))
    w = jnp.repeat(jnp.asarray(mixture.probs, M.dtype), len(z)) / len(z)
    g = jnp.concatenate(gs)
    centred = g - w @ g                   # centred first, so the covariance stays positive in float32
    return (w[:, None] * centred).T @ centred


def mirror_group(model):
    """Symmetries ``(s, T)``: ``(v, M, R) -> (s v, M T, R)`` leave the data law and the loss invariant
    (binary: ``x -> -x`` with the labels swapped; XOR: a sign flip of either mean direction, or
    ``mu <-> nu`` with the labels swapped). The random initial law is invariant too, so averaging the
    Monte-Carlo paths over the group keeps every symmetric statistic's mean exactly (zero when odd)."""
    if model.mixture.means == ((1.0,), (-1.0,)):
        return [(1.0, np.eye(1)), (-1.0, -np.eye(1))]
    flips = [np.diag([a, b]) for a in (1.0, -1.0) for b in (1.0, -1.0)]
    return [(1.0, f) for f in flips] + [(-1.0, f @ np.array([[0.0, 1.0], [1.0, 0.0]])) for f in flips]


def initial_law(model, p, d, n, rng):
    """``n`` draws of the statistics at the start: the overlaps state, or BGJ's random start at this
    d (``W_i ~ N(0, I/d)``: ``M ~ N(0, 1/d)``, ``R ~ Wishart(d - A, I/d)``; ``v ~ N(0, 1)``)."""
    if p["init"] == "overlaps":
        v0, M0, R0 = model.initial_overlaps(p)
        return np.repeat(v0[None], n, 0), np.repeat(M0[None], n, 0), np.repeat(R0[None], n, 0)
    from scipy.stats import wishart
    K, A = model.units, len(model.mixture.means[0])
    R0 = wishart(df=d - A, scale=np.eye(K) / d).rvs(n, random_state=rng)
    return rng.standard_normal((n, K)), rng.standard_normal((n, K, A)) / np.sqrt(d), R0


@functools.lru_cache(maxsize=16)
def _sde_solver(model, lam, alpha, n_sub):
    expect = expectations(model, lam, log2_n=SDE_LOG2_N, nested=False)

    def nonlinear(u, gamma):
        """The drift without the L2 decay (which is integrated exactly)."""
        v, M, R = u
        dv, dM, dR = mixture_drift(u, expect(v, M, R), gamma, lam, alpha, correction=True)
        return dv + gamma * alpha * v, dM + gamma * alpha * M, dR + 2 * gamma * alpha * R

    def step(u, xi, gamma, d, h):
        """Exponential Heun: the L2 decay exactly, the rest of the drift by the trapezoid rule
        (second order: with Euler, R is 4% low at t = 10 for h = 0.2), the noise by Euler-Maruyama."""
        v, M, R = u
        C = gradient_covariance(v, M, R, lam, model.mixture) * (gamma**2 / d)
        lam_c, U = jnp.linalg.eigh(C)          # C is nearly singular (one direction per component)
        noise = jnp.sqrt(h) * (U @ (jnp.sqrt(jnp.maximum(lam_c, 0.0)) * xi))
        noise = (noise[:v.shape[0]], noise[v.shape[0]:].reshape(M.shape), jnp.zeros_like(R))
        decay = jnp.exp(-gamma * alpha * h)
        decays = (decay, decay, decay**2)
        n0 = nonlinear(u, gamma)
        guess = jax.tree.map(lambda x, n, w, a: a * (x + h * n + w), u, n0, noise, decays)
        n1 = nonlinear(guess, gamma)
        return jax.tree.map(lambda x, a0, a1, w, a: a * (x + w + h / 2 * a0) + h / 2 * a1, u, n0, n1, noise, decays)

    batched = jax.vmap(step, in_axes=(0, 0, None, None, None))

    @jax.jit
    def solve(u0, key, intervals, gamma, d):
        n_paths, dim = u0[0].shape[0], u0[1].shape[1] * (1 + u0[1].shape[2])

        def interval(carry, dt):
            u, key = carry
            key, sub = jax.random.split(key)
            xi = jax.random.normal(sub, (n_sub, n_paths, dim), u0[0].dtype)
            u = jax.lax.fori_loop(0, n_sub, lambda j, u: batched(u, xi[j], gamma, d, dt / n_sub), u)
            return (u, key), u

        return jax.lax.scan(interval, (u0, key), intervals)[1]

    return solve


def solve_gmm_diffusive(s, times, n_paths=SDE_PATHS, seed=0):
    """Means (and spreads) over Monte-Carlo paths of the finite-d SDE: the effective drift with its
    corrector, plus the SGD noise of ``(v, M)``, covariance ``(gamma^2/d) Cov(g)`` per unit time."""
    p = s.model_params
    model = MODELS[s.model]
    gamma = s.dynamics_params["gamma"]
    times = np.asarray(times, float)
    v0, M0, R0 = initial_law(model, p, s.d, n_paths, np.random.default_rng(seed))
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    solve = _sde_solver(model, p["lam"], p["alpha"], substeps(times, SDE_DT))
    v, M, R = solve((f32(v0), f32(M0), f32(R0)), jax.random.key(seed), f32(np.diff(times)), gamma, float(s.d))
    v = np.concatenate([v0[None], np.asarray(v, float)])
    M = np.concatenate([M0[None], np.asarray(M, float)])
    R = np.concatenate([R0[None], np.asarray(R, float)])
    # risk and error rate are invariant under the mirror group: evaluated on the solved paths only
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    pops = population_along(model, p["lam"], POPULATION_LOG2_N)(f32(v), f32(M), f32(R))
    group = mirror_group(model) if p["init"] == "random" else [(1.0, np.eye(M.shape[-1]))]
    v = np.concatenate([sv * v for sv, _ in group], axis=1)
    M = np.concatenate([M @ T for _, T in group], axis=1)
    R = np.concatenate([R] * len(group), axis=1)
    stats = model.statistics(v, M, R)
    per_path = {k: _per_path(x, len(group), n_paths) for k, x in stats.items()}
    per_path.update({k: np.asarray(x, float) for k, x in pops.items()})
    per_path["reached_optimum"] = _per_path(model.optimum(v, M), len(group), n_paths)
    out = {k: x.mean(axis=1) for k, x in per_path.items()}
    # the Monte-Carlo standard error of each mean: n_paths independent paths (mirror images are not)
    out.update({f"unc({k})": x.std(axis=1, ddof=1) / np.sqrt(n_paths) for k, x in per_path.items()})
    out.update({f"std({k})": x.std(axis=1, ddof=1) for k, x in stats.items() if not k.startswith("R_")})
    return out


def _per_path(x, copies, n_paths):
    """[T, copies * n_paths] (a path's mirror images in blocks) -> [T, n_paths], each path's mean over them."""
    x = np.asarray(x, float)
    return x.reshape(x.shape[0], copies, n_paths).mean(axis=1)
