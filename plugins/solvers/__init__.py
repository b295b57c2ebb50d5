"""The theories' numerical solvers (ODEs, Volterra equations, DMFT, PDEs, regime checks). Never registered:
the thin modules in ``plugins/predictors`` call them; a registered module never imports another one."""
