"""gmm-multiclass and multiclass-ode (docs/theory/one_pass.md section 6): the class expectations against Monte
Carlo, the per-mode ODE within noise of simulation for the three losses, fixed and growing C, and
the paper's alignment claim (clean-direction overlap above the noisy one on zero-one and power-law
covariances, not on isotropic data) in theory and simulation."""
import numpy as np
import pytest

import hdbench
from conftest import max_z, z_threshold
from hdbench_plugins.common.gmm_multiclass import class_expectations
from hdbench_plugins.solvers.multiclass_ode import solve_multiclass


def mixture(loss="softmax", classes=3, gamma=1.0, d=400, seeds=16, t_max=5.0, **params):
    return hdbench.Scenario.from_dict({
        "model": {"name": "gmm-multiclass", "params": dict(loss=loss, classes=classes, **params)},
        "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}}, "d": d, "t_max": t_max, "seeds": seeds})


@pytest.mark.parametrize("loss,C", [("softmax", 3), ("logistic", 2), ("square", 3)])
def test_class_expectations_against_monte_carlo(loss, C):
    rng = np.random.default_rng(1)
    r = 1 if loss == "logistic" else C
    m = rng.normal(size=r)
    A = rng.normal(size=(r, r))
    B = A @ A.T / r + 0.1 * np.eye(r)
    ex = class_expectations(loss, m, B, 1, C, np, need=("risk", "psi", "hess", "psipsi", "error"))
    l = m + rng.standard_normal((400_000, r)) @ np.linalg.cholesky(B).T
    if loss == "logistic":
        y = -1.0
        sig = 1 / (1 + np.exp(y * l[:, 0]))
        draws = {"risk": np.logaddexp(0, -y * l[:, 0]), "psi": -y * sig, "hess": sig * (1 - sig),
                 "psipsi": sig**2, "error": (y * l[:, 0] < 0).astype(float)}
    else:
        e = np.eye(C)[1]
        if loss == "softmax":
            p = np.exp(l - l.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = p - e
            draws = {"risk": np.log(np.exp(l).sum(1)) - l[:, 1],
                     "hess": (p[:, :, None] * np.eye(C) - p[:, :, None] * p[:, None, :]).reshape(len(l), -1)}
        else:
            g = l - e
            draws = {"risk": 0.5 * (g**2).sum(1)}
        draws.update(psi=g, psipsi=(g[:, :, None] * g[:, None, :]).reshape(len(l), -1),
                     error=(l.argmax(1) != 1).astype(float))
    for key, x in draws.items():
        x = x.reshape(len(l), -1)
        se = x.std(0) / np.sqrt(len(x))
        tol = 5 * se + (0.02 * x.mean(0) if key == "error" else 1e-3 * np.abs(x.mean(0)) + 1e-6)
        assert np.all(np.abs(np.ravel(ex[key]) - x.mean(0)) < tol), key


@pytest.mark.parametrize("params", [
    dict(),
    dict(loss="logistic", classes=2, spectrum="zero-one", rho=0.5),
    dict(loss="square", spectrum="power-law", beta=1.5, gamma=0.3),
    dict(loss="softmax", spectrum="zero-one", rho=0.5, probs=[0.5, 0.3, 0.2], class_scales=[1.0, 0.5, 2.0]),
    pytest.param(dict(loss="square", classes_power=0.5, d=256, spectrum="power-law", beta=1.0, gamma=0.5),
                 marks=pytest.mark.slow),    # C = 16 classes: 70-90 s
], ids=["softmax-isotropic", "logistic-zero-one", "square-power-law", "softmax-unequal-classes", "square-C=sqrt(d)"])
def test_within_noise_of_simulation(registry, params):
    s = mixture(**params)
    sim = hdbench.simulate(s)
    curves = registry.predictor("multiclass-ode").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)


@pytest.mark.parametrize("spectrum,aligned", [(dict(spectrum="zero-one", rho=0.5), True),
                                              (dict(spectrum="power-law", beta=1.5), True),
                                              (dict(), False)], ids=["zero-one", "power-law-1.5", "isotropic"])
def test_sgd_aligns_with_the_clean_part_of_the_means(spectrum, aligned):
    s = mixture(loss="logistic", classes=2, t_max=10.0, **spectrum)
    sim = hdbench.simulate(s)
    theory = solve_multiclass(s, sim.times)
    gap = sim.per_seed["overlap_clean"][:, -1] - sim.per_seed["overlap_noisy"][:, -1]
    se = gap.std(ddof=1) / np.sqrt(len(gap))
    theory_gap = theory["overlap_clean"][-1] - theory["overlap_noisy"][-1]
    if aligned:
        assert gap.mean() > 5 * se and theory_gap > 5 * se
        assert abs(theory_gap - gap.mean()) < z_threshold(1, s.seeds) * se
    else:
        assert theory_gap == pytest.approx(0.0, abs=1e-9)
        assert abs(gap.mean()) < z_threshold(1, s.seeds) * se


def test_binning_keeps_clean_and_noisy_apart():
    s = mixture(loss="logistic", classes=2, d=2000, spectrum="power-law", beta=1.0)
    t = np.linspace(0, 5, 6)
    exact, binned = solve_multiclass(s, t, bins=0), solve_multiclass(s, t, bins=64)
    for k in ("risk", "overlap_clean", "overlap_noisy"):
        np.testing.assert_allclose(binned[k], exact[k], rtol=1e-3, atol=1e-9, err_msg=k)


def test_bad_mixture_parameters_are_one_line_errors():
    with pytest.raises(hdbench.InputError, match="logistic.*classes = 2"):
        mixture(loss="logistic", classes=3)
    with pytest.raises(hdbench.InputError, match="probs"):
        mixture(probs=[0.5, 0.6, 0.2])
    with pytest.raises(hdbench.InputError, match="orthogonal means"):
        mixture(classes=40, d=64)


def test_given_means_within_noise_of_simulation(registry, tmp_path):
    """The paper's zero-one case with the means only on the clean directions (loss -> 0), given as a
    file: the theory uses the exact per-direction second moments."""
    d = 300
    mu = np.zeros((2, d))
    mu[0, :10] = 0.6                              # zero-one with rho = 0.5: directions 0..149 are clean
    mu[1, :10] = -0.6
    mu[1, 200:210] = 0.3                          # and a noisy part for class 1 only
    path = tmp_path / "means.txt"
    np.savetxt(path, mu)
    s = mixture(loss="logistic", classes=2, d=d, spectrum="zero-one", rho=0.5, means_file=str(path))
    assert s.model_params["means"][0][0] == pytest.approx(0.6)    # the values, not the path, define it
    sim = hdbench.simulate(s)
    curves = registry.predictor("multiclass-ode").predict(s, sim.times)
    assert max_z(sim, curves) < z_threshold(s.n_times, s.seeds)
    with pytest.raises(hdbench.InputError, match="means has rows of length"):
        mixture(loss="logistic", classes=2, d=200, means=[[1.0] * 10, [-1.0] * 10])
