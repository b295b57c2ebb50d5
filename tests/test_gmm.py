"""Binary Gaussian mixture (BGJ): quadrature against Monte Carlo, the effective dynamics with its
corrector against simulation, population-gf losing at large gamma, and the fraction of random
initialisations that reach the optimum (BGJ: about one half)."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.models.gmm import binary_expectations


def gmm(init="overlaps", gamma=1.0, t_max=10.0, d=1000, seeds=16, **params):
    return hdbench.Scenario.from_dict({"model": {"name": "gmm-binary", "params": dict(init=init, **params)},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


def test_expectations_match_monte_carlo():
    rng = np.random.default_rng(0)
    v, m, R, lam = np.array([0.95, -0.8]), np.array([0.7, -0.6]), np.array([[0.36, 0.01], [0.01, 0.3]]), 100.0
    ex = binary_expectations(v, m, R, lam)
    N = 1_000_000
    sums = {"Eg": 0, "Ea": 0, "Eb": 0, "B": 0}
    samples = {k: [] for k in sums}
    for s, y in ((1.0, 1.0), (-1.0, 0.0)):
        a = s + rng.standard_normal(N) / np.sqrt(lam)
        b = rng.multivariate_normal([0, 0], R / lam, size=N).T
        h = m[:, None] * a + b
        ind = (h > 0) * 1.0
        e = 1 / (1 + np.exp(-(v @ np.maximum(h, 0)))) - y
        samples["Eg"].append(e * np.maximum(h, 0))
        samples["Ea"].append(e * ind * a)
        samples["Eb"].append((e * ind)[:, None, :] * b[None, :, :])
        samples["B"].append(ind[:, None, :] * ind[None, :, :] * e * e)
    for key, parts in samples.items():
        x = 0.5 * (parts[0] + parts[1])                      # one draw of each class per "sample"
        mean, se = x.mean(axis=-1), x.std(axis=-1) / np.sqrt(N)
        assert np.all(np.abs(ex[key] - mean) < 5 * se + 1e-12), key


@pytest.mark.parametrize("gamma", [1.0, 4.0])
def test_effective_dynamics_within_noise(registry, gamma):
    s = gmm(gamma=gamma, v0=[1.0, -0.8], m0=[0.0, 0.0])
    sim = hdbench.simulate(s)
    curves = registry.predictor("bgj-effective").predict(s, sim.times)
    names = [k for k in curves if k != "error_rate"]   # the error rate's indicator integrand is rough
    assert max_z(sim, curves, names) < z_threshold(s.n_times, s.seeds)


def test_population_gf_misses_the_perpendicular_overlaps_at_large_gamma(registry):
    s = gmm(gamma=4.0, v0=[1.0, -0.8], m0=[0.0, 0.0])
    sim = hdbench.simulate(s)
    eff = hdbench.score(sim, registry.predictor("bgj-effective").predict(s, sim.times))
    pop = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))
    for name in ("R_1_1", "R_2_2"):
        assert pop["observables"][name]["z_max"] > z_threshold(s.n_times, s.seeds) > eff["observables"][name]["z_max"]


def test_fraction_reaching_the_optimum_from_random_initialisation(registry):
    s = gmm(init="random", d=250, seeds=128, t_max=20.0)
    curves = registry.predictor("bgj-effective").predict(s, np.array([0.0, 10.0, 20.0]))
    assert abs(curves["reached_optimum"][-1] - 0.5) < 1e-12
    sim = hdbench.simulate(s)
    frac = sim.mean["reached_optimum"][-1]
    assert abs(frac - 0.5) < 3 * np.sqrt(0.25 / s.seeds)      # binomial noise floor


def test_xor_optimum_indicator():
    from hdbench_plugins.models.gmm import xor_optimum
    v = np.array([0.6, 0.6, -0.6, -0.6])
    mmu, mnu = np.array([0.55, -0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.6, -0.4])
    assert xor_optimum(v, mmu, mnu) == 1.0
    assert xor_optimum(-v, mmu, mnu) == 0.0                           # wrong output signs
    assert xor_optimum(v, np.array([0.55, 0.5, 0.0, 0.0]), mnu) == 0.0   # -mu left uncovered
    assert xor_optimum(v, np.array([0.55, -0.1, 0.0, 0.0]), mnu) == 0.0  # a unit not committed


def test_xor_simulates_its_22_statistics():
    s = hdbench.Scenario.from_dict({"model": {"name": "gmm-xor"}, "dynamics": {"name": "online-sgd"},
                                    "d": 100, "t_max": 2.0, "seeds": 4, "n_times": 5})
    sim = hdbench.simulate(s)
    assert len(sim.per_seed) == 23 and np.isfinite(sim.mean["R_0_0"]).all()
    assert hdbench.registry().predictor("bgj-effective").supports(s).reason
