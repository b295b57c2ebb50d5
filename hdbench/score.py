"""The one scorer: every error, noise floor, z-score, uncertainty and bootstrap replicate in hdbench
comes from :func:`score` (the leaderboard, its rank intervals, the d -> infinity reference, the plots'
statistics and the tests all call it). The rules, with a worked example, are in ``docs/scoring.md``.

A prediction is scored against a :class:`Reference`: at each time, a statistic over seeds of one
simulation (its seed mean, or the seeds' spread for ``std(NAME)``), or a fixed linear combination of
several simulations' statistics (the d -> infinity extrapolation of a d-sweep, :meth:`Reference.extrapolated`).

For each observable both sides have, on the scored window (times before the first seed diverged and
before the predicted divergence; only the last of them for ``limit(NAME)``), with
``scale = max_t max(|reference|, spread across seeds)``:
- ``sup_error = max_t |pred - reference| / scale``; ``rel_l2 = ||pred - reference||_2 / ||reference||_2``;
- ``noise_floor``: the error a perfect theory would show, estimated from the seeds themselves: the
  same metric between the statistics of two disjoint halves of the seeds, halved (``Var(A - B) = 4
  Var(mean - truth)``), averaged over ``SPLITS`` random half-splits; and at least ``E|N(0, stderr)|``
  at the noisiest time (a perfect theory's error there), so that seeds which all agree on an
  indicator do not make the floor zero;
- ``ratio = sup_error / noise_floor`` (``err/floor``: 1 is "within Monte-Carlo noise");
- ``z_max = max_t |pred - reference| / sqrt(stderr^2 + unc^2)`` (stderr floored at ``STDERR_FLOOR``
  x scale, for points every seed agrees on), with ``unc`` the predictor's own standard error
  ``unc(NAME)`` where it returns one (a Monte-Carlo theory); ``uncertainty = max_t unc / scale``.
The headline is noise-aware: over the model's *headline observables* (``Model.headline_observables``)
that the prediction has, ``ratio`` = the worst observable's err/floor, and ``error``, ``noise_floor``,
``uncertainty`` are that observable's. A prediction lacking a headline observable is ``complete =
False`` (``missing`` names them). ``bootstrap`` holds ``BOOTSTRAP`` replicates of the headline ratio
with the seeds resampled (the same resamples for every predictor of a scenario, so replicates are
paired) and a Monte-Carlo theory's curve shifted by ``unc`` times a standard normal: the ranks'
significance (``hdbench.rank``) is read off them.
Per-seed indicators (0/1 observables such as ``reached_optimum``) are scored as fractions, with a
binomial standard error at the Jeffreys-smoothed fraction (seeds that all agree are not exact); a
model's counted observables (``Model.counted_observables``, fractions of a count of things per
seed) likewise where every seed agrees.
A predictor marks a divergence it predicts with +-inf (NaN is allowed only after that).
"""
from __future__ import annotations

import dataclasses
import functools
import re
import zlib

import numpy as np
from scipy import stats as _stats

STDERR_FLOOR = 1e-5     # fraction of the scale: the stderr of a point every seed agrees on
FLOOR_MIN = 1e-5        # the smallest noise floor (a deterministic observable: float32 round-off)
BOOTSTRAP = 200         # paired seed resamples behind every rank's significance
SPLITS = 32             # random half-splits averaged into the noise floor


class ScoreError(ValueError):
    """The curves cannot be scored (wrong shape, non-finite, nothing in common)."""


class NothingToScore(ScoreError):
    """The simulation diverged before its second time point: not the predictor's fault."""


# -- what a prediction is compared with ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Reference:
    """``sum_k weight_k * statistic(seeds of simulation k)`` at each time; one simulation is one part
    of weight 1. ``headline``: the observables the model declares headline (None: every one); each
    part's ``units``: its model's counted observables (``Model.counted_observables``)."""

    times: np.ndarray
    parts: tuple                  # ((per_seed {name: [S, T]}, weight, units {name: count}), ...)
    diverged_at: float            # the earliest divergence over every seed of every part (inf: none)
    headline: tuple | None = None
    diverged_seeds: int = 0

    @classmethod
    def of(cls, sim, headline=None) -> "Reference":
        """A simulation (``hdbench.Simulation``, or a stored record with ``scenario``) as a reference;
        the headline observables are its model's unless given."""
        if isinstance(sim, Reference):
            return sim
        get = sim.get if isinstance(sim, dict) else lambda k: getattr(sim, k)
        diverged = np.asarray(get("diverged_at"), float)
        model_headline, units = model_conventions(get("scenario"))
        return cls(np.asarray(get("times"), float), ((dict(get("per_seed")), 1.0, units),), float(diverged.min()),
                   model_headline if headline is None else headline, int(np.isfinite(diverged).sum()))

    @classmethod
    def extrapolated(cls, sims, ds, headline=None) -> "Reference":
        """The d -> infinity intercept of a least-squares fit ``a + b/d`` through the simulations'
        statistics at each time (ordinary least squares, so one set of weights for every time)."""
        if len(sims) != len(ds) or len(set(ds)) < 2:
            raise ScoreError("a d -> infinity extrapolation needs simulations at two or more dimensions")
        weights = limit_weights(ds)
        refs = [cls.of(s) for s in sims]
        times = refs[0].times
        if any(r.times.shape != times.shape or not np.allclose(r.times, times) for r in refs):
            raise ScoreError("the simulations of a d-sweep must share their time grid")
        parts = tuple((r.parts[0][0], float(w), r.parts[0][2]) for r, w in zip(refs, weights))
        return cls(times, parts, min(r.diverged_at for r in refs), refs[-1].headline if headline is None else headline,
                   sum(r.diverged_seeds for r in refs))

    @property
    def seeds(self) -> int:
        return min(next(iter(per_seed.values())).shape[0] for per_seed, *_ in self.parts)

    def has(self, name: str) -> bool:
        return all(seed_statistic(name, per_seed) is not None for per_seed, *_ in self.parts)

    def statistic(self, name: str):
        """``(reference [T], stderr [T])`` of observable ``name`` over the whole grid, or None."""
        found = [seed_statistic(name, per_seed, units) for per_seed, _, units in self.parts]
        if any(f is None for f in found):
            return None
        ref = sum(w * stat(values) for (values, stat, _), (_, w, _) in zip(found, self.parts))
        se = np.sqrt(sum((w * err(values)) ** 2 for (values, _, err), (_, w, _) in zip(found, self.parts)))
        return ref, se


def limit_weights(ds) -> np.ndarray:
    """Weights ``w`` with ``a = w @ values``: the intercept of the least-squares fit ``a + b/d`` through
    values at dimensions ``ds`` (the same for every time)."""
    return np.linalg.pinv(np.column_stack([np.ones(len(ds)), 1.0 / np.asarray(ds, float)]))[0]


def model_conventions(scenario) -> tuple[tuple | None, dict]:
    """The scenario's model's headline observables and counted observables (None and {} without a
    scenario, or if its model is not registered here)."""
    from .errors import InputError
    from .registry import registry
    if scenario is None:
        return None, {}
    try:
        model = registry().model(scenario.model)
    except InputError:
        return None, {}
    p, finite = dict(scenario.model_params), scenario.alpha is not None
    return tuple(model.headline_observables(p, finite)), dict(model.counted_observables(p, scenario.d))


# -- the curves ------------------------------------------------------------------------------------
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


# -- statistics over seeds (vectorised over leading resample axes: values [..., S, T]) -------------
def _mean(a):
    return a.mean(axis=-2)


def _std(a):
    return a.std(axis=-2, ddof=1)


def _mean_stderr(a, units=None):
    """Standard error of the seed mean. For a per-seed indicator (every value 0 or 1) the binomial
    error at the Jeffreys-smoothed fraction ``(k + 1/2) / (S + 1)``: when all seeds agree, the
    fraction is still uncertain (not known to be exactly 0 or 1). For a fraction of ``units`` counted
    things per seed, where every seed agrees: the binomial error of ``units x S`` things, likewise."""
    S = a.shape[0]
    finite = a[np.isfinite(a)]
    if finite.size and np.isin(finite, (0.0, 1.0)).all():
        p = (a.sum(axis=0) + 0.5) / (S + 1)
        return np.sqrt(p * (1 - p) / S)
    se = a.std(axis=0, ddof=1) / np.sqrt(S)
    if units:
        n = units * S
        p = (a.mean(axis=0) * n + 0.5) / (n + 1)
        se = np.where(se > 0, se, np.sqrt(p * (1 - p) / n))
    return se


def _std_stderr(a):
    return a.std(axis=0, ddof=1) / np.sqrt(2 * (a.shape[0] - 1))     # Gaussian approximation


def seed_statistic(name: str, per_seed: dict, units=None):
    """``(per-seed values [S, T], statistic over seeds, its standard error)`` for an observable name
    (``NAME`` and ``limit(NAME)`` = mean of NAME, ``std(NAME)`` = spread of NAME), or None if the
    simulation lacks it. ``units``: the model's counted observables."""
    match = re.fullmatch(r"(limit|std)\((.+)\)", name)
    base, kind = (match.group(2), match.group(1)) if match else (name, "mean")
    if base not in per_seed:
        return None
    if kind == "std":
        return per_seed[base], _std, _std_stderr
    return per_seed[base], _mean, functools.partial(_mean_stderr, units=(units or {}).get(base))


def observable_window(name: str, window: np.ndarray) -> np.ndarray:
    """The times at which observable ``name`` is scored: the window, or its last time for ``limit(NAME)``."""
    if not name.startswith("limit(") or not window.any():
        return window
    where = np.zeros_like(window)
    where[np.flatnonzero(window)[-1]] = True
    return where


def _resamples(S: int, B: int) -> np.ndarray:
    """Row 0 the seeds themselves, rows 1..B bootstrap resamples; fixed per seed count, so every
    predictor of a scenario is scored on the same resamples (paired)."""
    rng = np.random.default_rng(S)
    return np.vstack([np.arange(S)[None], rng.integers(0, S, size=(B, S))])


def _half_splits(S: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(S + 1)
    perms = np.argsort(rng.random((K, S)), axis=1)
    half = S // 2
    return perms[:, :half], perms[:, half:2 * half]


def _score_observable(ref: Reference, name: str, pred, unc, where) -> tuple[dict, np.ndarray]:
    """One observable: its record, and ``sup_error`` on row 0 (the data) and each bootstrap replicate."""
    boot = 0.0
    splits = 0.0
    se2 = 0.0
    spread = 0.0
    for per_seed, weight, units in ref.parts:
        values, stat, stat_err = seed_statistic(name, per_seed, units)
        seeds = values[:, where]
        S = seeds.shape[0]
        boot = boot + weight * stat(seeds[_resamples(S, BOOTSTRAP)])          # [B + 1, Tw]
        first, second = _half_splits(S, SPLITS)
        splits = splits + weight * (stat(seeds[first]) - stat(seeds[second])) / 2   # [K, Tw]
        se2 = se2 + (weight * stat_err(seeds)) ** 2
        spread = max(spread, float(seeds.std(axis=0).max()))
    mean, stderr = boot[0], np.sqrt(se2)
    scale = max(float(np.abs(mean).max()), spread) or 1.0
    norm = float(np.linalg.norm(mean)) or 1.0
    rng = np.random.default_rng(zlib.crc32(name.encode() + np.ascontiguousarray(pred).tobytes()))
    shifted = pred + np.concatenate([[0.0], rng.standard_normal(BOOTSTRAP)])[:, None] * unc    # [B + 1, Tw]
    sup = np.abs(shifted - boot).max(axis=1) / scale
    split_sup = np.abs(splits).max(axis=1)
    split_sup = split_sup[np.isfinite(split_sup)]        # a spread needs two seeds in each half
    # at least a perfect theory's mean error at the noisiest time, E|N(0, stderr)|: seeds that all
    # agree on an indicator leave the half-splits equal, not the fraction known
    floor = float(max(float(split_sup.mean()) / scale if split_sup.size else 0.0,
                      np.sqrt(2 / np.pi) * float(np.nan_to_num(stderr).max()) / scale, FLOOR_MIN))
    z = np.abs(pred - mean) / np.maximum(np.hypot(stderr, unc), STDERR_FLOOR * scale)
    rec = {"sup_error": float(sup[0]), "rel_l2": float(np.linalg.norm(pred - mean) / norm),
           "noise_floor": floor, "noise_floor_l2": float(np.linalg.norm(splits, axis=1).mean()) / norm,
           "ratio": float(sup[0]) / floor, "z_max": float(z.max()), "points": int(where.sum()),
           "t_worst": float(ref.times[where][z.argmax()])}
    if unc.any():
        rec["uncertainty"] = float(unc.max() / scale)
    return rec, sup


def score(sim, curves: dict, observables=None) -> dict:
    """Score ``curves`` (``{observable: array on the reference's times}``) against ``sim`` (a
    simulation or a :class:`Reference`), on ``observables`` (default: every one both sides have).
    See the module docstring for every field."""
    ref = Reference.of(sim)
    curves = check_curves(curves, ref.times)
    t_pred = predicted_divergence(curves, ref.times)
    window = (ref.times < ref.diverged_at) & (ref.times < t_pred)
    if window.sum() < 2:
        sim_first = ref.diverged_at <= t_pred
        who = "the simulation" if sim_first else "the prediction"
        raise (NothingToScore if sim_first else ScoreError)(
            f"{who} diverged at t = {min(ref.diverged_at, t_pred):g}, before the second time point: nothing to score")
    common = [k for k in curves if not k.startswith("unc(") and ref.has(k)
              and (observables is None or k in observables)]
    if not common:
        raise ScoreError(f"no observable in common (predictor: {', '.join(curves)}; "
                         f"simulation: {', '.join(ref.parts[0][0])})")
    per_obs, sups = {}, {}
    for name in common:
        where = observable_window(name, window)
        unc = curves.get(f"unc({name})")
        unc = np.zeros(int(where.sum())) if unc is None else np.nan_to_num(np.asarray(unc, float)[where], posinf=0.0)
        per_obs[name], sups[name] = _score_observable(ref, name, curves[name][where], unc, where)
    wanted = ref.headline if ref.headline is not None else tuple(common)
    if observables is not None:
        wanted = tuple(k for k in wanted if k in observables)
    headline = [k for k in common if k in wanted] or common
    missing = [k for k in wanted if k not in common]
    ratios = np.stack([sups[k] / per_obs[k]["noise_floor"] for k in headline])       # [H, B + 1]
    worst = headline[int(ratios[:, 0].argmax())]
    return {"ratio": float(ratios[:, 0].max()), "error": per_obs[worst]["sup_error"],
            "noise_floor": per_obs[worst]["noise_floor"], "uncertainty": per_obs[worst].get("uncertainty"),
            "worst_observable": worst, "z_max": max(per_obs[k]["z_max"] for k in headline),
            "z_points": sum(per_obs[k]["points"] for k in headline), "seeds": ref.seeds,
            "rel_l2": max(per_obs[k]["rel_l2"] for k in headline),
            "complete": not missing, "missing": missing, "headline": headline,
            "bootstrap": [float(f"{x:.6g}") for x in ratios[:, 1:].max(axis=0)],
            "scored_until": float(ref.times[window][-1]), "diverged_seeds": ref.diverged_seeds,
            "simulated_divergence": _time_or_none(ref.diverged_at), "predicted_divergence": _time_or_none(t_pred),
            "observables": per_obs}


def z_threshold(points: int, seeds: int, p: float = 1e-3) -> float:
    """The worst-point z a correct theory exceeds with probability <= ``p``: a Student-t(seeds - 1)
    quantile, Bonferroni-corrected over ``points`` (times x observables)."""
    return float(_stats.t.isf(p / (2 * max(points, 1)), df=max(seeds - 1, 1)))


def within_noise(result: dict, p: float = 1e-3) -> bool:
    """Whether a score's worst z is what a correct theory would show (see :func:`z_threshold`)."""
    return result["z_max"] < z_threshold(result["z_points"], result["seeds"], p)


def _time_or_none(t) -> float | None:
    """JSON-safe divergence time: None for "never"."""
    return float(t) if np.isfinite(t) else None
