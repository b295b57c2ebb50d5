"""``dmft-gf``, ``dmft-sgf``, ``dmft-sgd``, ``dmft-sgd-batch``, ``dmft-sgd-epochs``: multi-pass learning on
n = alpha d samples by one DMFT with five clocks (deterministic, Gaussian, Poisson, Poisson on the SGD
step itself, one kick per epoch). Equations: :mod:`hdbench_plugins.solvers.dmft` and
docs/theory/multipass.md sections 1-3.
"""
from __future__ import annotations

import numpy as np

import hdbench
from hdbench import YES, Predictor, no
from hdbench_plugins.solvers.regime import adapted_momentum, on_clock, schedule_of, sgd_gamma
from hdbench_plugins.solvers.dmft_runs import (COMMITTEE_PATHS, COMMITTEE_STEPS, EPOCH_CELLS, MAX_DENSE, MAX_EPOCH_STEPS,
                                              MAX_EXACT_STEPS, adagrad_norm, predict_dmft, supports_dmft)


class _DMFT(Predictor):
    clock = "flow"
    steps = 20              # coarsest Richardson level (then 2 and 4 times finer)
    levels = 3
    paths = 16000           # Monte-Carlo paths of the sample side
    tangent_paths = 4000    # of which carry the O(T^3) tangents (a linear teacher's square loss has no paths)
    replicas = 4            # independent solves: their spread is the reported uncertainty
    velocity = False        # carries dimension-adapted momentum's velocity (Problem.velocity)
    adaptive = False        # carries AdaGrad-Norm's accumulator (dmft_runs.adagrad_norm)

    def supports(self, s):
        base = supports_dmft(s, velocity=self.velocity, adaptive=self.adaptive)
        if base and self.velocity and adapted_momentum(s) and schedule_of(s) is not None:
            return no("dimension-adapted momentum under a schedule: the velocity's memory varies along the "
                      "DMFT clock, which this theory does not carry")
        return base

    def predict(self, s, times):
        steps, paths, tangent_paths = self.steps, self.paths, self.tangent_paths
        if s.model == "committee":
            steps, paths, tangent_paths = min(steps, COMMITTEE_STEPS), paths // COMMITTEE_PATHS, tangent_paths // COMMITTEE_PATHS
        if s.dynamics == "adagrad-norm":
            solve = lambda replicas: lambda t, f: predict_dmft(
                s, t, self.clock, steps, self.levels, paths * replicas // self.replicas,
                tangent_paths * replicas // self.replicas, replicas, schedule=f, gradients=True)
            return adagrad_norm(s, times, solve(self.replicas), rough=solve(1))
        return predict_dmft(s, times, self.clock, steps, self.levels, paths, tangent_paths, self.replicas,
                            target_step=self.target_step(s))

    def target_step(self, s):
        """The grid step the Richardson extrapolation goes to (0: the time-continuous limit)."""
        return 0.0


class DmftGF(_DMFT):
    name = "dmft-gf"
    description = "multi-pass gradient flow on finite data: DMFT (deterministic clocks), Richardson in h"
    clock = "flow"
    schedules = True        # a noise-free flow: a schedule only changes its clock, tau(t) = int_0^t f

    def predict(self, s, times):
        return on_clock(super().predict, s, times)


class DmftSGF(_DMFT):
    name = "dmft-sgf"
    description = "stochastic gradient flow / SME on finite data: DMFT with Gaussian clocks (Nishiyama-Imaizumi)"
    clock = "gaussian"
    schedules = True        # the clock runs at int gamma(t) dt / alpha, its temperature gamma(t) varies along it
    velocity = True
    adaptive = True         # AdaGrad-Norm: a schedule that its own solution sets

    def supports(self, s):
        base = super().supports(s)
        if base and s.model == "glm" and (s.model_params["activation"], s.model_params["loss"]) == ("quadratic", "square"):
            # refining the grid barely shrinks the share of paths that blow up (docs/validation/dmft.md)
            return no("activation 'quadratic' with the square loss: a cubic force, on which the Gaussian clock's "
                      "Euler-Maruyama margin step blows up on some paths at every grid (use dmft-gf or dmft-sgd)")
        return base


class DmftSGD(_DMFT):
    name = "dmft-sgd"
    description = "multi-pass SGD, B = o(n): DMFT with Poisson clocks (Fan-Wang), Richardson in h"
    clock = "poisson"
    steps = 40              # jump clocks: sparse tangents make fine grids cheap; their O(b) error is large
    schedules = True        # as dmft-sgf: kicks of gamma(t) at rate 1/gamma(t) on the clock int gamma dt / alpha
    velocity = True
    adaptive = True


class DmftSGDBatch(_DMFT):
    name = "dmft-sgd-batch"
    description = "multi-pass SGD with batch fraction b = B/n: DMFT on the SGD step itself (exact for the simulation)"
    clock = "poisson"
    schedules = True        # step k of the grid is SGD's step k: size gamma f_k b, kicks of gamma f_k
    adaptive = True         # AdaGrad-Norm: step k's rate from the squared moves of steps <= k (adagrad_norm's dt)
    examples = [{"model": {"name": "glm", "params": {"loss": "logistic"}},
                 "dynamics": {"name": "sgd", "params": {"gamma": 1.0, "batch_size": 8}},
                 "alpha": 2.0, "d": 200, "t_max": 2.0}]

    def supports(self, s):
        base = supports_dmft(s, batch_limit=False, adaptive=True)      # exact at any batch fraction b = B/n
        if not base:
            return base
        if s.dynamics not in ("sgd", "adagrad-norm"):
            return no(f"dynamics '{s.dynamics}' is not sgd or adagrad-norm (this theory is exact for with-replacement batches)")
        dt = s.dynamics_params["batch_size"] / s.d
        steps = s.t_max / dt        # s_max / (gamma b) = t_max d / B
        if steps > MAX_EXACT_STEPS:
            return no(f"t_max d / B = {steps:.0f} SGD steps > {MAX_EXACT_STEPS}: too fine a grid (use dmft-sgd)")
        if s.model == "committee" and steps * s.model_params["K"] > MAX_DENSE:
            return no(f"K t_max d / B = {steps * s.model_params['K']:.0f} > {MAX_DENSE}: the committee's dense "
                      "tangents on this grid are too slow (use dmft-sgd)")
        schedule = schedule_of(s)
        if s.dynamics == "adagrad-norm" and schedule is not None:
            f = np.asarray(schedule((np.arange(int(np.ceil(steps - 1e-9))) + 0.5) * dt), float)
            if (f <= 0).any():      # a step that does not move says nothing of its gradient (adagrad_norm)
                return no("adagrad-norm under a schedule that is 0 at a step: the accumulator reads each step's "
                          "gradient from its move")
        return YES

    def predict(self, s, times):
        exact_step = sgd_gamma(s) * s.dynamics_params["batch_size"] / s.n
        solve = lambda replicas: lambda t, f=None: predict_dmft(
            s, t, self.clock, None, 1, self.paths * replicas // self.replicas, self.tangent_paths * replicas // self.replicas,
            replicas, exact_step=exact_step, schedule=f, gradients=f is not None)
        if s.dynamics == "adagrad-norm":
            return adagrad_norm(s, times, solve(self.replicas), dt=s.dynamics_params["batch_size"] / s.d, rough=solve(1))
        return solve(self.replicas)(times)


class DmftSGDEpochs(_DMFT):
    name = "dmft-sgd-epochs"
    description = ("multi-pass SGD reshuffled per epoch: DMFT with epoch clocks (one kick per sample per "
                   "epoch, at a uniformly random step), extrapolated to the simulation's own batch fraction")
    clock = "epoch"
    steps = 40
    schedules = True        # cells of equal length in t, each kicking by gamma f there (dmft_runs._epoch_steps)
    examples = [{"model": {"name": "glm", "params": {"loss": "logistic"}},
                 "dynamics": {"name": "sgd-epochs", "params": {"gamma": 1.0}},
                 "alpha": 2.0, "d": 200, "t_max": 3.0}]

    def supports(self, s):
        base = supports_dmft(s, batch_limit=s.dynamics != "sgd-epochs")    # its own dynamics: any B/n
        if not base or s.dynamics != "sgd-epochs":
            return base
        per_epoch = s.n // s.dynamics_params["batch_size"]
        steps = s.t_max * s.d / s.dynamics_params["batch_size"]
        if per_epoch <= self.finest_cells and steps > MAX_EPOCH_STEPS:
            return no(f"t_max d / B = {steps:.0f} SGD steps of {per_epoch} an epoch > {MAX_EPOCH_STEPS}: too fine a grid")
        if per_epoch <= self.finest_cells and s.model == "committee" and steps * s.model_params["K"] > MAX_DENSE:
            return no(f"K t_max d / B = {steps * s.model_params['K']:.0f} > {MAX_DENSE}: the committee's dense "
                      "tangents on the simulation's own grid are too slow")
        return YES

    @property
    def finest_cells(self):
        return EPOCH_CELLS * 2 ** (self.levels - 1)

    def predict(self, s, times):
        """On the simulation's own grid when an epoch has no more steps than the finest level has cells
        (exact: no extrapolation), else Richardson-extrapolated to the simulation's own step."""
        paths, tangent_paths, steps = self.paths, self.tangent_paths, self.steps
        if s.model == "committee":
            paths, tangent_paths, steps = paths // COMMITTEE_PATHS, tangent_paths // COMMITTEE_PATHS, COMMITTEE_STEPS
        if s.dynamics == "sgd-epochs" and s.n // s.dynamics_params["batch_size"] <= self.finest_cells:
            return predict_dmft(s, times, self.clock, None, 1, paths, tangent_paths, self.replicas,
                                exact_step=self.target_step(s))
        return predict_dmft(s, times, self.clock, steps, self.levels, paths, tangent_paths, self.replicas,
                            target_step=self.target_step(s))

    def target_step(self, s):
        """An epoch of ``sgd-epochs`` is floor(n / B) steps of ``gamma B / n`` in DMFT time: the grid with
        that many cells per epoch is the simulated algorithm itself."""
        if s.dynamics != "sgd-epochs":
            return 0.0
        return s.dynamics_params["gamma"] * s.dynamics_params["batch_size"] / s.n


@hdbench.hookimpl
def hdbench_predictors():
    return [DmftGF, DmftSGF, DmftSGD, DmftSGDBatch, DmftSGDEpochs]
