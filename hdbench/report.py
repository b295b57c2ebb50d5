"""Leaderboards (from the store alone) and plots.

Per scenario: predictors ranked by ``error`` (normalised sup error, worst observable; ``± u`` where a
Monte-Carlo theory reports its own uncertainty ``u``, on the same scale), with the noise floor, ``err/floor``, worst z-score, cold/warm wall time and speed-up over the simulation;
"n/a: reason" and "failed: message" rows where that is what happened.
Per suite, over the scenarios each predictor supports: a normalised Borda score (the mean fraction
of the other scored predictors it beats, over scenarios with at least two), the mean rank (with a
95% interval from a bootstrap over simulation seeds), mean and median error, and coverage =
scenarios scored / scenarios in the suite. Sorted by Borda score, then mean rank.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from .score import observable_window, seed_statistic
from .simulate import ENGINE_VERSION
from .store import Store

BOOTSTRAP = 200


def scenario_rows(store: Store, suite: str) -> list[dict]:
    rows = []
    for h, label, _ in store.suite_scenarios(suite):
        have_sim = store.get_simulation(h, ENGINE_VERSION) is not None
        block = []
        for pred in store.predictions(h):
            sc = store.get_score(h, pred["predictor"], pred["provider"], ENGINE_VERSION)
            row = {"scenario": label, "hash": h, "predictor": pred["predictor"], "provider": pred["provider"]}
            if pred["status"] != "ok":
                row.update(status=pred["status"], message=pred["message"])
            elif sc is None:
                row.update(status="pending", message="not scored yet" if have_sim else "no simulation yet")
            elif sc["status"] != "ok":
                row.update(status=sc["status"], message=sc["message"])
            else:
                s = sc["scores"]
                row.update(status="ok", message="", error=s["error"], uncertainty=s.get("uncertainty"),
                           noise_floor=s["noise_floor"],
                           ratio=s["error"] / max(s["noise_floor"], 1e-12), z_max=s["z_max"],
                           rel_l2=s["rel_l2"], worst=s["worst_observable"], cold_s=s["cold_s"],
                           warm_s=s["warm_s"], speedup=s["speedup"], scored_until=s["scored_until"],
                           diverged_seeds=s["diverged_seeds"], observables=s["observables"])
            block.append(row)
        ok = sorted((r for r in block if r["status"] == "ok"), key=lambda r: r["error"])
        for i, r in enumerate(ok):
            r["rank"] = i + 1
        rows += ok + sorted((r for r in block if r["status"] != "ok"), key=lambda r: r["predictor"])
    return rows


def _bootstrap_errors(sim, curves_by_pred, rng, n_boot):
    """errors[n_boot, P] of each predictor against seed-resampled simulation means."""
    window = sim["times"] < np.min(sim["diverged_at"])
    per_seed = sim["per_seed"]
    S = next(iter(per_seed.values())).shape[0]
    idx = rng.integers(0, S, size=(n_boot, S))
    errs = np.zeros((n_boot, len(curves_by_pred)))
    names = {name for curves in curves_by_pred for name in curves}
    for name in names:
        found = seed_statistic(name, per_seed)
        if found is None:
            continue
        values, stat, _ = found
        where = observable_window(name, window)
        resampled = values[:, where][idx]                                # [B, S, T]
        stats = np.stack([stat(r) for r in resampled])                   # [B, T]
        scale = np.maximum(np.maximum(np.abs(stats).max(axis=1), resampled.std(axis=1).max(axis=1)), 1e-300)
        for j, curves in enumerate(curves_by_pred):
            if name in curves:
                pred = curves[name][where]
                finite = np.isfinite(pred)          # a predicted divergence ends its scored window
                diff = np.abs(pred[finite] - stats[:, finite]).max(axis=1) if finite.any() else 0.0
                errs[:, j] = np.maximum(errs[:, j], diff / scale)
    return errs


def suite_rows(store: Store, suite: str, n_boot: int = BOOTSTRAP) -> list[dict]:
    rows = scenario_rows(store, suite)
    scenarios = list(dict.fromkeys(r["hash"] for r in rows))
    total = len(store.suite_scenarios(suite))
    preds = sorted({r["predictor"] for r in rows})
    agg = {p: {"predictor": p, "beaten": [], "ranks": [], "errors": [], "failed": 0} for p in preds}
    rng = np.random.default_rng(0)
    boot_sum = {p: np.zeros(n_boot) for p in preds}
    for h in scenarios:
        block = [r for r in rows if r["hash"] == h]
        ok = [r for r in block if r["status"] == "ok"]
        for r in block:
            if r["status"] in ("failed", "timeout"):
                agg[r["predictor"]]["failed"] += 1
        for r in ok:
            a = agg[r["predictor"]]
            if len(ok) > 1:
                a["beaten"].append((len(ok) - r["rank"]) / (len(ok) - 1))
            a["ranks"].append(r["rank"])
            a["errors"].append(r["error"])
        if not ok:
            continue
        sim = store.get_simulation(h, ENGINE_VERSION)
        curves = [next(p["curves"] for p in store.predictions(h) if p["predictor"] == r["predictor"]) for r in ok]
        errs = _bootstrap_errors(sim, curves, rng, n_boot)
        ranks = errs.argsort(axis=1).argsort(axis=1) + 1
        for j, r in enumerate(ok):
            boot_sum[r["predictor"]] += ranks[:, j]
    out = []
    for p, a in agg.items():
        k = len(a["ranks"])
        borda = float(np.mean(a["beaten"])) if a["beaten"] else None
        row = {"predictor": p, "borda": borda, "coverage": f"{k}/{total}", "scored": k, "failed": a["failed"],
               "mean_rank": float(np.mean(a["ranks"])) if k else None,
               "mean_error": float(np.mean(a["errors"])) if k else None,
               "median_error": float(np.median(a["errors"])) if k else None}
        if k:
            lo, hi = np.percentile(boot_sum[p] / k, [2.5, 97.5])
            row.update(rank_lo=float(lo), rank_hi=float(hi))
        out.append(row)
    out.sort(key=lambda r: (-(r["borda"] if r["borda"] is not None else -1),
                            r["mean_rank"] if r["mean_rank"] is not None else 1e9, r["predictor"]))
    return out


def finite_size_rows(store: Store, suite: str) -> list[dict]:
    """Finite-size exponent p of error ~ d^-p, for scenarios of the suite that differ only in d.

    With a fixed number of seeds the noise floor itself falls like d^-1/2, so an asymptotically
    exact theory shows p near 1/2 (or more, while O(1/d) bias dominates), a wrong one p near 0.
    The noise floor's own exponent is shown beside it.
    """
    import re
    specs = {h: spec for h, _, spec in store.suite_scenarios(suite)}
    labels = {h: label for h, label, _ in store.suite_scenarios(suite)}
    groups = {}
    for h, spec in specs.items():
        key = json.dumps({k: v for k, v in spec.items() if k not in ("d", "name")}, sort_keys=True)
        groups.setdefault(key, []).append(h)
    by_hash = {}
    for r in scenario_rows(store, suite):
        if r["status"] == "ok":
            by_hash.setdefault(r["hash"], {})[r["predictor"]] = r
    out = []
    for hashes in groups.values():
        ds = sorted({specs[h]["d"] for h in hashes})
        if len(ds) < 2:
            continue
        family = re.sub(r",? ?d=\d+", "", labels[hashes[0]]).replace("[]", "").strip()
        preds = sorted({p for h in hashes for p in by_hash.get(h, {})})
        for p in preds:
            pts = sorted((specs[h]["d"], by_hash[h][p]["error"], by_hash[h][p]["noise_floor"])
                         for h in hashes if p in by_hash.get(h, {}))
            if len(pts) < 2:
                continue
            d, err, floor = map(np.array, zip(*pts))
            slope = np.polyfit(np.log(d), np.log(np.maximum(err, 1e-300)), 1)[0]
            floor_slope = np.polyfit(np.log(d), np.log(np.maximum(floor, 1e-300)), 1)[0]
            out.append({"family": family, "predictor": p, "d": d.tolist(), "error": err.tolist(),
                        "exponent": float(-slope), "floor_exponent": float(-floor_slope)})
    return out


def finite_size_table(rows):
    head = ["scenarios", "predictor", "d", "error", "exponent p", "noise-floor p"]
    body = [[r["family"], r["predictor"], ", ".join(map(str, r["d"])), ", ".join(f"{e:.3g}" for e in r["error"]),
             f"{r['exponent']:.2f}", f"{r['floor_exponent']:.2f}"] for r in rows]
    return head, body


# -- rendering -----------------------------------------------------------------------------------
def _fmt(x, spec=".3g"):
    return "" if x is None else format(x, spec)


def scenario_table(rows):
    head = ["scenario", "rank", "predictor", "error", "noise floor", "err/floor", "worst z", "cold s",
            "warm s", "speed-up"]
    body = []
    for r in rows:
        if r["status"] == "ok":
            error = _fmt(r["error"]) + ("" if r.get("uncertainty") is None else f" ± {r['uncertainty']:.2g}")
            body.append([r["scenario"], str(r["rank"]), r["predictor"], error, _fmt(r["noise_floor"]),
                         _fmt(r["ratio"], ".2g"), _fmt(r["z_max"], ".2g"), _fmt(r["cold_s"], ".2g"),
                         _fmt(r["warm_s"], ".2g"), _fmt(r["speedup"], ".3g") + "x"])
        else:
            body.append([r["scenario"], "", r["predictor"], f"{r['status']}: {r['message']}", "", "", "", "", "", ""])
    return head, body


def suite_table(rows):
    head = ["predictor", "borda", "mean rank [95%]", "mean error", "median error", "coverage", "failed"]
    body = []
    for r in rows:
        rank = "" if r["mean_rank"] is None else f"{r['mean_rank']:.2f} [{r['rank_lo']:.2f}, {r['rank_hi']:.2f}]"
        body.append([r["predictor"], _fmt(r["borda"], ".2f"), rank, _fmt(r["mean_error"]), _fmt(r["median_error"]),
                     r["coverage"], str(r["failed"])])
    return head, body


def render(head, body, fmt="table", title="", rows=None, console=None, group=False) -> str | None:
    """Render as a rich table (printed; returns None), or return markdown/csv/json text."""
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table
        if console is None:
            console = Console()
            if not console.is_terminal:
                console = Console(width=max(console.width, 160))
        table = Table(title=title, title_justify="left", show_lines=False)
        for i, h in enumerate(head):
            table.add_column(h, overflow="fold", no_wrap=i > 0 and h not in ("error", "predictor"))
        previous = None
        for b in body:
            if group and b[0] == previous:         # print each scenario's name once
                b = [""] + list(b[1:])
            else:
                previous = b[0]
                if group and table.row_count:
                    table.add_section()
            table.add_row(*b)
        console.print(table)
        return None
    if fmt == "markdown":
        lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(head) + " |",
                                                            "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in b) + " |" for b in body]
        return "\n".join(lines) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(head)
        writer.writerows(body)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps(rows, indent=1, default=float)
    from .errors import InputError
    raise InputError(f"--format = {fmt!r} is not allowed (expected one of table, markdown, csv, json)")


# -- plots -----------------------------------------------------------------------------------------
def plot(store: Store, ref: str, out_path) -> str:
    """One panel per observable: simulation mean with its 95% band, each predictor's curve over it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .errors import InputError
    h, label, _ = store.find_scenario(ref)
    sim = store.get_simulation(h, ENGINE_VERSION)
    if sim is None:
        raise InputError(f"scenario '{ref}' has no stored simulation (run hdbench run first)")
    preds = [p for p in store.predictions(h) if p["status"] == "ok"]
    names = list(sim["per_seed"]) + sorted({k for p in preds for k in p["curves"] if k not in sim["per_seed"]
                                           and not k.startswith("limit(") and seed_statistic(k, sim["per_seed"])})
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    t = sim["times"]
    for ax, name in zip(axes.flat, names):
        values, stat, stat_err = seed_statistic(name, sim["per_seed"])
        mean, se = stat(values), stat_err(values)
        ax.fill_between(t, mean - 1.96 * se, mean + 1.96 * se, color="0.8", label="simulation 95%")
        ax.plot(t, mean, color="k", lw=1, label="simulation mean")
        for p in preds:
            if name in p["curves"]:
                line, = ax.plot(t, p["curves"][name], lw=1.5, ls="--", label=p["predictor"])
                unc = p["curves"].get(f"unc({name})")
                if unc is not None:          # a Monte-Carlo theory's own 95% band
                    curve, unc = np.asarray(p["curves"][name]), np.asarray(unc)
                    ax.fill_between(t, curve - 1.96 * unc, curve + 1.96 * unc, color=line.get_color(), alpha=0.2)
            if f"limit({name})" in p["curves"]:      # a long-time oracle: its t -> infinity value
                ax.axhline(np.asarray(p["curves"][f"limit({name})"])[-1], lw=1.2, ls=":",
                           label=f"{p['predictor']} (t -> inf)")
        ax.set_title(name)
        ax.set_xlabel("t = samples / d")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return str(out_path)
