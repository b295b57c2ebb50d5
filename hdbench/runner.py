"""Plan -> execute (serial, local processes, or Dask) -> store -> score.

Tasks are plain functions of JSON-able arguments (``task_simulate``, ``task_predict``), so any
``concurrent.futures``-style executor can run them: in-process, a spawn-context process pool
(JAX must not be forked once initialised), or a Dask cluster's ``client.get_executor()``.
Workers only compute; this process is the single writer of the store, and writes each finished item
in its own transaction. Re-running skips what the store already has (simulations by scenario hash
and the fingerprint of the engine's, model's and dynamics' code; successful predictions by scenario
hash, predictor, provider version and the fingerprint of its code), so an interrupted run resumes
where it stopped; failed and timed-out predictions are retried. A worker reports the fingerprints of
the code it ran: a result made by other code than this process's is refused, never stored under it.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import platform
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from .errors import InputError
from .fingerprint import scorer_code, simulation_code
from .registry import registry
from .scenario import Scenario, load_suite, suite_timeout
from .score import NothingToScore, ScoreError, check_curves, score
from .simulate import Simulation, simulate
from .store import DEFAULT_DB, Store

DEFAULT_TIMEOUT = 60.0


# -- tasks (run in workers) --------------------------------------------------------------------
def task_simulate(spec: dict) -> dict:
    scenario = Scenario.from_dict(spec)
    sim = simulate(scenario)
    return {"times": sim.times, "per_seed": sim.per_seed, "diverged_at": sim.diverged_at,
            "compile_s": sim.compile_s, "run_s": sim.run_s, "code": simulation_code(scenario)}


def task_predict(spec: dict, predictor: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Call ``predict`` twice (cold, then warm), each under ``timeout`` seconds; never raises. The
    result names the provider and code fingerprint of the predictor this process ran."""
    try:
        entry = registry().entry("predictor", predictor)
    except Exception as exc:   # noqa: BLE001 - not installed on this worker
        return {"status": "failed", "message": f"{type(exc).__name__}: {exc}".splitlines()[0],
                "provider": None, "code": None}
    return {**_predict(spec, predictor, timeout), "provider": entry.provider, "code": entry.code}


def _predict(spec, predictor, timeout):
    try:
        scenario = Scenario.from_dict(spec)
        pred = registry().predictor(predictor)
        times = scenario.times()
        out = []
        for _ in range(2):
            start = time.perf_counter()
            curves = _call_with_timeout(pred.predict, (scenario, times), timeout)
            out.append((curves, time.perf_counter() - start))
        curves = check_curves(out[1][0], times)  # +-inf marks a predicted divergence, NaN fails
    except TimeoutError:
        return {"status": "timeout", "message": f"predict took longer than {timeout:g} s"}
    except ScoreError as exc:
        return {"status": "failed", "message": str(exc)}
    except Exception as exc:   # noqa: BLE001 - a plugin's failure is recorded, never fatal
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return {"status": "failed", "message": text}
    return {"status": "ok", "curves": curves, "cold_s": out[0][1], "warm_s": out[1][1]}


ABANDONED: list[threading.Thread] = []     # timed-out predict calls, still running


def _call_with_timeout(fn, args, timeout):
    box = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:   # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)   # abandoned (not joined) on timeout
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        ABANDONED.append(thread)
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- executors -----------------------------------------------------------------------------------
def make_executor(workers: int = 1, scheduler: str | None = None):
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler needs dask distributed: pip install 'hdbench[dask]'") from None
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        return client.get_executor(pure=False), client.close
    if workers < 1:
        raise InputError(f"--workers = {workers} is not allowed (expected an integer >= 1)")
    if workers == 1:
        return None, lambda: None     # serial: run_suite computes each job in this process, in turn
    pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return pool, lambda: pool.shutdown(wait=False, cancel_futures=True)


# -- environment ---------------------------------------------------------------------------------
def environment(reg=None) -> dict:
    import jax

    from . import __version__
    reg = reg or registry()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"hdbench": __version__, "plugins": reg.plugin_versions(), "jax": jax.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "devices": [str(d) for d in jax.devices()], "git_commit": commit}


def as_simulation(scenario: Scenario, rec: dict) -> Simulation:
    return Simulation(scenario, np.asarray(rec["times"]), dict(rec["per_seed"]), np.asarray(rec["diverged_at"]),
                      rec.get("compile_s", 0.0), rec.get("run_s", 0.0))


# -- the run ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunReport:
    run_id: int
    suite: str
    scenarios: int
    simulated: int = 0
    cached_simulations: int = 0
    predicted: int = 0
    reused_predictions: int = 0
    not_applicable: int = 0
    failed: int = 0
    wall_s: float = 0.0
    db: str = ""
    errors: list = dataclasses.field(default_factory=list)


def run_suite(suite="quick", *, predictors=None, db=DEFAULT_DB, workers: int = 1, scheduler: str | None = None,
              timeout: float | None = None, progress=None) -> RunReport:
    """Simulate every scenario of ``suite`` (a built-in name or a TOML path; cached), run every
    supporting predictor (all registered, or ``predictors``), score, and store in ``db``.

    ``workers > 1`` uses spawned local processes; ``scheduler`` a Dask scheduler address.
    ``timeout`` bounds each ``predict`` call (default: the suite's ``[suite] timeout``, else
    ``DEFAULT_TIMEOUT``). ``progress``: an optional ``rich.progress.Progress``.
    Everything that can be wrong with the input is checked before the store is touched.
    """
    start = time.perf_counter()
    reg = registry()
    suite_name, scenarios = load_suite(suite, reg)
    if timeout is None:
        timeout = suite_timeout(suite) or DEFAULT_TIMEOUT
    names = list(predictors) if predictors else reg.names("predictor")
    for name in names:
        reg.entry("predictor", name)   # unknown name -> InputError with a suggestion
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise InputError(f"--timeout = {timeout!r} is not allowed (expected seconds > 0)")
    executor, shutdown = make_executor(workers, scheduler)
    status, store, report = "interrupted", None, None
    try:
        store = Store(db)
        run_id = store.begin_run(suite_name, environment(reg))
        store.add_suite(suite_name, scenarios)
        report = RunReport(run_id, suite_name, len(scenarios), db=str(db))
        by_hash = {s.hash: s for s in scenarios}
        sims, jobs = _plan(store, reg, scenarios, names, report)
        task = progress.add_task(f"suite {suite_name}", total=len(jobs)) if progress is not None else None
        # resume tests: deliver a signal (KILL, or INT = Ctrl-C) to this process after N stored items
        kill_after = int(os.environ.get("HDBENCH_TEST_KILL_AFTER", "0"))
        kill_signal = getattr(signal, "SIG" + os.environ.get("HDBENCH_TEST_KILL_SIGNAL", "KILL"))
        for writes, ((kind, h, name, provider, code), outcome) in enumerate(
                _execute(executor, jobs, by_hash, timeout), 1):
            if kind == "sim":
                if isinstance(outcome, BaseException):   # a model/dynamics plugin failed: recorded, not fatal
                    report.errors.append(f"simulation of '{by_hash[h].label}' failed: {type(outcome).__name__}: {outcome}")
                elif outcome["code"] != code:
                    report.errors.append(f"simulation of '{by_hash[h].label}' refused: the worker's engine, model or "
                                         f"dynamics code (fingerprint {outcome['code']}) is not this process's ({code}); "
                                         "install the same hdbench and plugins on every worker")
                else:
                    sims[h] = (as_simulation(by_hash[h], outcome), store.put_simulation(h, code, outcome, run_id))
                    report.simulated += 1
            else:
                if isinstance(outcome, BaseException):   # e.g. a worker process died
                    outcome = {"status": "failed", "message": f"{type(outcome).__name__}: {outcome}".splitlines()[0]}
                elif (outcome["provider"], outcome["code"]) != (provider, code):
                    message = (f"refused: the worker ran {name} from {outcome['provider']} (code {outcome['code']}), "
                               f"this process has {provider} (code {code}); install the same plugins on every worker")
                    report.errors.append(f"prediction of {name} on '{by_hash[h].label}' {message}")
                    outcome = {"status": "failed", "message": message}
                store.put_prediction(h, name, provider, code, outcome, run_id)
                report.predicted += outcome["status"] == "ok"
                report.failed += outcome["status"] != "ok"
            if kill_after and writes == kill_after:
                os.kill(os.getpid(), kill_signal)
            if progress is not None:
                progress.update(task, advance=1, description=by_hash[h].label[:40])
        score_pending(store, sims)
        status = "finished"
    finally:
        shutdown()
        if store is not None:
            if report is not None:
                store.finish_run(report.run_id, status)
            store.close()
    report.wall_s = time.perf_counter() - start
    return report


def _plan(store, reg, scenarios, names, report):
    """Cached simulations, plus the jobs still to do; declined predictors are stored as n/a now.
    Only successful predictions by the same code are reused: failures and timeouts are retried."""
    sims, jobs = {}, []
    for s in scenarios:
        code = simulation_code(s, reg)
        rec = store.get_simulation(s.hash, code)
        if rec is None:
            jobs.append(("sim", s.hash, None, None, code))
        else:
            sims[s.hash] = (as_simulation(s, rec), rec["id"])
            report.cached_simulations += 1
        for name in names:
            entry = reg.entry("predictor", name)
            cached = store.get_prediction(s.hash, name, entry.provider, entry.code)
            if cached is not None and cached["status"] == "ok":
                report.reused_predictions += 1
                continue
            support = _supports(reg.predictor(name), s)
            if not support:
                store.put_prediction(s.hash, name, entry.provider, entry.code,
                                     {"status": "n/a", "message": support.reason}, report.run_id)
                report.not_applicable += 1
                continue
            jobs.append(("predict", s.hash, name, entry.provider, entry.code))
    return sims, jobs


def _execute(executor, jobs, by_hash, timeout):
    """Yield ``(job, result or exception)`` as each finishes: serially one by one (so each is stored
    before the next starts), or all submitted to ``executor`` and yielded as completed."""
    def call(kind, h, name):
        spec = by_hash[h].to_dict()
        return (task_simulate, spec) if kind == "sim" else (task_predict, spec, name, timeout)

    if executor is None:
        for job in jobs:
            fn, *args = call(*job[:3])
            try:
                yield job, fn(*args)
            except Exception as exc:   # noqa: BLE001
                yield job, exc
        return
    futures = {executor.submit(*call(*job[:3])): job for job in jobs}
    for fut in cf.as_completed(futures):
        try:
            yield futures[fut], fut.result()
        except Exception as exc:   # noqa: BLE001
            yield futures[fut], exc


def _supports(pred, scenario):
    try:
        return pred.supports(scenario)
    except Exception as exc:   # noqa: BLE001
        from .component import no
        return no(f"supports() raised {type(exc).__name__}: {exc}")


def score_prediction(sim, pred: dict, run_s: float, compile_s: float) -> dict:
    """``{"status", "message", "scores"}`` of a stored prediction against its scenario's simulation
    (a ``Simulation``, or a ``score.Reference`` where the scenario's plugins are gone) that ran in
    ``run_s`` seconds after ``compile_s`` of compilation."""
    if pred["status"] != "ok":
        return {"status": pred["status"], "message": pred["message"], "scores": None}
    try:
        result = score(sim, pred["curves"])
    except ScoreError as exc:
        return {"status": "n/a" if isinstance(exc, NothingToScore) else "failed", "message": str(exc), "scores": None}
    result.update(cold_s=pred["cold_s"], warm_s=pred["warm_s"], sim_run_s=run_s, sim_compile_s=compile_s,
                  speedup=run_s / max(pred["warm_s"], 1e-9))
    return {"status": "ok", "message": "", "scores": result}


def score_pending(store: Store, sims: dict) -> None:
    """Score the newest prediction of each predictor on these scenarios (``{hash: (Simulation,
    simulation id)}``) where this scorer has not scored it against that simulation yet."""
    scorer = scorer_code()
    for h, (sim, sim_id) in sims.items():
        for pred in store.predictions(h):
            if store.get_score(sim_id, pred["id"], scorer) is None:
                store.put_score(sim_id, pred["id"], scorer, **score_prediction(sim, pred, sim.run_s, sim.compile_s))
