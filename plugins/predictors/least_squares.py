"""Least-squares theories: ``lsq-online-ode`` (online SGD on any spectrum; heavy-ball momentum at
fixed beta as online SGD at ``gamma/(1 - beta)``, its d -> infinity limit; AdaGrad-Norm with its
accumulator; signSGD and Adam by their per-coordinate drift and noise constants), and on isotropic
data ``lsq-gf-mp`` (gradient flow on n = alpha d samples) and ``lsq-homogenized-sgd`` (multi-pass
SGD / SGF). All three follow a learning-rate schedule: ``gamma -> gamma f(t)`` in the ODEs, the flow
read on the clock ``tau(t) = int_0^t f``. Equations: :mod:`hdbench_plugins.solvers.least_squares`
and docs/theory/multipass.md section 4.
"""
from __future__ import annotations

import abc

import numpy as np
from scipy.integrate import solve_ivp

import hdbench
from hdbench import Predictor, no
from hdbench_plugins.solvers.regime import (adapted_momentum, adaptive_ode, flow_clock, schedule_of, sgd_gamma,
                                           small_batches, streaming_sgd, unregularised)
from hdbench_plugins.solvers.least_squares import mp_quadrature, overlaps, solve_online, supports_isotropic_linear


class LsqOnlineODE(Predictor):
    name = "lsq-online-ode"
    description = ("online SGD, momentum (fixed or dimension-adapted beta), AdaGrad-Norm, signSGD or Adam on "
                   "least squares, any spectrum: per-eigenvalue ODE with the SGD-noise term")
    schedules = True
    examples = [{"model": {"name": "linear", "params": {"sigma": 0.5, "spectrum": "power-law", "beta": 1.0}},
                 "dynamics": {"name": "adagrad-norm", "params": {"gamma": 1.0, "b": 0.5}}, "d": 400, "t_max": 4.0}]

    def supports(self, s):
        if s.model != "linear":
            return no(f"model '{s.model}' is not the linear (least-squares) model")
        if not unregularised(s):
            return unregularised(s)
        return streaming_sgd(s, adaptive=True, second_order=True, sign=True)

    def predict(self, s, times):
        return solve_online(s, times)


class _FiniteDataLsq(Predictor):
    """Shared regime and observables of the Marchenko-Pastur theories (finite data, isotropic)."""

    nodes = 256   # Gauss nodes of the MP law: far more than smooth integrands need (tests/test_lsq_oracles.py)
    dynamics_supported = ("gd", "sgf", "sgd", "sgd-epochs", "momentum")   # momentum: SGD at sgd_gamma
    schedules = True
    second_order = False      # dimension-adapted momentum (kappa) needs the velocity's moments

    def supports(self, s):
        base = supports_isotropic_linear(s)
        if not base:
            return base
        if s.alpha is None:
            return no("online data: this theory needs finite data (alpha)")
        if s.dynamics not in self.dynamics_supported:
            return no(f"dynamics '{s.dynamics}' is not one of {', '.join(self.dynamics_supported)}")
        return small_batches(s, second_order=self.second_order)

    def predict(self, s, times):
        p = s.model_params
        m0, q0, sigma, D0 = overlaps(p)
        gamma, c = sgd_gamma(s), 1.0 / s.alpha
        lam, W, p0 = mp_quadrature(s.alpha, self.nodes)
        times = np.asarray(times, float)
        w, decay = self.solve_w(s, lam, W, gamma, sigma, c, D0 + sigma**2 * c / lam, times)   # [T, nodes] each
        D = (w - 2 * sigma**2 * c * decay / lam + sigma**2 * c / lam) @ W + D0 * p0
        m = 1 + (m0 - 1) * (decay @ W + p0)
        train = 0.5 * (w * lam) @ W + 0.5 * sigma**2 * (1 - min(c, 1.0))
        return {"risk": 0.5 * (D + sigma**2), "D": D, "m": m, "q": D + 2 * m - 1, "train_risk": train}

    @abc.abstractmethod
    def solve_w(self, s, lam, W, gamma, sigma, c, w0, times):
        """``(w, decay)`` as arrays [len(times), nodes]: ``w(l_k, t_i)``, and the mean's path ``decay``
        (``E[theta - thetahat]`` along ``l_k`` over its start; ``exp(-gamma l tau(t))`` for a first-order
        method, ``tau`` its clock) (``gamma`` before the schedule of ``s``): each subclass is one
        theory of them."""


class LsqGradientFlowMP(_FiniteDataLsq):
    name = "lsq-gf-mp"
    description = "gradient flow on n = alpha d samples, Marchenko-Pastur integrals (oracle 2)"

    def solve_w(self, s, lam, W, gamma, sigma, c, w0, times):
        decay = np.exp(-gamma * np.outer(flow_clock(s, times), lam))
        return w0 * decay**2, decay


class LsqHomogenizedSGD(_FiniteDataLsq):
    name = "lsq-homogenized-sgd"
    description = ("multi-pass SGD / SGF on least squares: homogenized SGD per MP eigenvalue (oracle 3); "
                   "AdaGrad-Norm with its accumulator, dimension-adapted momentum with its velocity")
    dynamics_supported = _FiniteDataLsq.dynamics_supported + ("adagrad-norm",)
    second_order = True

    def solve_w(self, s, lam, W, gamma, sigma, c, w0, times):
        if adapted_momentum(s):
            return self.solve_w_second_order(s, lam, W, gamma, sigma, c, w0, times)
        if schedule_of(s) is not None or s.dynamics == "adagrad-norm":
            return self.solve_w_in_time(s, lam, W, gamma, sigma, c, w0, times)
        # dw/dt = A w + b, A = -2 gamma diag(l) + gamma^2 l (W l)^T, b = gamma^2 sigma^2 (1 - c P(l>0)) l.
        # With S = diag(sqrt W), S A S^-1 = -2 gamma diag(l) + gamma^2 v v^T (v = sqrt(W) l) is symmetric.
        sq = np.sqrt(W)
        v = sq * lam
        evals, V = np.linalg.eigh(-2 * gamma * np.diag(lam) + gamma**2 * np.outer(v, v))
        u0 = V.T @ (sq * w0)
        f = V.T @ (sq * gamma**2 * sigma**2 * (1 - min(c, 1.0)) * lam)
        lt = np.outer(times, evals)
        # u(t) = e^{Lt} u0 + (e^{Lt} - 1)/L f, with expm1(x)/L -> t as L -> 0
        safe = np.where(np.abs(evals) > 1e-300, evals, 1.0)
        growth = np.where(np.abs(evals) > 1e-300, np.expm1(lt) / safe, times[:, None])
        u = np.exp(lt) * u0 + growth * f
        return (u @ V.T) / sq, np.exp(-gamma * np.outer(times, lam))

    @staticmethod
    def solve_w_in_time(s, lam, W, gamma, sigma, c, w0, times):
        # at rate g(t) (a schedule's gamma f(t); AdaGrad-Norm's gamma f(t)/sqrt(1 + G/b^2), which
        # accumulates G' = E_i |grad loss_i|^2/d = 2 train_risk): dw/dt = -2 g l w + g^2 l 2 train_risk,
        # no longer autonomous, so integrated (DOP853) instead of one eigh; the clock tau' = g/gamma
        floor = sigma**2 * (1 - min(c, 1.0))

        def step(t, y, g):
            w = y[:-1]
            two_train = W @ (lam * w) + floor
            return np.append(-2 * g * lam * w + g * g * lam * two_train, g / gamma), two_train

        rhs, y0 = adaptive_ode(s, step, np.append(w0, 0.0))
        sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, method="DOP853", rtol=1e-10,
                        atol=1e-12 * float(np.abs(w0).max()))
        return sol.y[:len(w0)].T, np.exp(-gamma * np.outer(sol.y[len(w0)], lam))

    @staticmethod
    def solve_w_second_order(s, lam, W, gamma, sigma, c, w0, times):
        # dimension-adapted momentum, e' = -g v, v' = kappa (grad + noise - v), grad = l e along l: the
        # moments w = E e^2, C = E e v, V = E v^2 (noise l 2 train_risk, as SGD's) and the mean's path h
        # with its velocity u (h(0) = 1); as kappa -> infinity, SGD's system
        kappa, floor, k = s.dynamics_params["kappa"], sigma**2 * (1 - min(c, 1.0)), len(lam)

        def step(t, y, g):
            w, C, V, h, u = y.reshape(5, k)
            two_train = W @ (lam * w) + floor
            return np.concatenate([-2 * g * C, -g * V + kappa * (lam * w - C),
                                   2 * kappa * (lam * C - V) + kappa**2 * lam * two_train,
                                   -g * u, kappa * (lam * h - u)]), two_train

        zeros = np.zeros(k)
        rhs, y0 = adaptive_ode(s, step, np.concatenate([w0, zeros, zeros, np.ones(k), zeros]))
        sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, method="DOP853", rtol=1e-10,
                        atol=1e-12 * float(np.abs(w0).max()))
        return sol.y[:k].T, sol.y[3 * k:4 * k].T


@hdbench.hookimpl
def hdbench_predictors():
    return [LsqOnlineODE, LsqGradientFlowMP, LsqHomogenizedSGD]
