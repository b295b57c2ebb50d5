"""``dln-dmft``: multi-pass GD / SGF / SGD on a diagonal linear network by the DMFT with a
two-dimensional parameter process. Equations: :mod:`hdbench_plugins.solvers.dln_dmft` and docs/theory/dln.md.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor, no
from hdbench_plugins.solvers.regime import small_batches
from hdbench_plugins.solvers.dln_dmft import CLOCK_OF, FINEST_STEPS, LEVELS, SUPPORTED, coarse_steps, predict_dln_dmft


class DlnDMFT(Predictor):
    name = "dln-dmft"
    description = "DLN multi-pass GD/SGF/SGD on n = alpha d samples: DMFT with a 2-D particle parameter process"
    examples = [{"model": {"name": "dln", "params": {"a": 1.0}}, "dynamics": {"name": "gd", "params": {"gamma": 1.0}},
                 "alpha": 0.5, "d": 64, "t_max": 1.0}]

    def supports(self, s):
        if s.model != "dln":
            return no(f"model '{s.model}' is not dln")
        if s.alpha is None:
            return no("online data: this theory needs finite data (alpha); see dln-sde / dln-pde")
        if s.dynamics not in SUPPORTED:
            return no(f"dynamics '{s.dynamics}' is not one of {', '.join(SUPPORTED)}")
        finest = coarse_steps(s) * 2 ** (LEVELS[CLOCK_OF[s.dynamics]] - 1)
        if finest > FINEST_STEPS:
            return no(f"k gamma t_max / alpha needs {finest} > {FINEST_STEPS} grid steps (O(T^3) tangents)")
        return small_batches(s)

    def predict(self, s, times):
        return predict_dln_dmft(s, times)


@hdbench.hookimpl
def hdbench_predictors():
    return [DlnDMFT]
