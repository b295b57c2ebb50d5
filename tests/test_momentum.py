"""Heavy-ball momentum on fresh samples at fixed beta: its d -> infinity limit is online SGD at
``gamma/(1 - beta)`` (``hdbench_plugins.solvers.regime.sgd_gamma``), for every model an online theory
covers; least squares also has the exact finite-d recursion (tests/test_volterra.py). Tolerances: the
Bonferroni z threshold of the simulation's standard errors."""
import pytest

import hdbench
from conftest import max_z, z_threshold

CASES = {
    "glm-ode": {"model": {"name": "glm", "params": {"link": "sign", "loss": "logistic"}}, "gamma": 1.0, "t_max": 4.0},
    "saad-solla": {"model": {"name": "committee", "params": {"K": 2, "M": 2, "r0": 0.1}}, "gamma": 0.25,
                   "t_max": 10.0},
    "glm-aniso-ode": {"model": {"name": "glm", "params": {"link": "sign", "loss": "logistic", "spectrum": "zero-one",
                                                          "rho": 0.5}}, "gamma": 1.0, "t_max": 4.0},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fixed_beta_limit_matches_momentum_and_beats_the_population_flow(registry, name):
    case = CASES[name]
    s = hdbench.Scenario.from_dict({"model": case["model"], "d": 1000, "t_max": case["t_max"], "seeds": 16,
                                    "n_times": 21, "dynamics": {"name": "momentum",
                                                                "params": {"gamma": case["gamma"], "beta": 0.5}}})
    theory, baseline = registry.predictor(name), registry.predictor("population-gf")
    assert theory.supports(s) and baseline.supports(s)
    sim = hdbench.simulate(s)
    curves = theory.predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)
    assert hdbench.score(sim, curves)["ratio"] < hdbench.score(sim, baseline.predict(s, sim.times))["ratio"]


def test_momentum_on_finite_data_is_declined_by_the_streaming_theories(registry):
    s = hdbench.Scenario.from_dict({"model": CASES["glm-ode"]["model"], "alpha": 2.0, "d": 100, "t_max": 1.0,
                                    "dynamics": {"name": "momentum", "params": {"gamma": 0.5}}})
    for name in ("glm-ode", "glm-aniso-ode", "lsq-online-ode", "lsq-volterra", "lsq-exact-recursion"):
        assert not registry.predictor(name).supports(s), name
