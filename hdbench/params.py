"""Typed, range-checked hyperparameters of models and dynamics.

A component declares ``params = {"gamma": Param(0.5, float, low=0, low_open=True, doc=...)}``;
``Param.check`` coerces one value and raises a one-line :class:`~hdbench.errors.InputError` naming
the component, the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from .errors import InputError


MAX_MAGNITUDE = 1e8   # any float parameter: beyond it squares and exponentials overflow before any physics


@dataclasses.dataclass(frozen=True)
class Param:
    default: Any
    type: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False          # low < value instead of low <= value
    choices: tuple | None = None
    optional: bool = False          # None allowed
    doc: str = ""
    parse: Callable | None = None   # a structured value: parse(where, name, value) validates and returns it

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        parts = [self.type.__name__]
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        high = self.high if self.high is not None or self.type is not float else MAX_MAGNITUDE
        if high is not None:
            parts.append(f"{'and ' if self.low is not None else ''}<= {high:g}")
        if self.type is float and self.low is None:
            parts.append(f"and >= {-MAX_MAGNITUDE:g}")
        return " ".join(parts) + (" or none" if self.optional else "")

    def check(self, where: str, name: str, value: Any) -> Any:
        bad = InputError(f"{where}: {name} = {value!r} is not allowed (expected {self.allowed()})")
        if value is None:
            if self.optional:
                return None
            raise bad
        if self.parse is not None:
            return self.parse(where, name, value)
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            value = float(value)
            if not (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE):
                raise bad
        elif self.type is int:
            if isinstance(value, bool) or not (isinstance(value, int) or
                                               (isinstance(value, float) and value.is_integer())):
                raise bad
            value = int(value)
        elif self.type is tuple:
            if not isinstance(value, (list, tuple)):
                raise bad
            value = tuple(value)
        elif not isinstance(value, self.type):
            raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value
