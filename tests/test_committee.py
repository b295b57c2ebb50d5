"""Committee machines and the Saad-Solla ODE: closed-form integrals against Monte Carlo, the plateau
fixed point and its eg (docs/theory/one_pass.md), the linear K = M = 1 closed form, and simulation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.common.committee import generalisation_error
from hdbench_plugins.solvers.committee_ode import _integrals, noise_term, rates


def committee(K=2, M=2, gamma=0.5, t_max=20.0, d=500, seeds=16, **params):
    return hdbench.Scenario.from_dict({"model": {"name": "committee", "params": dict(K=K, M=M, **params)},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_integrals_match_monte_carlo(act):
    """I3, J2 and the noise term sum_uw c_u c_w I4 (erf: closed form on the triangles; relu: Stein
    closed forms and quasi-Monte Carlo) against 2e6 draws, within 5 standard errors (+ the QMC rule's
    own error for relu's noise term, ~1e-3 relative)."""
    rng = np.random.default_rng(1)
    K, M = 2, 1
    G = rng.standard_normal((K + M, K + M + 2)) * 0.6
    C = G @ G.T
    c = np.array([-0.8, -1.1, 1.0])
    with jax.enable_x64(True):
        I3, J2 = map(np.asarray, _integrals(act, jnp.asarray(C), K))
        quad = np.asarray(noise_term(act, jnp.asarray(C), jnp.asarray(c), K))
    z = rng.multivariate_normal(np.zeros(K + M), C, size=2_000_000)
    if act == "erf":
        g, gp = erf(z / np.sqrt(2)), np.sqrt(2 / np.pi) * np.exp(-z**2 / 2)
    else:
        g, gp = np.maximum(z, 0.0), (z > 0) * 1.0
    for i, b, u in [(0, 1, 2), (1, 2, 0), (0, 0, 1), (1, 1, 1)]:
        s = gp[:, i] * z[:, b] * g[:, u]
        assert abs(I3[i, b, u] - s.mean()) < 5 * s.std() / np.sqrt(len(s))
    out = (g @ c) ** 2
    for i, k in [(0, 0), (0, 1), (1, 1), (1, 0)]:
        s = gp[:, i] * gp[:, k] * out
        assert abs(quad[i, k] - s.mean()) < 5 * s.std() / np.sqrt(len(s)) + (1e-3 * abs(s.mean()) if act == "relu" else 0)
    s = gp[:, 0] * gp[:, 1]
    assert abs(J2[0, 1] - s.mean()) < 5 * s.std() / np.sqrt(len(s))


@pytest.mark.parametrize("K,eg", [(2, 0.0116108), (3, 0.0202966)])
def test_symmetric_plateau_is_a_fixed_point_with_the_known_error(K, eg):
    Q = np.full((K, K), 1 / (2 * K - 1))
    R = np.full((K, K), 1 / np.sqrt(K * (2 * K - 1)))
    v = np.ones(K)
    with jax.enable_x64(True):
        dQ, dR, _ = rates((jnp.asarray(Q), jnp.asarray(R), jnp.asarray(v)), 1.0, 0.0, 1.0, "erf", K, K,
                          False, False)
        assert np.abs(np.asarray(dQ)).max() < 1e-12 and np.abs(np.asarray(dR)).max() < 1e-12
    value = generalisation_error("erf", Q, R, np.eye(K), v, np.ones(K), np)
    assert abs(value - eg) < 1e-7
    assert abs(value - (K / np.pi) * (np.pi / 6 - K * np.arcsin(1 / (2 * K)))) < 1e-12


def test_linear_K1_reduces_to_closed_form(registry):
    gamma, sigma = 1.2, 0.3
    s = committee(K=1, M=1, gamma=gamma, activation="linear", sigma=sigma, q0=0.5, r0=0.1, seeds=2)
    t = np.linspace(0, 6, 25)
    out = registry.predictor("saad-solla").predict(s, t)
    eg0 = 0.5 * (0.5 - 2 * 0.1 + 1)
    rate = -gamma * (2 - gamma)
    star = -gamma**2 * sigma**2 / 2 / rate
    # RK4 at step 0.05: ~5e-8 relative; the project's closed-form standard is 1e-6
    np.testing.assert_allclose(out["gen_error"], star + (eg0 - star) * np.exp(rate * t), rtol=1e-6)


@pytest.mark.parametrize("scenario", [
    lambda: committee(r0=0.1),
    lambda: committee(r0=0.1, train_second_layer=True, v0=0.5),
    lambda: committee(K=3, M=2, r0=0.2, gamma=1.0, sigma=0.2),
    lambda: committee(r0=0.3, activation="relu"),
    lambda: committee(r0=0.3, gamma=1.0, activation="relu", train_second_layer=True, v0=0.5),
], ids=["K2M2", "K2M2-second-layer", "K3M2-noise", "relu-K2M2", "relu-K2M2-second-layer"])
def test_saad_solla_within_noise_of_simulation(registry, scenario):
    s = scenario()
    sim = hdbench.simulate(s)
    curves = registry.predictor("saad-solla").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


def test_population_gf_loses_on_committee_at_gamma_1(registry):
    s = committee(r0=0.2, gamma=1.5, sigma=0.3)
    sim = hdbench.simulate(s)
    ode = hdbench.score(sim, registry.predictor("saad-solla").predict(s, sim.times))
    pop = hdbench.score(sim, registry.predictor("population-gf").predict(s, sim.times))
    assert pop["error"] - ode["error"] > 3 * ode["noise_floor"]


MEASURED = {"Q0": [[0.6, 0.1], [0.1, 0.3]], "R0": [[0.3, -0.05], [0.1, 0.2]]}    # unequal norms, asymmetric R


def test_a_measured_start_is_realised_exactly_and_predicted(registry):
    """Full ``Q0``, ``R0`` matrices: the simulation starts exactly there, and the committee theories
    (which read the same initial overlaps) stay within the Bonferroni threshold from it."""
    s = hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2, **MEASURED}},
                                    "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}},
                                    "d": 500, "t_max": 6.0, "seeds": 16, "n_times": 21})
    sim = hdbench.simulate(s)
    for i in range(2):
        for j in range(2):
            assert abs(sim.mean[f"R_{i}_{j}"][0] - MEASURED["R0"][i][j]) < 1e-5
            if j >= i:
                assert abs(sim.mean[f"Q_{i}_{j}"][0] - MEASURED["Q0"][i][j]) < 1e-5
    for name in ("saad-solla", "glm-aniso-ode"):
        curves = registry.predictor(name).predict(s, sim.times)
        assert curves["R_0_1"][0] == pytest.approx(-0.05) and curves["Q_1_1"][0] == pytest.approx(0.3)
        assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds), name


@pytest.mark.parametrize("params,message", [
    ({"Q0": [[0.1, 0.0], [0.0, 0.1]], "R0": MEASURED["R0"]}, "positive semi-definite"),
    ({"Q0": [[1, 2, 3]]}, "expected 2 rows of 2"),
    ({"Q0": [[0.6, 0.2], [0.1, 0.3]]}, "symmetric"),
    ({"R0": [[0.1, "x"], [0, 0]]}, "rows of numbers"),
    ({"Q0": MEASURED["Q0"], "init": "random"}, "init = 'overlaps'")])
def test_bad_initial_overlap_matrices_are_one_line_errors(params, message):
    with pytest.raises(hdbench.InputError, match=message) as err:
        hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2, **params}},
                                    "dynamics": "online-sgd", "d": 100, "t_max": 1.0})
    assert "\n" not in str(err.value)


def test_a_singular_start_uses_the_symmetric_root():
    """``Q0 - R0 R0^T`` positive semi-definite but singular (unit 2 starts on the teacher's span only):
    no Cholesky factor, still realised exactly."""
    p = {"K": 2, "M": 2, "Q0": [[0.09, 0.0], [0.0, 0.5]], "R0": [[0.3, 0.0], [0.0, 0.0]]}
    s = hdbench.Scenario.from_dict({"model": {"name": "committee", "params": p}, "dynamics": "online-sgd",
                                    "d": 50, "t_max": 0.1, "seeds": 2, "n_times": 2})
    sim = hdbench.simulate(s)
    assert abs(sim.mean["Q_0_0"][0] - 0.09) < 1e-5 and abs(sim.mean["Q_1_1"][0] - 0.5) < 1e-5


def test_a_per_unit_second_layer_is_realised_and_predicted(registry):
    """``V0``, one second-layer weight per unit (fixed, and trained by saad-solla), from the measured
    start: the simulation starts there, and every committee theory that reads it stays within the
    Bonferroni threshold (with the common ``v0 = 1`` the gen_error is off from the start)."""
    V0 = [1.0, 0.3]
    for dynamics, second, theories in (("online-sgd", False, ("saad-solla", "glm-aniso-ode")),
                                        ("online-sgd", True, ("saad-solla",)),
                                        ("sgd", False, ("dmft-sgd-batch",))):
        finite = {"alpha": 2.0, "d": 200, "t_max": 4.0} if dynamics == "sgd" else {"d": 500, "t_max": 6.0}
        s = hdbench.Scenario.from_dict({
            "model": {"name": "committee", "params": {"K": 2, "M": 2, "V0": V0, "train_second_layer": second,
                                                      **MEASURED}},
            "dynamics": {"name": dynamics, "params": {"gamma": 1.0, **({"batch_size": 50} if dynamics == "sgd" else {})}},
            "seeds": 16, "n_times": 17, **finite})
        sim = hdbench.simulate(s)
        assert sim.mean["v_1"][0] == pytest.approx(0.3, abs=1e-6)
        for name in theories:
            curves = registry.predictor(name).predict(s, sim.times)
            assert curves["v_1"][0] == pytest.approx(0.3)
            assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds), (name, second)


@pytest.mark.parametrize("params,message", [({"V0": [1.0, 0.5, 0.2]}, "expected K = 2 values"),
                                            ({"V0": [1.0, "x"]}, "list of numbers")])
def test_bad_second_layer_is_a_one_line_error(params, message):
    with pytest.raises(hdbench.InputError, match=message) as err:
        hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2, **params}},
                                    "dynamics": "online-sgd", "d": 100, "t_max": 1.0})
    assert "\n" not in str(err.value)
