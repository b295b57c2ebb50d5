"""``multiclass-ode``: one-pass SGD on anisotropic multi-class Gaussian mixtures by per-mode ODEs
(Collins-Woodfin & Seroussi). Equations: :mod:`hdbench_plugins.solvers.multiclass_ode` and
docs/theory/one_pass.md section 6.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.multiclass_ode import solve_multiclass, supports_multiclass


class MulticlassODE(Predictor):
    name = "multiclass-ode"
    description = ("one-pass SGD (also fixed-beta momentum, AdaGrad-Norm, schedules) on anisotropic multi-class "
                   "Gaussian mixtures: per-mode ODEs (Collins-Woodfin & Seroussi)")
    schedules = True
    examples = [{"model": {"name": "gmm-multiclass", "params": {"loss": "logistic", "classes": 2,
                                                                "spectrum": "zero-one", "rho": 0.5}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": 200, "t_max": 2.0}]

    def supports(self, s):
        return supports_multiclass(s)

    def predict(self, s, times):
        return solve_multiclass(s, times)


@hdbench.hookimpl
def hdbench_predictors():
    return [MulticlassODE]
