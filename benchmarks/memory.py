"""Peak memory of one simulation against hdbench's guards, measured in a fresh process.

``python benchmarks/memory.py '{scenario spec as JSON}'`` prints JSON: ``grow_bytes`` (peak RSS growth,
``VmHWM``, over a process that has already run a tiny simulation, so JAX's start-up is not counted),
``estimate_bytes`` (the up-front estimate used when a scenario is validated) and ``guard_bytes``
(XLA's count of the compiled program's buffers, with hdbench's margin, checked before running).
"""
import json
import resource
import subprocess
import sys


def measure(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _main(spec: dict) -> dict:
    import dataclasses

    import hdbench
    from hdbench.memory import estimate_bytes
    from hdbench.simulate import _compiled, program_bytes

    tiny = dict(spec, d=20, seeds=2, n_times=3)
    hdbench.simulate(hdbench.Scenario.from_dict(tiny))
    with open("/proc/self/statm") as fh:
        base = int(fh.read().split()[1]) * resource.getpagesize()
    s = hdbench.Scenario.from_dict(spec)
    hdbench.simulate(s)
    peak = _high_water_mark()
    compiled = _compiled(dataclasses.replace(s, seed=0, name=""))[0]
    return {"grow_bytes": peak - base, "estimate_bytes": estimate_bytes(s), "guard_bytes": program_bytes(compiled)}


def _high_water_mark() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that over from the parent across exec."""
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))))
