"""SQLite result store (default ``./.hdbench/results.sqlite``), schema-versioned.

Tables: ``runs`` (with the environment), ``scenarios`` and ``suite_members``, ``simulations`` (cache
keyed by scenario hash + the fingerprint of the code that simulated it: engine, model, dynamics),
``predictions`` (keyed by scenario hash, predictor, its provider ``dist version (plugin)`` and the
fingerprint of its code) and their ``scores`` (per simulation, prediction and scorer fingerprint).
See ``hdbench.fingerprint``. Arrays are stored as ``.npz`` blobs. Every write is its own
transaction, so a killed run loses at most the item in flight; the client process is the only writer.
"""
from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from .errors import InputError

SCHEMA_VERSION = 2
DEFAULT_DB = Path(".hdbench") / "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, started REAL,
    finished REAL, status TEXT, env TEXT);
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


def pack(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def unpack(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob)) as data:
        return {k: data[k] for k in data.files}


class Store:
    def __init__(self, path=DEFAULT_DB):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise InputError(f"--db {self.path} is a directory, expected a SQLite file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            with self.conn:
                self.conn.executescript(SCHEMA)
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path} is not a usable SQLite database ({exc})") from None
        if row is not None and int(row[0]) != SCHEMA_VERSION:
            raise InputError(f"--db {self.path} has schema version {row[0]}; this hdbench reads version "
                             f"{SCHEMA_VERSION}, which keys results by the code that made them (use a new --db path)")

    def close(self):
        self.conn.close()

    # -- runs and suites ------------------------------------------------------------------------
    def begin_run(self, suite: str, env: dict) -> int:
        with self.conn:
            cur = self.conn.execute("INSERT INTO runs (suite, started, status, env) VALUES (?, ?, 'running', ?)",
                                    (suite, time.time(), json.dumps(env)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))

    def runs(self) -> list[dict]:
        rows = self.conn.execute("SELECT id, suite, started, finished, status, env FROM runs ORDER BY id")
        return [dict(zip(("id", "suite", "started", "finished", "status", "env"), r)) for r in rows]

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
