"""Plugin hooks. A plugin module implements any of them with ``@hdbench.hookimpl``:

    @hdbench.hookimpl
    def hdbench_predictors():
        return [MyTheory]
"""
import pluggy

hookspec = pluggy.HookspecMarker("hdbench")
hookimpl = pluggy.HookimplMarker("hdbench")


@hookspec
def hdbench_models():
    """Return a list of :class:`hdbench.Model` subclasses."""


@hookspec
def hdbench_dynamics():
    """Return a list of :class:`hdbench.Dynamics` subclasses."""


@hookspec
def hdbench_predictors():
    """Return a list of :class:`hdbench.Predictor` subclasses."""
