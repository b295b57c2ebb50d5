"""JAX simulation engine: ``jit(vmap over seeds)(lax.scan over records(lax.scan over steps))``.

Every dynamics is "gradient of a weighted loss, then an optax update": at step k the dynamics picks
sample indices and weights (multinomial for SGD, uniform for GD, Gaussian re-weighting for SGF;
fresh samples for online dynamics), the engine takes ``grad sum_j w_j loss_j`` and applies the
dynamics' optax optimizer. Observables are recorded on the scenario's time grid.

Divergence: a seed whose observables become non-finite, or whose model divergence statistic
(``q = |theta|^2`` by default) exceeds ``BLOWUP``, is frozen; its observables are NaN from the first
record where that was seen, and ``diverged_at`` holds that time (``inf`` if it never diverged).

Compilation is cached per scenario shape (everything but ``seed`` and ``name``), and timed apart from
the run (benchopt's untimed warm-up): ``compile_s`` vs ``run_s``.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from .memory import MEMORY_MARGIN, MEMORY_OVERHEAD, check_memory, samples_per_step
from .scenario import Scenario

BLOWUP = 1e8
# A step on a few samples is short (a draw or a gather, two dot products): unrolling amortises the
# loop's per-step cost but compiles longer, so only above this much work (seeds x samples x d;
# docs/validation/engine.md)
UNROLL, UNROLL_ABOVE, UNROLL_MAX_SAMPLES = 8, 1e8, 64


@dataclasses.dataclass
class Simulation:
    """Per-seed observables on ``times``; ``mean``/``stderr`` over seeds (NaN after a divergence)."""

    scenario: Scenario
    times: np.ndarray
    per_seed: dict            # name -> array [seeds, len(times)]
    diverged_at: np.ndarray   # [seeds]; inf where the seed never diverged
    compile_s: float = 0.0
    run_s: float = 0.0

    @property
    def mean(self) -> dict:
        return {k: v.mean(axis=0) for k, v in self.per_seed.items()}

    @property
    def stderr(self) -> dict:
        n = self.scenario.seeds
        return {k: v.std(axis=0, ddof=1) / np.sqrt(n) for k, v in self.per_seed.items()}

    @property
    def throughput(self) -> float:
        """Samples x dimension processed per second (the run, without compilation)."""
        s = self.scenario
        return s.seeds * float(self.times[-1]) * s.d * s.d / max(self.run_s, 1e-12)


def simulate(scenario: Scenario, registry=None) -> Simulation:
    """Simulate ``scenario.seeds`` independent runs (teacher, data, init and noise per seed), with the
    model and dynamics of ``registry`` (default: the process-wide one)."""
    import jax
    import jax.numpy as jnp

    compiled, names, compile_s = _compiled(dataclasses.replace(scenario, seed=0, name=""), registry)
    check_memory(program_bytes(compiled), scenario.label, "by XLA's count of the compiled program's buffers")
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(scenario.seed), i))(
        jnp.arange(scenario.seeds))
    start = time.perf_counter()
    values = np.asarray(jax.block_until_ready(compiled(keys)), dtype=np.float64)   # [seeds, T, obs]
    run_s = time.perf_counter() - start
    times = scenario.times()
    per_seed = {name: values[:, :, i] for i, name in enumerate(names)}
    dead = ~np.isfinite(values).all(axis=2)
    first = np.where(dead.any(axis=1), dead.argmax(axis=1), -1)
    diverged_at = np.where(first >= 0, times[np.maximum(first, 0)], np.inf)
    return Simulation(scenario, times, per_seed, diverged_at, compile_s, run_s)


def program_bytes(compiled) -> int:
    """The memory a compiled program allocates when run, by XLA's own count (0 where it gives none)."""
    try:
        stats = compiled.memory_analysis()
    except Exception:   # noqa: BLE001 - not every backend counts
        stats = None
    if stats is None:
        return 0
    used = sum(getattr(stats, f, 0) or 0 for f in ("temp_size_in_bytes", "argument_size_in_bytes",
                                                    "output_size_in_bytes", "generated_code_size_in_bytes"))
    return int(MEMORY_MARGIN * used) + MEMORY_OVERHEAD


@functools.lru_cache(maxsize=64)
def _compiled(shape: Scenario, registry=None):
    import jax
    import jax.numpy as jnp

    fn, names = build(shape, registry)
    keys = jax.ShapeDtypeStruct((shape.seeds, 2), jnp.uint32)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(keys).compile()
    return compiled, names, time.perf_counter() - start


def build(s: Scenario, registry=None):
    """The per-scenario function ``keys[seeds] -> observables[seeds, n_times, n_obs]`` (not jitted)."""
    import jax
    import jax.numpy as jnp
    import optax

    from .registry import registry as default_registry

    reg = registry or default_registry()
    model, dyn = reg.model(s.model), reg.dynamics(s.dynamics)
    mp = dict(s.model_params)
    d, n, online = s.d, s.n, s.alpha is None
    dt = s.dt
    spr = s.steps_per_record(dt)
    opt = dyn.optimizer(s)
    names = tuple(model.observable_names(mp, finite=not online))
    batch = dyn.online_batch_size(s) if online else None
    per_step = batch if online else samples_per_step(s, reg)
    long_run = s.seeds * (s.n_times - 1) * spr * per_step * d >= UNROLL_ABOVE
    unroll = min(UNROLL, spr) if per_step <= UNROLL_MAX_SAMPLES and long_run else 1

    def one_seed(key):
        k_teacher, k_data, k_init, k_run = jax.random.split(key, 4)
        teacher = model.teacher(k_teacher, d, mp)
        data = None if online else model.sample(k_data, n, d, teacher, mp)
        theta = model.init(k_init, d, teacher, mp)

        def observe(theta, dead):
            obs = model.observables(theta, teacher, data, mp)
            vec = jnp.stack([jnp.asarray(obs[k], jnp.float32) for k in names])
            bad = ~jnp.all(jnp.isfinite(vec)) | (model.divergence_statistic(obs) > BLOWUP)
            dead = dead | bad
            return jnp.where(dead, jnp.nan, vec), dead

        def step(carry, k):
            theta, state, sampler = carry
            if online:
                X, y = model.sample(jax.random.fold_in(k_run, k), batch, d, teacher, mp)
                w = jnp.full((batch,), 1.0 / batch)
            else:
                idx, w, sampler = dyn.batch_with_state(k_run, k, n, s, sampler)
                X, y = data if idx is None else (data[0][idx], data[1][idx])

            def weighted_loss(th):
                return jnp.sum(w * jax.vmap(lambda x, yy: model.loss(th, x, yy, mp))(X, y))

            updates, new_state = opt.update(jax.grad(weighted_loss)(theta), state, theta)
            return (optax.apply_updates(theta, updates), new_state, sampler), None

        def record(carry, r):
            theta, state, sampler, dead = carry
            (*stepped, sampler), _ = jax.lax.scan(step, (theta, state, sampler), (r - 1) * spr + jnp.arange(spr),
                                                  unroll=unroll)
            # a seed found diverged at an earlier record stays frozen there (once per record, not per step)
            theta, state = jax.tree.map(lambda old, new: jnp.where(dead, old, new), (theta, state), tuple(stepped))
            vec, dead = observe(theta, dead)
            return (theta, state, sampler, dead), vec

        vec0, dead0 = observe(theta, jnp.array(False))
        sampler0 = () if online else dyn.batch_state(k_run, n, s)
        _, vecs = jax.lax.scan(record, (theta, opt.init(theta), sampler0, dead0), jnp.arange(1, s.n_times))
        return jnp.concatenate([vec0[None], vecs], axis=0)

    return jax.vmap(one_seed), names
