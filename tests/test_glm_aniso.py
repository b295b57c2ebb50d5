"""glm with any covariance spectrum and glm-aniso-ode (docs/theory/one_pass.md section 4): equal to glm-ode on
isotropic data and to the Volterra solution for square loss (solver tolerance), within noise of
simulation on power-law and zero-one spectra, and the binning error it states."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.solvers.aniso_ode import solve_glm_aniso
from hdbench_plugins.solvers.glm_ode import solve_glm
from hdbench_plugins.solvers.volterra import solve_volterra


def glm(gamma=1.0, d=500, seeds=16, t_max=5.0, **params):
    model = dict(link="sign", activation="linear", loss="logistic", sigma=0.0, m0=0.0, q0=0.0)
    model.update(params)
    return hdbench.Scenario.from_dict({"model": {"name": "glm", "params": model},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


@pytest.mark.parametrize("params", [dict(), dict(loss="hinge", sigma=0.3),
                                    dict(link="relu", activation="relu", loss="square", m0=0.1, q0=0.5)])
def test_equals_glm_ode_on_isotropic_data(params):
    s = glm(**params)
    t = np.linspace(0, 5, 11)
    aniso, iso = solve_glm_aniso(s, t), solve_glm(s, t)
    for k in iso:
        np.testing.assert_allclose(aniso[k], iso[k], rtol=1e-7, atol=1e-8, err_msg=k)


def test_square_loss_equals_the_volterra_solution_on_a_power_law():
    """A linear teacher with square loss is streaming least squares: the per-mode ODE and the
    Volterra equation are two solvers of the same limit."""
    params = dict(link="linear", loss="square", sigma=0.5, spectrum="power-law", beta=1.0, m0=0.2, q0=0.3)
    s = glm(**params, d=400)
    lin = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {k: params[k] for k in
                                                ("sigma", "spectrum", "beta", "m0", "q0")}},
                                      "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}},
                                      "d": 400, "t_max": 5.0})
    t = np.linspace(0, 5, 11)
    a, v = solve_glm_aniso(s, t, bins=0), solve_volterra(lin, t)      # unbinned: 400 distinct eigenvalues
    for k in ("risk", "m", "q"):
        np.testing.assert_allclose(a[k], v[k], rtol=1e-7, err_msg=k)


@pytest.mark.parametrize("params", [
    dict(spectrum="power-law", beta=1.0),
    dict(spectrum="zero-one", rho=0.5, loss="hinge", sigma=0.3),
    dict(spectrum="power-law", beta=1.0, link="relu", activation="relu", loss="square", m0=0.1, q0=0.5, gamma=0.5),
], ids=["logistic-power-law", "hinge-zero-one", "relu-power-law"])
def test_within_noise_of_simulation(registry, params):
    s = glm(**params)
    sim = hdbench.simulate(s)
    curves = registry.predictor("glm-aniso-ode").predict(s, sim.times)
    assert {"m_Sigma", "q_Sigma"} <= set(curves) & set(sim.mean)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


def test_population_gf_fails_on_anisotropic_data(registry):
    s = glm(spectrum="zero-one", rho=0.5)
    sim = hdbench.simulate(s)
    ode = hdbench.score(sim, registry.predictor("glm-aniso-ode").predict(s, sim.times))
    pop = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))
    assert max_z(sim, registry.predictor("population-gf").predict(s, sim.times)) > 3 * z_threshold(s.n_times, s.seeds)
    assert pop["error"] - ode["error"] > 3 * ode["noise_floor"]


def test_binning_error_is_second_order_and_small_at_256_bins():
    s = glm(spectrum="power-law", beta=1.0, d=1000, t_max=10.0)
    t = np.linspace(0, 10, 21)
    exact = solve_glm_aniso(s, t, bins=0)

    def error(bins):
        out = solve_glm_aniso(s, t, bins=bins)
        return max(np.max(np.abs(out[k][1:] / exact[k][1:] - 1)) for k in ("risk", "m", "q"))

    fine, coarse = error(256), error(64)
    assert fine < 1e-4
    assert 8 < coarse / fine < 32            # halving the bin width twice: error / 16


def test_glm_ode_declines_anisotropic_data(registry):
    support = registry.predictor("glm-ode").supports(glm(spectrum="power-law"))
    assert not support and "anisotropic" in support.reason


def committee(gamma=0.5, d=500, seeds=16, t_max=10.0, **params):
    model = dict(K=2, M=2, r0=0.1)
    model.update(params)
    return hdbench.Scenario.from_dict({"model": {"name": "committee", "params": model},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


@pytest.mark.parametrize("activation,tol", [("erf", 1e-7), ("linear", 1e-7), ("relu", 1e-5)])
def test_multi_index_equals_saad_solla_on_isotropic_data(activation, tol):
    from hdbench_plugins.solvers.aniso_ode import solve_committee_aniso
    from hdbench_plugins.solvers.committee_ode import solve_committee
    s = committee(activation=activation, sigma=0.1)
    t = np.linspace(0, 10, 11)
    aniso, iso = solve_committee_aniso(s, t), solve_committee(s, t)
    for k in aniso:
        np.testing.assert_allclose(aniso[k], iso[k], rtol=tol, atol=tol, err_msg=k)


@pytest.mark.parametrize("params", [dict(activation="erf", spectrum="power-law", beta=1.0),
                                    dict(activation="relu", spectrum="zero-one", rho=0.5),
                                    dict(activation="erf", spectrum="zero-one", rho=0.5, K=3, sigma=0.1)],
                         ids=["erf-power-law", "relu-zero-one", "erf-K3-M2-noisy"])
def test_multi_index_within_noise_of_simulation(registry, params):
    s = committee(**params)
    sim = hdbench.simulate(s)
    curves = registry.predictor("glm-aniso-ode").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)
    assert not registry.predictor("saad-solla").supports(s)
