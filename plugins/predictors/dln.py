"""``dln-sde`` and ``dln-pde``: online SGD on a diagonal linear network by the mean-field law of one
coordinate, as particles (SDE) or as a Fokker-Planck PDE. Equations: :mod:`hdbench_plugins.solvers.dln_flow`
and docs/theory/dln.md.
"""
from __future__ import annotations

import hdbench
from hdbench import Predictor, no
from hdbench_plugins.solvers.dln_flow import coordinate_law, supports_online_dln, solve_sde, solve_pde


class DlnSDE(Predictor):
    name = "dln-sde"
    description = "DLN online SGD: mean-field (u, v) particle SDE per atom of w*, self-consistent risk"
    particles = 32768    # per atom of w*
    dt = 0.005           # Euler-Maruyama step (for k gamma >= 0.5; longer in proportion below)
    seed = 0

    def supports(self, s):
        return supports_online_dln(s)

    def predict(self, s, times):
        return solve_sde(s, times, self.particles, self.dt, self.seed)


class DlnPDE(Predictor):
    name = "dln-pde"
    description = "DLN online SGD: deterministic Fokker-Planck PDE per atom of w* (finite volumes), no MC noise"
    cells = 801          # finite-volume cells per atom
    dt = 1e-3            # backward-Euler step (for k gamma >= 0.5; longer in proportion below)

    def supports(self, s):
        base = supports_online_dln(s)
        if base and coordinate_law(s).c0 == 0:
            return no("the conserved q (or p) starts at 0: w cannot change sign and the rapidity is undefined")
        return base

    def predict(self, s, times):
        return solve_pde(s, times, self.cells, self.dt)


@hdbench.hookimpl
def hdbench_predictors():
    return [DlnSDE, DlnPDE]
