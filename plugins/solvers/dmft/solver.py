"""The DMFT solve: the problem's sample side and the parameter side closed by the fixed-point iteration of
``dmft_scaffold.iterate``, on one grid.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hdbench_plugins.solvers.dmft_scaffold import iterate
from hdbench_plugins.solvers.dmft.clocks import (JUMP_CLOCKS, clock_increments, clock_second_moment, epoch_cells, epoch_kicks,
                                                 epoch_past, epoch_priors, jump_indices, moment_matched)
from hdbench_plugins.solvers.dmft.linalg import psd_cholesky
from hdbench_plugins.solvers.dmft.parameter_side import RHO, diagonal_blocks, parameter_side
from hdbench_plugins.solvers.dmft.sample_side import (CHUNK, CommitteeLoss, committee_side, epoch_square_side, first_blowup,
                                                      glm_side, square_side_moments)


# With common random numbers the iteration is a deterministic map: a loose stop is a bias every replica
# shares, not noise (docs/validation/dmft.md)
TOL = 1e-4


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
    epoch: float | None = None   # the epoch clock's epoch length (``tau`` when each epoch visits every sample)
    tau_at: object = None        # under a schedule: s -> the temperature at s (``tau`` is then its scale)
    velocity: float | None = None   # heavy ball's rate in s (dimension-adapted momentum: kappa alpha / gamma)


@dataclasses.dataclass
class Solution:
    """The grid ``s`` [K] and, per averaged iterate [A, K], ``q = C_theta(s, s)``, ``m``, the train
    loss ``E loss(r(s), y)`` and ``grad2``, the mean squared force ``E |l'(r(s), y)|^2`` over the train
    samples (summed over a committee's units; the epoch clock: given a kick at s; the last point
    repeats the one before, the grid's end having no force), and ``moved2``, step k's squared move
    ``|theta(s_{k+1}) - theta(s_k)|^2 = C(k+1, k+1) - 2 C(k+1, k) + C(k, k)`` (the last point repeats too)."""
    s: np.ndarray
    q: np.ndarray
    m: np.ndarray
    train: np.ndarray
    grad2: np.ndarray
    moved2: np.ndarray
    iterations: int
    converged: bool


def solve(problem: Problem, s_max: float, T: int, paths: int = 16000, tangent_paths: int = 4000, seed: int = 0,
          coarsen: int = 0, damping: float = 0.6, tol: float = TOL, max_iter: int = 60, average: int = 3,
          implicit: bool | None = None, steps=None, cells: int | None = None) -> Solution:
    """The fixed point on ``T`` steps of ``h = s_max / T`` (module doc). ``paths``: Monte-Carlo paths of
    the sample side (none for the square loss on a linear teacher: ``square_side_moments``, or
    ``epoch_square_side`` under the epoch clock, is exact in expectation over the clocks, so that fixed
    point is deterministic and iterated to ``tol = 1e-12``);
    ``tangent_paths``: how many of them also carry the tangents for ``R_G`` (O(T^3) each);
    ``coarsen``: draw the noise ``2^coarsen`` times finer and aggregate it (see ``draw``);
    ``implicit``: the linearly implicit margin step of ``glm_side`` (default: for the flow clock of a
    Monte-Carlo side, the only clock whose increments are never negative and never a large jump; a
    linear teacher with square loss is solved exactly, with the explicit step);
    ``steps``: an uneven grid ``(h_k, tau_k)`` [T] each, step k of size ``h_k`` at temperature ``tau_k``
    (``dmft-sgd-batch`` under a schedule: one SGD step each, ``sum h_k = s_max``; jump clocks, no
    ``coarsen`` but for the epoch clock); ``cells``: the epoch clock on an uneven grid, its cells an
    epoch (then ``h_k = (visit / cells) tau_k``: each cell is visited with the same probability, its kick
    ``tau_k`` is the temperature there)."""
    h = s_max / T
    p = problem
    epochs = p.clock == "epoch"
    if steps is not None:
        if ((coarsen and not epochs) or p.clock not in JUMP_CLOCKS or p.tau_at is not None
                or p.velocity is not None or (cells is None) == epochs):
            raise ValueError("an uneven grid is for the jump clocks' exact steps, without tau_at or velocity, "
                             "coarsen and cells for the epoch clock only")
        hk, tauk = (np.asarray(x, float) for x in steps)
        if hk.shape != (T,) or tauk.shape != (T,) or abs(hk.sum() - s_max) > 1e-9 * s_max:
            raise ValueError(f"steps: {T} step sizes summing to s_max = {s_max:g} and {T} temperatures")
        if epochs and not np.allclose(hk, p.epoch / p.tau / cells * tauk, rtol=1e-9, atol=0.0):
            raise ValueError("steps: the epoch clock's step k is (visit / cells) tau_k")
    K = T + 1
    committee = isinstance(p.side, CommitteeLoss)
    pd, md = (p.side.hidden, p.side.teachers) if committee else (1, 1)
    Q0, R0 = np.reshape(np.asarray(p.q0, float), (pd, pd)), np.reshape(np.asarray(p.m0, float), (pd, md))
    deterministic = p.side.exact_paths
    if epochs and steps is None:
        cells = epoch_cells(h, p.epoch)
    cells = cells if epochs else 0
    visit = p.epoch / p.tau if epochs else 0.0
    kicks = (p.tau if steps is None else tauk) if epochs else None
    implicit = (p.clock == "flow" and not p.side.exact_paths and not committee) if implicit is None else implicit
    if implicit and (p.clock != "flow" or p.side.exact_paths or committee):
        raise ValueError("the implicit margin step is built for the flow clock of a Monte-Carlo (GlmLoss) side")
    if deterministic:
        paths, chunk, tol, average = 1, 1, 1e-12, 1
    else:
        chunk = CHUNK
        tangent_paths = min(tangent_paths, paths)
    paths = max(chunk, int(np.ceil(paths / chunk)) * chunk)
    chunks = paths // chunk
    per_chunk = max(1, int(round(tangent_paths / chunks)))
    if p.tau_at is not None and (epochs or p.clock == "bernoulli"):
        raise ValueError(f"clock '{p.clock}': no temperature that varies along the clock")

    def temperatures(n):
        """The temperature of each of ``n`` steps over [0, s_max]: its mean over the step (8-point
        Gauss-Legendre), so that each step's clock variance is exact (a warmup from 0 makes the
        temperature ~ sqrt(s) near 0, where the midpoint's error is not a power series in h)."""
        if p.tau_at is None:
            return p.tau
        nodes, weights = np.polynomial.legendre.leggauss(8)
        step = s_max / n
        points = (np.arange(n)[:, None] + (nodes[None, :] + 1) / 2) * step
        return np.asarray(p.tau_at(points.ravel()), float).reshape(n, -1) @ weights / 2

    m2 = clock_second_moment(p.clock, h, p.tau)
    m2_steps = np.full(T, m2)
    if steps is not None:
        m2_steps = clock_second_moment(p.clock, hk, tauk)
        m2 = float(np.mean(m2_steps))
    if p.tau_at is not None:    # E dZ^2 per step: h^2 plus the variances of the 2^coarsen fine steps it sums
        fine = T * 2**coarsen
        variance = clock_second_moment(p.clock, h / 2**coarsen, temperatures(fine)) - (h / 2**coarsen) ** 2
        m2_steps = h * h + np.broadcast_to(variance, (fine,)).reshape(T, -1).sum(1)
        m2 = float(np.mean(m2_steps))
    key = jax.random.PRNGKey(seed)

    def draw(key):
        """Noise on a grid ``2^coarsen`` times finer, aggregated: levels of one Richardson
        extrapolation drawn with the same seed share their randomness (their errors correlate, so
        ``2 f_{h/2} - f_h`` is less noisy than with independent draws)."""
        if deterministic:
            return ()
        kz, kx, kr, ke = jax.random.split(key, 4)
        Tf = T * 2**coarsen
        if epochs:      # where the kicks are; their sizes are the coarse grid's (below)
            dZ = epoch_kicks(kz, (paths, Tf), cells * 2**coarsen, visit)
        elif steps is None:
            dZ = clock_increments(p.clock, kz, (paths, Tf), h / 2**coarsen, temperatures(Tf))
        else:
            dZ = clock_increments(p.clock, kz, (paths, T), hk, tauk)
        xi = np.asarray(jax.random.normal(kx, (paths, Tf + 1, pd), jnp.float64))
        for _ in range(coarsen):
            dZ = dZ[:, 0::2] + dZ[:, 1::2]
            xi = np.concatenate([xi[:, :1], (xi[:, 1::2] + xi[:, 2::2]) / np.sqrt(2)], axis=1)
        if epochs:
            dZ = dZ * kicks
        dZ = np.concatenate([dZ, np.zeros((paths, 1))], axis=1)
        prior = epoch_priors(dZ, cells) if epochs else np.full(dZ.shape, T)
        jumps = jump_indices(dZ) if sparse else np.zeros((paths, 1), np.int64)
        rstar = np.asarray(jax.random.normal(kr, (paths, md), jnp.float64))
        eps = np.asarray(jax.random.normal(ke, (paths, 1), jnp.float64))
        Z = moment_matched(np.column_stack([rstar, eps, xi.reshape(paths, -1)]))
        return Z[:, md + 1:], Z[:, :md] if committee else Z[:, 0], Z[:, md], dZ, prior, past, jumps

    def side(noise):
        """The jitted sample side for this draw (jump clocks: compiled per padded jump count)."""
        if deterministic:
            return None
        width = noise[-1].shape[1] if sparse else None
        if committee:
            return committee_side(p.side, K, chunks, min(per_chunk, chunk), cells, stein=stein)
        return glm_side(p.side, K, chunks, min(per_chunk, chunk), width, implicit, cells, stein)

    sparse = p.clock in JUMP_CLOCKS and not committee
    # Stein's response is validated under the flow clock only (phase retrieval GD, docs/validation/dmft.md);
    # SGF's dense side keeps the tangents alone
    stein = p.clock == "flow"
    past = epoch_past(K, cells or None)
    grid_steps = np.full(T, h) if steps is None else hk
    carry = None if p.velocity is None else float(np.exp(-p.velocity * h))    # the velocity's memory a step
    current = {"key": key, "valid": K}

    def redraw():
        """Fresh random numbers for the averaging phase."""
        current["key"], sub = jax.random.split(current["key"])
        current["consts"] = current["consts"].at[3].set(1.0)     # the epoch clock's exact train loss from now on
        current["noise"] = draw(sub)
        current["run"] = side(current["noise"])

    def update(kernels):
        RG, mu, CG, up = kernels
        C, m, Rt = parameter_side(RG, mu, CG, grid_steps, p.lam, Q0, R0, up if implicit else None, carry)
        noise = (jnp.asarray(a) for a in current["noise"])
        if deterministic:
            S = C - m[:, :1] - m[:, 0][None, :] + RHO + p.side.sigma ** 2
            out = (epoch_square_side(p.alpha, S, Rt, cells, visit, kicks) if epochs else
                   square_side_moments((p.alpha, grid_steps, m2_steps), S, Rt))
        else:
            # past a divergence (index ``valid``) C is huge: factor only the sane block, so that
            # its scale cannot wreck the factor of the early times
            Lperp = np.zeros((K * pd, K * pd))
            v = current["valid"] * pd
            Lperp[:v, :v] = psd_cholesky((C - m @ m.T / RHO)[:v, :v])
            out = current["run"](current["consts"], jnp.asarray(grid_steps), jnp.asarray(Lperp),
                                 jnp.asarray(m if committee else m[:, 0]),
                                 jnp.asarray(Rt), *noise)
        nRG, nmu, nCG, train, nup = (np.array(x).reshape(shape) for x, shape in zip(out, (
            (T, T, pd, pd), (T, pd, md), (T, T, pd, pd), (K,), (T, pd, pd))))
        if (p.tau_at is not None or steps is not None) and not deterministic:    # the side's diagonal took one E dZ^2 for all steps
            nCG[np.arange(T), np.arange(T)] *= (m2_steps / m2)[:, None, None]
        bad = first_blowup(nRG, nmu, nCG, train, nup)
        current["valid"] = max(bad, 1)
        if bad < K:             # some paths diverge: keep the finite past, mark the rest +inf
            nRG[bad:], nRG[:, bad:], nmu[bad:], nCG[bad:], nCG[:, bad:], nup[bad:] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        sane = (np.arange(K) < bad)[:, None, None]
        # C_G(k, k) = alpha E dZ_k^2 E|l'(r_k)|^2
        grad2 = np.trace(nCG[np.arange(T), np.arange(T)], axis1=1, axis2=2) / (p.alpha * m2_steps)
        Ck = np.trace(C.reshape(K, pd, K, pd), axis1=1, axis2=3)
        moved2 = np.diag(Ck)[1:] - 2 * np.diag(Ck, -1) + np.diag(Ck)[:-1]
        state = {"q": np.where(sane, diagonal_blocks(C, pd), np.inf), "m": np.where(sane, m.reshape(K, pd, md), np.inf),
                 "train": np.where(sane[:, 0, 0], train, np.inf),
                 "grad2": np.where(sane[:, 0, 0], np.append(grad2, grad2[-1]), np.inf),
                 "moved2": np.where(sane[:, 0, 0], np.append(moved2, moved2[-1]), np.inf)}
        if not committee:       # the GLM's error, which the convergence test follows relative to itself
            state["distance"] = np.where(sane[:, 0, 0], C.diagonal() - 2 * m[:, 0] + RHO, np.inf)
        return state, (nRG, nmu, nCG, nup)

    with jax.enable_x64(True):
        current["consts"] = jnp.asarray([p.alpha, h, m2, 0.0, visit / cells if epochs else 0.0], jnp.float64)
        current["noise"] = draw(key)
        current["run"] = side(current["noise"])
        start = (np.zeros((T, T, pd, pd)), np.zeros((T, pd, md)), np.zeros((T, T, pd, pd)), np.zeros((T, pd, pd)))
        fixed = iterate(update, start, redraw, damping=1.0 if deterministic else damping, tol=tol,
                        max_iter=max_iter, average=average, fresh_average=epochs)
    history, it, converged = ([tuple(st[k] for k in ("q", "m", "train", "grad2", "moved2")) for st in fixed.history],
                              fixed.iterations, fixed.converged)
    q, m, train, grad2, moved2 = (np.array(x) for x in zip(*history))
    if not committee:
        q, m = q[:, :, 0, 0], m[:, :, 0, 0]
    grid = np.concatenate([[0.0], np.cumsum(grid_steps)])
    return Solution(s=grid, q=q, m=m, train=train, grad2=grad2, moved2=moved2, iterations=it, converged=converged)
