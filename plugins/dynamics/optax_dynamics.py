"""Dynamics built on optax, each mapped onto ``t = samples/d`` with per-sample step ``gamma/d``.

| name          | data   | one step                                              | dt    |
| online-sgd    | online | B fresh samples, ``optax.sgd(gamma B/d)`` on the mean  | B/d   |
| sgd           | finite | B indices i.i.d. uniform from n (with replacement)    | B/d   |
| sgd-epochs    | finite | reshuffle once per epoch, sweep in batches of B       | B/d   |
| sgf           | finite | Euler-Maruyama of SGF/SME, Gaussian re-weighting      | h     |
| gd            | finite | full-batch gradient descent, step ``gamma h``         | h     |
| momentum      | either | ``optax.sgd(gamma B/d, momentum=beta)``; or ``kappa`` | B/d   |
| adagrad-norm  | either | AdaGrad-Norm: ``gamma B/d / sqrt(b^2 + G)``, below    | B/d   |
| sign-sgd      | either | ``optax.sign_sgd(gamma B/d)``                         | B/d   |
| adam          | either | ``optax.adam(gamma B/d)``                             | B/d   |

Every one takes a learning-rate ``schedule`` (:mod:`hdbench.schedule`): step ``k`` is scaled by
``f((k + 1/2) dt)``, an optax schedule in the time ``t`` read at the middle of step k's interval.

SGF: ``theta += -gamma h [gbar + (1/sqrt(h d n)) sum_i (xi_i - xibar) g_i]``, ``xi ~ N(0, I_n)``,
whose noise has covariance ``(gamma^2 h / d) Sigmahat`` (docs/conventions.md). ``either`` dynamics draw
fresh samples without ``alpha`` and with-replacement batches with it. Adam, like signSGD, moves
every coordinate by O(lr) (``m/sqrt(v)`` is O(1) per coordinate), so its learning rate is ``gamma B/d``:
a step of norm O(gamma B/sqrt(d)), SGD's (at ``gamma B/d^1.5`` the drift per unit t would be
O(d^-1/2): no limit; docs/conventions.md).

Momentum with ``kappa`` is dimension-adapted: ``beta = 1 - kappa B/d``, learning rate
``gamma kappa B^2/d^2`` (the velocity remembers ``1/kappa`` units of t; :mod:`hdbench_plugins.common.momentum`).

signSGD moves every coordinate by ``gamma B/d``: a step of norm ``gamma B/sqrt(d)``, as SGD's per-sample
step, so ``t`` is the same clock (the limit: ``docs/theory/one_pass.md`` section 8).

AdaGrad-Norm (one scalar rate for all coordinates) on the batch-mean gradient ``g_k``:
``G_k = G_{k-1} + (B/d)^2 |g_k|^2``, ``theta -= (gamma B/d) f_k g_k / sqrt(b^2 + G_k)`` (``f_k`` the
schedule's factor): Ward, Wu & Bottou's AdaGrad-Norm with learning rate ``gamma`` and ``b_0 = b d/B``. A per-sample gradient has
``|grad loss|^2 ~ d``, so ``G(t) -> int_0^t E|grad loss|^2/d ds`` is O(1) and the per-sample step stays
``O(1/d)``: AdaGrad-Norm needs no ``d``-dependent tuning (``docs/conventions.md``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import hdbench
from hdbench import Dynamics, InputError, Param
from hdbench.schedule import SCHEDULE
from hdbench_plugins.common.momentum import heavy_ball

GAMMA = Param(0.5, float, low=0.0, low_open=True, doc="learning rate (per-sample step gamma/d)")
BATCH = Param(1, int, low=1, doc="mini-batch size B")
H = Param(0.01, float, low=0.0, low_open=True, high=1.0, doc="time step h of the discretised flow")


def _check_batch(scenario):
    B, n = scenario.dynamics_params.get("batch_size", 1), scenario.n
    if n is not None and B > n:
        raise InputError(f"dynamics '{scenario.dynamics}': batch_size = {B} is not allowed with "
                         f"n = {n} samples (need batch_size <= n)")


def _with_replacement(key, step, n, B):
    idx = jax.random.randint(jax.random.fold_in(key, step), (B,), 0, n)
    return idx, jnp.full((B,), 1.0 / B)


class _PlainStep(Dynamics):
    """Plain gradient steps on the weighted batch loss, of size ``gamma dt``: per-sample ``gamma/d``
    when ``dt = B/d``, ``gamma h`` on the mean loss for the flows."""

    def optimizer(self, s):
        return optax.sgd(self.learning_rate(s, s.dynamics_params["gamma"] * self.dt(s)))


class OnlineSGD(_PlainStep):
    name = "online-sgd"
    description = "one-pass SGD: a fresh mini-batch each step"
    sampling = "online"
    params = {"gamma": GAMMA, "batch_size": BATCH, "schedule": SCHEDULE}

    def dt(self, s):
        return s.dynamics_params["batch_size"] / s.d


class SGD(OnlineSGD):
    name = "sgd"
    description = "multi-pass SGD: B indices i.i.d. from the n samples each step (Poisson limit)"
    sampling = "finite"
    check_scenario = staticmethod(_check_batch)

    def batch(self, key, step, n, s):
        return _with_replacement(key, step, n, s.dynamics_params["batch_size"])


class SGDEpochs(SGD):
    name = "sgd-epochs"
    description = "multi-pass SGD with a reshuffle per epoch (floor(n/B) batches, remainder dropped)"

    def batch(self, key, step, n, s):
        return self._take(self._permutation(key, step, n, s), step, n, s)

    def batch_state(self, key, n, s):
        return self._permutation(key, 0, n, s)

    def batch_with_state(self, key, step, n, s, perm):
        # drawn at an epoch's first step and carried; the condition depends on the step alone, so
        # that under vmap over seeds it stays a branch (a per-seed condition would draw every step)
        perm = jax.lax.cond(step % (n // s.dynamics_params["batch_size"]) == 0,
                            lambda: self._permutation(key, step, n, s), lambda: perm)
        return (*self._take(perm, step, n, s), perm)

    @staticmethod
    def _permutation(key, step, n, s):
        epoch = step // (n // s.dynamics_params["batch_size"])
        return jax.random.permutation(jax.random.fold_in(key, epoch), n)

    @staticmethod
    def _take(perm, step, n, s):
        B = s.dynamics_params["batch_size"]
        return jax.lax.dynamic_slice(perm, ((step % (n // B)) * B,), (B,)), jnp.full((B,), 1.0 / B)


class GD(_PlainStep):
    name = "gd"
    description = "full-batch gradient descent with step gamma*h (-> gradient flow as h -> 0)"
    sampling = "finite"
    params = {"gamma": GAMMA, "h": H, "schedule": SCHEDULE}

    def dt(self, s):
        return s.dynamics_params["h"]

    def batch(self, key, step, n, s):
        return None, jnp.full((n,), 1.0 / n)


class SGF(GD):
    name = "sgf"
    description = "stochastic gradient flow / SME by Euler-Maruyama (Gaussian re-weighting of samples)"

    def batch(self, key, step, n, s):
        xi = jax.random.normal(jax.random.fold_in(key, step), (n,))
        scale = 1.0 / jnp.sqrt(s.dynamics_params["h"] * s.d * n)
        return None, 1.0 / n + scale * (xi - xi.mean())


class _Either(OnlineSGD):
    sampling = "either"
    check_scenario = staticmethod(_check_batch)

    def batch(self, key, step, n, s):
        return _with_replacement(key, step, n, s.dynamics_params["batch_size"])


class Momentum(_Either):
    name = "momentum"
    description = "SGD with heavy-ball momentum (optax.sgd momentum=beta, or dimension-adapted beta = 1 - kappa B/d)"
    params = {"gamma": GAMMA, "batch_size": BATCH,
              "beta": Param(0.9, float, low=0.0, high=0.999, doc="momentum (fixed as d grows)"),
              "kappa": Param(None, float, low=0.0, low_open=True, optional=True,
                             doc="dimension-adapted: beta = 1 - kappa B/d, step gamma kappa B^2/d^2 (replaces beta)"),
              "schedule": SCHEDULE}

    @staticmethod
    def check_scenario(s):
        _check_batch(s)
        p = s.dynamics_params
        if p.get("kappa") is not None and p["kappa"] * p["batch_size"] >= s.d:
            raise InputError(f"dynamics 'momentum': kappa = {p['kappa']:g} with batch_size = {p['batch_size']} is not "
                             f"allowed at d = {s.d} (need kappa B < d: beta = 1 - kappa B/d > 0)")

    def optimizer(self, s):
        eta, beta = heavy_ball(s.d, s.dynamics_params)
        return optax.sgd(self.learning_rate(s, eta), momentum=beta)


def scale_by_adagrad_norm(b: float, weight: float) -> optax.GradientTransformation:
    """Scale the gradient by ``1/sqrt(b^2 + G)``, ``G += weight |g|^2`` (one scalar for the whole tree)."""

    def init(params):
        del params
        return jnp.zeros([], jnp.float32)

    def update(updates, G, params=None):
        del params
        G = G + weight * optax.tree.norm(updates, squared=True)
        return jax.tree.map(lambda g: g * jax.lax.rsqrt(b * b + G), updates), G

    return optax.GradientTransformation(init, update)


class AdaGradNorm(_Either):
    name = "adagrad-norm"
    description = "AdaGrad-Norm: one adaptive rate gamma/sqrt(b^2 + G), G the accumulated |grad|^2/d per unit t"
    params = {"gamma": GAMMA, "batch_size": BATCH,
              "b": Param(1.0, float, low=0.0, low_open=True, doc="initial rate gamma/b (optax b0 = b d/B)"),
              "schedule": SCHEDULE}

    def optimizer(self, s):
        p = s.dynamics_params
        return optax.chain(scale_by_adagrad_norm(p["b"], self.dt(s) ** 2),
                           optax.sgd(self.learning_rate(s, p["gamma"] * self.dt(s))))


class SignSGD(_Either):
    name = "sign-sgd"
    description = "signSGD: optax.sign_sgd(gamma B/d), each coordinate moves by the step size times the gradient's sign"
    params = {"gamma": GAMMA, "batch_size": BATCH, "schedule": SCHEDULE}

    def optimizer(self, s):
        return optax.sign_sgd(self.learning_rate(s, s.dynamics_params["gamma"] * self.dt(s)))


class Adam(_Either):
    name = "adam"
    description = "optax.adam with learning rate gamma*B/d (per-coordinate steps, as sign-sgd)"
    params = {"gamma": Param(0.5, float, low=0.0, low_open=True, doc="learning rate: per-coordinate step gamma B/d"),
              "batch_size": BATCH,
              "b1": Param(0.9, float, low=0.0, high=0.999), "b2": Param(0.999, float, low=0.0, high=0.99999),
              "schedule": SCHEDULE}

    def optimizer(self, s):
        p = s.dynamics_params
        return optax.adam(self.learning_rate(s, p["gamma"] * self.dt(s)), b1=p["b1"], b2=p["b2"])


@hdbench.hookimpl
def hdbench_dynamics():
    return [OnlineSGD, SGD, SGDEpochs, GD, SGF, Momentum, AdaGradNorm, SignSGD, Adam]
