"""Plan -> execute (isolated workers, in-process, or Dask) -> store -> score.

Tasks are plain functions of JSON-able arguments (``task_simulate``, ``task_predict``). By default
they run in supervised worker processes (``hdbench.workers``), so that a plugin that crashes,
exits, hangs or runs out of memory costs that one item a recorded ``failed``/``timeout`` and
nothing else; ``workers = 0`` runs them in this process, for debuggers. On Dask each task is
isolated the same way inside its Dask worker. Workers only compute; this process is the single
writer of its run's results, each finished item in its own transaction. Re-running skips what the
store already has (simulations by scenario hash and the fingerprint of the engine's, model's and
dynamics' code; successful predictions by scenario hash, predictor, provider version and the
fingerprint of its code), so an interrupted run resumes where it stopped; failed and timed-out
predictions are retried. A worker reports the fingerprints of the code it ran: a result made by
other code than this process's is refused, never stored under it. Runs sharing a store claim each
item before computing it, so two runs never compute the same item at once.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from .contract import YES, Support, contract_gate, no
from .errors import InputError
from .fingerprint import scorer_code, simulation_code
from .registry import registry
from .scenario import Scenario
from .suite import MAX_TIMEOUT, load_suite
from .score import NothingToScore, ScoreError, check_curves, score
from .simulate import Simulation, simulate
from .store import DEFAULT_DB, Store
from .workers import Supervisor, WorkerFault, WorkerTimeout, local_supervisor, mark

DEFAULT_TIMEOUT = 60.0
CLAIM_POLL_S = 1.0          # how often a run looks at items another run is computing


# -- tasks (run in workers) --------------------------------------------------------------------
SLACK_S = 1.0       # beyond the timeout, before a phase's worker is killed: a result on its way is not lost
COMPILE_CACHE_MIN_S = 0.1   # JAX programs that took longer than this to compile are kept on disk
REPEAT_BELOW_S = 5.0   # a first predict shorter than this is called again to time it warm (docs/scoring.md)


def task_simulate(spec: dict) -> dict:
    scenario = Scenario.from_dict(spec)
    sim = simulate(scenario)
    return {"times": sim.times, "per_seed": sim.per_seed, "diverged_at": sim.diverged_at,
            "compile_s": sim.compile_s, "run_s": sim.run_s, "code": simulation_code(scenario)}


def task_predict(spec: dict, predictor: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Ask ``supports``, then call ``predict`` (cold) and, if that took under ``REPEAT_BELOW_S``, once
    more (warm; else ``warm_s`` is None); a call longer than ``timeout`` seconds is a timeout. Never
    raises. The result names the provider and code fingerprint of the predictor this process ran. In a
    worker each step starts a phase (``workers.mark``), so the supervisor kills a step that overruns
    instead of waiting for it."""
    try:
        entry = registry().entry("predictor", predictor)
    except Exception as exc:   # noqa: BLE001 - not installed on this worker
        return {"status": "failed", "message": _one_line(exc), "provider": None, "code": None}
    return {**_predict(spec, predictor, timeout), "provider": entry.provider, "code": entry.code}


def _predict(spec, predictor, timeout):
    try:
        scenario = Scenario.from_dict(spec)
        pred = registry().predictor(predictor)
        try:
            support = contract_gate(pred, scenario) and as_support(pred.supports(scenario))
        except (Exception, SystemExit) as exc:   # noqa: BLE001
            return {"status": "failed", "message": f"supports() raised {_one_line(exc)}"}
        if not support:
            return {"status": "n/a", "message": support.reason}
        times = scenario.times()
        out = []
        while not out or (len(out) == 1 and out[0][1] < REPEAT_BELOW_S):
            mark()
            start = time.perf_counter()
            curves = pred.predict(scenario, times)
            out.append((curves, time.perf_counter() - start))
            if out[-1][1] > timeout:
                return _timed_out(len(out), timeout)
        curves = check_curves(out[-1][0], times)  # +-inf marks a predicted divergence, NaN fails
    except ScoreError as exc:
        return {"status": "failed", "message": str(exc)}
    except (Exception, SystemExit) as exc:   # noqa: BLE001 - a plugin's failure is recorded, never fatal
        return {"status": "failed", "message": _one_line(exc)}
    return {"status": "ok", "curves": curves, "cold_s": out[0][1], "warm_s": out[1][1] if len(out) > 1 else None}


def _phase(phase: int) -> str:
    """What ``task_predict`` was doing after ``phase`` marks."""
    return ("supports()", "predict (first call)", "predict (second call)")[min(phase, 2)]


def _timed_out(phase: int, timeout: float) -> dict:
    return {"status": "timeout", "message": f"{_phase(phase)} took longer than {timeout:g} s"}


def as_support(answer) -> Support:
    """``supports``' answer as a ``Support``: a plain bool is accepted; anything else is the plugin's bug."""
    if isinstance(answer, Support):
        return answer
    if isinstance(answer, (bool, np.bool_)):
        return YES if answer else no("supports() returned False (no reason given)")
    raise TypeError(f"returned {answer!r}; expected hdbench.YES or hdbench.no(reason)")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, WorkerFault):   # already says what happened
        return str(exc)
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_plugins() -> None:
    registry()


def _prepare_worker(compile_cache: str | None) -> None:
    """A worker's start: JAX's persistent compilation cache in ``compile_cache`` (programs compiled by an
    earlier run, or another worker, are read back instead of compiled again), then the plugins."""
    if compile_cache:
        import jax
        jax.config.update("jax_compilation_cache_dir", compile_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", COMPILE_CACHE_MIN_S)
    _load_plugins()


def compile_cache_dir(db) -> str | None:
    """Where a store keeps JAX's compiled programs: beside it, ``<db stem>.jax-cache`` (None in memory),
    or the folder ``HDBENCH_COMPILE_CACHE`` names, shared by every store (programs are keyed by their
    own content, so stores never mix results through it)."""
    shared = os.environ.get("HDBENCH_COMPILE_CACHE")
    if shared:
        return shared
    if str(db) == ":memory:":
        return None
    db = Path(db)
    return str(db.with_name(db.stem + ".jax-cache"))


def run_job(supervisor, kind, spec, name, timeout, provider=None, code=None):
    """One job's outcome: in ``supervisor``'s workers, or in this process when it is ``None``. A fault
    that ends the worker becomes this prediction's failure (or timeout); a simulation's fault is raised."""
    fn, args = (task_simulate, (spec,)) if kind == "sim" else (task_predict, (spec, name, timeout))
    if supervisor is None:
        return fn(*args)
    try:
        return supervisor.call(fn, args, None if kind == "sim" else timeout + SLACK_S)
    except WorkerTimeout as exc:
        if kind == "sim":
            raise
        outcome = _timed_out(exc.phase, timeout)
    except WorkerFault as exc:
        if kind == "sim":
            raise
        outcome = {"status": "failed", "message": f"{_phase(exc.phase)}: {exc}"}
    return {**outcome, "provider": provider, "code": code}


def dask_job(*job):
    """``run_job`` on a Dask worker, isolated in that worker's own supervised processes."""
    return run_job(local_supervisor(warm=_load_plugins), *job)


# -- executors -----------------------------------------------------------------------------------
def make_executor(n_workers: int = 1, scheduler: str | None = None, compile_cache: str | None = None):
    """``(submit, supervisor, shutdown)``: ``submit(job) -> future``, or ``None`` for serial; the
    supervisor of this process's workers (``None`` in-process, ``n_workers = 0``), whose JAX programs
    are cached in ``compile_cache`` (a folder) across workers and runs."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler needs dask distributed: pip install 'hdbench[dask]'") from None
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({_one_line(exc)})") from None
        executor = client.get_executor(pure=False)
        return (lambda job: executor.submit(dask_job, *job)), None, client.close
    most = 4 * (os.cpu_count() or 1)      # each worker holds JAX and the plugins (about 0.5 GB)
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or not 0 <= n_workers <= most:
        raise InputError(f"--workers = {n_workers!r} is not allowed (expected an integer from 0 to {most}; "
                         "0 = in this process)")
    if n_workers == 0:
        return None, None, lambda: None
    supervisor = Supervisor(warm=functools.partial(_prepare_worker, compile_cache))
    if n_workers == 1:
        return None, supervisor, supervisor.close
    pool = cf.ThreadPoolExecutor(n_workers, thread_name_prefix="hdbench-job")

    def shutdown():
        supervisor.close()          # first: threads waiting on a killed worker return at once
        pool.shutdown(wait=True, cancel_futures=True)
    return (lambda job: pool.submit(run_job, supervisor, *job)), supervisor, shutdown


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
    predictor (all registered, or ``predictors``) that supports it, score, and store in ``db``.

    Plugin code runs in ``workers`` supervised processes (``hdbench.workers``): a crash, hang or exit
    there is that item's recorded failure or timeout and nothing else's. ``workers = 0`` runs
    everything in this process (for debuggers and profilers: a fault there is the run's, a hang
    hangs it). ``scheduler``: a Dask scheduler address; each Dask worker isolates its tasks the same way.
    ``timeout`` bounds each ``supports`` / ``predict`` call (default: the suite's ``[suite] timeout``,
    else ``DEFAULT_TIMEOUT``). ``progress``: an optional ``hdbench.progress.RunProgress``, started here
    once the input is checked (the caller stops it). Runs sharing a store share the work: an item another live run has claimed is waited for, not redone.
    Everything that can be wrong with the input is checked before the store is touched.
    """
    start = time.perf_counter()
    reg = registry()
    loaded = load_suite(suite, reg)
    suite_name, scenarios = loaded.name, loaded.scenarios
    if timeout is None:
        timeout = loaded.timeout or DEFAULT_TIMEOUT
    names = list(predictors) if predictors else reg.names("predictor")
    for name in names:
        reg.entry("predictor", name)   # unknown name -> InputError with a suggestion
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and 0 < timeout < MAX_TIMEOUT):
        raise InputError(f"--timeout = {timeout!r} is not allowed (expected seconds, > 0 and < {MAX_TIMEOUT:g})")
    submit, supervisor, shutdown = make_executor(workers, scheduler, compile_cache_dir(db))   # starts no process yet
    try:
        store = Store(db)
    except BaseException:
        shutdown()
        raise
    status, report = "interrupted", None
    try:
        store.reap_runs()
        run_id = store.begin_run(suite_name, environment(reg))
        heartbeat = store.heartbeat(run_id)
        store.add_suite(suite_name, scenarios)
        report = RunReport(run_id, suite_name, len(scenarios), db=str(db))
        by_hash = {s.hash: s for s in scenarios}
        sims, jobs = _plan(store, reg, scenarios, names, report)
        if progress is not None:
            progress.start(suite_name, len(jobs))
        pending = dict.fromkeys(jobs)        # in the order the workers take them
        for job, outcome in _execute(store, run_id, submit, supervisor, jobs, by_hash, timeout):
            _record(store, report, sims, by_hash, job, outcome)
            pending.pop(job, None)
            if progress is not None:
                running = [_label(j, by_hash) for j in list(pending)[:max(1, workers)]]
                progress.advance(_label(job, by_hash), _status(job, outcome), running)
        score_pending(store, sims)
        status = "finished"
    finally:
        shutdown()
        if report is not None:
            heartbeat.set()
            store.finish_run(report.run_id, status)
        store.close()
    report.wall_s = time.perf_counter() - start
    return report


def _record(store, report, sims, by_hash, job, outcome) -> None:
    """Store one finished job's outcome, or say why it is not stored."""
    kind, h, name, provider, code = job
    if outcome is None:   # done by another run meanwhile
        if kind == "sim":
            rec = store.get_simulation(h, code)
            sims[h] = (as_simulation(by_hash[h], rec), rec["id"])
        return
    if kind == "sim":
        if isinstance(outcome, BaseException):   # a model/dynamics plugin failed: reported, retried next run
            report.errors.append(f"simulation of '{by_hash[h].label}' failed: {_one_line(outcome)}")
        elif outcome["code"] != code:
            report.errors.append(f"simulation of '{by_hash[h].label}' refused: the worker's engine, model or "
                                 f"dynamics code (fingerprint {outcome['code']}) is not this process's ({code}); "
                                 "install the same hdbench and plugins on every worker")
        else:
            sims[h] = (as_simulation(by_hash[h], outcome), store.put_simulation(h, code, outcome, report.run_id))
            report.simulated += 1
        return
    if isinstance(outcome, BaseException):   # the executor lost it (e.g. a Dask worker died): not its fault
        report.errors.append(f"prediction of {name} on '{by_hash[h].label}' not stored, it will be retried: "
                             f"{_one_line(outcome)}")
        return
    if outcome["provider"] is None:
        message = f"the worker cannot run {name} ({outcome['message']}); install the same plugins on every worker"
        report.errors.append(f"prediction of {name} on '{by_hash[h].label}' failed: {message}")
        outcome = {"status": "failed", "message": message}
    elif (outcome["provider"], outcome["code"]) != (provider, code):
        message = (f"refused: the worker ran {name} from {outcome['provider']} (code {outcome['code']}), "
                   f"this process has {provider} (code {code}); install the same plugins on every worker")
        report.errors.append(f"prediction of {name} on '{by_hash[h].label}' {message}")
        outcome = {"status": "failed", "message": message}
    store.put_prediction(h, name, provider, code, outcome, report.run_id)
    report.predicted += outcome["status"] == "ok"
    report.not_applicable += outcome["status"] == "n/a"
    report.failed += outcome["status"] in ("failed", "timeout")


def _label(job, by_hash) -> str:
    return f"{by_hash[job[1]].label} · {'simulation' if job[0] == 'sim' else job[2]}"


def _status(job, outcome) -> str:
    """One word for the progress line: ok, n/a, failed, timeout, done elsewhere, or lost."""
    if outcome is None:
        return "done by another run"
    if isinstance(outcome, BaseException):
        return "failed"
    if job[0] == "sim":
        return f"simulated in {outcome['compile_s'] + outcome['run_s']:.1f} s"
    return outcome["status"] + (f" in {outcome['cold_s']:.2g} s" if outcome.get("cold_s") is not None else "")


def _plan(store, reg, scenarios, names, report):
    """Cached simulations, plus the jobs still to do. Only successful predictions by the same code are
    reused; n/a is asked again (``supports`` is cheap and may change), failures and timeouts are retried."""
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
            jobs.append(("predict", s.hash, name, entry.provider, entry.code))
    return sims, jobs


def _item(job) -> str:
    kind, h, name, provider, code = job
    return f"sim {h} {code}" if kind == "sim" else f"predict {h} {name} {provider} {code}"


def _stored_id(store, job):
    """The id of the row this job would write, or ``None``: a new id means another run stored it."""
    kind, h, name, provider, code = job
    row = store.get_simulation(h, code) if kind == "sim" else store.get_prediction(h, name, provider, code)
    return None if row is None else row["id"]


def _execute(store, run_id, submit, supervisor, jobs, by_hash, timeout):
    """Yield ``(job, outcome)`` as each finishes (an exception where the job raised or was lost; ``None``
    where another run did it): serially, each stored before the next starts, or all submitted at once.
    A job is claimed in the store first; one another live run holds is waited for at the end, and
    taken over if that run dies."""
    def args(job):
        kind, h, name, provider, code = job
        return kind, by_hash[h].to_dict(), name, timeout, provider, code

    seen = {job: _stored_id(store, job) for job in jobs}    # as planned: a new id means another run did it
    waiting, futures = [], {}
    for job in jobs:
        if not store.claim(_item(job), run_id):
            waiting.append(job)
        elif _stored_id(store, job) != seen[job]:      # finished by another run since we planned
            store.release(_item(job))
            yield job, None
        elif submit is None:
            yield job, _guarded(run_job, supervisor, *args(job))
            store.release(_item(job))
        else:
            futures[submit(args(job))] = job
    for fut in cf.as_completed(futures):
        job = futures[fut]
        try:
            yield job, fut.result()
        except Exception as exc:   # noqa: BLE001 - lost by the executor
            yield job, exc
        store.release(_item(job))
    while waiting:
        time.sleep(CLAIM_POLL_S)
        for job in list(waiting):
            if _stored_id(store, job) != seen[job]:
                waiting.remove(job)
                yield job, None
            elif store.claim(_item(job), run_id):
                waiting.remove(job)
                if submit is None:
                    yield job, _guarded(run_job, supervisor, *args(job))
                else:
                    yield job, _guarded(lambda: submit(args(job)).result())
                store.release(_item(job))


def _guarded(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:   # noqa: BLE001 - e.g. a simulation plugin raised
        return exc


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
    solve_s = pred["cold_s"] if pred["warm_s"] is None else pred["warm_s"]   # not repeated: an upper bound
    result.update(cold_s=pred["cold_s"], warm_s=pred["warm_s"], sim_run_s=run_s, sim_compile_s=compile_s,
                  speedup=run_s / max(solve_s, 1e-9), speedup_bound=pred["warm_s"] is None)
    return {"status": "ok", "message": "", "scores": result}


def score_pending(store: Store, sims: dict) -> None:
    """Score the newest prediction of each predictor on these scenarios (``{hash: (Simulation,
    simulation id)}``) where this scorer has not scored it against that simulation yet."""
    scorer = scorer_code()
    for h, (sim, sim_id) in sims.items():
        for pred in store.predictions(h):
            if store.get_score(sim_id, pred["id"], scorer) is None:
                store.put_score(sim_id, pred["id"], scorer, **score_prediction(sim, pred, sim.run_s, sim.compile_s))
