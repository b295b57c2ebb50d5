"""Learning-rate schedules: the curve is optax's, every dynamics steps by ``gamma dt f((k + 1/2) dt)``, a
constant-gamma theory is never asked about a scheduled run, and the theories that take a schedule
stay within the noise of its simulation (least squares online and multi-pass, a GLM, a committee)."""
import jax
import numpy as np
import pytest

import hdbench
from hdbench import InputError
from hdbench.runner import task_predict
from hdbench.schedule import SCHEDULES, Schedule, optax_factory

from conftest import lsq, max_z, z_threshold

WARMUP_COSINE = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
                 "decay_steps": 6.0, "end_value": 0.1}
ARGUMENTS = {
    "constant": {"value": 0.7},
    "linear": {"init_value": 1.0, "end_value": 0.2, "transition_steps": 2.5, "transition_begin": 0.5},
    "polynomial": {"init_value": 1.0, "end_value": 0.1, "power": 2.0, "transition_steps": 3.0},
    "cosine_decay": {"init_value": 1.2, "decay_steps": 3.0, "alpha": 0.1, "exponent": 2.0},
    "exponential_decay": {"init_value": 1.0, "transition_steps": 0.7, "decay_rate": 0.5, "transition_begin": 0.3,
                          "staircase": True, "end_value": 0.1},
    "warmup_cosine_decay": {k: v for k, v in WARMUP_COSINE.items() if k != "name"},
    "warmup_exponential_decay": {"init_value": 0.1, "peak_value": 1.0, "warmup_steps": 0.5, "transition_steps": 1.0,
                                 "decay_rate": 0.3},
}


def test_every_schedule_is_given_arguments_here():
    assert set(ARGUMENTS) == set(SCHEDULES)


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_is_optax_s_curve_read_in_t(name):
    schedule = Schedule.parse("test", "schedule", {"name": name, **ARGUMENTS[name]})
    t = np.concatenate([np.linspace(0, 5, 1001), [0.3, 0.5, 1.0, 1.3, 3.0]])    # and the kinks
    with jax.enable_x64(True):
        reference = np.asarray(jax.vmap(optax_factory(name)(**ARGUMENTS[name]))(t))
    np.testing.assert_allclose(schedule(t), reference, rtol=1e-12, atol=1e-14)     # the theories' float64 f
    # the simulation's step k, in float32: at a staircase's jump (k + 1/2) dt may round to either side,
    # so dt is chosen to put no step on one
    dt, scale = 0.0123, 0.3
    steps = np.arange(500)
    np.testing.assert_allclose(np.asarray(jax.vmap(schedule.optax(dt, scale))(steps)),
                               scale * schedule((steps + 0.5) * dt),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dynamics,params,alpha", [
    ("online-sgd", {"batch_size": 2}, None), ("sgd", {}, 2.0), ("sgd-epochs", {}, 2.0), ("gd", {"h": 0.05}, 2.0),
    ("sgf", {"h": 0.05}, 2.0), ("momentum", {"beta": 0.0}, None), ("momentum", {"kappa": 2.0}, None),
    ("adagrad-norm", {}, None), ("sign-sgd", {}, None), ("adam", {}, None)])
def test_every_dynamics_steps_by_gamma_dt_f_at_the_steps_midpoint(dynamics, params, alpha):
    spec = {"model": "linear", "dynamics": {"name": dynamics, "params": {**params, "schedule": WARMUP_COSINE}},
            "d": 20, "t_max": 6.0}
    if alpha:
        spec["alpha"] = alpha
    s = hdbench.Scenario.from_dict(spec)
    dyn = hdbench.registry().dynamics(dynamics)
    constant = dyn.optimizer(s.with_(dynamics_params={"schedule": None}))
    scheduled = dyn.optimizer(s)
    theta = np.zeros(3, np.float32)
    grad = np.ones(3, np.float32)
    state_c, state_s = constant.init(theta), scheduled.init(theta)
    steps = int(round(6.0 / s.dt))
    ratios = []
    for _ in range(steps):
        up_c, state_c = constant.update(grad, state_c, theta)
        up_s, state_s = scheduled.update(grad, state_s, theta)
        ratios.append(float(up_s[0] / up_c[0]))
    expected = s.dynamics_params["schedule"]((np.arange(steps) + 0.5) * s.dt)
    np.testing.assert_allclose(ratios, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad,message", [
    ({"name": "cosine"}, r"schedule.name = 'cosine' is not allowed \(expected one of constant, linear"),
    ({"name": "cosine_decay", "init_value": 1.0}, r"schedule 'cosine_decay' needs decay_steps"),
    ({"name": "cosine_decay", "init_value": 1.0, "decay_steps": 0}, r"decay_steps = 0 is not allowed \(expected float > 0"),
    ({"name": "cosine_decay", "init_value": -1.0, "decay_steps": 2}, r"init_value = -1.0 is not allowed \(expected float >= 0"),
    ({"name": "linear", "init_value": 1.0, "end_value": 0, "transition_steps": 1, "warmup": 1},
     r"'warmup' is not an argument of schedule 'linear' \(allowed: init_value, end_value"),
    ({**WARMUP_COSINE, "decay_steps": 1.0}, r"decay_steps = 1 is not allowed \(expected > warmup_steps = 1"),
    ("cosine", r"schedule = 'cosine' is not allowed \(expected a table"),
])
def test_a_bad_schedule_is_a_one_line_error(bad, message):
    with pytest.raises(InputError, match=message) as err:
        lsq("online-sgd", schedule=bad)
    assert "\n" not in str(err.value) and str(err.value).startswith("dynamics 'online-sgd': schedule")


def test_a_schedule_is_part_of_the_scenario_and_constant_gamma_keeps_its_hash():
    plain, none = lsq("online-sgd"), lsq("online-sgd", schedule=None)
    assert "schedule" not in plain.dynamics_params and plain.hash == none.hash
    scheduled = lsq("online-sgd", schedule=WARMUP_COSINE)
    assert scheduled.hash != plain.hash
    again = hdbench.Scenario.from_dict(scheduled.to_dict())          # how the store reads it back
    assert again == scheduled and again.hash == scheduled.hash
    assert again.to_dict()["dynamics"]["params"]["schedule"] == WARMUP_COSINE


def test_a_constant_gamma_theory_is_not_asked_about_a_scheduled_run():
    spec = {"model": {"name": "spiked-tensor", "params": {"lam": 1.2}},
            "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0, "schedule": WARMUP_COSINE}}, "d": 100, "t_max": 1.0}
    out = task_predict(spec, "bgj-effective")
    assert (out["status"], out["message"]) == ("n/a", "learning-rate schedule: this theory takes a constant gamma only")
    assert task_predict({**spec, "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}}, "bgj-effective")["status"] == "ok"


def _glm(dynamics, **dyn):
    return hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"link": "sign", "loss": "logistic"}},
                                       "dynamics": {"name": dynamics, "params": dyn},
                                       "d": 400, "t_max": 6.0, "seeds": 16, "n_times": 31})


def _committee(dynamics, **dyn):
    return hdbench.Scenario.from_dict({"model": {"name": "committee", "params": {"K": 2, "M": 2}},
                                       "dynamics": {"name": dynamics, "params": dyn},
                                       "d": 400, "t_max": 6.0, "seeds": 16, "n_times": 31})


CASES = {   # what is scheduled, the theories that must follow it
    "lsq-online": (lambda **k: lsq("online-sgd", gamma=1.5, seeds=16, t_max=6.0, n_times=31, **k),
                   ["lsq-online-ode", "lsq-exact-recursion", "lsq-volterra"]),
    "lsq-multipass": (lambda **k: lsq("sgd", gamma=1.5, alpha=2.0, seeds=16, t_max=6.0, n_times=31, **k),
                      ["lsq-homogenized-sgd", "lsq-volterra-multipass"]),
    "glm-logistic": (lambda **k: _glm("online-sgd", gamma=1.0, **k), ["glm-ode"]),
    "committee-erf": (lambda **k: _committee("online-sgd", gamma=1.0, **k), ["saad-solla"]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_schedule_keeps_each_theory_within_the_noise(case):
    make, names = CASES[case]
    s = make(schedule=WARMUP_COSINE)
    sim = hdbench.simulate(s)
    threshold = z_threshold(s.n_times, s.seeds)
    reg = hdbench.registry()
    for name in names:
        pred = reg.predictor(name)
        assert pred.schedules and pred.supports(s), name
        assert max_z(sim, pred.predict(s, sim.times)) < threshold, name
    # the same theory without the schedule is far off: the schedule is what the theory got right
    unscheduled = names[0], s.with_(dynamics_params={"schedule": None})
    assert max_z(sim, reg.predictor(unscheduled[0]).predict(unscheduled[1], sim.times)) > 3 * threshold


SMOOTH = {"name": "cosine_decay", "init_value": 1.2, "decay_steps": 3.0, "alpha": 0.1, "exponent": 2.0}
ORACLES = [   # a Volterra equation under a schedule, the independent solver of the same limit, the scenario
    ("lsq-volterra", "lsq-online-ode", dict(dynamics="online-sgd")),
    ("lsq-volterra-multipass", "lsq-homogenized-sgd", dict(dynamics="sgd", alpha=2.0)),
    ("lsq-volterra-multipass", "lsq-homogenized-sgd", dict(dynamics="sgf", alpha=0.5)),
    ("lsq-volterra-multipass", "lsq-gf-mp", dict(dynamics="gd", alpha=0.5)),
]


# measured worst relative gaps: 4.8e-5 from a warmup at 0 (the rate grows like sqrt of the clock there:
# the product trapezoid is O(h^1.5)), 3e-8 for a smooth schedule
@pytest.mark.parametrize("schedule, rtol", [(WARMUP_COSINE, 1e-4), (SMOOTH, 1e-7)], ids=["warmup", "smooth"])
@pytest.mark.parametrize("theory, oracle, scenario", ORACLES, ids=[f"{o[0]}-{o[2]['dynamics']}" for o in ORACLES])
def test_volterra_equations_follow_a_schedule_as_an_independent_solver(theory, oracle, scenario, schedule, rtol):
    """On the clock ``int gamma f dt`` the Volterra kernel is a convolution again, the rate ``gamma f``
    weighting the memory; ``lsq-online-ode`` and ``lsq-homogenized-sgd`` integrate the ODEs in t instead."""
    s = lsq(scenario["dynamics"], gamma=1.5, alpha=scenario.get("alpha"), t_max=6.0, n_times=31,
            schedule=schedule).with_(model_params={"m0": 0.2, "q0": 0.5})
    reg = hdbench.registry()
    assert reg.predictor(theory).schedules and reg.predictor(theory).supports(s)
    ours, ref = reg.predictor(theory).predict(s, s.times()), reg.predictor(oracle).predict(s, s.times())
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=1e-12, err_msg=k)
