"""Scores of a predictor's curves against a simulation.

A predictor marks a divergence it predicts with +-inf (NaN is allowed only after that); NaN before,
or wrong shapes, are failures. For each observable both sides have, on the scored window (the times
before the first seed diverged and before the predicted divergence), with
``scale = max_t max(|sim mean|, spread across seeds)`` (the spread matters only for observables whose
mean is near zero, e.g. an overlap at an uninformative start):
- ``sup_error = max_t |pred - mean| / scale`` (normalised sup distance),
- ``rel_l2 = ||pred - mean||_2 / ||mean||_2`` over the grid,
- ``noise_floor``: the same metric between the means of two independent halves of the seeds,
  divided by 2, i.e. the error a perfect theory would show against the all-seed mean
  (``Var(mean_A - mean_B) = 4 Var(mean - truth)``),
- ``z_max = max_t |pred - mean| / stderr`` (stderr floored at 1e-5 scale for deterministic points).
Besides the seed mean of each observable, a predictor may return the spread across seeds:
``std(NAME)`` is compared with the seeds' standard deviation of NAME (standard error
``std / sqrt(2 (S - 1))``, the Gaussian approximation). A per-seed indicator observable (0/1, e.g.
``reached_optimum``) is scored as a mean, i.e. a fraction, with its binomial standard error (at the
Jeffreys-smoothed fraction, so that seeds that all agree do not claim an exact 0 or 1).
A long-time oracle returns ``limit(NAME)``, the t -> infinity value of NAME: it is compared with the
simulation's NAME at the last scored time only (the oracle's ``supports`` should decline horizons too
short to get there).
A Monte-Carlo theory may also return its own uncertainty ``unc(NAME)`` (a standard error, same
units as NAME): it is not scored, but reported as ``uncertainty`` (``max_t unc / scale``, on the same
footing as the error) and enters the z-score, ``|pred - mean| / sqrt(stderr^2 + unc^2)``.
The headline ``error``/``noise_floor``/``z_max`` are the maxima over the common observables, so a
theory must get every observable right to score well; the headline ``uncertainty`` is that of the
worst observable.
"""
from __future__ import annotations

import re

import numpy as np

STDERR_FLOOR = 1e-5


class ScoreError(ValueError):
    """The curves cannot be scored (wrong shape, non-finite, nothing in common)."""


class NothingToScore(ScoreError):
    """The simulation diverged before its second time point: not the predictor's fault."""


def scored_window(sim) -> np.ndarray:
    """Boolean mask of the times before the earliest divergence among seeds."""
    return sim.times < np.min(sim.diverged_at)


def check_curves(curves, times) -> dict:
    """Validate a predictor's output: a dict of 1-D float arrays of len(times), finite or +-inf (a
    predicted divergence), NaN only after an inf."""
    if not isinstance(curves, dict) or not curves:
        raise ScoreError(f"predict returned {type(curves).__name__}, expected a non-empty dict of arrays")
    out = {}
    for name, values in curves.items():
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ScoreError(f"observable '{name}' is not an array of numbers") from None
        if arr.shape != (len(times),):
            raise ScoreError(f"observable '{name}' has shape {arr.shape}, expected ({len(times)},)")
        nan, inf = np.isnan(arr), np.isinf(arr)
        first_inf = inf.argmax() if inf.any() else len(arr)
        if nan[:first_inf].any():
            raise ScoreError(f"observable '{name}' is not finite at t = {times[nan.argmax()]:g}")
        out[str(name)] = arr
    return out


def predicted_divergence(curves, times) -> float:
    """First time at which any curve is non-finite (inf if none)."""
    bad = np.zeros(len(times), bool)
    for name, arr in curves.items():
        if not name.startswith("unc("):      # an infinite uncertainty is not a predicted divergence
            bad |= ~np.isfinite(arr)
    return float(times[bad.argmax()]) if bad.any() else np.inf


def _metrics(pred, ref, scale):
    diff = np.abs(pred - ref)
    norm = np.linalg.norm(ref)
    return diff.max() / scale, np.linalg.norm(pred - ref) / (norm if norm > 0 else 1.0)


def _mean_stderr(a):
    """Standard error of the seed mean. For a per-seed indicator (every value 0 or 1) the binomial
    error at the Jeffreys-smoothed fraction ``(k + 1/2) / (S + 1)``: when all seeds agree, the
    fraction is still uncertain (not known to be exactly 0 or 1)."""
    S = a.shape[0]
    finite = a[np.isfinite(a)]
    if finite.size and np.isin(finite, (0.0, 1.0)).all():
        p = (a.sum(axis=0) + 0.5) / (S + 1)
        return np.sqrt(p * (1 - p) / S)
    return a.std(axis=0, ddof=1) / np.sqrt(S)


def observable_window(name: str, window: np.ndarray) -> np.ndarray:
    """The times at which observable ``name`` is scored: the window, or its last time for ``limit(NAME)``."""
    if not name.startswith("limit(") or not window.any():
        return window
    where = np.zeros_like(window)
    where[np.flatnonzero(window)[-1]] = True
    return where


def seed_statistic(name: str, per_seed: dict):
    """``(per-seed values [S, T], statistic over seeds, its standard error)`` for an observable name
    (``NAME`` = mean of NAME, ``std(NAME)`` = spread of NAME), or None if the simulation lacks it."""
    if name in per_seed:
        return per_seed[name], lambda a: a.mean(axis=0), _mean_stderr
    match = re.fullmatch(r"limit\((.+)\)", name)
    if match and match.group(1) in per_seed:
        return per_seed[match.group(1)], lambda a: a.mean(axis=0), _mean_stderr
    match = re.fullmatch(r"std\((.+)\)", name)
    if match and match.group(1) in per_seed:
        return (per_seed[match.group(1)], lambda a: a.std(axis=0, ddof=1),
                lambda a: a.std(axis=0, ddof=1) / np.sqrt(2 * (a.shape[0] - 1)))
    return None


def score(sim, curves: dict) -> dict:
    """Score ``curves`` (``{observable: array on sim.times}``) against ``sim``; see module doc."""
    curves = check_curves(curves, sim.times)
    t_pred = predicted_divergence(curves, sim.times)
    window = scored_window(sim) & (sim.times < t_pred)
    if window.sum() < 2:
        sim_first = np.min(sim.diverged_at) <= t_pred
        who = "the simulation" if sim_first else "the prediction"
        raise (NothingToScore if sim_first else ScoreError)(f"{who} diverged at t = {min(np.min(sim.diverged_at), t_pred):g}, before the "
                         "second time point: nothing to score")
    common = [k for k in curves if not k.startswith("unc(") and seed_statistic(k, sim.per_seed) is not None]
    if not common:
        raise ScoreError(f"no observable in common (predictor: {', '.join(curves)}; "
                         f"simulation: {', '.join(sim.per_seed)})")
    half = sim.scenario.seeds // 2
    per_obs = {}
    for name in common:
        values, stat, stat_err = seed_statistic(name, sim.per_seed)
        where = observable_window(name, window)
        seeds = values[:, where]
        mean = stat(seeds)
        stderr = stat_err(seeds)
        pred = curves[name][where]
        scale = max(np.abs(mean).max(), seeds.std(axis=0).max()) or 1.0
        sup, l2 = _metrics(pred, mean, scale)
        floor_sup, floor_l2 = _metrics(stat(seeds[:half]), stat(seeds[half:2 * half]), scale)
        unc = predictor_uncertainty(curves, name, where)
        z = np.abs(pred - mean) / np.maximum(np.hypot(stderr, unc), STDERR_FLOOR * scale)
        per_obs[name] = {"sup_error": float(sup), "rel_l2": float(l2), "noise_floor": float(floor_sup / 2),
                         "noise_floor_l2": float(floor_l2 / 2), "z_max": float(z.max()),
                         "t_worst": float(sim.times[where][z.argmax()])}
        if f"unc({name})" in curves:
            per_obs[name]["uncertainty"] = float(unc.max() / scale)
    worst = max(per_obs, key=lambda k: per_obs[k]["sup_error"])
    diverged = int(np.isfinite(sim.diverged_at).sum())
    return {"error": per_obs[worst]["sup_error"], "worst_observable": worst,
            "uncertainty": per_obs[worst].get("uncertainty"),
            "rel_l2": max(v["rel_l2"] for v in per_obs.values()),
            "noise_floor": max(v["noise_floor"] for v in per_obs.values()),
            "z_max": max(v["z_max"] for v in per_obs.values()),
            "scored_until": float(sim.times[window][-1]), "diverged_seeds": diverged,
            "simulated_divergence": _time_or_none(np.min(sim.diverged_at)), "predicted_divergence": _time_or_none(t_pred),
            "observables": per_obs}


def predictor_uncertainty(curves, name, window):
    """The predictor's own standard error ``unc(NAME)`` on the window (zeros if it gives none)."""
    unc = curves.get(f"unc({name})")
    if unc is None:
        return np.zeros(int(window.sum()))
    unc = np.asarray(unc, float)[window]
    return np.where(np.isfinite(unc), unc, 0.0)


def _time_or_none(t) -> float | None:
    """JSON-safe divergence time: None for "never"."""
    return float(t) if np.isfinite(t) else None
