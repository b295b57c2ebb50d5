"""Supervised worker processes: a plugin's fault is charged to the call that made it, and to no other.

Each worker is a spawned process (JAX must not be forked once initialised) that runs one call at a
time and stays alive between calls, so compiled solvers are reused. ``Supervisor.call`` sends one
call to an idle worker and waits for its answer. When the worker dies instead (``os._exit``, a
segfault, the kernel's OOM killer), the call raises :class:`WorkerDied`; when the deadline passes it
kills the worker's whole process group and raises :class:`WorkerTimeout`. Either way the worker is
discarded and the next call gets a fresh one: nothing else that was running is touched.

Workers ignore Ctrl-C (the terminal sends it to the whole foreground group; the parent decides) and
die with their parent: on Linux the kernel sends them SIGKILL (``PR_SET_PDEATHSIG``); elsewhere a
watchdog thread notices the parent is gone within a second.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time


class WorkerFault(Exception):
    """A call that did not return; ``phase``: how many times it had called ``mark()``."""

    def __init__(self, message: str, phase: int):
        super().__init__(message)
        self.phase = phase


class WorkerDied(WorkerFault):
    """The worker process ended while running the call."""


class WorkerTimeout(WorkerFault):
    """The call passed its deadline; its worker was killed."""


class WorkerRaised(WorkerFault):
    """The call raised (any ``BaseException``: ``SystemExit`` and ``KeyboardInterrupt`` included)."""


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:      # the parent died before the line above took effect
        os._exit(70)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(70)
    threading.Thread(target=watch, daemon=True, name="hdbench-parent-watch").start()


_CONN = None     # in a worker: the pipe to the supervisor


def mark() -> None:
    """Start a new phase of the current call: its deadline counts again from now (no-op outside a worker)."""
    if _CONN is not None:
        _CONN.send(("mark", None))


def _worker_main(conn, parent_pid: int, warm) -> None:
    global _CONN
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setpgrp()                        # its own group: a kill takes any process the plugin started
    _die_with_parent(parent_pid)
    if warm is not None:                # e.g. import the plugins before the first call arrives
        warm()
    _CONN = conn
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply = ("ok", fn(*args))
        except BaseException as exc:   # noqa: BLE001 - SystemExit and KeyboardInterrupt included
            reply = ("raised", f"{type(exc).__name__}: {exc}".strip().rstrip(":").splitlines()[0])
        try:
            conn.send(reply)
        except Exception as exc:   # noqa: BLE001 - e.g. an unpicklable result
            conn.send(("raised", f"result could not be sent back: {type(exc).__name__}: {exc}".splitlines()[0]))


_START_LOCK = threading.Lock()


class _Worker:
    def __init__(self, ctx, warm):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid(), warm), daemon=True,
                                name="hdbench-worker")
        with _START_LOCK:
            current = multiprocessing.current_process()
            daemonic = current.daemon
            # Dask's workers are daemonic, and multiprocessing forbids daemons children to stop orphans;
            # ours die with their parent anyway (_die_with_parent)
            current.daemon = False
            try:
                self.proc.start()
            finally:
                current.daemon = daemonic
        child.close()
        self.ready = False

    def kill(self) -> None:
        for target in (lambda: os.killpg(self.proc.pid, signal.SIGKILL), self.proc.kill):
            try:
                target()
            except (ProcessLookupError, PermissionError, OSError, AttributeError):
                pass
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        self.conn.close()


def _exit_text(code) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Workers started on demand and kept warm between calls; ``call`` is safe from several threads at
    once (each checks out its own worker, so there are as many workers as concurrent callers).
    ``warm``: a function (importable by name) every worker runs at start."""

    def __init__(self, warm=None):
        self._ctx = multiprocessing.get_context("spawn")
        self._warm = warm
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._busy: set = set()
        self._lock = threading.Lock()
        self._closed = False

    def call(self, fn, args: tuple, deadline: float | None = None):
        """``fn(*args)`` in a worker (``fn`` importable by name). Raises ``WorkerDied``,
        ``WorkerTimeout`` (more than ``deadline`` seconds since the call was sent or since ``fn``
        last called ``mark()``) or ``WorkerRaised``."""
        if self._closed:
            raise RuntimeError("the supervisor is closed")
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = _Worker(self._ctx, self._warm)
        with self._lock:
            self._busy.add(worker)
        healthy, phase, status = False, 0, None
        try:
            try:
                if not worker.ready:               # start-up (imports) is not part of the call's time
                    worker.ready = worker.conn.recv()[0] == "ready"
                worker.conn.send((fn, args))
                while status is None:
                    if not worker.conn.poll(deadline):
                        break
                    status, value = worker.conn.recv()
                    if status == "mark":
                        status, phase = None, phase + 1
            except (EOFError, OSError):
                worker.proc.join(5)
                raise WorkerDied(f"its worker process died ({_exit_text(worker.proc.exitcode)})", phase) from None
            if status is None:
                raise WorkerTimeout(f"took longer than {deadline:g} s; its worker process was killed", phase)
            healthy = True
            if status == "raised":
                raise WorkerRaised(value, phase)
            return value
        finally:
            with self._lock:
                self._busy.discard(worker)
            if not healthy:
                worker.kill()
            elif self._closed:              # closed while this call ran: nobody will reuse it
                worker.stop()
            else:
                self._idle.put(worker)

    def close(self) -> None:
        """Stop idle workers and kill busy ones (their callers then see ``WorkerDied``)."""
        self._closed = True
        with self._lock:
            busy = list(self._busy)
        for worker in busy:
            worker.kill()
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                break


_LOCAL: Supervisor | None = None
_LOCAL_LOCK = threading.Lock()


def local_supervisor(warm=None) -> Supervisor:
    """This process's own supervisor, made on first use (a Dask worker isolates its tasks here)."""
    global _LOCAL
    with _LOCAL_LOCK:
        if _LOCAL is None:
            _LOCAL = Supervisor(warm=warm)
        return _LOCAL
