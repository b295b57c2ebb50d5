"""Least-squares theories on isotropic data (docs/conventions.md oracles 1-3).

All three share the conventions: per-sample step ``gamma/d``, ``t = samples/d``, ``|theta*| = 1``,
``theta0`` with overlaps ``m0, q0`` (``D0 = q0 - 2 m0 + 1``), label noise ``sigma``.

- ``lsq-online-ode``: online SGD. The summary-statistic ODE (oracle 4 specialised to the square loss,
  ``g = lambda - lambda* - sigma eps``): ``dm/dt = gamma (1 - m)``,
  ``dq/dt = -2 gamma (q - m) + gamma^2 (q - 2m + 1 + sigma^2)``; then ``D = q - 2m + 1`` obeys
  oracle 1, ``dD/dt = (gamma^2 - 2 gamma) D + gamma^2 sigma^2``. Integrated numerically
  (RK45, rtol 1e-10) so the closed form stays an independent check.
- ``lsq-gf-mp``: gradient flow on n = alpha d samples (oracle 2), integrals over the
  Marchenko-Pastur law of ``X^T X / n`` (ratio ``c = 1/alpha``).
- ``lsq-homogenized-sgd``: multi-pass SGD = SGF for a linear model (oracle 3): per MP eigenvalue
  ``l``, ``dw/dt = -2 gamma l w + 2 gamma^2 Lhat(t) l``. The system is linear with a
  diagonal-plus-rank-one matrix, symmetrisable by the quadrature weights, so it is solved exactly by
  one ``eigh`` (no time stepping).

Both finite-data theories use ``w(l, t)`` = d x E(component of ``theta - thetahat`` along the
eigenvector of ``l``)^2, from which (with ``thetahat`` the least-squares solution)
``D = int_{l>0} [w - 2 sigma^2 c e^{-gamma l t}/l + sigma^2 c/l] dmu + D0 P(l=0)``,
``train_risk = Lhat = int l w dmu / 2 + sigma^2 (1 - c P(l>0)) / 2``,
``m = 1 + (m0 - 1) [int_{l>0} e^{-gamma l t} dmu + P(l=0)]``, ``q = D + 2m - 1``,
``risk = (D + sigma^2)/2``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import roots_chebyu

from hdbench import no
from hdbench_plugins.solvers.regime import isotropic_data, unregularised


def mp_quadrature(alpha: float, nodes: int = 256):
    """Nodes ``l_k``, weights ``W_k`` of the continuous part of the Marchenko-Pastur law of
    ``X^T X / n`` (``X`` n x d, ``c = d/n = 1/alpha``), and the atom ``P(l = 0) = max(0, 1 - alpha)``.

    Gauss-Chebyshev (second kind) in ``l = (a+b)/2 + (b-a)/2 cos(phi)`` absorbs the square-root
    edges of the density ``sqrt((b-l)(l-a)) / (2 pi c l)``; exponential convergence for a > 0.
    """
    c = 1.0 / alpha
    a, b = (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2
    x, w_cheb = roots_chebyu(nodes)
    lam = (a + b) / 2 + (b - a) / 2 * x
    weights = ((b - a) / 2) ** 2 * w_cheb / (2 * np.pi * c * lam)
    return lam, weights, max(0.0, 1.0 - alpha)


def overlaps(p):
    m0, q0, sigma = p["m0"], p["q0"], p["sigma"]
    return m0, q0, sigma, q0 - 2 * m0 + 1


def supports_isotropic_linear(s):
    if s.model != "linear":
        return no(f"model '{s.model}' is not the linear (least-squares) model")
    if not isotropic_data(s):
        return isotropic_data(s)
    return unregularised(s)


