"""``glm-aniso-ode``: online SGD on single-index GLMs and multi-index models (committee machines)
with any covariance spectrum (docs/theory/one_pass.md section 4, Collins-Woodfin, Paquette, Paquette, Seroussi
2023), in our conventions.

Per eigen-direction ``u_j`` the student and teacher read-outs ``theta_j``, ``theta*_j`` give
``a_j = theta_j^2``, ``b_j = theta_j theta*_j`` (``c_j = theta*_j^2`` is constant). With
``(l, l*) ~ N(0, [[q_S, m_S], [m_S, s_S]])``, ``q_S = sum lam_j a_j``, ``m_S = sum lam_j b_j``,
``s_S = sum lam_j c_j``, ``g = d loss / d l`` and Stein's lemma for ``E[g x_j]``:

- ``db_j/dt = -gamma lam_j (H11 b_j + H12 c_j)``
- ``da_j/dt = -2 gamma lam_j (H11 a_j + H12 b_j) + (gamma^2 lam_j / d) E[g^2]``

with ``H11 = E[dg/dl]``, ``H12 = E[dg/dl*]`` (section 4's ``H(B)``; ``I(B) = E[g^2]``). They come from
the model's own quadrature: ``H11 = E[g z] / sd(l | t)`` (Stein's lemma in the conditional
Gaussian, so kinks need no derivative), ``H12 = (E[g t] - H11 m_S) / Var t``. Regression noise adds
``sigma^2 E[f'(l)^2]`` to ``E[g^2]``. On isotropic data this is exactly ``glm-ode``'s (m, q) ODE
(a test). Start: the expected per-mode values of the model's start, ``a_j = q0/d``, ``b_j = m0/d``,
``c_j = 1/d`` (teacher uniform on the sphere). Modes with equal eigenvalues are summed exactly;
more than ``BINS`` distinct eigenvalues are merged into geometric bins (modes.py): at 256 bins the
risk differs from the unbinned solution by < 1e-4 relative on a beta = 1 power law at d = 1000 (test).

Multi-index (``committee``, K student and M teacher units, second layer fixed): the same with
``s_j`` [K] and ``t_j`` [M]. ``psi_i = -v_i g'(l_i) sum_u c_u g(x_u)`` (``c_u = A`` on teacher units,
``-v_u`` on student units); Stein's lemma gives ``[H | F] = E[psi (l, l*)^T] C^{-1}`` with ``C`` the
covariance of all K + M pre-activations, and ``E[psi (l, l*)^T]`` is Saad-Solla's ``I3`` sum, the
noise ``E[psi psi^T]`` their ``I4`` term plus ``sigma^2 v_i v_k J2`` (saad_solla.py's closed forms,
float64). On isotropic data this is exactly ``saad-solla`` (a test). A trained second layer is not
supported (its rate is not a per-mode quantity). Under a learning-rate schedule ``gamma`` is
``gamma f(t)`` throughout; under AdaGrad-Norm (GLMs) ``gamma f(t)/sqrt(b^2 + G)``, ``dG/dt = tr(Sigma)/d E[g^2]``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hdbench import no
from hdbench_plugins.common.glm import (activation, activation_prime, expectation_nodes, label, loss_grad,
                                        population, teacher_variance)
from hdbench_plugins.common.spectra import is_isotropic, spectrum
from hdbench_plugins.solvers.modes import Modes, bin_modes, solve_modes
from hdbench_plugins.common.committee import named_overlaps, generalisation_error, initial_overlaps, second_layer
from hdbench_plugins.solvers.regime import streaming_sgd, unregularised
from hdbench_plugins.solvers.committee_ode import _integrals, noise_term, supports_committee


BINS = 256


def glm_coefficients(p, correction=True):
    """The engine's coefficients ``H = [[H11]]``, ``F = [[H12]]``, ``N = [[E g^2]]`` (zero without
    the SGD-noise correction) as a function of the aggregates."""
    def coefficients(agg):
        q, m, s = agg["P"][0, 0, 0], agg["X"][0, 0, 0], agg["T"][0, 0, 0]
        q = max(q, 0.0)
        H11, H12, I = glm_expectations(m, q, s, p)
        return {"H": np.array([[[H11]]]), "F": np.array([[[H12]]]),
                "N": np.array([[[I if correction else 0.0]]])}

    return coefficients


def glm_expectations(m, q, s, p):
    """``(E dg/dl, E dg/dl*, E g^2)`` for ``(l, l*)`` with covariance ``[[q, m], [m, s]]``."""
    lam, t, w = expectation_nodes(m, q, p, np, s)
    var_t = teacher_variance(p, s)
    fprime = activation_prime(p["activation"], lam, np)

    def g_at(x):
        return loss_grad(p["loss"], activation(p["activation"], x, np), label(t, p, np), np) * \
            activation_prime(p["activation"], x, np)

    g = g_at(lam)
    cond_sd = np.sqrt(max(q - m * m / var_t, 0.0))
    if cond_sd > 1e-7:
        H11 = np.sum(w * g * (lam - (m / var_t) * t)) / cond_sd**2
    else:           # l is a function of t: a central difference (the state is at an exact alignment)
        H11 = np.sum(w * (g_at(lam + 1e-5) - g_at(lam - 1e-5))) / 2e-5
    H12 = (np.sum(w * g * t) - H11 * m) / var_t
    I = np.sum(w * g * g)
    if p["link"] != "sign":
        I += p["sigma"] ** 2 * np.sum(w * fprime**2)
    return H11, H12, I


def teacher_student_modes(s, Q0, R0) -> Modes:
    """The expected per-mode start of a student with overlaps ``Q0`` [r, r], ``R0`` [r, a] with a
    teacher of ``a`` orthonormal columns, both uniformly oriented: ``P_j = Q0/d``, ``X_j = R0/d``,
    ``T_j = I/d`` per direction (summed over the directions that share an eigenvalue)."""
    lam, counts = np.unique(spectrum(s.d, s.model_params), return_counts=True)
    frac = (counts / s.d)[:, None, None]
    return Modes(lam[None], frac[:, 0, 0], frac * Q0, frac * R0, frac * np.eye(R0.shape[1]), np.zeros(len(lam), int))


def solve_glm_aniso(s, times, correction=True, bins=BINS):
    p = s.model_params
    modes = bin_modes(teacher_student_modes(s, np.array([[p["q0"]]]), np.array([[p["m0"]]])), bins)
    states = solve_modes(modes, glm_coefficients(p, correction), s, times)
    names = ("risk", "error_rate" if p["link"] == "sign" else "gen_error", "m", "q", "m_Sigma", "q_Sigma")
    out = {k: np.full(len(states), np.inf) for k in names}
    lam = modes.lam[0]
    sS = float(lam @ modes.T[:, 0, 0])
    for i, state in enumerate(states):
        if state is None:
            break
        P, X = state[0][:, 0, 0], state[1][:, 0, 0]
        qS, mS = float(lam @ P), float(lam @ X)
        out["m"][i], out["q"][i], out["m_Sigma"][i], out["q_Sigma"][i] = X.sum(), P.sum(), mS, qS
        for k, v in population(mS, max(qS, 0.0), p, np, sS).items():
            out[k][i] = float(v)
    if is_isotropic(p):          # the model reports m_Sigma, q_Sigma only where they differ from m, q
        del out["m_Sigma"], out["q_Sigma"]
    return out


@functools.lru_cache(maxsize=16)
def _committee_expectations(act, K, M):
    """Jitted float64 ``(E[psi (l, l*)^T] [K, K+M], E[psi psi^T] without noise [K, K])`` from ``C``, ``c``."""
    def f(C, c):
        I3, J2 = _integrals(act, C, K)
        S = c[:K, None] * jnp.einsum("ibu,u->ib", I3, c)           # c[:K] = -v
        return S, noise_term(act, C, c, K) * jnp.outer(c[:K], c[:K]), J2 * jnp.outer(c[:K], c[:K])
    return jax.jit(f)


def committee_coefficients(p, correction=True):
    K, M, act = p["K"], p["M"], p["activation"]
    c = np.concatenate([-second_layer(p), np.full(M, p["A"])])

    def coefficients(agg):
        C = np.block([[agg["P"][0], agg["X"][0]], [agg["X"][0].T, agg["T"][0]]])
        with jax.enable_x64(True):
            S, quad, J2 = (np.asarray(x) for x in _committee_expectations(act, K, M)(jnp.asarray(C), jnp.asarray(c)))
        HF = np.linalg.solve(C, S.T).T                                  # S C^{-1} (C symmetric)
        N = quad + p["sigma"] ** 2 * J2 if correction else np.zeros((K, K))
        return {"H": HF[None, :, :K], "F": HF[None, :, K:], "N": N[None]}

    return coefficients


def solve_committee_aniso(s, times, correction=True, bins=BINS):
    p = s.model_params
    K, M, act = p["K"], p["M"], p["activation"]
    Q0, R0 = initial_overlaps(p)
    modes = bin_modes(teacher_student_modes(s, Q0, R0), bins)
    # ReLU's noise term is a quasi-Monte Carlo sum of indicators: smooth only to ~1e-7, so a tighter
    # tolerance only buys rejected steps
    rtol = 1e-6 if act == "relu" else 1e-8
    states = solve_modes(modes, committee_coefficients(p, correction), s, times, rtol=rtol)
    v, A = second_layer(p), np.full(M, p["A"])
    TS = np.einsum("n,nab->ab", modes.lam[0], modes.T)
    gen = np.full(len(times), np.inf)
    Q, R = np.full((len(times), K, K), np.inf), np.full((len(times), K, M), np.inf)
    for k, state in enumerate(states):
        if state is None:
            break
        P, X = state
        QS, RS = np.einsum("n,nab->ab", modes.lam[0], P), np.einsum("n,nab->ab", modes.lam[0], X)
        gen[k] = generalisation_error(act, QS, RS, TS, v, A, np)
        Q[k], R[k] = P.sum(0), X.sum(0)
    return {"gen_error": gen, "risk": gen + 0.5 * p["sigma"] ** 2,
            **named_overlaps(Q, R, np.tile(v, (len(times), 1)))}


def supports_online_glm_any_spectrum(s):
    if s.model == "committee":
        if s.model_params["train_second_layer"]:
            return no("a trained second layer is not a per-mode quantity (use saad-solla on isotropic data)")
        return supports_committee(s, isotropic=False)
    if s.model != "glm":
        return no(f"model '{s.model}' is not glm or committee")
    if not unregularised(s):
        return unregularised(s)
    return streaming_sgd(s, adaptive=True)
