"""The plugin contract as checks that ship with hdbench.

``hdbench check NAME`` runs them on one installed plugin (NAME: its distribution, its entry point or
one of its components), from any folder, no hdbench checkout needed; hdbench's own tests run the
same checks over every registered component (``tests/test_conformance.py``). A check is a function
that raises ``AssertionError`` with a message when the plugin breaks the contract
(``hdbench.contract``):

- every component: a one-line ``description``; a model's or dynamics' defaults validate; a
  predictor has no suite-settable parameters;
- models and dynamics: each compatible model x dynamics pair at default parameters (tiny ``d``)
  simulates to finite observables with the model's names and the scenario's times; a finite-data
  dynamics' ``batch_with_state`` gives ``batch``'s samples and weights;
- predictors: ``supports`` answers every candidate scenario with a ``Support`` (a one-line reason
  when it declines); ``predict`` on each of its ``examples`` and on the first supported candidate
  returns finite curves of the right length, named after the model's observables (or ``std(…)``,
  ``unc(…)``, ``limit(…)`` of them); and it supports at least one candidate, else it cannot be tested.
  A predictor that declares ``schedules`` is also asked about each candidate under
  :data:`CHECK_SCHEDULE`, and predicts on the first it supports.
"""
from __future__ import annotations

import re
import time
import traceback

import numpy as np

from .contract import Support, contract_gate
from .errors import InputError
from .scenario import Scenario


def candidate_scenarios(reg) -> list[Scenario]:
    """Every model x dynamics pair with default parameters, at a tiny size, the linear model first
    (the cheapest, so the one pair a predictor runs on by default is the cheap one where it can)."""
    out = []
    for model in sorted(reg.names("model"), key=lambda m: m != "linear"):
        for dyn in reg.names("dynamics"):
            sampling = reg.entry("dynamics", dyn).cls.sampling
            for alpha in ([None] if sampling == "online" else [2.0] if sampling == "finite" else [None, 2.0]):
                spec = {"model": model, "dynamics": dyn, "d": 64, "t_max": 0.5, "seeds": 2, "n_times": 4}
                if alpha is not None:
                    spec["alpha"] = alpha
                try:
                    out.append(Scenario.from_dict(spec, reg))
                except InputError:
                    continue   # an incompatible pair (e.g. finite data for a stream-only model)
    return out


# warmup then cosine decay within the candidates' t_max = 0.5: every piece of the curve is reached
CHECK_SCHEDULE = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 0.1,
                  "decay_steps": 0.4, "end_value": 0.2}


def scheduled_scenarios(reg, scenarios) -> list[Scenario]:
    """``scenarios`` whose dynamics take a ``schedule``, each under :data:`CHECK_SCHEDULE`."""
    return [s.with_(reg, dynamics_params={"schedule": CHECK_SCHEDULE}) for s in scenarios
            if "schedule" in reg.entry("dynamics", s.dynamics).cls.params and "schedule" not in s.dynamics_params]


def example_scenarios(reg, name: str) -> list[Scenario]:
    """A predictor's own ``examples``, at 2 seeds and 4 times (3 would pass a curve of the wrong length 3)."""
    return [Scenario.from_dict({"seeds": 2, "n_times": 4, **spec}, reg)
            for spec in reg.entry("predictor", name).cls.examples]


def check_described(reg, kind: str, name: str) -> None:
    cls = reg.entry(kind, name).cls
    assert cls.description and "\n" not in cls.description, f"{kind} '{name}': description must be one line"
    if kind == "predictor":      # settings are class attributes; a variant is a subclass with its own name
        assert not hasattr(cls, "params") and not hasattr(cls, "validate"), \
            f"predictor '{name}' declares parameters; a theory's settings are class attributes"
        return
    params = cls.validate({})
    # unset optional parameters (no schedule, fixed-beta momentum, a committee's Q0) may be left out of
    # the scenario, so it keeps the hash it had before they existed
    unset = {k for k, p in cls.params.items() if p.default is None}
    assert set(cls.params) - unset <= set(params) <= set(cls.params), \
        f"{kind} '{name}': its defaults validate to {sorted(params)}"


def check_simulates(reg, scenario: Scenario) -> None:
    from .simulate import simulate
    sim = simulate(scenario)
    names = reg.model(scenario.model).observable_names(scenario.model_params, finite=scenario.alpha is not None)
    assert tuple(sim.per_seed) == tuple(names), f"{scenario.label}: observables {tuple(sim.per_seed)} != {tuple(names)}"
    for key, values in sim.per_seed.items():
        assert values.shape == (scenario.seeds, scenario.n_times), f"{scenario.label}: {key} has shape {values.shape}"
        assert np.isfinite(values).all(), f"{scenario.label}: {key} is not finite"
    np.testing.assert_allclose(sim.times, scenario.times())


def check_batch_with_state(reg, name: str) -> None:
    """Over 3 epochs' steps, ``batch_with_state`` (the engine's way, with a carried state) must give
    ``batch``'s indices and weights."""
    import jax
    import jax.numpy as jnp
    s = Scenario.from_dict({"model": "linear", "dynamics": name, "alpha": 1.0, "d": 8, "t_max": 1.0}, reg)
    dyn, key, n = reg.dynamics(name), jax.random.PRNGKey(3), s.n

    def step(state, k):
        idx, w, state = dyn.batch_with_state(key, k, n, s, state)
        return state, (idx, w)
    _, (idx, w) = jax.lax.scan(step, dyn.batch_state(key, n, s), jnp.arange(3 * n))
    ref = [dyn.batch(key, k, n, s) for k in range(3 * n)]
    if ref[0][0] is None:                           # all samples in order, every step
        assert idx is None and all(r[0] is None for r in ref), f"dynamics '{name}': batch and batch_with_state differ"
    else:
        np.testing.assert_array_equal(idx, np.stack([r[0] for r in ref]))
    w_ref = np.stack([r[1] for r in ref])          # compiled vs eager: float32 rounding of the largest weight
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6 * np.abs(w_ref).max())


def check_predictor(reg, name: str, scenarios, every_pair: bool = False) -> None:
    """``supports`` answers every scenario; ``predict`` runs on every example and on the first
    supported scenario, scheduled and not (``every_pair``: on the first of each (model, dynamics
    sampling, scheduled) triple)."""
    pred = reg.predictor(name)
    examples = {s.hash for s in example_scenarios(reg, name)}
    if pred.schedules:
        scenarios = list(scenarios) + scheduled_scenarios(reg, scenarios)
    supported, seen = 0, set()
    for s in scenarios:
        if not contract_gate(pred, s):
            continue
        answer = pred.supports(s)
        assert isinstance(answer, Support), f"{name}.supports({s.label}) returned {answer!r}, not a Support"
        if not answer:
            assert answer.reason and "\n" not in answer.reason, f"{name} declines {s.label} without a one-line reason"
            continue
        supported += 1
        scheduled = "schedule" in s.dynamics_params
        pair = (s.model, reg.entry("dynamics", s.dynamics).cls.sampling, scheduled)
        first = not any(seen_scheduled == scheduled for *_, seen_scheduled in seen)   # of its kind
        if s.hash not in examples and (pair in seen or (every_pair == first)):
            seen.add(pair)
            continue
        seen.add(pair)
        times = s.times()
        curves = pred.predict(s, times)
        observables = reg.model(s.model).observable_names(s.model_params, finite=s.alpha is not None)
        # seed means and spreads, a Monte-Carlo theory's own uncertainty of them, long-time limits
        allowed = set(observables) | {f"{kind}({o})" for o in observables for kind in ("std", "unc", "limit")}
        assert curves and set(curves) <= allowed, f"{name} on {s.label}: curves {sorted(curves or {})}, " \
                                                  f"allowed {sorted(allowed)}"
        for key, values in curves.items():
            values = np.asarray(values)
            assert values.shape == times.shape, f"{name} on {s.label}: {key} has shape {values.shape}, not {times.shape}"
            assert np.isfinite(values).all(), f"{name} on {s.label}: {key} is not finite"
    assert supported, f"{name} supports none of the candidate scenarios: it cannot be tested"


# -- hdbench check ---------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def select(reg, name: str) -> tuple[list, list]:
    """The components and load failures of the plugin called ``name``: a distribution, an entry point
    or a component name."""
    entries = [e for kind in reg.entries.values() for e in kind.values()]
    for key in (lambda e: _norm(e.dist), lambda e: e.plugin, lambda e: e.name):
        chosen = [e for e in entries if key(e) in (name, _norm(name))]
        if chosen:
            break
    failures = [f for f in reg.failures if name in (f.plugin, f.dist) or _norm(f.dist) == _norm(name)]
    if not chosen and not failures:
        known = sorted({e.dist for e in entries} | {e.plugin for e in entries})
        raise InputError(f"check NAME = {name!r}: no installed plugin or component has that name "
                         f"(installed: {', '.join(known)})")
    return chosen, failures


def plan(reg, chosen) -> list[tuple[str, object]]:
    """``(label, thunk)`` per check of these components."""
    out = []
    candidates = candidate_scenarios(reg)
    for e in chosen:
        out.append((f"{e.kind} '{e.name}': description and defaults", lambda e=e: check_described(reg, e.kind, e.name)))
        if e.kind in ("model", "dynamics"):
            mine = [s for s in candidates if getattr(s, e.kind) == e.name]
            out.append((f"{e.kind} '{e.name}': has a compatible pair to simulate",
                        lambda e=e, mine=mine: _assert(mine, f"{e.kind} '{e.name}' pairs with no registered "
                                                             f"{'dynamics' if e.kind == 'model' else 'model'}")))
            for s in mine:
                out.append((f"simulates {s.model} x {s.dynamics}" + (f", alpha={s.alpha:g}" if s.alpha else ""),
                            lambda s=s: check_simulates(reg, s)))
            if e.kind == "dynamics" and e.cls.sampling != "online":
                out.append((f"dynamics '{e.name}': batch_with_state gives batch", lambda e=e: check_batch_with_state(reg, e.name)))
        if e.kind == "predictor":
            scenarios = candidates + example_scenarios(reg, e.name)
            out.append((f"predictor '{e.name}': supports and predict", lambda e=e, sc=scenarios: check_predictor(reg, e.name, sc)))
    return out


def _assert(condition, message):
    assert condition, message


def run(reg, name: str, write=print) -> int:
    """Run every check of plugin ``name``; one line per check; 0 if all pass, else 1."""
    chosen, failures = select(reg, name)
    failed = 0
    for f in failures:
        write(f"FAIL  plugin '{f.plugin}' ({f.dist}) failed to load: {f.error}")
        failed += 1
    checks = plan(reg, chosen)
    for label, thunk in checks:
        start = time.perf_counter()
        try:
            thunk()
        except Exception as exc:   # noqa: BLE001 - any exception is the plugin's failed check
            failed += 1
            write(f"FAIL  {label}: {_why(exc)}")
        else:
            write(f"ok    {label} ({time.perf_counter() - start:.1f} s)")
    components = ", ".join(f"{e.kind} {e.name}" for e in chosen) or "none"
    write(f"{name}: {len(checks) + len(failures) - failed} passed, {failed} failed ({components})")
    return 1 if failed else 0


def _why(exc: BaseException) -> str:
    if isinstance(exc, AssertionError):
        return " ".join(str(exc).split()) or "assertion failed"
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())} ({last.filename}:{last.lineno})"
