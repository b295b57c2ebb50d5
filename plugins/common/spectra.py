"""Covariance spectra shared by every model with Gaussian data: ``Sigma = diag(lambda_1..lambda_d)``,
normalised so that ``tr(Sigma)/d = 1`` (docs/conventions.md).

``given``: the user's eigenvalues (``eigenvalues`` list, or ``eigenvalues_file``, whitespace-separated
numbers). A list of length d is used as it is; any other length is read as the shape of the spectrum:
its sorted values are interpolated at the d quantile positions ``(j + 1/2)/d``.
"""
from __future__ import annotations

import numpy as np

from hdbench import InputError, Param

SPECTRUM_PARAMS = {
    "spectrum": Param("isotropic", str, choices=("isotropic", "zero-one", "power-law", "given"),
                      doc="covariance spectrum of x"),
    "eigenvalues": Param((), tuple, doc="given: eigenvalues (any length; resampled to d)"),
    "eigenvalues_file": Param("", str, doc="given: file of whitespace-separated eigenvalues"),
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
    if kind == "given":
        values = np.sort(given_eigenvalues(p))[::-1]
        if len(values) != d:
            values = np.interp((np.arange(d) + 0.5) / d, (np.arange(len(values)) + 0.5) / len(values), values)
        return values * d / values.sum()
    raise InputError(f"model: spectrum = {kind!r} is not allowed (expected one of isotropic, zero-one, power-law, given)")


def given_eigenvalues(p) -> np.ndarray:
    """The user's eigenvalues, checked: finite, non-negative, not all zero."""
    if p.get("eigenvalues_file"):
        try:
            values = np.loadtxt(p["eigenvalues_file"], ndmin=1).ravel()
        except (OSError, ValueError) as exc:
            raise InputError(f"model: eigenvalues_file = {p['eigenvalues_file']!r} could not be read "
                             f"as numbers ({exc})") from None
        field = "eigenvalues_file"
    else:
        try:
            values, field = np.asarray(p.get("eigenvalues", ()), dtype=float).ravel(), "eigenvalues"
        except (TypeError, ValueError):
            raise InputError(f"model: eigenvalues = {list(p['eigenvalues'])} is not allowed (expected numbers)") from None
    if values.size == 0:
        raise InputError("model: spectrum = 'given' needs eigenvalues (a list) or eigenvalues_file")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() <= 0:
        raise InputError(f"model: {field} must be finite, non-negative and not all zero "
                         f"(got min {values.min():g}, max {values.max():g})")
    return values


def check_spectrum(p) -> None:
    """Validate the spectrum fields at scenario creation (a bad file fails here, not in a worker). A
    file's values are copied into ``eigenvalues``, so they, not the path, enter the scenario's hash."""
    if p.get("spectrum") == "given":
        p["eigenvalues"] = tuple(float(x) for x in given_eigenvalues(p))


def is_isotropic(p) -> bool:
    return p.get("spectrum", "isotropic") == "isotropic"
