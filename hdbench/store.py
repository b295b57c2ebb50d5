"""SQLite result store (default ``./.hdbench/results.sqlite``), schema-versioned.

Tables: ``runs`` (with the environment), ``scenarios`` and ``suite_members``, ``simulations``
(cache keyed by scenario hash + engine version), ``predictions`` (keyed by scenario hash, predictor
and its provider ``dist version``) with their ``scores`` per engine version. Arrays are stored as
``.npz`` blobs. Every write is its own transaction, so a killed run loses at most the item in flight;
the client process is the only writer.
"""
from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from .errors import InputError

SCHEMA_VERSION = 1
DEFAULT_DB = Path(".hdbench") / "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, started REAL,
    finished REAL, status TEXT, env TEXT);
CREATE TABLE IF NOT EXISTS scenarios (hash TEXT PRIMARY KEY, label TEXT, spec TEXT);
CREATE TABLE IF NOT EXISTS suite_members (suite TEXT, hash TEXT, position INTEGER,
    PRIMARY KEY (suite, hash));
CREATE TABLE IF NOT EXISTS simulations (hash TEXT, engine TEXT, times BLOB, per_seed BLOB,
    diverged_at BLOB, compile_s REAL, run_s REAL, run_id INTEGER, created REAL,
    PRIMARY KEY (hash, engine));
CREATE TABLE IF NOT EXISTS predictions (hash TEXT, predictor TEXT, provider TEXT, status TEXT,
    message TEXT, curves BLOB, cold_s REAL, warm_s REAL, run_id INTEGER, created REAL,
    PRIMARY KEY (hash, predictor, provider));
CREATE TABLE IF NOT EXISTS scores (hash TEXT, predictor TEXT, provider TEXT, engine TEXT,
    status TEXT, message TEXT, scores TEXT, PRIMARY KEY (hash, predictor, provider, engine));
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
            raise InputError(f"--db {self.path} has schema version {row[0]}; this hdbench reads "
                             f"version {SCHEMA_VERSION} (use a new --db path)")

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
    def put_simulation(self, scenario_hash: str, engine: str, sim: dict, run_id: int) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO simulations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (scenario_hash, engine, pack({"t": sim["times"]}), pack(sim["per_seed"]),
                               pack({"d": sim["diverged_at"]}), sim["compile_s"], sim["run_s"], run_id, time.time()))

    def get_simulation(self, scenario_hash: str, engine: str) -> dict | None:
        row = self.conn.execute("SELECT times, per_seed, diverged_at, compile_s, run_s FROM simulations "
                                "WHERE hash=? AND engine=?", (scenario_hash, engine)).fetchone()
        if row is None:
            return None
        return {"times": unpack(row[0])["t"], "per_seed": unpack(row[1]),
                "diverged_at": unpack(row[2])["d"], "compile_s": row[3], "run_s": row[4]}

    # -- predictions and scores -------------------------------------------------------------------
    def put_prediction(self, scenario_hash, predictor, provider, result: dict, run_id: int) -> None:
        curves = pack(result["curves"]) if result.get("curves") else None
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (scenario_hash, predictor, provider, result["status"], result.get("message", ""),
                               curves, result.get("cold_s"), result.get("warm_s"), run_id, time.time()))

    def get_prediction(self, scenario_hash, predictor, provider) -> dict | None:
        row = self.conn.execute("SELECT status, message, curves, cold_s, warm_s FROM predictions "
                                "WHERE hash=? AND predictor=? AND provider=?",
                                (scenario_hash, predictor, provider)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "message": row[1], "curves": unpack(row[2]) if row[2] else None,
                "cold_s": row[3], "warm_s": row[4]}

    def predictions(self, scenario_hash) -> list[dict]:
        """The latest prediction of each predictor for a scenario (newest provider wins)."""
        rows = self.conn.execute("SELECT predictor, provider, status, message, curves, cold_s, warm_s, created "
                                 "FROM predictions WHERE hash=? ORDER BY created", (scenario_hash,)).fetchall()
        latest = {}
        for r in rows:
            latest[r[0]] = {"predictor": r[0], "provider": r[1], "status": r[2], "message": r[3],
                            "curves": unpack(r[4]) if r[4] else None, "cold_s": r[5], "warm_s": r[6]}
        return list(latest.values())

    def put_score(self, scenario_hash, predictor, provider, engine, status, message, scores) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (scenario_hash, predictor, provider, engine, status, message,
                               json.dumps(scores) if scores is not None else None))

    def get_score(self, scenario_hash, predictor, provider, engine) -> dict | None:
        row = self.conn.execute("SELECT status, message, scores FROM scores WHERE hash=? AND predictor=? "
                                "AND provider=? AND engine=?", (scenario_hash, predictor, provider, engine)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "message": row[1], "scores": json.loads(row[2]) if row[2] else None}
