"""SQLite result store (default ``./.hdbench/results.sqlite``), schema-versioned.

Tables: ``runs`` (with the environment), ``scenarios`` and ``suite_members``, ``simulations`` (cache
keyed by scenario hash + the fingerprint of the code that simulated it: engine, model, dynamics),
``predictions`` (keyed by scenario hash, predictor, its provider ``dist version (plugin)`` and the
fingerprint of its code) and their ``scores`` (per simulation, prediction and scorer fingerprint).
See ``hdbench.fingerprint``. Arrays are stored as ``.npz`` blobs. Every write is its own
transaction, so a killed run loses at most the items in flight. Within a run the client process is the
only writer; runs sharing a store claim items (``claims``) so none is computed twice.
"""
from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from .errors import InputError

SCHEMA_VERSION = 2
DEFAULT_DB = Path(".hdbench") / "results.sqlite"
HEARTBEAT_S = 5.0           # a live run touches its row this often
STALE_REMOTE_S = 60.0       # a run on another host silent this long is dead
STALE_LOCAL_S = 600.0       # on this host the pid decides; this only guards against a reused pid

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, started REAL,
    finished REAL, status TEXT, env TEXT, host TEXT, pid INTEGER, heartbeat REAL);
CREATE TABLE IF NOT EXISTS claims (item TEXT PRIMARY KEY, run_id INTEGER, claimed REAL);
CREATE TABLE IF NOT EXISTS scenarios (hash TEXT PRIMARY KEY, label TEXT, spec TEXT);
CREATE TABLE IF NOT EXISTS suite_members (suite TEXT, hash TEXT, position INTEGER,
    PRIMARY KEY (suite, hash));
CREATE TABLE IF NOT EXISTS simulations (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT, code TEXT,
    times BLOB, per_seed BLOB, diverged_at BLOB, compile_s REAL, run_s REAL, run_id INTEGER, created REAL,
    UNIQUE (hash, code));
CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT, predictor TEXT,
    provider TEXT, code TEXT, status TEXT, message TEXT, curves BLOB, cold_s REAL, warm_s REAL,
    run_id INTEGER, created REAL, UNIQUE (hash, predictor, provider, code));
CREATE TABLE IF NOT EXISTS scores (simulation INTEGER, prediction INTEGER, scorer TEXT, status TEXT,
    message TEXT, scores TEXT, PRIMARY KEY (simulation, prediction, scorer));
"""


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; ``immutable`` where even the WAL's shared-memory file cannot be made."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        return sqlite3.connect(uri + "?immutable=1", uri=True)


def _add_missing_columns(conn) -> None:
    """Stores made before runs recorded their owner gain its columns (nothing else changed)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    for column, typ in (("host", "TEXT"), ("pid", "INTEGER"), ("heartbeat", "REAL")):
        if column not in have:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {typ}")


def pack(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def unpack(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob)) as data:
        return {k: data[k] for k in data.files}


class Store:
    """``readonly=True`` opens an existing store for viewing only: it is never created or changed,
    and a store on read-only media (or another user's) can be viewed."""

    def __init__(self, path=DEFAULT_DB, readonly: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"--db {self.path} is a directory, expected a SQLite file path")
        if readonly and not self.path.exists():
            raise InputError(f"--db {self.path} does not exist (run hdbench run first)")
        row = None
        try:
            if readonly:
                self.conn = _open_readonly(self.path)
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    raise sqlite3.DatabaseError("no schema version")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not os.access(self.path if self.path.exists() else self.path.parent, os.W_OK) or \
                        not os.access(self.path.parent, os.W_OK):
                    raise InputError(f"--db {self.path} cannot be written (read-only); "
                                     "hdbench leaderboard and plot can still view it")
                self.conn = sqlite3.connect(str(self.path), timeout=30)
                if self.conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":   # before the first write
                    raise sqlite3.DatabaseError("damaged: PRAGMA quick_check failed")
                self.conn.execute("PRAGMA journal_mode=WAL")
                with self.conn:
                    self.conn.executescript(SCHEMA)
                    row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                    if row is None:
                        self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    else:
                        _add_missing_columns(self.conn)
        except OSError as exc:
            raise InputError(f"--db {self.path}: cannot be created ({exc.strerror or exc})") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path} is not a usable hdbench store ({exc})") from None
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise InputError(f"--db {self.path} has schema version {row[0]}; this hdbench reads version "
                             f"{SCHEMA_VERSION}, which keys results by the code that made them (use a new --db path)")

    def close(self):
        self.conn.close()

    # -- runs and suites ------------------------------------------------------------------------
    def begin_run(self, suite: str, env: dict) -> int:
        with self.conn:
            cur = self.conn.execute("INSERT INTO runs (suite, started, status, env, host, pid, heartbeat) "
                                    "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                                    (suite, time.time(), json.dumps(env), socket.gethostname(), os.getpid(), time.time()))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))
            self.conn.execute("DELETE FROM claims WHERE run_id=?", (run_id,))

    def runs(self) -> list[dict]:
        rows = self.conn.execute("SELECT id, suite, started, finished, status, env FROM runs ORDER BY id")
        return [dict(zip(("id", "suite", "started", "finished", "status", "env"), r)) for r in rows]

    def heartbeat(self, run_id: int) -> threading.Event:
        """Mark the run alive every ``HEARTBEAT_S`` seconds (its own connection) until the event is set."""
        stop = threading.Event()

        def beat():
            conn = sqlite3.connect(str(self.path), timeout=30)
            try:
                while not stop.wait(HEARTBEAT_S):
                    with conn:
                        conn.execute("UPDATE runs SET heartbeat=? WHERE id=?", (time.time(), run_id))
            except sqlite3.Error:
                pass        # the store went away; the run's own writes will say so
            finally:
                conn.close()
        threading.Thread(target=beat, daemon=True, name="hdbench-heartbeat").start()
        return stop

    def _alive(self, run_id: int) -> bool:
        row = self.conn.execute("SELECT status, host, pid, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None or row[0] != "running" or row[3] is None:
            return False
        status, host, pid, beat = row
        if host != socket.gethostname():
            return time.time() - beat < STALE_REMOTE_S
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return time.time() - beat < STALE_LOCAL_S    # an old heartbeat under a live pid: the pid was reused

    def reap_runs(self) -> list[int]:
        """Mark runs whose process is gone (killed, machine lost) as interrupted; free their claims."""
        dead = [r for (r,) in self.conn.execute("SELECT id FROM runs WHERE status='running'").fetchall()
                if not self._alive(r)]
        with self.conn:
            for run_id in dead:
                self.conn.execute("UPDATE runs SET status='interrupted', finished=heartbeat WHERE id=?", (run_id,))
                self.conn.execute("DELETE FROM claims WHERE run_id=?", (run_id,))
        return dead

    def claim(self, item: str, run_id: int) -> bool:
        """Take ``item`` for ``run_id`` unless another live run holds it."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")     # no other run can claim between the read and the write
            row = self.conn.execute("SELECT run_id FROM claims WHERE item=?", (item,)).fetchone()
            if row is not None and row[0] != run_id and self._alive(row[0]):
                return False
            self.conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (item, run_id, time.time()))
        return True

    def release(self, item: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM claims WHERE item=?", (item,))

    def add_suite(self, suite: str, scenarios) -> None:
        with self.conn:
            for i, s in enumerate(scenarios):
                self.conn.execute("INSERT OR REPLACE INTO scenarios VALUES (?, ?, ?)",
                                  (s.hash, s.label, json.dumps(s.to_dict())))
                self.conn.execute("INSERT OR REPLACE INTO suite_members VALUES (?, ?, ?)", (suite, s.hash, i))

    def suites(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT suite FROM suite_members ORDER BY suite")]

    def suite_scenarios(self, suite: str) -> list[tuple[str, str, dict]]:
        rows = self.conn.execute(
            "SELECT s.hash, s.label, s.spec FROM suite_members m JOIN scenarios s ON s.hash = m.hash "
            "WHERE m.suite = ? ORDER BY m.position", (suite,))
        return [(h, label, json.loads(spec)) for h, label, spec in rows]

    def find_scenario(self, ref: str) -> tuple[str, str, dict]:
        """A scenario by hash (or unique hash prefix) or exact label."""
        rows = self.conn.execute("SELECT hash, label, spec FROM scenarios").fetchall()
        hits = [r for r in rows if r[0].startswith(ref) or r[1] == ref]
        if len(hits) != 1:
            known = ", ".join(f"{h[:8]} ({lab})" for h, lab, _ in rows[:20])
            what = "matches several scenarios" if hits else "matches no stored scenario"
            raise InputError(f"scenario '{ref}' {what} (known: {known or 'none; run hdbench run first'})")
        h, label, spec = hits[0]
        return h, label, json.loads(spec)

    # -- simulations ------------------------------------------------------------------------------
    def put_simulation(self, scenario_hash: str, code: str, sim: dict, run_id: int) -> int:
        with self.conn:
            self.conn.execute("DELETE FROM scores WHERE simulation IN (SELECT id FROM simulations "
                              "WHERE hash=? AND code=?)", (scenario_hash, code))
            self.conn.execute("DELETE FROM simulations WHERE hash=? AND code=?", (scenario_hash, code))
            cur = self.conn.execute(
                "INSERT INTO simulations (hash, code, times, per_seed, diverged_at, compile_s, run_s, run_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (scenario_hash, code, pack({"t": sim["times"]}), pack(sim["per_seed"]), pack({"d": sim["diverged_at"]}),
                 sim["compile_s"], sim["run_s"], run_id, time.time()))
        return int(cur.lastrowid)

    def get_simulation(self, scenario_hash: str, code: str | None = None) -> dict | None:
        """The simulation made by ``code``, or (``code=None``) the newest one of the scenario."""
        sql = "SELECT id, code, times, per_seed, diverged_at, compile_s, run_s FROM simulations WHERE hash=?"
        row = self.conn.execute(sql + (" AND code=?" if code else "") + " ORDER BY created DESC, id DESC LIMIT 1",
                                (scenario_hash, code) if code else (scenario_hash,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "code": row[1], "times": unpack(row[2])["t"], "per_seed": unpack(row[3]),
                "diverged_at": unpack(row[4])["d"], "compile_s": row[5], "run_s": row[6]}

    # -- predictions and scores -------------------------------------------------------------------
    def put_prediction(self, scenario_hash, predictor, provider, code, result: dict, run_id: int) -> int:
        """Store (or replace) a prediction; a replaced one's scores go with it."""
        curves = pack(result["curves"]) if result.get("curves") else None
        with self.conn:
            self.conn.execute("DELETE FROM scores WHERE prediction IN (SELECT id FROM predictions WHERE hash=? "
                              "AND predictor=? AND provider=? AND code=?)", (scenario_hash, predictor, provider, code))
            self.conn.execute("DELETE FROM predictions WHERE hash=? AND predictor=? AND provider=? AND code=?",
                              (scenario_hash, predictor, provider, code))
            cur = self.conn.execute(
                "INSERT INTO predictions (hash, predictor, provider, code, status, message, curves, cold_s, warm_s, "
                "run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (scenario_hash, predictor, provider, code, result["status"], result.get("message", ""), curves,
                 result.get("cold_s"), result.get("warm_s"), run_id, time.time()))
        return int(cur.lastrowid)

    _PREDICTION = "id, predictor, provider, code, status, message, curves, cold_s, warm_s"

    def _prediction(self, row) -> dict:
        return {"id": row[0], "predictor": row[1], "provider": row[2], "code": row[3], "status": row[4],
                "message": row[5], "curves": unpack(row[6]) if row[6] else None, "cold_s": row[7], "warm_s": row[8]}

    def get_prediction(self, scenario_hash, predictor, provider, code) -> dict | None:
        row = self.conn.execute(f"SELECT {self._PREDICTION} FROM predictions WHERE hash=? AND predictor=? "
                                "AND provider=? AND code=?", (scenario_hash, predictor, provider, code)).fetchone()
        return None if row is None else self._prediction(row)

    def predictions(self, scenario_hash) -> list[dict]:
        """The newest prediction of each predictor for a scenario."""
        rows = self.conn.execute(f"SELECT {self._PREDICTION} FROM predictions WHERE hash=? ORDER BY created, id",
                                 (scenario_hash,)).fetchall()
        latest = {}
        for row in rows:
            latest[row[1]] = self._prediction(row)
        return list(latest.values())

    def put_score(self, simulation: int, prediction: int, scorer: str, status, message, scores) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
                              (simulation, prediction, scorer, status, message,
                               json.dumps(scores) if scores is not None else None))

    def get_score(self, simulation: int, prediction: int, scorer: str) -> dict | None:
        row = self.conn.execute("SELECT status, message, scores FROM scores WHERE simulation=? AND prediction=? "
                                "AND scorer=?", (simulation, prediction, scorer)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "message": row[1], "scores": json.loads(row[2]) if row[2] else None}
