"""``lsq-volterra`` and ``lsq-exact-recursion``: streaming least squares with any covariance spectrum, by
the Volterra equation (d -> infinity) and by the exact finite-d expected recursion; both take heavy-ball
momentum on fresh samples too (the recursion exactly, the Volterra equation as its fixed-beta limit). Equations:
:mod:`hdbench_plugins.solvers.volterra` and docs/theory/one_pass.md section 5.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.volterra import supports_linear_online, solve_volterra, solve_exact_recursion


class LsqVolterra(Predictor):
    name = "lsq-volterra"
    description = ("streaming least squares, any spectrum: Paquette et al.'s Volterra equation (d -> infinity; "
                   "fixed-beta momentum at gamma/(1 - beta))")
    schedules = True        # on the clock int gamma f dt the kernel is a convolution, the rate weighting the memory
    examples = [{"model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": 400, "t_max": 4.0}]

    def supports(self, s):
        return supports_linear_online(s)

    def predict(self, s, times):
        return solve_volterra(s, times)


class LsqExactRecursion(Predictor):
    name = "lsq-exact-recursion"
    description = "streaming least squares, SGD or heavy-ball momentum, any spectrum and batch: the exact finite-d recursion"
    schedules = True
    examples = [{"model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "zero-one", "rho": 0.5}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0, "batch_size": 4}}, "d": 200, "t_max": 4.0},
                {"model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}},
                 "dynamics": {"name": "momentum", "params": {"gamma": 0.1, "beta": 0.9, "batch_size": 2}},
                 "d": 100, "t_max": 2.0}]

    def supports(self, s):
        return supports_linear_online(s, any_batch=True)

    def predict(self, s, times):
        return solve_exact_recursion(s, times)


@hdbench.hookimpl
def hdbench_predictors():
    return [LsqVolterra, LsqExactRecursion]
