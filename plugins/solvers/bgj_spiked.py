"""``bgj-effective``: Ben Arous-Gheissari-Jagannath effective dynamics with corrector
(docs/theory/one_pass.md section 3), in our conventions: ``delta = gamma/d``, their time ``l delta = gamma t``.
Models: ``spiked-tensor`` (below), ``gmm-binary`` and ``gmm-xor`` (``bgj_gmm``).

Spiked tensor of order k, ``u1 = <x, v>``, ``u2 = |x|^2 - u1^2``, ``R^2 = u1^2 + u2``, ``c = gamma``:
``du1/dt = gamma 2 u1 (lambda k u1^{k-2} - k R^{2k-2})``,
``du2/dt = -gamma 4k R^{2(k-1)} (u2 - c)``;
the ``+ 4k R^{2(k-1)} c`` part is the corrector (``population-gf`` drops it). Fixed points
``u2 = c``, ``lambda u1^{k-2} = (u1^2 + c)^{k-1}`` (k = 2: ``u1^2 = lambda - c``). RK45, rtol 1e-10.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from hdbench import YES, no
from hdbench_plugins.solvers.bgj_gmm import solve_gmm, supports_gmm
from hdbench_plugins.solvers.regime import one_pass


def spiked_rates(u, p, gamma, correction=True):
    u1, u2 = u
    k, lam = p["k"], p["lam"]
    R2 = u1 * u1 + u2
    du1 = gamma * 2 * u1 * (lam * k * u1 ** (k - 2) - k * R2 ** (k - 1))
    du2 = -gamma * 4 * k * R2 ** (k - 1) * (u2 - (gamma if correction else 0.0))
    return [du1, du2]


def solve_spiked(s, times, correction=True):
    p = s.model_params
    gamma = s.dynamics_params["gamma"]
    times = np.asarray(times, float)
    sol = solve_ivp(lambda _, u: spiked_rates(u, p, gamma, correction), (0.0, float(times[-1])),
                    [p["m0"], p["r2_0"]], t_eval=times, method="RK45", rtol=1e-10, atol=1e-12)
    m, r2 = np.full(len(times), np.inf), np.full(len(times), np.inf)
    m[:sol.y.shape[1]], r2[:sol.y.shape[1]] = sol.y
    q = m * m + r2
    return {"m": m, "r2": r2, "q": q, "risk": q ** p["k"] - 2 * p["lam"] * m ** p["k"]}


def supports_spiked(s, online=True):
    if s.model != "spiked-tensor":
        return no(f"model '{s.model}' is not spiked-tensor")
    regime = one_pass(s, online)
    if not regime:
        return regime
    if s.model_params["init"] == "random" or abs(s.model_params["m0"]) < 5 / np.sqrt(s.d):
        return no(f"start within a few d^-1/2 of the uninformative point (m0 = {s.model_params['m0']}, "
                  f"init = {s.model_params['init']}): the diffusive regime (bgj-diffusive), not the effective ODE's")
    return YES


SOLVERS = {"spiked-tensor": (supports_spiked, solve_spiked), "gmm-binary": (supports_gmm, solve_gmm),
           "gmm-xor": (supports_gmm, solve_gmm)}


def diffusive_moments(s, times):
    """Mean and variance of ``u~1 = sqrt(d) u1`` near the uninformative start, spiked matrix (k = 2).

    Linearising BGJ's SDE around ``u1 = 0`` in our time: ``du~1 = a(t) u~1 dt + b(t) dB`` with
    ``a = 4 gamma (lambda - u2)``, ``b^2 = 8 gamma^2 u2`` and ``u2`` from its own (deterministic)
    equation ``du2/dt = -8 gamma u2 (u2 - gamma)``. (With ``gamma = 1``, ``u2 = 1``: their OU
    ``du~1 = 4(lambda - 1) u~1 dt + 2 sqrt 2 dB``.) Moments: ``mean' = a mean``,
    ``var' = 2 a var + b^2``; a random start (``init = "random"``) has ``var(0) = |x0|^2``.
    """
    p = s.model_params
    gamma, d = s.dynamics_params["gamma"], s.d
    lam = p["lam"]
    random = p["init"] == "random"
    var0 = p["m0"] ** 2 + p["r2_0"] if random else 0.0
    mean0 = 0.0 if random else np.sqrt(d) * p["m0"]

    def rhs(_, y):
        u2, mean, var = y
        a = 4 * gamma * (lam - u2)
        return [-8 * gamma * u2 * (u2 - gamma), a * mean, 2 * a * var + 8 * gamma**2 * u2]

    times = np.asarray(times, float)
    u2_0 = p["r2_0"] + (0.0 if random else p["m0"] ** 2)
    sol = solve_ivp(rhs, (0.0, float(times[-1])), [u2_0, mean0, var0], t_eval=times, rtol=1e-10, atol=1e-12)
    u2, mean, var = sol.y
    return u2, mean / np.sqrt(d), np.sqrt(var / d)


DIFFUSIVE_WINDOW = 0.15   # |m| up to which the linearisation in u1 is trusted
