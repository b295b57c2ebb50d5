"""Model ``committee``: two-layer soft committee machine, teacher-student (docs/theory/one_pass.md section 2).

Student ``yhat = sum_i v_i g(lambda_i)``, ``lambda_i = <w_i, x>``, i = 1..K; teacher
``y = sum_n A g(nu_n) + sigma zeta``, ``nu_n = <w*_n, x>``, n = 1..M, with orthonormal teacher rows
(``T = I``), ``x ~ N(0, Sigma)`` with any covariance spectrum (spectra.py; isotropic by default), loss
``(y - yhat)^2 / 2``; ``g`` is ``erf(z/sqrt 2)``, linear or relu.
The second layer ``v`` starts at ``v0`` on every unit, or at ``V0`` (K values, one per unit), and
trains (same per-sample step ``gamma/d``) only if ``train_second_layer``.

Initialisation ``init = "overlaps"``: exactly ``Q = W W^T = q0 I + q_off (1 - I)`` and
``R = W W*^T = r0`` on the diagonal (``r_off`` elsewhere), or any measured state given as full
matrices ``Q0`` (K x K) and ``R0`` (K x M), built as ``R W* + (Q - R R^T)^{1/2} U`` with ``U``
orthonormal and orthogonal to the teacher (so ``Q - R R^T`` must be positive semi-definite); ``init = "random"``: rows ``N(0, q0 I/d)``.
Observables (exact): ``gen_error = E (yhat - y + sigma zeta)^2 / 2`` (from the pre-activation
covariances ``W Sigma W^T``, ``W Sigma W*^T``, ``W* Sigma W*^T``), ``risk = gen_error + sigma^2/2``, and the
Euclidean overlaps ``Q_i_j = <w_i, w_j>`` (i <= j), ``R_i_n = <w_i, w*_n>``, ``v_i``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import hdbench
from hdbench import InputError, Model, Param

from hdbench_plugins.common.linalg import orthonormal_columns
from hdbench_plugins.common.spectra import SPECTRUM_PARAMS, check_spectrum, is_isotropic, spectrum
from hdbench_plugins.common.committee import (ACTIVATIONS, g, generalisation_error, initial_overlaps, named_overlaps,
                                              overlap_names, parse_matrix, parse_vector, psd_root, second_layer)


class Committee(Model):
    name = "committee"
    description = "soft committee machine: K student / M teacher hidden units, erf, linear or relu"
    params = {
        "K": Param(2, int, low=1, high=256, doc="student hidden units"),
        "M": Param(2, int, low=1, high=256, doc="teacher hidden units"),
        "activation": Param("erf", str, choices=ACTIVATIONS),
        "sigma": Param(0.0, float, low=0.0, doc="label noise"),
        "A": Param(1.0, float, doc="teacher second-layer weight (all units)"),
        "v0": Param(1.0, float, doc="initial student second-layer weight (all units)"),
        "V0": Param(None, tuple, optional=True, parse=parse_vector,
                    doc="initial student second layer as K values, one per unit (replaces v0)"),
        "train_second_layer": Param(False, bool),
        "init": Param("overlaps", str, choices=("overlaps", "random")),
        "q0": Param(0.5, float, low=0.0, low_open=True, doc="initial Q_ii"),
        "q_off": Param(0.0, float, doc="initial Q_ik, i != k"),
        "r0": Param(1e-3, float, doc="initial R_ii"),
        "r_off": Param(0.0, float, doc="initial R_in, i != n"),
        "Q0": Param(None, tuple, optional=True, parse=parse_matrix,
                    doc="initial Q = W W^T as K rows of K (replaces q0, q_off)"),
        "R0": Param(None, tuple, optional=True, parse=parse_matrix,
                    doc="initial R = W W*^T as K rows of M (replaces r0, r_off)"),
        **SPECTRUM_PARAMS,
    }

    @classmethod
    def validate(cls, params):
        # unset Q0 / R0 / V0 are not part of the scenario: committee scenarios keep their hash
        return {k: v for k, v in super().validate(params).items() if v is not None or k not in ("Q0", "R0", "V0")}

    @classmethod
    def check_params(cls, p):
        check_spectrum(p)
        K, M = p["K"], p["M"]
        for key, shape in (("Q0", (K, K)), ("R0", (K, M))):
            value = p.get(key)
            if value is not None and np.shape(value) != shape:
                raise InputError(f"model 'committee': {key} of shape {np.shape(value)} is not allowed "
                                 f"(expected {shape[0]} rows of {shape[1]}: K = {K}, M = {M})")
            if value is not None and p["init"] != "overlaps":
                raise InputError(f"model 'committee': {key} is not allowed with init = '{p['init']}' "
                                 "(it sets the overlaps: init = 'overlaps')")
        if p.get("V0") is not None and len(p["V0"]) != K:
            raise InputError(f"model 'committee': V0 of length {len(p['V0'])} is not allowed (expected K = {K} values)")
        if p.get("Q0") is not None and not np.allclose(p["Q0"], np.transpose(p["Q0"]), rtol=0, atol=1e-12):
            raise InputError(f"model 'committee': Q0 = {[list(r) for r in p['Q0']]} is not allowed (it must be symmetric)")
        if p["init"] == "overlaps":
            Q0, R0 = initial_overlaps(p)
            low = np.linalg.eigvalsh(Q0 - R0 @ R0.T).min()
            if low < -1e-12 * max(1.0, np.abs(Q0).max()):
                given = "Q0/R0" if p.get("Q0") is not None or p.get("R0") is not None else "q0/q_off/r0/r_off"
                raise InputError(f"model 'committee': {given} are not allowed together: Q0 - R0 R0^T must be "
                                 f"positive semi-definite (its least eigenvalue is {low:.3g})")

    @classmethod
    def check_scenario(cls, s):
        p = s.model_params
        if s.d < p["K"] + p["M"]:
            raise InputError(f"model 'committee': d = {s.d} is not allowed with K + M = {p['K'] + p['M']} (need d >= K + M)")

    def teacher(self, key, d, p):
        q = orthonormal_columns(jax.random.normal(key, (d, p["M"])))
        return q.T                                                    # M x d, orthonormal rows

    def init(self, key, d, teacher, p):
        K = p["K"]
        v = jnp.asarray(second_layer(p), jnp.float32)
        if p["init"] == "random":
            return {"W": jax.random.normal(key, (K, d)) * jnp.sqrt(p["q0"] / d), "v": v}
        Q0, R0 = initial_overlaps(p)
        U = jax.random.normal(key, (d, K))
        U = U - teacher.T @ (teacher @ U)
        U = orthonormal_columns(U)
        C = psd_root(Q0 - R0 @ R0.T)
        return {"W": jnp.asarray(R0, jnp.float32) @ teacher + jnp.asarray(C, jnp.float32) @ U.T, "v": v}

    def _output(self, params, x, p):
        v = params["v"] if p["train_second_layer"] else jax.lax.stop_gradient(params["v"])
        return jnp.dot(v, g(p["activation"], params["W"] @ x))

    def sample(self, key, n, d, teacher, p):
        kx, ke = jax.random.split(key)
        X = jax.random.normal(kx, (n, d))
        if not is_isotropic(p):
            X = X * jnp.sqrt(jnp.asarray(spectrum(d, p), jnp.float32))
        y = p["A"] * g(p["activation"], X @ teacher.T).sum(axis=1) + p["sigma"] * jax.random.normal(ke, (n,))
        return X, y

    def loss(self, params, x, y, p):
        return 0.5 * (self._output(params, x, p) - y) ** 2

    def observables(self, params, teacher, data, p):
        W, v = params["W"], params["v"]
        Q, R = W @ W.T, W @ teacher.T
        M = p["M"]
        if is_isotropic(p):
            eg = generalisation_error(p["activation"], Q, R, jnp.eye(M), v, jnp.full((M,), p["A"]))
        else:
            lam = jnp.asarray(spectrum(W.shape[1], p), jnp.float32)
            eg = generalisation_error(p["activation"], (W * lam) @ W.T, (W * lam) @ teacher.T,
                                      (teacher * lam) @ teacher.T, v, jnp.full((M,), p["A"]))
        out = {"gen_error": eg, "risk": eg + 0.5 * p["sigma"] ** 2}
        out.update(named_overlaps(Q, R, v))
        if data is not None:
            X, y = data
            out["train_risk"] = jnp.mean(jax.vmap(lambda x, yy: self.loss(params, x, yy, p))(X, y))
        return out

    def observable_names(self, p, finite):
        names = ["gen_error", "risk", *overlap_names(p["K"], p["M"])]
        return tuple(names) + (("train_risk",) if finite else ())

    def divergence_statistic(self, obs):
        return obs["gen_error"]


@hdbench.hookimpl
def hdbench_models():
    return [Committee]
