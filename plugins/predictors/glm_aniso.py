"""``glm-aniso-ode``: online SGD on GLMs and committee machines with any covariance spectrum, by the
per-eigenvalue ODE. Equations: :mod:`hdbench_plugins.solvers.aniso_ode` and docs/theory/one_pass.md section 4.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.aniso_ode import solve_glm_aniso, solve_committee_aniso, supports_online_glm_any_spectrum


class GlmAnisoODE(Predictor):
    name = "glm-aniso-ode"
    description = "online SGD on GLMs and committee machines, any spectrum: per-eigenvalue ODE (Collins-Woodfin et al. 2023)"
    schedules = True
    examples = [{"model": {"name": "glm", "params": {"spectrum": "power-law", "beta": 1.0}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 0.5}}, "d": 400, "t_max": 4.0}]

    def supports(self, s):
        return supports_online_glm_any_spectrum(s)

    def predict(self, s, times):
        return solve_committee_aniso(s, times) if s.model == "committee" else solve_glm_aniso(s, times)


@hdbench.hookimpl
def hdbench_predictors():
    return [GlmAnisoODE]
