"""Committee-machine ODE: hdbench's ``saad-solla`` against sgoldt/nn2pp's C++ integrator (issue 3).

nn2pp is not part of hdbench (nor is its code here): pass the path of its ``scmpp_ode.cpp`` in a checkout
of sgoldt/nn2pp (its ``libnn2pp.h`` beside it is on the include path). It is
compiled with g++ -O3 and Armadillo (Debian: libarmadillo-dev) into ``nn2pp/driver.cpp``, which times
its ``propagate`` (explicit Euler) alone. Both integrate the same Saad-Solla equations (erf, K = M,
first layer only, gamma = lr = 0.5, from Q = 0.5 I, R = 0.1 I, v = A = 1) to t = 20; accuracy is the
relative error of eg(t = 20) against saad-solla with a 50x smaller RK4 step; each cell gives seconds
and that error. Timings: best of 3,
warm (saad-solla compiled beforehand), one process at a time.

usage: python benchmarks/validation/nn2pp_compare.py PATH/scmpp_ode.cpp [K ...]
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hdbench
import hdbench_plugins.solvers.committee_ode as saad
from hdbench_plugins.common.committee import initial_overlaps

HERE = Path(__file__).parent / "nn2pp"
GAMMA, T_MAX = 0.5, 20.0


def build(source: str, out: Path) -> Path:
    exe = out / "driver"
    subprocess.run(["g++", "-O3", "-march=native", "-DARMA_NO_DEBUG", f'-DNN2PP_SOURCE="{Path(source).resolve()}"',
                    f"-I{HERE}", f"-I{Path(source).resolve().parent}", str(HERE / "driver.cpp"), "-o", str(exe), "-larmadillo"], check=True)
    return exe


def best_of(fn, repeats=3):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main(source, Ks=(2, 8, 16)):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exe = build(source, tmp)
        print("| K = M | saad-solla, RK4 step 0.05 (default) | saad-solla, RK4 step 0.25 | nn2pp, Euler dt = 0.01 (default) | nn2pp, Euler dt = 0.001 |")
        print("|---|---|---|---|---|")
        for K in Ks:
            s = hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": K, "M": K, "r0": 0.1}},
                                            "dynamics": {"name": "online-sgd", "params": {"gamma": GAMMA}},
                                            "d": 4 * K + 64, "t_max": T_MAX, "seeds": 2})
            times = s.times()
            pred = hdbench.registry().predictor("saad-solla")
            default, ours = saad.DT, []
            try:
                for step in (default / 50, default, 0.25):
                    saad.DT = step
                    pred.predict(s, times)
                    ours.append(best_of(lambda: pred.predict(s, times)))
            finally:
                saad.DT = default
            ref = ours[0][1]["gen_error"][-1]
            Q0, R0 = initial_overlaps(s.model_params)
            for name, arr in (("Q0", Q0), ("R0", R0), ("v0", np.ones(K)), ("A0", np.ones(K))):
                np.savetxt(tmp / name, np.atleast_2d(arr) if arr.ndim == 2 else arr[:, None])
            cells = [f"{secs:.3g} s, {abs(curves['gen_error'][-1] / ref - 1):.1e}" for secs, curves in ours[1:]]
            for step in (0.01, 0.001):
                if K > 8 and step < 0.01:
                    cells.append("not run (minutes)")
                    continue
                args = [str(exe), *(str(tmp / n) for n in ("Q0", "R0", "v0", "A0")), str(GAMMA), str(T_MAX), str(step)]
                runs = [subprocess.run(args, check=True, capture_output=True, text=True).stdout.split() for _ in range(3)]
                secs, eg = min(float(r[0]) for r in runs), float(runs[0][1])
                cells.append(f"{secs:.3g} s, {abs(eg / ref - 1):.1e}")
            print(f"| {K} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], tuple(int(k) for k in sys.argv[2:]) or (2, 8, 16))
