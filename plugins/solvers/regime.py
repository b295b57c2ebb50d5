"""Regime checks shared by the theories: which dynamics a limit describes, and the small-batch
condition under which it does (``B << d`` for one-pass, ``B << n`` for multi-pass SGD); and the
learning rate in time under a schedule (``gamma(t)``, and the clock of a noise-free flow)."""
from __future__ import annotations

import numpy as np
from scipy.integrate import quad

from hdbench import YES, no
from hdbench_plugins.common.spectra import is_isotropic

MAX_BATCH_FRACTION = 0.05   # B/d (online) or B/n (multi-pass) above this leaves the B << d, n regime
COORDINATEWISE = ("sign-sgd", "adam")   # per-coordinate normalised steps: solvers.coordinate_steps


def one_pass(s, online=True):
    """Online SGD with ``B/d <= MAX_BATCH_FRACTION`` (``online=False``: any dynamics; the population
    flows of ``population-gf`` only need the model)."""
    if not online:
        return YES
    if s.dynamics != "online-sgd":
        return no(f"dynamics '{s.dynamics}' is not online-sgd (one-pass theory)")
    B = s.dynamics_params["batch_size"]
    if B / s.d > MAX_BATCH_FRACTION:
        return no(f"batch_size/d = {B / s.d:.3g} > {MAX_BATCH_FRACTION} leaves the B << d regime")
    return YES


def adapted_momentum(s) -> bool:
    """Dimension-adapted heavy ball (``momentum`` with ``kappa``): its limit is second order, not SGD."""
    return s.dynamics == "momentum" and s.dynamics_params.get("kappa") is not None


def streaming_sgd(s, adaptive=False, second_order=False, sign=False):
    """Online SGD, or heavy-ball ``momentum`` on fresh samples, with ``B/d <= MAX_BATCH_FRACTION``:
    the dynamics whose d -> infinity limit is online SGD at :func:`sgd_gamma`; with ``adaptive``
    also ``adagrad-norm`` on fresh samples, for a theory that integrates :func:`adaptive_ode`; with
    ``second_order`` also dimension-adapted momentum, for a theory that carries the velocity; with
    ``sign`` also ``sign-sgd`` and ``adam`` (:mod:`coordinate_steps`)."""
    if s.dynamics == "adagrad-norm" and s.alpha is None and not adaptive:
        return no("dynamics 'adagrad-norm': this theory has no adaptive learning rate")
    if adapted_momentum(s) and not second_order:
        return no("dimension-adapted momentum (kappa): this theory has no velocity (its limit is not SGD)")
    if s.dynamics in COORDINATEWISE and s.alpha is None and not sign:
        return no(f"dynamics '{s.dynamics}': this theory has no per-coordinate (sign or Adam) step")
    if s.dynamics in ("momentum", "adagrad-norm") + COORDINATEWISE and s.alpha is None:
        B = s.dynamics_params["batch_size"]
        if B / s.d > MAX_BATCH_FRACTION:
            return no(f"batch_size/d = {B / s.d:.3g} > {MAX_BATCH_FRACTION} leaves the B << d regime")
        return YES
    return one_pass(s)


def sgd_gamma(s) -> float:
    """The learning rate of the plain SGD a dynamics becomes as d -> infinity: ``gamma``, and for
    heavy-ball momentum at a fixed ``beta`` ``gamma / (1 - beta)`` (the velocity sums the gradients
    with weights ``beta^k``: over the O(1/(1 - beta)) steps it remembers, e moves by O(1/d), so drift
    and, the gradients being independent across steps, noise both scale by ``1/(1 - beta)``; on finite
    data the batches are drawn with replacement, so the same holds for multi-pass SGD: each sample's
    kick is spread over O(1/d) of time)."""
    gamma = s.dynamics_params["gamma"]
    if adapted_momentum(s):
        return gamma    # the kappa -> infinity rate; the velocity is the theory's (regime.adapted_momentum)
    if s.dynamics == "adagrad-norm":
        return gamma / s.dynamics_params["b"]    # its starting rate; the accumulator: adaptive_ode
    return gamma / (1 - s.dynamics_params["beta"]) if s.dynamics == "momentum" else gamma


def adaptive_ode(s, step, y0):
    """A theory's ODE under ``s``'s learning rate. ``step(t, y, gamma) -> (dy/dt, g2)`` is the theory at
    rate ``gamma``, ``g2 = E|grad loss|^2 / d`` its mean squared per-sample gradient (0 for a noise-free
    flow). Returns ``(rhs, y0)``. For ``adagrad-norm`` the state gains the accumulator ``G`` (last
    entry, ``G(0) = 0``): ``gamma(t) = gamma f(t) / sqrt(b^2 + G)``, ``dG/dt = g2`` (the limit of
    ``G_k = sum (B/d)^2 |g_k|^2``: ``d/B`` steps per unit t of ``(B/d)^2 (d/B) E|grad loss|^2``).
    Otherwise the state is unchanged and ``gamma(t)`` is :func:`learning_rate`."""
    rate = learning_rate(s)
    y0 = np.asarray(y0, float)
    if s.dynamics != "adagrad-norm":
        return (lambda t, y: step(t, y, rate(t))[0]), y0
    inverse_b = 1.0 / s.dynamics_params["b"]

    def rhs(t, y):
        dy, g2 = step(t, y[:-1], rate(t) / np.sqrt(1.0 + max(y[-1], 0.0) * inverse_b**2))
        return np.append(dy, g2)

    return rhs, np.append(y0, 0.0)


def schedule_of(s):
    """The scenario's learning-rate schedule ``f`` (:class:`hdbench.Schedule`: ``gamma(t) = gamma f(t)``), or None."""
    return s.dynamics_params.get("schedule")


def learning_rate(s):
    """``gamma(t)`` of the SGD a dynamics becomes as d -> infinity, as a function of ``t``:
    :func:`sgd_gamma` times the schedule's ``f(t)`` (a schedule moves over O(1) times, momentum's
    memory lasts O(1/d), so fixed-beta momentum follows the schedule at ``gamma f(t)/(1 - beta)``);
    for ``adagrad-norm``, the rate before :func:`adaptive_ode` divides it by ``sqrt(1 + G/b^2)``."""
    gamma, schedule = sgd_gamma(s), schedule_of(s)
    return (lambda t: gamma) if schedule is None else (lambda t: gamma * schedule(t))


def flow_clock(s, times, schedule=None):
    """``tau(t) = int_0^t f``: a gradient flow ``dtheta/dt = -gamma f(t) grad L`` (no noise term) is
    the flow at constant ``gamma`` read at ``tau(t)`` instead of ``t``; ``times`` itself without a schedule.
    ``schedule``: a factor ``f(t)`` in place of the scenario's."""
    times = np.asarray(times, float)
    schedule = schedule_of(s) if schedule is None else schedule
    if schedule is None:
        return times
    pieces = [quad(schedule, a, b, limit=200, epsabs=1e-13, epsrel=1e-12)[0] for a, b in zip(times[:-1], times[1:])]
    return np.concatenate([[0.0], np.cumsum(pieces)]) + quad(schedule, 0.0, times[0], epsabs=1e-13)[0]


def rate_along_the_clock(s, scale, t_end, points=20001, schedule=None):
    """``u -> f(t(u))``, the schedule's factor read on the clock ``u(t) = scale int_0^t f`` (the time of
    a theory whose rate the schedule multiplies; trapezoid on ``points`` over [0, t_end]), or None
    without a schedule. A schedule at 0 stops the clock; ``f`` is then 0 there. ``schedule``: a factor
    ``f(t)`` in place of the scenario's."""
    schedule = schedule_of(s) if schedule is None else schedule
    if schedule is None:
        return None
    t = np.linspace(0.0, max(float(t_end or s.t_max), 1e-9), points)
    f = np.asarray(schedule(t), float)
    clock = scale * np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(t))])
    return lambda u: np.asarray(schedule(np.interp(u, clock, t)), float)


def on_clock(flow, s, times):
    """A noise-free flow under ``s``'s schedule: ``flow`` (a solver at constant gamma, of any increasing
    times) run on ``s`` without its schedule at the distinct values of :func:`flow_clock` (a schedule
    at 0 stops the clock), read back on ``times``."""
    if schedule_of(s) is None:
        return flow(s, times)
    taus, back = np.unique(flow_clock(s, times), return_inverse=True)
    curves = flow(s.with_(dynamics_params={"schedule": None}), taus)
    return {k: np.asarray(v)[back] for k, v in curves.items()}


def small_batches(s, second_order=False):
    """Multi-pass SGD (or momentum or AdaGrad-Norm on finite data) with ``B/n <= MAX_BATCH_FRACTION``
    (other dynamics pass); dimension-adapted momentum only for a theory with the velocity
    (``second_order``)."""
    if adapted_momentum(s) and not second_order:
        return no("dimension-adapted momentum (kappa) on finite data: this theory has no velocity")
    B = s.dynamics_params.get("batch_size", 1)
    if (s.dynamics.startswith("sgd") or s.dynamics in ("momentum", "adagrad-norm")) and B / s.n > MAX_BATCH_FRACTION:
        return no(f"batch_size/n = {B / s.n:.3g} > {MAX_BATCH_FRACTION} leaves the B << n regime")
    return YES


def unregularised(s):
    """Theories derived without a penalty decline ``ridge > 0``."""
    ridge = s.model_params.get("ridge", 0.0)
    return no(f"ridge = {ridge:g}: this theory has no penalty term") if ridge else YES


def isotropic_data(s):
    """Theories derived for ``Sigma = I`` decline an anisotropic spectrum."""
    p = s.model_params
    return YES if is_isotropic(p) else no(f"spectrum '{p['spectrum']}' is anisotropic; this theory assumes Sigma = I")
