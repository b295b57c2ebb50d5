"""Baseline ``population-gf``: gradient flow on the population risk, ``dtheta/dt = -gamma grad R``.

It omits every high-dimensional effect (the ``gamma^2`` SGD-noise correction, finite data), so any
real theory should beat it at ``gamma = O(1)``; it ties as ``gamma -> 0`` on online data. Heavy-ball
momentum at fixed ``beta`` runs the flow at ``gamma/(1 - beta)``, AdaGrad-Norm at its starting rate
``gamma/b`` (a flow has no per-sample gradient noise to accumulate) (linear, GLM and committee models).
Dimension-adapted momentum (``kappa``) on online least squares: the second-order flow
``e' = -gamma w``, ``w' = kappa (grad R - w)`` (``lsq-online-ode``'s system without its noise term);
signSGD and Adam on online least squares: ``lsq-online-ode``'s per-coordinate drift without its
``gamma^2`` term.
Each model family contributes its flow to ``FLOWS`` (the same summary-statistic ODEs as the family's
theory, without the corrector). Under a learning-rate schedule ``f`` every flow is the constant-gamma
flow read on the clock ``tau(t) = int_0^t f`` (``regime.on_clock``).

Linear model, any spectrum ``lambda_j``, ``e_j(t) = e_j(0) exp(-gamma lambda_j t)`` with
``E e_j(0)^2 = D0/d`` (``theta*`` uniform on the sphere):
``D = D0 <e^{-2 gamma lambda t}>``, ``risk = (D0 <lambda e^{-2 gamma lambda t}> + sigma^2)/2``,
``m = 1 + (m0 - 1) <e^{-gamma lambda t}>``, ``q = D + 2m - 1`` (``<.>`` = mean over the spectrum).
"""
from __future__ import annotations

import numpy as np

import hdbench
from hdbench import YES, Predictor, no
from hdbench_plugins.common.spectra import is_isotropic, spectrum
from hdbench_plugins.solvers.aniso_ode import solve_committee_aniso, solve_glm_aniso
from hdbench_plugins.solvers.bgj_gmm import solve_gmm, supports_gmm
from hdbench_plugins.solvers.bgj_spiked import solve_spiked, supports_spiked
from hdbench_plugins.solvers.committee_ode import solve_committee, supports_committee
from hdbench_plugins.solvers.dln_flow import population_flow as dln_flow
from hdbench_plugins.solvers.glm_ode import solve_glm
from hdbench_plugins.solvers.multiclass_ode import solve_multiclass, supports_multiclass
from hdbench_plugins.solvers.least_squares import solve_online
from hdbench_plugins.solvers.regime import COORDINATEWISE, adapted_momentum, on_clock, sgd_gamma, unregularised

GRADIENT_DYNAMICS = ("online-sgd", "sgd", "sgd-epochs", "sgf", "gd")
RATE_DYNAMICS = ("momentum", "adagrad-norm")      # flows run at sgd_gamma: gamma/(1 - beta), gamma/b
MOMENTUM_FLOWS = ("linear", "glm", "committee", "gmm-multiclass")   # the flows that read sgd_gamma


class PopulationGF(Predictor):
    name = "population-gf"
    description = "baseline: gradient flow on the population risk (no SGD-noise or finite-data terms)"
    schedules = True

    def supports(self, s):
        if s.model not in FLOWS:
            return no(f"no population-risk flow for model '{s.model}' (have: {', '.join(sorted(FLOWS))})")
        rated = s.dynamics in RATE_DYNAMICS and s.model in MOMENTUM_FLOWS
        if s.dynamics not in GRADIENT_DYNAMICS + COORDINATEWISE and not rated:
            return no(f"dynamics '{s.dynamics}' is not plain gradient-based (one of {', '.join(GRADIENT_DYNAMICS)}; "
                      f"{' and '.join(RATE_DYNAMICS)} on {', '.join(MOMENTUM_FLOWS)})")
        if not unregularised(s):
            return unregularised(s)
        if adapted_momentum(s) and (s.model not in ("linear", "glm") or s.alpha is not None
                                    or (s.model == "glm" and not is_isotropic(s.model_params))):
            return no("dimension-adapted momentum (kappa): a second-order flow only for online least squares "
                      "and isotropic GLMs here")
        if s.dynamics in COORDINATEWISE and (s.model != "linear" or s.alpha is not None):
            return no(f"dynamics '{s.dynamics}': a flow only for online least squares here")
        return MODEL_CHECKS.get(s.model, lambda _: YES)(s)

    def predict(self, s, times):
        if adapted_momentum(s) or s.dynamics in COORDINATEWISE:     # not SGD's flow on another clock: the theory's
            flow = solve_online if s.model == "linear" else solve_glm   # own ODE without its noise term
            return flow(s, times, correction=False)
        return on_clock(FLOWS[s.model], s, times)


def linear_flow(s, times):
    p = s.model_params
    m0, q0, sigma = p["m0"], p["q0"], p["sigma"]
    D0 = q0 - 2 * m0 + 1
    gamma = sgd_gamma(s)
    lam, counts = np.unique(spectrum(s.d, p), return_counts=True)
    frac = counts / counts.sum()
    decay = np.exp(-gamma * np.outer(np.asarray(times, float), lam))
    D = D0 * (decay**2 @ frac)
    m = 1 + (m0 - 1) * (decay @ frac)
    return {"risk": 0.5 * (D0 * (decay**2 @ (frac * lam)) + sigma**2), "D": D, "m": m, "q": D + 2 * m - 1}


def glm_flow(s, times):
    if is_isotropic(s.model_params):
        return solve_glm(s, times, correction=False)
    return solve_glm_aniso(s, times, correction=False)


def committee_flow(s, times):
    if is_isotropic(s.model_params):
        return solve_committee(s, times, correction=False)
    return solve_committee_aniso(s, times, correction=False)


def committee_check(s):
    if not is_isotropic(s.model_params) and s.model_params["train_second_layer"]:
        return no("anisotropic data with a trained second layer has no per-mode flow here")
    return supports_committee(s, online=False, isotropic=False)


FLOWS = {"linear": linear_flow, "glm": glm_flow, "committee": committee_flow,
         "spiked-tensor": lambda s, times: solve_spiked(s, times, correction=False),
         "gmm-binary": lambda s, times: solve_gmm(s, times, correction=False),
         "gmm-xor": lambda s, times: solve_gmm(s, times, correction=False),
         "gmm-multiclass": lambda s, times: solve_multiclass(s, times, correction=False),
         "dln": dln_flow}
MODEL_CHECKS = {"committee": committee_check,
                "spiked-tensor": lambda s: supports_spiked(s, online=False),
                "gmm-binary": lambda s: supports_gmm(s, online=False),
                "gmm-xor": lambda s: supports_gmm(s, online=False),
                "gmm-multiclass": lambda s: supports_multiclass(s, online=False)}


@hdbench.hookimpl
def hdbench_predictors():
    return [PopulationGF]
