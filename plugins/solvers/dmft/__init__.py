"""One discrete-time DMFT solver for multi-pass learning on n = alpha d samples (docs/theory/multipass.md s.2-3).

Units. Internally DMFT units (docs/theory/multipass.md section 0): ``X`` with ``N(0, 1/d)`` entries, parameter
coordinates O(1) (``E theta*_i^2 = rho = 1``), time ``s = gamma t / alpha``, temperature ``tau = gamma``,
ridge ``lambda = alpha * ridge``. Outputs are converted back: ``q = C_theta(s, s)``, ``m = m(s)``, and
the model's exact population functions of ``(m, q)`` give ``risk``, ``error_rate``, ``gen_error``.

Clocks. Each sample moves on its own clock ``Z``; on the grid ``s_k = k h`` its increments are
``flow``: ``h`` (gradient flow); ``gaussian``: ``h + sqrt(tau h) xi`` (SGF / SME); ``poisson``:
``tau Poisson(h / tau)`` (multi-pass SGD with per-step batch fraction ``b = h / tau`` drawn with
replacement: exact for a finite-step simulation at learning rate ``h``, and the B = o(n) limit as
h -> 0); ``bernoulli``: ``tau Bernoulli(h / tau)`` (batches drawn without replacement, the scheme of
Gerbelot et al.).

Equations, ``k < T`` (``T`` steps), ``G_k = l'(r_k, y) dZ_k``:

    sample side:     r_k = zeta_k - sum_{j<k} Rt(k, j) G_j,  (zeta, r*) Gaussian, Cov zeta = C_theta,
                     Cov(zeta, r*) = m, y = label(r*, eps);
    parameter side:  theta_{k+1} = (1 - h lambda) theta_k - sum_{j<=k} R_G(k, j) theta_j - mu_k theta* - eta_k,
                     eta ~ N(0, C_G);
    closure:         C_G = alpha E[G G^T],  R_G(k, j) = alpha E[dG_k / dzeta_j],  mu_k = alpha E[dG_k / dr*],
                     C_theta = E[theta theta^T], m = E[theta theta*], Rt(k, j) = E[d theta_k / d H_j].

Committees (``CommitteeLoss``): the parameter of one coordinate is the vector of its K first-layer
weights, the margin ``r_k`` a K-vector, the teacher margin ``r*`` an M-vector; every kernel above becomes
a K x K block (``mu_k``: K x M) and the same equations hold blockwise (``parameter_side`` is written in
blocks; a GLM has blocks of 1).

Because the penalty is quadratic, the parameter side is linear and Gaussian: ``C_theta``, ``m`` and
``Rt`` follow exactly from one unit lower-triangular system (no particles, no noise). Heavy ball
(``Problem.velocity``) passes each update through a causal moving-average filter before it moves
``theta`` (``parameter_side``); the system stays lower triangular. The sample side
is Monte Carlo over ``N`` paths (vmapped, in chunks, jitted once per shape), with
- Rao-Blackwellisation over the current clock increment (``dZ_k`` is independent of ``r_k``):
  ``C_G(k, j) = alpha h E[l'_k l'_j dZ_j]`` (k > j), ``C_G(k, k) = alpha E[dZ^2] E[l'_k^2]``,
  ``R_G(k, j) = alpha h E[l''_k J_kj]``;
- forward-mode tangents ``J = dr / dzeta = (I + Rt D)^-1``, ``D = diag(l''_j dZ_j)``, in closed form per
  path: a blocked triangular inverse (O(T^3)) for the dense clocks, Woodbury over the path's jumps
  (O(T m^2) for m jumps) for the jump clocks, on ``tangent_paths`` of the paths;
- ``mu`` by Stein's lemma in ``r*`` with the path ``zeta - m r*`` held fixed:
  ``mu_k = alpha h E[l'_k r*] - sum_j R_G(k, j) m_j`` (valid for discontinuous labels such as sign);
- for square loss on a linear teacher the sample side is exact in expectation over the clocks too
  (``square_side_moments``; ``epoch_square_side`` for the epoch clock's dependent increments): no
  paths, a deterministic fixed point;
- the normals ``(r*, eps, xi)`` moment-matched (sample mean 0, sample covariance I): removes the O(1/N)
  bias that the fixed point's nonlinear dependence on their sample moments causes;
- for gradient flow a linearly implicit margin step (``glm_side``), stable where the explicit one
  needs ``h l'' < 2`` (phase retrieval has unbounded labels and ``l'' ~ 4 y``);
- common random numbers across iterations, damping, a convergence test at ``TOL`` (far below the
  Monte-Carlo floor: the iteration is deterministic given its random numbers), then
  ``average`` iterations with fresh random numbers, whose mean is the answer. (The predictors run
  independent replicas of the whole solve; their spread is the reported uncertainty.)
- a path whose margin diverges is cut at its first bad step; the prediction is +inf from the earliest.
``solve`` returns the grid solution; the predictors (``dmft_runs.predict_dmft``) extrapolate over grids (Richardson)
to remove the O(h), O(h^2) errors of the explicit scheme.
"""
from hdbench_plugins.solvers.dmft.clocks import CLOCKS, clock_increments, clock_second_moment, jump_indices, moment_matched
from hdbench_plugins.solvers.dmft.linalg import psd_cholesky, unit_lower_inverse
from hdbench_plugins.solvers.dmft.parameter_side import RHO, parameter_side
from hdbench_plugins.solvers.dmft.sample_side import CommitteeLoss, GlmLoss, SquareLinear, epoch_square_side, square_side_moments
from hdbench_plugins.solvers.dmft.solver import TOL, Problem, Solution, solve

__all__ = ["CLOCKS", "RHO", "TOL", "CommitteeLoss", "GlmLoss", "Problem", "Solution", "SquareLinear",
           "clock_increments", "clock_second_moment", "epoch_square_side", "jump_indices", "moment_matched",
           "parameter_side", "psd_cholesky", "solve", "square_side_moments", "unit_lower_inverse"]
