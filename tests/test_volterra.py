"""Streaming least squares with a covariance spectrum: lsq-volterra against lsq-online-ode (isotropic)
and both against the exact solution of the per-eigenvalue linear ODE (anisotropic); the exact finite-d
recursion against simulated seed means (SGD and heavy-ball momentum), and its gap to the d -> infinity
limit shrinking like 1/d."""
import numpy as np
import pytest
from scipy.linalg import expm

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.common.spectra import spectrum


def stream(spec=None, gamma=1.0, d=400, sigma=0.5, B=1, t_max=6.0, seeds=16, beta=None, **model):
    """Online SGD, or heavy-ball momentum ``beta`` on fresh samples."""
    dynamics = ({"name": "online-sgd", "params": {"gamma": gamma, "batch_size": B}} if beta is None else
                {"name": "momentum", "params": {"gamma": gamma, "batch_size": B, "beta": beta}})
    return hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": sigma, **(spec or {}), **model}},
                                       "dynamics": dynamics, "d": d, "t_max": t_max, "seeds": seeds})


def test_volterra_equals_the_isotropic_ode(registry):
    s = stream(gamma=1.5, m0=0.2, q0=0.5)
    t = s.times()
    vol = registry.predictor("lsq-volterra").predict(s, t)
    ode = registry.predictor("lsq-online-ode").predict(s, t)
    for k in ("risk", "D", "m", "q"):
        np.testing.assert_allclose(vol[k], ode[k], rtol=2e-8, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("spec", [{"spectrum": "power-law", "beta": 1.0}, {"spectrum": "zero-one", "rho": 0.5}])
def test_volterra_equals_the_linear_ode_per_eigenvalue(registry, spec):
    """d rho/dt = A rho + b, A = -2 gamma Lambda + (gamma^2/d) lambda lambda^T, b = (gamma^2/d) sigma^2 lambda,
    solved exactly by a matrix exponential of the augmented (d + 1)-dimensional system."""
    s = stream(spec, d=200, m0=0.3, q0=0.4)
    gamma, sigma, d = 1.0, 0.5, s.d
    lam = spectrum(d, s.model_params)
    aug = np.zeros((d + 1, d + 1))
    aug[:d, :d] = -2 * gamma * np.diag(lam) + (gamma**2 / d) * np.outer(lam, lam)
    aug[:d, d] = (gamma**2 / d) * sigma**2 * lam
    start = np.append(np.full(d, (0.4 - 0.6 + 1) / d), 1.0)
    t = s.times()[::5]
    rho = np.array([(expm(aug * tt) @ start)[:d] for tt in t])
    for name in ("lsq-volterra", "lsq-online-ode"):     # a convolution, and the per-eigenvalue ODE itself
        curves = registry.predictor(name).predict(s, t)
        np.testing.assert_allclose(curves["risk"], 0.5 * (rho @ lam + sigma**2), rtol=2e-8, err_msg=name)
        np.testing.assert_allclose(curves["D"], rho.sum(axis=1), rtol=2e-8, err_msg=name)


@pytest.mark.parametrize("spec,B", [({"spectrum": "zero-one", "rho": 0.5}, 4), ({"spectrum": "power-law", "beta": 1.0}, 1)])
def test_exact_recursion_matches_simulated_means(registry, spec, B):
    s = stream(spec, d=200, B=B, seeds=64, m0=0.3, q0=0.4)
    sim = hdbench.simulate(s)
    curves = registry.predictor("lsq-exact-recursion").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


@pytest.mark.parametrize("spec,B,beta", [({}, 1, 0.9), ({"spectrum": "power-law", "beta": 1.0}, 2, 0.5)])
def test_exact_recursion_matches_simulated_momentum(registry, spec, B, beta):
    """Heavy-ball momentum at d = 100 with 128 seeds: the exact recursion within the noise, while its
    d -> infinity limit (online SGD at gamma/(1 - beta)) is many standard errors off at this d."""
    s = stream(spec, gamma=0.1, d=100, B=B, t_max=4.0, seeds=128, beta=beta, m0=0.3, q0=0.4)
    sim = hdbench.simulate(s)
    exact = registry.predictor("lsq-exact-recursion").predict(s, sim.times)
    assert max_z(sim, exact) < z_threshold(s.n_times, s.seeds)
    if beta == 0.9:
        limit = registry.predictor("lsq-volterra").predict(s, sim.times)
        assert max_z(sim, limit) > 2 * z_threshold(s.n_times, s.seeds)


def test_momentum_at_beta_0_is_sgd_and_its_limit_is_sgd_at_gamma_over_1_minus_beta(registry):
    sgd, heavy = stream(d=200, B=2, m0=0.3, q0=0.4), stream(d=200, B=2, beta=0.0, m0=0.3, q0=0.4)
    t = sgd.times()
    for name in ("lsq-exact-recursion", "lsq-volterra", "lsq-online-ode"):
        a, b = registry.predictor(name).predict(sgd, t), registry.predictor(name).predict(heavy, t)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=(name, k))
    gaps = []
    for d in (250, 1000):           # the exact recursion approaches the limit like 1/d
        s = stream(gamma=0.1, d=d, beta=0.9)
        fast = stream(gamma=1.0, d=d)
        t = s.times()
        limit = registry.predictor("lsq-volterra").predict(s, t)["risk"]
        np.testing.assert_allclose(limit, registry.predictor("lsq-volterra").predict(fast, t)["risk"], rtol=1e-12)
        gaps.append(np.max(np.abs(registry.predictor("lsq-exact-recursion").predict(s, t)["risk"] - limit)))
    assert 3 < gaps[0] / gaps[1] < 5, gaps


def test_finite_d_gap_to_the_limit_shrinks_like_one_over_d(registry):
    gaps = []
    for d in (250, 1000):
        s = stream({"spectrum": "zero-one", "rho": 0.5}, d=d)
        t = s.times()
        rec = registry.predictor("lsq-exact-recursion").predict(s, t)["risk"]
        vol = registry.predictor("lsq-volterra").predict(s, t)["risk"]
        gaps.append(np.max(np.abs(rec - vol)))
    assert 3 < gaps[0] / gaps[1] < 5          # 4x for a gap of order 1/d (bounded spectrum; a power law
    # with beta = 1 has lambda_max ~ d / log d, so there the gap fades only like 1/log d)


def test_given_spectrum_from_a_list_or_a_file(tmp_path, registry):
    path = tmp_path / "eig.txt"
    path.write_text("4 1\n1 0.5\n")
    a = stream({"spectrum": "given", "eigenvalues": [4, 1, 1, 0.5]}, d=8)
    b = stream({"spectrum": "given", "eigenvalues_file": str(path)}, d=8)
    assert a.model_params["eigenvalues"] == b.model_params["eigenvalues"]
    lam = spectrum(8, a.model_params)
    assert lam.mean() == pytest.approx(1.0) and np.all(np.diff(lam) <= 0)
    same_d = stream({"spectrum": "given", "eigenvalues": [3, 1]}, d=2)
    np.testing.assert_allclose(spectrum(2, same_d.model_params), [1.5, 0.5])
    t = a.times()
    vol = registry.predictor("lsq-volterra").predict(a, t)
    assert np.all(np.isfinite(vol["risk"]))
    for bad, field in (({"spectrum": "given"}, "eigenvalues"), ({"spectrum": "given", "eigenvalues": [-1, 2]}, "eigenvalues"),
                       ({"spectrum": "given", "eigenvalues_file": str(tmp_path / "none")}, "eigenvalues_file")):
        with pytest.raises(hdbench.InputError, match=field):
            stream(bad, d=8)
