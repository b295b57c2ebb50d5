"""Runner: cache, local processes and Dask give the serial results, CLI exit codes (kills: test_faults)."""
import json
import os

import numpy as np
import pytest

import hdbench
from conftest import cli, run_cli
from hdbench.report import scenario_rows, suite_rows
from hdbench.store import Store

PREDICTORS = ["lsq-online-ode", "lsq-homogenized-sgd", "population-gf"]


def _scores(db, suite="tiny"):
    store = Store(db)
    rows = {(r["hash"], r["predictor"]): (r["status"], r.get("error")) for r in scenario_rows(store, suite)}
    store.close()
    return rows


def test_serial_run_caches_and_reuses(tiny_suite, db):
    first = hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=db)
    assert first.simulated == 3 and first.cached_simulations == 0
    assert first.predicted == 6 and first.not_applicable == 3 and first.failed == 0
    second = hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=db)
    assert second.simulated == 0 and second.cached_simulations == 3
    assert second.predicted == 0 and second.reused_predictions == 6   # supports() is asked again: n/a is cheap
    assert second.not_applicable == 3
    rows = _scores(db)
    assert sum(status == "ok" for status, _ in rows.values()) == 6
    store = Store(db)
    env = json.loads(store.runs()[0]["env"])
    assert env["jax"] and env["plugins"]["least_squares"].startswith("hdbench") and env["devices"]
    agg = {r["predictor"]: r for r in suite_rows(store, "tiny")}
    assert agg["lsq-online-ode"]["coverage"] == "2/3" and agg["population-gf"]["coverage"] == "3/3"
    assert agg["population-gf"]["rank_lo"] <= agg["population-gf"]["mean_rank"] <= agg["population-gf"]["rank_hi"]


def test_local_processes_and_dask_equal_serial(tiny_suite, tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = tmp_path / "serial.sqlite"
    hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=serial)
    procs = tmp_path / "procs.sqlite"
    hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=procs, workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask_db = tmp_path / "dask.sqlite"
        hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=dask_db, scheduler=cluster.scheduler_address)
    expected = _scores(serial)
    for other in (procs, dask_db):
        got = _scores(other)
        assert got.keys() == expected.keys()
        for key, (status, err) in expected.items():
            assert got[key][0] == status
            if err is not None:
                np.testing.assert_allclose(got[key][1], err, rtol=1e-5)


def test_leaderboard_formats_and_plot(tiny_suite, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    hdbench.run_suite(tiny_suite, predictors=PREDICTORS, db=db)
    for fmt, marker in (("markdown", "| lsq-online-ode |"), ("csv", "lsq-online-ode,"), ("table", "lsq-online-ode")):
        code, out = cli(capsys, "leaderboard", "--db", db, "--format", fmt)
        assert code == 0 and marker in out.replace("  ", " "), out
    code, out = cli(capsys, "leaderboard", "--db", db, "--format", "json")
    board = json.loads(out)
    assert any(r.get("status") == "n/a" for r in board["Suite 'tiny': per scenario"])
    png = tmp_path / "p.png"
    assert cli(capsys, "plot", "online g0.5", "--db", db, "--out", png)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "p.svg"
    assert cli(capsys, "plot", "online g0.5", "--db", db, "--out", svg)[0] == 0 and b"<svg" in svg.read_bytes()[:500]
    assert run_cli("plot", "nope", "--db", db).returncode == 2


def test_a_predict_is_repeated_for_its_warm_time_only_when_the_first_call_is_short(monkeypatch):
    """The timing rule (docs/scoring.md): a first call under ``REPEAT_BELOW_S`` is called again and
    its warm time reported; a longer one is called once, and its speed-up is shown as a lower bound."""
    from hdbench import runner
    from hdbench.report import scenario_table
    spec = {"model": {"name": "linear"}, "dynamics": {"name": "online-sgd", "params": {"gamma": 0.5}},
            "d": 50, "t_max": 1.0, "seeds": 2, "n_times": 5}
    calls = []
    cls = type(hdbench.registry().predictor("lsq-online-ode"))
    predict = cls.predict
    monkeypatch.setattr(cls, "predict", lambda self, s, t: calls.append(1) or predict(self, s, t))
    fast = runner.task_predict(spec, "lsq-online-ode")
    assert fast["status"] == "ok" and len(calls) == 2 and fast["warm_s"] is not None
    monkeypatch.setattr(runner, "REPEAT_BELOW_S", 0.0)
    calls.clear()
    slow = runner.task_predict(spec, "lsq-online-ode")
    assert slow["status"] == "ok" and len(calls) == 1 and slow["warm_s"] is None
    sim = hdbench.simulate(hdbench.Scenario.from_dict(spec))
    cells = {}
    for name, pred in (("fast", fast), ("slow", slow)):
        scored = runner.score_prediction(sim, pred, 0.5, 0.1)["scores"]
        assert scored["speedup"] == pytest.approx(0.5 / (pred["warm_s"] or pred["cold_s"]))
        row = {"scenario": "s", "predictor": "p", "status": "ok", "complete": True, **scored}
        cells[name] = scenario_table([row])[1][0][-1]
    assert cells["slow"].startswith(">=") and not cells["fast"].startswith(">=")


def test_a_second_run_reads_compiled_simulations_from_the_stores_cache(tiny_suite, tmp_path, monkeypatch):
    """JAX's persistent compilation cache lives beside the store: a run on a fresh store in the same
    place (another process, or a resumed run) reads the simulations' programs back instead of
    compiling them again. (``HDBENCH_COMPILE_CACHE`` moves it: the test session's shared one.)"""
    from hdbench.runner import compile_cache_dir
    assert compile_cache_dir(tmp_path / "x.sqlite") == os.environ["HDBENCH_COMPILE_CACHE"]
    monkeypatch.delenv("HDBENCH_COMPILE_CACHE")      # this test's store starts cold, beside itself
    db = tmp_path / "results.sqlite"
    hdbench.run_suite(tiny_suite, predictors=["population-gf"], db=db)
    cache = compile_cache_dir(db)
    assert len(list((tmp_path / "results.jax-cache").iterdir())) > 0 and cache.endswith("results.jax-cache")

    def compile_seconds():
        store = Store(db)
        rows = store.conn.execute("SELECT compile_s FROM simulations").fetchall()
        store.close()
        return sum(r[0] for r in rows)
    first = compile_seconds()
    db.unlink()
    hdbench.run_suite(tiny_suite, predictors=["population-gf"], db=db)
    assert compile_seconds() < 0.5 * first, (compile_seconds(), first)
