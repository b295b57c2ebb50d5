"""Base classes of the three plugin kinds and their typed hyperparameters.

A component declares ``params = {"gamma": Param(0.5, float, low=0, low_open=True, doc=...)}``.
``Component.validate(params)`` fills defaults, coerces types and range-checks, raising one-line
:class:`~hdbench.errors.InputError` messages that name the component, the field, the value and what
is allowed. Validated parameters are part of the scenario hash.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar, Mapping

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


class Component(abc.ABC):
    """Common base: a ``name``, typed ``params`` and a one-line ``description``."""

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    params: ClassVar[Mapping[str, Param]] = {}

    @classmethod
    def validate(cls, params: Mapping[str, Any] | None) -> dict:
        params = dict(params or {})
        where = f"{cls.kind} '{cls.name}'"
        unknown = sorted(set(params) - set(cls.params))
        if unknown:
            raise InputError(f"{where}: unknown parameter '{unknown[0]}' "
                             f"(allowed: {', '.join(sorted(cls.params)) or 'none'})")
        out = {}
        for key, spec in cls.params.items():
            out[key] = spec.check(where, key, params.get(key, spec.default))
        cls.check_params(out)
        return out

    @classmethod
    def check_params(cls, params: dict) -> None:
        """Cross-field checks of this component's params; raise InputError. Default: none."""

    @classmethod
    def check_scenario(cls, scenario) -> None:
        """Checks against the rest of the scenario (e.g. batch size <= n); raise InputError."""


class Model(Component):
    """The data distribution, the student's per-sample loss and its exact observables (JAX).

    Contract (all functions pure JAX, traced once per scenario shape):
    - ``teacher(key, d, p)``: the teacher pytree (e.g. ``theta*`` with ``|theta*| = 1``).
    - ``init(key, d, teacher, p)``: initial student parameters, built from the summary statistics in
      ``p`` (e.g. ``m0``, ``q0``) plus a random remainder, so that theory and simulation start alike.
    - ``sample(key, n, d, teacher, p)``: ``(X, y)`` with ``X`` of shape ``(n, d)``.
    - ``loss(theta, x, y, p)``: the loss of one sample (a scalar).
    - ``observables(theta, teacher, data, p)``: ``{name: scalar}``, exact population quantities
      (``data`` is ``(X, y)`` for finite data, for ``train_*`` observables, else ``None``).
    - ``observable_names(p, finite)``: the names ``observables`` returns for these params.
    - ``headline_observables(p, finite)``: the ones every predictor is ranked on (default: all of
      them); a prediction lacking one is partial and ranks after the complete ones.
    - ``counted_observables(p, d)``: fractions of a count of things, for their standard error.
    ``p`` is the validated parameter dict.
    """

    kind = "model"

    @abc.abstractmethod
    def teacher(self, key, d, p):
        ...

    @abc.abstractmethod
    def init(self, key, d, teacher, p):
        ...

    @abc.abstractmethod
    def sample(self, key, n, d, teacher, p):
        ...

    @abc.abstractmethod
    def loss(self, theta, x, y, p):
        ...

    @abc.abstractmethod
    def observables(self, theta, teacher, data, p):
        ...

    @abc.abstractmethod
    def observable_names(self, p, finite: bool) -> tuple[str, ...]:
        ...

    def headline_observables(self, p, finite: bool) -> tuple[str, ...]:
        """The observables predictors are ranked on: risk and the summary statistics the model's
        theories share (default: every observable)."""
        return tuple(self.observable_names(p, finite))

    def counted_observables(self, p, d: int) -> dict[str, int]:
        """Observables that are, per seed, a fraction of a count of things (``{name: count}``, e.g.
        coordinates): where every seed agrees, their standard error is the binomial one of
        ``count x seeds`` things rather than zero. (Per-seed 0/1 indicators need no entry.)"""
        return {}

    def divergence_statistic(self, obs: dict):
        """A scalar that blows up when the dynamics diverges (default: ``q = |theta|^2``)."""
        return obs["q"]


class Dynamics(Component):
    """How parameters move: an optax optimizer plus the map of its steps onto ``t = samples/d``.

    Contract:
    - ``sampling``: ``"online"`` (fresh samples, ``alpha`` must be absent), ``"finite"`` (needs
      ``alpha``) or ``"either"`` (online without ``alpha``, with-replacement batches with it).
    - ``dt(scenario)``: time advanced by one step (``B/d`` for stochastic dynamics, ``h`` for flows).
    - ``optimizer(scenario)``: the optax ``GradientTransformation`` applied to the gradient of the
      weighted loss ``sum_j w_j loss(x_j, y_j)``.
    - ``batch(key, step, n, scenario)``: ``(idx, w)``, the sample indices used at this step and
      their weights (finite data). Multi-pass SGD draws ``B`` indices with weights ``1/B``; gradient
      descent uses all ``n`` with weights ``1/n``; SGF re-weights all samples with Gaussian noise.
      For online dynamics ``online_batch_size(scenario)`` fresh samples get weights ``1/B``.
    """

    kind = "dynamics"
    sampling: ClassVar[str] = "finite"

    @abc.abstractmethod
    def dt(self, scenario) -> float:
        ...

    @abc.abstractmethod
    def optimizer(self, scenario):
        ...

    def batch(self, key, step, n, scenario):
        raise TypeError(f"dynamics '{self.name}' draws fresh samples; it has no finite-data batch")

    def online_batch_size(self, scenario) -> int:
        return int(scenario.dynamics_params.get("batch_size", 1))


@dataclasses.dataclass(frozen=True)
class Support:
    """Answer of ``Predictor.supports``: truthy when supported, else carries the reason."""

    ok: bool
    reason: str = ""

    def __bool__(self):
        return self.ok


YES = Support(True)


def no(reason: str) -> Support:
    return Support(False, reason)


class Predictor(Component):
    """A theory: deterministic curves of observables over time for a scenario.

    Contract:
    - ``supports(scenario) -> Support``: cheap (no solving); ``no("reason")`` outside the regime the
      theory claims (model, dynamics, parameter range). Declined scenarios score "n/a: reason".
    - ``predict(scenario, times) -> {observable: array of len(times)}`` in the conventions of
      docs/conventions.md (time ``t = samples/d``). Any subset of the model's observables; finite values
      where the theory claims an answer. Predictors never see the simulation.
    The runner calls ``predict`` twice: the first (cold) call includes compilation, the second is
    the warm time reported as the predictor's speed.
    ``examples`` (optional): small scenario specs inside the regime, which the conformance tests add
    to their candidates (for theories whose regime default parameters do not reach).
    """

    kind = "predictor"
    examples: ClassVar[list] = []

    @abc.abstractmethod
    def supports(self, scenario) -> Support:
        ...

    @abc.abstractmethod
    def predict(self, scenario, times):
        ...
