"""Leaderboards (from the store alone) and plots; the rules are in ``docs/scoring.md``.

Per scenario: each predictor's headline ``err/floor`` (its worst headline observable's sup error in
units of that observable's noise floor), that observable's ``error`` (``± u``: a Monte-Carlo theory's
own uncertainty on the same scale) and noise floor, the worst z-score, cold/warm wall time and the
speed-up over the simulation; ranks with ties from ``hdbench.rank`` (partial predictors after complete
ones, failures last); "n/a: reason" and "failed: message" rows where that is what happened.
Per suite: ``hdbench.rank.rank_suite`` (Borda score and mean rank with the ranges the noise allows,
wins/ties/losses, coverage, failures).
Per d-sweep: every predictor scored against the simulation extrapolated to d = infinity, and whether
its residual at the largest d is a finite-size effect or a wrong limit.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import NamedTuple

import numpy as np

from .errors import InputError
from .fingerprint import scorer_code
from .rank import rank_scenario, rank_suite
from .score import Reference, ScoreError, limit_weights, model_conventions, score, seed_statistic, within_noise
from .store import Store

BAND = 0.95      # the plots' simulation band: a Student-t interval for the seeds' count
WRAPPED = {"scenario", "scenarios", "err/floor", "verdict", "d"}   # columns that may wrap
LABEL_WIDTH = 26   # the terminal table's scenario names: longer ones continue on their n/a line


def _scenario(spec):
    """The stored spec as a Scenario, or None when its plugins are no longer installed."""
    from .scenario import Scenario
    try:
        return Scenario.from_dict(spec)
    except InputError:
        return None


def _simulation(rec, spec):
    from .simulate import Simulation
    scenario = _scenario(spec)
    if scenario is None:
        return Reference.of(rec)
    return Simulation(scenario, rec["times"], rec["per_seed"], rec["diverged_at"], rec["compile_s"], rec["run_s"])


def _score_of(store, scorer, sim_rec, sim, pred) -> dict:
    """The stored score, or (a store written by another scorer) the same computed now, not stored."""
    stored = store.get_score(sim_rec["id"], pred["id"], scorer)
    if stored is not None:
        return stored
    from .runner import score_prediction
    return score_prediction(sim, pred, sim_rec["run_s"], sim_rec["compile_s"])


def scenario_rows(store: Store, suite: str) -> list[dict]:
    rows = []
    scorer = scorer_code()
    for h, label, spec in store.suite_scenarios(suite):
        sim_rec = store.get_simulation(h)
        sim = _simulation(sim_rec, spec) if sim_rec is not None else None
        block = []
        for pred in store.predictions(h):
            row = {"scenario": label, "hash": h, "predictor": pred["predictor"], "provider": pred["provider"],
                   "code": pred["code"]}
            if pred["status"] != "ok":
                row.update(status=pred["status"], message=pred["message"])
            elif sim is None:
                row.update(status="pending", message="no simulation yet")
            else:
                sc = _score_of(store, scorer, sim_rec, sim, pred)
                row.update(status=sc["status"], message=sc["message"], **(sc["scores"] or {}))
                if sc["status"] == "ok":
                    row["within_noise"] = within_noise(sc["scores"])
            block.append(row)
        rank_scenario(block)
        ranked = sorted((r for r in block if "rank" in r), key=lambda r: (r["rank"], r.get("ratio", np.inf), r["predictor"]))
        rows += ranked + sorted((r for r in block if "rank" not in r), key=lambda r: r["predictor"])
    return rows


def suite_rows(store: Store, suite: str) -> list[dict]:
    return rank_suite(scenario_rows(store, suite), len(store.suite_scenarios(suite)))


# -- d -> infinity -----------------------------------------------------------------------------------
def _extrapolate_curves(curves_by_d, weights):
    """A predictor's curves at d = infinity: the same intercept weights as the reference (a theory
    that does not depend on d is unchanged); ``unc(NAME)`` combined in quadrature."""
    names = set.intersection(*(set(c) for c in curves_by_d))
    out = {}
    for name in names:
        stack = np.stack([np.asarray(c[name], float) for c in curves_by_d])
        if name.startswith("unc("):
            out[name] = np.sqrt(np.einsum("k,kt->t", weights**2, np.nan_to_num(stack, posinf=0.0) ** 2))
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            value = np.einsum("k,kt->t", weights, stack)
        bad = ~np.isfinite(stack).all(axis=0)            # a divergence at any d: inf from there on
        value[np.maximum.accumulate(bad)] = np.inf
        out[name] = value
    return out


def sweep_groups(store: Store, suite: str) -> list[tuple[str, list[str]]]:
    """``(family label, scenario hashes sorted by d)`` for scenarios equal but for ``d`` (two or more d)."""
    groups, labels = {}, {}
    for h, label, spec in store.suite_scenarios(suite):
        key = json.dumps({k: v for k, v in spec.items() if k not in ("d", "name")}, sort_keys=True)
        groups.setdefault(key, []).append((spec["d"], h))
        labels.setdefault(key, re.sub(r",? ?\bd=\d+", "", label).replace("[]", "").strip())
    return [(labels[k], [h for _, h in sorted(v)]) for k, v in groups.items() if len({d for d, _ in v}) >= 2]


def limit_rows(store: Store, suite: str, rows=None) -> list[dict]:
    """Per d-sweep and predictor: err/floor at each d, and against the simulation extrapolated to
    d = infinity (fit ``a + b/d`` at each time), with the verdict on its residual:
    "within noise" (at the largest d and at infinity), "finite-size effect" (off at the largest d,
    within noise at infinity) or "wrong limit" (off at infinity). ``rows``: the suite's
    ``scenario_rows`` if already computed."""
    specs = {h: spec for h, _, spec in store.suite_scenarios(suite)}
    by_hash = {}
    for r in rows if rows is not None else scenario_rows(store, suite):
        by_hash.setdefault(r["hash"], {})[r["predictor"]] = r
    out = []
    for family, hashes in sweep_groups(store, suite):
        recs = [store.get_simulation(h) for h in hashes]
        if any(rec is None for rec in recs):
            continue
        ds = [specs[h]["d"] for h in hashes]
        try:
            reference = Reference.extrapolated([_simulation(rec, specs[h]) for rec, h in zip(recs, hashes)], ds)
        except ScoreError as exc:
            out.append({"family": family, "predictor": "", "d": ds, "message": str(exc)})
            continue
        weights = limit_weights(ds)
        names = sorted({p for h in hashes for p, r in by_hash.get(h, {}).items() if r["status"] == "ok"})
        for name in names:
            rows = [by_hash.get(h, {}).get(name, {}) for h in hashes]
            row = {"family": family, "predictor": name, "d": ds,
                   "ratios": [r.get("ratio") for r in rows], "largest_d_within_noise": rows[-1].get("within_noise")}
            if any(r.get("status") != "ok" for r in rows):
                row["message"] = "not scored at every d"
                out.append(row)
                continue
            curves = [{p["predictor"]: p for p in store.predictions(h)}[name]["curves"] for h in hashes]
            try:
                result = score(reference, _extrapolate_curves(curves, weights))
            except ScoreError as exc:
                row["message"] = str(exc)
                out.append(row)
                continue
            row.update(ratio_inf=result["ratio"], error_inf=result["error"], z_inf=result["z_max"],
                       worst_inf=result["worst_observable"], within_noise_inf=within_noise(result))
            row["verdict"] = ("wrong limit" if not row["within_noise_inf"] else
                              "within noise" if row["largest_d_within_noise"] else "finite-size effect")
            out.append(row)
    return out


# -- rendering -----------------------------------------------------------------------------------
def _fmt(x, spec=".3g"):
    return "" if x is None else format(x, spec)


def _speedup_cell(r):
    """``>=`` where the predict was not repeated: its one timed call includes compilation."""
    return (">=" if r.get("speedup_bound") else "") + _fmt(r["speedup"], ".3g") + "x"


def _rank_cell(r):
    return "" if "rank" not in r else f"{r['rank']}{'=' if r.get('tied') else ''}"


def _predictor_cell(r):
    if r.get("status") == "ok" and not r["complete"]:
        return f"{r['predictor']} (partial: no {', '.join(r['missing'])})"
    return r["predictor"]


def scenario_table(rows, collapse_na=False):
    """One row per (scenario, predictor); with ``collapse_na`` a scenario's n/a rows become one row
    counting them (their reasons are in ``--all``, csv and json)."""
    head = ["scenario", "rank", "predictor", "err/floor", "error", "noise floor", "worst", "worst z", "cold s",
            "warm s", "speed-up"]
    body = []
    not_applicable = {}
    for r in rows:
        if collapse_na and r["status"] == "n/a":
            not_applicable[r["scenario"]] = not_applicable.get(r["scenario"], 0) + 1
            continue
        if r["status"] == "ok":
            error = _fmt(r["error"]) + ("" if r.get("uncertainty") is None else f" ± {r['uncertainty']:.2g}")
            body.append([r["scenario"], _rank_cell(r), _predictor_cell(r), _fmt(r["ratio"], ".2f"), error,
                         _fmt(r["noise_floor"]), r["worst_observable"], _fmt(r["z_max"], ".2g"),
                         _fmt(r["cold_s"], ".2g"), _fmt(r["warm_s"], ".2g"), _speedup_cell(r)])
        else:
            body.append([r["scenario"], _rank_cell(r), r["predictor"], f"{r['status']}: {r['message']}",
                         "", "", "", "", "", "", ""])
    if not_applicable:                  # after each scenario's own rows (the scenarios stay grouped)
        order = list(dict.fromkeys(r["scenario"] for r in rows))
        for name, count in not_applicable.items():
            last = max((i for i, b in enumerate(body) if b[0] == name), default=None)
            row = [name, "", f"{count} predictor{'s' if count > 1 else ''} n/a", "(--all: why)"] + [""] * 7
            if last is None:            # nothing else ran on it: in its place in the suite
                later = [i for i, b in enumerate(body) if order.index(b[0]) > order.index(name)]
                body.insert(later[0] if later else len(body), row)
            else:
                body.insert(last + 1, row)
    return head, body


COMPACT_ROWS = 4      # the terminal shows a scenario's best predictors; the others fold into one row


def compact_table(rows):
    """The terminal's per-scenario table: fewer columns (the rest are in markdown, csv, json and the
    report), each scenario's name on its first row and its count of n/a predictors on the second.
    Beyond ``COMPACT_ROWS`` a scenario's lower-ranked scored predictors fold into one row (their
    count and err/floor range); failures and timeouts are always shown."""
    head = ["scenario", "rank", "predictor", "err/floor", "worst", "worst z", "solve s", "speed-up"]
    body = []
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]
        shown = [r for r in mine if r["status"] != "n/a"]
        count = len(mine) - len(shown)
        scored = [r for r in shown if r["status"] == "ok"]
        folded = scored[COMPACT_ROWS - 1:] if len(scored) > COMPACT_ROWS else []
        if folded:      # in the place of the first folded row: after the better ones, before failures
            at = next(i for i, r in enumerate(shown) if r is folded[0])
            shown = [r for r in shown[:at]] + [{"status": "folded", "rows": folded}] + \
                [r for r in shown[at:] if not any(r is f for f in folded)]
        first, rest = _split_label(name)
        what = " ".join(filter(None, [rest, f"({count} n/a)" if count else ""]))
        if not shown:
            body.append([name, "", f"{count} predictor{'s' if count > 1 else ''} n/a"] + [""] * 5)
            continue
        for i, r in enumerate(shown):
            label = first if i == 0 else what if i == 1 else ""
            if i == 0 and len(shown) == 1 and what:
                label = f"{first}\n{what}"
            if r["status"] == "folded":
                ratios = [f["ratio"] for f in r["rows"]]
                body.append([label, "", f"+{len(ratios)} more", f"{min(ratios):.2f}-{max(ratios):.2f}"] + [""] * 4)
                continue
            if r["status"] != "ok":
                body.append([label, _rank_cell(r), r["predictor"], f"{r['status']}: {r['message']}"] + [""] * 4)
                continue
            solve = r["cold_s"] if r["warm_s"] is None else r["warm_s"]
            body.append([label, _rank_cell(r), r["predictor"] + ("" if r["complete"] else " (partial)"),
                         _fmt(r["ratio"], ".2f"), r["worst_observable"], _fmt(r["z_max"], ".2g"), _fmt(solve, ".2g"),
                         _speedup_cell(r)])
    return head, body


def _split_label(name: str, width: int = LABEL_WIDTH) -> tuple[str, str]:
    """A long scenario name as two lines, split at the last space that keeps the first within
    ``width`` (a sweep's tag and the n/a count share the second, which a scenario has anyway)."""
    if len(name) <= width or " " not in name[1:width + 1]:
        return name, ""
    cut = name.rindex(" ", 0, width + 1)
    return name[:cut], name[cut + 1:]


def suite_table(rows):
    head = ["rank", "predictor", "borda [range]", "mean rank [range]", "wins/ties/losses", "median err/floor",
            "coverage", "failed"]
    body = []
    for r in rows:
        borda = "" if r["borda"] is None else f"{r['borda']:.2f} [{r['borda_lo']:.2f}, {r['borda_hi']:.2f}]"
        rank = "" if r["mean_rank"] is None else f"{r['mean_rank']:.2f} [{r['rank_lo']:.2f}, {r['rank_hi']:.2f}]"
        tied = sum(o["rank"] == r["rank"] for o in rows) > 1
        body.append(["" if r["rank"] is None else f"{r['rank']}{'=' if tied else ''}", r["predictor"], borda, rank,
                     f"{r['wins']}/{r['ties']}/{r['losses']}", _fmt(r["median_ratio"], ".2f"), r["coverage"],
                     str(r["failed"])])
    return head, body


def limit_table(rows):
    head = ["scenarios", "predictor", "d", "err/floor per d", "err/floor at inf", "worst z at inf", "verdict"]
    body = []
    for r in rows:
        ratios = ", ".join(_fmt(x, ".2f") for x in r.get("ratios", []))
        if "verdict" not in r:
            body.append([r["family"], r["predictor"], ", ".join(map(str, r["d"])), ratios, "", "", r["message"]])
            continue
        body.append([r["family"], r["predictor"], ", ".join(map(str, r["d"])), ratios, _fmt(r["ratio_inf"], ".2f"),
                     _fmt(r["z_inf"], ".2g"), r["verdict"]])
    return head, body


def terminal(**kwargs):
    """A rich ``Console`` whose closed pipe (``hdbench leaderboard | head``) raises ``BrokenPipeError``
    for the CLI to end quietly with exit code 0 (rich's own answer is exit code 1)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self):
            raise BrokenPipeError

    return _Console(**kwargs)


def render(head, body, fmt="table", title="", console=None, group=False) -> str | None:
    """Render as a rich table (printed; returns None) or return markdown text. ``group``: rows that
    share their first cell are printed as one block, that cell once."""
    if fmt == "table":
        from rich import box
        from rich.markup import escape
        from rich.table import Table
        if console is None:
            console = terminal()
            if not console.is_terminal:
                console = terminal(width=max(console.width, 160))
        table = Table(title=title, title_justify="left", show_lines=False, box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False, collapse_padding=True)
        for h in head:       # numbers stay on one line; names, reasons and verdicts wrap
            table.add_column(escape(h), overflow="fold", no_wrap=h not in WRAPPED)
        previous = None
        for b in body:
            if group and b[0] == previous:         # print each scenario's name once
                b = [""] + list(b[1:])
            else:
                previous = b[0]
                if group and table.row_count:
                    table.add_section()
            table.add_row(*map(escape, b))        # a sweep's "[d=100]" is text, not markup
        console.print(table)
        return None
    if fmt == "markdown":
        lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(head) + " |",
                                                            "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in b) + " |" for b in body]
        return "\n".join(lines) + "\n"
    raise InputError(f"--format = {fmt!r} is not allowed here (expected table or markdown)")


# -- one source for every format and the HTML report -----------------------------------------------
class Part(NamedTuple):
    """One leaderboard view: its rows (what json and csv export), and the table made of them."""
    view: str          # "scenarios" | "aggregate" | "finite-size"
    title: str
    rows: list
    head: list
    body: list
    group: bool        # rows grouped by their first column


def leaderboard_parts(store: Store, suite: str, view: str = "both", collapse_na: bool = False,
                      compact: bool = False) -> list[Part]:
    """The leaderboard's views of ``suite`` (``view``: both, scenarios, suite or finite-size; "both"
    adds the finite-size view where ``d`` was swept). ``collapse_na``, ``compact``: how the
    per-scenario table shows its rows (``scenario_table``); the rows themselves are all kept."""
    parts = []
    scenarios = scenario_rows(store, suite)
    for row in scenarios:
        row.pop("bootstrap", None)          # the replicates behind the ranks: in the store, not the export
    if view in ("both", "scenarios"):
        table = compact_table(scenarios) if compact else scenario_table(scenarios, collapse_na)
        parts.append(Part("scenarios", f"Suite '{suite}': per scenario", scenarios, *table, not compact))
    if view in ("both", "suite"):
        rows = rank_suite(scenarios, len(store.suite_scenarios(suite)))
        parts.append(Part("aggregate", f"Suite '{suite}': aggregate", rows, *suite_table(rows), False))
    if view in ("both", "finite-size"):
        rows = limit_rows(store, suite, scenarios)
        if rows or view == "finite-size":
            parts.append(Part("finite-size", f"Suite '{suite}': against the simulation extrapolated to d = infinity",
                              rows, *limit_table(rows), True))
    return parts


TIDY_HEAD = ["view", "scenario", "scenario_hash", "predictor", "status", "message", "observable", "quantity", "value"]


def tidy_value(value) -> str:
    """A CSV cell that reads back exactly: numbers at full precision (``repr``), ``true``/``false``,
    lists as JSON, None as the empty cell, text as itself."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), default=float)
    return str(value)


def tidy_rows(parts) -> list[list[str]]:
    """Every view as one long table (``TIDY_HEAD``): one row per (view, scenario, predictor,
    observable, quantity). A row without quantities (n/a, failed) is one row with an empty quantity."""
    out = []
    for part in parts:
        for r in part.rows:
            scenario = r.get("scenario", r.get("family", ""))
            key = [part.view, scenario, r.get("hash", ""), r.get("predictor", ""), r.get("status", ""),
                   r.get("message", "")]
            cells = [("", q, v) for q, v in r.items() if q not in ID_FIELDS]
            cells += [(obs, q, v) for obs, per in (r.get("observables") or {}).items() for q, v in per.items()]
            out += [key + [obs, quantity, tidy_value(v)] for obs, quantity, v in cells] or [key + ["", "", ""]]
    return out


ID_FIELDS = {"scenario", "family", "hash", "predictor", "status", "message", "observables"}


def tidy_csv(parts) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TIDY_HEAD)
    writer.writerows(tidy_rows(parts))
    return buf.getvalue()


# -- plots ---------------------------------------------------------------------------------------
def scenario_curves(store: Store, ref: str) -> dict:
    """What a scenario's plots draw (the PNG of ``hdbench plot`` and the HTML report alike), as plain
    lists: ``{"hash", "label", "times", "seeds", "band", "observables": [{"name", "mean", "lo", "hi",
    "theories": {predictor: {"curve", "unc"?, "limit"?}}}]}``. ``lo``/``hi``: the simulation
    statistic's ``BAND`` Student-t interval over seeds; ``unc``: a Monte-Carlo theory's own standard
    error; ``limit``: a long-time oracle's t -> infinity value. Non-finite values are None."""
    from scipy import stats

    h, label, spec = store.find_scenario(ref)
    sim = store.get_simulation(h)
    if sim is None:
        raise InputError(f"scenario '{ref}' has no stored simulation (run hdbench run first)")
    _, units = model_conventions(_scenario(spec))
    preds = [p for p in store.predictions(h) if p["status"] == "ok"]
    names = list(sim["per_seed"]) + sorted({k for p in preds for k in p["curves"] if k not in sim["per_seed"]
                                           and not k.startswith(("limit(", "unc(")) and seed_statistic(k, sim["per_seed"])})
    seeds = next(iter(sim["per_seed"].values())).shape[0]
    quantile = stats.t.ppf(0.5 + BAND / 2, df=seeds - 1)
    observables = []
    for name in names:
        values, stat, stat_err = seed_statistic(name, sim["per_seed"], units)
        mean, se = stat(values), stat_err(values)
        theories = {}
        for p in preds:
            entry = {}
            if name in p["curves"]:
                entry["curve"] = _finite_list(p["curves"][name])
                if f"unc({name})" in p["curves"]:
                    entry["unc"] = _finite_list(p["curves"][f"unc({name})"])
            if f"limit({name})" in p["curves"]:
                entry["limit"] = _finite_list(p["curves"][f"limit({name})"])[-1]
            if entry:
                theories[p["predictor"]] = entry
        observables.append({"name": name, "mean": _finite_list(mean), "lo": _finite_list(mean - quantile * se),
                            "hi": _finite_list(mean + quantile * se), "theories": theories})
    return {"hash": h, "label": label, "times": _finite_list(sim["times"]), "seeds": int(seeds), "band": BAND,
            "predictors": [p["predictor"] for p in preds], "observables": observables}


def _finite_list(values) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, float).ravel()]


def _array(values):
    return np.array([np.nan if v is None else v for v in values], float)


def plot_figure(store: Store, ref: str):
    """One panel per observable: the simulation's statistic with its 95% Student-t band over seeds,
    and each predictor's curve over it, one colour per predictor in every panel, one legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = scenario_curves(store, ref)
    preds, seeds, t = data["predictors"], data["seeds"], np.asarray(data["times"])
    palette = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
    colour = {p: palette[i % len(palette)] for i, p in enumerate(preds)}
    n = len(data["observables"])
    cols = min(3, n)
    rows = -(-n // cols)
    legend_rows = -(-(len(preds) + 2) // 3)
    height = 3.2 * rows + 0.22 * legend_rows + 0.2
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, height), squeeze=False)
    for ax, obs in zip(axes.flat, data["observables"]):
        ax.fill_between(t, _array(obs["lo"]), _array(obs["hi"]), color="0.8")
        ax.plot(t, _array(obs["mean"]), color="k", lw=1)
        for name, theory in obs["theories"].items():
            c = colour[name]
            if "curve" in theory:
                curve = _array(theory["curve"])
                ax.plot(t, curve, lw=1.5, ls="--", color=c, label=name)
                if "unc" in theory:          # a Monte-Carlo theory's own 95% band
                    unc = _array(theory["unc"])
                    ax.fill_between(t, curve - 1.96 * unc, curve + 1.96 * unc, color=c, alpha=0.2)
            if theory.get("limit") is not None:
                ax.axhline(theory["limit"], lw=1.2, ls=":", color=c, label=name)
        ax.set_title(obs["name"])
        ax.set_ylabel(obs["name"])
        ax.set_xlabel("t = samples / d")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], color="k", lw=1, label=f"simulation ({seeds} seeds)"),
               Patch(color="0.8", label=f"{BAND:.0%} band (Student t, {seeds - 1} dof)")]
    handles += [Line2D([], [], color=colour[p], lw=1.5, ls="--", label=p) for p in preds]
    fig.legend(handles=handles, loc="lower center", ncol=min(3, len(handles)), fontsize=8, frameon=False)
    fig.suptitle(data["label"], fontsize=10)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.2) / height, 1, 1))
    return fig


def plot(store: Store, ref: str, out_path) -> str:
    """Save :func:`plot_figure` to ``out_path`` (.png or .svg)."""
    import matplotlib.pyplot as plt
    fig = plot_figure(store, ref)
    fig.savefig(out_path)
    plt.close(fig)
    return str(out_path)
