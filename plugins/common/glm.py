"""Single-index GLM formulas, written once against an array module ``xp`` (numpy or jax.numpy) so that
the ``glm`` model and its theories share them: links, activations, losses and their derivatives, and
the population risk as a function of the overlaps ``(m, q)``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hdbench import InputError

from hdbench_plugins.common.quadrature import normal_nodes


LINKS = ("linear", "sign", "relu", "erf", "tanh", "quadratic")
ACTIVATIONS = ("linear", "relu", "erf", "tanh", "quadratic")
LOSSES = ("square", "logistic", "hinge")
SQRT2 = np.sqrt(2.0)


def _erf(xp):
    if xp is np:
        from scipy.special import erf
        return erf
    return jax.scipy.special.erf


def activation(name, z, xp):
    if name == "linear":
        return z
    if name == "relu":
        return xp.maximum(z, 0.0)
    if name == "erf":
        return _erf(xp)(z / SQRT2)
    if name == "tanh":
        return xp.tanh(z)
    if name == "quadratic":
        return z * z
    if name == "sign":
        return xp.sign(z)
    raise InputError(f"unknown activation {name!r}")


def activation_prime(name, z, xp):
    if name == "linear":
        return xp.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype) if xp is np else jnp.where(z > 0, 1.0, 0.0)
    if name == "erf":
        return np.sqrt(2 / np.pi) * xp.exp(-z * z / 2)
    if name == "tanh":
        return 1 - xp.tanh(z) ** 2
    if name == "quadratic":
        return 2 * z
    raise InputError(f"unknown activation {name!r}")


def loss_value(name, out, y, xp):
    if name == "square":
        return 0.5 * (out - y) ** 2
    if name == "logistic":
        return xp.logaddexp(0.0, -y * out)
    if name == "hinge":
        return xp.maximum(0.0, 1.0 - y * out)
    raise InputError(f"unknown loss {name!r}")


def loss_grad(name, out, y, xp):
    """d loss / d out."""
    if name == "square":
        return out - y
    if name == "logistic":
        return -y / (1 + xp.exp(y * out))
    if name == "hinge":
        return xp.where(y * out < 1.0, -y, 0.0)
    raise InputError(f"unknown loss {name!r}")


def teacher_variance(p, s=1.0):
    """Variance of the variable ``t`` the label depends on: ``lambda*`` (variance ``s``), plus the
    label noise ``sigma eps`` for the sign link."""
    return s + p["sigma"] ** 2 if p["link"] == "sign" else s


def expectation_nodes(m, q, p, xp, s=1.0):
    """Flattened nodes ``(lambda, t)`` and weights for E over ``(lambda, t)`` with
    ``Var t = teacher_variance(p, s)``, ``Cov(lambda, t) = m``, ``Var lambda = q``: outer integral over
    ``t``, inner over ``lambda | t``, each split where the link, activation or loss has a kink."""
    var_t = teacher_variance(p, s)
    t, wt = normal_nodes(xp.zeros(()), xp.sqrt(xp.asarray(var_t)), [0.0] if p["link"] in ("sign", "relu") else [], xp)
    breaks = [0.0] if p["activation"] == "relu" else []
    if p["loss"] == "hinge" and p["activation"] == "linear":
        breaks = [-1.0, 1.0]
    cond_sd = xp.sqrt(xp.maximum(q - m * m / var_t, 0.0))
    lam, wl = normal_nodes((m / var_t) * t, cond_sd * xp.ones_like(t), breaks, xp)
    return lam.ravel(), (t[:, None] * xp.ones_like(lam)).ravel(), (wt[:, None] * wl).ravel()


def label(t, p, xp):
    """The noise-free label function of the teacher variable (noise added separately for regression)."""
    return xp.sign(t) if p["link"] == "sign" else activation(p["link"], t, xp)


def population(m, q, p, xp=np, s=1.0):
    """Exact population observables when ``(lambda, lambda*)`` has covariance ``[[q, m], [m, s]]``."""
    lam, t, w = expectation_nodes(m, q, p, xp, s)
    var_t = teacher_variance(p, s)
    y = label(t, p, xp)
    out = activation(p["activation"], lam, xp)
    if p["link"] == "sign":
        res = {"risk": xp.sum(w * loss_value(p["loss"], out, y, xp))}
        rho = m / xp.sqrt(xp.maximum(q * var_t, 1e-30))
        res["error_rate"] = xp.arccos(xp.clip(rho, -1.0, 1.0)) / np.pi
    else:   # square loss: E over the additive noise is sigma^2/2
        gen = xp.sum(w * 0.5 * (out - y) ** 2)
        res = {"risk": gen + 0.5 * p["sigma"] ** 2, "gen_error": gen}
    return res
