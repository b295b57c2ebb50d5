"""Command line: ``hdbench list | run | leaderboard | plot | report | check``. Bad input: one line, exit code 2."""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys

from .errors import InputError, PluginError
from .store import DEFAULT_DB

FORMATS = ("table", "markdown", "csv", "json")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``hdbench run: error: ...``) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    """The installed distribution's version (the source's ``__version__`` where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("hdbench")
    except PackageNotFoundError:
        from . import __version__
        return __version__


def _parser():
    p = _Parser(prog="hdbench", description="Benchmark theories of high-dimensional "
                "learning dynamics against finite-d simulations.")
    p.add_argument("--version", action="version", version=f"hdbench {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="models, dynamics, predictors and suites, with their plugins")
    ls.add_argument("--format", choices=("table", "json"), default="table")

    run = sub.add_parser("run", help="simulate, predict, score and store a suite; print its leaderboard")
    run.add_argument("--suite", default="quick", help="built-in suite name or a TOML file (default: quick)")
    run.add_argument("--predictor", action="append", dest="predictors", metavar="NAME",
                     help="only this predictor (repeatable; default: all)")
    run.add_argument("--workers", type=int, default=1,
                     help="worker processes that run the plugins' code, isolated from the run (default 1; "
                          "0 = in this process, for debuggers: a plugin's crash or hang is then the run's)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    run.add_argument("--db", default=str(DEFAULT_DB), help=f"result store (default {DEFAULT_DB})")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds per predict call (default: the suite's [suite] timeout, else 60)")
    run.add_argument("--format", choices=FORMATS, default="table", help="leaderboard format")
    run.add_argument("--all", action="store_true", dest="show_all",
                     help="every n/a row with its reason, and every column (default: a count per scenario; "
                          "the table's compact columns)")
    run.add_argument("--report", default=None, metavar="DIR",
                     help="also write the HTML report to this folder (as hdbench report --out DIR)")

    lb = sub.add_parser("leaderboard", help="rank predictors from the store")
    lb.add_argument("--suite", default=None, help="suite name (default: the latest run's)")
    lb.add_argument("--format", choices=FORMATS, default="table")
    lb.add_argument("--all", action="store_true", dest="show_all",
                    help="every n/a row with its reason, and every column (default: a count per scenario; "
                          "the table's compact columns)")
    lb.add_argument("--db", default=str(DEFAULT_DB), help=f"result store, opened read-only (default {DEFAULT_DB})")
    lb.add_argument("--view", choices=("both", "scenarios", "suite", "finite-size"), default="both",
                    help="both = per scenario and aggregate (plus, where d was swept, each theory against "
                         "the simulation extrapolated to d = infinity)")

    pl = sub.add_parser("plot", help="theory curves over the simulation's 95%% band, one panel per observable")
    pl.add_argument("scenario", help="scenario hash (prefix) or label, as in the leaderboard")
    pl.add_argument("--out", default=None, help="output .png or .svg (default: <hash>.png)")
    pl.add_argument("--db", default=str(DEFAULT_DB), help=f"result store, opened read-only (default {DEFAULT_DB})")

    ck = sub.add_parser("check", help="run the plugin contract's checks on one installed plugin (for plugin authors)")
    ck.add_argument("name", metavar="NAME", help="a distribution (e.g. my-theory), an entry-point or a component name")

    rp = sub.add_parser("report", help="write a suite's results as a static HTML site that opens offline")
    rp.add_argument("--out", required=True, metavar="DIR", help="folder to write (open DIR/index.html)")
    rp.add_argument("--suite", default=None, help="suite name (default: the latest run's)")
    rp.add_argument("--db", default=str(DEFAULT_DB), help=f"result store, opened read-only (default {DEFAULT_DB})")
    return p


def entry() -> None:
    """The ``hdbench`` command: ``main``'s exit code."""
    sys.exit(main())


def _reader_gone() -> int:
    """stdout's reader went away (``hdbench leaderboard | head -1``): not an error; stop writing quietly."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = {"list": cmd_list, "run": cmd_run, "leaderboard": cmd_leaderboard, "plot": cmd_plot,
                "report": cmd_report, "check": cmd_check}[args.command](args)
        sys.stdout.flush()          # a closed pipe shows here, not at exit
        return code
    except (InputError, PluginError) as exc:
        print(f"hdbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hdbench: interrupted; finished items are stored, run the same command again to resume",
              file=sys.stderr)
        return 130
    except sqlite3.DatabaseError as exc:      # e.g. a store damaged past its first pages
        print(f"hdbench {args.command}: error: the result store failed: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()


def model_observables(cls) -> dict:
    """A model's observables at its default parameters, online and on finite data, with the headline
    ones (``{}`` where its defaults are not a valid model)."""
    try:
        p = cls.validate({})
        model = cls()
        return {kind: {"all": list(model.observable_names(p, finite)),
                       "headline": list(model.headline_observables(p, finite))}
                for kind, finite in (("online", False), ("finite data", True))}
    except Exception:   # noqa: BLE001 - a plugin's defaults; list shows what it can
        return {}


def _observables_cell(obs: dict) -> str:
    if not obs:
        return "(set by its parameters)"
    online, finite = obs["online"], obs["finite data"]
    mark = lambda names, headline: ", ".join(n + ("*" if n in headline else "") for n in names)   # noqa: E731
    extra = [n for n in finite["all"] if n not in online["all"]]
    return mark(online["all"], online["headline"]) + (f"; finite data adds {mark(extra, finite['headline'])}"
                                                      if extra else "")


def cmd_list(args) -> int:
    from .registry import registry
    from .suite import builtin_suites
    reg = registry()
    if args.format == "json":
        out = {kind: [{"name": e.name, "provider": e.provider, "description": e.cls.description,
                       **({"observables": model_observables(e.cls)} if kind == "model" else {})}
                      for e in sorted(entries.values(), key=lambda e: e.name)]
               for kind, entries in reg.entries.items()}
        out["failures"] = [{"plugin": f.plugin, "dist": f.dist, "error": f.error} for f in reg.failures]
        out["suites"] = builtin_suites()
        print(json.dumps(out, indent=1))
        return 0
    from rich.table import Table

    from .report import terminal
    console = terminal()
    for kind, title in (("model", "Models"), ("dynamics", "Dynamics"), ("predictor", "Predictors")):
        table = Table(title=title, title_justify="left")
        cols = ["name", "plugin (distribution version)", "description"]
        if kind == "model":
            cols.append("observables at the defaults (* headline: ranked on)")
        for col in cols:
            table.add_column(col, overflow="fold")
        for e in sorted(reg.entries[kind].values(), key=lambda e: e.name):
            extra = [_observables_cell(model_observables(e.cls))] if kind == "model" else []
            table.add_row(e.name, e.provider, e.cls.description, *extra)
        console.print(table)
    if reg.failures:
        table = Table(title="Plugins that failed to load", title_justify="left")
        for col in ("plugin", "distribution", "error"):
            table.add_column(col, overflow="fold")
        for f in reg.failures:
            table.add_row(f.plugin, f.dist, f.error)
        console.print(table)
    console.print("Suites: " + ", ".join(builtin_suites()))
    return 0


def cmd_run(args) -> int:
    from rich.console import Console

    from .progress import RunProgress
    from .runner import run_suite
    if args.report is not None:
        _check_folder(args.report)
    console = Console(stderr=True)
    progress = RunProgress(console)       # started by run_suite once the input is checked
    try:
        report = run_suite(args.suite, predictors=args.predictors, db=args.db, workers=args.workers,
                           scheduler=args.scheduler, timeout=args.timeout, progress=progress)
    finally:
        progress.stop()
    console.print(f"run {report.run_id} ({report.suite}): {report.scenarios} scenarios, "
                  f"{report.simulated} simulated + {report.cached_simulations} cached, "
                  f"{report.predicted} predictions + {report.reused_predictions} reused, "
                  f"{report.not_applicable} n/a, {report.failed} failed, {report.wall_s:.1f} s; store {report.db}")
    for error in report.errors:
        console.print(f"[red]{error}[/red]")
    show_leaderboard(args.db, report.suite, args.format, "both", args.show_all)
    if args.report is not None:
        from .site import write_site
        console.print(f"report: {write_site(args.db, report.suite, args.report)}")
    return 0


def cmd_leaderboard(args) -> int:
    show_leaderboard(args.db, _stored_suite(args.db, args.suite), args.format, args.view, args.show_all)
    return 0


def cmd_check(args) -> int:
    """Exit code 0 if every check passes, 1 if one fails (2: NAME is not installed)."""
    from . import conformance
    from .registry import registry
    return conformance.run(registry(), args.name, write=lambda line: print(line, flush=True))


def cmd_report(args) -> int:
    from .site import write_site
    _check_folder(args.out)
    print(write_site(args.db, _stored_suite(args.db, args.suite), args.out))
    return 0


def _stored_suite(db, suite):
    """``suite`` if the store holds it; None: the latest run's."""
    from .store import Store
    store = Store(db, readonly=True)
    try:
        if suite is None:
            runs = store.runs()
            if not runs:
                raise InputError(f"--db {db} holds no runs yet (run hdbench run first)")
            return runs[-1]["suite"]
        if suite not in store.suites():
            from .errors import unknown_name
            raise unknown_name("suite in the store", suite, store.suites())
        return suite
    finally:
        store.close()


def show_leaderboard(db, suite, fmt, view, show_all=False) -> None:
    """Print the leaderboard; n/a rows collapse to a count per scenario in the human formats (table,
    markdown) unless ``show_all``, and the table has the compact columns; csv and json always hold
    every row."""
    from .report import leaderboard_parts, render, tidy_csv
    from .store import Store
    store = Store(db, readonly=True)
    parts = leaderboard_parts(store, suite, view, collapse_na=fmt in ("table", "markdown") and not show_all,
                              compact=fmt == "table" and not show_all)
    store.close()
    if fmt == "json":
        print(json.dumps({part.title: part.rows for part in parts}, indent=1, default=float))
        return
    if fmt == "csv":
        sys.stdout.write(tidy_csv(parts))
        return
    for part in parts:
        text = render(part.head, part.body, fmt, part.title, group=part.group)
        if text is not None:
            print(text)


def cmd_plot(args) -> int:
    from .report import plot
    from .store import Store
    out = args.out
    if out is not None and not out.endswith((".png", ".svg")):
        raise InputError(f"--out {out}: expected a .png or .svg file name")
    store = Store(args.db, readonly=True)
    h, _, _ = store.find_scenario(args.scenario)
    out = out or f"{h}.png"
    _check_writable(out)
    from pathlib import Path
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        print(plot(store, args.scenario, out))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from None
    return 0


def _check_folder(path) -> None:
    """An output folder that cannot be made or written is bad input, found before any work."""
    from pathlib import Path
    if Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"--out {path} is a file, expected a folder")
    _check_creatable(Path(path), path)


def _check_writable(path) -> None:
    """An output path that cannot be written is bad input, found before any work."""
    from pathlib import Path
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--out {path} is a directory, expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"--out {path}: cannot be written (check the folder and its permissions)")
    _check_creatable(path.parent, path)


def _check_creatable(folder, shown) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable folder (``shown``: the --out value)."""
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"--out {shown}: cannot be written (check the folder and its permissions)")


if __name__ == "__main__":
    sys.exit(main())
