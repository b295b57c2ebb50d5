"""Each least-squares predictor against its own closed form / an independent computation (1e-6)."""
import numpy as np
import pytest
from scipy import integrate

from conftest import lsq
from hdbench_plugins.solvers.least_squares import mp_quadrature


def mp_density(alpha):
    c = 1 / alpha
    a, b = (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2
    return a, b, lambda l: np.sqrt(max((b - l) * (l - a), 0.0)) / (2 * np.pi * c * l)


@pytest.mark.parametrize("alpha", [0.5, 0.99, 1.0, 1.01, 2.0, 4.0])
def test_mp_quadrature_integrates_the_law(alpha):
    """Mass 1 and smooth integrands to 1e-12 at every alpha, with 64 nodes (the old Gauss-Chebyshev rule
    lost 0.4% of the mass at the hard edge alpha = 1 and converged like 1/nodes near it); ``1/l``,
    whose integral is ~ 1/|1 - alpha|, away from alpha = 1."""
    lam, W, p0 = mp_quadrature(alpha, 64)
    a, b, rho = mp_density(alpha)
    smooth = [lambda l: l, lambda l: np.exp(-1.3 * l), lambda l: (1 - np.exp(-1.4 * l)) ** 2 / l]
    for f in smooth + ([lambda l: 1 / l] if abs(alpha - 1) > 0.1 else []):
        exact = integrate.quad(lambda l: f(l) * rho(l), a, b, epsabs=1e-14, epsrel=1e-13, limit=500)[0]
        assert abs(np.sum(W * f(lam)) - exact) < 1e-12 * max(1.0, abs(exact))
    assert abs(W.sum() + p0 - 1) < 1e-13


@pytest.mark.parametrize("gamma,sigma,m0,q0", [(0.5, 0.5, 0.0, 0.0), (1.5, 0.3, 0.2, 0.5), (2.5, 0.0, 0.0, 0.0)])
def test_online_ode_matches_oracle_1(registry, gamma, sigma, m0, q0):
    s = lsq("online-sgd", gamma, sigma=sigma, seeds=2).with_(model_params={"m0": m0, "q0": q0})
    t = np.linspace(0, 8, 33)
    out = registry.predictor("lsq-online-ode").predict(s, t)
    D0, rate = q0 - 2 * m0 + 1, gamma**2 - 2 * gamma
    Dstar = -gamma**2 * sigma**2 / rate
    D = Dstar + (D0 - Dstar) * np.exp(rate * t)
    np.testing.assert_allclose(out["D"], D, rtol=1e-6)
    np.testing.assert_allclose(out["m"], 1 - (1 - m0) * np.exp(-gamma * t), rtol=1e-6)
    np.testing.assert_allclose(out["risk"], (D + sigma**2) / 2, rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 0.99, 1.0, 1.01, 2.0])
def test_gf_mp_matches_oracle_2_by_adaptive_quadrature(registry, alpha):
    gamma, sigma = 0.7, 0.5
    s = lsq("gd", gamma, alpha=alpha, sigma=sigma, seeds=2)
    t = np.array([0.0, 0.5, 2.0, 7.0])
    out = registry.predictor("lsq-gf-mp").predict(s, t)
    a, b, rho = mp_density(alpha)
    c, p0 = 1 / alpha, max(0.0, 1 - alpha)
    for i, ti in enumerate(t):
        decay = integrate.quad(lambda l: np.exp(-2 * gamma * l * ti) * rho(l), a, b, epsabs=1e-13, limit=200)[0]
        noise = integrate.quad(lambda l: (1 - np.exp(-gamma * l * ti)) ** 2 / l * rho(l), a, b, epsabs=1e-13, limit=200)[0]
        e2 = decay + p0 + sigma**2 * c * noise
        assert abs(out["D"][i] - e2) < 1e-6
        assert abs(out["risk"][i] - (e2 + sigma**2) / 2) < 1e-6


@pytest.mark.parametrize("alpha,gamma", [(2.0, 0.5), (0.5, 1.0), (4.0, 1.5)])
def test_homogenized_sgd_matches_oracle_3_ode(registry, alpha, gamma):
    """The eigh solution equals a tight RK45 integration of the oracle-3 ODE on the same nodes."""
    sigma = 0.5
    s = lsq("sgd", gamma, alpha=alpha, sigma=sigma, seeds=2, d=1000)
    t = np.linspace(0, 6, 13)
    out = registry.predictor("lsq-homogenized-sgd").predict(s, t)
    lam, W, p0 = mp_quadrature(alpha)
    c = 1 / alpha

    def rhs(_, w):
        Lhat = 0.5 * np.sum(W * lam * w) - 0.5 * sigma**2 * c * (1 - p0) + 0.5 * sigma**2
        return -2 * gamma * lam * w + 2 * gamma**2 * Lhat * lam

    w = integrate.solve_ivp(rhs, (0, 6), 1 + sigma**2 * c / lam, t_eval=t, rtol=1e-11, atol=1e-13).y.T
    e2 = (w - 2 * sigma**2 * c * np.exp(-gamma * np.outer(t, lam)) / lam + sigma**2 * c / lam) @ W + p0
    np.testing.assert_allclose(out["D"], e2, atol=1e-6)
    train = 0.5 * (w * lam) @ W - 0.5 * sigma**2 * c * (1 - p0) + 0.5 * sigma**2
    np.testing.assert_allclose(out["train_risk"], train, atol=1e-6)


def test_homogenized_sgd_tends_to_gradient_flow_without_noise_term(registry):
    """The gamma^2 term is the only difference: at tiny gamma on a rescaled clock they agree."""
    s = lsq("sgd", 1e-4, alpha=2.0, seeds=2, d=1000)
    t = np.linspace(0, 4e4, 9)
    hom = registry.predictor("lsq-homogenized-sgd").predict(s, t)
    gf = registry.predictor("lsq-gf-mp").predict(s, t)
    np.testing.assert_allclose(hom["D"], gf["D"], rtol=1e-3)
