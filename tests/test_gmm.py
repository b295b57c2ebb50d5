"""Gaussian mixtures (BGJ): quadratures against Monte Carlo and each other, the per-sample gradient
covariance against autodiff, the effective dynamics with its corrector against simulation (binary
and XOR), population-gf losing at large gamma, and the fraction of random initialisations that reach
the optimum (BGJ: about one half for the binary mixture)."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold
from hdbench.rank import rank_scenario
from hdbench_plugins.common.gmm import BINARY, XOR, binary_expectations, mixture_expectations
from hdbench_plugins.solvers.bgj_gmm import gradient_covariance


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


@pytest.mark.parametrize("gamma", [pytest.param(1.0, marks=pytest.mark.slow), 4.0])   # 4: the corrector matters most
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
    # R_1_2 stays near 0 with a noise floor of ~0.3 that both miss alike: it sets the largest sup error
    # (population-gf's is the smaller) but must not decide the rank, which the noise-aware headline gives
    assert pop["observables"]["R_1_2"]["ratio"] < 2 and eff["observables"]["R_1_2"]["ratio"] < 2
    rows = [{"predictor": "bgj-effective", "status": "ok", **eff}, {"predictor": "population-gf", "status": "ok", **pop}]
    rank_scenario(rows)
    assert [r["rank"] for r in rows] == [1, 2] and pop["worst_observable"] in ("R_1_1", "R_2_2")


@pytest.mark.slow      # 30 s: 128 seeds to t = 20 (pytest -m slow)
def test_fraction_reaching_the_optimum_from_random_initialisation(registry):
    s = gmm(init="random", d=250, seeds=128, t_max=20.0)
    curves = registry.predictor("bgj-effective").predict(s, np.array([0.0, 10.0, 20.0]))
    assert abs(curves["reached_optimum"][-1] - 0.5) < 1e-12
    sim = hdbench.simulate(s)
    frac = sim.mean["reached_optimum"][-1]
    assert abs(frac - 0.5) < 3 * np.sqrt(0.25 / s.seeds)      # binomial noise floor


def test_xor_optimum_indicator():
    from hdbench_plugins.common.gmm import xor_optimum
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
    assert len(sim.per_seed) == 25 and np.isfinite(sim.mean["R_0_0"]).all()
    assert hdbench.registry().predictor("bgj-effective").supports(s).reason


KEYS = {"Eg": "Eg", "Ex": "Ea", "Eb": "Eb", "B": "B", "risk": "risk"}


@pytest.mark.parametrize("v, m, R, lam", [
    ([0.95, -0.8], [0.7, -0.6], [[0.36, 0.01], [0.01, 0.3]], 100.0),     # committed units
    ([1.0, -0.8], [0.03, -0.05], [[1.0, 0.0], [0.0, 1.0]], 100.0),       # near the uninformative start
])
def test_qmc_rule_agrees_with_the_nested_rule(v, m, R, lam):
    """The generic (quasi-Monte Carlo, conditioned on h) expectations on the binary mixture against the
    nested kink-split rule (accurate to ~1e-6): within 5 standard deviations of the rule, estimated
    from 8 independent scramblings, which also must average to the nested value."""
    v, m, R = np.array(v), np.array(m), np.array(R)
    ref = binary_expectations(v, m, R, lam, n_a=16, n=8)
    runs = [mixture_expectations(v, m[:, None], R, lam, BINARY, log2_n=11, seed=k) for k in range(8)]
    for key, ref_key in KEYS.items():
        vals = np.array([np.ravel(r[key]) for r in runs])
        sd = vals.std(axis=0, ddof=1)
        assert np.all(np.abs(vals[0] - np.ravel(ref[ref_key])) < 5 * sd + 1e-9), key
        assert np.all(np.abs(vals.mean(axis=0) - np.ravel(ref[ref_key])) < 5 * sd / np.sqrt(8) + 1e-9), key


def _xor_state():
    v = np.array([0.9, 0.7, -0.8, -0.6])
    M = np.array([[0.4, 0.05], [-0.3, 0.1], [0.02, 0.35], [0.1, -0.2]])
    A = np.random.default_rng(1).standard_normal((4, 4)) * 0.2
    return v, M, 0.5 * np.eye(4) + A @ A.T, 50.0


def _xor_samples(v, M, R, lam, n, rng):
    """Direct draws of (component, x in the (means, W^perp) coordinates) for the XOR mixture."""
    out = []
    for mean, y in zip(XOR.means, XOR.labels):
        zeta = rng.standard_normal((n, 2)) / np.sqrt(lam)
        b = rng.multivariate_normal(np.zeros(4), R / lam, size=n)
        x = np.asarray(mean) + zeta
        h = x @ M.T + b
        e = 1 / (1 + np.exp(-(np.maximum(h, 0) @ v))) - y
        out.append((x, b, h, e, y))
    return out


def test_xor_expectations_match_monte_carlo():
    """The conditioning on the 4 preactivations (``E[zeta | h]``, ``E[b | h]``) against direct draws of
    all 6 Gaussian coordinates: within 5 combined standard errors (Monte Carlo and the rule's own
    spread over scramblings)."""
    v, M, R, lam = _xor_state()
    runs = [mixture_expectations(v, M, R, lam, XOR, log2_n=12, seed=k) for k in range(4)]
    n, rng = 400_000, np.random.default_rng(0)
    parts = {"Eg": [], "Ex": [], "Eb": [], "B": []}
    for x, b, h, e, y in _xor_samples(v, M, R, lam, n, rng):
        ind = (h > 0) * 1.0
        parts["Eg"].append(e[:, None] * np.maximum(h, 0))
        parts["Ex"].append(((e[:, None] * ind)[:, :, None] * x[:, None, :]).reshape(n, -1))
        parts["Eb"].append(((e[:, None] * ind)[:, :, None] * b[:, None, :]).reshape(n, -1))
        parts["B"].append(((e * e)[:, None, None] * ind[:, :, None] * ind[:, None, :]).reshape(n, -1))
    for key, comps in parts.items():
        x = np.mean(comps, axis=0)            # one draw of each component per "sample"
        mc, se = x.mean(axis=0), x.std(axis=0) / np.sqrt(n)
        vals = np.array([np.ravel(r[key]) for r in runs])
        tol = 5 * np.sqrt(se**2 + vals.var(axis=0, ddof=1)) + 1e-9
        assert np.all(np.abs(vals[0] - mc) < tol), key


@pytest.mark.parametrize("model", ["gmm-binary", "gmm-xor"])
def test_gradient_covariance_matches_autodiff(model):
    """The noise covariance of bgj-diffusive against per-sample gradients of the model's own loss
    (jax.grad), projected on the statistics (v, M = W mu^T), at a small d."""
    import jax
    import jax.numpy as jnp
    reg = hdbench.registry()
    cls = reg.entry("model", model).cls
    s = hdbench.Scenario.from_dict({"model": {"name": model, "params": {"lam": 50.0}},
                                    "dynamics": {"name": "online-sgd"}, "d": 40, "t_max": 1.0})
    mdl, p = cls(), s.model_params
    key = jax.random.key(3)
    teacher = mdl.teacher(key, s.d, p)
    params = {"W": jax.random.normal(jax.random.key(4), (cls.units, s.d)) * 0.3,
              "v": jnp.linspace(-1.0, 1.2, cls.units)}
    n = 200_000
    X, y = mdl.sample(jax.random.key(5), n, s.d, teacher, p)
    grads = jax.vmap(jax.grad(lambda th, x, y: mdl.loss(th, x, y, p)), in_axes=(None, 0, 0))(params, X, y)
    g = np.concatenate([np.asarray(grads["v"]), np.asarray(grads["W"] @ teacher.T).reshape(n, -1)], axis=1)
    mc = np.cov(g, rowvar=False)              # the L2 part is the same for every sample: no covariance
    W, v = np.asarray(params["W"], float), np.asarray(params["v"], float)
    M = W @ np.asarray(teacher, float).T
    Wp = W - M @ np.asarray(teacher, float)
    C = np.asarray(gradient_covariance(jnp.asarray(v), jnp.asarray(M), jnp.asarray(Wp @ Wp.T), p["lam"],
                                       cls.mixture, log2_n=12))
    se = np.sqrt((np.mean(g[:, :, None] ** 2 * g[:, None, :] ** 2, axis=0) + mc**2) / n)   # rough, generous
    assert np.all(np.abs(C - mc) < 5 * se + 1e-3 * np.abs(mc).max())


def xor(init="overlaps", gamma=1.0, t_max=10.0, d=1000, seeds=16, **params):
    return hdbench.Scenario.from_dict({"model": {"name": "gmm-xor", "params": dict(init=init, **params)},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


def test_xor_effective_dynamics_within_noise(registry):
    """The 22 statistics from given overlaps. The risk is left out: at lam = 1000 its seed spread is
    ~1e-4, below its O(1/d) finite-size bias (measured 4e-5 at d = 1000, 1e-5 at d = 4000). By
    t = 20 the perpendicular overlaps have decayed to the level the corrector holds them at, which
    population-gf (no corrector) sends to zero."""
    s = xor(t_max=20.0)
    sim = hdbench.simulate(s)
    curves = registry.predictor("bgj-effective").predict(s, sim.times)
    names = [k for k in curves if k != "risk"]
    assert max_z(sim, curves, names) < z_threshold(s.n_times, s.seeds)
    pop = registry.predictor("population-gf").predict(s, sim.times)
    assert max_z(sim, pop, names) > z_threshold(s.n_times, s.seeds)        # no corrector: R decays to 0


@pytest.mark.slow      # 512 runs of BGJ's Fig. 2 setting; the SDE's noise covariance is checked by default (autodiff test)
def test_diffusive_sde_matches_random_initialisations(registry):
    """bgj-diffusive from BGJ's random start (binary, d = 250): the fraction reaching the optimum,
    every other mean and the spreads of v and m within the joint noise (the seeds', and the SDE's
    Monte Carlo over its paths, ``unc``). 512 seeds: the fraction's standard error 0.022 (128 seeds'
    0.044 let one block of seeds sit 2.5 standard errors high, docs/validation/bgj.md)."""
    s = gmm(init="random", d=250, seeds=512, t_max=20.0)
    sim = hdbench.simulate(s)
    curves = registry.predictor("bgj-diffusive").predict(s, sim.times)
    assert curves["unc(reached_optimum)"].max() > 0
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


@pytest.mark.slow
def test_xor_fraction_reaching_the_optimum(registry):
    """BGJ's Fig. 3 setting (d = 250, lam = 1000, alpha = 0.1): the SDE's fraction against 256 runs
    (measured: 0.094-0.098 predicted, 0.097 +- 0.009 simulated with 1024 runs; BGJ's count 3/32)."""
    from hdbench_plugins.solvers.bgj_gmm import SDE_PATHS
    s = xor(init="random", d=250, seeds=256, t_max=100.0)
    sim = hdbench.simulate(s)
    curves = registry.predictor("bgj-diffusive").predict(s, sim.times)
    assert max_z(sim, curves, ["reached_optimum"]) < z_threshold(s.n_times, s.seeds)
    assert abs(curves["reached_optimum"][-1] - 3 / 32) < 3 * np.sqrt(0.09 / SDE_PATHS)
