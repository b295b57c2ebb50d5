"""Online SGD on diagonal linear networks: the mean-field SDE per coordinate and its Fokker–Planck PDE
(docs/theory/dln.md; García Malaxechebarría, Paquette, Drusvyatskiy, Fazel 2026).

One SGD step moves every coordinate ``(u, v)`` by the same scalar ``F = (gamma/d) e x_i``. In the limit,
in ``t = samples/d``, ``F = gamma [(w - w*) dt + sqrt(r) dB]`` (u and v share the Brownian motion) with
the self-consistent ``r(t) = E[(w - w*)^2] + sigma^2 = 2 risk`` (mean over coordinates), and
- product ``w = u v``:         ``u -> u - v F``, ``v -> v - u F``;  ``q = u^2 - v^2`` obeys ``q -> q (1 - F^2)``;
- difference ``w = u^2 - v^2``: ``u -> u (1 - 2F)``, ``v -> v (1 + 2F)``; ``p = u v`` obeys ``p -> p (1 - 4F^2)``.
So the conserved quantity of gradient flow decays, ``c(t) = c0 exp(-kappa gamma^2 int_0^t r)``
(``c = q, kappa = 1`` or ``c = p, kappa = 4``): the gradient noise shrinks the effective initialisation.
Each step is a hyperbolic rotation: with ``w = lambda |c| sinh(xi)`` (``lambda`` = 1/2 or 2) the
rapidity moves by ``-2 atanh(F)`` (product) or ``-2 atanh(2F)`` (difference), so in the limit
``d xi = -mu gamma [(w - w*) dt + sqrt(r) dB]``: constant diffusion, no Ito term. In ``w`` this is
docs/theory/dln.md's ``dw = k [-gamma (w - w*) S + gamma^2 r w] dt + k gamma sqrt(r) S dB``, ``S = u^2 + v^2``.

Solvers: ``solve_sde`` (Euler–Maruyama on ``(u, v)`` particles per atom of ``w*``; JAX, one jitted
scan) and ``solve_pde`` (the Fokker–Planck equation in ``xi`` per atom by finite volumes;
deterministic, cost independent of d); ``population_flow`` drops the noise (``r``-terms, ``c = c0``),
the ``population-gf`` baseline.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import solve_banded

from hdbench import no
from hdbench_plugins.common.dln import initial_uv, spike_count
from hdbench_plugins.solvers.regime import one_pass


OBSERVABLES = ("risk", "conserved", "l1", "l1_off", "support_recovery")


BLOWUP = 1e8


@dataclasses.dataclass(frozen=True)
class CoordinateLaw:
    """What the limit needs of a scenario: the atoms of ``w*`` and the start of every coordinate."""

    targets: np.ndarray          # atoms of w*
    weights: np.ndarray          # their fractions of the d coordinates
    u0: float
    v0: float
    product: bool
    gamma: float
    sigma: float
    spike: float

    @property
    def k(self):
        return 1.0 if self.product else 4.0

    @property
    def shape(self):
        """``(A, B)`` of ``S^2 = A w^2 + B c^2``."""
        return (4.0, 1.0) if self.product else (1.0, 4.0)

    @property
    def kappa(self):
        return 1.0 if self.product else 4.0

    @property
    def w0(self):
        return self.u0 * self.v0 if self.product else self.u0**2 - self.v0**2

    @property
    def c0(self):
        return self.u0**2 - self.v0**2 if self.product else self.u0 * self.v0

    @property
    def conserved_name(self):
        return "q_mean" if self.product else "p_mean"

    @property
    def scale(self):
        """``lambda`` of ``w = lambda |c| sinh(xi)``."""
        return 0.5 if self.product else 2.0

    @property
    def mu(self):
        """``mu`` of ``d xi = -mu gamma [(w - w*) dt + sqrt(r) dB]``."""
        return 2.0 if self.product else 4.0

    def S(self, w, c):
        A, B = self.shape
        return np.sqrt(A * w * w + B * c * c)


def coordinate_law(s) -> CoordinateLaw:
    p = s.model_params
    frac = spike_count(s.d, p) / s.d
    targets = np.array([p["spike"], -p["spike"], 0.0])
    weights = np.array([frac / 2, frac / 2, 1 - frac])
    keep = weights > 0
    u0, v0 = initial_uv(p)
    return CoordinateLaw(targets[keep], weights[keep], float(u0), float(v0), p["parametrisation"] == "product",
                         float(s.dynamics_params["gamma"]), float(p["sigma"]), float(p["spike"]))


def _slow(law):
    """Steps are given for ``k gamma >= 0.5``; slower dynamics (time scale ``1/(k gamma)``) take
    proportionally longer ones."""
    return max(1.0, 0.5 / (law.k * law.gamma))


def supports_online_dln(s):
    if s.model != "dln":
        return no(f"model '{s.model}' is not dln")
    return one_pass(s)


def _named(law, values):
    """Observable arrays keyed by the model's names (``conserved`` -> ``q_mean``/``p_mean``)."""
    return {(law.conserved_name if k == "conserved" else k): np.asarray(v, float)
            for k, v in zip(OBSERVABLES, values)}


def _at(times, grid, values):
    """Linear interpolation of per-step observables (rows of ``values``) onto ``times``;
    ``inf`` after the last finite grid point (the theory diverged)."""
    times = np.asarray(times, float)
    finite = np.isfinite(values).all(axis=1)
    last = grid[finite.argmin() - 1] if not finite.all() else np.inf
    out = np.stack([np.interp(times, grid, values[:, i]) for i in range(values.shape[1])])
    out[:, times > last] = np.inf
    return out


# -- particles ------------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("particles", "n_steps", "product"))
def _sde_run(key, targets, weights, u0, v0, c0, kappa, gamma, sigma, spike, dt, *, particles, n_steps, product):
    zero = (targets == 0).astype(jnp.float32)

    def weight(u, v):
        return u * v if product else u * u - v * v

    def conserved(u, v):
        return u * u - v * v if product else u * v

    def observe(u, v, c):
        w = weight(u, v)
        e = w - targets[:, None]
        r = jnp.sum(weights * jnp.mean(e * e, axis=1)) + sigma**2
        absw = jnp.mean(jnp.abs(w), axis=1)
        rec = jnp.mean(jnp.abs(e) < 0.5 * spike, axis=1)
        return r, jnp.stack([0.5 * r, c, jnp.sum(weights * absw), jnp.sum(weights * zero * absw),
                             jnp.sum(weights * rec)])

    def step(carry, k):
        u, v, c = carry
        r, obs = observe(u, v, c)
        xi = jax.random.normal(jax.random.fold_in(key, k), u.shape)
        xi = (xi - xi.mean(axis=1, keepdims=True)) / xi.std(axis=1, keepdims=True)   # moment matching
        F = gamma * ((weight(u, v) - targets[:, None]) * dt + jnp.sqrt(r * dt) * xi)
        if product:
            u, v = u - v * F, v - u * F
        else:
            u, v = u * (1 - 2 * F), v * (1 + 2 * F)
        # In the limit c is deterministic and common to all coordinates: put every particle on it (the
        # spread of c across particles is the Euler-Maruyama F^2 error, not part of the limit).
        c = c * jnp.exp(-kappa * gamma**2 * r * dt)
        now = conserved(u, v)
        scale = jnp.where(now * c > 0, jnp.sqrt(jnp.abs(c / jnp.where(now == 0, 1.0, now))), 1.0)
        return (u * scale, v * scale, c), obs

    shape = (targets.shape[0], particles)
    start = (jnp.full(shape, u0, jnp.float32), jnp.full(shape, v0, jnp.float32), c0)
    (u, v, c), obs = jax.lax.scan(step, start, jnp.arange(n_steps))
    return jnp.concatenate([obs, observe(u, v, c)[1][None]], axis=0)


def solve_sde(s, times, particles=32768, dt=0.005, seed=0):
    """Euler–Maruyama on ``particles`` ``(u, v)`` pairs per atom of ``w*``, step ``dt``; the conserved
    quantity follows its exact law ``c0 exp(-kappa gamma^2 int r)`` and every particle is rescaled onto it."""
    law = coordinate_law(s)
    dt = dt * _slow(law)
    n_steps = max(1, int(np.ceil(float(np.max(times)) / dt)))
    h = float(np.max(times)) / n_steps
    f32 = np.float32
    values = np.asarray(jax.block_until_ready(_sde_run(
        jax.random.PRNGKey(seed), law.targets.astype(f32), law.weights.astype(f32), f32(law.u0), f32(law.v0),
        f32(law.c0), f32(law.kappa), f32(law.gamma), f32(law.sigma), f32(law.spike), f32(h),
        particles=particles, n_steps=n_steps, product=law.product)), float)
    values[~np.isfinite(values).all(axis=1) | (values[:, 0] > BLOWUP)] = np.inf
    return _named(law, _at(times, h * np.arange(n_steps + 1), values))


# -- finite volumes -------------------------------------------------------------------------------------
def _bernoulli(x):
    """``B(x) = x / (e^x - 1)`` (Scharfetter–Gummel weight), stable for all x."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = x / np.expm1(x)
    return np.where(np.abs(x) < 1e-8, 1.0 - 0.5 * x, np.where(x > 700, 0.0, out))


class _Grid:
    """Per-atom non-uniform grids (``edges[atom, cells + 1]``) carrying cell masses.

    ``rezone`` moves the edges so that each cell holds equal parts of ``THETA`` x (uniform measure on
    the occupied range, padded) + ``(1 - THETA)`` x (half the law, half the risk integrand): cells
    concentrate where the mass and the risk are, and the tails keep a uniform share. Masses move by the exact CDF of a piecewise-linear
    reconstruction with minmod-limited slopes (second order, positive, conservative); then an affine
    map of the new edges restores each law's mean and variance."""

    THETA = 0.3

    def __init__(self, edges, mass):
        self.edges, self.mass = edges, mass

    @property
    def cells(self):
        return self.mass.shape[1]

    def centres(self):
        return 0.5 * (self.edges[:, :-1] + self.edges[:, 1:])

    def widths(self):
        return np.diff(self.edges, axis=1)

    def cdf(self, x):
        """CDF at points ``x[atom, :]`` of the reconstructed density."""
        h, xc = self.widths(), self.centres()
        rho = self.mass / h
        grad = np.diff(rho, axis=1) / np.diff(xc, axis=1)
        left = np.concatenate([np.zeros((len(h), 1)), grad], axis=1)
        right = np.concatenate([grad, np.zeros((len(h), 1))], axis=1)
        slope = np.where(left * right > 0, np.sign(left) * np.minimum(np.abs(left), np.abs(right)), 0.0)
        cum = np.concatenate([np.zeros((len(h), 1)), np.cumsum(self.mass, axis=1)], axis=1)
        j = np.stack([np.clip(np.searchsorted(self.edges[a], x[a], side="right") - 1, 0, self.cells - 1)
                      for a in range(len(h))])
        take = lambda arr: np.take_along_axis(arr, j, axis=1)   # noqa: E731
        y = np.clip(x, self.edges[:, :1], self.edges[:, -1:]) - take(xc)
        half = 0.5 * take(h)
        return take(cum) + take(rho) * (y + half) + 0.5 * take(slope) * (y * y - half * half)

    def needs_rezone(self, tail, share):
        ends = (self.mass[:, :3].sum(axis=1) > 10 * tail) | (self.mass[:, -3:].sum(axis=1) > 10 * tail)
        return ends | (self.mass.max(axis=1) > 3.0 / self.cells) | (share.max(axis=1) > 3.0 / self.cells)

    def rezone(self, tail, error2):
        """Re-zone the atoms whose grid is poor: mass near an end, or a cell holding over three times
        its share of the mass or of ``sum mass * error2`` (the risk integrand, whose far tail matters:
        a little mass not yet moved to a spike carries the spike's whole square)."""
        risk = self.mass * error2
        share = risk / np.maximum(risk.sum(axis=1, keepdims=True), 1e-300)
        todo = self.needs_rezone(tail, share)
        if not todo.any():
            return
        cum = np.concatenate([np.zeros((len(self.mass), 1)), np.cumsum(self.mass, axis=1)], axis=1)
        monitor = np.concatenate([np.zeros((len(self.mass), 1)), np.cumsum(self.mass + share, axis=1)], axis=1)
        edges = self.edges.copy()
        for a in np.flatnonzero(todo):
            q_lo, q_hi = np.interp([tail, 1 - tail], cum[a], self.edges[a])
            span = max(q_hi - q_lo, 1e-9 * max(1.0, abs(q_hi)))
            lo, hi = q_lo - 0.5 * span, q_hi + 0.5 * span
            points = np.union1d(np.clip(self.edges[a], lo, hi), np.linspace(lo, hi, 4 * self.cells))
            G = self.THETA * (points - lo) / (hi - lo) + (1 - self.THETA) * np.interp(points, self.edges[a], monitor[a]) / 2
            edges[a] = np.interp(np.linspace(0, G[-1], self.cells + 1), G, points)
            edges[a, 0], edges[a, -1] = lo, hi
        m = np.maximum(np.diff(self.cdf(edges), axis=1), 0.0)
        m /= m.sum(axis=1, keepdims=True)
        # An affine map of the new edges restores the (midpoint) mean and variance exactly, so repeated
        # re-zoning does not drift the second moment, which the risk is made of.
        mean, var = _moments(self.mass, self.centres())
        new_mean, new_var = _moments(m, 0.5 * (edges[:, :-1] + edges[:, 1:]))
        stretch = np.sqrt(var / np.maximum(new_var, 1e-300))[:, None]
        edges = mean[:, None] + stretch * (edges - new_mean[:, None])
        self.mass = np.where(todo[:, None], m, self.mass)
        self.edges = np.where(todo[:, None], edges, self.edges)


def _moments(mass, x):
    mean = (mass * x).sum(axis=1)
    return mean, (mass * (x - mean[:, None]) ** 2).sum(axis=1)


def _cell_risk(law, grid, c):
    """``r = E (w - w*)^2 + sigma^2`` under the per-atom laws of ``xi`` (midpoint rule)."""
    e = law.scale * c * np.sinh(grid.centres()) - law.targets[:, None]
    return law.weights @ (grid.mass * e * e).sum(axis=1) + law.sigma**2


def _observe_cells(law, grid, c, r):
    """Observables of the per-atom laws of ``xi`` (midpoint rule; the support window by the CDF)."""
    absw = (grid.mass * np.abs(law.scale * c * np.sinh(grid.centres()))).sum(axis=1)
    half = 0.5 * law.spike
    window = np.arcsinh(np.stack([law.targets + half, law.targets - half], axis=1) / (law.scale * c))
    inside = grid.cdf(window)
    zero = law.targets == 0
    return [0.5 * r, c, law.weights @ absw, law.weights @ (zero * absw), law.weights @ (inside[:, 0] - inside[:, 1])]


def solve_pde(s, times, cells=801, dt=1e-3, tail=1e-10):
    """The Fokker–Planck equation per atom of ``w*`` in the rapidity ``xi`` (``w = lambda |c| sinh xi``),
    where the diffusion is constant: ``d_t rho = -d_xi[b rho - D d_xi rho]``,
    ``b = -mu gamma (lambda |c| sinh xi - w*)``, ``D = mu^2 gamma^2 r / 2``.
    Finite volumes on per-atom grids that follow the law (``_Grid``), Scharfetter–Gummel fluxes (exact
    for locally constant drift; upwind where diffusion is negligible), backward Euler (an M-matrix:
    positive and mass-conserving for any step), ``r`` and ``c`` from the start of each step.
    Starts from the point mass at ``xi0``."""
    law = coordinate_law(s)
    if law.c0 == 0:
        raise ValueError("c0 = 0: w cannot change sign and the rapidity is undefined (use dln-sde)")
    T = float(np.max(times))
    n_steps = max(1, int(np.ceil(T / (dt * _slow(law)))))
    h_t = T / n_steps
    n_atoms = len(law.targets)
    c = abs(law.c0)
    xi0 = np.arcsinh(law.w0 / (law.scale * c))
    r0 = float(law.weights @ (law.w0 - law.targets) ** 2 + law.sigma**2)
    drift0 = law.mu * law.gamma * np.abs(law.w0 - law.targets).max()
    width = max(12 * law.mu * law.gamma * np.sqrt(r0 * h_t) + 4 * drift0 * h_t, 1e-6)
    cells = cells + 1 - cells % 2
    mass = np.zeros((n_atoms, cells))
    mass[:, cells // 2] = 1.0
    grid = _Grid(np.tile(xi0 + width * (np.arange(cells + 1) / cells - 0.5), (n_atoms, 1)), mass)
    values = np.full((n_steps + 1, len(OBSERVABLES)), np.inf)
    # every step needs r; the other observables only at the steps either side of a requested time
    needed = np.zeros(n_steps + 1, bool)
    at = np.clip(np.asarray(times, float) / h_t, 0, n_steps)
    needed[np.floor(at).astype(int)] = needed[np.ceil(at).astype(int)] = True
    ab = np.zeros((3, n_atoms * cells))
    for n in range(n_steps + 1):
        r = _cell_risk(law, grid, c)
        if not np.isfinite(r) or r > BLOWUP:
            needed[n] = True          # the first diverged step, +inf, ends the interpolation
            break
        if needed[n]:
            values[n] = _observe_cells(law, grid, c, r)
        if n == n_steps:
            break
        h, delta = grid.widths(), np.diff(grid.centres(), axis=1)
        faces = grid.edges[:, 1:-1]
        D = 0.5 * law.mu**2 * law.gamma**2 * r
        b = -law.mu * law.gamma * (law.scale * c * np.sinh(faces) - law.targets[:, None])
        pe = b * delta / D
        alpha = _bernoulli(-pe) * D / (delta * h[:, :-1])   # flux J_{j+1/2} = alpha_j m_j - beta_j m_{j+1}
        beta = _bernoulli(pe) * D / (delta * h[:, 1:])
        diag = np.zeros((n_atoms, cells))
        diag[:, :-1] += alpha
        diag[:, 1:] += beta
        upper = np.zeros((n_atoms, cells))
        lower = np.zeros((n_atoms, cells))
        upper[:, 1:] = -beta          # entry (j, j+1), stored at column j+1
        lower[:, :-1] = -alpha        # entry (j+1, j), stored at column j
        ab[0] = h_t * upper.ravel()
        ab[1] = 1 + h_t * diag.ravel()
        ab[2] = h_t * lower.ravel()
        grid.mass = np.maximum(solve_banded((1, 1), ab, grid.mass.ravel()).reshape(n_atoms, cells), 0.0)
        grid.mass /= grid.mass.sum(axis=1, keepdims=True)
        c *= np.exp(-law.kappa * law.gamma**2 * r * h_t)
        grid.rezone(tail, (law.scale * c * np.sinh(grid.centres()) - law.targets[:, None]) ** 2)
    values[:, 1] *= np.sign(law.c0)
    return _named(law, _at(times, h_t * np.arange(n_steps + 1)[needed], values[needed]))


def risk_decay_rate(s, c):
    """The exponential rate at which the risk goes to zero without label noise, given the conserved
    quantity's limit ``c``: linearising about ``w = w*``, the per-atom second moments
    ``E_a = E(w - w*_a)^2`` obey ``dE/dt = M E``, ``M = -2 k gamma diag(s) + k^2 gamma^2 s^2 weights^T``,
    ``s_a = sqrt(A w*_a^2 + B c^2)`` (the drift's restoring rate and the noise, whose variance is
    ``r = weights . E``); the risk decays like ``exp(lambda_max(M) t)``. Returns ``-lambda_max``."""
    law = coordinate_law(s)
    A, B = law.shape
    s_a = np.sqrt(A * law.targets**2 + B * c**2)
    M = -2 * law.k * law.gamma * np.diag(s_a) + (law.k * law.gamma) ** 2 * np.outer(s_a**2, law.weights)
    return float(-np.max(np.linalg.eigvals(M).real))


# -- gradient flow on the population risk ----------------------------------------------------------------
def population_flow(s, times):
    """``dw/dt = -k gamma (w - w*) sqrt(A w^2 + B c0^2)`` per atom (no SGD noise; ``c = c0``)."""
    law = coordinate_law(s)
    times = np.asarray(times, float)
    A, B = law.shape

    def rhs(_, w):
        return -law.k * law.gamma * (w - law.targets) * np.sqrt(A * w * w + B * law.c0**2)

    sol = solve_ivp(rhs, (0.0, float(times[-1])), np.full(len(law.targets), law.w0), t_eval=times,
                    method="LSODA", rtol=1e-10, atol=1e-12)
    w = sol.y.T                                                     # [times, atoms]
    e = w - law.targets
    zero = law.targets == 0
    values = [0.5 * ((e * e) @ law.weights + law.sigma**2), np.full(len(times), law.c0),
              np.abs(w) @ law.weights, np.abs(w) @ (law.weights * zero),
              (np.abs(e) < 0.5 * law.spike) @ law.weights]
    return _named(law, values)
