"""``multiclass-ode``: one-pass SGD on the anisotropic Gaussian mixture ``gmm-multiclass``
(Collins-Woodfin & Seroussi 2025; docs/theory/one_pass.md section 6), in our conventions (per-sample step
``gamma/d``, ``t = samples/d``).

Per eigen-direction ``u_j``: student read-outs ``w_j = W u_j`` [r], class-mean read-outs
``mu_{c,j}``; ``V_j = w_j w_j^T``, ``M_{c,j} = w_j mu_{c,j}``. Given class ``c`` the logits are
``l ~ N(m_c, B_c)``, ``m_c = sum_j M_{c,j}``, ``B_c = s_c sum_j lambda_j V_j``. With
``psi = dloss/dl`` and ``E_c`` over that Gaussian (Stein's lemma for ``E_c[psi x_j]``):

- ``dV_j/dt = -gamma sum_c p_c [E_c psi M_{c,j}^T + M_{c,j} E_c psi^T + s_c lambda_j (H_c V_j + V_j H_c)]
  + (gamma^2/d) sum_c p_c (s_c lambda_j + mu_{c,j}^2) E_c[psi psi^T]``
- ``dM_{c',j}/dt = -gamma sum_c p_c [mu_{c,j} mu_{c',j} E_c psi + s_c lambda_j H_c M_{c',j}]``

with ``H_c = E_c[d psi / dl]``. This is section 6 with the SGD noise of mode j taken as
``E x_j^2 = s_c lambda_j + mu_{c,j}^2`` (section 6 leaves the mean part as a question: it is exact
here, and vanishes as d -> infinity when the means are spread over many modes). Expectations:
``class_expectations`` of the model (closed form for square loss, Gauss-Hermite for logistic, QMC
for softmax). Start ``W = 0``. The means enter through their expected per-mode second moments
(orthogonal, ``|mu_c|^2 f / n_clean`` per clean mode, ``|mu_c|^2 (1 - f) / n_noisy`` per noisy
one), or exactly, per direction, when the means are given. Solved by the per-mode engine (modes.py) with modes of equal eigenvalue and
cleanliness summed, and geometric binning above ``BINS`` distinct eigenvalues per part.
"""
from __future__ import annotations

import numpy as np

from hdbench import YES, no
from hdbench_plugins.common.gmm_multiclass import (MAX_PER_CLASS, class_expectations, class_probs,
                                                   class_scales, clean_mask, given_means, mean_split, n_classes, outputs,
                                                   root_of)
from hdbench_plugins.common.spectra import spectrum
from hdbench_plugins.solvers.modes import Modes, bin_modes, solve_modes
from hdbench_plugins.solvers.regime import streaming_sgd


BINS = 64          # 2e-4 relative on a beta = 1 power law (the state grows like C^2 per bin)


def multiclass_modes(s) -> Modes:
    p, d = s.model_params, s.d
    C, r = n_classes(d, p), outputs(p, n_classes(d, p))
    lam, clean = spectrum(d, p), clean_mask(d, p)
    f, norm2 = mean_split(p), p["mean_norm"] ** 2
    mu = given_means(p)
    if mu is not None:          # exact per-mode second moments; every direction its own entry
        keys, counts = np.stack([lam, clean]), np.ones(d, int)
        T = np.einsum("cj,ej->jce", mu, mu)
    else:
        per_mode = np.where(clean, norm2 * f / max(clean.sum(), 1), norm2 * (1 - f) / max((~clean).sum(), 1))
        keys, inv, counts = np.unique(np.stack([lam, clean]), axis=1, return_inverse=True, return_counts=True)
        inv = inv.ravel()
        mean_sq = np.bincount(inv, per_mode, keys.shape[1])                    # summed over the entry's modes
        T = mean_sq[:, None, None] * np.eye(C)[None]
    n = keys.shape[1]
    scales = class_scales(p, C)
    return Modes(scales[:, None] * keys[0][None, :], counts / d, np.zeros((n, r, r)), np.zeros((n, r, C)), T,
                 keys[1].astype(int))


def multiclass_coefficients(p, C, correction=True):
    probs, scales = class_probs(p, C), class_scales(p, C)
    need = ("psi", "hess", "psipsi")

    def coefficients(agg):
        r = agg["X1"].shape[0]
        H, G0, N = np.zeros((C, r, r)), np.zeros((r, C)), np.zeros((C, r, r))
        roots = _class_roots(p, agg["P"], scales)
        for c in range(C):
            ex = class_expectations(p["loss"], agg["X1"][:, c], agg["P"][c], c, C, np, need=need, root=roots[c])
            H[c], G0[:, c], N[c] = probs[c] * ex["hess"], probs[c] * ex["psi"], probs[c] * ex["psipsi"]
        if not correction:
            N = np.zeros_like(N)
        return {"H": H, "G0": G0, "N": N, "Nmean": N}

    return coefficients


def _class_roots(p, B, scales, need_error=False):
    """Per-class ``B_c^{1/2} = sqrt(s_c) (B_c / s_c)^{1/2}`` from one eigendecomposition (softmax's
    QMC and the error rate of C outputs use it)."""
    if p["loss"] == "logistic" or (p["loss"] == "square" and not need_error):
        return [None] * len(scales)
    base = root_of(B[0] / scales[0], np)
    return [np.sqrt(sc) * base for sc in scales]


def solve_multiclass(s, times, correction=True, bins=BINS):
    p, d = s.model_params, s.d
    C = n_classes(d, p)
    probs = class_probs(p, C)
    modes = bin_modes(multiclass_modes(s), bins)
    states = solve_modes(modes, multiclass_coefficients(p, C, correction), s, times)
    names = ["risk", "error_rate", "q", "overlap_clean", "overlap_noisy"]
    names += [f"risk_class_{c}" for c in range(C)] if C <= MAX_PER_CLASS else []
    out = {k: np.full(len(times), np.inf) for k in names}
    for i, state in enumerate(states):
        if state is None:
            break
        P, X = state
        B = np.einsum("kn,nab->kab", modes.lam, P)
        roots = _class_roots(p, B, class_scales(p, C), need_error=True)
        risk = err = 0.0
        for c in range(C):
            ex = class_expectations(p["loss"], X.sum(0)[:, c], B[c], c, C, np, root=roots[c])
            risk, err = risk + probs[c] * ex["risk"], err + probs[c] * ex["error"]
            if C <= MAX_PER_CLASS:
                out[f"risk_class_{c}"][i] = ex["risk"]
        out["risk"][i], out["error_rate"][i], out["q"][i] = risk, err, np.trace(P.sum(0))
        for tag, part in ((1, "clean"), (0, "noisy")):
            sel = modes.tag == tag
            Xs, Tfull = X[sel].sum(0), modes.T[sel].sum(0)
            Ts = np.diag(Tfull)
            if p["loss"] == "logistic":      # against (mu_0 - mu_1)/2
                half = 0.5 * np.sqrt(max(Tfull[0, 0] + Tfull[1, 1] - 2 * Tfull[0, 1], 0.0))
                out[f"overlap_{part}"][i] = 0.5 * (Xs[0, 0] - Xs[0, 1]) / max(half, 1e-30)
            else:
                out[f"overlap_{part}"][i] = np.mean(np.diag(Xs) / np.maximum(np.sqrt(Ts), 1e-30))
    return out


def supports_multiclass(s, online=True):
    """The mixture on fresh samples: online SGD, fixed-beta momentum, AdaGrad-Norm (the engine's
    ``adaptive_ode``); ``online`` False: any dynamics (the flows)."""
    if s.model != "gmm-multiclass":
        return no(f"model '{s.model}' is not gmm-multiclass")
    return streaming_sgd(s, adaptive=True) if online else YES
