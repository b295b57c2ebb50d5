"""Scenario: an immutable, validated, content-hashed value.

A scenario is model (name + params) + dynamics (name + params) + dimension ``d`` (+ ``alpha`` for
finite data, ``n = round(alpha d)``) + horizon ``t_max`` + ``n_times`` grid points + ``seeds``.
Its ``hash`` covers everything that changes the simulation (not the display ``name``). It is
validated against a registry once, when built (``from_dict``); afterwards it needs none: the time
step of its dynamics is part of the value, so ``times()`` is pure.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .errors import InputError
from .memory import check_scenario_memory

TOP_LEVEL = {"name", "model", "dynamics", "d", "alpha", "t_max", "n_times", "seeds", "seed"}


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
    dt: float = dataclasses.field(default=0.0, compare=False, repr=False)   # its dynamics' time per step

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], registry=None) -> "Scenario":
        """Validate ``spec`` against ``registry`` (default: the process-wide one) into a scenario."""
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
        scen = dataclasses.replace(scen, dt=float(reg.dynamics(dyn_name).dt(scen)))
        check_scenario_memory(scen, reg)
        return scen

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
        out = {"model": {"name": self.model, "params": _plain(self.model_items)},
               "dynamics": {"name": self.dynamics, "params": _plain(self.dynamics_items)},
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

    def with_(self, registry=None, **changes) -> "Scenario":
        """A copy with top-level fields or ``model_params``/``dynamics_params`` changed, re-validated
        against ``registry`` (as ``from_dict``)."""
        spec = self.to_dict()
        for key in ("model_params", "dynamics_params"):
            if key in changes:
                spec[key.split("_")[0]]["params"].update(changes.pop(key))
        spec.update(changes)
        return Scenario.from_dict(spec, registry)

    def times(self) -> np.ndarray:
        """The recording grid: ``n_times`` points from 0, spaced by a whole number of steps."""
        return np.arange(self.n_times) * self.steps_per_record(self.dt) * self.dt

    def steps_per_record(self, dt: float) -> int:
        return max(1, int(round(self.t_max / (self.n_times - 1) / dt)))


def _plain(items) -> dict:
    """Parameters as plain data (a structured value such as a schedule as its table)."""
    return {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in items}


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
