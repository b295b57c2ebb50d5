"""Reshuffled epochs (``sgd-epochs``): the DMFT's epoch clock (``dmft-sgd-epochs``) against its oracles and
simulations, and the verdicts of docs/validation/epochs.md (which theory describes which of sgd,
sgd-epochs, sgf and gd), one test per verdict."""
import jax
import numpy as np
import pytest
from conftest import max_z, z_threshold

import hdbench
from hdbench.score import within_noise
from hdbench_plugins.solvers import dmft
from hdbench_plugins.solvers.dmft.clocks import epoch_past, epoch_priors
from hdbench_plugins.solvers.dmft_runs import predict_dmft


def scenario(model, dynamics, gamma=1.0, alpha=2.0, d=1000, t_max=4.0, seeds=16, n_times=21, **dyn):
    spec = {"linear": {"name": "linear", "params": {"sigma": 0.5}},
            "logistic": {"name": "glm", "params": {"loss": "logistic"}}}[model]
    return hdbench.Scenario.from_dict({"model": spec, "dynamics": {"name": dynamics, "params": {"gamma": gamma, **dyn}},
                                       "alpha": alpha, "d": d, "t_max": t_max, "seeds": seeds, "n_times": n_times})


@pytest.mark.parametrize("visits", [1.0, 0.75])
def test_epoch_clock_kicks_each_sample_once_an_epoch_at_a_uniform_step(visits):
    """One kick of tau per epoch (with probability ``visits``), spread evenly over the epoch's cells."""
    paths, cells, epochs, tau = 4000, 8, 3, 1.5
    h = tau * visits / cells
    dZ = dmft.clock_increments("epoch", jax.random.PRNGKey(0), (paths, cells * epochs), h, tau, tau * visits)
    assert set(np.unique(dZ)) <= {0.0, tau}
    per_epoch = (dZ.reshape(paths, epochs, cells) != 0).sum(2)
    assert per_epoch.max() == 1
    assert per_epoch.mean() == pytest.approx(visits, abs=1e-3)
    per_cell = (dZ.reshape(paths, epochs, cells) != 0).sum(0)
    assert per_cell.min() >= visits * paths / cells - 1 and per_cell.max() <= visits * paths / cells + 1
    assert dZ.sum(1).mean() == pytest.approx(h * cells * epochs, rel=1e-3)        # E dZ = h per step


def test_epoch_priors_and_past():
    """The earlier kick in step k's epoch (else the last, kick-free index), and which steps' forces are
    in k's past given a kick at k: earlier epochs only."""
    dZ = np.zeros((2, 9))
    dZ[0, [1, 5]] = 1.0            # epochs of 4 cells: kicks at cell 1 (epoch 0) and cell 1 (epoch 1)
    dZ[1, [3, 4]] = 1.0            # cell 3 (epoch 0), cell 0 (epoch 1)
    prior = epoch_priors(dZ, 4)
    assert prior[0].tolist() == [8, 8, 1, 1, 8, 8, 5, 5, 8]
    assert prior[1].tolist() == [8, 8, 8, 8, 8, 4, 4, 4, 8]
    past = epoch_past(9, 4)
    assert past[5].tolist() == [True] * 4 + [False] * 5 and not past[3].any()
    assert (epoch_past(5) == np.tri(5, k=-1, dtype=bool)).all()


@pytest.mark.parametrize("model, oracle, names", [("linear", "lsq-online-ode", ("D", "m", "q")),
                                                  ("logistic", "glm-ode", ("m", "q"))])
def test_first_epoch_is_online_sgd(registry, model, oracle, names):
    """Up to t = alpha every sample is fresh, so the epoch clock's first epoch is one-pass SGD: equal to
    the online ODE, to the predictor's own uncertainty (the extrapolation's; least squares has no
    Monte Carlo in its first epoch) plus the fixed point's tolerance."""
    s = scenario(model, "sgd-epochs", gamma=1.0, alpha=2.0, t_max=2.0)
    online = hdbench.Scenario.from_dict({**s.to_dict(), "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}},
                                         "alpha": None})
    t = np.linspace(0.0, 2.0, 9)
    ours = predict_dmft(s, t, "epoch", 40, 3, 16000, 4000, 4)        # to b = 0: the B = o(n) limit
    ref = registry.predictor(oracle).predict(online, t)
    for k in names:
        unc = ours[f"unc({k})"]
        assert (np.abs(ours[k] - ref[k]) <= 3 * unc + dmft.TOL).all(), (k, ours[k] - ref[k], unc)
        assert unc.max() < 2e-3 * np.abs(ref[k]).max(), k


def test_epoch_clock_is_exact_on_the_simulations_own_grid(registry):
    """16 steps an epoch (B = n/16): the epoch clock on that grid is the DMFT of the simulated algorithm
    itself, at a batch fraction every B = o(n) theory declines."""
    s = scenario("linear", "sgd-epochs", d=400, t_max=4.0, seeds=32, batch_size=50)
    assert "B << n" in registry.predictor("dmft-sgd").supports(s).reason
    sim = hdbench.simulate(s)
    curves = registry.predictor("dmft-sgd-epochs").predict(s, sim.times)
    for k in ("D", "train_risk", "m"):
        z = max_z(sim, curves, [k])
        assert z < z_threshold(len(sim.times) - 1, s.seeds), (k, z)


@pytest.mark.parametrize("visits", [1.0, 0.75])
def test_exact_epoch_square_side_is_the_monte_carlo_side(visits):
    """Least squares under the epoch clock: the side averaged exactly epoch by epoch
    (``epoch_square_side``) against the Monte-Carlo side on the same grid (8 cells an epoch, 3
    epochs), to 5 standard errors of the latter (estimated from two seeds; measured gaps 4e-4 in D)."""
    tau = 1.0
    problem = lambda side: dmft.Problem(side, 2.0, 0.0, 0.3, 0.2, tau, "epoch", epoch=tau * visits)
    exact = dmft.solve(problem(dmft.SquareLinear(0.5)), 3 * tau * visits, 24)
    mc = [dmft.solve(problem(dmft.GlmLoss("linear", "linear", "square", 0.5)), 3 * tau * visits, 24,
                     paths=64000, tangent_paths=16000, seed=seed) for seed in (0, 1)]
    for name in ("q", "m", "train"):
        ours, theirs = getattr(exact, name).mean(0), [getattr(sol, name).mean(0) for sol in mc]
        se = np.abs(theirs[0] - theirs[1]).max() / np.sqrt(2)
        assert np.abs(ours - (theirs[0] + theirs[1]) / 2).max() < 5 * max(se, 1e-4), name


@pytest.mark.slow      # 90 s: the grids refine to 256 cells an epoch
def test_epoch_clock_near_the_stability_edge(registry):
    """tau = 1.8 (alpha = 2): the coarse grids' own algorithm is unstable (D after 5 epochs is 10.1 on
    16 cells an epoch), so least squares' exact side refines its grids until the extrapolation settles.
    With 16/32/64 cells the error was 23.5 noise floors with an uncertainty of 0.85."""
    s = scenario("linear", "sgd-epochs", gamma=1.8, t_max=10.0)
    sim = hdbench.simulate(s)
    result = hdbench.score(sim, registry.predictor("dmft-sgd-epochs").predict(s, sim.times))
    assert within_noise(result), (result["ratio"], result["z_max"])
    assert result["uncertainty"] < result["noise_floor"], (result["uncertainty"], result["noise_floor"])


def test_committee_of_one_linear_unit_is_the_glm_side_under_epochs():
    """The committee side's epoch clock (dense tangents) is the GLM side's (Woodbury) for K = M = 1."""
    args = dict(paths=2000, tangent_paths=500, seed=0)
    problem = lambda side: dmft.Problem(side, 2.0, 0.0, 0.5, 0.2, 1.0, "epoch", epoch=1.0)
    glm = dmft.solve(problem(dmft.GlmLoss("linear", "linear", "square", 0.5)), 2.0, 16, **args)
    com = dmft.solve(problem(dmft.CommitteeLoss(1, 1, "linear", 1.0, 1.0, 0.5)), 2.0, 16, **args)
    np.testing.assert_allclose(com.q[:, :, 0, 0], glm.q, atol=1e-10)
    np.testing.assert_allclose(com.m[:, :, 0, 0], glm.m, atol=1e-10)
    np.testing.assert_allclose(com.train, glm.train, atol=1e-10)


# -- the verdicts (README): which theory describes which multi-pass dynamics --------------------------
THEORIES = ("dmft-sgd-epochs", "dmft-sgd", "dmft-sgf", "dmft-gf", "lsq-homogenized-sgd", "lsq-gf-mp")
DESCRIBES = {"sgd": {"dmft-sgd", "dmft-sgf", "lsq-homogenized-sgd"},
             "sgd-epochs": {"dmft-sgd-epochs"},
             "sgf": {"dmft-sgd", "dmft-sgf", "lsq-homogenized-sgd"},
             "gd": {"dmft-gf", "lsq-gf-mp"}}
_simulations = {}


def _simulated(model, dynamics):
    if (model, dynamics) not in _simulations:
        s = scenario(model, dynamics, d=1000, t_max=4.0)
        _simulations[model, dynamics] = (s, hdbench.simulate(s))
    return _simulations[model, dynamics]


@pytest.mark.parametrize("dynamics", list(DESCRIBES))
@pytest.mark.parametrize("theory", THEORIES)
def test_verdict_least_squares(registry, dynamics, theory):
    """Least squares, alpha = 2, gamma = 1, d = 1000: within noise exactly where the README says."""
    s, sim = _simulated("linear", dynamics)
    result = hdbench.score(sim, registry.predictor(theory).predict(s, sim.times))
    assert within_noise(result) == (theory in DESCRIBES[dynamics]), (result["ratio"], result["z_max"])


@pytest.mark.slow
@pytest.mark.parametrize("dynamics", list(DESCRIBES))
@pytest.mark.parametrize("theory", THEORIES[:4])
def test_verdict_logistic(registry, dynamics, theory):
    """Logistic regression, alpha = 2, gamma = 1, d = 1000: the same verdicts (the DMFT theories)."""
    s, sim = _simulated("logistic", dynamics)
    result = hdbench.score(sim, registry.predictor(theory).predict(s, sim.times))
    assert within_noise(result) == (theory in DESCRIBES[dynamics]), (result["ratio"], result["z_max"])


def test_committee_epochs_on_the_simulations_own_grid(registry):
    """A K = M = 2 erf committee reshuffled in 8 batches an epoch: the epoch clock on that grid (dense
    committee tangents) is within noise where the with-replacement theory declines the batch size."""
    s = hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2, "activation": "erf"}},
                                    "dynamics": {"name": "sgd-epochs", "params": {"gamma": 1.0, "batch_size": 50}},
                                    "alpha": 2.0, "d": 200, "t_max": 4.0, "seeds": 32, "n_times": 17})
    assert not registry.predictor("dmft-sgd").supports(s)
    sim = hdbench.simulate(s)
    curves = registry.predictor("dmft-sgd-epochs").predict(s, sim.times)
    result = hdbench.score(sim, curves)
    assert within_noise(result), (result["ratio"], result["z_max"], result["worst_observable"])


# -- schedules: cells of equal length in t, each kicking by gamma f there ------------------------------
WARMUP_COSINE = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
                 "decay_steps": 6.0, "end_value": 0.1}


@pytest.mark.parametrize("model, batch_size", [("linear", 1), ("logistic", 1), ("linear", 50), ("logistic", 50)],
                         ids=["lsq-extrapolated", "logistic-extrapolated", "lsq-own-grid", "logistic-own-grid"])
def test_dmft_sgd_epochs_under_a_constant_schedule_is_that_gamma(registry, model, batch_size):
    """The uneven epoch grid at a constant factor c is the even grid of gamma c: the same cells, kicks
    and random numbers, so the same prediction to rounding (extrapolated, and on the simulation's own
    grid of 16 batches an epoch)."""
    plain = scenario(model, "sgd-epochs", gamma=1.0, d=400, t_max=3.0, n_times=7, batch_size=batch_size)
    halved = plain.with_(dynamics_params={"gamma": 2.0, "schedule": {"name": "constant", "value": 0.5}})
    pred = registry.predictor("dmft-sgd-epochs")
    small = dict(paths=4000, tangent_paths=1000, replicas=2) if model == "logistic" else {}
    for k, v in small.items():
        setattr(pred, k, v)
    try:
        ours, ref = pred.predict(halved, plain.times()), pred.predict(plain, plain.times())
    finally:
        for k in small:
            delattr(pred, k)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_uneven_exact_epoch_side_is_the_monte_carlo_side():
    """Kicks that vary from cell to cell (a schedule): least squares' exact side against the
    Monte-Carlo side on the same uneven grid, as ``test_exact_epoch_square_side_is_the_monte_carlo_side``."""
    cells, T, tau = 8, 24, 1.0
    f = 0.3 + np.sin(np.linspace(0.1, 3.0, T)) ** 2
    grid = (tau * f / cells, tau * f)
    problem = lambda side: dmft.Problem(side, 2.0, 0.0, 0.3, 0.2, tau, "epoch", epoch=tau)
    exact = dmft.solve(problem(dmft.SquareLinear(0.5)), grid[0].sum(), T, steps=grid, cells=cells)
    mc = [dmft.solve(problem(dmft.GlmLoss("linear", "linear", "square", 0.5)), grid[0].sum(), T,
                     paths=64000, tangent_paths=16000, seed=seed, steps=grid, cells=cells) for seed in (0, 1)]
    np.testing.assert_allclose(exact.s[1:], np.cumsum(grid[0]))
    for name in ("q", "m", "train"):
        ours, theirs = getattr(exact, name).mean(0), [getattr(sol, name).mean(0) for sol in mc]
        se = np.abs(theirs[0] - theirs[1]).max() / np.sqrt(2)
        assert np.abs(ours - (theirs[0] + theirs[1]) / 2).max() < 5 * max(se, 1e-4), name
    with pytest.raises(ValueError, match="visit / cells"):
        dmft.solve(problem(dmft.SquareLinear(0.5)), grid[0].sum(), T, steps=(grid[0], 2 * grid[1]), cells=cells)


@pytest.mark.parametrize("model, batch_size", [("linear", 1), pytest.param("logistic", 1, marks=pytest.mark.slow),
                                               ("linear", 50)],
                         ids=["lsq-extrapolated", "logistic-extrapolated", "lsq-own-grid"])     # logistic: 60 s
def test_dmft_sgd_epochs_follows_a_schedule(registry, model, batch_size):
    """Warmup + cosine on reshuffled epochs (gamma 1.5, alpha 2): within the noise, where the same theory
    at constant gamma and the with-replacement theory under the schedule are far off."""
    s = scenario(model, "sgd-epochs", gamma=1.5, d=1000 if batch_size == 1 else 800, t_max=6.0, n_times=31,
                 batch_size=batch_size, schedule=WARMUP_COSINE)
    sim = hdbench.simulate(s)
    pred = registry.predictor("dmft-sgd-epochs")
    assert pred.schedules and pred.supports(s)
    result = hdbench.score(sim, pred.predict(s, sim.times))
    assert within_noise(result), (result["ratio"], result["z_max"], result["worst_observable"])
    threshold = z_threshold(len(sim.times) - 1, s.seeds)
    assert max_z(sim, pred.predict(s.with_(dynamics_params={"schedule": None}), sim.times)) > 3 * threshold
    if batch_size == 1:
        assert max_z(sim, registry.predictor("dmft-sgd").predict(s, sim.times)) > 3 * threshold
