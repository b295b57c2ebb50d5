"""Suites: TOML files that expand to scenarios (``[suite]``, ``[defaults]``, ``[[scenario]]`` with
optional sweeps). Built-in suites live in ``hdbench/suites``."""
from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from pathlib import Path

from .errors import InputError, unknown_name
from .scenario import Scenario

SUITES_DIR = Path(__file__).parent / "suites"
MAX_TIMEOUT = 7 * 86400.0   # a week: a longer deadline overflows the operating system's wait


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
        raise unknown_name("suite", name_or_file, builtin_suites())
    return builtin


@dataclasses.dataclass(frozen=True)
class Suite:
    """A loaded suite: its ``name``, its ``scenarios`` (deduplicated by hash, in file order) and the
    seconds per ``predict`` call it asks for (``timeout``, ``None`` if unset; ``--timeout`` overrides it)."""
    name: str
    scenarios: list
    timeout: float | None = None


def _timeout(doc, path) -> float | None:
    """``[suite] timeout``, for suites whose theories are slow by nature."""
    value = _table(doc, "suite", path).get("timeout")
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


def load_suite(name_or_file, registry=None) -> Suite:
    """Read a suite (a built-in name or a TOML file) once and expand it to scenarios. File layout::

        [suite]     name = "quick"; timeout = 600                 # timeout: optional, seconds per predict
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
    return Suite(suite_name, out, _timeout(doc, path))


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
