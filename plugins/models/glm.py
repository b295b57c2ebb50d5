"""Model ``glm``: single-index teacher-student, ``x ~ N(0, Sigma)`` with any covariance spectrum
(``Sigma = diag(lambda_j)``, mean eigenvalue 1; spectra.py), ``|theta*| = 1``.

Labels: regression ``y = f*(lambda*) + sigma eps`` for links linear, relu, erf, tanh, quadratic;
classification ``y = sign(lambda* + sigma eps)`` in {-1, +1} for the ``sign`` link (label noise as a
noisy teacher pre-activation). Student output ``f(lambda)``, ``lambda = <theta, x>``, with an
activation (linear, relu, erf, tanh, quadratic) and a loss ``square = (f - y)^2/2``,
``logistic = log(1 + exp(-y f))``, ``hinge = max(0, 1 - y f)`` (the last two need ``link = sign``).
``erf`` means ``erf(z/sqrt 2)``. Phase retrieval is link = activation = quadratic with square loss.

Observables, exact population values by nested Gauss-Legendre quadrature (split at the kinks of
relu, sign and hinge) in the Gaussian pair ``(lambda, lambda*)`` with covariance
``[[q_Sigma, m_Sigma], [m_Sigma, s_Sigma]]`` (``lambda* + sigma eps`` for ``sign``), where
``q_Sigma = theta^T Sigma theta``, ``m_Sigma = theta^T Sigma theta*``, ``s_Sigma = theta*^T Sigma theta*``
(on isotropic data ``q``, ``m`` and 1):
``risk = E loss``, ``gen_error = E (f(lambda) - f*(lambda*))^2 / 2`` (regression),
``error_rate = P(sign(lambda) != y)`` (classification, closed form ``arccos(m / sqrt(q (s+sigma^2)))/pi``),
the Euclidean overlaps ``m = <theta, theta*>``, ``q = |theta|^2``, on anisotropic data also
``m_Sigma``, ``q_Sigma``, and ``train_risk`` on finite data. A ``ridge`` penalty ``(ridge/2)|theta|^2`` is
added to each sample's loss (so to the objective); ``risk`` and ``train_risk`` exclude it. The helpers here take ``xp`` (numpy or jax.numpy)
so that theories evaluate exactly the same functions in float64.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import hdbench
from hdbench import InputError, Param

from hdbench_plugins.common.linear import RIDGE, SingleIndexStart, ridge_penalty
from hdbench_plugins.common.spectra import SPECTRUM_PARAMS, is_isotropic, spectrum
from hdbench_plugins.common.glm import LINKS, ACTIVATIONS, LOSSES, activation, loss_value, population


class GLM(SingleIndexStart):
    name = "glm"
    description = "single-index teacher-student GLM: links, activations, square/logistic/hinge losses; any spectrum"
    params = {
        "link": Param("sign", str, choices=LINKS, doc="teacher link f*"),
        "activation": Param("linear", str, choices=ACTIVATIONS, doc="student activation f"),
        "loss": Param("logistic", str, choices=LOSSES),
        "sigma": Param(0.0, float, low=0.0, doc="label noise (added to y, or to lambda* for sign)"),
        "ridge": RIDGE,
        **SPECTRUM_PARAMS,
        "m0": Param(0.0, float, doc="initial overlap <theta0, theta*>"),
        "q0": Param(0.0, float, low=0.0, doc="initial |theta0|^2 (>= m0^2)"),
    }

    @classmethod
    def check_params(cls, p):
        if p["loss"] != "square" and p["link"] != "sign":
            raise InputError(f"model 'glm': loss = {p['loss']!r} is not allowed with link = {p['link']!r} "
                             "(classification losses need link = 'sign')")
        super().check_params(p)

    def sample(self, key, n, d, teacher, p):
        kx, ke = jax.random.split(key)
        X = jax.random.normal(kx, (n, d))
        if not is_isotropic(p):
            X = X * jnp.sqrt(jnp.asarray(spectrum(d, p), jnp.float32))
        noise = p["sigma"] * jax.random.normal(ke, (n,))
        pre = X @ teacher
        if p["link"] == "sign":
            return X, jnp.where(pre + noise >= 0, 1.0, -1.0)
        return X, activation(p["link"], pre, jnp) + noise

    def loss(self, theta, x, y, p):
        return (loss_value(p["loss"], activation(p["activation"], jnp.dot(theta, x), jnp), y, jnp)
                + ridge_penalty(theta, p))

    def observables(self, theta, teacher, data, p):
        m, q = jnp.dot(theta, teacher), jnp.dot(theta, theta)
        if is_isotropic(p):
            out = {"m": m, "q": q, **population(m, q, p, jnp)}
        else:
            lam = jnp.asarray(spectrum(theta.shape[0], p), jnp.float32)
            mS, qS, sS = jnp.sum(lam * theta * teacher), jnp.sum(lam * theta * theta), jnp.sum(lam * teacher * teacher)
            out = {"m": m, "q": q, "m_Sigma": mS, "q_Sigma": qS, **population(mS, qS, p, jnp, sS)}
        if data is not None:
            X, y = data
            out["train_risk"] = jnp.mean(loss_value(p["loss"], activation(p["activation"], X @ theta, jnp), y, jnp))
        return out

    def observable_names(self, p, finite):
        kind = ("error_rate",) if p["link"] == "sign" else ("gen_error",)
        aniso = () if is_isotropic(p) else ("m_Sigma", "q_Sigma")
        return ("risk",) + kind + ("m", "q") + aniso + (("train_risk",) if finite else ())


@hdbench.hookimpl
def hdbench_models():
    return [GLM]
