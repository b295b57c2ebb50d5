"""asv benchmarks: warm predict time per predictor, simulation throughput (and its RNG-bound limit),
peak memory of a quick run, and ``track_`` error of every predictor on a fixed reference scenario
(so a commit that makes a theory less accurate shows up like a slowdown)."""
import tempfile
from pathlib import Path

import numpy as np

import hdbench


def _lsq(dynamics, gamma, alpha=None, d=400, seeds=16, t_max=8.0):
    spec = {"model": {"name": "linear", "params": {"sigma": 0.5}},
            "dynamics": {"name": dynamics, "params": {"gamma": gamma}},
            "d": d, "t_max": t_max, "seeds": seeds}
    if alpha is not None:
        spec["alpha"] = alpha
    return hdbench.Scenario.from_dict(spec)


def _online(model, params, gamma, d=500, seeds=16, t_max=10.0):
    return hdbench.Scenario.from_dict({"model": {"name": model, "params": params},
                                       "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                       "d": d, "t_max": t_max, "seeds": seeds})


# Each predictor is measured on the first of these it supports.
REFERENCE = [lambda: _lsq("online-sgd", 1.5), lambda: _lsq("sgd", 0.5, alpha=2.0),
             lambda: _lsq("gd", 0.5, alpha=2.0), lambda: _lsq("sgf", 0.5, alpha=2.0),
             lambda: _online("glm", {"link": "sign", "loss": "logistic"}, 2.0),
             lambda: _online("committee", {"K": 2, "M": 2, "r0": 0.1}, 0.5, t_max=20.0),
             lambda: _online("spiked-tensor", {"k": 2, "lam": 1.2}, 1.0),
             lambda: _online("spiked-tensor", {"k": 2, "lam": 0.8, "init": "random", "m0": 0.0, "r2_0": 1.0},
                             1.0, d=1000, seeds=64, t_max=3.0),
             lambda: _online("glm", {"link": "sign", "loss": "logistic", "spectrum": "power-law", "beta": 1.0}, 1.0),
             lambda: _online("gmm-multiclass", {"loss": "softmax", "classes": 3, "spectrum": "zero-one"}, 1.0)]


def _dln_gd(t_max, d=1000, seeds=8):
    """Full-batch GD on a DLN with n = d/2 samples: the trajectory (t_max = 4) or its end (t_max = 20)."""
    return hdbench.Scenario.from_dict({"model": {"name": "dln", "params": {"a": 1.0}},
                                       "dynamics": {"name": "gd", "params": {"gamma": 1.0}},
                                       "alpha": 0.5, "d": d, "t_max": t_max, "seeds": seeds})


def _multipass_logistic(dynamics, gamma=1.5, batch_size=None, d=400, seeds=16):
    params = {"gamma": gamma, **({"batch_size": batch_size} if batch_size else {})}
    return hdbench.Scenario.from_dict({"model": {"name": "glm", "params": {"loss": "logistic"}},
                                       "dynamics": {"name": dynamics, "params": params},
                                       "alpha": 2.0, "d": d, "t_max": 4.0, "seeds": seeds, "n_times": 21})


REFERENCE += [lambda: _multipass_logistic("gd"), lambda: _multipass_logistic("sgf"),
              lambda: _multipass_logistic("sgd"), lambda: _multipass_logistic("sgd", batch_size=20)]
# A gradient-flow theory is measured on gradient descent, an anisotropic one on anisotropic data, a
# multi-pass DMFT on logistic regression under its own dynamics.
PREFERRED = {"lsq-gf-mp": 2, "glm-aniso-ode": 8, "dmft-gf": 10, "dmft-sgf": 11, "dmft-sgd": 12, "dmft-sgd-batch": 13}
REFERENCE += [lambda: _online("dln", {"rho": 0.1, "spike": 2.0}, 1.5, d=2000, seeds=8, t_max=8.0),
              lambda: _dln_gd(4.0), lambda: _dln_gd(20.0)]
REFERENCE += [lambda: _multipass_logistic("sgd-epochs")]
PREFERRED["dmft-sgd-epochs"] = len(REFERENCE) - 1


def reference_scenario(name):
    pred = hdbench.registry().predictor(name)
    order = [PREFERRED[name]] if name in PREFERRED else []
    for i in order + list(range(len(REFERENCE))):
        s = REFERENCE[i]()
        if pred.supports(s):
            return s
    return None


PREDICTORS = [n for n in hdbench.registry().names("predictor") if reference_scenario(n) is not None]


class PredictWarm:
    params = PREDICTORS
    param_names = ["predictor"]
    timeout = 600           # the DMFT theories take 10-40 s per call, besides their warm-up (asv's default: 60 s)

    def setup(self, name):
        self.pred = hdbench.registry().predictor(name)
        self.scenario = reference_scenario(name)
        self.times = self.scenario.times()
        self.pred.predict(self.scenario, self.times)     # untimed warm-up (compilation, caches)

    def time_predict(self, name):
        self.pred.predict(self.scenario, self.times)


class PredictorError:
    """``hdbench.score`` against a 16-seed simulation at d = 400 (deterministic seeds): the headline
    err/floor, and the normalised sup error of the observable that sets it."""

    params = PREDICTORS
    param_names = ["predictor"]
    timeout = 600

    def setup_cache(self):
        scores = {}
        for name in PREDICTORS:
            s = reference_scenario(name)
            sim = hdbench.simulate(s)
            result = hdbench.score(sim, hdbench.registry().predictor(name).predict(s, sim.times))
            scores[name] = {"error": result["error"], "ratio": result["ratio"]}
        return scores

    def track_error(self, scores, name):
        return scores[name]["error"]

    track_error.unit = "normalised sup error"

    def track_err_over_floor(self, scores, name):
        return scores[name]["ratio"]

    track_err_over_floor.unit = "noise floors"


class Simulation:
    """Throughput in samples x dimension per second (run only; compilation is warmed up in setup)."""

    params = ["online-sgd", "sgd"]
    param_names = ["dynamics"]

    def setup(self, dynamics):
        # 16 seeds x 8000 steps x d = 1000: a run long enough for the engine's unrolled online steps
        self.scenario = _lsq(dynamics, 0.5, alpha=2.0 if dynamics == "sgd" else None, d=1000, t_max=8.0)
        hdbench.simulate(self.scenario)

    def time_simulate(self, dynamics):
        hdbench.simulate(self.scenario)

    def track_throughput(self, dynamics):
        return hdbench.simulate(self.scenario).throughput

    track_throughput.unit = "samples*d/s"

    def track_fraction_of_rng_bound(self, dynamics):
        """Throughput over that of drawing the same Gaussians alone, batched over seeds (online SGD's
        lower bound on work); each the best of 5 runs, interleaved, so that the machine's load cancels."""
        sim, rng = 0.0, 0.0
        for _ in range(5):
            sim = max(sim, hdbench.simulate(self.scenario).throughput)
            rng = max(rng, rng_throughput(self.scenario, repeats=1))
        return sim / rng

    track_fraction_of_rng_bound.unit = "ratio"


def rng_throughput(s, repeats=3):
    """samples*d/s of ``jax.random.normal`` alone, drawn the fastest way: one (seeds, d) draw per step,
    batched over the seeds, in an unrolled scan (what an online SGD step cannot do with less)."""
    import time

    import jax
    import jax.numpy as jnp
    steps = int(round(s.t_max * s.d))

    @jax.jit
    def draw(key):
        def step(acc, k):
            return acc + jax.random.normal(jax.random.fold_in(key, k), (s.seeds, s.d)).sum(), None
        return jax.lax.scan(step, 0.0, jnp.arange(steps), unroll=8)[0]    # as the engine's online steps

    key = jax.random.PRNGKey(0)
    draw(key).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        draw(key).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return s.seeds * steps * s.d / best


class SimulationMemory:
    """Peak memory of a finite-data simulation (d = 1000, n = 4000, 16 seeds) against its guard:
    ``track_peak_over_guard`` must stay below 1 for every dynamics (``benchmarks/memory.py``)."""

    params = [["linear", "dln"], ["sgd", "sgd-epochs", "gd", "sgf", "momentum", "adam"]]
    param_names = ["model", "dynamics"]
    timeout = 300

    def spec(self, model, dynamics):
        return {"model": {"name": model}, "dynamics": {"name": dynamics}, "d": 1000, "alpha": 4.0,
                "t_max": 0.5, "seeds": 16, "n_times": 3}

    def track_peak_over_guard(self, model, dynamics):
        from .memory import measure
        got = measure(self.spec(model, dynamics))
        return got["grow_bytes"] / got["guard_bytes"]

    track_peak_over_guard.unit = "ratio"

    def peakmem_simulate(self, model, dynamics):
        hdbench.simulate(hdbench.Scenario.from_dict(self.spec(model, dynamics)))


class QuickRun:
    """The quick suite cold: an empty store (and so an empty compilation cache) in a fresh process,
    one worker. ``track_cold_seconds``: its wall time; ``track_predict_over_simulate``: all predictors'
    time (cold plus warm calls) over all simulations' (compilation plus run)."""
    timeout = 1200

    def setup_cache(self):
        import sqlite3
        import time
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            hdbench.run_suite("quick", db=Path(tmp) / "r.sqlite")
            wall = time.perf_counter() - start
            con = sqlite3.connect(str(Path(tmp) / "r.sqlite"))
            predict = con.execute("SELECT SUM(cold_s + COALESCE(warm_s, 0)) FROM predictions").fetchone()[0]
            simulate = con.execute("SELECT SUM(compile_s + run_s) FROM simulations").fetchone()[0]
            con.close()
        return {"wall": wall, "ratio": predict / simulate}

    def track_cold_seconds(self, result):
        return result["wall"]

    track_cold_seconds.unit = "seconds"

    def track_predict_over_simulate(self, result):
        return result["ratio"]

    track_predict_over_simulate.unit = "ratio"

    def peakmem_quick_run(self, result):
        with tempfile.TemporaryDirectory() as tmp:
            hdbench.run_suite("quick", db=Path(tmp) / "r.sqlite")


class QuickLsqDMFT:
    """Warm predict of each DMFT theory on the quick suite's least-squares SGD scenario (d = 400,
    alpha = 2, gamma = 0.5, t = 8): where a closed form exists, DMFT should cost about as much."""
    params = ["dmft-gf", "dmft-sgf", "dmft-sgd"]
    param_names = ["predictor"]
    timeout = 300
    repeat = (1, 5, 30.0)

    def setup(self, name):
        self.pred = hdbench.registry().predictor(name)
        self.scenario = hdbench.Scenario.from_dict({
            "model": {"name": "linear", "params": {"sigma": 0.5}}, "dynamics": {"name": "sgd", "params": {"gamma": 0.5}},
            "alpha": 2.0, "d": 400, "t_max": 8.0, "seeds": 8, "n_times": 41})
        self.times = self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, name):
        self.pred.predict(self.scenario, self.times)


class CommitteeODE:
    """Warm saad-solla solve, K = M (RK4 step 0.01, t up to 20, 41 output times)."""

    params = [2, 8, 16]
    param_names = ["K"]

    def setup(self, K):
        self.scenario = _online("committee", {"K": K, "M": K, "r0": 0.1}, 0.5, d=4 * K + 64, t_max=20.0, seeds=2)
        self.pred = hdbench.registry().predictor("saad-solla")
        self.times = self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_saad_solla(self, K):
        self.pred.predict(self.scenario, self.times)


class MixturePredict:
    """Warm predict on the Gaussian mixtures: the effective ODE from given overlaps (binary: nested
    quadrature; XOR: quasi-Monte Carlo) and the diffusive SDE from BGJ's random start (512 paths, t = 20)."""

    params = ["bgj-effective/gmm-binary/overlaps", "bgj-effective/gmm-xor/overlaps",
              "bgj-diffusive/gmm-binary/random", "bgj-diffusive/gmm-xor/random"]
    param_names = ["predictor/model/init"]
    timeout = 600

    def setup(self, case):
        name, model, init = case.split("/")
        self.scenario = _online(model, {"init": init}, 1.0, d=250, t_max=20.0)
        self.pred = hdbench.registry().predictor(name)
        self.times = self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, case):
        self.pred.predict(self.scenario, self.times)


class StreamingLsqPredict:
    """Warm predict of the anisotropic streaming least-squares theories on a power-law spectrum
    (beta = 1: 1000 and 10^4 distinct eigenvalues, no binning; the Volterra solver's kernel weights
    are accumulated over the whole spectrum)."""

    params = [["lsq-volterra", "lsq-exact-recursion"], [1000, 10000]]
    param_names = ["predictor", "d"]
    timeout = 300

    def setup(self, name, d):
        self.scenario = hdbench.Scenario.from_dict(
            {"model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}},
             "dynamics": {"name": "online-sgd", "params": {"gamma": 1.0}}, "d": d, "t_max": 8.0})
        self.pred = hdbench.registry().predictor(name)
        self.times = self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, name, d):
        self.pred.predict(self.scenario, self.times)


WARMUP_COSINE = {"name": "warmup_cosine_decay", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1.0,
                 "decay_steps": 8.0, "end_value": 0.1}
SCHEDULED = {   # each schedule-following predictor on a scenario it supports (d = 1000, t = 8)
    "lsq-online-ode": lambda: _lsq("online-sgd", 1.5, d=1000),
    "lsq-exact-recursion": lambda: _lsq("online-sgd", 1.5, d=1000),
    "lsq-gf-mp": lambda: _lsq("gd", 1.0, alpha=2.0, d=1000),
    "lsq-homogenized-sgd": lambda: _lsq("sgd", 1.5, alpha=2.0, d=1000),
    "lsq-volterra": lambda: _lsq("online-sgd", 1.5, d=1000),
    "lsq-volterra-multipass": lambda: _lsq("sgd", 1.5, alpha=2.0, d=1000),
    "dmft-sgd-epochs": lambda: _lsq("sgd-epochs", 1.5, alpha=2.0, d=1000),     # the exact epoch side
    "glm-ode": lambda: _online("glm", {"link": "sign", "loss": "logistic"}, 1.0, d=1000, t_max=8.0),
    "glm-aniso-ode": lambda: _online("glm", {"link": "sign", "loss": "logistic", "spectrum": "power-law", "beta": 1.0},
                                     1.0, d=1000, t_max=8.0),
    "saad-solla": lambda: _online("committee", {"K": 2, "M": 2}, 1.0, d=1000, t_max=8.0),
    "population-gf": lambda: _online("committee", {"K": 2, "M": 2}, 1.0, d=1000, t_max=8.0),
}


class ScheduledPredict:
    """Warm predict of every schedule-following theory at constant gamma and under warmup + cosine
    decay, on the same scenario: what following gamma(t) costs (an ODE where a closed form or one
    eigendecomposition did, a step size per step, a compiled solver per schedule)."""

    params = [list(SCHEDULED), ["constant", "warmup-cosine"]]
    param_names = ["predictor", "schedule"]
    timeout = 300

    def setup(self, name, schedule):
        scenario = SCHEDULED[name]()
        if schedule != "constant":
            scenario = scenario.with_(dynamics_params={"schedule": WARMUP_COSINE})
        self.scenario, self.pred = scenario, hdbench.registry().predictor(name)
        self.times = scenario.times()
        self.pred.predict(scenario, self.times)

    def time_predict(self, name, schedule):
        self.pred.predict(self.scenario, self.times)


ADAPTIVE = {   # each AdaGrad-Norm theory on a scenario it supports (d = 1000, t = 8)
    "lsq-online-ode": lambda: _online("linear", {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}, 1.0,
                                      d=1000, t_max=8.0),
    "glm-ode": lambda: _online("glm", {"link": "sign", "loss": "logistic"}, 2.0, d=1000, t_max=8.0),
    "glm-aniso-ode": lambda: _online("glm", {"link": "sign", "loss": "logistic", "spectrum": "zero-one", "rho": 0.5},
                                     2.0, d=1000, t_max=8.0),
    "multiclass-ode": lambda: _online("gmm-multiclass", {"loss": "softmax", "classes": 3, "spectrum": "zero-one",
                                                         "rho": 0.5}, 2.0, d=1000, t_max=5.0),
}


class AdaptivePredict:
    """Warm predict of every AdaGrad-Norm theory, under online SGD at the same gamma and under
    AdaGrad-Norm (b = 0.5): what the accumulator G costs (one more state, a state-dependent rate)."""

    params = [list(ADAPTIVE), ["online-sgd", "adagrad-norm"]]
    param_names = ["predictor", "dynamics"]
    timeout = 300

    def setup(self, name, dynamics):
        scenario = ADAPTIVE[name]()
        if dynamics == "adagrad-norm":
            gamma = scenario.dynamics_params["gamma"]
            scenario = scenario.with_(dynamics={"name": "adagrad-norm", "params": {"gamma": gamma, "b": 0.5}})
        self.scenario, self.pred = scenario, hdbench.registry().predictor(name)
        self.times = scenario.times()
        self.pred.predict(scenario, self.times)

    def time_predict(self, name, dynamics):
        self.pred.predict(self.scenario, self.times)


class SignPredict:
    """Warm predict of lsq-online-ode on the beta = 1 power law (d = 1000, t = 8) under online SGD and
    under signSGD and Adam (a drift that divides by sqrt(2 risk): a stiffer ODE as the risk falls;
    Adam's constants are cached after the warm-up, see AdamConstants)."""

    params = [["online-sgd", "sign-sgd", "adam"]]
    param_names = ["dynamics"]
    timeout = 300

    def setup(self, dynamics):
        self.scenario = _online("linear", {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}, 0.5, d=1000,
                                t_max=8.0).with_(dynamics={"name": dynamics, "params": {"gamma": 0.5}})
        self.pred, self.times = hdbench.registry().predictor("lsq-online-ode"), self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, dynamics):
        self.pred.predict(self.scenario, self.times)


class AdamConstants:
    """Adam's drift and noise constants (coordinate_steps.adam_constants), uncached: the Monte Carlo a
    first Adam prediction pays, at optax's default (0.9, 0.999) and at b2 = 0.99."""

    params = [[0.99, 0.999]]
    param_names = ["b2"]
    timeout = 120

    def time_monte_carlo(self, b2):
        from hdbench_plugins.solvers.coordinate_steps import adam_constants
        adam_constants.cache_clear()
        adam_constants(0.9, b2, 1)


class AdaptedMomentumPredict:
    """Warm predict of the momentum theories on streaming least squares (power law, d = 1000, t = 8):
    fixed beta = 0.9 against dimension-adapted kappa = 0.5 (the second-order system's three moments
    per eigenvalue; the exact recursion's step count is the same)."""

    params = [["lsq-online-ode", "lsq-exact-recursion"], ["beta=0.9", "kappa=0.5"]]
    param_names = ["predictor", "momentum"]
    timeout = 300

    def setup(self, name, momentum):
        key, value = momentum.split("=")
        self.scenario = hdbench.Scenario.from_dict({
            "model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}},
            "dynamics": {"name": "momentum", "params": {"gamma": 0.1 if key == "beta" else 1.0, key: float(value)}},
            "d": 1000, "t_max": 8.0, "seeds": 16})
        self.pred, self.times = hdbench.registry().predictor(name), self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, name, momentum):
        self.pred.predict(self.scenario, self.times)


class FiniteDataPredict:
    """Warm predict of lsq-homogenized-sgd (alpha = 2, d = 1000, t = 8) under multi-pass SGD (one
    eigendecomposition), AdaGrad-Norm (an ODE with the accumulator) and dimension-adapted momentum
    (an ODE with three moments and the mean's path per node)."""

    params = [["sgd", "adagrad-norm", "kappa=0.5"]]
    param_names = ["dynamics"]
    timeout = 300

    def setup(self, dynamics):
        name, params = {"sgd": ("sgd", {"gamma": 0.5}), "adagrad-norm": ("adagrad-norm", {"gamma": 1.0, "b": 0.5}),
                        "kappa=0.5": ("momentum", {"gamma": 0.5, "kappa": 0.5})}[dynamics]
        self.scenario = hdbench.Scenario.from_dict({
            "model": {"name": "linear", "params": {"sigma": 0.5}}, "alpha": 2.0,
            "dynamics": {"name": name, "params": params}, "d": 1000, "t_max": 8.0, "seeds": 16})
        self.pred, self.times = hdbench.registry().predictor("lsq-homogenized-sgd"), self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, dynamics):
        self.pred.predict(self.scenario, self.times)


class AdaptiveDMFTPredict:
    """Warm predict of the DMFT on least squares (the exact square side, alpha = 2, d = 1000, t = 4) under
    SGD at gamma = 1 and under AdaGrad-Norm from the same rate (gamma = b = 1): what Picard's iteration on
    the accumulator costs. ``dmft-sgd`` (B = 1, G' from the mean squared force) and ``dmft-sgd-batch``
    (B/d = 0.4, each step's squared move)."""

    params = [["dmft-sgd", "dmft-sgd-batch"], ["sgd", "adagrad-norm"]]
    param_names = ["predictor", "dynamics"]
    timeout = 300

    def setup(self, name, dynamics):
        params = {"gamma": 1.0, "batch_size": 400 if name == "dmft-sgd-batch" else 1}
        if dynamics == "adagrad-norm":
            params["b"] = 1.0
        self.scenario = hdbench.Scenario.from_dict({
            "model": {"name": "linear", "params": {"sigma": 0.5}}, "alpha": 2.0,
            "dynamics": {"name": dynamics, "params": params}, "d": 1000, "t_max": 4.0, "seeds": 16})
        self.pred, self.times = hdbench.registry().predictor(name), self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, name, dynamics):
        self.pred.predict(self.scenario, self.times)


class VelocityDMFTPredict:
    """Warm predict of the DMFT with heavy ball's velocity (dimension-adapted momentum, kappa = 0.5,
    alpha = 2, d = 1000, t = 8) on least squares (the exact square side: no paths), beside
    lsq-homogenized-sgd's per-node ODE of the same limit."""

    params = [["dmft-sgd", "lsq-homogenized-sgd"]]
    param_names = ["predictor"]
    timeout = 300

    def setup(self, name):
        self.scenario = hdbench.Scenario.from_dict({
            "model": {"name": "linear", "params": {"sigma": 0.5}}, "alpha": 2.0,
            "dynamics": {"name": "momentum", "params": {"gamma": 0.5, "kappa": 0.5}}, "d": 1000, "t_max": 8.0,
            "seeds": 16})
        self.pred, self.times = hdbench.registry().predictor(name), self.scenario.times()
        self.pred.predict(self.scenario, self.times)

    def time_predict(self, name):
        self.pred.predict(self.scenario, self.times)


class PerModePredict:
    """Warm predict of the per-eigenvalue ODEs (modes.py) on a beta = 1 power law, t = 4: 10^3 and
    10^4 distinct eigenvalues, unbinned (bins = 0) and in 256 geometric bins. The cost is set by the
    stiffest mode (gamma lambda_max), so binning buys less than the mode count suggests."""

    params = [["glm-logistic", "committee-erf", "multiclass-logistic"], [1000, 10000], [0, 256]]
    param_names = ["theory", "d", "bins"]
    timeout = 300

    def setup(self, theory, d, bins):
        from hdbench_plugins.solvers.aniso_ode import solve_committee_aniso, solve_glm_aniso
        from hdbench_plugins.solvers.multiclass_ode import solve_multiclass
        spectrum = {"spectrum": "power-law", "beta": 1.0}
        model, params, solve = {
            "glm-logistic": ("glm", {"link": "sign", "loss": "logistic"}, solve_glm_aniso),
            "committee-erf": ("committee", {"K": 2, "M": 2, "r0": 0.1}, solve_committee_aniso),
            "multiclass-logistic": ("gmm-multiclass", {"loss": "logistic", "classes": 2}, solve_multiclass),
        }[theory]
        self.scenario = _online(model, {**params, **spectrum}, 1.0 if theory != "committee-erf" else 0.5, d=d, t_max=4.0)
        self.solve = lambda: solve(self.scenario, self.times, bins=bins)
        self.times = self.scenario.times()
        self.solve()

    def time_predict(self, theory, d, bins):
        self.solve()


class DMFTSolve:
    """One DMFT fixed point (logistic regression, alpha = 2, s in [0, 2]) vs the grid steps T and the
    Monte-Carlo paths N (a quarter of them carry tangents), for the dense (Gaussian clocks: O(N T^3)
    tangents) and the sparse (Poisson clocks: Woodbury over the jumps) sample sides, and the epoch
    clock (sparse, with each step's earlier kick taken out; epochs of 1 at tau = 1, so two epochs).
    Compilation is warmed up in setup."""

    params = (["gaussian", "poisson", "epoch"], [50, 100, 200], [4000, 16000])
    param_names = ["clock", "T", "paths"]
    timeout = 600

    def setup(self, clock, T, paths):
        from hdbench_plugins.solvers import dmft
        self.dmft = dmft
        tau, epoch = (1.0, 1.0) if clock == "epoch" else (1.5, None)
        self.problem = dmft.Problem(dmft.GlmLoss("sign", "linear", "logistic", 0.0), 2.0, 0.0, 0.0, 0.0, tau, clock, epoch)
        self.solve(clock, T, paths)

    def solve(self, clock, T, paths):
        return self.dmft.solve(self.problem, 2.0, T, paths=paths, tangent_paths=paths // 4)

    def time_solve(self, clock, T, paths):
        self.solve(clock, T, paths)

    def peakmem_solve(self, clock, T, paths):
        self.solve(clock, T, paths)


class EpochSquareSide:
    """Least squares' exact epoch side (``epoch_square_side``, no paths): one fixed point at tau = 1.8,
    alpha = 2, 5 epochs, vs the cells an epoch (T = 5 cells). The predictor refines up to 256 cells
    near the stability edge; this is what each level costs."""

    params = [32, 64, 128]
    param_names = ["cells"]
    timeout = 600

    def setup(self, cells):
        from hdbench_plugins.solvers import dmft
        self.dmft = dmft
        self.problem = dmft.Problem(dmft.SquareLinear(0.5), 2.0, 0.0, 0.0, 0.0, 1.8, "epoch", epoch=1.8)

    def time_solve(self, cells):
        self.dmft.solve(self.problem, 9.0, 5 * cells, max_iter=400)


class PhaseRetrievalDMFT:
    """``dmft-gf`` on phase retrieval under GD (alpha = 1, 2; gamma = 0.5, d = 1000, 8 seeds, t = 4),
    where margins near 0 with large labels make the pathwise response heavy-tailed
    (``sample_side._stein_mixed``): err/floor, and the prediction's own uncertainty in noise floors."""

    params = [1.0, 2.0]
    param_names = ["alpha"]
    timeout = 600

    def setup_cache(self):
        scores = {}
        for alpha in self.params:
            s = hdbench.Scenario.from_dict({
                "model": {"name": "glm", "params": {"link": "quadratic", "activation": "quadratic", "loss": "square",
                                                    "m0": 0.3, "q0": 0.5}},
                "dynamics": {"name": "gd", "params": {"gamma": 0.5}}, "alpha": alpha, "d": 1000, "t_max": 4.0,
                "seeds": 8, "n_times": 21})
            sim = hdbench.simulate(s)
            scores[alpha] = hdbench.score(sim, hdbench.registry().predictor("dmft-gf").predict(s, sim.times))
        return scores

    def track_err_over_floor(self, scores, alpha):
        return scores[alpha]["ratio"]

    track_err_over_floor.unit = "noise floors"

    def track_uncertainty_over_floor(self, scores, alpha):
        return scores[alpha]["uncertainty"] / scores[alpha]["noise_floor"]

    track_uncertainty_over_floor.unit = "noise floors"


class DLNSolvers:
    """The DLN limit (sparse teacher, gamma = 1.5, t in [0, 8]) by the deterministic PDE vs its cells
    per atom, and by the particle SDE vs its particles per atom; ``track_`` gives each one's distance
    (normalised sup error of the risk) to a fine PDE (3201 cells, step 2.5e-4), its discretisation
    error. The particle solver is warmed up (compiled) in setup."""

    params = (["pde", "sde"], [1, 2, 4])
    param_names = ["solver", "resolution (x 401 cells | x 16384 particles)"]
    timeout = 600

    def setup_cache(self):
        from hdbench_plugins.solvers.dln_flow import solve_pde
        s = _online("dln", {"rho": 0.1, "spike": 2.0}, 1.5, d=2000, seeds=8, t_max=8.0)
        return solve_pde(s, s.times(), cells=3201, dt=2.5e-4)["risk"]

    def setup(self, reference, solver, k):
        from hdbench_plugins.solvers import dln_flow as dln
        self.s = _online("dln", {"rho": 0.1, "spike": 2.0}, 1.5, d=2000, seeds=8, t_max=8.0)
        self.times = self.s.times()
        if solver == "pde":
            self.run = lambda: dln.solve_pde(self.s, self.times, cells=401 * k)
        else:
            self.run = lambda: dln.solve_sde(self.s, self.times, particles=16384 * k)
            self.run()

    def time_solve(self, reference, solver, k):
        self.run()

    def track_error(self, reference, solver, k):
        risk = self.run()["risk"]
        return float(np.abs(risk - reference).max() / np.abs(reference).max())

    track_error.unit = "normalised sup error of the risk"


class DLNDmftParticles:
    """One call of ``dln-dmft``'s parameter side on 512 particles of one atom vs the grid steps T, with the
    response ``dw/dH`` (O(T^3) a particle: the memoryless Jacobian, then a batched triangular solve) and
    without (O(T^2)); a causal ``R_G`` of the GD fixed point's shape. Compiled in setup."""

    params = ([50, 100, 200], [True, False])
    param_names = ["grid steps T", "response"]

    def setup(self, T, response):
        import jax
        import jax.numpy as jnp
        from hdbench_plugins.solvers.dln_dmft import particle_sums
        h = 8.0 / T
        lag = np.subtract.outer(np.arange(T), np.arange(T)) * h
        RG = jnp.asarray(h * np.tril(np.exp(-0.5 * lag)), jnp.float32)
        eta = jnp.asarray(0.3 * np.sqrt(h) * np.random.default_rng(0).standard_normal((512, T)), jnp.float32)
        args = (RG, eta, np.float32(2.0), np.float32(1.0), np.float32(1.0), np.float32(2.0))
        self.run = lambda: jax.block_until_ready(particle_sums(*args, product=True, tangents=response))
        self.run()

    def time_particles(self, T, response):
        self.run()


class SquareSide:
    """The square-loss sample side of the DMFT (``dmft.square_side_moments``: exact in expectation over
    SGF's Gaussian clock, a few O(T^3) BLAS calls) vs the grid steps T; the kernel ``R_G``-shaped and
    causal, ``S`` a smooth covariance."""

    params = [50, 100, 200, 400]
    param_names = ["grid steps T"]

    def setup(self, T):
        from hdbench_plugins.solvers import dmft
        K, h, tau = T + 1, 8.0 / T, 1.0
        grid = h * np.arange(K)
        Rt = np.tril(np.exp(-0.5 * np.subtract.outer(grid, grid)), -1)
        Rt[:, T] = 0.0
        S = 0.1 + 0.2 * np.exp(-np.abs(np.subtract.outer(grid, grid)))
        consts = (0.5, h, dmft.clock_second_moment("gaussian", h, tau))
        self.run = lambda: dmft.square_side_moments(consts, S, Rt)
        self.run()

    def time_square_side(self, T):
        self.run()
