"""Model ``gmm-multiclass``: C anisotropic Gaussian classes, a linear classifier trained by one-pass
SGD (Collins-Woodfin & Seroussi 2025; docs/theory/one_pass.md section 6).

Data: class ``c`` with probability ``p_c``, ``x = mu_c + (s_c Sigma)^{1/2} z``, ``Sigma = diag(lambda_j)``
(any spectrum of spectra.py, mean eigenvalue 1) and class scales ``s_c`` (``class_scales``; default
1), so the class covariances share one eigenbasis. ``C = classes``, or ``round(d^classes_power)``
when ``classes_power > 0`` (C growing with d).

Means: given (``means``: C rows of d numbers in the covariance eigenbasis, or ``means_file``, one
row per class), else random and orthogonal, ``|mu_c| = mean_norm``. The ``floor(clean_fraction d)`` directions of smallest
variance are the *clean* ones (for ``zero-one`` with ``rho = clean_fraction``: the zero-variance
directions); a fraction ``mean_clean_fraction`` of each ``|mu_c|^2`` lies in them (default: the
clean fraction, i.e. the means spread evenly), each part a uniformly random orthonormal frame.

Student: ``W`` [r, d] from ``W = 0``, logits ``l = W x``; losses
- ``softmax``: cross-entropy ``logsumexp(l) - l_c`` (r = C);
- ``logistic``: C = 2, one output (r = 1), ``y = +1`` for class 0 and ``-1`` for class 1, ``log(1 + e^{-y l})``;
- ``square``: ``|l - e_c|^2 / 2`` on one-hot targets (r = C).

Observables (exact population values given the class, ``l | c ~ N(m_c, B_c)`` with
``m_c = W mu_c`` and ``B_c = s_c W Sigma W^T``): ``risk = sum_c p_c E_c loss``, ``risk_class_c``
(C <= 4), ``error_rate = P(predicted class != c)``, ``q = |W|_F^2``, and the alignment overlaps
``overlap_clean``, ``overlap_noisy``: the weight's overlap with the class means' clean (noisy) part,
per unit of that part's norm, ``<w_c, P_S mu_c> / |P_S mu_c|`` averaged over classes (binary
logistic: ``w`` against ``(mu_0 - mu_1)/2``). Expectations: closed form (square loss), Gauss-Hermite
(logistic), symmetrised quasi-Monte Carlo in C dimensions with 4096 nodes (softmax: about 1e-4
relative), and for the error rate of C outputs conditional QMC along the nearest decision boundary
(``error_probability``: smooth, and accurate far below 1/nodes). ``class_expectations`` is the one
function theory and model share.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import hdbench
from hdbench import InputError, Model, Param

from hdbench_plugins.common.linalg import orthonormal_columns
from hdbench_plugins.common.spectra import SPECTRUM_PARAMS, check_spectrum, spectrum
from hdbench_plugins.common.gmm_multiclass import LOSSES, MAX_PER_CLASS, n_classes, given_means, outputs, class_probs, class_scales, clean_mask, mean_split, root_of, class_expectations, check_given_means


class GMMMulticlass(Model):
    name = "gmm-multiclass"
    description = "C anisotropic Gaussian classes, linear classifier: softmax, binary logistic or one-hot least squares"
    params = {
        "loss": Param("softmax", str, choices=LOSSES),
        "classes": Param(3, int, low=2, doc="number of classes C"),
        "classes_power": Param(0.0, float, low=0.0, high=1.0, doc="> 0: C = round(d^classes_power)"),
        "probs": Param((), tuple, doc="class probabilities (default uniform)"),
        "mean_norm": Param(2.0, float, low=0.0, low_open=True, doc="|mu_c|"),
        "clean_fraction": Param(0.5, float, low=0.0, high=1.0, doc="fraction of directions called clean (smallest variance)"),
        "mean_clean_fraction": Param(None, float, low=0.0, high=1.0, optional=True,
                                     doc="fraction of |mu_c|^2 on the clean directions (default: clean_fraction)"),
        "class_scales": Param((), tuple, doc="class covariance scales s_c (default 1)"),
        "means": Param((), tuple, doc="given class means: C rows of d numbers (eigenbasis coordinates)"),
        "means_file": Param("", str, doc="given class means from a file: one row per class"),
        **SPECTRUM_PARAMS,
    }

    @classmethod
    def check_params(cls, p):
        check_spectrum(p)
        check_given_means(cls.name, p)
        if p["means"]:
            p["classes"] = len(p["means"])
        if p["loss"] == "logistic" and (p["classes"] != 2 or p["classes_power"] > 0):
            raise InputError(f"model '{cls.name}': loss = 'logistic' needs classes = 2 "
                             f"(got classes = {p['classes']}, classes_power = {p['classes_power']})")
        for key in ("probs", "class_scales"):
            if p[key] and p["classes_power"] > 0:
                raise InputError(f"model '{cls.name}': {key} cannot be given when C grows with d (classes_power > 0)")
            if p[key] and (len(p[key]) != p["classes"] or not all(isinstance(x, (int, float)) and x > 0 for x in p[key])):
                raise InputError(f"model '{cls.name}': {key} = {list(p[key])} is not allowed "
                                 f"(expected {p['classes']} positive numbers)")
            p[key] = tuple(map(float, p[key]))
        if p["probs"] and abs(sum(p["probs"]) - 1) > 1e-9:
            raise InputError(f"model '{cls.name}': probs = {list(p['probs'])} is not allowed (they must sum to 1)")

    @classmethod
    def check_scenario(cls, s):
        p, d = s.model_params, s.d
        if p["means"]:
            if any(len(row) != d for row in p["means"]):
                raise InputError(f"model '{cls.name}': means has rows of length "
                                 f"{sorted({len(row) for row in p['means']})} (expected d = {d})")
            return
        C, clean = n_classes(d, p), int(clean_mask(d, p).sum())
        f = mean_split(p)
        for part, size, weight in (("clean", clean, f), ("noisy", d - clean, 1 - f)):
            if weight > 0 and size < C:
                raise InputError(f"model '{cls.name}': {C} orthogonal means need >= {C} {part} directions "
                                 f"at d = {d} (have {size}; change clean_fraction or mean_clean_fraction)")

    def teacher(self, key, d, p):
        """The class means [C, d]: given, or orthonormal frames in the clean and noisy directions."""
        if p["means"]:
            return jnp.asarray(given_means(p), jnp.float32)
        C, mask, f = n_classes(d, p), clean_mask(d, p), mean_split(p)
        idx_clean, idx_noisy = np.flatnonzero(mask), np.flatnonzero(~mask)
        kc, kn = jax.random.split(key)
        means = jnp.zeros((C, d))
        for k, idx, weight in ((kc, idx_clean, f), (kn, idx_noisy, 1 - f)):
            if weight > 0:
                frame = orthonormal_columns(jax.random.normal(k, (len(idx), C)))
                means = means.at[:, idx].set(jnp.sqrt(weight) * frame.T)
        return p["mean_norm"] * means

    def init(self, key, d, teacher, p):
        return jnp.zeros((outputs(p, teacher.shape[0]), d))

    def sample(self, key, n, d, teacher, p):
        C = teacher.shape[0]
        kc, kz = jax.random.split(key)
        c = jax.random.choice(kc, C, (n,), p=jnp.asarray(class_probs(p, C)))
        sd = jnp.sqrt(jnp.asarray(spectrum(d, p), jnp.float32))
        scale = jnp.sqrt(jnp.asarray(class_scales(p, C), jnp.float32))[c]
        x = teacher[c] + scale[:, None] * sd[None, :] * jax.random.normal(kz, (n, d))
        y = jnp.where(c == 0, 1.0, -1.0) if p["loss"] == "logistic" else c.astype(jnp.float32)
        return x, y

    def loss(self, W, x, y, p):
        l = W @ x
        if p["loss"] == "logistic":
            return jnp.logaddexp(0.0, -y * l[0])
        c = y.astype(jnp.int32)
        if p["loss"] == "softmax":
            return jax.scipy.special.logsumexp(l) - l[c]
        return 0.5 * jnp.sum((l - jax.nn.one_hot(c, l.shape[0])) ** 2)

    def observables(self, W, teacher, data, p):
        C, d = teacher.shape
        lam = jnp.asarray(spectrum(d, p), jnp.float32)
        probs, scales = class_probs(p, C), class_scales(p, C)
        M = W @ teacher.T                                    # [r, C]: m_c = M[:, c]
        Bbase = (W * lam[None, :]) @ W.T
        root = root_of(Bbase, jnp) if Bbase.shape[0] > 1 else None
        out = {"risk": 0.0, "error_rate": 0.0, "q": jnp.sum(W * W)}
        for c in range(C):
            ex = class_expectations(p["loss"], M[:, c], scales[c] * Bbase, c, C, jnp,
                                    root=None if root is None else np.sqrt(scales[c]) * root)
            out["risk"] += probs[c] * ex["risk"]
            out["error_rate"] += probs[c] * ex["error"]
            if C <= MAX_PER_CLASS:
                out[f"risk_class_{c}"] = ex["risk"]
        mask = jnp.asarray(clean_mask(d, p))
        for part, sel in (("clean", mask), ("noisy", ~mask)):
            proj = jnp.where(sel[None, :], teacher, 0.0)
            out[f"overlap_{part}"] = self._overlap(W, proj, p)
        if data is not None:
            X, y = data
            out["train_risk"] = jnp.mean(jax.vmap(lambda x, yy: self.loss(W, x, yy, p))(X, y))
        return out

    @staticmethod
    def _overlap(W, proj, p):
        """``<w_c, P mu_c> / |P mu_c|`` averaged over classes (binary logistic: against (mu_0 - mu_1)/2)."""
        if p["loss"] == "logistic":
            half = 0.5 * (proj[0] - proj[1])
            return jnp.dot(W[0], half) / jnp.maximum(jnp.linalg.norm(half), 1e-30)
        norms = jnp.maximum(jnp.linalg.norm(proj, axis=1), 1e-30)
        return jnp.mean(jnp.sum(W * proj, axis=1) / norms)

    def observable_names(self, p, finite):
        C = p["classes"] if p["classes_power"] == 0 else MAX_PER_CLASS + 1
        per_class = tuple(f"risk_class_{c}" for c in range(C)) if C <= MAX_PER_CLASS else ()
        return ("risk", "error_rate", "q", "overlap_clean", "overlap_noisy") + per_class + (
            ("train_risk",) if finite else ())


@hdbench.hookimpl
def hdbench_models():
    return [GMMMulticlass]
