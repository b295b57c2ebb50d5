"""Plugin discovery: every entry point of group ``hdbench`` is loaded on its own.

A plugin that fails to import, whose hook raises, or that returns something invalid is recorded in
``Registry.failures`` (with its traceback) and the rest still load. Two components of one kind with
the same name are a failure naming both distributions; the first loaded (built-ins first) is kept.

Environment switches:
- ``HDBENCH_DISABLE_PLUGINS=name,...``: skip these entry points (entry-point or distribution names).
- ``HDBENCH_STRICT_PLUGINS=1``: any load failure raises :class:`PluginError` (for plugin authors' CI).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.metadata as md
import os
import traceback

import pluggy

from . import hookspecs
from .contract import Dynamics, Model, Predictor
from .errors import PluginError, unknown_name

KINDS = {"model": ("hdbench_models", Model), "dynamics": ("hdbench_dynamics", Dynamics),
         "predictor": ("hdbench_predictors", Predictor)}
BUILTIN_DIST = "hdbench"


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cls: type
    plugin: str        # entry-point name
    dist: str          # distribution that provides it
    dist_version: str

    @property
    def provider(self) -> str:
        return f"{self.dist} {self.dist_version} ({self.plugin})"

    @property
    def code(self) -> str:
        """Fingerprint of the code this component runs (``hdbench.fingerprint``)."""
        from .fingerprint import fingerprint
        return fingerprint(self.cls.__module__)


@dataclasses.dataclass(frozen=True)
class Failure:
    plugin: str
    dist: str
    error: str         # one line
    traceback: str = ""


class Registry:
    """All components known to this process, by kind and name."""

    def __init__(self, entry_points=None):
        self.entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.failures: list[Failure] = []
        self._pm = pluggy.PluginManager("hdbench")
        self._pm.add_hookspecs(hookspecs)
        disabled = {s.strip() for s in os.environ.get("HDBENCH_DISABLE_PLUGINS", "").split(",") if s.strip()}
        eps = list(md.entry_points(group="hdbench") if entry_points is None else entry_points)
        eps.sort(key=lambda ep: (_dist_name(ep) != BUILTIN_DIST, ep.name))   # built-ins win conflicts
        for ep in eps:
            if ep.name in disabled or _dist_name(ep) in disabled:
                continue
            self._load(ep)
        if self.failures and os.environ.get("HDBENCH_STRICT_PLUGINS", "") not in ("", "0"):
            f = self.failures[0]
            raise PluginError(f"plugin '{f.plugin}' from {f.dist}: {f.error}")

    def _load(self, ep) -> None:
        dist, version = _dist_name(ep), _dist_version(ep)
        try:
            module = ep.load()
            self._pm.register(module, name=ep.name)
        except Exception as exc:   # noqa: BLE001 - any import error is recorded, not fatal
            self.failures.append(Failure(ep.name, dist, _one_line(exc), traceback.format_exc()))
            return
        for kind, (hook, base) in KINDS.items():
            for impl in getattr(self._pm.hook, hook).get_hookimpls():
                if impl.plugin_name != ep.name:
                    continue
                try:
                    items = list(impl.function())
                    for cls in items:
                        if not (isinstance(cls, type) and issubclass(cls, base) and cls.name):
                            raise PluginError(f"{hook} returned {cls!r}, not a named {base.__name__} subclass")
                except Exception as exc:   # noqa: BLE001
                    self.failures.append(Failure(ep.name, dist, _one_line(exc), traceback.format_exc()))
                    continue
                for cls in items:
                    self._add(Entry(kind, cls.name, cls, ep.name, dist, version))

    def _add(self, entry: Entry) -> None:
        known = self.entries[entry.kind]
        if entry.name in known:
            first = known[entry.name]
            self.failures.append(Failure(entry.plugin, entry.dist,
                f"{entry.kind} '{entry.name}' from {entry.dist} conflicts with the one from "
                f"{first.dist}; keeping {first.dist}'s"))
            return
        known[entry.name] = entry

    # -- lookup ---------------------------------------------------------------------------------
    def entry(self, kind: str, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            raise unknown_name(kind, name, self.entries[kind]) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def model(self, name: str) -> Model:
        return _instance(self.entry("model", name).cls)

    def dynamics(self, name: str) -> Dynamics:
        return _instance(self.entry("dynamics", name).cls)

    def predictor(self, name: str) -> Predictor:
        return _instance(self.entry("predictor", name).cls)

    def predictors(self) -> list[Predictor]:
        return [self.predictor(n) for n in self.names("predictor")]

    def plugin_versions(self) -> dict[str, str]:
        return {e.plugin: f"{e.dist} {e.dist_version}" for kind in self.entries.values() for e in kind.values()}


@functools.lru_cache(maxsize=None)
def _instance(cls):
    """One instance per component class, so predictors may cache compiled solvers on ``self``."""
    return cls()


_REGISTRY: Registry | None = None


def registry(refresh: bool = False) -> Registry:
    """The process-wide registry (built on first use; ``refresh=True`` rescans entry points)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry()
    return _REGISTRY


def _dist_name(ep) -> str:
    return ep.dist.name if getattr(ep, "dist", None) is not None else "?"


def _dist_version(ep) -> str:
    return ep.dist.version if getattr(ep, "dist", None) is not None else "?"


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0] if text else type(exc).__name__
