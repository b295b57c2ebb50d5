"""The default problem of SPOC-group/DMFT-integration (Gerbelot et al.'s DMFT code), solved by hdbench's
DMFT solver, against the exact oracle.

Their problem, in DMFT units (docs/theory/multipass.md section 0): ridge least squares on a linear teacher,
alpha = 3, batch fraction b = 1 (so gradient descent), lambda = 0.5, time step dt = 0.1, T = 50 steps,
start with overlap m0 = 0.2 and an independent unit-variance part (``q0 = m0^2 + 1``). Exact oracle:
gradient descent with step dt on the Marchenko-Pastur law (``(1 - dt (x + lambda))^k`` in place of
``exp(-(x + lambda) s)``). We solve it twice:
- ``exact side``: the square-loss sample side given the clocks (deterministic here): the oracle to
  machine precision;
- ``Monte Carlo``: the generic GLM sample side (the path that logistic regression uses), N paths,
  common random numbers and damping as in their code, to compare like with like; with the explicit
  margin step (``implicit=False``), which is their scheme and the oracle's. Its normals are
  moment-matched, which makes a Gaussian (least-squares) side exact: what is left (6e-4) is the
  convergence tolerance ``tol = 1e-3``, the same for every N and seed.
SPOC's own timing and accuracy, a dated fact that this script does not re-run: docs/validation/spoc.md.

Run: ``python benchmarks/validation/spoc_compare.py``.
"""
import time

import numpy as np

from hdbench_plugins.solvers import dmft
from hdbench_plugins.solvers.least_squares import mp_quadrature

ALPHA, LAM, DT, T, M0 = 3.0, 0.5, 0.1, 50, 0.2
Q0 = M0**2 + 1.0


def oracle():
    """``(m, q)`` of gradient descent on ridge least squares, on the grid k = 0..T."""
    l, w, _ = mp_quadrature(ALPHA)          # alpha > 1: no atom at 0
    x = ALPHA * l
    k = np.arange(T + 1)[:, None]
    E = (1 - DT * (x + LAM)) ** k
    fill = (1 - E) * x / (x + LAM)
    B = fill + E * M0 - 1
    c2 = Q0 - M0**2
    D = (B**2 + E**2 * c2) @ w
    m = (fill + E * M0) @ w
    return m, D + 2 * m - 1


def main(seeds=4):
    m_ref, q_ref = oracle()
    for label, side, paths in (("exact side", dmft.SquareLinear(0.0), 1),
                               ("Monte Carlo, 4000 paths", dmft.GlmLoss("linear", "linear", "square", 0.0), 4000),
                               ("Monte Carlo, 20000 paths", dmft.GlmLoss("linear", "linear", "square", 0.0), 20000)):
        problem = dmft.Problem(side, ALPHA, LAM, Q0, M0, 0.0, "flow")
        dmft.solve(problem, DT * T, T, paths=paths, tangent_paths=paths, implicit=False)   # warm-up: compilation
        errors, walls = [], []
        for seed in range(1 if paths == 1 else seeds):
            start = time.perf_counter()
            sol = dmft.solve(problem, DT * T, T, paths=paths, tangent_paths=paths, seed=seed, implicit=False)
            walls.append(time.perf_counter() - start)
            errors.append((np.abs(sol.m.mean(0) - m_ref).max(), np.abs(sol.q.mean(0) - q_ref).max()))
        errors = np.array(errors)
        print(f"{label:26s} max_t |m - m_exact| = {np.median(errors[:, 0]):.1e} (seeds: {errors[:, 0].min():.1e} to "
              f"{errors[:, 0].max():.1e})   max_t |q - q_exact| = {np.median(errors[:, 1]):.1e}   "
              f"wall {np.median(walls):.2f} s (median of {len(walls)} seeds)")


if __name__ == "__main__":
    main()
