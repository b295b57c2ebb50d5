"""Heavy-ball momentum at fixed beta: its d -> infinity limit is SGD at ``gamma/(1 - beta)``
(``hdbench_plugins.solvers.regime.sgd_gamma``): online SGD on fresh samples, for every model an online
theory covers, and multi-pass SGD on finite data (batches drawn with replacement); least squares also
has the exact finite-d recursion (tests/test_volterra.py). Tolerances: the Bonferroni z threshold of
the simulation's standard errors."""
import numpy as np
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


# -- dimension-adapted momentum: beta = 1 - kappa B/d, a velocity that remembers 1/kappa units of t --
def adapted(kappa, gamma, d, spectrum=None, **extra):
    params = {"sigma": 0.5, **({"spectrum": spectrum, "beta": 1.0} if spectrum else {})}
    return hdbench.Scenario.from_dict({"model": {"name": "linear", "params": params}, "d": d, "t_max": 8.0,
                                       "seeds": 16, "n_times": 21, "dynamics": {
                                           "name": "momentum", "params": {"gamma": gamma, "kappa": kappa, **extra}}})


@pytest.mark.parametrize("kappa,gamma,spectrum", [(1.0, 0.5, None), (0.5, 1.0, "power-law")])
def test_dimension_adapted_momentum_is_the_second_order_limit(registry, kappa, gamma, spectrum):
    s = adapted(kappa, gamma, 500, spectrum)
    sim = hdbench.simulate(s)
    threshold = z_threshold(s.n_times, s.seeds)
    baseline = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))["ratio"]
    for name in ("lsq-online-ode", "lsq-exact-recursion"):     # the d -> infinity limit, and exact at this d
        curves = registry.predictor(name).predict(s, sim.times)
        assert max_z(sim, curves) < threshold, name
        assert hdbench.score(sim, curves)["ratio"] * 10 < baseline, name
    # read as fixed-beta momentum (SGD at the same gamma, no velocity) it is far off
    sgd = s.with_(dynamics={"name": "online-sgd", "params": {"gamma": gamma}})
    assert max_z(sim, registry.predictor("lsq-online-ode").predict(sgd, sim.times)) > 3 * threshold


def test_a_fast_velocity_is_sgd_and_theories_without_a_velocity_decline(registry):
    ode, t = registry.predictor("lsq-online-ode"), np.linspace(0, 4, 9)
    sgd = ode.predict(adapted(1.0, 1.0, 10**6).with_(dynamics={"name": "online-sgd", "params": {"gamma": 1.0}}), t)
    gaps = [np.max(np.abs(ode.predict(adapted(kappa, 1.0, 10**6), t)["risk"] - sgd["risk"])) for kappa in (100, 400)]
    assert gaps[1] < 1e-3 and 3 < gaps[0] / gaps[1] < 5, gaps      # O(1/kappa)
    s = adapted(1.0, 0.5, 200)
    for name in ("lsq-volterra", "glm-ode", "saad-solla", "lsq-homogenized-sgd", "dmft-sgd"):
        assert not registry.predictor(name).supports(s), name
    assert "kappa" in registry.predictor("lsq-volterra").supports(s).reason
    finite = s.with_(alpha=2.0)
    for name in ("lsq-volterra-multipass", "dmft-gf", "dmft-sgd-batch", "lsq-gf-mp"):
        assert not registry.predictor(name).supports(finite), name
    with pytest.raises(hdbench.InputError, match="kappa"):
        adapted(50.0, 0.5, 100, batch_size=2)
    plain = hdbench.Scenario.from_dict({"model": "linear", "d": 100, "t_max": 1.0,
                                        "dynamics": {"name": "momentum", "params": {"gamma": 0.1}}})
    assert "kappa" not in plain.dynamics_params      # fixed beta keeps its pre-kappa hash


@pytest.mark.parametrize("alpha,kappa,gamma", [(2.0, 0.5, 0.5), (0.5, 2.0, 0.5), (2.0, 0.25, 1.0)])
def test_dimension_adapted_momentum_on_finite_data_is_homogenized_sgd_with_a_velocity(registry, alpha, kappa, gamma):
    """Batches drawn with replacement from n = alpha d samples: per Marchenko-Pastur eigenvalue the
    second-order system with SGD's noise ``l 2 train_risk``, and the mean's own second-order path
    (kappa = 0.25 overshoots: m passes 1)."""
    s = adapted(kappa, gamma, 500).with_(alpha=alpha)
    theory = registry.predictor("lsq-homogenized-sgd")
    assert theory.supports(s)
    sim = hdbench.simulate(s)
    threshold = z_threshold(s.n_times, s.seeds)
    assert max_z(sim, theory.predict(s, sim.times)) < threshold
    sgd = s.with_(dynamics={"name": "sgd", "params": {"gamma": gamma}})
    assert max_z(sim, theory.predict(sgd, sim.times)) > 3 * threshold


def test_dimension_adapted_momentum_on_a_glm_carries_the_velocity_overlaps(registry):
    s = hdbench.Scenario.from_dict({"model": CASES["glm-ode"]["model"], "d": 500, "t_max": 8.0, "seeds": 16,
                                    "n_times": 21, "dynamics": {"name": "momentum", "params": {"gamma": 1.0, "kappa": 1.0}}})
    sim = hdbench.simulate(s)
    ode, threshold = registry.predictor("glm-ode"), z_threshold(s.n_times, s.seeds)
    curves = ode.predict(s, sim.times)
    assert max_z(sim, curves) < threshold
    flow = registry.predictor("population-gf").predict(s, sim.times)
    assert hdbench.score(sim, curves)["ratio"] * 10 < hdbench.score(sim, flow)["ratio"]
    sgd = s.with_(dynamics={"name": "online-sgd", "params": {"gamma": 1.0}})
    assert max_z(sim, ode.predict(sgd, sim.times)) > 3 * threshold
    assert not registry.predictor("glm-aniso-ode").supports(s)
    # with the square loss and a linear teacher, the overlaps' ODE is the least-squares moments' sum
    square = s.with_(model={"name": "glm", "params": {"link": "linear", "loss": "square", "sigma": 0.5}})
    linear = s.with_(model={"name": "linear", "params": {"sigma": 0.5}})
    t = np.linspace(0, 8, 9)
    a, b = ode.predict(square, t), registry.predictor("lsq-online-ode").predict(linear, t)
    for key in ("m", "q"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("alpha,kappa,gamma", [(2.0, 0.3, 1.0), (0.5, 1.0, 1.0), (2.0, 3.0, 1.5)])
def test_the_dmft_velocity_on_least_squares_is_homogenized_sgd_with_a_velocity(registry, alpha, kappa, gamma):
    """The DMFT's parameter side with heavy ball (``parameter_side(velocity=...)``: the increments are an
    exponential moving average of the updates) against an independent solver of the same limit, the
    per-eigenvalue second-order system: within the DMFT's own error estimate (its Richardson term;
    least squares has no Monte Carlo); measured gaps 1e-6 to 1e-4, estimates 9e-6 to 2e-3."""
    s = adapted(kappa, gamma, 1000).with_(alpha=alpha, t_max=6.0)
    t = s.times()
    ref = registry.predictor("lsq-homogenized-sgd").predict(s, t)
    for name in ("dmft-sgd", "dmft-sgf"):
        assert registry.predictor(name).supports(s), name
        ours = registry.predictor(name).predict(s, t)
        for k in ("D", "m", "train_risk"):
            # the estimate vanishes where the levels cross: compare with its largest value on the curve
            assert np.abs(ours[k] - ref[k]).max() <= ours[f"unc({k})"].max(), (name, k)
            assert ours[f"unc({k})"].max() < 3e-3, (name, k)


def test_the_dmft_velocity_on_logistic_regression_is_within_the_noise(registry):
    """Multi-pass logistic regression under dimension-adapted momentum (kappa = 1, B = 1, alpha = 2):
    dmft-sgd with the velocity within the simulation's noise; read as plain SGD it is far off."""
    s = hdbench.Scenario.from_dict({"model": CASES["glm-ode"]["model"], "alpha": 2.0, "d": 1000, "t_max": 4.0,
                                    "seeds": 16, "n_times": 21,
                                    "dynamics": {"name": "momentum", "params": {"gamma": 1.0, "kappa": 1.0}}})
    sim = hdbench.simulate(s)
    theory, threshold = registry.predictor("dmft-sgd"), z_threshold(s.n_times, s.seeds)
    assert max_z(sim, theory.predict(s, sim.times)) < threshold
    sgd = s.with_(dynamics={"name": "sgd", "params": {"gamma": 1.0}})
    assert max_z(sim, theory.predict(sgd, sim.times)) > 10 * threshold
