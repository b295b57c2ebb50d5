"""Third-party plugins through real entry points: discovery, isolation of broken ones, conflicts."""
import json
import re

from conftest import run_cli


def test_third_party_predictor_is_listed_with_its_distribution(third_party_site):
    out = run_cli("list", "--format", "json", site=third_party_site)
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    toy = {p["name"]: p["provider"] for p in listing["predictor"]}
    assert toy["toy-exact"] == "toy-theory 0.3.1 (toy_theory)"
    assert toy["lsq-online-ode"].startswith("hdbench ")
    assert toy["population-gf"].startswith("hdbench ")          # the built-in wins the conflict
    errors = {f["plugin"]: f for f in listing["failures"]}
    assert "No module named 'no_such_module_hdbench_test'" in errors["broken_theory"]["error"]
    assert errors["broken_theory"]["dist"] == "broken-theory"
    conflict = errors["impostor_theory"]["error"]
    assert "population-gf" in conflict and "impostor-theory" in conflict and "hdbench" in conflict


def test_broken_plugin_shows_in_the_table(third_party_site):
    out = run_cli("list", site=third_party_site)
    assert out.returncode == 0
    assert "failed to load" in out.stdout and "broken_theory" in out.stdout


def test_strict_mode_and_disable_switch(third_party_site):
    strict = run_cli("list", env={"HDBENCH_STRICT_PLUGINS": "1"}, site=third_party_site)
    assert strict.returncode == 2 and "plugin" in strict.stderr and len(strict.stderr.strip().splitlines()) == 1
    clean = run_cli("list", "--format", "json", site=third_party_site,
                    env={"HDBENCH_STRICT_PLUGINS": "1", "HDBENCH_DISABLE_PLUGINS": "broken_theory,impostor-theory"})
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["failures"] == []


def test_third_party_predictor_runs_and_is_ranked(third_party_site, tiny_suite, tmp_path):
    db = tmp_path / "r.sqlite"
    preds = ["toy-exact", "toy-raises", "toy-nan", "toy-badshape", "lsq-online-ode"]   # every other fault: test_faults
    args = ["run", "--suite", tiny_suite, "--db", db, "--format", "json"]
    for p in preds:
        args += ["--predictor", p]
    out = run_cli(*args, site=third_party_site)
    assert out.returncode == 0, out.stderr
    # off a terminal, progress is one numbered line per item on stderr: 3 simulations + 3 x 5 predictions
    items = re.findall(r"^\[\s*(\d+)/(\d+) \d+:\d\d:\d\d, eta \d+:\d\d:\d\d\] (.+): (.+)$", out.stderr, re.M)
    assert [int(i) for i, *_ in items] == list(range(1, 19)) and {int(n) for _, n, *_ in items} == {18}
    assert {"online g0.5 · simulation", "adam · toy-raises"} <= {label for _, _, label, _ in items}
    assert "\x1b" not in out.stderr
    board = json.loads(out.stdout)
    rows = [r for r in board["Suite 'tiny': per scenario"] if r["scenario"] == "online g0.5"]
    status = {r["predictor"]: (r["status"], r["message"]) for r in rows}
    assert status["toy-exact"][0] == "ok" and status["lsq-online-ode"][0] == "ok"
    assert status["toy-raises"] == ("failed", "RuntimeError: solver exploded")
    assert status["toy-nan"][0] == "failed" and "not finite" in status["toy-nan"][1]
    assert status["toy-badshape"][0] == "failed" and "shape (3,)" in status["toy-badshape"][1]
    # the closed form and the ODE agree to solver precision, so their risk errors agree too
    err = {r["predictor"]: r["observables"]["risk"]["sup_error"] for r in rows if r["status"] == "ok"}
    assert abs(err["toy-exact"] - err["lsq-online-ode"]) < 1e-6
    declined = [r for r in board["Suite 'tiny': per scenario"] if r["scenario"] == "adam" and r["predictor"] == "toy-exact"]
    assert declined[0]["status"] == "n/a" and declined[0]["message"] == "only online least squares"
    agg = {r["predictor"]: r for r in board["Suite 'tiny': aggregate"]}
    assert agg["toy-exact"]["coverage"] == "1/3" and agg["toy-raises"]["failed"] == 1
    # and the leaderboard command reads the same from the store alone
    again = run_cli("leaderboard", "--db", db, "--format", "markdown", site=third_party_site)
    assert again.returncode == 0 and "| toy-exact |" in again.stdout.replace("  ", " ")


def test_a_third_party_package_runs_the_conformance_checks_from_its_own_folder(third_party_site):
    """``hdbench check NAME``: the contract's checks on one installed distribution, run from the
    package's own folder; a check per component, exit code 1 when one fails."""
    own_folder = third_party_site.parent / "toy-theory"
    out = run_cli("check", "toy-theory", site=third_party_site, cwd=own_folder)
    assert out.returncode == 1, out.stderr
    assert "ok    predictor 'toy-exact': supports and predict" in out.stdout
    assert "FAIL  predictor 'toy-raises': supports and predict: RuntimeError: solver exploded" in out.stdout
    assert re.search(r"FAIL  predictor 'toy-nan': supports and predict: .*risk is not finite", out.stdout)
    assert re.search(r"FAIL  predictor 'toy-badshape': .*risk has shape \(3,\)", out.stdout)
    assert "broken" not in out.stdout and "impostor" not in out.stdout    # another plugin's trouble is not its own
    one = run_cli("check", "toy-exact", site=third_party_site, cwd=own_folder)
    assert one.returncode == 0 and "1 failed" not in one.stdout and "toy-raises" not in one.stdout, one.stdout
    broken = run_cli("check", "broken-theory", site=third_party_site, cwd=own_folder)
    assert broken.returncode == 1 and "failed to load: ModuleNotFoundError" in broken.stdout, broken.stdout
    unknown = run_cli("check", "no-such-theory", site=third_party_site, cwd=own_folder)
    assert unknown.returncode == 2 and "no installed plugin or component" in unknown.stderr
