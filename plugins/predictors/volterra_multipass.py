"""``lsq-volterra-multipass``: multi-pass SGD / SGF / GD on ridge least squares by the Volterra equations
on the Marchenko-Pastur law. Equations: :mod:`hdbench_plugins.solvers.multipass` and docs/theory/multipass.md section 4.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.multipass import supports_multipass, solve_volterra_multipass


class LsqVolterraMultipass(Predictor):
    name = "lsq-volterra-multipass"
    description = "multi-pass SGD / SGF / GD on ridge least squares: Volterra equations on the MP law (Fan-Wang; docs/theory/multipass.md s.4)"
    examples = [{"model": {"name": "linear", "params": {"sigma": 0.5, "ridge": 0.1}},
                 "dynamics": {"name": "sgd", "params": {"gamma": 1.0}}, "alpha": 2.0, "d": 200, "t_max": 4.0}]
    schedules = True        # on the clock int gamma f dt / alpha the temperature gamma f weights the memory

    def supports(self, s):
        return supports_multipass(s)

    def predict(self, s, times):
        return solve_volterra_multipass(s, times)


@hdbench.hookimpl
def hdbench_predictors():
    return [LsqVolterraMultipass]
