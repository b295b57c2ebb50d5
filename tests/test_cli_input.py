"""Every bad input to every command: one line on stderr naming it, exit code 2, the store untouched."""
import csv
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import hdbench
from conftest import TINY_SUITE, run_cli
from hdbench.store import Store

SUITES = {   # file name -> content (bytes: written as is)
    "latin1.toml": "[suite]\nname = 'caf\xe9'\n".encode("latin-1"),
    "malformed.toml": "[[scenario]\nd = 3\n",
    "suite-not-table.toml": 'suite = "x"\n[[scenario]]\nmodel = "linear"\ndynamics = "sgd"\n',
    "defaults-not-table.toml": 'defaults = 3\n[[scenario]]\nmodel = "linear"\ndynamics = "sgd"\n',
    "scenario-not-tables.toml": "scenario = [1, 2]\n",
    "no-scenario.toml": '[suite]\nname = "x"\n',
    "sweep-not-table.toml": '[[scenario]]\nmodel = "linear"\ndynamics = "sgd"\nsweep = "d"\n',
    "sweep-not-list.toml": '[[scenario]]\nd = 10\nt_max = 1.0\nseeds = 2\nmodel = "linear"\ndynamics = "online-sgd"\n'
                           'sweep = {d = 3}\n',
    "timeout-inf.toml": '[suite]\ntimeout = inf\n[[scenario]]\nd = 50\nt_max = 1.0\nseeds = 2\nmodel = "linear"\n'
                        'dynamics = "online-sgd"\n',
    "timeout-text.toml": '[suite]\ntimeout = "x"\n[[scenario]]\nd = 50\nt_max = 1.0\nseeds = 2\nmodel = "linear"\n'
                         'dynamics = "online-sgd"\n',
    "gamma-huge.toml": '[[scenario]]\nd = 50\nt_max = 1.0\nseeds = 2\nmodel = "linear"\n'
                       'dynamics = { name = "online-sgd", params = { gamma = 1e300 } }\n',
    "d-text.toml": '[[scenario]]\nd = "x"\nmodel = "linear"\ndynamics = "sgd"\n',
    "d-huge.toml": '[[scenario]]\nd = 100000000000\nt_max = 1.0\nseeds = 2\nmodel = "linear"\ndynamics = "online-sgd"\n',
    "unknown-model.toml": '[[scenario]]\nd = 50\nt_max = 1.0\nseeds = 2\nmodel = "lineer"\ndynamics = "online-sgd"\n',
    "unknown-param.toml": '[[scenario]]\nd = 50\nt_max = 1.0\nseeds = 2\nmodel = { name = "linear", params = { sigm = 1 } }\n'
                          'dynamics = "online-sgd"\n',
}

# (command line with {db}, {dir}, {file}, {suite:NAME} placeholders, what the one line must say)
CASES = [
    ("run --suite quik --db {db}", "did you mean 'quick'"),
    ("run --suite {tiny} --predictor lsq-online-odee --db {db}", "did you mean 'lsq-online-ode'"),
    ("run --suite {dir}/missing.toml --db {db}", "does not exist"),
    ("run --suite {dir} --db {db}", "is a directory"),
    *[(f"run --suite {{dir}}/{name} --db {{db}}", needle) for name, needle in [
        ("latin1.toml", "is not UTF-8 text"), ("malformed.toml", "malformed TOML"),
        ("suite-not-table.toml", "expected a [suite] table"), ("defaults-not-table.toml", "expected a [defaults] table"),
        ("scenario-not-tables.toml", "needs at least one [[scenario]] table"),
        ("no-scenario.toml", "needs at least one [[scenario]] table"),
        ("sweep-not-table.toml", "sweep = 'd' is not allowed"), ("sweep-not-list.toml", "sweep.d must be a non-empty list"),
        ("timeout-inf.toml", "[suite] timeout = inf is not allowed"), ("timeout-text.toml", "[suite] timeout = 'x'"),
        ("gamma-huge.toml", "gamma = 1e+300 is not allowed"), ("d-text.toml", "d = 'x'"), ("d-huge.toml", "GiB"),
        ("unknown-model.toml", "did you mean 'linear'"), ("unknown-param.toml", "unknown parameter 'sigm'")]],
    ("run --suite {tiny} --workers -1 --db {db}", "--workers = -1"),
    ("run --suite {tiny} --workers x --db {db}", "argument --workers: invalid int value"),
    ("run --suite {tiny} --workers 100000 --db {db}", "--workers = 100000 is not allowed"),
    ("run --suite {tiny} --timeout inf --db {db}", "--timeout = inf"),
    ("run --suite {tiny} --timeout nan --db {db}", "--timeout = nan"),
    ("run --suite {tiny} --timeout 0 --db {db}", "--timeout = 0"),
    ("run --suite {tiny} --scheduler foo --db {db}", "--scheduler foo: cannot connect"),
    ("run --suite {tiny} --scheduler tcp://host:notaport --db {db}", "--scheduler tcp://host:notaport"),
    ("run --suite {tiny} --db {dir}", "is a directory"),
    ("run --suite {tiny} --db {file}/r.sqlite", "cannot be created"),
    ("run --suite {tiny} --db {corrupt}", "not a usable hdbench store"),
    ("run --suite {tiny} --db {file}", "not a usable hdbench store"),
    ("run --suite {tiny} --db {db} --format nope", "argument --format: invalid choice"),
    ("runn", "invalid choice: 'runn'"),
    ("", "the following arguments are required: command"),
    ("list --format csv", "argument --format: invalid choice"),
    ("leaderboard --db {dir}/missing.sqlite", "does not exist (run hdbench run first)"),
    ("leaderboard --db {empty}", "holds no runs yet"),
    ("leaderboard --db {db} --suite nope", "unknown suite in the store 'nope'"),
    ("leaderboard --db {corrupt}", "database disk image is malformed"),
    ("leaderboard --db {file}", "not a usable hdbench store"),
    ("leaderboard --db {db} --view nope", "argument --view: invalid choice"),
    ("plot nope --db {db}", "scenario 'nope' matches no stored scenario"),
    ("plot 'online g0.5' --db {db} --out {dir}/p.pdf", "expected a .png or .svg file name"),
    ("plot 'online g0.5' --db {db} --out {dir}", "expected a .png or .svg file name"),
    ("plot 'online g0.5' --db {db} --out {file}/p.png", "cannot be written"),
    ("plot 'online g0.5' --db {dir}/missing.sqlite", "does not exist"),
    ("plot 'online g0.5' --db {corrupt}", "database disk image is malformed"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A finished store (checkpointed, so all of it is in one file), an empty one and a damaged one."""
    root = tmp_path_factory.mktemp("stores")
    tiny = root / "tiny.toml"
    tiny.write_text(TINY_SUITE)
    good = root / "good.sqlite"
    hdbench.run_suite(tiny, predictors=["lsq-online-ode"], db=good, workers=0)
    _checkpoint(good)
    Store(root / "empty.sqlite").close()
    _checkpoint(root / "empty.sqlite")
    damaged = bytearray(good.read_bytes())      # the header and first pages intact, the later ones garbage
    span = len(damaged) - 100 - len(damaged) // 2
    damaged[len(damaged) // 2:-100] = (bytes(range(256)) * (span // 256 + 1))[:span]
    (root / "corrupt.sqlite").write_bytes(bytes(damaged))
    return root


def _checkpoint(db):
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


def _digest(folder: Path) -> dict:
    """Every file's bytes; WAL side files only where they hold data (a reader may leave them empty)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not (path.name.endswith(("-shm", "-wal")) and path.stat().st_size == 0):
            if not path.name.endswith("-shm"):      # SQLite's shared-memory index: no data
                out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("line,needle", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(stores, tmp_path, line, needle):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("good.sqlite", "empty.sqlite", "corrupt.sqlite"):
        shutil.copy(stores / name, work / name)
    for name, content in SUITES.items():
        path = work / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (work / "tiny.toml").write_text(TINY_SUITE)
    (work / "afile").write_text("not a database\n")
    before = _digest(work)
    args = shlex.split(line.format(db=work / "good.sqlite", dir=work, file=work / "afile", tiny=work / "tiny.toml",
                                   corrupt=work / "corrupt.sqlite", empty=work / "empty.sqlite"))
    out = run_cli(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (args, out.stderr[-2000:])
    assert len(lines) == 1 and needle in lines[0], lines
    assert out.stdout == ""
    assert _digest(work) == before


def test_a_store_is_viewed_read_only(stores, tmp_path):
    """leaderboard and plot open the store read-only: nothing in its folder changes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(stores / "good.sqlite", folder / "good.sqlite")
    before = _digest(folder)
    os.chmod(folder / "good.sqlite", 0o444)
    os.chmod(folder, 0o555)
    try:
        board = run_cli("leaderboard", "--db", folder / "good.sqlite", "--format", "csv")
        assert board.returncode == 0 and "lsq-online-ode" in board.stdout, board.stderr
        png = tmp_path / "p.png"
        plot = run_cli("plot", "online g0.5", "--db", folder / "good.sqlite", "--out", png)
        assert plot.returncode == 0 and png.exists(), plot.stderr
    finally:
        os.chmod(folder, 0o755)
    assert _digest(folder) == before


def test_a_closed_pipe_ends_quietly(stores):
    """``hdbench leaderboard | head``: exit code 0 and nothing on stderr."""
    db = shlex.quote(str(stores / "good.sqlite"))
    for fmt in ("table", "csv", "json"):
        shell = subprocess.run(f"{shlex.quote(sys.executable)} -m hdbench leaderboard --db {db} --format {fmt} "
                               "| head -c 10 > /dev/null; exit ${PIPESTATUS[0]}",
                               shell=True, executable="/bin/bash", capture_output=True, text=True)
        assert (shell.returncode, shell.stderr) == (0, ""), fmt


def test_version_is_the_installed_distributions():
    from importlib.metadata import version
    out = run_cli("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"hdbench {version('hdbench')}"), out.stderr


def test_na_rows_collapse_to_a_count_unless_all(stores):
    """The terminal and markdown show a scenario's n/a predictors as one counted row; ``--all`` lists
    each with its reason; csv keeps every row whatever the flag."""
    db = stores / "good.sqlite"
    short = run_cli("leaderboard", "--db", db, "--format", "markdown", "--view", "scenarios")
    full = run_cli("leaderboard", "--db", db, "--format", "markdown", "--view", "scenarios", "--all")
    csv_rows = run_cli("leaderboard", "--db", db, "--format", "csv", "--view", "scenarios")
    assert short.returncode == full.returncode == csv_rows.returncode == 0, (short.stderr, full.stderr)
    reasons = [line for line in full.stdout.splitlines() if "| n/a: " in line]
    counted = re.findall(r"\| (\d+) predictors? n/a \|", short.stdout)
    assert reasons and "| n/a: " not in short.stdout
    assert sum(map(int, counted)) == len(reasons)
    tidy = list(csv.DictReader(io.StringIO(csv_rows.stdout)))
    assert len({(r["scenario"], r["predictor"]) for r in tidy if r["status"] == "n/a"}) == len(reasons)


def test_list_shows_each_models_observables():
    out = run_cli("list", "--format", "json")
    models = {m["name"]: m for m in json.loads(out.stdout)["model"]}
    linear = models["linear"]["observables"]
    assert linear["online"]["all"][:4] == ["risk", "D", "m", "q"] and "train_risk" in linear["finite data"]["all"]
    assert "train_risk" not in linear["online"]["all"]
    table = run_cli("list", env={"COLUMNS": "200"}).stdout
    assert "finite data adds train_risk*" in table
