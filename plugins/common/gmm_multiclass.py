"""Multi-class Gaussian-mixture formulas shared by ``gmm-multiclass`` and ``multiclass-ode``: class
means and covariances from the parameters, and the class-conditional expectations of the loss and
its derivatives over the Gaussian logits (docs/theory/one_pass.md section 6).
"""
from __future__ import annotations

import functools

import jax
import numpy as np

from hdbench import InputError

from hdbench_plugins.common.linalg import cholesky_psd
from hdbench_plugins.common.quadrature import qmc_normal
from hdbench_plugins.common.spectra import spectrum


LOSSES = ("softmax", "logistic", "square")
QMC_LOG2_N = 11          # 4096 symmetrised Sobol nodes for the C-dimensional expectations (see class_expectations)
MAX_PER_CLASS = 4        # per-class risks are reported up to this many classes


def n_classes(d: int, p) -> int:
    if p["means"]:
        return len(p["means"])
    return max(2, int(round(d ** p["classes_power"]))) if p["classes_power"] > 0 else p["classes"]


def given_means(p):
    """The user's class means [C, d] (coordinates in the covariance eigenbasis), or None."""
    return np.asarray(p["means"], float) if p["means"] else None


def outputs(p, C: int) -> int:
    return 1 if p["loss"] == "logistic" else C


def class_probs(p, C: int) -> np.ndarray:
    return np.asarray(p["probs"], float) if p["probs"] else np.full(C, 1.0 / C)


def class_scales(p, C: int) -> np.ndarray:
    return np.asarray(p["class_scales"], float) if p["class_scales"] else np.ones(C)


def clean_mask(d: int, p) -> np.ndarray:
    """True on the ``floor(clean_fraction d)`` directions of smallest variance."""
    lam = spectrum(d, p)
    mask = np.zeros(d, bool)
    mask[np.argsort(lam, kind="stable")[:int(np.floor(p["clean_fraction"] * d))]] = True
    return mask


def mean_split(p) -> float:
    """Fraction of ``|mu_c|^2`` on the clean directions."""
    f = p["mean_clean_fraction"]
    return p["clean_fraction"] if f is None else f


@functools.lru_cache(maxsize=4)
def _hermite(n=64):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def _sqrt_psd(B, xp):
    """The symmetric root ``B^{1/2}``: continuous in ``B`` (an eigenvector basis is not, and the
    QMC nodes are not rotation invariant), so the expectations are smooth functions for the ODE."""
    vals, vecs = xp.linalg.eigh(B)
    return (vecs * xp.sqrt(xp.maximum(vals, 0.0))[None, :]) @ vecs.T


def _ndtr(xp):
    if xp is np:
        from scipy.special import ndtr
        return ndtr
    return jax.scipy.special.ndtr


def error_probability(m, root, c, xp=np):
    """``P(argmax_k l_k != c)`` for ``l = m + root z``, ``z ~ N(0, I)`` (a tie is an error), by
    conditional quasi-Monte Carlo: along the unit direction ``u`` of the nearest decision boundary
    (``l_c - l_k*`` with the smallest margin in standard deviations) the correct set is an interval
    ``lo < z_u < hi``, integrated exactly (``Phi``); the QMC nodes only average over the rest. So the
    estimate is smooth and resolves error rates far below 1/nodes (the plain indicator average
    cannot)."""
    r = m.shape[0]
    a = m[c] - m                                                     # margins l_c - l_k at z = 0
    G = root[c][None, :] - root                                      # their gradients in z [r, r]
    norms = xp.sqrt(xp.sum(G * G, axis=1))
    score = xp.where(xp.arange(r) == c, xp.inf, a / xp.maximum(norms, 1e-30))
    k = xp.argmin(score)
    u = G[k] / xp.maximum(norms[k], 1e-30)
    u = xp.where(norms[k] > 1e-30, u, xp.eye(r)[0])
    z = xp.asarray(qmc_normal(r, QMC_LOG2_N))
    z_perp = z - (z @ u)[:, None] * u[None, :]
    A = a[None, :] + z_perp @ G.T                                    # margins at z_u = 0 [N, r]
    b = (G @ u)[None, :]                                             # their slope in z_u
    others = (xp.arange(r) != c)[None, :]
    flat = xp.abs(b) <= 1e-12 * xp.maximum(norms[k], 1e-30)
    bound = -A / xp.where(flat, 1.0, b)
    lo = xp.max(xp.where(others & ~flat & (b > 0), bound, -xp.inf), axis=1)
    hi = xp.min(xp.where(others & ~flat & (b < 0), bound, xp.inf), axis=1)
    blocked = xp.any(others & flat & (A <= 0), axis=1)
    Phi = _ndtr(xp)
    err = xp.where(blocked | (lo >= hi), 1.0, Phi(lo) + Phi(-hi))
    return xp.mean(err)


def root_of(B, xp=np):
    """A factor ``R`` with ``R R^T = B``: the symmetric root in numpy (smooth in ``B``, for the ODE),
    a LAPACK-free Cholesky factor in JAX (model code is vmapped over seeds; see linalg.py). The
    classes' covariances are multiples ``s_c B`` of one matrix, so one factor serves them all
    (scaled by ``sqrt(s_c)``)."""
    return _sqrt_psd(B, xp) if xp is np else cholesky_psd(B)


def class_expectations(loss, m, B, c, C, xp=np, need=("risk", "error"), root=None):
    """Expectations over ``l ~ N(m, B)`` for class ``c`` of the per-sample loss (``risk``), its
    gradient ``psi = dloss/dl`` (``psi``), Hessian (``hess``), ``psi psi^T`` (``psipsi``) and of the
    misclassification indicator (``error``). ``m`` [r], ``B`` [r, r]; ``need`` selects the keys;
    ``root``: a factor ``R R^T = B`` if the caller has one."""
    out = {}
    if loss == "logistic":
        y = 1.0 if c == 0 else -1.0
        z, w = _hermite()
        sd = xp.sqrt(xp.maximum(B[0, 0], 0.0))
        l = m[0] + sd * xp.asarray(z)
        sig = 1.0 / (1.0 + xp.exp(y * l))                   # sigma(-y l)
        w = xp.asarray(w)
        out["risk"] = xp.sum(w * xp.logaddexp(0.0, -y * l))
        out["psi"] = xp.reshape(xp.sum(w * -y * sig), (1,))
        out["hess"] = xp.reshape(xp.sum(w * sig * (1 - sig)), (1, 1))
        out["psipsi"] = xp.reshape(xp.sum(w * sig * sig), (1, 1))
        out["error"] = _ndtr(xp)(-y * m[0] / xp.maximum(sd, 1e-30))
        return out
    e = xp.zeros(C)
    e = e.at[c].set(1.0) if xp is not np else np.eye(C)[c]
    if loss == "square":
        diff = m - e
        out["risk"] = 0.5 * (xp.trace(B) + xp.sum(diff * diff))
        out["psi"] = diff
        out["hess"] = xp.eye(C)
        out["psipsi"] = B + xp.outer(diff, diff)
    root = root_of(B, xp) if root is None else root
    if "error" in need:
        out["error"] = error_probability(m, root, c, xp)
    if loss == "softmax":
        l = m[None, :] + xp.asarray(qmc_normal(C, QMC_LOG2_N)) @ root.T    # [N, C]
        lse = jax.scipy.special.logsumexp(l, axis=1) if xp is not np else _logsumexp_np(l)
        prob = xp.exp(l - lse[:, None])
        out["risk"] = xp.mean(lse - l[:, c])
        out["psi"] = xp.mean(prob, axis=0) - e
        if "hess" in need:
            out["hess"] = xp.diag(xp.mean(prob, axis=0)) - prob.T @ prob / l.shape[0]
        if "psipsi" in need:
            g = prob - e[None, :]
            out["psipsi"] = g.T @ g / l.shape[0]
    return out


def _logsumexp_np(l):
    top = l.max(axis=1)
    return top + np.log(np.exp(l - top[:, None]).sum(axis=1))


def check_given_means(name, p):
    """Read ``means_file`` into ``means`` (so the values enter the scenario hash) and check them."""
    if p["means_file"]:
        try:
            rows = np.loadtxt(p["means_file"], ndmin=2)
        except (OSError, ValueError) as exc:
            raise InputError(f"model '{name}': means_file = {p['means_file']!r} could not be read as rows of numbers ({exc})") from None
        p["means"] = tuple(tuple(float(x) for x in row) for row in rows)
    if not p["means"]:
        return
    try:
        rows = [tuple(float(x) for x in row) for row in p["means"]]
    except (TypeError, ValueError):
        raise InputError(f"model '{name}': means must be rows of numbers (one row per class)") from None
    if len(rows) < 2 or not np.all(np.isfinite(np.asarray([x for r in rows for x in r]))):
        raise InputError(f"model '{name}': means = {len(rows)} rows is not allowed (expected >= 2 rows of finite numbers)")
    if p["classes_power"] > 0:
        raise InputError(f"model '{name}': means cannot be given when C grows with d (classes_power > 0)")
    p["means"] = tuple(rows)
