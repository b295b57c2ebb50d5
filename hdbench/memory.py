"""Memory guard: estimate a scenario's peak simulation memory before anything is compiled, and refuse
one that needs more than the machine allows (``HDBENCH_MAX_BYTES``, default half the physical memory).
The ratios behind the margins are in docs/validation/memory.md."""
from __future__ import annotations

import dataclasses
import functools
import os

from .errors import InputError


def memory_limit_bytes() -> int:
    if "HDBENCH_MAX_BYTES" in os.environ:
        return int(float(os.environ["HDBENCH_MAX_BYTES"]))
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def estimate_bytes(s, registry=None) -> int:
    """Peak simulation memory, estimated before anything is compiled (float32, seeds vmapped): drawing
    a data set holds about four copies of it at once (random bits, uniforms, normals, the scaled
    result), and each step gathers the samples it uses and their gradients (two copies of those).
    ``simulate`` checks XLA's own count of the compiled program's buffers before running."""
    per_seed = 4 * (s.d * 8 + s.n_times * 16)                  # parameters, teacher, optimizer state, records
    if s.n is not None:
        per_seed += 4 * s.d * (4 * s.n + 2 * samples_per_step(s, registry))
    return int(MEMORY_MARGIN * s.seeds * per_seed) + MEMORY_OVERHEAD


MEMORY_MARGIN = 1.1         # a process grows a little past XLA's count of its buffers (docs/validation/memory.md)
MEMORY_OVERHEAD = 64 << 20  # the runtime's own allocations, beyond the program's buffers


def samples_per_step(s, registry=None) -> int:
    """How many samples one step of a finite-data dynamics gathers (its ``batch`` traced, not run)."""
    from .registry import registry as default_registry
    return _samples_per_step((registry or default_registry()).dynamics(s.dynamics),
                             dataclasses.replace(s, seed=0, name=""))


@functools.lru_cache(maxsize=256)
def _samples_per_step(dyn, s) -> int:
    import jax
    try:
        idx, _ = jax.eval_shape(lambda key: dyn.batch(key, 0, s.n, s), jax.ShapeDtypeStruct((2,), "uint32"))
        return s.n if idx is None else int(idx.shape[0])
    except Exception:   # noqa: BLE001 - a plugin's batch that cannot be traced here: assume every sample
        return s.n


def check_memory(need: int, label: str, how: str) -> None:
    limit = memory_limit_bytes()
    if need > limit:
        raise InputError(f"scenario '{label}': needs about {need / 2**30:.1f} GiB ({how}), more than the "
                         f"{limit / 2**30:.1f} GiB allowed (reduce seeds, d or alpha, or set HDBENCH_MAX_BYTES)")


def check_scenario_memory(s, registry=None) -> None:
    check_memory(estimate_bytes(s, registry), s.label, "seeds x n x d")
