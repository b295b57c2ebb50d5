"""Who beats whom: ranks with ties, on one scenario and over a suite (rules: ``docs/scoring.md``).

On a scenario, the *participants* are the predictors that support it: scored ones and those that
failed or timed out there. Predictor A beats B when
- A scored and B failed (a failure loses to every scored predictor, and beats nobody), or
- A is complete and B partial (B lacks a headline observable: it ranks after every complete one), or
- both are complete, or both partial, and A's headline err/floor is below B's in at least
  ``SIGNIFICANCE`` of the paired bootstrap replicates (``hdbench.score``), by more than the solvers'
  precision ``TIE_TOL``. Otherwise neither beats the other: a tie.
A participant's rank is 1 + the number that beat it (so tied predictors share a rank), and the ranks
the noise allows run from there to N - the number it beats.
Over a suite, per predictor: the normalised Borda score (the mean over its scenarios of the fraction
of the other participants it beats, a tie counting one half; the range counts ties as losses, then
as wins), its mean rank (and range), wins/ties/losses, failures and coverage. Its suite rank is 1 +
the number of predictors with a higher Borda score: only significant wins count, so predictors with
the same record tie. Predictors that support none of the suite's scenarios are left out.
"""
from __future__ import annotations

import numpy as np

SIGNIFICANCE = 0.975    # one-sided: a two-sided 95% interval of the paired difference excludes zero
TIE_TOL = 1e-3          # headline ratios within this relative distance are the same curves


def scored(row) -> bool:
    return row.get("status") == "ok"


def participates(row) -> bool:
    return row.get("status") in ("ok", "failed", "timeout")


def beats(a: dict, b: dict) -> bool:
    """Whether participant ``a`` beats ``b`` (rows with ``status`` and, when scored, the score's fields)."""
    if not scored(a):
        return False
    if not scored(b):
        return True
    if a["complete"] != b["complete"]:
        return a["complete"]
    if a["ratio"] >= b["ratio"] * (1 - TIE_TOL):
        return False
    fa, fb = np.asarray(a["bootstrap"]), np.asarray(b["bootstrap"])
    return fa.shape == fb.shape and float(np.mean(fa < fb * (1 - TIE_TOL))) >= SIGNIFICANCE


def rank_scenario(rows: list[dict]) -> None:
    """Set ``rank``, ``rank_worst``, ``tied``, ``wins``/``ties``/``losses`` and ``borda`` (with its range
    ``borda_lo``, ``borda_hi``) on the participants among ``rows`` (one scenario), in place."""
    block = [r for r in rows if participates(r)]
    n = len(block)
    win = np.array([[i != j and beats(a, b) for j, b in enumerate(block)] for i, a in enumerate(block)], bool)
    for i, r in enumerate(block):
        wins, beaten_by = int(win[i].sum()), int(win[:, i].sum())
        ties = n - 1 - wins - beaten_by if scored(r) else 0      # a failure ties with nobody: it lost
        r.update(rank=1 + beaten_by, rank_worst=n - wins, wins=wins, ties=ties, losses=n - 1 - wins - ties)
        if n > 1:
            r.update(borda=(wins + ties / 2) / (n - 1), borda_lo=wins / (n - 1), borda_hi=(wins + ties) / (n - 1))
    for r in block:
        r["tied"] = sum(o["rank"] == r["rank"] for o in block) > 1


def rank_suite(rows: list[dict], total: int) -> list[dict]:
    """Aggregate ranked scenario rows (``rank_scenario`` applied per scenario; ``total`` scenarios in
    the suite) into one row per predictor that took part anywhere, sorted by suite rank, mean rank, name."""
    agg = {}
    for r in rows:
        a = agg.setdefault(r["predictor"], {"predictor": r["predictor"], "scored": 0, "failed": 0, "partial": 0,
                                            "wins": 0, "ties": 0, "losses": 0, "ranks": [], "worst": [],
                                            "borda": [], "lo": [], "hi": [], "errors": []})
        if not participates(r):
            continue
        a["scored" if scored(r) else "failed"] += 1
        for key in ("wins", "ties", "losses"):
            a[key] += r[key]
        a["ranks"].append(r["rank"])
        a["worst"].append(r["rank_worst"])
        if "borda" in r:
            a["borda"].append(r["borda"])
            a["lo"].append(r["borda_lo"])
            a["hi"].append(r["borda_hi"])
        if scored(r):
            a["errors"].append(r["ratio"])
            a["partial"] += not r["complete"]
    out = []
    for a in agg.values():
        mean = lambda xs: float(np.mean(xs)) if xs else None     # noqa: E731
        out.append({"predictor": a["predictor"], "borda": mean(a["borda"]), "borda_lo": mean(a["lo"]),
                    "borda_hi": mean(a["hi"]), "mean_rank": mean(a["ranks"]), "rank_lo": mean(a["ranks"]),
                    "rank_hi": mean(a["worst"]), "wins": a["wins"], "ties": a["ties"], "losses": a["losses"],
                    "median_ratio": float(np.median(a["errors"])) if a["errors"] else None,
                    "scored": a["scored"], "failed": a["failed"], "partial": a["partial"],
                    "coverage": f"{a['scored']}/{total}"})
    out = [r for r in out if r["scored"] or r["failed"]]          # n/a everywhere: nothing to rank
    for r in out:
        r["rank"] = None if r["borda"] is None else 1 + sum(
            o["borda"] is not None and o["borda"] > r["borda"] + 1e-9 for o in out)
    out.sort(key=lambda r: (r["rank"] if r["rank"] is not None else 1e9,
                            r["mean_rank"] if r["mean_rank"] is not None else 1e9, r["predictor"]))
    return out
