"""Verdicts: one scorer behind every number, fair ranks (partial predictors after complete ones, failures
as losses, ties within the noise), the d -> infinity reference, honest caches and honest plots."""
import importlib
import importlib.metadata as md
import sys

import numpy as np
import pytest

import hdbench
registry_module = importlib.import_module("hdbench.registry")  # the attribute hdbench.registry is the function
from conftest import lsq
from hdbench import fingerprint
from hdbench.rank import rank_suite
from hdbench.report import limit_rows, plot_figure, scenario_rows
from hdbench.runner import score_pending
from hdbench.score import BOOTSTRAP, Reference
from hdbench.store import Store

SIM = {}


def simulated(**kw):
    key = tuple(sorted(kw.items()))
    if key not in SIM:
        SIM[key] = hdbench.simulate(lsq("online-sgd", **kw))
    return SIM[key]


def stored(tmp_path, items, suite="t"):
    """A store holding ``items = [(simulation, {predictor: curves or (status, message)})]`` as one suite."""
    store = Store(tmp_path / "r.sqlite")
    run = store.begin_run(suite, {})
    store.add_suite(suite, [sim.scenario for sim, _ in items])
    sims = {}
    for sim, predictions in items:
        rec = {"times": sim.times, "per_seed": sim.per_seed, "diverged_at": sim.diverged_at,
               "compile_s": sim.compile_s, "run_s": sim.run_s}
        sims[sim.scenario.hash] = (sim, store.put_simulation(sim.scenario.hash, "test", rec, run))
        for name, out in predictions.items():
            result = ({"status": "ok", "curves": out, "cold_s": 0.01, "warm_s": 0.01} if isinstance(out, dict)
                      else {"status": out[0], "message": out[1]})
            store.put_prediction(sim.scenario.hash, name, "test 1 (t)", "code", result, run)
    score_pending(store, sims)
    return store


def rows_by_predictor(store, suite="t"):
    return {r["predictor"]: r for r in scenario_rows(store, suite)}


def predict(name, sim):
    return hdbench.registry().predictor(name).predict(sim.scenario, sim.times)


# -- 1. one scorer --------------------------------------------------------------------------------
def test_the_rank_intervals_come_from_the_scorers_own_replicates():
    sim = simulated(gamma=1.5, d=200, seeds=16, t_max=4.0, n_times=21)
    curves = predict("lsq-online-ode", sim)
    result = hdbench.score(sim, curves)
    assert len(result["bootstrap"]) == BOOTSTRAP
    # the replicates are this scorer's headline on resampled seeds: centred near it, never all equal
    assert np.std(result["bootstrap"]) > 0
    assert 0.5 * result["ratio"] < np.median(result["bootstrap"]) < 3 * result["ratio"]
    # the headline is the worst headline observable's err/floor, and the error is that observable's
    worst = result["observables"][result["worst_observable"]]
    assert result["ratio"] == max(v["ratio"] for v in result["observables"].values())
    assert result["error"] == worst["sup_error"] and worst["ratio"] == pytest.approx(worst["sup_error"] / worst["noise_floor"])
    # the same scorer scores against a d -> infinity reference made of one simulation
    assert hdbench.score(Reference.of(sim), curves)["ratio"] == result["ratio"]


# -- 2. fair ranks ----------------------------------------------------------------------------------
def test_a_partial_predictor_cannot_outrank_a_complete_one_with_the_same_curves(tmp_path):
    sim = simulated(gamma=1.5, d=200, seeds=16, t_max=4.0, n_times=21)
    full = predict("lsq-online-ode", sim)
    ratios = {k: v["ratio"] for k, v in hdbench.score(sim, full)["observables"].items()}
    partial = {k: full[k] for k in full if ratios[k] < max(ratios.values())}      # drops the one it is worst on
    store = stored(tmp_path, [(sim, {"lsq-online-ode": full, "risk-only": partial,
                                     "population-gf": predict("population-gf", sim)})])
    rows = rows_by_predictor(store)
    assert rows["risk-only"]["ratio"] < rows["lsq-online-ode"]["ratio"]     # its own headline looks better ...
    assert not rows["risk-only"]["complete"] and rows["risk-only"]["missing"] == [max(ratios, key=ratios.get)]
    assert rows["lsq-online-ode"]["rank"] == 1 < rows["population-gf"]["rank"] < rows["risk-only"]["rank"]


def test_a_failure_counts_as_a_loss_in_every_aggregate(tmp_path):
    slow = simulated(gamma=0.5, d=200, seeds=16, t_max=4.0, n_times=21)
    fast = simulated(gamma=1.5, d=200, seeds=16, t_max=4.0, n_times=21)
    store = stored(tmp_path, [(slow, {"flaky": ("failed", "RuntimeError: solver exploded"),
                                      "steady": predict("lsq-online-ode", slow),
                                      "population-gf": predict("population-gf", slow)}),
                              (fast, {"flaky": predict("lsq-online-ode", fast), "steady": predict("lsq-online-ode", fast),
                                      "population-gf": predict("population-gf", fast)})])
    rows = scenario_rows(store, "t")
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["rank"] == 3 and failed["losses"] == 2           # last, beaten by both scored predictors
    agg = {r["predictor"]: r for r in rank_suite(rows, 2)}
    assert agg["flaky"]["failed"] == 1 and agg["flaky"]["coverage"] == "1/2"
    assert agg["steady"]["borda"] > agg["flaky"]["borda"]
    assert agg["steady"]["mean_rank"] < agg["flaky"]["mean_rank"]
    assert agg["steady"]["rank"] == 1 < agg["flaky"]["rank"]


# -- 3. significance --------------------------------------------------------------------------------
def test_predictors_within_the_noise_of_each_other_tie(tmp_path):
    sim = simulated(gamma=1.5, d=200, seeds=16, t_max=4.0, n_times=21)
    store = stored(tmp_path, [(sim, {name: predict(name, sim) for name in
                                     ("lsq-online-ode", "lsq-volterra", "lsq-exact-recursion", "population-gf")})])
    rows = rows_by_predictor(store)
    # two solvers of one ODE, and the exact finite-d recursion: within the noise of one another
    assert rows["lsq-online-ode"]["rank"] == rows["lsq-volterra"]["rank"] == rows["lsq-exact-recursion"]["rank"] == 1
    assert rows["lsq-online-ode"]["tied"] and rows["lsq-online-ode"]["rank_worst"] == 3
    assert rows["population-gf"]["rank"] == 4 and not rows["population-gf"]["tied"]
    # rank intervals contain the ranks: per scenario, and in the aggregate
    agg = {r["predictor"]: r for r in rank_suite(list(rows.values()), 1)}
    for r in rows.values():
        assert r["rank"] <= r["rank_worst"]
    for a in agg.values():
        assert a["rank_lo"] <= a["mean_rank"] <= a["rank_hi"] and a["borda_lo"] <= a["borda"] <= a["borda_hi"]
    assert agg["lsq-online-ode"]["rank"] == agg["lsq-volterra"]["rank"] == 1 < agg["population-gf"]["rank"]


# -- 4. d -> infinity -------------------------------------------------------------------------------
def test_the_d_infinity_reference_separates_finite_size_effects_from_wrong_limits(tmp_path):
    """At gamma = 1.8 the finite-d rate of online SGD differs from the limit's by 2 gamma^2 / d: the
    ODE (exact as d -> infinity) is 3% off at d = 400, beyond the noise of 256 seeds, and within it
    against the extrapolation; population-gf has the wrong limit; the exact finite-d recursion is
    within noise everywhere."""
    sims = [simulated(gamma=1.8, d=d, seeds=256, t_max=4.0, n_times=21) for d in (100, 200, 400)]
    names = ("lsq-online-ode", "lsq-exact-recursion", "population-gf")
    store = stored(tmp_path, [(sim, {name: predict(name, sim) for name in names}) for sim in sims])
    rows = {r["predictor"]: r for r in limit_rows(store, "t")}
    assert rows["lsq-online-ode"]["verdict"] == "finite-size effect"
    assert rows["lsq-exact-recursion"]["verdict"] == "within noise"
    assert rows["population-gf"]["verdict"] == "wrong limit"
    assert rows["lsq-online-ode"]["ratio_inf"] < rows["lsq-online-ode"]["ratios"][-1]


# -- 5. honest caches -------------------------------------------------------------------------------
FLAKY = '''
import time
import numpy as np
import hdbench

DELAY = {delay}


class Flaky(hdbench.Predictor):
    """Oracle 1 (online least squares from theta0 = 0), after a delay."""
    name = "flaky"
    description = "oracle 1 after a delay"

    def supports(self, s):
        return hdbench.YES if s.model == "linear" and s.dynamics == "online-sgd" else hdbench.no("online lsq only")

    def predict(self, s, times):
        time.sleep(DELAY)
        g, sig = s.dynamics_params["gamma"], s.model_params["sigma"]
        rate = g * g - 2 * g
        D = -g * g * sig**2 / rate * (1 - np.exp(rate * np.asarray(times))) + np.exp(rate * np.asarray(times))
        return {{"D": D * {scale}, "risk": (D * {scale} + sig**2) / 2}}


@hdbench.hookimpl
def hdbench_predictors():
    return [Flaky]
'''

SUITE = '''
[suite]
name = "one"
[[scenario]]
name = "online"
d = 100
t_max = 1.0
seeds = 4
n_times = 6
model = { name = "linear", params = { sigma = 0.5, m0 = 0.0, q0 = 0.0 } }
dynamics = { name = "online-sgd", params = { gamma = 0.5 } }
'''


@pytest.fixture
def flaky(tmp_path, monkeypatch):
    """A plugin module ``flaky_plugin`` in a folder of its own, registered beside the built-ins; its
    ``write(delay, scale)`` rewrites the module (a fix that bumps no version) and reloads everything."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    suite = tmp_path / "one.toml"
    suite.write_text(SUITE)

    def write(delay, scale=1.0):
        (folder / "flaky_plugin.py").write_text(FLAKY.format(delay=delay, scale=scale))
        for cache in (fingerprint._source, fingerprint._imports, fingerprint._spec, fingerprint.fingerprint):
            cache.cache_clear()
        if "flaky_plugin" in sys.modules:
            importlib.reload(sys.modules["flaky_plugin"])
        eps = list(md.entry_points(group="hdbench")) + [md.EntryPoint("flaky_plugin", "flaky_plugin", "hdbench")]
        monkeypatch.setattr(registry_module, "_REGISTRY", registry_module.Registry(eps))
    yield write, suite
    sys.modules.pop("flaky_plugin", None)


def test_a_rerun_retries_a_timeout_and_a_fix_without_a_version_bump_is_recomputed(flaky, tmp_path):
    """In-process runs (``workers=0``): ``flaky`` is registered in this process only."""
    write, suite = flaky
    db = tmp_path / "r.sqlite"
    write(delay=2.0)
    first = hdbench.run_suite(suite, predictors=["flaky"], db=db, timeout=0.2, workers=0)
    assert first.failed == 1
    store = Store(db)
    assert rows_by_predictor(store, "one")["flaky"]["status"] == "timeout"
    store.close()
    write(delay=0.0, scale=1.5)                      # faster, and wrong
    second = hdbench.run_suite(suite, predictors=["flaky"], db=db, timeout=0.2, workers=0)
    assert second.predicted == 1 and second.reused_predictions == 0
    assert hdbench.run_suite(suite, predictors=["flaky"], db=db, workers=0).reused_predictions == 1   # a success is cached
    store = Store(db)
    wrong = rows_by_predictor(store, "one")["flaky"]["ratio"]
    store.close()
    write(delay=0.0, scale=1.0)                      # the fix: same name, same (missing) version
    third = hdbench.run_suite(suite, predictors=["flaky"], db=db, workers=0)
    assert third.predicted == 1 and third.reused_predictions == 0
    store = Store(db)
    assert rows_by_predictor(store, "one")["flaky"]["ratio"] < wrong
    store.close()


def test_a_result_made_by_other_code_on_a_worker_is_refused(flaky, tmp_path, monkeypatch):
    from hdbench import runner
    write, suite = flaky
    write(delay=0.0)
    real = runner.task_predict
    monkeypatch.setattr(runner, "task_predict", lambda *a, **k: {**real(*a, **k), "code": "0" * 16})
    db = tmp_path / "r.sqlite"
    report = hdbench.run_suite(suite, predictors=["flaky"], db=db, workers=0)
    assert report.predicted == 0 and report.failed == 1
    assert any("refused" in e and "flaky" in e for e in report.errors)
    store = Store(db)
    (pred,) = store.predictions(store.suite_scenarios("one")[0][0])
    assert pred["status"] == "failed" and "refused" in pred["message"] and pred["curves"] is None
    assert pred["code"] == registry_module.registry().entry("predictor", "flaky").code
    store.close()
    monkeypatch.setattr(runner, "task_predict", real)
    assert hdbench.run_suite(suite, predictors=["flaky"], db=db, workers=0).predicted == 1     # retried, then stored


# -- 6. plots ----------------------------------------------------------------------------------------
def test_one_colour_per_predictor_in_every_panel_and_one_legend(tmp_path):
    sim = simulated(gamma=0.5, d=200, seeds=4, t_max=4.0, n_times=21)
    full = predict("lsq-online-ode", sim)
    store = stored(tmp_path, [(sim, {"first": {k: full[k] for k in ("D", "risk")}, "second": full,
                                     "third": predict("population-gf", sim)})])
    fig = plot_figure(store, sim.scenario.hash)
    (legend,) = fig.legends
    colours = {h.get_label(): h.get_color() for h in legend.legend_handles if hasattr(h, "get_color")}
    assert {"first", "second", "third"} <= set(colours)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert {ax.get_title() for ax in panels} == set(sim.per_seed)
    for ax in panels:
        assert ax.get_ylabel() == ax.get_title() and ax.get_legend() is None
        for line in ax.get_lines():
            if line.get_label() in colours:
                assert line.get_color() == colours[line.get_label()], (ax.get_title(), line.get_label())
    assert any("Student t, 3 dof" in t.get_text() for t in legend.get_texts())     # 4 seeds: t quantile 3.18
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_the_terminal_table_prints_a_sweeps_tag():
    from rich.console import Console

    from hdbench.report import render
    console = Console(record=True, width=120)
    render(["scenario", "borda [range]"], [["lsq online [d=100]", "0.50 [0.50, 1.00]"]], console=console)
    text = console.export_text()
    assert "lsq online [d=100]" in text and "borda [range]" in text and "[0.50, 1.00]" in text


def test_a_store_is_rescored_when_its_scorer_or_its_plugins_are_gone(tmp_path):
    sim = simulated(gamma=0.5, d=200, seeds=4, t_max=4.0, n_times=21)
    store = stored(tmp_path, [(sim, {"lsq-online-ode": predict("lsq-online-ode", sim)})])
    before = rows_by_predictor(store)["lsq-online-ode"]
    with store.conn:                  # a scorer since changed, and a model plugin since uninstalled
        store.conn.execute("DELETE FROM scores")
        store.conn.execute("UPDATE scenarios SET spec = replace(spec, '\"linear\"', '\"uninstalled\"')")
    after = rows_by_predictor(store)["lsq-online-ode"]
    assert after["status"] == "ok" and after["ratio"] == before["ratio"] and after["speedup"] == before["speedup"]
    assert after["complete"]          # without the model, every observable counts as headline
