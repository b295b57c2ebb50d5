"""Fingerprints of the code behind a stored result, so that a cache never outlives its code.

A module's fingerprint hashes its source and the sources of the modules it imports (anywhere in the
file, read statically), transitively, within its own top-level package and hdbench's built-in
plugins (``hdbench_plugins``: models and shared solvers a theory may build on). A prediction is
cached under its predictor module's fingerprint, a simulation under the engine's, the model's and
the dynamics' together, and a score under the scorer's: editing any of them invalidates what it
made, whether or not a version string was bumped. Installed libraries (numpy, jax, ...) are not
hashed; their versions are recorded with each run.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

SHARED = ("hdbench_plugins",)


@functools.lru_cache(maxsize=None)
def _spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


@functools.lru_cache(maxsize=None)
def _source(name: str) -> bytes | None:
    """The module's file (source, or the binary of an extension), None if it is not a module."""
    spec = _spec(name)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    return Path(spec.origin).read_bytes()


@functools.lru_cache(maxsize=None)
def _imports(name: str) -> frozenset:
    """The modules (not packages) ``name`` imports from its own top-level package or a shared one."""
    source = _source(name)
    if source is None or not _spec(name).origin.endswith(".py"):
        return frozenset()
    spec = _spec(name)
    package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
    roots = {name.split(".")[0], *SHARED}
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module
            except (ImportError, ValueError):
                continue
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(full for full in candidates if full.split(".")[0] in roots)
    # a package's __init__ only re-exports: following it would pull in the whole package
    return frozenset(m for m in found if m != name and _source(m) is not None
                     and _spec(m).submodule_search_locations is None)


def closure(*names: str) -> list[str]:
    """The modules whose code the given modules run, themselves included, sorted."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(name))
    return sorted(m for m in seen if _source(m) is not None)


@functools.lru_cache(maxsize=None)
def fingerprint(*names: str) -> str:
    """A short hash of the source of every module in ``closure(*names)``."""
    digest = hashlib.sha256()
    for name in closure(*names):
        digest.update(name.encode() + b"\0" + _source(name) + b"\0")
    return digest.hexdigest()[:16]


def simulation_code(scenario, registry=None) -> str:
    """What a scenario's simulation depends on: the engine, its model's code and its dynamics' code."""
    from .registry import registry as default_registry
    reg = registry or default_registry()
    return fingerprint("hdbench.simulate", reg.entry("model", scenario.model).cls.__module__,
                       reg.entry("dynamics", scenario.dynamics).cls.__module__)


def scorer_code() -> str:
    return fingerprint("hdbench.score")
