"""One predictor per kind of fault, each on online least squares only, and a model whose sample raises.

``fault-gate`` blocks until the file named by ``HDBENCH_FAULT_GATE`` exists, so a test can stop a
run at a known point (it supports nothing when the variable is unset).
"""
import ctypes
import os
import time
from pathlib import Path

import numpy as np

import hdbench
from hdbench_plugins.models.linear import Linear


def exact_curves(s, times):
    """Oracle 1: online SGD on isotropic least squares from theta0 = 0."""
    g, sig = s.dynamics_params["gamma"], s.model_params["sigma"]
    rate = g * g - 2 * g
    floor = -g * g * sig**2 / rate
    D = floor + (1 - floor) * np.exp(rate * np.asarray(times))
    return {"D": D, "risk": (D + sig**2) / 2}


class Fault(hdbench.Predictor):
    description = "a fault, for tests"

    def supports(self, s):
        if s.model != "linear" or s.dynamics != "online-sgd":
            return hdbench.no("only online least squares")
        return hdbench.YES

    def predict(self, s, times):
        return exact_curves(s, times)


def fault(name, predict=None, supports=None):
    body = {"name": name}
    if predict is not None:
        body["predict"] = lambda self, s, times: predict(s, times)
    if supports is not None:
        body["supports"] = lambda self, s: supports(s)
    return type(name.title().replace("-", ""), (Fault,), body)


def _raise(exc):
    raise exc


def _busy(s, times):
    import jax.numpy as jnp
    x = jnp.ones((500, 500))
    while True:                        # inside XLA most of the time
        x = (x @ x) / 500.0
        x.block_until_ready()


def _gate(s, times):
    while not Path(os.environ["HDBENCH_FAULT_GATE"]).exists():
        time.sleep(0.05)
    return exact_curves(s, times)


PREDICTORS = [
    fault("fault-supports-true", supports=lambda s: s.model == "linear" and s.dynamics == "online-sgd"),
    fault("fault-supports-none", supports=lambda s: None),
    fault("fault-supports-raises", supports=lambda s: _raise(ValueError("cannot tell"))),
    fault("fault-supports-exits", supports=lambda s: os._exit(4)),
    fault("fault-system-exit", lambda s, t: _raise(SystemExit(3))),
    fault("fault-keyboard-interrupt", lambda s, t: _raise(KeyboardInterrupt())),
    fault("fault-memory-error", lambda s, t: _raise(MemoryError("cannot allocate"))),
    fault("fault-os-exit", lambda s, t: os._exit(1)),
    fault("fault-segfault", lambda s, t: ctypes.string_at(0)),
    fault("fault-hang", lambda s, t: time.sleep(10**6)),
    fault("fault-busy", _busy),
    fault("fault-nan", lambda s, t: {"risk": np.full(len(t), np.nan)}),
    fault("fault-bad-shape", lambda s, t: {"risk": np.zeros(3)}),
    fault("fault-gate", _gate, supports=lambda s: (s.model == "linear" and "HDBENCH_FAULT_GATE" in os.environ)
          or hdbench.no("no gate file named")),
]


class ExplodingLinear(Linear):
    """Least squares whose data sampler raises."""
    name = "fault-linear"
    description = "a model whose sample raises, for tests"

    def sample(self, key, n, d, teacher, p):
        raise RuntimeError("sampler exploded")


@hdbench.hookimpl
def hdbench_predictors():
    return PREDICTORS


@hdbench.hookimpl
def hdbench_models():
    return [ExplodingLinear]
