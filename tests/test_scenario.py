"""Scenario validation, hashing and suite expansion; every bad input is a one-line InputError."""
import pytest

import hdbench
from hdbench import InputError, Scenario

BASE = {"model": {"name": "linear", "params": {"sigma": 0.5}},
        "dynamics": {"name": "sgd", "params": {"gamma": 0.5, "batch_size": 1}},
        "d": 400, "alpha": 2.0, "t_max": 8.0, "seeds": 8}


def spec(**changes):
    import copy
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_issue_example_and_defaults():
    s = Scenario.from_dict(BASE)
    assert s.n == 800 and s.model_params["sigma"] == 0.5 and s.model_params["spectrum"] == "isotropic"
    assert s.dynamics_params == {"gamma": 0.5, "batch_size": 1}
    assert Scenario.from_dict(s.to_dict()) == s


def test_hash_is_stable_and_covers_what_matters():
    s = Scenario.from_dict(BASE)
    assert s.hash == Scenario.from_dict(spec(name="other label")).hash
    assert s.hash != s.with_(d=200).hash
    assert s.hash != s.with_(dynamics_params={"gamma": 0.6}).hash
    # defaults are filled in before hashing: spelling out a default changes nothing
    assert s.hash == Scenario.from_dict(spec(model={"name": "linear", "params": {"sigma": 0.5, "m0": 0.0}})).hash


@pytest.mark.parametrize("bad,needle", [
    (spec(model={"name": "linera"}), "unknown model 'linera'; did you mean 'linear'?"),
    (spec(dynamics={"name": "sdg", "params": {}}), "did you mean 'sgd'?"),
    (spec(d="400"), "d = '400' is not allowed"),
    (spec(d=1.5), "d = 1.5"),
    (spec(alpha=-1.0), "alpha = -1.0"),
    (spec(t_max=None), "t_max is required"),
    (spec(seeds=1), "seeds = 1"),
    (spec(dynamics={"name": "sgd", "params": {"gamma": -0.1}}), "gamma = -0.1 is not allowed (expected float > 0 and <= 1e+08)"),
    (spec(dynamics={"name": "sgd", "params": {"gamma": "fast"}}), "gamma = 'fast'"),
    (spec(dynamics={"name": "sgd", "params": {"lr": 0.1}}), "unknown parameter 'lr'"),
    (spec(model={"name": "linear", "params": {"spectrum": "flat"}}), "spectrum = 'flat' is not allowed (expected one of"),
    (spec(model={"name": "linear", "params": {"m0": 0.9, "q0": 0.1}}), "q0 = 0.1 is not allowed with m0 = 0.9"),
    (spec(dynamics={"name": "online-sgd", "params": {}}), "alpha = 2.0 is not allowed with dynamics 'online-sgd'"),
    (spec(alpha=None), "needs finite data: give alpha"),
    (spec(dynamics={"name": "sgd", "params": {"batch_size": 5000}}), "batch_size = 5000 is not allowed with n = 800"),
    (spec(extra=1), "unknown field 'extra'"),
])
def test_bad_input_is_one_clear_line(bad, needle):
    with pytest.raises(InputError) as info:
        Scenario.from_dict(bad)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("HDBENCH_MAX_BYTES", str(2**30))
    with pytest.raises(InputError, match="GiB"):
        Scenario.from_dict(spec(d=100_000, alpha=4.0, seeds=64))


def test_suite_sweeps_and_malformed_toml(tmp_path):
    good = tmp_path / "s.toml"
    good.write_text('''
[suite]
name = "mine"
[defaults]
d = 100
t_max = 2.0
seeds = 4
[[scenario]]
name = "lsq"
model = "linear"
dynamics = { name = "online-sgd" }
sweep = { "dynamics.gamma" = [0.5, 1.0], d = [50, 100] }
''')
    suite = hdbench.load_suite(good)
    name, scenarios = suite.name, suite.scenarios
    assert name == "mine" and len(scenarios) == 4 and suite.timeout is None
    assert {(s.d, s.dynamics_params["gamma"]) for s in scenarios} == {(50, 0.5), (50, 1.0), (100, 0.5), (100, 1.0)}
    bad = tmp_path / "bad.toml"
    bad.write_text("[suite\nname = 1")
    with pytest.raises(InputError, match="malformed TOML in .*bad.toml"):
        hdbench.load_suite(bad)
    with pytest.raises(InputError, match="did you mean 'quick'"):
        hdbench.load_suite("quik")


def test_suite_timeout(tmp_path):
    assert hdbench.load_suite("quick").timeout == 120.0      # unset: None (test_suite_file above)
    path = tmp_path / "t.toml"
    body = "\n[[scenario]]\nmodel = 'linear'\ndynamics = 'online-sgd'\nd = 20\nt_max = 1.0\n"
    for value, expected in (("600", 600.0), ("2.5", 2.5)):
        path.write_text(f"[suite]\nname = 't'\ntimeout = {value}\n" + body)
        assert hdbench.load_suite(path).timeout == expected
    for value in ("0", "-1", "'long'", "true"):
        path.write_text(f"[suite]\nname = 't'\ntimeout = {value}\n" + body)
        with pytest.raises(InputError, match=r"^suite 't.toml': \[suite\] timeout = .* is not allowed \(expected seconds, > 0 and < 604800\)$"):
            hdbench.load_suite(path)


def test_builtin_suites_expand():
    for name in hdbench.builtin_suites():
        assert hdbench.load_suite(name).scenarios
