"""Adaptive methods. AdaGrad-Norm (``adagrad-norm``): the optax step is Ward et al.'s AdaGrad-Norm with ``b0 = b d/B`` in
our units, and its d -> infinity limit is SGD at ``gamma(t) = gamma f(t)/sqrt(b^2 + G)``,
``dG/dt = E|grad loss|^2/d`` (the High Line; ``regime.adaptive_ode``) in every theory that integrates
the accumulator. signSGD (``sign-sgd``, B = 1): a per-coordinate drift ``(2/pi) sqrt(lam_j) e_j/sqrt(2 risk)``
and unit noise (``lsq-online-ode``). Tolerances: the Bonferroni z threshold of the simulation's standard errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold

LOGISTIC = {"link": "sign", "loss": "logistic"}
# starting rates gamma/b at (lsq) or past (logistic) where constant-rate SGD would be stable
CASES = {
    "lsq-isotropic": ("lsq-online-ode", {"name": "linear", "params": {"sigma": 0.5}}, 1.0),
    "lsq-power-law": ("lsq-online-ode", {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law",
                                                                      "beta": 1.0}}, 1.0),
    "logistic": ("glm-ode", {"name": "glm", "params": LOGISTIC}, 2.0),
    "logistic-zero-one": ("glm-aniso-ode", {"name": "glm", "params": {**LOGISTIC, "spectrum": "zero-one",
                                                                       "rho": 0.5}}, 2.0),
    "committee": ("saad-solla", {"name": "committee", "params": {"K": 2, "M": 2, "r0": 0.1}}, 1.0),
}


def adagrad(model, gamma, b=0.5, d=500, **extra):
    return hdbench.Scenario.from_dict({"model": model, "d": d, "t_max": 8.0, "seeds": 16, "n_times": 21,
                                       "dynamics": {"name": "adagrad-norm",
                                                    "params": {"gamma": gamma, "b": b, **extra}}})


def test_the_step_is_adagrad_norm_with_b0_scaled_by_d_over_B(registry):
    d, B, gamma, b = 200, 4, 0.7, 0.3
    s = hdbench.Scenario.from_dict({"model": "linear", "d": d, "t_max": 1.0, "dynamics": {
        "name": "adagrad-norm", "params": {"gamma": gamma, "b": b, "batch_size": B}}})
    opt = registry.dynamics("adagrad-norm").optimizer(s)
    theta = jnp.zeros(d)
    state = opt.init(theta)
    total = 0.0
    for k in range(3):
        g = jax.random.normal(jax.random.PRNGKey(k), (d,))
        total += float(jnp.sum(g * g))
        update, state = opt.update(g, state, theta)
        # Ward, Wu & Bottou: eta g / sqrt(b0^2 + sum |g|^2), eta = gamma, b0 = b d/B
        expected = -gamma * np.asarray(g) / np.sqrt((b * d / B) ** 2 + total)
        np.testing.assert_allclose(np.asarray(update), expected, rtol=2e-5)


def test_a_schedule_multiplies_the_adaptive_step(registry):
    sched = {"name": "exponential_decay", "init_value": 1.0, "transition_steps": 1.0, "decay_rate": 0.5}
    base = hdbench.Scenario.from_dict({"model": "linear", "d": 100, "t_max": 2.0, "dynamics": {
        "name": "adagrad-norm", "params": {"gamma": 0.5}}})
    dyn = registry.dynamics("adagrad-norm")
    plain, scheduled = dyn.optimizer(base), dyn.optimizer(base.with_(dynamics_params={"schedule": sched}))
    g = jnp.ones(100)
    sp, ss = plain.init(g), scheduled.init(g)
    for k in range(150):
        up, sp = plain.update(g, sp, g)
        us, ss = scheduled.update(g, ss, g)
    t = 149 / 100
    np.testing.assert_allclose(np.asarray(us), np.asarray(up) * 0.5**t, rtol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_high_line_ode_matches_adagrad_norm_and_beats_the_flow_and_a_fixed_rate(registry, case):
    name, model, gamma = CASES[case]
    s = adagrad(model, gamma)
    theory, baseline = registry.predictor(name), registry.predictor("population-gf")
    assert theory.supports(s) and baseline.supports(s)
    sim = hdbench.simulate(s)
    curves = theory.predict(s, sim.times)
    threshold = z_threshold(s.n_times, s.seeds)
    assert max_z(sim, curves) < threshold
    assert hdbench.score(sim, curves)["ratio"] * 10 < hdbench.score(sim, baseline.predict(s, sim.times))["ratio"]
    # the same theory at the starting rate gamma/b held fixed (no accumulator) is far off
    fixed = s.with_(dynamics={"name": "online-sgd", "params": {"gamma": gamma / 0.5}})
    assert max_z(sim, theory.predict(fixed, sim.times)) > 3 * threshold


def test_theories_without_the_accumulator_decline_adagrad_norm(registry):
    online = adagrad({"name": "linear", "params": {"sigma": 0.5}}, 1.0, d=100)
    for name in ("lsq-volterra", "lsq-exact-recursion", "dmft-sgd"):
        assert not registry.predictor(name).supports(online), name
    mixture = adagrad({"name": "gmm-multiclass", "params": {}}, 1.0, d=100)
    assert not registry.predictor("multiclass-ode").supports(mixture)
    assert registry.predictor("lsq-volterra").supports(online).reason
    finite = online.with_(alpha=2.0)
    for name in ("lsq-online-ode", "lsq-homogenized-sgd", "glm-ode"):
        assert not registry.predictor(name).supports(finite), name


def test_isotropic_glm_and_per_mode_odes_agree_under_adagrad_norm(registry):
    s = adagrad({"name": "glm", "params": LOGISTIC}, 2.0, d=1000)
    t = np.linspace(0, 8, 9)
    iso, modes = registry.predictor("glm-ode").predict(s, t), registry.predictor("glm-aniso-ode").predict(s, t)
    np.testing.assert_allclose(modes["risk"], iso["risk"], rtol=1e-5)
    square = adagrad({"name": "glm", "params": {"link": "linear", "loss": "square", "sigma": 0.5}}, 1.0, d=1000)
    lsq = square.with_(model={"name": "linear", "params": {"sigma": 0.5}})
    np.testing.assert_allclose(registry.predictor("glm-ode").predict(square, t)["m"],
                               registry.predictor("lsq-online-ode").predict(lsq, t)["m"], rtol=1e-6)


# -- signSGD and Adam: every coordinate moves by gamma B/d times an O(1) normalised step ---------------
@pytest.mark.parametrize("name", ["sign-sgd", "adam"])
def test_the_first_step_moves_every_coordinate_by_gamma_b_over_d(registry, name):
    """signSGD's step, and Adam's first (bias-corrected) one, is ``lr sign(g)``: per-coordinate steps of
    ``gamma B/d``, the scaling under which the curves have a d -> infinity limit (docs/validation/adaptive.md)."""
    s = hdbench.Scenario.from_dict({"model": "linear", "d": 50, "t_max": 1.0, "dynamics": {
        "name": name, "params": {"gamma": 0.8, "batch_size": 2}}})
    opt = registry.dynamics(name).optimizer(s)
    g = jax.random.normal(jax.random.PRNGKey(0), (50,))
    update, _ = opt.update(g, opt.init(g), g)
    np.testing.assert_allclose(np.asarray(update), -0.8 * 2 / 50 * np.sign(np.asarray(g)), rtol=1e-5)


@pytest.mark.parametrize("spectrum", [{}, {"spectrum": "power-law", "beta": 1.0}])
def test_the_sign_drift_ode_matches_sign_sgd(registry, spectrum):
    s = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": 0.5, **spectrum}}, "d": 500,
                                    "t_max": 8.0, "seeds": 16, "n_times": 21,
                                    "dynamics": {"name": "sign-sgd", "params": {"gamma": 0.5}}})
    sim = hdbench.simulate(s)
    ode, threshold = registry.predictor("lsq-online-ode"), z_threshold(s.n_times, s.seeds)
    curves = ode.predict(s, sim.times)
    assert max_z(sim, curves) < threshold
    flow = registry.predictor("population-gf").predict(s, sim.times)     # the drift without the sign noise
    assert hdbench.score(sim, curves)["ratio"] * 10 < hdbench.score(sim, flow)["ratio"]
    sgd = s.with_(dynamics={"name": "online-sgd", "params": {"gamma": 0.5}})
    assert max_z(sim, ode.predict(sgd, sim.times)) > 3 * threshold


def test_sign_sgd_is_declined_where_the_limit_is_not_derived(registry):
    s = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": 0.5}}, "d": 200, "t_max": 1.0,
                                    "dynamics": {"name": "sign-sgd", "params": {"gamma": 0.5, "batch_size": 2}}})
    assert "B = 1" in registry.predictor("lsq-online-ode").supports(s).reason
    assert not registry.predictor("population-gf").supports(s)
    one = s.with_(dynamics_params={"batch_size": 1})
    for name in ("lsq-volterra", "lsq-exact-recursion"):
        assert not registry.predictor(name).supports(one), name
    glm = one.with_(model={"name": "glm", "params": LOGISTIC})
    for name in ("glm-ode", "glm-aniso-ode", "population-gf"):
        assert not registry.predictor(name).supports(glm), name
