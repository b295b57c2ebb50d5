"""Heavy validation of ``dln-dmft`` (diagonal linear network, n = d/2 samples, gamma = 1, a = 1, rho = 0.1
spikes of 2): each check simulates and predicts, and prints per observable ``pred +- unc / sim +- stderr
(z)`` at every other time. Minutes on a GPU, hours on 2 CPU cores (the response is O(T^3) a particle).

- ``sgd``: multi-pass SGD to t = 4 vs d = 2000, 64 seeds, on the default grids (50/100/200 steps) and twice
  as fine.
- ``sgf``: SGF on the default grids and twice as fine, t = 2 and 4, vs d = 2000, 128 seeds.
- ``sgf-step``: SGF's own step, the simulation at h = 0.02, 0.01, 0.005 (paired seeds) against the DMFT
  extrapolated to each step (``dln_dmft.simulated_step``).
- ``sgf-size``: SGF at t = 1 and 4 vs the simulation at d = 1000, 2000, 4000, and SGD at d = 1000 (SGF's
  simulation is heavy-tailed: its seeds' mean converges slowly in d).
- ``gd-long``: full-batch GD to t = 40 (where the implicit-bias limit is reached) vs d = 1000, 16 seeds,
  and the ``dln-gf-implicit-bias`` limit.
- ``implicit-bias``: those GD runs, the exact gradient-flow limit on sampled data (the dual by Newton) and
  the high-dimensional law.
The figures these checks gave, with the hardware and date, are in docs/validation/dmft.md.

Run: ``python benchmarks/validation/dln_dmft_validation.py sgd|sgf|sgf-step|sgf-size|gd-long|implicit-bias`` (``QUICK=1``: tiny sizes, to check
that it runs). On a GPU, ``CHUNK=8192 TFLOATS=536870912`` puts each atom's particles in one call.
"""
import os
import sys
import time

import numpy as np

import hdbench
from hdbench_plugins.solvers import dln_dmft as D

QUICK = bool(os.environ.get("QUICK"))
KEYS = ["risk", "q_mean", "l1", "l1_off", "support_recovery", "train_risk"]


def scenario(dynamics, d, seeds, t_max, n_times=9):
    return hdbench.Scenario.from_dict({"model": {"name": "dln", "params": {"a": 1.0}},
                                       "dynamics": {"name": dynamics, "params": {"gamma": 1.0}}, "alpha": 0.5,
                                       "d": 200 if QUICK else d, "seeds": 4 if QUICK else seeds,
                                       "t_max": t_max, "n_times": n_times})


def compare(tag, sim, pred, every=2):
    for k in KEYS:
        unc = pred.get(f"unc({k})", np.zeros_like(pred[k]))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (pred[k] - sim.mean[k]) / np.hypot(sim.stderr[k], unc)
        rows = list(zip(pred[k], unc, sim.mean[k], sim.stderr[k], z))[::every]
        print(f"{tag} {k:17s}", " ".join(f"{a:.4f}+-{u:.4f}/{b:.4f}+-{e:.4f}({c:+.1f})" for a, u, b, e, c in rows),
              flush=True)


def predict(s, sim, **kw):
    start = time.time()
    pred = D.predict_dln_dmft(s, sim.times, **kw)
    return pred, time.time() - start


def check_sgd():
    """SGD to t = 4 vs d = 2000, 64 seeds, on the default grids (50/100/200 steps) and twice as fine."""
    s = scenario("sgd", 2000, 64, 4.0)
    sim = hdbench.simulate(s)
    for factor in ((1,) if QUICK else (1, 2)):
        pred, took = predict(s, sim, steps=factor * D.coarse_steps(s))
        compare(f"steps x{factor} ({took:.0f} s)", sim, pred)


def check_sgf():
    for t_max in (2.0, 4.0):
        s = scenario("sgf", 2000, 128, t_max)
        sim = hdbench.simulate(s)
        for factor in ((1,) if QUICK else (1, 2)):
            pred, took = predict(s, sim, steps=factor * D.coarse_steps(s))
            compare(f"t_max {t_max} steps x{factor} ({took:.0f} s)", sim, pred)


def _sgf_with_step(h, d, seeds, t_max):
    spec = scenario("sgf", d, seeds, t_max, n_times=5).to_dict()
    spec["dynamics"]["params"]["h"] = h
    return hdbench.Scenario.from_dict(spec)


def check_sgf_step():
    """SGF's own step: the simulation at h = 0.02, 0.01, 0.005 (d = 1000, 256 seeds, the same seeds: paired
    differences) against the DMFT extrapolated to each step. Measured (2 cores): q at t = 4 0.8141, 0.8214,
    0.8242 (+- 0.0025; paired 0.02 - 0.01: -0.0085 +- 0.0016), the DMFT's grids at those steps -0.0100."""
    sims, preds = {}, {}
    for h in (0.02, 0.01, 0.005):
        s = _sgf_with_step(h, 1000, 256, 4.0)
        sims[h] = hdbench.simulate(s)
        preds[h], took = predict(s, sims[h])
        compare(f"h {h} ({took:.0f} s)", sims[h], preds[h], every=1)
    for h in (0.02, 0.005):
        for k in KEYS:
            diff = sims[h].per_seed[k][:, -1] - sims[0.01].per_seed[k][:, -1]
            diff = diff[np.isfinite(diff)]
            print(f"t = 4, h {h} - 0.01 {k:17s} sim {diff.mean():+.5f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.5f}"
                  f"  dmft {preds[h][k][-1] - preds[0.01][k][-1]:+.5f}", flush=True)


def check_sgf_size():
    """SGF at t = 1 and 4 against the simulation at d = 1000, 2000, 4000 (and SGD at d = 1000): SGF's
    simulation is heavy-tailed (each residual a geometric Brownian motion), so its seed mean converges
    slowly. Measured (2 cores), l1 at t = 1: SGF 0.2711 +- 0.0008 (d = 1000, 512 seeds), 0.2721 +- 0.0013
    (2000, 128), 0.2710 +- 0.0011 (4000, 32); SGD 0.2720 +- 0.0004 (1000, 256); predicted 0.2738 (SGF) and
    0.2727 (SGD)."""
    for t_max in (1.0, 4.0):
        for dynamics, d, seeds in ((("sgf", 200, 4),) if QUICK else
                                   (("sgf", 1000, 512), ("sgf", 2000, 256), ("sgf", 4000, 64), ("sgd", 1000, 256))):
            s = scenario(dynamics, d, seeds, t_max, n_times=5)
            sim = hdbench.simulate(s)
            pred, took = predict(s, sim)
            compare(f"{dynamics} t_max {t_max} d {s.d} seeds {s.seeds}", sim, pred, every=4)


def check_implicit_bias():
    """The ``dln-gf-implicit-bias`` law (d -> infinity) against the exact gradient-flow limit on sampled data
    (the hyperbolic-entropy dual ``min_nu sum beta cosh(xi0 + X^T nu) - <nu, y>`` by damped Newton, the
    model's teacher: ``round(rho d)`` spikes of random sign) and against GD at t = 40, for d = 500-2000."""
    from hdbench_plugins.solvers.dln_implicit_bias import implicit_bias_law, implicit_bias_limit
    keys = ["risk", "l1", "l1_off", "support_recovery"]
    for d, seeds in ((200, 4),) if QUICK else ((500, 128), (1000, 64), (2000, 16)):
        s = scenario("gd", d, seeds, 40.0, n_times=5)
        sim = hdbench.simulate(s)
        print(f"GD d = {s.d}, {s.seeds} seeds, t = 40:",
              " ".join(f"{k} {sim.mean[k][-1]:.4f}+-{sim.stderr[k][-1]:.4f}" for k in keys), flush=True)
    _, _, beta, xi0, law = implicit_bias_law(s)
    d, n, rows = s.d if QUICK else 1000, int(s.alpha * (s.d if QUICK else 1000)), []
    for seed in range(4 if QUICK else 80):
        rng = np.random.default_rng(seed)
        ws = np.zeros(d)
        k = int(round(0.1 * d))
        ws[rng.permutation(d)[:k]] = law.spike * rng.choice([-1.0, 1.0], size=k)
        X = rng.standard_normal((n, d))
        y = X @ ws
        nu = np.zeros(n)

        def objective(v):
            return np.sum(beta * np.cosh(xi0 + X.T @ v)) - v @ y
        for _ in range(100):
            z = xi0 + X.T @ nu
            w = beta * np.sinh(z)
            grad = X @ w - y
            if np.abs(grad).max() < 1e-9 * np.sqrt(d):
                break
            step = np.linalg.solve((X * (beta * np.cosh(z))) @ X.T, grad)
            t, f0 = 1.0, objective(nu)
            while objective(nu - t * step) > f0 - 0.25 * t * (grad @ step) and t > 1e-8:
                t *= 0.5
            nu = nu - t * step
        rows.append([0.5 * np.mean((w - ws) ** 2), np.mean(np.abs(w)), np.mean(np.abs(w) * (ws == 0)),
                     np.mean(np.abs(w - ws) < 0.5 * law.spike)])
    rows = np.array(rows)
    print(f"dual d = {d}, {len(rows)} seeds:", " ".join(f"{k} {m:.4f}+-{e:.4f}" for k, m, e in
                                                      zip(keys, rows.mean(0), rows.std(0, ddof=1) / np.sqrt(len(rows)))))
    print("CGMT law:", {k: round(float(v), 4) for k, v in implicit_bias_limit(s).items()})


def check_gd_long():
    from hdbench_plugins.solvers.dln_implicit_bias import implicit_bias_limit
    s = scenario("gd", 1000, 16, 4.0 if QUICK else 40.0, n_times=11)
    sim = hdbench.simulate(s)
    print("implicit-bias limit:", {k: round(float(v), 4) for k, v in implicit_bias_limit(s).items()})
    for steps in ((25,) if QUICK else (250, 500)):
        pred, took = predict(s, sim, steps=steps)
        compare(f"steps {steps} ({took:.0f} s)", sim, pred, every=1)


if __name__ == "__main__":
    D.CHUNK = int(os.environ.get("CHUNK", D.CHUNK))
    D.TANGENT_FLOATS = int(os.environ.get("TFLOATS", D.TANGENT_FLOATS))
    checks = {"sgd": check_sgd, "sgf": check_sgf, "sgf-step": check_sgf_step, "sgf-size": check_sgf_size,
              "gd-long": check_gd_long, "implicit-bias": check_implicit_bias}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        sys.exit(f"usage: python {sys.argv[0]} {'|'.join(checks)}")
    checks[sys.argv[1]]()
