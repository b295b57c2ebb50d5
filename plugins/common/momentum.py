"""Heavy-ball momentum's step, shared by the ``momentum`` dynamics and the theories that predict it.

optax's convention: ``v <- beta v + G`` (``G`` the batch-mean gradient), ``theta <- theta - eta v``.

- Fixed ``beta``: ``eta = gamma B/d``. The velocity remembers O(1/(1 - beta)) steps, O(1/d) of time,
  so the d -> infinity limit is SGD at ``gamma/(1 - beta)``.
- Dimension-adapted, ``kappa`` given: ``beta = 1 - kappa B/d`` and ``eta = gamma kappa B^2/d^2``. The
  velocity now remembers ``1/kappa`` units of ``t``. ``gamma`` stays the rate of the SGD this tends
  to as ``kappa -> infinity`` (``eta/(1 - beta) = gamma B/d``). For finite ``kappa`` the limit is
  second order: ``dtheta/dt = -gamma w``, ``dw/dt = kappa (G - w)`` (docs/theory/one_pass.md section 5).
"""
from __future__ import annotations


def heavy_ball(d: int, params: dict) -> tuple[float, float]:
    """``(eta, beta)`` of the ``momentum`` dynamics with parameters ``params`` at dimension ``d``
    (``eta`` before any learning-rate schedule)."""
    gamma, B, kappa = params["gamma"], params["batch_size"], params.get("kappa")
    if kappa is None:
        return gamma * B / d, params["beta"]
    return gamma * kappa * B**2 / d**2, 1.0 - kappa * B / d
