"""``glm-ode``: online SGD on the single-index GLM by the ``(m, q)`` ODE with the ``gamma^2`` correction.
Equations: :mod:`hdbench_plugins.solvers.glm_ode` and docs/theory/one_pass.md section 1.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.glm_ode import solve_glm, supports_online_glm


class GlmODE(Predictor):
    name = "glm-ode"
    description = "online SGD on single-index GLMs: (m, q) ODE with the gamma^2 correction"
    schedules = True

    def supports(self, s):
        return supports_online_glm(s)

    def predict(self, s, times):
        return solve_glm(s, times, correction=True)


@hdbench.hookimpl
def hdbench_predictors():
    return [GlmODE]
