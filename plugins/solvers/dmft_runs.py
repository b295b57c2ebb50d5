"""The multi-pass DMFT theories as predictors: one solver (``solvers.dmft``), the clock a parameter.

| predictor        | clock of each sample              | theory of                                  | grid                     |
| dmft-gf          | ``dZ = ds``                        | gradient flow (Celentano et al., Mignacco et al.) | Richardson, h, h/2, h/4 |
| dmft-sgf         | ``dZ = ds + sqrt(tau) dW``         | SGF / SME (Nishiyama-Imaizumi; Fan-Wang's SME) | Richardson, 3 levels   |
| dmft-sgd         | ``tau dN``, N Poisson of rate 1/tau | multi-pass SGD, B = o(n) (Fan-Wang)        | Richardson, 3 levels     |
| dmft-sgd-batch   | ``tau Poisson(b)`` per step        | SGD with batch fraction b = B/n, learning rate = the grid step (exact, no extrapolation) | h = gamma B / n (step k: gamma f_k B / n under a schedule) |
| dmft-sgd-epochs  | ``tau`` once an epoch, at a uniform step | SGD reshuffled per epoch (docs/theory/multipass.md section 2a) | aligned with the epochs (under a schedule: cells equal in t, kicks gamma f there); Richardson to h = gamma B / n, or that grid itself |

Each predicts any finite-data scenario of the ``linear``, ``glm`` or ``committee`` model on isotropic
data (GD, SGF, SGD, SGD with epochs): a theory scored on another theory's dynamics is how the
leaderboard shows which limit each dynamics has. ``tau = gamma`` (docs/conventions.md / docs/theory/multipass.md
section 0). Supported: square and logistic losses with smooth activations (linear, erf, tanh,
quadratic: phase retrieval is quadratic/quadratic/square), any teacher link, label noise, ridge;
committees of K hidden units with erf or linear activations, any M, either initialisation, the second
layer fixed (the parameter process of a coordinate is its K first-layer weights); momentum (fixed beta:
SGD at gamma / (1 - beta); dimension-adapted ``kappa``: ``dmft-sgd`` and ``dmft-sgf`` carry the velocity,
``Problem.velocity``); AdaGrad-Norm (``dmft-sgd``, ``dmft-sgf`` and ``dmft-sgd-batch``: a schedule its own
solution sets, ``adagrad_norm``). ``dmft-sgf`` declines phase retrieval (its Euler-Maruyama margin step blows up on
the cubic force at every grid). Not supported: kinks
(relu, hinge: the tangent responses would miss their delta terms), anisotropic data, a trained second
layer (an O(1)-dimensional parameter outside the DMFT's parameter process).

Options (class attributes, or arguments of ``predict_dmft``): ``paths`` and ``tangent_paths``
(Monte-Carlo paths of the sample side, and how many carry tangents), ``replicas``, ``steps`` (grid steps
of the coarsest Richardson level) and ``levels``. The defaults reach 0.5-0.8% of the simulation on the
logistic scenarios of the standard suite (d = 2000).
Each prediction also returns ``unc(NAME)``, the predictor's own uncertainty of NAME: the Monte-Carlo
standard error over independent replicas and the Richardson extrapolation's error estimate, in
quadrature (``predict_dmft``). The leaderboard shows it next to the error. On a linear teacher with the
square loss the sample side is exact in expectation over the clocks, so there is no Monte Carlo:
one replica on a grid of coarse step ``h <= DETERMINISTIC_H``, and ``unc`` is the extrapolation's alone
(the epoch clock too: its dependent increments are averaged exactly, epoch by epoch, ``epoch_square_side``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hdbench import YES, no
from hdbench_plugins.common.committee import named_overlaps, generalisation_error, initial_overlaps, second_layer
from hdbench_plugins.common.glm import population
from hdbench_plugins.solvers import dmft
from hdbench_plugins.solvers.dmft_scaffold import RICHARDSON, combine, extrapolation_weights, interpolate, serial_blas, summarise_replicas
from hdbench_plugins.solvers.multipass import dmft_units, supports_multipass
from hdbench_plugins.solvers.regime import adapted_momentum, flow_clock, rate_along_the_clock, schedule_of, sgd_gamma


SMOOTH_ACTIVATIONS = ("linear", "erf", "tanh", "quadratic")   # the tangents need l'' without delta terms
SMOOTH_LOSSES = ("square", "logistic")
COMMITTEE_ACTIVATIONS = ("erf", "linear")
DETERMINISTIC_H = 0.05     # a linear teacher's fixed point is deterministic: coarse step h <= this (docs/validation/dmft.md)
DETERMINISTIC_STEPS = (40, 80)   # ... within these coarse step counts (levels up to 4x finer: O(T^3) each)
MAX_STEPS = 80             # coarsest level at most when a flow's blow-up is retried on a finer grid
MAX_EXACT_STEPS = 240      # dmft-sgd-batch: more SGD steps than this are declined (cost O(T^3) a path)
COMMITTEE_STEPS = 20       # committees' tangents are dense in K T: the coarsest grid they can afford (docs/validation/dmft.md)
COMMITTEE_PATHS = 2        # committees use 1/2 of the paths: same error within its uncertainty, 40% faster
EPOCH_CELLS = 16           # the epoch clock's coarsest grid: at least this many cells an epoch (its O(h) error is large)
MAX_EPOCH_STEPS = 640      # the epoch clock on the simulation's own grid: at most this many steps
EPOCH_MAX_ITER = 200       # the epoch clock's iteration contracts slowly at large tau (docs/validation/epochs.md)
EPOCH_EXACT_TOL = 0.02     # least squares' exact epoch side: refine until the extrapolation's estimate is 2% of a curve
MAX_EPOCH_EXACT_STEPS = 1280   # ... with the finest level at most this many steps (O(T^3) an iteration)
ASYMPTOTIC_RATIO = 8       # Richardson's levels h, h/2, h/4: a coarse difference this many times the next ...
ASYMPTOTIC_FLOOR = 1e-2    # ... and above this share of the curve's scale drops the coarsest level there
ADAGRAD_POINTS = 161      # AdaGrad-Norm: its accumulator G on this many points of [0, t_end] (trapezoid)
ADAGRAD_TOL = 1e-4         # ... Picard's iteration on G stops when G moves by less than this, relative: it
                           # contracts fast, so G is then far inside the Monte Carlo's noise (docs/theory/multipass.md)
ADAGRAD_ROUGH_TOL = 1e-3   # ... first on one replica to this (about that replica's own noise in G)
ADAGRAD_MAX_ITER = 40
PRIMARIES = ("q", "m", "train", "grad2", "moved2")    # what a solve returns (dmft.Solution), the observables' sources
ACCUMULATOR_RATES = ("grad2", "moved2")     # AdaGrad-Norm's inputs, not observables
MAX_DENSE = 100            # dmft-sgd-batch on a committee: K * (SGD steps) beyond this is declined


def supports_dmft(s, batch_limit=True, velocity=False, adaptive=False):
    """The DMFT's models and regime; ``batch_limit`` False for ``dmft-sgd-batch``, exact at any B/n;
    ``velocity`` for the clocks that carry dimension-adapted momentum's velocity (``Problem.velocity``);
    ``adaptive`` for those that carry AdaGrad-Norm's accumulator (``adagrad_norm``)."""
    base = supports_multipass(s, models=("linear", "glm", "committee"), batch_limit=batch_limit, second_order=velocity,
                              adaptive=adaptive)
    if not base:
        return base
    p = s.model_params
    if s.model == "committee":
        if p["activation"] not in COMMITTEE_ACTIVATIONS:
            return no(f"activation '{p['activation']}' has a kink; the tangent responses need a smooth loss "
                      f"(one of {', '.join(COMMITTEE_ACTIVATIONS)})")
        if p["train_second_layer"]:
            return no("train_second_layer = true: a trained second layer is not in this DMFT (first-layer parameter process only)")
    if s.model == "glm":
        if p["activation"] not in SMOOTH_ACTIVATIONS:
            return no(f"activation '{p['activation']}' has a kink; the tangent responses need a smooth loss "
                      f"(one of {', '.join(SMOOTH_ACTIVATIONS)})")
        if p["loss"] not in SMOOTH_LOSSES:
            return no(f"loss '{p['loss']}' has a kink; supported: {', '.join(SMOOTH_LOSSES)}")
    return YES


def epoch_visits(s):
    """The fraction of samples an epoch visits: ``floor(n / B) B / n`` under ``sgd-epochs`` (the
    remainder of n / B is dropped), 1 otherwise."""
    if s.dynamics != "sgd-epochs":
        return 1.0
    B = s.dynamics_params["batch_size"]
    return (s.n // B) * B / s.n


def problem_of(s, clock, t_end=None, schedule=None):
    """The DMFT ``Problem`` of a scenario and the time scale ``s = scale * t`` (under a schedule
    ``s = scale * int_0^t f``, and the temperature ``tau f(t)`` varies along the clock up to ``t_end``;
    ``schedule``: a factor ``f(t)`` in place of the scenario's)."""
    scale, tau, lam = dmft_units(s)
    p = s.model_params
    q0, m0 = p["q0"], p.get("m0")
    if s.model == "committee":
        side = dmft.CommitteeLoss(p["K"], p["M"], p["activation"], p["A"], tuple(second_layer(p)), p["sigma"])
        q0, m0 = initial_overlaps(p) if p["init"] == "overlaps" else (p["q0"] * np.eye(p["K"]), np.zeros((p["K"], p["M"])))
    elif s.model == "linear" or (p["link"] == "linear" and p["activation"] == "linear" and p["loss"] == "square"):
        side = dmft.SquareLinear(p["sigma"])        # exact in expectation over every clock, the epoch's too
    else:
        side = dmft.GlmLoss(p["link"], p["activation"], p["loss"], p["sigma"])
    if clock != "flow" and tau == 0:      # SGF / SGD theories of a GD scenario: the scenario's gamma
        tau = s.dynamics_params["gamma"]
    epoch = tau * epoch_visits(s) if clock == "epoch" else None
    velocity = s.dynamics_params["kappa"] / scale if adapted_momentum(s) else None     # kappa per unit t, in s
    return dmft.Problem(side=side, alpha=s.alpha, lam=lam, q0=q0, m0=m0, tau=tau, clock=clock, epoch=epoch,
                        tau_at=_temperature(s, tau, scale, t_end, schedule) if clock != "flow" else None,
                        velocity=velocity), scale


def _extrapolated(s, s_times, solved, s_max, steps, target_step):
    """The curves of the levels ``solved`` combined, and the extrapolation one order lower from the finer
    levels (None for a single level)."""
    with np.errstate(invalid="ignore"):
        grids = [{k: interpolate(s_times, sol.s, getattr(sol, k).mean(0)) for k in PRIMARIES}
                 for sol, _ in solved]
    best = combine([c for _, c in solved], grids)
    if len(solved) == 1:
        return _curves(s, best), None
    fewer = len(solved) - 1
    weights = extrapolation_weights(fewer, s_max / steps / 2, target_step) if target_step else RICHARDSON[fewer]
    low = combine(weights, grids[1:])
    if len(solved) == 3 and not target_step:
        coarse = _before_the_asymptotic_regime(grids)
        if coarse.any():        # there the finer two levels' extrapolation, with the first-order error estimate
            best, low = (_where(coarse, replace, keep) for replace, keep in ((low, best), (grids[2], low)))
    return _curves(s, best), _curves(s, low)


def _before_the_asymptotic_regime(grids):
    """The times where the coarsest of three levels is not yet in the regime ``c1 h + c2 h^2`` that
    Richardson assumes (a fast early transient its step does not resolve): its difference to the next
    level exceeds ``ASYMPTOTIC_RATIO`` times the next one's (2 to 4 in that regime) and
    ``ASYMPTOTIC_FLOOR`` of the curve's scale, for any primary."""
    out = np.zeros(len(grids[0]["q"]), bool)
    with np.errstate(invalid="ignore"):
        for k in ("q", "m", "train"):
            g = [np.asarray(x[k]).reshape(len(out), -1) for x in grids]
            d1, d2 = np.abs(g[0] - g[1]).max(1), np.abs(g[1] - g[2]).max(1)
            finite = np.isfinite(g[2])
            scale = np.abs(g[2][finite]).max(initial=0.0)
            out |= (d1 > ASYMPTOTIC_RATIO * d2) & (d1 > ASYMPTOTIC_FLOOR * scale)
    return out


def _where(mask, a, b):
    """``a`` where ``mask`` (over times) else ``b``, per curve."""
    return {k: np.where(mask.reshape((-1,) + (1,) * (np.ndim(a[k]) - 1)), a[k], b[k]) for k in a}


def _extrapolation_gap(*args):
    """The largest gap between the extrapolation and the one an order lower, relative to each curve's
    scale (the a-posteriori error estimate ``unc`` reports)."""
    best, low = _extrapolated(*args)
    if low is None:
        return 0.0
    gaps = [np.max(np.abs(best[k] - low[k])) / max(np.max(np.abs(best[k])), 1e-12) for k in best
            if k not in ACCUMULATOR_RATES]
    return float(np.nan_to_num(max(gaps), nan=np.inf))


def _sgd_steps(s, times, problem, scale, exact_step, schedule):
    """Under a schedule, the simulated SGD's own grid: step k (``dt = exact_step / scale = B/d`` of t)
    has the factor ``f_k = f((k + 1/2) dt)``, so its size ``exact_step f_k`` and temperature ``tau f_k``
    (``dmft.solve``'s ``steps``). Returns the problem without ``tau_at``, the steps and the clock at
    the output times (grid nodes: the simulation records at whole steps)."""
    dt = exact_step / scale
    T = max(1, int(np.ceil(float(np.max(times)) / dt - 1e-9)))
    f = np.asarray(schedule((np.arange(T) + 0.5) * dt), float)
    nodes = np.concatenate([[0.0], np.cumsum(exact_step * f)])
    at = nodes[np.clip(np.rint(np.asarray(times, float) / dt).astype(int), 0, T)]
    return dataclasses.replace(problem, tau_at=None), (exact_step * f, problem.tau * f), at


def _epoch_steps(schedule, problem, scale, s_max, T):
    """Under a schedule, the epoch clock's grid of ``T`` cells spanning ``s_max`` at a constant rate: cells
    of equal length in t (each visited with the same probability), cell k's kick ``tau f_k`` with ``f_k``
    the schedule's mean over the cell (8-point Gauss-Legendre) and its step ``(visit / cells) tau f_k``.
    Returns ``(h_k, tau_k)`` and the cells an epoch."""
    cells = int(round(T * problem.epoch / s_max))
    dt = s_max / scale / T
    nodes, weights = np.polynomial.legendre.leggauss(8)
    points = (np.arange(T)[:, None] + (nodes[None, :] + 1) / 2) * dt
    tau = problem.tau * (np.asarray(schedule(points.ravel()), float).reshape(T, -1) @ weights / 2)
    return (problem.epoch / problem.tau / cells * tau, tau), cells


def _temperature(s, tau, scale, t_end, schedule=None):
    """``s -> tau f(t(s))`` along the DMFT clock, or None without a schedule."""
    rate = rate_along_the_clock(s, scale, t_end, schedule=schedule)
    return None if rate is None else (lambda sv: tau * rate(sv))


def _observables(s, q, m, train):
    """Named curves from ``q``, ``m``, the train loss (each [times])."""
    p = s.model_params
    if s.model == "committee":
        M = p["M"]
        v, A = second_layer(p), np.full(M, p["A"])
        gen = np.array([generalisation_error(p["activation"], Q, R, np.eye(M), v, A, np) for Q, R in zip(q, m)])
        return {"gen_error": gen, "risk": gen + 0.5 * p["sigma"] ** 2, "train_risk": train,
                **named_overlaps(q, m, np.tile(v, (len(train), 1)))}
    if s.model == "linear":
        D = q - 2 * m + 1
        return {"risk": 0.5 * (D + p["sigma"] ** 2), "D": D, "m": m, "q": q, "train_risk": train}
    out = {"m": m, "q": q, "train_risk": train}
    pops = [population(mi, qi, p) for mi, qi in zip(m, q)]
    for name in pops[0]:
        out[name] = np.array([float(x[name]) for x in pops])
    return out


@serial_blas
def predict_dmft(s, times, clock, steps=40, levels=2, paths=16000, tangent_paths=4000, replicas=4,
                 exact_step=None, seed=0, target_step=0.0, tol=dmft.TOL, schedule=None, gradients=False):
    """Curves and their uncertainty ``unc(NAME)``.

    ``replicas`` independent solves, each with ``paths / replicas`` Monte-Carlo paths (of which
    ``tangent_paths / replicas`` carry tangents; see ``dmft.solve``); the answer is their mean. Each
    replica is a Richardson extrapolation over ``levels`` grids of ``steps``, ``2 steps`` (, ``4 steps``)
    steps, which removes the error terms O(h) (, O(h^2)); the coarser levels' noise is aggregated from
    the finest level's. Or one solve on the grid ``h = exact_step`` (``dmft-sgd-batch``, exact).
    ``unc(NAME)`` combines in quadrature the standard error of the replica mean (independent replicas:
    honest whatever the correlation between the iterates of one solve) and the extrapolation error
    estimate ``|R_levels - R_(levels-1)|`` (the extrapolant from one level fewer, on the finer grids:
    the standard a-posteriori bound, conservative for the higher-order one); at times where the coarsest
    of three levels is not yet in the asymptotic regime (``_before_the_asymptotic_regime``), the finer two
    levels' extrapolation and the finest level's gap to it. ``target_step``: the step
    the extrapolation goes to, 0 for the time-continuous limit, or the simulated algorithm's own step
    when the grid discretises exactly as it does (the epoch clock). The epoch clock's grids are aligned
    with the epochs: ``steps`` is rounded so that an epoch holds a whole number of coarse cells.
    ``schedule``: a factor ``f(t)`` in place of the scenario's schedule; ``gradients``: also return
    ``grad2``, the train samples' mean squared force ``E |l'(r)|^2`` (AdaGrad-Norm's accumulator rate),
    and on the grid ``exact_step`` ``moved2``, the squared move ``|theta_{k+1} - theta_k|^2`` of the step
    starting at each time (``adagrad_norm``'s input at a finite batch fraction).
    """
    schedule = schedule_of(s) if schedule is None else schedule
    problem, scale = problem_of(s, clock, float(np.max(times)), schedule)
    s_times = scale * flow_clock(s, times, schedule)
    s_max = max(float(s_times[-1]), 1e-9)
    uneven = None
    if exact_step is not None and problem.tau_at is not None:     # a schedule: the simulated SGD's own steps
        problem, uneven, s_times = _sgd_steps(s, times, problem, scale, exact_step, schedule)
        s_max = float(s_times[-1])
    deterministic = problem.side.exact_paths      # square loss on a linear teacher: no Monte Carlo (dmft.solve)
    if deterministic:             # no Monte Carlo: one replica, on a grid fine for the time span
        steps, replicas = int(np.clip(np.ceil(s_max / DETERMINISTIC_H), *DETERMINISTIC_STEPS)), 1
    epoch_schedule = clock == "epoch" and problem.tau_at is not None and exact_step is None
    if clock == "epoch" and exact_step is None:      # a grid aligned with the epochs
        # under a schedule in the clock at a constant rate (t scale), each level's grid then follows f
        span = scale * float(np.max(times)) if epoch_schedule else s_max
        cells = max(EPOCH_CELLS, int(round(steps * problem.epoch / span)))
        steps = int(np.ceil(span * cells / problem.epoch - 1e-9))
        s_max = steps * problem.epoch / cells
    runs, lower = [], []
    more = {"tol": tol, "max_iter": EPOCH_MAX_ITER} if clock == "epoch" else {"tol": tol}
    refine = deterministic and clock == "epoch" and exact_step is None
    for r in range(replicas):
        args = (paths // replicas, tangent_paths // replicas, seed + 7919 * r)
        done = {}           # exact sides: a level's solve is reused when the grids are refined
        while True:
            if uneven is not None:
                T = len(uneven[0])
                cells = int(round(problem.epoch / exact_step)) if clock == "epoch" else None
                solved = [(dmft.solve(problem, float(uneven[0].sum()), T, *args, steps=uneven, cells=cells, **more), 1.0)]
                break
            if exact_step is not None:
                T = max(1, int(np.ceil(s_max / exact_step - 1e-9)))
                solved = [(dmft.solve(problem, T * exact_step, T, *args, **more), 1.0)]
                break
            weights = extrapolation_weights(levels, s_max / steps, target_step) if target_step else RICHARDSON[levels]
            solved = []
            for i, c in enumerate(weights):
                T = steps * 2**i
                if T in done and deterministic:      # exact sides: reused when the grids are refined
                    pass
                elif epoch_schedule:
                    grid, cells = _epoch_steps(schedule, problem, scale, s_max, T)
                    done[T] = dmft.solve(dataclasses.replace(problem, tau_at=None), float(grid[0].sum()), T, *args,
                                         coarsen=levels - 1 - i, steps=grid, cells=cells, **more)
                else:
                    done[T] = dmft.solve(problem, s_max, T, *args, coarsen=levels - 1 - i, **more)
                solved.append((done[T], c))
            # SGF's explicit margin step is unstable where h l'' > 2 (phase retrieval's large labels; gradient
            # flow's step is implicit, see dmft.solve); the flows are not, so their blow-up is retried finer
            blown = any(not np.isfinite(sol.q).all() for sol, _ in solved)
            if blown and clock in ("flow", "gaussian") and steps < MAX_STEPS:
                steps *= 2
                continue
            # the exact epoch side is cheap enough to refine until its extrapolation settles: near the
            # stability edge the coarse grids' own algorithm is unstable (docs/validation/epochs.md)
            if not (refine and _extrapolation_gap(s, s_times, solved, s_max, steps, target_step) > EPOCH_EXACT_TOL
                    and steps * 2**levels <= MAX_EPOCH_EXACT_STEPS):
                break
            steps *= 2
        best, low = _extrapolated(s, s_times, solved, s_max, steps, target_step)
        runs.append(best)
        if low is not None:
            lower.append(low)
    out = summarise_replicas(runs, lower or None)
    # a step's move is the grid's own: meaningless once levels of several grids are combined
    dropped = () if gradients and exact_step is not None else ("moved2",)
    dropped += () if gradients else ("grad2",)
    return {k: v for k, v in out.items() if k not in dropped + tuple(f"unc({x})" for x in dropped)}


def adagrad_norm(s, times, predict, dt=None, rough=None):
    """AdaGrad-Norm on finite data: SGD under the schedule ``f(t) / sqrt(1 + G(t) / b^2)`` (``sgd_gamma`` is
    its starting rate ``gamma / b``), where ``G(t) = int_0^t E_i |l'(r_i)|^2`` accumulates the train
    samples' mean squared force (``regime.adaptive_ode``'s ``dG/dt``, the DMFT's ``grad2``; a ridge
    penalty's share of a per-sample gradient's squared norm, ``O(1/d)`` of it, drops out).
    ``predict(times, schedule)``: the DMFT's curves and ``grad2`` under a schedule, with common random
    numbers from call to call. The rate at t depends on ``G`` before t only, so Picard's iteration
    converges (its error falls like ``(c t)^n / n!``): from ``G = 0``, solve under the last ``G``'s rate
    until ``G`` on ``ADAGRAD_POINTS`` points moves by less than ``ADAGRAD_TOL`` of its largest value.
    ``rough``: a cheaper ``predict`` (one replica) whose iteration runs first, to ``ADAGRAD_ROUGH_TOL``:
    ``predict`` then starts within the rough solve's noise of its own fixed point.

    ``dt``: the simulated SGD's own step ``B/d`` (``dmft-sgd-batch``, a finite batch fraction). Then ``G``
    is the simulation's sum: step k reads ``G_k = sum_{j <= k} (B/d)^2 |g_j|^2``, and the squared batch
    gradient ``(B/d)^2 |g_j|^2 = |theta_{j+1} - theta_j|^2 / gamma_j^2`` is the solve's ``moved2`` over
    the step's rate. It holds the ``(B/d)^2 |grad L|^2`` term (penalty included) that ``grad2`` lacks, O(1)
    when ``B/d`` is. Returns the last solve's curves at ``times``."""
    b2 = s.dynamics_params["b"] ** 2
    base = schedule_of(s)
    t_end = float(np.max(times))
    if dt is None:
        grid = np.linspace(0.0, t_end, ADAGRAD_POINTS)
    else:       # the step nodes; the simulation records at whole steps
        grid = dt * np.arange(max(1, int(np.ceil(t_end / dt - 1e-9))) + 1)
        mids = (np.arange(len(grid) - 1) + 0.5) * dt
        f = np.ones(len(mids)) if base is None else np.asarray(base(mids), float)
        gamma0 = sgd_gamma(s)
    union = np.union1d(grid, times)
    at_grid, at_times = np.searchsorted(union, grid), np.searchsorted(union, times)

    def rate_of(G):
        if dt is None:
            def rate(t):
                factor = 1.0 / np.sqrt(1.0 + np.interp(t, grid, G) / b2)
                return factor if base is None else np.asarray(base(t), float) * factor
            return rate, None
        factors = f / np.sqrt(1.0 + G[1:] / b2)        # G[k + 1] = G_k, step k's (its midpoint's) rate
        return (lambda t: factors[np.clip(np.floor(np.asarray(t, float) / dt).astype(int), 0, len(factors) - 1)]), factors

    G = np.zeros(len(grid))
    for solve, tol in ([(rough, ADAGRAD_ROUGH_TOL)] if rough is not None else []) + [(predict, ADAGRAD_TOL)]:
        for _ in range(ADAGRAD_MAX_ITER):
            rate, factors = rate_of(G)
            out = solve(union, rate)
            if dt is None:
                g2 = out["grad2"][at_grid]
                fresh = np.concatenate([[0.0], np.cumsum((g2[1:] + g2[:-1]) / 2 * np.diff(grid))])
            else:
                fresh = np.concatenate([[0.0], np.cumsum(out["moved2"][at_grid][:-1] / (gamma0 * factors) ** 2)])
            if not np.isfinite(fresh).all():        # a divergence: the last solve's curves say where
                break
            moved, G = np.max(np.abs(fresh - G)), fresh
            if moved <= tol * max(np.max(G), 1e-12):
                break
        else:       # an unsettled G is a wrong rate: a recorded failure, not a curve
            if solve is predict:
                raise RuntimeError(f"adagrad-norm: the accumulator G still moved by {moved:.2g} after "
                                   f"{ADAGRAD_MAX_ITER} solves")
    return {k: np.asarray(v)[at_times] for k, v in out.items()
            if k not in ACCUMULATOR_RATES + tuple(f"unc({x})" for x in ACCUMULATOR_RATES)}


def _curves(s, prim):
    """Observables from the primaries ``{q, m, train}``, and the accumulator rates as they are, +inf from the first
    non-finite time on."""
    rates, prim = {k: prim[k] for k in ACCUMULATOR_RATES}, [prim[k] for k in ("q", "m", "train")]
    blown = np.maximum.accumulate(~np.logical_and.reduce([np.isfinite(x).reshape(len(x), -1).all(1) for x in prim]))
    curves = _observables(s, *(np.where(blown.reshape((-1,) + (1,) * (x.ndim - 1)), 0.0, x) for x in prim))
    curves.update(rates)
    return {k: np.where(blown, np.inf, v) for k, v in curves.items()}


