import numpy as np
import pytest
from scipy import stats

import hdbench


def lsq(dynamics, gamma=0.5, alpha=None, sigma=0.5, d=400, seeds=32, t_max=8.0, n_times=41, **dyn):
    spec = {"model": {"name": "linear", "params": {"sigma": sigma}},
            "dynamics": {"name": dynamics, "params": {"gamma": gamma, **dyn}},
            "d": d, "t_max": t_max, "seeds": seeds, "n_times": n_times}
    if alpha is not None:
        spec["alpha"] = alpha
    return hdbench.Scenario.from_dict(spec)


def z_threshold(n_times: int, seeds: int, p: float = 1e-3) -> float:
    """|pred - mean| / stderr over n_times points with a Student-t(seeds-1) stderr: the level that a
    correct theory exceeds with probability <= p (Bonferroni over the grid)."""
    return float(stats.t.isf(p / (2 * n_times), df=seeds - 1))


@pytest.fixture(scope="session")
def registry():
    return hdbench.registry()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "results.sqlite"


def max_z(sim, curves, names=None):
    out = 0.0
    for k in names or curves:
        if k not in sim.per_seed:
            continue
        diff = np.abs(np.asarray(curves[k]) - sim.mean[k])[1:]
        se = np.maximum(sim.stderr[k][1:], 1e-6 * np.abs(sim.mean[k]).max())
        out = max(out, float((diff / se).max()))
    return out
