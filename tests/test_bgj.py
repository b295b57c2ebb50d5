"""Spiked tensor PCA and the BGJ predictors: fixed points (docs/theory/one_pass.md section 3), simulation, and
the spread across seeds near the uninformative start."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold


def spiked(k=2, lam=1.2, gamma=1.0, t_max=10.0, d=1000, seeds=16, **params):
    return hdbench.Scenario.from_dict({"model": {"name": "spiked-tensor", "params": dict(k=k, lam=lam, **params)},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


@pytest.mark.parametrize("lam,m2", [(1.2, 0.2), (0.8, 0.0), (2.0, 1.0)])
def test_spiked_matrix_fixed_point(registry, lam, m2):
    out = registry.predictor("bgj-effective").predict(spiked(lam=lam, seeds=2), np.array([0.0, 200.0]))
    assert abs(out["m"][-1] ** 2 - m2) < 1e-7 and abs(out["r2"][-1] - 1.0) < 1e-7


def test_spiked_tensor_k3_fixed_point(registry):
    gamma, lam = 0.5, 2.0
    out = registry.predictor("bgj-effective").predict(spiked(k=3, lam=lam, gamma=gamma, m0=0.6, seeds=2),
                                                       np.array([0.0, 400.0]))
    u1 = out["m"][-1]
    assert abs(lam * u1 - (u1**2 + gamma) ** 2) < 1e-7 and abs(out["r2"][-1] - gamma) < 1e-7


@pytest.mark.parametrize("scenario", [
    lambda: spiked(lam=1.2), lambda: spiked(lam=0.8), lambda: spiked(k=3, lam=2.0, gamma=0.5, m0=0.6),
], ids=["matrix-1.2", "matrix-0.8", "tensor-3"])
def test_bgj_effective_within_noise_and_population_gf_loses(registry, scenario):
    s = scenario()
    sim = hdbench.simulate(s)
    eff = registry.predictor("bgj-effective").predict(s, sim.times)
    assert max_z(sim, eff) < z_threshold(s.n_times, s.seeds)
    ode = hdbench.score(sim, eff)
    pop = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))
    assert pop["error"] - ode["error"] > 3 * ode["noise_floor"]


def test_bgj_diffusive_predicts_the_spread_across_seeds(registry):
    s = spiked(lam=0.8, t_max=3.0, seeds=64, init="random", m0=0.0, r2_0=1.0)
    pred = registry.predictor("bgj-diffusive")
    assert pred.supports(s)
    assert not registry.predictor("bgj-effective").supports(s)
    sim = hdbench.simulate(s)
    curves = pred.predict(s, sim.times)
    result = hdbench.score(sim, curves)
    assert "std(m)" in result["observables"]
    assert result["observables"]["std(m)"]["z_max"] < z_threshold(s.n_times, s.seeds)
    assert not pred.supports(s.with_(model_params={"lam": 1.5}, t_max=5.0))   # leaves the window


def test_spread_statistic_is_scored_against_the_seed_std():
    rng = np.random.default_rng(0)
    s = spiked(seeds=400, t_max=1.0).with_(n_times=3)
    per_seed = {"m": rng.normal(0.0, 2.0, size=(400, 3))}
    sim = hdbench.Simulation(s, np.array([0.0, 0.5, 1.0]), per_seed, np.full(400, np.inf))
    good = hdbench.score(sim, {"std(m)": np.full(3, 2.0)})["observables"]["std(m)"]
    bad = hdbench.score(sim, {"std(m)": np.full(3, 2.5)})["observables"]["std(m)"]
    assert good["z_max"] < z_threshold(3, 400) < bad["z_max"]


def test_indicator_fraction_keeps_a_binomial_error_when_all_seeds_agree():
    """A per-seed 0/1 observable on which all 16 seeds agree: a predicted fraction of 0.05 is within
    noise (the smoothed binomial error is ~0.04, not 0), 0.5 is not."""
    s = spiked(seeds=16, t_max=1.0).with_(n_times=3)
    per_seed = {"reached_optimum": np.zeros((16, 3))}
    sim = hdbench.Simulation(s, np.array([0.0, 0.5, 1.0]), per_seed, np.full(16, np.inf))
    close = hdbench.score(sim, {"reached_optimum": np.full(3, 0.05)})["observables"]["reached_optimum"]
    far = hdbench.score(sim, {"reached_optimum": np.full(3, 0.5)})["observables"]["reached_optimum"]
    assert close["z_max"] < 2 < z_threshold(3, 16) < far["z_max"]
