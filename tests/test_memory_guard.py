"""The memory guard: a simulation never grows past what its guard allowed, and the guard refuses
before running a program XLA says is too big (even when the up-front estimate let it through)."""
import sys
from pathlib import Path

import pytest

import hdbench
from hdbench.errors import InputError
from hdbench.memory import estimate_bytes
from hdbench.simulate import _compiled, program_bytes

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from memory import measure  # noqa: E402


def spec(model, dynamics, d=500, alpha=4.0, seeds=8):
    return {"model": {"name": model}, "dynamics": {"name": dynamics}, "d": d, "alpha": alpha, "t_max": 0.5,
            "seeds": seeds, "n_times": 3}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("model,dynamics", [("linear", "sgd"), pytest.param("linear", "gd", marks=pytest.mark.slow),
                                            pytest.param("dln", "gd", marks=pytest.mark.slow)])
def test_a_simulation_stays_within_its_guard(model, dynamics):
    got = measure(spec(model, dynamics))
    data = 8 * 2000 * 500 * 4
    assert got["grow_bytes"] > 2 * data                          # the measurement sees the data set
    assert got["grow_bytes"] <= got["guard_bytes"], got
    assert got["guard_bytes"] <= 1.5 * got["grow_bytes"] + (64 << 20), got   # and is not wildly cautious


def test_the_compiled_programs_count_is_checked_before_running(monkeypatch):
    s = hdbench.Scenario.from_dict(spec("dln", "gd", d=200, seeds=4))
    import dataclasses
    guard = program_bytes(_compiled(dataclasses.replace(s, seed=0, name=""))[0])
    assert guard > estimate_bytes(s)      # the DLN's sampler holds more copies than the estimate assumes
    monkeypatch.setenv("HDBENCH_MAX_BYTES", str((guard + estimate_bytes(s)) // 2))
    s = hdbench.Scenario.from_dict(spec("dln", "gd", d=200, seeds=4))    # the estimate lets it through
    with pytest.raises(InputError, match="by XLA's count"):
        hdbench.simulate(s)
