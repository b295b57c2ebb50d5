"""``bgj-effective`` and ``bgj-diffusive``: Ben Arous-Gheissari-Jagannath effective dynamics (with the
corrector) and their diffusive limit near an uninformative start, on spiked tensor PCA and the binary
and XOR Gaussian mixtures. Equations: :mod:`hdbench_plugins.solvers.bgj_spiked`,
:mod:`hdbench_plugins.solvers.bgj_gmm` and docs/theory/one_pass.md section 3.
"""
from __future__ import annotations

import numpy as np

import hdbench
from hdbench import YES, Predictor, no
from hdbench_plugins.solvers.bgj_gmm import MODELS, solve_gmm_diffusive
from hdbench_plugins.solvers.regime import one_pass
from hdbench_plugins.solvers.bgj_spiked import SOLVERS, diffusive_moments, DIFFUSIVE_WINDOW


class BGJEffective(Predictor):
    name = "bgj-effective"
    description = "Ben Arous-Gheissari-Jagannath effective ODEs with corrector (spiked tensor, binary and XOR GMM)"
    examples = [{"model": {"name": "spiked-tensor", "params": {"lam": 1.2}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": 400, "t_max": 1.0}]

    def supports(self, s):
        if s.model not in SOLVERS:
            return no(f"model '{s.model}' is not one of {', '.join(SOLVERS)}")
        return SOLVERS[s.model][0](s)

    def predict(self, s, times):
        return SOLVERS[s.model][1](s, times, correction=True)


class BGJDiffusive(Predictor):
    """Spiked matrix (k = 2): the OU moments above. Gaussian mixtures (``gmm-binary``, ``gmm-xor``):
    Monte-Carlo paths of the finite-d SDE of the statistics (``bgj_gmm.solve_gmm_diffusive``), which
    is BGJ's diffusive limit near the uninformative start and their effective ODE once the overlaps
    are O(1); it predicts the means, the spread of the overlaps across seeds and the fraction of runs
    that reach the optimum."""

    name = "bgj-diffusive"
    description = ("BGJ diffusive limit near the uninformative start: spread of the overlaps across seeds "
                   "(spiked matrix), and the fraction reaching the optimum (Gaussian mixtures)")
    examples = [{"model": {"name": "spiked-tensor", "params": {"lam": 0.8, "init": "random", "m0": 0.0, "r2_0": 1.0}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": 2000, "t_max": 0.5},
                {"model": {"name": "gmm-binary", "params": {"init": "random"}},
                 "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": 250, "t_max": 1.0}]

    def supports(self, s):
        if s.model in MODELS:
            return one_pass(s)
        if s.model != "spiked-tensor":
            return no(f"model '{s.model}' is not spiked-tensor, gmm-binary or gmm-xor")
        if s.model_params["k"] != 2:
            return no("the diffusive (OU) limit is implemented for the spiked matrix, k = 2")
        regime = one_pass(s)
        if not regime:
            return regime
        _, mean, std = diffusive_moments(s, np.linspace(0.0, s.t_max, 33))
        reach = np.abs(mean) + 2 * std
        if reach.max() > DIFFUSIVE_WINDOW:
            return no(f"the trajectory leaves the diffusive window (predicted |m| + 2 std(m) = {reach.max():.2g} "
                      f"> {DIFFUSIVE_WINDOW} by t = {np.linspace(0.0, s.t_max, 33)[reach.argmax()]:g}); "
                      "use bgj-effective once m = O(1)")
        return YES

    def predict(self, s, times):
        if s.model in MODELS:
            return solve_gmm_diffusive(s, times)
        u2, mean, std = diffusive_moments(s, times)
        return {"m": mean, "std(m)": std, "r2": u2 - mean**2 - std**2}


@hdbench.hookimpl
def hdbench_predictors():
    return [BGJEffective, BGJDiffusive]
