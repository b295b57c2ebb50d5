"""GLM model and glm-ode: quadrature against closed forms, the ODE against oracle 1, and both
against simulation within Student-t noise; population-gf loses at gamma = O(1)."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.common.glm import population


def glm(link="sign", activation="linear", loss="logistic", gamma=0.5, sigma=0.0, m0=0.0, q0=0.0, d=500,
        seeds=16, t_max=5.0, dynamics="online-sgd", **extra):
    spec = {"model": {"name": "glm", "params": dict(link=link, activation=activation, loss=loss, sigma=sigma,
                                                     m0=m0, q0=q0)},
            "dynamics": {"name": dynamics, "params": {"gamma": gamma}}, "d": d, "t_max": t_max, "seeds": seeds,
            **extra}
    return hdbench.Scenario.from_dict(spec)


def test_quadrature_matches_closed_forms():
    m, q = 0.6, 1.3
    lin = population(m, q, dict(link="linear", activation="linear", loss="square", sigma=0.4))
    # 40 Gauss-Legendre nodes per segment on +-10 sd: ~1e-11 absolute
    assert abs(lin["gen_error"] - (q - 2 * m + 1) / 2) < 1e-9
    assert abs(lin["risk"] - (q - 2 * m + 1 + 0.16) / 2) < 1e-9
    # relu-relu: E relu(a) relu(b) = sa sb (sqrt(1 - r^2) + r (pi - arccos r)) / (2 pi)
    def k(sa, sb, r):
        return sa * sb * (np.sqrt(1 - r * r) + r * (np.pi - np.arccos(r))) / (2 * np.pi)
    relu = population(m, q, dict(link="relu", activation="relu", loss="square", sigma=0.0))
    exact = 0.5 * (k(np.sqrt(q), np.sqrt(q), 1.0) - 2 * k(np.sqrt(q), 1.0, m / np.sqrt(q)) + k(1, 1, 1.0))
    assert abs(relu["gen_error"] - exact) < 1e-10
    # hinge with linear student on sign labels: E max(0, 1 - y lambda) with y lambda ~ skew-normal
    hinge = population(m, q, dict(link="sign", activation="linear", loss="hinge", sigma=0.0))
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((2, 2_000_000))
    lam = m * z1 + np.sqrt(q - m * m) * z2
    mc = np.maximum(0, 1 - np.sign(z1) * lam)
    assert abs(hinge["risk"] - mc.mean()) < 4 * mc.std() / np.sqrt(mc.size)


def test_glm_ode_reduces_to_oracle_1(registry):
    s = glm(link="linear", loss="square", gamma=1.5, sigma=0.5, seeds=2)
    t = np.linspace(0, 8, 17)
    out = registry.predictor("glm-ode").predict(s, t)
    rate, D0 = 1.5**2 - 3.0, 1.0
    Dstar = -1.5**2 * 0.25 / rate
    D = Dstar + (D0 - Dstar) * np.exp(rate * t)
    np.testing.assert_allclose(out["gen_error"], D / 2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out["m"], 1 - np.exp(-1.5 * t), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scenario", [
    lambda: glm(gamma=0.5),
    lambda: glm(gamma=3.0),
    lambda: glm(loss="hinge", gamma=1.0, sigma=0.3),
    lambda: glm(link="quadratic", activation="quadratic", loss="square", gamma=0.1, m0=0.2, q0=0.5, t_max=20.0),
    lambda: glm(link="relu", activation="relu", loss="square", gamma=0.5, m0=0.1, q0=0.5),
], ids=["logistic-0.5", "logistic-3", "hinge", "phase-retrieval", "relu"])
def test_glm_ode_within_noise_of_simulation(registry, scenario):
    s = scenario()
    sim = hdbench.simulate(s)
    curves = registry.predictor("glm-ode").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


def test_population_gf_loses_at_large_gamma_and_not_at_small(registry):
    s = glm(gamma=3.0)
    sim = hdbench.simulate(s)
    ode = hdbench.score(sim, registry.predictor("glm-ode").predict(s, sim.times))
    pop = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))
    assert pop["error"] - ode["error"] > 3 * ode["noise_floor"]
    # As gamma -> 0 on the gamma t clock the correction fades from m, q and the risk. (Not from the
    # error rate: without the gamma^2 term theta stays parallel to theta*, a zero error rate on
    # noiseless sign labels, and the mismatch decays only like sqrt(gamma).)
    small = glm(gamma=0.05, t_max=50.0)
    sim = hdbench.simulate(small)
    pop_small = hdbench.score(sim, registry.predictor("population-gf").predict(small, sim.times))
    for name in ("q", "risk"):
        assert pop_small["observables"][name]["sup_error"] < 0.2 * pop["observables"][name]["sup_error"]


def test_diverging_phase_retrieval_is_scored_before_divergence(registry):
    s = glm(link="quadratic", activation="quadratic", loss="square", gamma=0.3, m0=0.2, q0=0.5, t_max=5.0,
            n_times=101, seeds=4)
    sim = hdbench.simulate(s)
    curves = registry.predictor("glm-ode").predict(s, sim.times)
    assert np.isfinite(sim.diverged_at).all()
    assert np.isinf(curves["q"][-1])                     # the theory blows up too
    result = hdbench.score(sim, curves)
    assert result["scored_until"] < sim.diverged_at.min()
