"""``saad-solla``: online SGD on the soft committee machine by the Saad-Solla / Goldt ODEs for the
overlaps. Equations: :mod:`hdbench_plugins.solvers.committee_ode` and docs/theory/one_pass.md section 2.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor
from hdbench_plugins.solvers.committee_ode import solve_committee, supports_committee


class SaadSolla(Predictor):
    name = "saad-solla"
    description = "online SGD on committee machines: Saad-Solla/Goldt ODEs for Q, R, v (erf, linear, relu)"
    schedules = True

    def supports(self, s):
        return supports_committee(s)

    def predict(self, s, times):
        return solve_committee(s, times, correction=True)


@hdbench.hookimpl
def hdbench_predictors():
    return [SaadSolla]
