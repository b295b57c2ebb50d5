"""Covariance spectra shared by every model with Gaussian data: ``Sigma = diag(lambda_1..lambda_d)``,
normalised so that ``tr(Sigma)/d = 1`` (CONVENTIONS.md)."""
from __future__ import annotations

import numpy as np

from hdbench import InputError, Param

SPECTRUM_PARAMS = {
    "spectrum": Param("isotropic", str, choices=("isotropic", "zero-one", "power-law"),
                      doc="covariance spectrum of x"),
    "rho": Param(0.5, float, low=0.0, high=0.99, doc="zero-one: fraction of zero-variance directions"),
    "beta": Param(1.0, float, low=0.0, low_open=True, doc="power-law: lambda_j ~ j^-beta"),
}


def spectrum(d: int, p) -> np.ndarray:
    """The d eigenvalues (mean 1) of the data covariance described by ``p``."""
    kind = p.get("spectrum", "isotropic")
    if kind == "isotropic":
        return np.ones(d)
    if kind == "zero-one":
        zeros = int(np.floor(p["rho"] * d))
        if zeros >= d:
            raise InputError(f"model: rho = {p['rho']} leaves no direction with variance at d = {d}")
        lam = np.zeros(d)
        lam[zeros:] = d / (d - zeros)
        return lam
    if kind == "power-law":
        lam = np.arange(1, d + 1, dtype=float) ** -p["beta"]
        return lam * d / lam.sum()
    raise InputError(f"model: spectrum = {kind!r} is not allowed (expected one of isotropic, zero-one, power-law)")


def is_isotropic(p) -> bool:
    return p.get("spectrum", "isotropic") == "isotropic"
