"""``hdbench report``: a suite's results as a static site that opens from the file system, offline.

Files written to the output folder:

- ``index.html``: the aggregate leaderboard (sortable; ties and coverage), every scenario's ranks
  with the n/a and failure reasons, the finite-size table where ``d`` was swept, and provenance
  (the runs' environment, plugin versions, commit);
- ``scenario-<hash>.html`` per scenario: its spec, its ranks, and interactive curves (one panel per
  observable, each theory over the simulation's band, hover values, a click on a legend entry
  hides or shows a predictor in every panel);
- ``leaderboard.json``: exactly ``hdbench leaderboard --format json --all``; ``data.js`` holds the
  same export (plus the scenario list and provenance) as a script, because a page opened from
  ``file://`` may not read a JSON file; ``curves/<hash>.js``: a scenario's ``report.scenario_curves``;
- ``plotly.min.js``: plotly.js, taken from the ``plotly`` wheel (no CDN: many clusters are offline),
  and ``site.js`` / ``site.css``: the pages' own code, shipped in ``hdbench/assets``.

Every page is built in the browser from these files, so the site and the JSON export cannot disagree.
"""
from __future__ import annotations

import html
import json
import shutil
import time
from importlib import resources
from pathlib import Path

from .errors import InputError
from .report import leaderboard_parts, scenario_curves
from .store import Store

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="site.css"></head>
<body data-page="{page}" data-scenario="{scenario}">
<main id="app"><noscript>This report is drawn by JavaScript; the same data is in leaderboard.json.</noscript></main>
<script src="data.js"></script>{extra}
<script src="site.js"></script>
</body></html>
"""


def _json(value) -> str:
    """Compact JSON; NaN and Infinity stay as the JavaScript globals of those names."""
    return json.dumps(value, default=float, separators=(",", ":"))


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:       # a dependency since the report came; only a broken install lacks it
        raise InputError("hdbench report needs the plotly package (pip install plotly)") from None
    return get_plotlyjs()


def provenance(store: Store, suite: str) -> dict:
    """The suite's runs, newest last, each with its environment (versions, plugins, commit, devices)."""
    runs = [r for r in store.runs() if r["suite"] == suite]
    return {"runs": [{"id": r["id"], "status": r["status"], "started": _when(r["started"]),
                      "finished": _when(r["finished"]), "env": json.loads(r["env"] or "{}")} for r in runs]}


def _when(stamp) -> str | None:
    return None if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(stamp))


def write_site(db, suite: str, out) -> Path:
    """Write the report of ``suite`` (as stored in ``db``, opened read-only) to the folder ``out``;
    returns the path of its ``index.html``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, expected a folder")
    store = Store(db, readonly=True)
    try:
        if suite not in store.suites():
            from .errors import unknown_name
            raise unknown_name("suite in the store", suite, store.suites())
        parts = leaderboard_parts(store, suite, "both")
        export = {part.title: part.rows for part in parts}
        scenarios = []
        curves = {}
        for h, label, spec in store.suite_scenarios(suite):
            has_sim = store.get_simulation(h) is not None
            scenarios.append({"hash": h, "label": label, "spec": spec, "page": f"scenario-{h}.html",
                              "simulated": has_sim})
            if has_sim:
                curves[h] = scenario_curves(store, h)
        data = {"suite": suite, "generated": _when(time.time()), "views": {p.view: p.title for p in parts},
                "export": export, "scenarios": scenarios, "provenance": provenance(store, suite)}
    finally:
        store.close()
    plotly = _plotly_js()
    try:
        (out / "curves").mkdir(parents=True, exist_ok=True)
        (out / "leaderboard.json").write_text(json.dumps(export, indent=1, default=float) + "\n")
        (out / "data.js").write_text(f"window.HDBENCH = {_json(data)};\n")
        for h, c in curves.items():
            (out / "curves" / f"{h}.js").write_text(f"window.HDBENCH_CURVES = {_json(c)};\n")
        (out / "plotly.min.js").write_text(plotly)
        assets = resources.files("hdbench") / "assets"
        for name in ("site.js", "site.css"):
            with resources.as_file(assets / name) as src:
                shutil.copyfile(src, out / name)
        title = html.escape(f"hdbench: suite {suite}")
        (out / "index.html").write_text(PAGE.format(title=title, page="index", scenario="", extra=""))
        for s in scenarios:
            extra = (f'\n<script src="curves/{s["hash"]}.js"></script>\n<script src="plotly.min.js"></script>'
                     if s["simulated"] else "")
            (out / s["page"]).write_text(PAGE.format(title=html.escape(f"{s['label']}: hdbench"), page="scenario",
                                                     scenario=s["hash"], extra=extra))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from None
    return out / "index.html"
