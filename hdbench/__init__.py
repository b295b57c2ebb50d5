"""hdbench: benchmark theories of high-dimensional learning dynamics against simulation.

Flat public API (see docs/ for the guide):

    import hdbench
    s = hdbench.Scenario.from_dict({...})
    sim = hdbench.simulate(s)                        # sim.times, sim.mean, sim.stderr, sim.per_seed
    p = hdbench.registry().predictor("lsq-homogenized-sgd")
    curves = p.predict(s, sim.times)
    scores = hdbench.score(sim, curves)
    hdbench.run_suite("quick", db=".hdbench/results.sqlite")
"""
from .contract import YES, Dynamics, Model, Predictor, Support, no
from .params import Param
from .schedule import Schedule
from .errors import InputError, PluginError
from .hookspecs import hookimpl
from .registry import registry
from .scenario import Scenario
from .suite import Suite, builtin_suites, load_suite
from .simulate import Simulation, simulate
from .score import score
from .runner import run_suite

__version__ = "0.1.0"

__all__ = ["YES", "Dynamics", "InputError", "Model", "Param", "PluginError", "Predictor",
           "Scenario", "Schedule", "Simulation", "Suite", "Support", "builtin_suites", "hookimpl", "load_suite", "no", "registry",
           "run_suite", "score", "simulate", "__version__"]

