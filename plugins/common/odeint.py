"""Fixed-step RK4 in JAX for summary-statistic ODEs: one ``lax.scan`` over output intervals, each
split into ``n_sub`` equal steps, jitted once per (right-hand side, n_sub). Run it under
``jax.enable_x64(True)`` for float64 theories."""
from __future__ import annotations

import jax
import numpy as np


def substeps(times, dt_max: float) -> int:
    """Steps per output interval so that no step exceeds ``dt_max``."""
    return max(1, int(np.ceil(np.diff(np.asarray(times, float)).max(initial=0.0) / dt_max)))


def make_rk4(rhs, n_sub: int, timed: bool = False):
    """``solve(state0, intervals, *args) -> states after each interval`` for ``d state/dt = rhs(state, *args)``
    (``state`` any pytree; ``timed``: ``rhs(state, t, *args)``, for a non-autonomous system, ``t`` from 0)."""

    def step(state, t, h, args):
        def add(s, k, a):
            return jax.tree.map(lambda x, y: x + a * y, s, k)

        def f(s, at):
            return rhs(s, at, *args) if timed else rhs(s, *args)
        k1 = f(state, t)
        k2 = f(add(state, k1, h / 2), t + h / 2)
        k3 = f(add(state, k2, h / 2), t + h / 2)
        k4 = f(add(state, k3, h), t + h)
        return jax.tree.map(lambda x, a, b, c, d: x + h / 6 * (a + 2 * b + 2 * c + d), state, k1, k2, k3, k4)

    @jax.jit
    def solve(state0, intervals, *args):
        def interval(carry, dt):
            state, t0 = carry
            h = dt / n_sub
            state = jax.lax.fori_loop(0, n_sub, lambda i, s: step(s, t0 + i * h, h, args), state)
            return (state, t0 + dt), state

        return jax.lax.scan(interval, (state0, jax.numpy.zeros((), intervals.dtype)), intervals)[1]

    return solve
