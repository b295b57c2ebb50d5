"""No plugin fault takes a run down, and no kill loses or repeats work.

The faulty plugins are a real third-party distribution (``tests/fault_plugins``), installed the way a
user installs a theory package. Kills and interrupts are delivered by the test itself once the store
holds a given number of items; ``fault-gate`` keeps the run from finishing before that.
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import SMALL_DEFAULTS, run_cli

FAULT_SUITE = '''
[suite]
name = "faults"
timeout = 5
''' + SMALL_DEFAULTS + '''[[scenario]]
name = "online"
model = { name = "linear", params = { sigma = 0.5 } }
dynamics = { name = "online-sgd", params = { gamma = 0.5 } }
[[scenario]]
name = "exploding"
model = { name = "fault-linear", params = { sigma = 0.5 } }
dynamics = { name = "online-sgd", params = { gamma = 0.5 } }
'''

# what each fault leaves on the 'online' scenario: (status, start of the message)
EXPECTED = {
    "lsq-online-ode": ("ok", ""),
    "fault-supports-true": ("ok", ""),
    "fault-supports-none": ("failed", "supports() raised TypeError: returned None"),
    "fault-supports-raises": ("failed", "supports() raised ValueError: cannot tell"),
    "fault-supports-exits": ("failed", "supports(): its worker process died (exit code 4)"),
    "fault-system-exit": ("failed", "SystemExit: 3"),
    "fault-keyboard-interrupt": ("failed", "predict (first call): KeyboardInterrupt"),
    "fault-memory-error": ("failed", "MemoryError: cannot allocate"),
    "fault-os-exit": ("failed", "predict (first call): its worker process died (exit code 1)"),
    "fault-segfault": ("failed", "predict (first call): its worker process died (killed by SIGSEGV)"),
    "fault-hang": ("timeout", "predict (first call) took longer than 5 s"),
    "fault-busy": ("timeout", "predict (first call) took longer than 5 s"),
    "fault-nan": ("failed", "observable 'risk' is not finite"),
    "fault-bad-shape": ("failed", "observable 'risk' has shape (3,)"),
}


@pytest.fixture(scope="session")
def fault_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    source = shutil.copytree(Path(__file__).parent / "fault_plugins", root / "src")   # builds write beside it
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(root / "site"), str(source)], check=True)
    return root / "site"


@pytest.fixture
def fault_suite(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text(FAULT_SUITE)
    return path


def _predictor_args(names):
    return [arg for name in names for arg in ("--predictor", name)]


def _processes_marked(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker``: the CLI and every worker it started."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                if (proc / "stat").read_text().split(") ")[1][0] != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def _wait_gone(marker, seconds=10.0):
    deadline = time.monotonic() + seconds
    while _processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _processes_marked(marker)


def _rows(db, suite="faults"):
    out = run_cli("leaderboard", "--db", db, "--suite", suite, "--format", "json", "--view", "scenarios")
    assert out.returncode == 0, out.stderr
    return {(r["scenario"], r["predictor"]): r for r in json.loads(out.stdout)[f"Suite '{suite}': per scenario"]}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
# one worker process restarted after each fault (slow: 80-100 s); two workers take the same faults through the pool
@pytest.mark.parametrize("workers", [pytest.param("1", marks=pytest.mark.slow), "2"])
def test_no_plugin_fault_takes_the_run_down(fault_site, fault_suite, tmp_path, workers):
    clean_db, db = tmp_path / "clean.sqlite", tmp_path / "faults.sqlite"
    clean = run_cli("run", "--suite", fault_suite, "--db", clean_db, "--workers", workers,
                    "--predictor", "lsq-online-ode", site=fault_site)
    assert clean.returncode == 0, clean.stderr
    marker = f"HDBENCH_TEST_MARK={uuid.uuid4().hex}"
    out = run_cli("run", "--suite", fault_suite, "--db", db, "--workers", workers, *_predictor_args(EXPECTED),
                  site=fault_site, env=dict([marker.split("=")]))
    assert out.returncode == 0, out.stderr
    assert "lsq-online-ode" in out.stdout and "aggregate" in out.stdout          # the leaderboard was printed
    assert "simulation of 'exploding' failed: RuntimeError: sampler exploded" in out.stderr.replace("\n", " ")
    assert _wait_gone(marker) == []                                           # no worker outlived the run
    rows = _rows(db)
    for name, (status, message) in EXPECTED.items():
        row = rows[("online", name)]
        assert (row["status"], row["message"][:len(message)]) == (status, message), name
    # the innocent predictor's verdict is the clean run's, and so (within noise) is its timing
    ref, got = _rows(clean_db)[("online", "lsq-online-ode")], rows[("online", "lsq-online-ode")]
    assert got["error"] == ref["error"] and got["ratio"] == ref["ratio"]
    assert got["warm_s"] < 5 * ref["warm_s"] + 0.02, (got["warm_s"], ref["warm_s"])
    # the scenario whose simulation failed is not stored: a rerun tries it again, and only the faults
    rerun = run_cli("run", "--suite", fault_suite, "--db", db, "--workers", workers,
                    "--predictor", "lsq-online-ode", "--predictor", "fault-nan", site=fault_site)
    assert rerun.returncode == 0
    assert "0 simulated + 1 cached, 0 predictions + 1 reused" in " ".join(rerun.stderr.split())


def _count(db) -> int:
    if not Path(db).exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT (SELECT COUNT(*) FROM simulations) + "
                           "(SELECT COUNT(*) FROM predictions WHERE status != 'n/a')").fetchone()[0]
    except sqlite3.OperationalError:      # not created yet
        return 0
    finally:
        con.close()


def _start(args, env, site):
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "hdbench", *map(str, args)], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(db, items, proc, seconds=240.0):
    deadline = time.monotonic() + seconds
    while _count(db) < items:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run stored too little in time"
        time.sleep(0.05)


KILL_PREDICTORS = ["lsq-online-ode", "lsq-homogenized-sgd", "population-gf", "fault-gate"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("mode,sig,after", [("1", signal.SIGKILL, 1),
                                            pytest.param("2", signal.SIGKILL, 3, marks=pytest.mark.slow),
                                            pytest.param("1", signal.SIGINT, 2, marks=pytest.mark.slow),
                                            ("dask", signal.SIGKILL, 2)])
def test_a_killed_run_resumes_with_nothing_lost_or_redone(fault_site, tiny_suite, tmp_path, monkeypatch,
                                                          mode, sig, after):
    db, gate = tmp_path / "r.sqlite", tmp_path / "gate"
    marker = uuid.uuid4().hex
    args = ["run", "--suite", tiny_suite, "--db", db, *_predictor_args(KILL_PREDICTORS)]
    cluster = None
    if mode == "dask":
        distributed = pytest.importorskip("distributed")
        monkeypatch.setenv("HDBENCH_FAULT_GATE", str(gate))           # the cluster's workers run the plugins
        monkeypatch.syspath_prepend(str(fault_site))      # spawned processes copy sys.path, not PYTHONPATH
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                           dashboard_address=None)
        args += ["--scheduler", cluster.scheduler_address]
    else:
        args += ["--workers", mode]
    try:
        env = {"HDBENCH_FAULT_GATE": str(gate), "HDBENCH_TEST_MARK": marker}
        proc = _start(args, env, fault_site)
        _wait_for(db, after, proc)            # fault-gate holds the run open until the gate exists
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "interrupted" in err
        else:
            assert proc.returncode == -9
        if mode != "dask":
            assert _wait_gone(marker) == [], "a worker outlived its run"
        con = sqlite3.connect(db)
        before = con.execute("SELECT 'sim', hash, id FROM simulations UNION ALL "
                             "SELECT predictor, hash, id FROM predictions WHERE status != 'n/a'").fetchall()
        con.close()
        assert len(before) >= after
        gate.touch()
        resumed = run_cli(*args, site=fault_site, env=env)
        assert resumed.returncode == 0, resumed.stderr
        con = sqlite3.connect(db)
        status = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY id")]
        after_rows = set(con.execute("SELECT 'sim', hash, id FROM simulations UNION ALL "
                                     "SELECT predictor, hash, id FROM predictions WHERE status != 'n/a'").fetchall())
        con.close()
        assert status == ["interrupted", "finished"]
        assert set(before) <= after_rows                                  # nothing lost, nothing recomputed
        rows = _rows(db, "tiny")
        ok = {(s, p) for (s, p), r in rows.items() if r["status"] == "ok"}
        assert ("online g0.5", "fault-gate") in ok and ("online g0.5", "lsq-online-ode") in ok
        assert len(ok) == 9                           # the uninterrupted run's 6, plus fault-gate on all 3
    finally:
        if cluster is not None:
            cluster.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_runs_on_one_store_share_the_work(fault_site, tiny_suite, tmp_path):
    db, gate = tmp_path / "r.sqlite", tmp_path / "gate"
    args = ["run", "--suite", tiny_suite, "--db", db, *_predictor_args(KILL_PREDICTORS)]
    env = {"HDBENCH_FAULT_GATE": str(gate)}
    first = _start(args, env, fault_site)
    _wait_for(db, 1, first)
    second = _start(args, env, fault_site)
    time.sleep(8)                                  # the second run plans and claims what is left
    gate.touch()
    reports = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], reports
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM simulations").fetchone()[0] == 3
    assert con.execute("SELECT status FROM runs ORDER BY id").fetchall() == [("finished",), ("finished",)]
    con.close()
    computed = 0
    for _, err in reports:
        simulated, predicted = re.search(r"(\d+) simulated \+ \d+ cached, (\d+) predictions", " ".join(err.split())).groups()
        computed += int(simulated) + int(predicted)
    assert computed == 3 + 9                         # each item computed once, by one of the two runs
    for out, _ in reports:                           # and each printed the whole leaderboard
        assert "fault-gate" in out and "lsq-online-ode" in out
