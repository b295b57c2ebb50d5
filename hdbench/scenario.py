"""Scenario (immutable, validated, content-hashed) and TOML suites that expand to scenarios.

A scenario is model (name + params) + dynamics (name + params) + dimension ``d`` (+ ``alpha`` for
finite data, ``n = round(alpha d)``) + horizon ``t_max`` + ``n_times`` grid points + ``seeds``.
Its ``hash`` covers everything that changes the simulation (not the display ``name``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .errors import InputError

TOP_LEVEL = {"name", "model", "dynamics", "d", "alpha", "t_max", "n_times", "seeds", "seed"}
SUITES_DIR = Path(__file__).parent / "suites"


def _freeze(params: Mapping) -> tuple:
    return tuple(sorted(params.items()))


@dataclasses.dataclass(frozen=True)
class Scenario:
    model: str
    model_items: tuple
    dynamics: str
    dynamics_items: tuple
    d: int
    alpha: float | None
    t_max: float
    n_times: int = 41
    seeds: int = 8
    seed: int = 0
    name: str = ""

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], registry=None) -> "Scenario":
        from .registry import registry as default_registry
        reg = registry or default_registry()
        if not isinstance(spec, Mapping):
            raise InputError(f"scenario must be a table/dict, got {type(spec).__name__}")
        unknown = sorted(set(spec) - TOP_LEVEL)
        if unknown:
            raise InputError(f"scenario: unknown field '{unknown[0]}' (allowed: {', '.join(sorted(TOP_LEVEL))})")
        model_name, model_params = _component_spec(spec, "model")
        dyn_name, dyn_params = _component_spec(spec, "dynamics")
        model_cls = reg.entry("model", model_name).cls
        dyn_cls = reg.entry("dynamics", dyn_name).cls
        model_params = model_cls.validate(model_params)
        dyn_params = dyn_cls.validate(dyn_params)
        d = _field(spec, "d", int, None, lambda v: v >= 2, ">= 2")
        alpha = spec.get("alpha")
        if alpha is not None:
            alpha = _field(spec, "alpha", float, None, lambda v: v > 0 and math.isfinite(v), "> 0")
        t_max = _field(spec, "t_max", float, None, lambda v: 0 < v < 1e6, "> 0")
        n_times = _field(spec, "n_times", int, 41, lambda v: 2 <= v <= 100_000, "in [2, 100000]")
        seeds = _field(spec, "seeds", int, 8, lambda v: 2 <= v <= 100_000, "in [2, 100000] (>= 2 for a noise floor)")
        seed = _field(spec, "seed", int, 0, lambda v: v >= 0, ">= 0")
        sampling = dyn_cls.sampling
        if sampling == "online" and alpha is not None:
            raise InputError(f"scenario: alpha = {alpha} is not allowed with dynamics '{dyn_name}', which "
                             "draws fresh samples (remove alpha, or use sgd/gd/sgf for finite data)")
        if sampling == "finite" and alpha is None:
            raise InputError(f"scenario: dynamics '{dyn_name}' needs finite data: give alpha (n = alpha*d)")
        if alpha is not None and round(alpha * d) < 1:
            raise InputError(f"scenario: alpha*d = {alpha * d:g} gives no samples (need round(alpha*d) >= 1)")
        name = str(spec.get("name") or "")
        scen = cls(model_name, _freeze(model_params), dyn_name, _freeze(dyn_params), d, alpha,
                   t_max, n_times, seeds, seed, name)
        model_cls.check_scenario(scen)
        dyn_cls.check_scenario(scen)
        _check_memory(scen, reg)
        return scen

    @classmethod
    def from_toml(cls, path, registry=None) -> "Scenario":
        return cls.from_dict(load_toml(path), registry)

    # -- views ----------------------------------------------------------------------------------
    @property
    def model_params(self) -> Mapping:
        return MappingProxyType(dict(self.model_items))

    @property
    def dynamics_params(self) -> Mapping:
        return MappingProxyType(dict(self.dynamics_items))

    @property
    def n(self) -> int | None:
        """Number of samples (finite data), else None."""
        return None if self.alpha is None else int(round(self.alpha * self.d))

    def to_dict(self) -> dict:
        out = {"model": {"name": self.model, "params": dict(self.model_items)},
               "dynamics": {"name": self.dynamics, "params": dict(self.dynamics_items)},
               "d": self.d, "t_max": self.t_max, "n_times": self.n_times,
               "seeds": self.seeds, "seed": self.seed}
        if self.alpha is not None:
            out["alpha"] = self.alpha
        if self.name:
            out["name"] = self.name
        return out

    @property
    def hash(self) -> str:
        spec = self.to_dict()
        spec.pop("name", None)
        blob = json.dumps(spec, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        p = self.dynamics_params
        g = f" gamma={p['gamma']:g}" if "gamma" in p else ""
        a = f" alpha={self.alpha:g}" if self.alpha is not None else ""
        return f"{self.model}/{self.dynamics}{g}{a} d={self.d}"

    def with_(self, **changes) -> "Scenario":
        """A copy with top-level fields or ``model_params``/``dynamics_params`` changed (re-validated)."""
        spec = self.to_dict()
        for key in ("model_params", "dynamics_params"):
            if key in changes:
                spec[key.split("_")[0]]["params"].update(changes.pop(key))
        spec.update(changes)
        return Scenario.from_dict(spec)

    def times(self) -> np.ndarray:
        """The recording grid: ``n_times`` points from 0, spaced by a whole number of steps."""
        from .registry import registry
        dt = registry().dynamics(self.dynamics).dt(self)
        steps = self.steps_per_record(dt)
        return np.arange(self.n_times) * steps * dt

    def steps_per_record(self, dt: float) -> int:
        return max(1, int(round(self.t_max / (self.n_times - 1) / dt)))


def _component_spec(spec, key):
    comp = spec.get(key)
    if isinstance(comp, str):
        return comp, {}
    if not isinstance(comp, Mapping) or "name" not in comp:
        raise InputError(f"scenario: {key} = {comp!r} is not allowed (expected a name or "
                         f"{{name = \"...\", params = {{...}}}})")
    extra = sorted(set(comp) - {"name", "params"})
    if extra:
        raise InputError(f"scenario: {key}.{extra[0]} is not a field (allowed: name, params)")
    params = comp.get("params") or {}
    if not isinstance(params, Mapping):
        raise InputError(f"scenario: {key}.params = {params!r} is not a table")
    return str(comp["name"]), dict(params)


def _field(spec, key, typ, default, ok, allowed):
    value = spec.get(key, default)
    if value is None:
        raise InputError(f"scenario: {key} is required ({typ.__name__} {allowed})")
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        if typ is int and not float(value).is_integer():
            raise TypeError
        value = typ(value)
        good = ok(value)
    except (TypeError, ValueError, OverflowError):
        good = False
    if not good:
        raise InputError(f"scenario: {key} = {spec.get(key)!r} is not allowed (expected {typ.__name__} {allowed})")
    return value


def memory_limit_bytes() -> int:
    if "HDBENCH_MAX_BYTES" in os.environ:
        return int(float(os.environ["HDBENCH_MAX_BYTES"]))
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def estimate_bytes(s: Scenario, registry=None) -> int:
    """Peak simulation memory, estimated before anything is compiled (float32, seeds vmapped): drawing
    a data set holds about four copies of it at once (random bits, uniforms, normals, the scaled
    result), and each step gathers the samples it uses and their gradients (two copies of those).
    ``simulate`` checks XLA's own count of the compiled program's buffers before running."""
    per_seed = 4 * (s.d * 8 + s.n_times * 16)                  # parameters, teacher, optimizer state, records
    if s.n is not None:
        per_seed += 4 * s.d * (4 * s.n + 2 * samples_per_step(s, registry))
    return int(MEMORY_MARGIN * s.seeds * per_seed) + MEMORY_OVERHEAD


MEMORY_MARGIN = 1.1         # a process grows a little past XLA's count of its buffers (docs/validation/memory.md)
MEMORY_OVERHEAD = 64 << 20  # the runtime's own allocations, beyond the program's buffers


def samples_per_step(s: Scenario, registry=None) -> int:
    """How many samples one step of a finite-data dynamics gathers (its ``batch`` traced, not run)."""
    from .registry import registry as default_registry
    return _samples_per_step((registry or default_registry()).dynamics(s.dynamics),
                             dataclasses.replace(s, seed=0, name=""))


@functools.lru_cache(maxsize=256)
def _samples_per_step(dyn, s: Scenario) -> int:
    import jax
    try:
        idx, _ = jax.eval_shape(lambda key: dyn.batch(key, 0, s.n, s), jax.ShapeDtypeStruct((2,), "uint32"))
        return int(idx.shape[0])
    except Exception:   # noqa: BLE001 - a plugin's batch that cannot be traced here: assume every sample
        return s.n


def check_memory(need: int, label: str, how: str) -> None:
    limit = memory_limit_bytes()
    if need > limit:
        raise InputError(f"scenario '{label}': needs about {need / 2**30:.1f} GiB ({how}), more than the "
                         f"{limit / 2**30:.1f} GiB allowed (reduce seeds, d or alpha, or set HDBENCH_MAX_BYTES)")


def _check_memory(s: Scenario, registry=None) -> None:
    check_memory(estimate_bytes(s, registry), s.label, "seeds x n x d")


# -- suites ------------------------------------------------------------------------------------
def load_toml(path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"suite file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"--suite {path} is a directory, expected a suite name or a TOML file") from None
    except OSError as exc:
        raise InputError(f"suite file '{path}' cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"suite file '{path}' is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML in '{path}': {exc}") from None


def builtin_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def suite_path(name_or_file) -> Path:
    p = Path(str(name_or_file))
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise InputError(f"suite file '{p}' does not exist")
        return p
    builtin = SUITES_DIR / f"{name_or_file}.toml"
    if not builtin.exists():
        from .errors import unknown_name
        raise unknown_name("suite", name_or_file, builtin_suites())
    return builtin


MAX_TIMEOUT = 7 * 86400.0   # a week: a longer deadline overflows the operating system's wait


def suite_timeout(name_or_file) -> float | None:
    """``[suite] timeout``: the seconds per ``predict`` call that a suite asks for (``None`` if unset), for
    suites whose theories are slow by nature; ``--timeout`` overrides it."""
    path = suite_path(name_or_file)
    value = _table(load_toml(path), "suite", path).get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < MAX_TIMEOUT:
        raise InputError(f"suite '{path.name}': [suite] timeout = {value!r} is not allowed "
                         f"(expected seconds, > 0 and < {MAX_TIMEOUT:g})")
    return float(value)


def _table(doc: dict, key: str, path) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"suite '{path.name}': {key} = {value!r} is not allowed (expected a [{key}] table)")
    return value


def load_suite(name_or_file, registry=None) -> tuple[str, list[Scenario]]:
    """Expand a suite to scenarios. File layout::

        [suite]     name = "quick"
        [defaults]  d = 400; t_max = 8.0; seeds = 8      # any scenario field
        [[scenario]]
        name = "lsq online"
        model = {name = "linear", params = {sigma = 0.5}}
        dynamics = {name = "online-sgd", params = {gamma = 0.5}}
        sweep = {"dynamics.gamma" = [0.5, 1.5], d = [200, 400]}   # Cartesian product
    """
    path = suite_path(name_or_file)
    doc = load_toml(path)
    suite_name = str(_table(doc, "suite", path).get("name", path.stem))
    defaults = _table(doc, "defaults", path)
    entries = doc.get("scenario", [])
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"suite '{path}': needs at least one [[scenario]] table (and nothing else under 'scenario')")
    out, seen = [], set()
    for i, entry in enumerate(entries):
        entry = dict(entry)
        sweep = entry.pop("sweep", {}) or {}
        if not isinstance(sweep, dict):
            raise InputError(f"suite '{path}' scenario {i + 1}: sweep = {sweep!r} is not allowed "
                             "(expected a table of lists, e.g. sweep = {d = [200, 400]})")
        keys = list(sweep)
        for key in keys:
            if not isinstance(sweep[key], list) or not sweep[key]:
                raise InputError(f"suite '{path}' scenario {i + 1}: sweep.{key} must be a non-empty list")
        for values in itertools.product(*(sweep[k] for k in keys)):
            spec = json.loads(json.dumps({**defaults, **entry}))      # deep copy
            for key, value in zip(keys, values):
                _set_path(spec, key, value, path, i)
            if keys:
                tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, values))
                spec["name"] = f"{spec.get('name', '')} [{tag}]".strip()
            try:
                scen = Scenario.from_dict(spec, registry)
            except InputError as exc:
                raise InputError(f"suite '{path.name}' scenario {i + 1}: {exc}") from None
            if scen.hash not in seen:
                seen.add(scen.hash)
                out.append(scen)
    return suite_name, out


def _set_path(spec, key, value, path, i):
    parts = key.split(".")
    if len(parts) == 1:
        spec[key] = value
    elif len(parts) == 2 and parts[0] in ("model", "dynamics"):
        comp = spec.setdefault(parts[0], {})
        if isinstance(comp, str):
            comp = spec[parts[0]] = {"name": comp}
        comp.setdefault("params", {})[parts[1]] = value
    else:
        raise InputError(f"suite '{path}' scenario {i + 1}: sweep key '{key}' is not allowed "
                         "(use a scenario field, or model.<param> / dynamics.<param>)")
