"""One table of components under test: the plugin registry itself (optax's idea). A component is
tested here the moment it is registered, built-in or third-party, by the same checks that
``hdbench check NAME`` runs for a plugin's author (``hdbench.conformance``)."""
import pytest

import hdbench
from hdbench import conformance

REG = hdbench.registry()
MODELS, DYNAMICS, PREDICTORS = REG.names("model"), REG.names("dynamics"), REG.names("predictor")
SCENARIOS = conformance.candidate_scenarios(REG) + [s for name in PREDICTORS
                                                    for s in conformance.example_scenarios(REG, name)]


def test_every_model_and_dynamics_has_a_candidate():
    assert {s.model for s in SCENARIOS} == set(MODELS)
    assert {s.dynamics for s in SCENARIOS} == set(DYNAMICS)


def test_registry_loaded_cleanly():
    assert REG.failures == []
    assert {"linear"} <= set(MODELS)
    assert {"online-sgd", "sgd", "sgd-epochs", "sgf", "gd", "momentum", "adam"} <= set(DYNAMICS)
    assert {"lsq-online-ode", "lsq-gf-mp", "lsq-homogenized-sgd", "population-gf"} <= set(PREDICTORS)


@pytest.mark.parametrize("kind,name", [(k, n) for k in ("model", "dynamics", "predictor") for n in REG.names(k)])
def test_defaults_validate_and_are_described(kind, name):
    conformance.check_described(REG, kind, name)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.model}-{s.dynamics}-a{s.alpha}")
def test_every_model_and_dynamics_simulates(scenario):
    conformance.check_simulates(REG, scenario)


@pytest.mark.parametrize("name", [n for n in DYNAMICS if REG.dynamics(n).sampling != "online"])
def test_a_dynamics_batch_with_state_gives_its_batch(name):
    conformance.check_batch_with_state(REG, name)


@pytest.mark.parametrize("every_pair", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", PREDICTORS)
def test_predictor_contract(name, every_pair):
    """``predict`` on every example and the first supported candidate (``every_pair``, under -m slow:
    on the first of each (model, dynamics sampling) pair; the DMFT theories take 20-40 s per pair)."""
    conformance.check_predictor(REG, name, SCENARIOS, every_pair)
