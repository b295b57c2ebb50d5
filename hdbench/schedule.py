"""Learning-rate schedules on the time axis: ``gamma(t) = gamma f(t)``, ``f`` an optax schedule.

A dynamics' ``schedule`` parameter names one of optax's schedule factories (:data:`SCHEDULES`) and
its arguments, with optax's own names; the arguments that optax counts in steps (``*_steps``,
``transition_begin``) are times ``t = samples/d`` here, so one schedule means the same curve at every
``d``, batch and ``h``. Step ``k`` of a dynamics whose steps advance ``dt`` covers ``[k dt, (k+1) dt]``
and takes the step size ``gamma dt f((k + 1/2) dt)`` (``k`` = optax's update count, from 0): the
midpoint rule, so the steps add up to ``int gamma f dt`` to O(dt^2) and a warmup from 0 does not
lag the theories' continuous ``gamma(t)`` by half a step. Values (``init_value``, ``peak_value``,
``end_value``, ``value``) multiply ``gamma``. A suite writes, for instance::

    dynamics = { name = "sgd", params = { gamma = 1.0, schedule = { name = "warmup_cosine_decay",
                 init_value = 0.0, peak_value = 1.0, warmup_steps = 1.0, decay_steps = 8.0 } } }

A scenario without ``schedule`` has constant ``gamma`` (and the hash it had before schedules existed).

Each schedule is written once against an array module ``xp`` (optax's formula, read in ``t``): the
simulation evaluates it with ``jax.numpy`` inside the optimizer, the theories with NumPy in float64
at any ``t`` they integrate through; tests/test_schedule.py checks it against optax's own factory.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Mapping

from .errors import InputError
from .params import Param

def _polynomial(t, xp, init_value, end_value, power, transition_steps, transition_begin=0.0):
    count = xp.clip(t - transition_begin, 0.0, transition_steps)
    return (init_value - end_value) * (1 - count / transition_steps) ** power + end_value


def _linear(t, xp, init_value, end_value, transition_steps, transition_begin=0.0):
    return _polynomial(t, xp, init_value, end_value, 1.0, transition_steps, transition_begin)


def _cosine_decay(t, xp, init_value, decay_steps, alpha=0.0, exponent=1.0):
    cosine = 0.5 * (1 + xp.cos(xp.pi * xp.minimum(t, decay_steps) / decay_steps))
    return init_value * ((1 - alpha) * cosine**exponent + alpha)


def _exponential_decay(t, xp, init_value, transition_steps, decay_rate, transition_begin=0.0, staircase=False,
                       end_value=None):
    count = t - transition_begin
    power = xp.floor(count / transition_steps) if staircase else count / transition_steps
    out = xp.where(count <= 0, init_value, init_value * decay_rate**power)
    if end_value is not None:
        out = (xp.maximum if decay_rate < 1 else xp.minimum)(out, end_value)
    return out


def _warmup_cosine_decay(t, xp, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return xp.where(t < warmup_steps, _linear(t, xp, init_value, peak_value, warmup_steps),
                    _cosine_decay(t - warmup_steps, xp, peak_value, decay_steps - warmup_steps, alpha, exponent))


def _warmup_exponential_decay(t, xp, init_value, peak_value, warmup_steps, transition_steps, decay_rate,
                              transition_begin=0.0, staircase=False, end_value=None):
    return xp.where(t < warmup_steps, _linear(t, xp, init_value, peak_value, warmup_steps),
                    _exponential_decay(t - warmup_steps, xp, peak_value, transition_steps, decay_rate,
                                       transition_begin, staircase, end_value))


# name -> (f(t, xp, **arguments), the optax factory it is)
SCHEDULES = {
    "constant": (lambda t, xp, value: value + 0.0 * t, "constant_schedule"),
    "linear": (_linear, "linear_schedule"),
    "polynomial": (_polynomial, "polynomial_schedule"),
    "cosine_decay": (_cosine_decay, "cosine_decay_schedule"),
    "exponential_decay": (_exponential_decay, "exponential_decay"),
    "warmup_cosine_decay": (_warmup_cosine_decay, "warmup_cosine_decay_schedule"),
    "warmup_exponential_decay": (_warmup_exponential_decay, "warmup_exponential_decay_schedule"),
}

_MULTIPLIER = Param(1.0, float, low=0.0, doc="multiplier of gamma")
_DURATION = Param(1.0, float, low=0.0, low_open=True, doc="a duration in t = samples/d")
ARGUMENTS = {
    "value": _MULTIPLIER, "init_value": _MULTIPLIER, "peak_value": _MULTIPLIER,
    "end_value": dataclasses.replace(_MULTIPLIER, optional=True),
    "transition_steps": _DURATION, "decay_steps": _DURATION, "warmup_steps": _DURATION,
    "transition_begin": Param(0.0, float, low=0.0, doc="the time t the transition starts"),
    "decay_rate": Param(0.5, float, low=0.0, low_open=True, doc="factor per transition_steps"),
    "alpha": Param(0.0, float, low=0.0, high=1.0, doc="final fraction of init_value"),
    "exponent": Param(1.0, float, low=0.0, low_open=True), "power": Param(1.0, float, low=0.0, low_open=True),
    "staircase": Param(False, bool),
}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A validated schedule: ``name`` (a key of :data:`SCHEDULES`) and its arguments, sorted pairs."""

    name: str
    items: tuple

    @classmethod
    def parse(cls, where: str, field: str, value: Any) -> "Schedule":
        """A schedule from a suite's table ``{name = ..., **arguments}``; one-line InputError if bad."""
        if isinstance(value, Schedule):
            return value
        here = f"{where}: {field}"
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise InputError(f"{here} = {value!r} is not allowed (expected a table {{name = \"...\", ...}} "
                             f"with name one of {', '.join(SCHEDULES)})")
        name = value["name"]
        if name not in SCHEDULES:
            raise InputError(f"{here}.name = {name!r} is not allowed (expected one of {', '.join(SCHEDULES)})")
        signature = inspect.signature(optax_factory(name))
        args = {k: v for k, v in value.items() if k != "name"}
        unknown = sorted(set(args) - set(signature.parameters))
        if unknown:
            raise InputError(f"{here}: '{unknown[0]}' is not an argument of schedule '{name}' "
                             f"(allowed: {', '.join(signature.parameters)})")
        missing = [k for k, p in signature.parameters.items() if p.default is inspect.Parameter.empty and k not in args]
        if missing:
            raise InputError(f"{here}: schedule '{name}' needs {', '.join(missing)} (durations in t = samples/d)")
        checked = {k: ARGUMENTS[k].check(f"{here} '{name}'", k, v) for k, v in args.items()}
        if "warmup_steps" in checked and checked.get("decay_steps", math.inf) <= checked["warmup_steps"]:
            raise InputError(f"{here} '{name}': decay_steps = {checked['decay_steps']:g} is not allowed "
                             f"(expected > warmup_steps = {checked['warmup_steps']:g}: decay_steps counts the warmup)")
        return cls(name, tuple(sorted(checked.items())))

    @property
    def arguments(self) -> dict:
        return dict(self.items)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.arguments}

    def traced(self):
        """``f`` as a JAX-traceable function of the time ``t``."""
        import jax.numpy as jnp
        f, arguments = SCHEDULES[self.name][0], self.arguments
        return lambda t: f(t, jnp, **arguments)

    def optax(self, dt: float, scale: float):
        """The optax schedule over step counts: ``count -> scale f((count + 1/2) dt)``."""
        f = self.traced()
        return lambda count: scale * f((count + 0.5) * dt)

    def __call__(self, t):
        """``f(t)`` in float64 NumPy (``t`` a float or an array), for the theories."""
        import numpy as np
        out = SCHEDULES[self.name][0](np.asarray(t, np.float64), np, **self.arguments)
        return float(out) if np.ndim(out) == 0 else out


def optax_factory(name: str):
    """optax's own factory of schedule ``name`` (the definition :data:`SCHEDULES` follows)."""
    import optax
    return getattr(optax, SCHEDULES[name][1])


SCHEDULE = Param(None, Schedule, optional=True, parse=Schedule.parse,
                 doc="learning-rate schedule: gamma(t) = gamma f(t), an optax schedule in t (docs/conventions.md)")
