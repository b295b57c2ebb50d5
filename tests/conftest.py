import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

import hdbench
from hdbench.score import z_threshold as _z_threshold


def pytest_configure(config):
    """One JAX compilation cache for every store this session makes (``HDBENCH_COMPILE_CACHE``,
    inherited by the CLI subprocesses): the tiny suites' simulations compile once, not once per test.
    Fresh per session (all xdist workers share the controller's run id), so a session starts cold."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.setdefault("HDBENCH_TEST_RUN", uuid.uuid4().hex)
    os.environ["HDBENCH_COMPILE_CACHE"] = str(Path(tempfile.gettempdir()) / f"hdbench-test-jax-cache-{run}")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):          # the controller (or a run without xdist) cleans up
        shutil.rmtree(os.environ.get("HDBENCH_COMPILE_CACHE", ""), ignore_errors=True)


def lsq(dynamics, gamma=0.5, alpha=None, sigma=0.5, d=400, seeds=32, t_max=8.0, n_times=41, **dyn):
    spec = {"model": {"name": "linear", "params": {"sigma": sigma}},
            "dynamics": {"name": dynamics, "params": {"gamma": gamma, **dyn}},
            "d": d, "t_max": t_max, "seeds": seeds, "n_times": n_times}
    if alpha is not None:
        spec["alpha"] = alpha
    return hdbench.Scenario.from_dict(spec)


def z_threshold(n_times: int, seeds: int, p: float = 1e-3) -> float:
    """|pred - mean| / stderr over n_times points with a Student-t(seeds-1) stderr: the level that a
    correct theory exceeds with probability <= p (Bonferroni over the grid); ``hdbench.score``'s rule."""
    return _z_threshold(n_times, seeds, p)


@pytest.fixture(scope="session")
def registry():
    return hdbench.registry()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "results.sqlite"


def max_z(sim, curves, names=None):
    """The worst z-score ``hdbench.score`` gives over ``names`` (default: every observable in common):
    max over the scored times of |pred - mean| / stderr, joined in quadrature with the predictor's own
    ``unc(NAME)`` where it gives one."""
    observables = hdbench.score(sim, curves, observables=names)["observables"]
    return max(v["z_max"] for v in observables.values())


# -- a real third-party distribution, built and installed in a temporary folder -------------------
TOY_PLUGIN = '''
"""A third-party theory package: one module, one entry point."""
import numpy as np
import hdbench


class ToyExact(hdbench.Predictor):
    """Oracle 1 in closed form (online SGD on isotropic least squares, theta0 = 0)."""
    name = "toy-exact"
    description = "closed-form oracle 1"

    def supports(self, s):
        if s.model != "linear" or s.dynamics != "online-sgd":
            return hdbench.no("only online least squares")
        return hdbench.YES

    def predict(self, s, times):
        g, sig = s.dynamics_params["gamma"], s.model_params["sigma"]
        rate = g * g - 2 * g
        Dstar = -g * g * sig**2 / rate
        D = Dstar + (1 - Dstar) * np.exp(rate * np.asarray(times))
        return {"D": D, "risk": (D + sig**2) / 2}


class ToyRaises(ToyExact):
    name = "toy-raises"
    def predict(self, s, times):
        raise RuntimeError("solver exploded")


class ToyNaN(ToyExact):
    name = "toy-nan"
    def predict(self, s, times):
        return {"risk": np.full(len(times), np.nan)}


class ToyBadShape(ToyExact):
    name = "toy-badshape"
    def predict(self, s, times):
        return {"risk": np.zeros(3)}


@hdbench.hookimpl
def hdbench_predictors():
    return [ToyExact, ToyRaises, ToyNaN, ToyBadShape]
'''

BROKEN_PLUGIN = "import no_such_module_hdbench_test\n"

CONFLICT_PLUGIN = '''
import hdbench
from hdbench_plugins.predictors.baselines import PopulationGF


class Impostor(PopulationGF):
    pass


@hdbench.hookimpl
def hdbench_predictors():
    return [Impostor]
'''


def _build_dist(root, dist, module, source, target):
    import subprocess
    import sys
    src = root / dist
    (src / module).mkdir(parents=True)
    (src / module / "__init__.py").write_text("")
    (src / module / "plugin.py").write_text(source)
    (src / "pyproject.toml").write_text(f'''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "{dist}"
version = "0.3.1"
[project.entry-points.hdbench]
{module} = "{module}.plugin"
[tool.setuptools]
packages = ["{module}"]
''')
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True)


@pytest.fixture(scope="session")
def third_party_site(tmp_path_factory):
    """A site folder holding three installed distributions: a working theory package, one whose
    import fails, and one that registers a name hdbench already has."""
    root = tmp_path_factory.mktemp("dists")
    site = root / "site"
    _build_dist(root, "toy-theory", "toy_theory", TOY_PLUGIN, site)
    _build_dist(root, "broken-theory", "broken_theory", BROKEN_PLUGIN, site)
    _build_dist(root, "impostor-theory", "impostor_theory", CONFLICT_PLUGIN, site)
    return site


SMALL_DEFAULTS = '''[defaults]
d = 100
t_max = 2.0
seeds = 4
n_times = 11
'''

TINY_SUITE = '''
[suite]
name = "tiny"
''' + SMALL_DEFAULTS + '''[[scenario]]
name = "online g0.5"
model = { name = "linear", params = { sigma = 0.5 } }
dynamics = { name = "online-sgd", params = { gamma = 0.5 } }
[[scenario]]
name = "sgd a2"
alpha = 2.0
model = { name = "linear", params = { sigma = 0.5 } }
dynamics = { name = "sgd", params = { gamma = 0.5 } }
[[scenario]]
name = "adam"
model = { name = "linear", params = { sigma = 0.5 } }
dynamics = { name = "adam" }
'''


@pytest.fixture
def tiny_suite(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE)
    return path


def cli(capsys, *args):
    """``hdbench ARGS`` in this process: ``(exit code, stdout)`` (no interpreter and JAX start-up per
    call; the subprocess path and its exit codes are test_cli_input's)."""
    from hdbench.cli import main
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().out


def run_cli(*args, env=None, site=None, timeout=300, cwd=None):
    import os
    import subprocess
    import sys
    full_env = dict(os.environ, **(env or {}))
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "hdbench", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)
