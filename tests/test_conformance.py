"""One table of components under test: the plugin registry itself (optax's idea). A component is
tested here the moment it is registered, built-in or third-party."""
import numpy as np
import pytest

import hdbench
from hdbench.contract import Support

REG = hdbench.registry()
MODELS, DYNAMICS, PREDICTORS = REG.names("model"), REG.names("dynamics"), REG.names("predictor")


def candidate_scenarios():
    """Every model x dynamics pair with default parameters, at a tiny size; the linear model first (the
    cheapest, so that the one pair the default run predicts on is the cheap one where it is supported)."""
    out = []
    for model in sorted(MODELS, key=lambda m: m != "linear"):
        for dyn in DYNAMICS:
            sampling = REG.entry("dynamics", dyn).cls.sampling
            for alpha in ([None] if sampling == "online" else [2.0] if sampling == "finite" else [None, 2.0]):
                spec = {"model": model, "dynamics": dyn, "d": 64, "t_max": 0.5, "seeds": 2, "n_times": 3}
                if alpha is not None:
                    spec["alpha"] = alpha
                try:
                    out.append(hdbench.Scenario.from_dict(spec))
                except hdbench.InputError:
                    continue   # an incompatible pair (e.g. finite data for a stream-only model)
    return out


SCENARIOS = candidate_scenarios() + [
    hdbench.Scenario.from_dict({"seeds": 2, "n_times": 3, **spec})
    for name in PREDICTORS for spec in REG.entry("predictor", name).cls.examples]


def test_every_model_and_dynamics_has_a_candidate():
    assert {s.model for s in SCENARIOS} == set(MODELS)
    assert {s.dynamics for s in SCENARIOS} == set(DYNAMICS)


def test_registry_loaded_cleanly():
    assert REG.failures == []
    assert {"linear"} <= set(MODELS)
    assert {"online-sgd", "sgd", "sgd-epochs", "sgf", "gd", "momentum", "adam"} <= set(DYNAMICS)
    assert {"lsq-online-ode", "lsq-gf-mp", "lsq-homogenized-sgd", "population-gf"} <= set(PREDICTORS)


@pytest.mark.parametrize("kind,name", [(k, n) for k in ("model", "dynamics", "predictor") for n in REG.names(k)])
def test_defaults_validate_and_are_described(kind, name):
    cls = REG.entry(kind, name).cls
    assert cls.description and "\n" not in cls.description
    if kind == "predictor":      # no parameters a suite could set (hdbench.contract): settings are class attributes
        assert not hasattr(cls, "params") and not hasattr(cls, "validate")
        return
    params = cls.validate({})
    assert set(params) == set(cls.params)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.model}-{s.dynamics}-a{s.alpha}")
def test_every_model_and_dynamics_simulates(scenario):
    sim = hdbench.simulate(scenario)
    names = REG.model(scenario.model).observable_names(scenario.model_params, finite=scenario.alpha is not None)
    assert tuple(sim.per_seed) == tuple(names)
    for values in sim.per_seed.values():
        assert values.shape == (scenario.seeds, scenario.n_times) and np.isfinite(values).all()
    np.testing.assert_allclose(sim.times, scenario.times())


@pytest.mark.parametrize("name", [n for n in DYNAMICS if REG.dynamics(n).sampling != "online"])
def test_a_dynamics_batch_with_state_gives_its_batch(name):
    """The engine draws finite-data batches through ``batch_with_state`` (a carried state, e.g. one
    permutation per epoch): over 3 epochs' steps it must give ``batch``'s indices and weights."""
    import jax
    import jax.numpy as jnp
    s = hdbench.Scenario.from_dict({"model": "linear", "dynamics": name, "alpha": 1.0, "d": 8, "t_max": 1.0})
    dyn, key, n = REG.dynamics(name), jax.random.PRNGKey(3), s.n

    def step(state, k):
        idx, w, state = dyn.batch_with_state(key, k, n, s, state)
        return state, (idx, w)
    _, (idx, w) = jax.lax.scan(step, dyn.batch_state(key, n, s), jnp.arange(3 * n))
    ref = [dyn.batch(key, k, n, s) for k in range(3 * n)]
    if ref[0][0] is None:                           # all samples in order, every step
        assert idx is None and all(r[0] is None for r in ref)
    else:
        np.testing.assert_array_equal(idx, np.stack([r[0] for r in ref]))
    w_ref = np.stack([r[1] for r in ref])          # compiled vs eager: float32 rounding of the largest weight
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6 * np.abs(w_ref).max())


@pytest.mark.parametrize("every_pair", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", PREDICTORS)
def test_predictor_contract(name, every_pair):
    """``supports`` answers every candidate; ``predict`` runs on every example and on the first supported
    candidate (``every_pair``, under -m slow: on the first of each (model, dynamics sampling) pair, one
    call per code path of the contract; the DMFT theories take 20-40 s per pair, mostly compiling)."""
    pred = REG.predictor(name)
    supported, seen = 0, set()
    examples = {hdbench.Scenario.from_dict({"seeds": 2, "n_times": 3, **spec}).hash
                for spec in REG.entry("predictor", name).cls.examples}
    for s in SCENARIOS:
        answer = pred.supports(s)
        assert isinstance(answer, Support)
        if not answer:
            assert answer.reason and "\n" not in answer.reason
            continue
        supported += 1
        pair = (s.model, REG.entry("dynamics", s.dynamics).cls.sampling)
        first = not seen
        if s.hash not in examples and (pair in seen or (every_pair == first)):
            seen.add(pair)
            continue
        seen.add(pair)
        times = s.times()
        curves = pred.predict(s, times)
        observables = REG.model(s.model).observable_names(s.model_params, finite=s.alpha is not None)
        # seed means and spreads, a Monte-Carlo theory's own uncertainty of them, long-time limits
        allowed = set(observables) | {f"{kind}({name})" for name in observables for kind in ("std", "unc", "limit")}
        assert curves and set(curves) <= allowed, (s.label, set(curves))
        for key, values in curves.items():
            values = np.asarray(values)
            assert values.shape == times.shape and np.isfinite(values).all(), (s.label, key)
    assert supported, f"{name} supports none of the candidate scenarios: it cannot be tested"
