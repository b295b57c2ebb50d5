"""Multi-pass theories: the DMFT solver (dmft.py, dmft_predictors.py) and the least-squares Volterra
equations (volterra_multipass.py), against exact oracles and finite-d simulations."""
import jax
import numpy as np
import pytest
from conftest import max_z, z_threshold

import hdbench
from hdbench_plugins.solvers import dmft
from hdbench_plugins.solvers.dmft_runs import predict_dmft
from hdbench_plugins.solvers.least_squares import mp_quadrature


def linear(dynamics, alpha=2.0, sigma=0.5, ridge=0.0, gamma=1.0, m0=0.0, q0=0.0, d=400, seeds=16, t_max=4.0,
           n_times=41, **dyn):
    return hdbench.Scenario.from_dict({
        "model": {"name": "linear", "params": {"sigma": sigma, "ridge": ridge, "m0": m0, "q0": q0}},
        "dynamics": {"name": dynamics, "params": {"gamma": gamma, **dyn}},
        "alpha": alpha, "d": d, "t_max": t_max, "seeds": seeds, "n_times": n_times})


@pytest.mark.parametrize("alpha, m0, q0", [(2.0, 0.0, 0.0), (0.7, 0.2, 0.5)])
def test_volterra_multipass_without_ridge_is_the_conventions_oracles(registry, alpha, m0, q0):
    """Ridge 0: gradient descent gives oracle 2 (lsq-gf-mp), SGD oracle 3 (lsq-homogenized-sgd, an
    eigen-decomposition): independent solvers of the same limits."""
    for dyn, oracle, tol in (("gd", "lsq-gf-mp", 1e-12), ("sgd", "lsq-homogenized-sgd", 1e-9)):
        s = linear(dyn, alpha=alpha, m0=m0, q0=q0, gamma=0.8, t_max=6.0)
        t = s.times()
        ours, ref = registry.predictor("lsq-volterra-multipass").predict(s, t), registry.predictor(oracle).predict(s, t)
        for k in ref:
            assert np.abs(ours[k] - ref[k]).max() < tol, (dyn, k)


def test_dmft_with_deterministic_clocks_is_gradient_descent_exactly():
    """On a linear teacher the discrete DMFT with ``dZ = h`` is the DMFT of gradient descent with step
    h, whose Marchenko-Pastur formula has ``(1 - h (x + lambda))^k`` for ``exp(-(x + lambda) s)``."""
    alpha, sigma, lam, m0, q0, T, s_max = 0.7, 0.5, 0.2, 0.1, 0.3, 30, 3.0
    h = s_max / T
    sol = dmft.solve(dmft.Problem(dmft.SquareLinear(sigma), alpha, lam, q0, m0, 0.0, "flow"), s_max, T)
    l, w, p0 = mp_quadrature(alpha)
    x = alpha * l
    k = np.arange(T + 1)
    c2 = q0 - m0**2
    E = (1 - h * (x + lam))[None, :] ** k[:, None]
    fill = (1 - E) * x / (x + lam)
    B = fill + E * m0 - 1
    E0 = (1 - h * lam) ** k
    D = (B**2 + sigma**2 * x * (1 - E) ** 2 / (x + lam) ** 2 + E**2 * c2) @ w + p0 * ((E0 * m0 - 1) ** 2 + E0**2 * c2)
    m = (fill + E * m0) @ w + p0 * E0 * m0
    assert sol.converged
    np.testing.assert_allclose(sol.q[0] - 2 * sol.m[0] + 1, D, atol=1e-12)
    np.testing.assert_allclose(sol.m[0], m, atol=1e-12)


def test_implicit_margin_step_is_the_dmft_of_backward_euler():
    """The Monte-Carlo side with the linearly implicit margin step (the flow clock's default), on square
    loss: ``G_k = h (r_{k+1} - y)``, the DMFT of gradient descent taken implicitly,
    ``(I + h X^T X) theta_{k+1} = theta_k + h X^T y``, whose Marchenko-Pastur formula has ``(1 + h x)^-k``.
    With moment-matched normals a Gaussian side has no Monte-Carlo error, so the match is to solver
    tolerance; the explicit step's formula is 0.03 away on m, so the test tells the schemes apart."""
    alpha, sigma, m0, q0, T, s_max = 0.7, 0.5, 0.1, 0.3, 20, 3.0
    h = s_max / T
    problem = dmft.Problem(dmft.GlmLoss("linear", "linear", "square", sigma), alpha, 0.0, q0, m0, 0.0, "flow")
    sol = dmft.solve(problem, s_max, T, paths=4000, tangent_paths=1000, tol=1e-10, max_iter=300, average=1)
    l, w, p0 = mp_quadrature(alpha)
    x = alpha * l
    k = np.arange(T + 1)[:, None]
    for E, match in (((1 + h * x)[None, :] ** -k.astype(float), True), ((1 - h * x)[None, :] ** k, False)):
        D = ((E * (m0 - 1)) ** 2 + sigma**2 * (1 - E) ** 2 / x + E**2 * (q0 - m0**2)) @ w + p0 * ((m0 - 1) ** 2 + q0 - m0**2)
        m = (1 - E + E * m0) @ w + p0 * m0
        gap = max(np.abs(sol.q[0] - 2 * sol.m[0] + 1 - D).max(), np.abs(sol.m[0] - m).max())
        assert (gap < 1e-8) if match else (gap > 0.02), (match, gap)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_dmft_gf_on_linear_equals_the_marchenko_pastur_formula(registry, ridge):
    """The issue's oracle: 1e-4 (relative to the curve's scale) on the deterministic square-loss path."""
    s = linear("gd", ridge=ridge, alpha=1.5, m0=0.3, q0=0.4, gamma=1.0, t_max=6.0)
    t = s.times()
    ours = registry.predictor("dmft-gf").predict(s, t)
    ref = registry.predictor("lsq-volterra-multipass").predict(s, t)
    for k in ("risk", "m", "q", "train_risk"):
        assert np.abs(ours[k] - ref[k]).max() < 1e-4 * np.abs(ref[k]).max(), k
    if ridge == 0:
        exact = registry.predictor("lsq-gf-mp").predict(s, t)
        assert np.abs(ours["risk"] - exact["risk"]).max() < 1e-4 * exact["risk"].max()


@pytest.mark.parametrize("clock", ["poisson", "gaussian"])
def test_dmft_sgd_and_sgf_on_linear_equal_volterra_within_their_uncertainty(registry, clock):
    """SGD (Poisson clocks) and SGF (Gaussian clocks) coincide on a linear model (Fan-Wang) and equal
    the Volterra equations. The square-loss side is exact in expectation over the clocks, so the
    prediction is deterministic (one replica) and its only error is the grid's: the gap must be
    within ``unc``, the extrapolation's error estimate (measured: 6x the gap), and both small."""
    s = linear("sgd", ridge=0.05, gamma=1.0, t_max=4.0, n_times=9)
    t = s.times()
    ours = predict_dmft(s, t, clock, steps=40 if clock == "poisson" else 20, levels=3, replicas=8)
    ref = registry.predictor("lsq-volterra-multipass").predict(s, t)
    for k in ("risk", "m", "train_risk"):
        gap = np.abs(ours[k] - ref[k])
        assert (gap <= ours[f"unc({k})"] + 1e-12).all(), (k, gap.max(), ours[f"unc({k})"].max())
        assert ours[f"unc({k})"].max() < 2e-3 * np.abs(ref[k]).max(), k      # and small (2% with Monte Carlo)


@pytest.mark.parametrize("batch", [20, 200])
def test_dmft_sgd_batch_is_exact_for_a_finite_batch_simulation(registry, batch):
    """Poisson clocks on the grid h = gamma B / n are the DMFT of SGD with that batch drawn with
    replacement: no discretisation error, so the simulation agrees at finite h (here b = 0.025,
    where the B = o(n) limit is off by several standard errors, and b = 0.25, which every B = o(n)
    theory declines)."""
    s = linear("sgd", ridge=0.05, gamma=1.0, d=400, seeds=16, t_max=4.0, n_times=21, batch_size=batch)
    sim = hdbench.simulate(s)
    pred = registry.predictor("dmft-sgd-batch")
    assert pred.supports(s)
    if batch / s.n > 0.05:
        assert "B << n" in registry.predictor("dmft-sgd").supports(s).reason
    curves = pred.predict(s, sim.times)
    for k in ("D", "train_risk", "m"):
        z = max_z(sim, curves, [k])
        assert z < z_threshold(len(sim.times) - 1, s.seeds), (k, z)


WARMUP_COSINE = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
                 "decay_steps": 4.0, "end_value": 0.1}


def test_dmft_sgd_batch_follows_a_schedule(registry):
    """Under a schedule the grid is still the simulated SGD's: step k has size gamma f_k b and kicks of
    gamma f_k (an uneven grid). b = 0.025 on ridge least squares: within the noise, where the same
    theory at constant gamma is far off."""
    s = linear("sgd", ridge=0.05, gamma=1.5, d=400, seeds=16, t_max=4.0, n_times=21, batch_size=20,
               schedule=WARMUP_COSINE)
    sim = hdbench.simulate(s)
    pred = registry.predictor("dmft-sgd-batch")
    assert pred.schedules and pred.supports(s)
    threshold = z_threshold(len(sim.times) - 1, s.seeds)
    assert max_z(sim, pred.predict(s, sim.times)) < threshold
    assert max_z(sim, pred.predict(s.with_(dynamics_params={"schedule": None}), sim.times)) > 3 * threshold


@pytest.mark.parametrize("model", ["linear", "glm"])
def test_dmft_sgd_batch_under_a_constant_schedule_is_that_gamma(registry, model):
    """The uneven grid at a constant factor c is the even grid of gamma c: the same steps, kicks,
    ridge shrink and random numbers, so the same prediction to rounding."""
    spec = linear("sgd", ridge=0.05, gamma=2.0, d=200, t_max=2.0, n_times=11, batch_size=10).to_dict()
    if model == "glm":
        spec["model"] = {"name": "glm", "params": {"link": "sign", "loss": "logistic", "ridge": 0.05}}
    plain = hdbench.Scenario.from_dict(spec).with_(dynamics_params={"gamma": 1.0})
    halved = plain.with_(dynamics_params={"gamma": 2.0, "schedule": {"name": "constant", "value": 0.5}})
    t = plain.times()
    pred = registry.predictor("dmft-sgd-batch")
    ours, ref = pred.predict(halved, t), pred.predict(plain, t)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_dmft_glm_logistic_matches_simulation(registry):
    """Logistic regression, sign teacher, multi-pass SGD: dmft-sgd within noise of the simulation."""
    s = hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                    "dynamics": {"name": "sgd", "params": {"gamma": 1.5}},
                                    "alpha": 2.0, "d": 500, "t_max": 4.0, "seeds": 16, "n_times": 21})
    sim = hdbench.simulate(s)
    curves = registry.predictor("dmft-sgd").predict(s, sim.times)
    sc = hdbench.score(sim, curves)
    assert sc["z_max"] < z_threshold(len(sim.times) - 1, s.seeds), sc["observables"]
    assert sc["uncertainty"] is not None and sc["uncertainty"] < 0.02


def phase_retrieval_gd(alpha, d=1000, seeds=8, gamma=0.5):
    return hdbench.Scenario.from_dict({
        "model": {"name": "glm", "params": {"link": "quadratic", "activation": "quadratic", "loss": "square",
                                            "m0": 0.3, "q0": 0.5}},
        "dynamics": {"name": "gd", "params": {"gamma": gamma}}, "alpha": alpha, "d": d, "t_max": 4.0,
        "seeds": seeds, "n_times": 21})


def test_the_fixed_point_follows_a_small_error_relative_to_itself():
    """A GLM that learns its teacher: ``|theta - theta*|^2 = q - 2 m + 1`` falls far below ``q``. A stop when
    ``q`` and ``m`` move by ``tol`` of ``q`` leaves a bias of the order of that error itself (phase retrieval,
    alpha = 4, gamma = 1.5: 130% of it at t = 4), shared by every replica. The iteration also follows the
    error relative to itself. Here a map contracting by 0.7 towards an error of 1e-4."""
    from hdbench_plugins.solvers.dmft_scaffold import iterate
    target = 1e-4

    def update(kernels):
        (err,) = kernels
        state = {"q": np.array([1.0]), "m": np.array([1.0 - err / 2]), "distance": np.array([err])}
        return state, (target + 0.7 * (err - target),)

    fixed = iterate(update, (1.0,), lambda: None, damping=1.0, tol=1e-4, average=1)
    assert fixed.converged
    assert abs(fixed.history[-1]["distance"][0] - target) < 1e-2 * target, fixed.history[-1]["distance"]


def test_richardson_drops_a_coarse_level_outside_its_asymptotic_regime():
    """Three levels h, h/2, h/4 with errors ``c1 h + c2 h^2`` are extrapolated exactly, except at a time where
    the coarsest level is far off (a transient its step does not resolve): there the finer two levels'
    extrapolation, and the first-order error estimate (its gap to the finest level)."""
    from hdbench_plugins.solvers.dmft_runs import _extrapolated
    s = linear("gd", t_max=1.0)
    grid = np.linspace(0.0, 1.0, 11)
    truth = 0.3 + 0.5 * np.exp(-grid)

    def level(h, jump=0.0):
        q = truth + 0.2 * h * grid + 0.5 * h * h * grid**2
        q = q + jump * (np.arange(11) == 3)
        one = lambda x: np.asarray(x)[None]
        return dmft.Solution(s=grid, q=one(q), m=one(0.5 * truth), train=one(truth), grad2=one(truth),
                             moved2=one(truth), iterations=1, converged=True)
    hs = (0.1, 0.05, 0.025)
    solved = [(level(hs[0], jump=0.4), 1 / 3), (level(hs[1]), -2.0), (level(hs[2]), 8 / 3)]
    best, low = _extrapolated(s, grid, solved, 1.0, 10, 0.0)
    far = np.arange(11) != 3
    np.testing.assert_allclose(best["q"][far], truth[far], atol=1e-12)
    two = 2 * level(hs[2]).q[0] - level(hs[1]).q[0]
    assert abs(best["q"][3] - two[3]) < 1e-12 and abs(best["q"][3] - truth[3]) < 1e-3
    assert abs(low["q"][3] - level(hs[2]).q[0][3]) < 1e-12       # the estimate is first order there


@pytest.mark.slow       # 35 s
def test_dmft_gf_resolves_phase_retrievals_early_transient(registry):
    """Phase retrieval GD at alpha = 1, gamma = 1.5 (s up to 6, coarsest step 0.3): at t = 0.4 the coarsest
    grid's train risk was 0.8-1.9 where the finer two gave 0.16 and 0.13, so the three-level extrapolation
    was 0.43 +- 0.34 against the simulation's 0.106 (own uncertainty 60 noise floors). Dropping that level
    there: within the noise, the uncertainty a few floors."""
    s = phase_retrieval_gd(1.0, seeds=16, gamma=1.5)
    sim = hdbench.simulate(s)
    sc = hdbench.score(sim, registry.predictor("dmft-gf").predict(s, sim.times))
    assert sc["z_max"] < z_threshold(len(sim.times) - 1, s.seeds), sc["observables"]
    assert sc["uncertainty"] < 5 * sc["noise_floor"], (sc["uncertainty"], sc["noise_floor"])


@pytest.mark.slow       # 40 s
def test_dmft_gf_follows_phase_retrieval_to_its_teacher(registry):
    """Phase retrieval under GD at alpha = 4, gamma = 1.5 recovers its teacher: the risk at t = 4 is 3e-4 of
    its start. Within the noise, where a fixed point stopped on ``q``'s scale alone put the train risk
    at t = 4 at 1.5e-4 against the simulation's 3.6e-5 (z 7.5)."""
    s = phase_retrieval_gd(4.0, seeds=16, gamma=1.5)
    sim = hdbench.simulate(s)
    sc = hdbench.score(sim, registry.predictor("dmft-gf").predict(s, sim.times))
    assert sc["z_max"] < z_threshold(len(sim.times) - 1, s.seeds), sc["observables"]


@pytest.mark.parametrize("alpha", [1.0, pytest.param(2.0, marks=pytest.mark.slow)])   # 30 s each
def test_dmft_gf_on_phase_retrieval_is_within_noise_with_a_useful_uncertainty(registry, alpha):
    """Phase retrieval under GD at alpha <= 2: margins near 0 with large labels make the tangents
    heavy-tailed (``sample_side._stein_mixed``). With the tangents alone the prediction's own uncertainty
    was 670 noise floors at alpha = 1 (q at t = 4: 2.31 +- 1.66, simulated 0.867) and 5.3 at alpha = 2;
    it must be within the simulation's noise, with an uncertainty of a few noise floors at most."""
    s = phase_retrieval_gd(alpha)
    sim = hdbench.simulate(s)
    sc = hdbench.score(sim, registry.predictor("dmft-gf").predict(s, sim.times))
    assert sc["z_max"] < z_threshold(len(sim.times) - 1, s.seeds), sc["observables"]
    assert sc["uncertainty"] < 3 * sc["noise_floor"], (sc["uncertainty"], sc["noise_floor"])
    assert sc["ratio"] < 3, sc["ratio"]


def test_dmft_sgf_declines_phase_retrieval(registry):
    """The cubic force of a quadratic activation under the square loss: the Gaussian clock's
    Euler-Maruyama step blows up on some paths at every grid, so the solve used to refine to its
    finest grid for minutes and then report a divergence the SGF does not have. It declines at once;
    gradient flow (an implicit step) and the Poisson clock (a real divergence) still take it."""
    spec = phase_retrieval_gd(1.0).to_dict()
    spec["dynamics"] = {"name": "sgf", "params": {"gamma": 0.1}}
    s = hdbench.Scenario.from_dict(spec)
    answer = registry.predictor("dmft-sgf").supports(s)
    assert not answer and "cubic force" in answer.reason, answer
    assert registry.predictor("dmft-gf").supports(s) and registry.predictor("dmft-sgd").supports(s)
    logistic = s.with_(model_params={"link": "sign", "loss": "logistic"})
    assert registry.predictor("dmft-sgf").supports(logistic)


def test_predicted_divergence_is_reported_as_infinity(registry):
    """Phase retrieval under SGD at gamma = 0.5: a sample with label y > 1/(2 tau) is kicked past its
    stable point, so paths diverge (as the simulation does); the prediction is +inf from then on,
    never NaN, and scoring treats it as a predicted divergence."""
    s = hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"link": "quadratic", "activation": "quadratic",
                                                                       "loss": "square", "m0": 0.3, "q0": 0.5}},
                                    "dynamics": {"name": "sgd", "params": {"gamma": 0.5}},
                                    "alpha": 2.0, "d": 200, "t_max": 8.0, "n_times": 9})
    curves = predict_dmft(s, s.times(), "poisson", steps=10, levels=2, paths=2000, tangent_paths=500, replicas=2)
    risk = curves["risk"]
    assert np.isposinf(risk[-1]) and np.isfinite(risk[0])
    assert not np.isnan(risk).any()


@pytest.mark.parametrize("t_max", [16.0, 40.0])
def test_volterra_multipass_past_the_stability_edge_grows_then_is_infinite(registry, t_max):
    """gamma = 2.5 > 2 at alpha = 2: the risk grows exponentially. The Volterra solver follows the
    exact eigendecomposition (lsq-homogenized-sgd) to 1e-3 while ``q`` is below the simulation's
    BLOWUP, is +inf from the first time past it, and is never negative (a coarse grid's Richardson
    extrapolation of two exponentials with different rates once gave -1.4e12)."""
    from hdbench.simulate import BLOWUP
    s = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": 0.5}}, "alpha": 2.0, "d": 200,
                                    "t_max": t_max, "n_times": 21, "dynamics": {"name": "sgd", "params": {"gamma": 2.5}}})
    t = s.times()
    ours = registry.predictor("lsq-volterra-multipass").predict(s, t)
    exact = registry.predictor("lsq-homogenized-sgd").predict(s, t)
    below = exact["q"] < BLOWUP
    assert below[:3].all() and not below[-1]
    for name in ("risk", "D", "train_risk"):
        np.testing.assert_allclose(ours[name][below], exact[name][below], rtol=1e-3)
        assert np.isposinf(ours[name][~below]).all() and (ours[name] > 0).all()


def test_dmft_declines_what_it_does_not_cover(registry):
    p = registry.predictor("dmft-sgd")
    base = {"dynamics": {"name": "sgd"}, "alpha": 2.0, "d": 100, "t_max": 1.0}
    hinge = {"model": {"name": "glm", "params": {"loss": "hinge"}}, **base}
    aniso = {"model": {"name": "linear", "params": {"spectrum": "power-law"}}, **base}
    online = {"model": {"name": "glm"}, "dynamics": {"name": "online-sgd"}, "d": 100, "t_max": 1.0}
    relu = {"model": {"name": "committee", "params": {"activation": "relu"}}, **base}
    second = {"model": {"name": "committee", "params": {"train_second_layer": True}}, **base}
    for spec, word in ((hinge, "kink"), (aniso, "anisotropic"), (online, "finite data"), (relu, "kink"),
                       (second, "second layer")):
        support = p.supports(hdbench.Scenario.from_dict(spec))
        assert not support and word in support.reason
    big_batch = hdbench.Scenario.from_dict({"model": {"name": "glm"}, "dynamics": {"name": "sgd", "params": {"batch_size": 8}},
                                            "alpha": 2.0, "d": 1000, "t_max": 4.0})
    assert not registry.predictor("dmft-sgd-batch").supports(big_batch)   # 500 SGD steps: use dmft-sgd


def _logistic(dynamics, gamma, alpha, d=400, seeds=16, t_max=2.0, n_times=11):
    return hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                       "dynamics": {"name": dynamics, "params": {"gamma": gamma}},
                                       "alpha": alpha, "d": d, "t_max": t_max, "seeds": seeds, "n_times": n_times})


@pytest.mark.slow      # 70 s: nine DMFT solves on three d = 1000 simulations (pytest -m slow)
def test_each_dynamics_is_best_predicted_by_its_own_clock():
    """The issue's verdicts on a small case: logistic regression at gamma = 4, alpha = 1. On the SGD
    simulation (d = 1000) the Poisson-clock DMFT wins, on SGF the Gaussian-clock one, on GD the flow; and on each
    the losers are worse by more than the simulation's noise floor (SGD, SME and GF are three limits
    for a nonlinear loss). (At gamma = 1.5 SGD and SGF differ by less than the noise at this size:
    see the issue note.)"""
    clocks = {"sgd": "poisson", "sgf": "gaussian", "gd": "flow"}
    for dynamics, own in clocks.items():
        s = _logistic(dynamics, gamma=4.0, alpha=1.0, d=1000)
        sim = hdbench.simulate(s)
        scores = {clock: hdbench.score(sim, predict_dmft(s, sim.times, clock, steps=20 if clock != "poisson" else 40,
                                                         paths=8000, tangent_paths=2000)) for clock in clocks.values()}
        best = min(scores, key=lambda c: scores[c]["error"])
        assert best == own, (dynamics, {c: round(v["error"], 4) for c, v in scores.items()})
        floor = scores[own]["noise_floor"]
        for clock, sc in scores.items():
            if clock != own:
                assert sc["error"] - scores[own]["error"] > floor, (dynamics, clock, sc["error"], floor)


@pytest.mark.slow      # three d = 1000 simulations; the DMFT's accuracy on each clock is tested by default
def test_dmft_sgd_approaches_the_online_ode_as_alpha_grows(registry):
    """At time t each sample has been used t/alpha times on average, so multi-pass SGD differs from
    one-pass SGD (glm-ode) at first order in 1/alpha: the gap at alpha = 32 is half that at 16, up to
    the predictors' own uncertainties (3 sigma) and a 1/alpha^2 term (measured: 5% of the gap at 16)."""
    online = hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                         "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}},
                                         "d": 1000, "t_max": 4.0, "n_times": 9})
    ode = registry.predictor("glm-ode").predict(online, online.times())
    gaps, uncs = [], []
    for alpha in (16.0, 32.0):
        s = hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                        "dynamics": {"name": "sgd", "params": {"gamma": 1.0}},
                                        "alpha": alpha, "d": 1000, "t_max": 4.0, "n_times": 9})
        c = predict_dmft(s, s.times(), "poisson", steps=40, levels=3)
        gaps.append(c["risk"][-1] - ode["risk"][-1])
        uncs.append(c["unc(risk)"][-1])
    assert gaps[0] > 5 * uncs[0]                                   # a real multi-pass effect at 16
    tolerance = 3 * np.hypot(uncs[1], uncs[0] / 2) + 0.05 * gaps[0] / 2
    assert abs(gaps[1] - gaps[0] / 2) < tolerance, (gaps, uncs)


def test_committee_of_one_linear_unit_is_the_glm_side():
    """A committee with K = M = 1 linear units is least squares: its vector-margin side (blocks of 1)
    must reproduce the scalar GLM side on the same random numbers, to rounding."""
    args = dict(paths=2000, tangent_paths=500)
    glm = dmft.solve(dmft.Problem(dmft.GlmLoss("linear", "linear", "square", 0.5), 2.0, 0.0, 0.5, 0.2, 1.0, "gaussian"), 2.0, 10, **args)
    com = dmft.solve(dmft.Problem(dmft.CommitteeLoss(1, 1, "linear", 1.0, 1.0, 0.5), 2.0, 0.0, 0.5, 0.2, 1.0, "gaussian"), 2.0, 10, **args)
    for a, b in ((glm.q, com.q[:, :, 0, 0]), (glm.m, com.m[:, :, 0, 0]), (glm.train, com.train)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.slow      # 60 s, mostly compiling the committee side (pytest -m slow); the side itself is checked
                       # exactly by test_committee_of_one_linear_unit_is_the_glm_side
def test_dmft_committee_matches_gradient_descent(registry):
    """Two erf hidden units learning a two-unit teacher from alpha = 2 samples per dimension by gradient
    descent: every observable (gen_error, Q, R, train_risk) within noise of the simulation."""
    s = hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2, "r0": 0.3, "sigma": 0.1}},
                                    "dynamics": {"name": "gd", "params": {"gamma": 1.0}},
                                    "alpha": 2.0, "d": 500, "t_max": 3.0, "seeds": 16, "n_times": 13})
    sim = hdbench.simulate(s)
    sc = hdbench.score(sim, registry.predictor("dmft-gf").predict(s, sim.times))
    assert sc["z_max"] < z_threshold(len(sim.times) - 1, s.seeds), sc["observables"]
    assert sc["observables"]["risk"]["sup_error"] < 0.02


def _square_side_on_paths(consts, S, Rt, dZ):
    """The square-loss sample side averaged over the clock paths ``dZ`` [N, K] (last increment 0): per
    path the margins ``r = L zeta``, ``L = (I + Rt diag dZ)^-1``, so ``E r r^T = E L S L^T``."""
    alpha, h, m2 = consts
    K = len(S)
    T = K - 1
    L = np.linalg.inv(np.eye(K) + Rt[None] * dZ[:, None, :])
    M = L @ S @ np.swapaxes(L, 1, 2)
    Lm, Md, dg = L.mean(0), (M * dZ[:, None, :]).mean(0), np.diagonal(M, axis1=1, axis2=2).mean(0)
    RG = alpha * h * Lm[:T, :T]
    CG = np.tril(alpha * h * Md[:T, :T], -1)
    return RG, -RG.sum(1), CG + CG.T + np.diag(alpha * m2 * dg[:T]), dg / 2


@pytest.mark.parametrize("clock", ["gaussian", "poisson"])
def test_square_side_in_expectation_is_the_average_over_clock_paths(clock):
    """``square_side_moments`` (from the clock's first two moments, in closed form) against the same
    side averaged over sample paths of the clock, on a random kernel: every entry of R_G, mu, C_G and
    the train loss within 5 standard errors of the paths' mean (the errors from 40 independent
    batches). The second moment matters: with the flow's ``E dZ^2 = h^2`` in place of the clock's,
    C_G is far off."""
    rng = np.random.default_rng(3)
    K, h, tau, alpha = 13, 0.1, 0.5, 0.7
    T = K - 1
    X = rng.standard_normal((K, K))
    S = X @ X.T / K + np.eye(K)
    Rt = np.tril(0.5 * rng.standard_normal((K, K)), -1)
    Rt[:, T] = 0.0
    m2 = dmft.clock_second_moment(clock, h, tau)
    exact = dmft.square_side_moments((alpha, h, m2), S, Rt)
    wrong = dmft.square_side_moments((alpha, h, h * h), S, Rt)
    batches, paths = 40, 8000
    rows = []
    for b in range(batches):
        dZ = dmft.clock_increments(clock, jax.random.PRNGKey(b), (paths, T), h, tau)
        dZ = np.concatenate([dZ, np.zeros((paths, 1))], axis=1)
        rows.append(np.concatenate([np.ravel(x) for x in _square_side_on_paths((alpha, h, m2), S, Rt, dZ)]))
    rows = np.array(rows)
    mean, err = rows.mean(0), rows.std(0, ddof=1) / np.sqrt(batches)
    flat = np.concatenate([np.ravel(x) for x in exact[:4]])
    checked = err > 1e-10                 # entries that are random (not fixed ones, with rounding noise)
    z = np.abs(flat - mean)[checked] / err[checked]
    assert z.max() < 5, z.max()
    z_wrong = np.abs(np.concatenate([np.ravel(x) for x in wrong[:4]]) - mean)[checked] / err[checked]
    assert z_wrong.max() > 50, z_wrong.max()


def test_square_side_in_expectation_with_the_flow_clock_is_the_deterministic_path():
    """``dZ = h`` on every path: the side of the one path, ``L = (I + h Rt)^-1``, to rounding."""
    rng = np.random.default_rng(4)
    K, h, alpha = 9, 0.2, 0.5
    X = rng.standard_normal((K, K))
    S = X @ X.T / K
    Rt = np.tril(rng.standard_normal((K, K)), -1)
    Rt[:, K - 1] = 0.0
    consts = (alpha, h, h * h)
    dZ = np.full((1, K), h)
    dZ[:, -1] = 0.0
    for a, b in zip(dmft.square_side_moments(consts, S, Rt), _square_side_on_paths(consts, S, Rt, dZ)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_extrapolation_weights_are_richardson_at_zero_and_exact_on_polynomials(levels):
    from hdbench_plugins.solvers.dmft_scaffold import extrapolation_weights
    richardson = {1: (1.0,), 2: (-1.0, 2.0), 3: (1 / 3, -2.0, 8 / 3)}[levels]
    np.testing.assert_allclose(extrapolation_weights(levels, 0.3), richardson, rtol=1e-12)
    coarse, target = 0.16, 0.02
    nodes = coarse / 2.0 ** np.arange(levels)
    w = np.array(extrapolation_weights(levels, coarse, target))
    for degree in range(levels):
        assert abs(w @ nodes**degree - target**degree) < 1e-12
    assert abs(w @ nodes**levels - target**levels) > 1e-6       # one degree more is not exact


def test_dmft_gf_follows_a_schedule_by_its_clock(registry):
    """Gradient descent under warmup + cosine decay: a noise-free flow read at tau(t) = int_0^t f.
    dmft-gf equals lsq-gf-mp (which follows gamma(t) the same way) to its own uncertainty, and is
    within noise of the simulation, where the constant-gamma flow is dozens of noise floors off."""
    sched = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
             "decay_steps": 4.0}
    s = linear("gd", d=500, t_max=4.0, n_times=21, schedule=sched)
    sim = hdbench.simulate(s)
    curves = registry.predictor("dmft-gf").predict(s, sim.times)
    ref = registry.predictor("lsq-gf-mp").predict(s, sim.times)
    for k in ("D", "train_risk", "m"):     # + 1e-6: the extrapolation's estimate vanishes where the levels cross
        assert (np.abs(curves[k] - ref[k]) <= curves[f"unc({k})"] + 1e-6).all(), k
    assert max_z(sim, curves) < z_threshold(len(sim.times) - 1, s.seeds)
    constant = registry.predictor("dmft-gf").predict(s.with_(dynamics_params={"schedule": None}), sim.times)
    assert max_z(sim, constant) > 10 * z_threshold(len(sim.times) - 1, s.seeds)


@pytest.mark.parametrize("name", ["dmft-sgd", "dmft-sgf"])
def test_dmft_sgd_follows_a_schedule(registry, name):
    """Multi-pass SGD under warmup + cosine decay: the clock runs at int gamma(t) dt / alpha and its
    temperature gamma(t) varies along it. On least squares that is homogenized SGD with gamma(t)
    (an independent solver), to twice the extrapolation's own error estimate, and the simulation."""
    sched = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
             "decay_steps": 8.0}
    s = linear("sgd", d=1000, t_max=8.0, n_times=21, schedule=sched)
    sim = hdbench.simulate(s)
    curves = registry.predictor(name).predict(s, sim.times)
    ref = registry.predictor("lsq-homogenized-sgd").predict(s, sim.times)
    for k in ("D", "train_risk", "m"):
        assert (np.abs(curves[k] - ref[k]) <= 2 * curves[f"unc({k})"] + 1e-6).all(), k
        assert curves[f"unc({k})"].max() < 2e-3, k
    assert max_z(sim, curves) < z_threshold(len(sim.times) - 1, s.seeds)


@pytest.mark.slow      # 30 s: the logistic DMFT's Monte Carlo
def test_dmft_sgd_follows_a_schedule_on_logistic_regression(registry):
    """Logistic regression, gamma = 2 with warmup + cosine decay: within noise, where the same theory
    at the constant gamma is hundreds of noise floors off."""
    sched = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
             "decay_steps": 4.0}
    s = hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                    "dynamics": {"name": "sgd", "params": {"gamma": 2.0, "schedule": sched}},
                                    "alpha": 2.0, "d": 1000, "t_max": 4.0, "seeds": 16, "n_times": 21})
    sim = hdbench.simulate(s)
    curves = registry.predictor("dmft-sgd").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(len(sim.times) - 1, s.seeds)
    constant = registry.predictor("dmft-sgd").predict(s.with_(dynamics_params={"schedule": None}), sim.times)
    assert max_z(sim, constant) > 10 * z_threshold(len(sim.times) - 1, s.seeds)
