"""Formulas and numerics shared by models and theories (spectra, quadrature, each model's population
functions written once against an ``xp`` array module). Never registered: a registered module may import
these, never another registered module."""
