"""Heavy-ball momentum at fixed beta: its d -> infinity limit is SGD at ``gamma/(1 - beta)``
(``hdbench_plugins.solvers.regime.sgd_gamma``): online SGD on fresh samples, for every model an online
theory covers, and multi-pass SGD on finite data (batches drawn with replacement); least squares also
has the exact finite-d recursion (tests/test_volterra.py). Tolerances: the Bonferroni z threshold of
the simulation's standard errors."""
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


def test_momentum_on_finite_data_is_multipass_sgd_at_gamma_over_one_minus_beta(registry):
    s = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": 0.5}}, "alpha": 2.0, "d": 500,
                                    "t_max": 6.0, "seeds": 16, "n_times": 31,
                                    "dynamics": {"name": "momentum", "params": {"gamma": 0.5, "beta": 0.5}}})
    sim = hdbench.simulate(s)
    baseline = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))["ratio"]
    for name in ("lsq-homogenized-sgd", "lsq-volterra-multipass", "dmft-sgd"):
        theory = registry.predictor(name)
        assert theory.supports(s), name
        curves = theory.predict(s, sim.times)
        assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds), name
        assert hdbench.score(sim, curves)["ratio"] < baseline / 5, name
    # the same theory at gamma itself (momentum ignored) is far off: the 1/(1 - beta) is what it got right
    plain = s.with_(dynamics={"name": "sgd", "params": {"gamma": 0.5}})
    assert max_z(sim, registry.predictor("lsq-homogenized-sgd").predict(plain, sim.times)) > 3 * z_threshold(31, 16)


def test_momentum_on_finite_data_is_declined_by_the_streaming_theories(registry):
    s = hdbench.Scenario.from_dict({"model": CASES["glm-ode"]["model"], "alpha": 2.0, "d": 100, "t_max": 1.0,
                                    "dynamics": {"name": "momentum", "params": {"gamma": 0.5}}})
    for name in ("glm-ode", "glm-aniso-ode", "lsq-online-ode", "lsq-volterra", "lsq-exact-recursion"):
        assert not registry.predictor(name).supports(s), name
