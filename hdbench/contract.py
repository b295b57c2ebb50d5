"""The plugin contract: the three kinds of component a plugin provides, and what each must do.

A plugin module returns component classes from its hook (``hdbench.hookspecs``):
- :class:`Model`: the data, the student's loss and its exact observables (JAX);
- :class:`Dynamics`: an optax optimizer and the map of its steps onto the time ``t = samples/d``;
- :class:`Predictor`: a theory, curves of observables over ``t`` for a scenario.
Each class's docstring states its rules in full; ``docs/writing-a-theory.md`` walks through one.
Models and dynamics declare typed parameters (:class:`~hdbench.params.Param`), validated into the
scenario and part of its hash. Predictors have no parameters a suite can set: a theory's numerical
settings are class attributes, and a variant with other settings is a subclass with its own name
(its own row in the leaderboard, its own cache entries).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Mapping

from .errors import InputError
from .params import Param


class Component(abc.ABC):
    """Common base: a unique ``name`` (how suites and the CLI refer to it) and a one-line
    ``description`` (shown by ``hdbench list``). The registry instantiates each class once per
    process, with no arguments. Stored results are keyed by the providing distribution's version and
    a fingerprint of the module's source (and of what it imports from its own package), so editing
    the code invalidates them."""

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""


class Configurable(Component):
    """A component with typed parameters: ``params = {name: Param(...)}``, validated (defaults
    filled, types coerced, ranges checked) into the scenario, whose hash they are part of."""

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


class Model(Configurable):
    """The data distribution, the student's per-sample loss and its exact observables (JAX).

    Rules (all functions pure JAX, traced once per scenario shape; ``p`` is the validated parameter
    dict; data ``x`` in the normalisation of docs/conventions.md, ``E x x^T = Sigma`` with
    ``tr(Sigma)/d = 1`` unless the model says otherwise):
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
    - ``divergence_statistic(obs)``: a scalar that blows up when the dynamics diverges.
    - ``check_params(p)`` / ``check_scenario(s)``: cross-field checks, raising ``InputError``.
    Observable names are plain identifiers; ``std(...)``, ``unc(...)`` and ``limit(...)`` are
    reserved for predictions (:class:`Predictor`).
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


class Dynamics(Configurable):
    """How parameters move: an optax optimizer plus the map of its steps onto ``t = samples/d``.

    Rules:
    - ``sampling``: ``"online"`` (fresh samples, ``alpha`` must be absent), ``"finite"`` (needs
      ``alpha``) or ``"either"`` (online without ``alpha``, with-replacement batches with it).
    - ``dt(scenario)``: time advanced by one step (``B/d`` for stochastic dynamics, ``h`` for flows).
    - ``optimizer(scenario)``: the optax ``GradientTransformation`` applied to the gradient of the
      weighted loss ``sum_j w_j loss(x_j, y_j)``; a dynamics that declares the ``schedule`` parameter
      (``hdbench.schedule.SCHEDULE``) builds its step with ``learning_rate(scenario, scale)``.
    - ``batch(key, step, n, scenario)``: ``(idx, w)``, the sample indices used at this step and
      their weights (finite data). Multi-pass SGD draws ``B`` indices with weights ``1/B``; gradient
      descent uses all ``n`` with weights ``1/n``; SGF re-weights all samples with Gaussian noise.
      ``idx = None`` means all ``n`` samples in order (the engine then reads the data without a copy).
      For online dynamics ``online_batch_size(scenario)`` fresh samples get weights ``1/B``.
    - ``batch_state(key, n, scenario)`` and ``batch_with_state(key, step, n, scenario, state)``
      (optional): the same indices and weights as ``batch``, with a state carried from step to step,
      for a sampler that need not redo its work every step (reshuffled epochs draw one permutation per
      epoch). The engine uses these; by default they are ``batch`` with no state.
    """

    kind = "dynamics"
    sampling: ClassVar[str] = "finite"

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        # an unset optional parameter (no schedule, fixed-beta momentum) is not part of the scenario:
        # scenarios keep the hash they had before the parameter existed
        return {k: v for k, v in out.items() if v is not None}

    def learning_rate(self, scenario, scale: float):
        """optax's ``learning_rate`` for a step of size ``scale`` at constant gamma: ``scale`` itself, or
        under the scenario's ``schedule`` (:mod:`hdbench.schedule`) ``count -> scale f((count + 1/2) dt)``."""
        schedule = scenario.dynamics_params.get("schedule")
        return scale if schedule is None else schedule.optax(self.dt(scenario), scale)

    @abc.abstractmethod
    def dt(self, scenario) -> float:
        ...

    @abc.abstractmethod
    def optimizer(self, scenario):
        ...

    def batch(self, key, step, n, scenario):
        raise TypeError(f"dynamics '{self.name}' draws fresh samples; it has no finite-data batch")

    def batch_state(self, key, n, scenario):
        return ()

    def batch_with_state(self, key, step, n, scenario, state):
        return (*self.batch(key, step, n, scenario), state)

    def online_batch_size(self, scenario) -> int:
        return int(scenario.dynamics_params.get("batch_size", 1))


@dataclasses.dataclass(frozen=True)
class Support:
    """Answer of ``Predictor.supports``: truthy when supported; when not, ``reason`` is the one line the
    leaderboard shows as "n/a: reason". Build it with ``YES`` or ``no("reason")``."""

    ok: bool
    reason: str = ""

    def __bool__(self):
        return self.ok


YES = Support(True)


def no(reason: str) -> Support:
    return Support(False, reason)


class Predictor(Component):
    """A theory: deterministic curves of observables over time for a scenario.

    Rules:
    - ``supports(scenario) -> Support`` (or ``True``/``False``): cheap (no solving); ``no("reason")``
      outside the regime the theory claims (model, dynamics, parameter range). A declined scenario
      scores "n/a: reason"; ``False`` alone reads "n/a: supports() returned False (no reason given)".
    - ``predict(scenario, times) -> {name: array}``, each array of ``len(times)`` floats on exactly
      the requested ``times`` (``t = samples/d``, conventions of docs/conventions.md). Predictors
      never see the simulation. The names:
      - ``NAME``, any of the model's observables: the seeds' mean of NAME. Any subset; lacking one
        of the model's headline observables makes the prediction *partial*, ranked after the
        complete ones.
      - ``std(NAME)``: the spread (standard deviation) of NAME across seeds.
      - ``limit(NAME)``: the t -> infinity value of NAME as a constant array, scored against NAME at
        the last scored time only (``supports`` should decline horizons too short to get there).
      - ``unc(NAME)``: the predictor's own standard error of NAME (a Monte-Carlo theory); it widens
        the z-score and is reported as the uncertainty, and is never scored itself.
      Names the model does not have are not scored. Values are finite where the theory claims an
      answer; a divergence the theory predicts is ``+inf`` (or ``-inf``) from that time on, and NaN
      is allowed only after it. Any other NaN, a wrong length, a raise or a crash fails the item
      (recorded, never fatal).
    - The runner calls ``supports`` and then ``predict``, each in a worker process and each under the
      timeout: the first (cold) call includes compilation; if it took under 5 s it is called once
      more, and that warm time is the predictor's speed (else the cold time stands for it, an upper
      bound). Cache compiled solvers on ``self`` or the module, keyed by shape, not by scenario.
    - ``examples`` (optional): small scenario specs inside the regime, which the conformance tests
      add to their candidates (for theories whose regime default parameters do not reach).
    - ``schedules``: True when ``predict`` follows a learning-rate schedule (``gamma(t) = gamma f(t)``,
      :mod:`hdbench.schedule`, read with ``scenario.dynamics_params.get("schedule")``). A predictor
      that leaves it False is not asked about a scheduled scenario (n/a), so a constant-gamma
      theory never scores a scheduled run with its unscheduled curve.
    """

    kind = "predictor"
    examples: ClassVar[list] = []
    schedules: ClassVar[bool] = False

    @abc.abstractmethod
    def supports(self, scenario) -> Support:
        ...

    @abc.abstractmethod
    def predict(self, scenario, times):
        ...


def contract_gate(predictor, scenario) -> Support:
    """What the contract declines before ``supports`` is asked: a scheduled scenario for a predictor
    that does not declare ``schedules``."""
    if "schedule" in scenario.dynamics_params and not predictor.schedules:
        return no("learning-rate schedule: this theory takes a constant gamma only")
    return YES
