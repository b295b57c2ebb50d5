"""``dln-gf-implicit-bias``: the limit of gradient flow on a diagonal linear network with n < d samples,
the hyperbolic-entropy interpolator. Equations: :mod:`hdbench_plugins.solvers.dln_implicit_bias` and docs/theory/dln.md.
"""
from __future__ import annotations

import numpy as np

import hdbench
from hdbench import YES, Predictor, no
from hdbench_plugins.solvers.dln_flow import coordinate_law
from hdbench_plugins.solvers.dln_implicit_bias import MIN_GAMMA_T, implicit_bias_limit


class DlnImplicitBias(Predictor):
    name = "dln-gf-implicit-bias"
    description = "DLN gradient flow on n < d samples: its limit, the hyperbolic-entropy interpolator (CGMT law)"
    examples = [{"model": {"name": "dln", "params": {"a": 1.0}}, "dynamics": {"name": "gd", "params": {"gamma": 1.0}},
                 "alpha": 0.5, "d": 64, "t_max": 20.0}]

    def supports(self, s):
        if s.model != "dln":
            return no(f"model '{s.model}' is not dln")
        if s.dynamics != "gd":
            return no(f"dynamics '{s.dynamics}' is not gd (the limit of gradient flow; noise moves it)")
        if s.alpha >= 1:
            return no(f"alpha = {s.alpha:g} >= 1: no interpolation, so no implicit bias to predict")
        law = coordinate_law(s)
        if law.c0 == 0:
            return no("the conserved q (or p) is 0: no hyperbolic-entropy potential")
        if law.mu * law.gamma * s.t_max < MIN_GAMMA_T:
            return no(f"mu gamma t_max = {law.mu * law.gamma * s.t_max:g} < {MIN_GAMMA_T:g}: too short to reach the limit")
        return YES

    def predict(self, s, times):
        n = len(times)
        return {f"limit({k})": np.full(n, float(v)) for k, v in implicit_bias_limit(s).items()}


@hdbench.hookimpl
def hdbench_predictors():
    return [DlnImplicitBias]
