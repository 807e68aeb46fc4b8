"""Reference solvers for the NSM problems: pure JAX, jit-compiled, vmap-able, differentiable.

Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225); official code
github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/pde/*/generate.py``). The official schemes:

* Poisson periodic: exact division of the source coefficients by ``(2 pi)^2 |k|^2``, gauge
  ``u(0, 0) = 0`` (:func:`poisson_periodic`).
* Poisson Dirichlet: the official data came from Mathematica FEM (not reproducible); we use
  Chebyshev-Gauss-Lobatto collocation with a diagonalised 1-D second-derivative matrix
  (:func:`poisson_dirichlet`), as the spec prescribes.
* Reaction-diffusion: Lie splitting (exact logistic step, exact diffusion in Fourier space); the
  official eager Python loop is a ``lax.scan`` here (:func:`reaction_diffusion`).
* Navier-Stokes: pseudo-spectral vorticity, Heun predictor-corrector for advection/forcing with
  Crank-Nicolson diffusion and the 2/3-rule mask after every step (:func:`navier_stokes`).

Everything takes arrays and static sizes, so ``jax.jit``, ``jax.vmap`` over instances and
``jax.grad`` through the whole time stepping work. :func:`recover_diffusivity` is the inverse
problem example: it fits the diffusivity of an observed reaction-diffusion field by Adam through
the solver.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jspectral.metrics.image import as_float_array
from jspectral.pde import bases, problems

# ----------------------------------------------------------------------------- Poisson

def poisson_periodic(source_coef) -> jax.Array:
  """Exact solution coefficients of ``-Laplace u = s`` (Fourier x Fourier), ``u(0, 0) = 0``.

  Args:
    source_coef: ``(n_x, n_y, 1)`` coefficients of a mean-free source.

  Returns:
    ``(n_x, n_y, 1)`` coefficients of ``u`` (same compact layout).

  Raises:
    ValueError: if ``source_coef`` is not 3-D or holds NaN/Inf.
  """
  s = as_float_array(source_coef, "source_coef")
  if s.ndim != 3:
    raise ValueError(f"source_coef: expected (n_x, n_y, 1), got shape {s.shape}")
  return _poisson_periodic(s)


@jax.jit
def _poisson_periodic(s):
  freq = [np.square(np.fft.fftfreq(n) * 2 * np.pi * n) for n in s.shape[:2]]
  denom = np.add.outer(*freq)
  denom[0, 0] = 1.0
  u = (s / jnp.asarray(denom, s.dtype)[..., None]).at[0, 0].set(0.0)
  origin = bases.evaluate(u, "FF", jnp.zeros((1, 2), u.dtype))[0]
  return u.at[0, 0].add(-origin)


@functools.cache
def _chebyshev_second_derivative(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Eigen-decomposition of the interior 2nd-derivative matrix on the descending [0,1] CGL grid."""
  big_n = n - 1
  x = np.cos(np.pi * np.arange(n) / big_n)
  c = np.where((np.arange(n) == 0) | (np.arange(n) == big_n), 2.0, 1.0) * (-1.0) ** np.arange(n)
  dx = x[:, None] - x[None, :] + np.eye(n)
  d = np.outer(c, 1 / c) / dx
  d = d - np.diag(d.sum(axis=1))
  d2 = (4.0 * d @ d)[1:-1, 1:-1]          # d/dx on [0, 1] is 2 d/dy on [-1, 1]
  eigval, eigvec = np.linalg.eig(d2)
  return np.real(eigval), np.real(eigvec), np.real(np.linalg.inv(eigvec))


def poisson_dirichlet(source_coef, n: int = 48) -> jax.Array:
  """``-Laplace u = s`` on the unit square with ``u = 0`` on the boundary.

  Chebyshev collocation at ``n x n`` Gauss-Lobatto points; the interior system is solved by
  diagonalising the 1-D second-derivative matrix (matrix diagonalisation, O(n^3)).

  Args:
    source_coef: ``(m_x, m_y, 1)`` Chebyshev x Chebyshev coefficients of the source.
    n: collocation points per axis (>= 3).

  Returns:
    ``(n, n, 1)`` Chebyshev coefficients of ``u``.

  Raises:
    ValueError: if ``source_coef`` is not ``(m_x, m_y, 1)`` with ``m >= 2``, holds NaN/Inf, or
      ``n < 3``.
  """
  s = as_float_array(source_coef, "source_coef")
  if s.ndim != 3 or min(s.shape[:2]) < 2:
    raise ValueError(f"source_coef: expected (m_x, m_y, 1) with m >= 2, got shape {s.shape}")
  if n < 3:
    raise ValueError(f"n: expected >= 3 collocation points, got {n}")
  return _poisson_dirichlet(s, int(n))


@functools.partial(jax.jit, static_argnums=1)
def _poisson_dirichlet(s, n):
  lam, vec, inv = (jnp.asarray(a, s.dtype) for a in _chebyshev_second_derivative(n))
  points = bases.grid("CC", (n, n))[1:-1, 1:-1].reshape(-1, 2)
  rhs = bases.evaluate(s, "CC", points)[..., 0].reshape(n - 2, n - 2)
  rhs_hat = inv @ rhs @ inv.T
  u_interior = vec @ (-rhs_hat / (lam[:, None] + lam[None, :])) @ vec.T
  values = jnp.zeros((n, n), s.dtype).at[1:-1, 1:-1].set(u_interior)
  return bases.transform(values[..., None], "CC")


# ----------------------------------------------------------------------------- reaction-diffusion

def reaction_diffusion(h, nu: float, rho: float, nt: int) -> jax.Array:
  """Lie splitting for ``u_t = nu u_xx + rho u (1 - u)`` on ``[0, 1]`` periodic, ``t in [0, 1]``.

  Each of the ``nt - 1`` steps (``dt = 1 / (nt - 1)``) applies the exact logistic update, then the
  exact diffusion ``exp(-nu (2 pi k)^2 dt)`` in Fourier space (official ``generate.py``).

  Args:
    h: ``(nx,)`` initial values at ``x_j = j / nx``.
    nu: diffusion coefficient (may be traced: differentiable).
    rho: reaction coefficient (may be traced: differentiable).
    nt: number of time levels including ``t = 0`` and ``t = 1``.

  Returns:
    ``(nt, nx)`` solution at ``t_k = k / (nt - 1)``.

  Raises:
    ValueError: if ``h`` is not 1-D or holds NaN/Inf, ``nt < 2``, or a concrete ``nu`` is negative
      (backward diffusion blows up).
  """
  h = as_float_array(h, "h")
  if h.ndim != 1:
    raise ValueError(f"h: expected (nx,), got shape {h.shape}")
  if nt < 2:
    raise ValueError(f"nt: expected >= 2 time levels, got {nt}")
  if not isinstance(nu, jax.core.Tracer) and float(nu) < 0:
    raise ValueError(f"nu: expected a diffusion coefficient >= 0, got {float(nu)}")
  return _reaction_diffusion(h, nu, rho, int(nt))


@functools.partial(jax.jit, static_argnums=3)
def _reaction_diffusion(h, nu, rho, nt):
  dt = 1.0 / (nt - 1)
  k2 = jnp.asarray((2 * np.pi * np.arange(h.shape[0] // 2 + 1)) ** 2, h.dtype)
  decay = jnp.exp(-nu * k2 * dt)
  growth = jnp.exp(rho * dt)

  def step(u, _):
    grown = u * growth
    u = grown / (grown + 1 - u)
    u = jnp.fft.irfft(jnp.fft.rfft(u) * decay, h.shape[0])
    return u, u

  _, us = jax.lax.scan(step, h, None, length=nt - 1)
  return jnp.concatenate([h[None], us], axis=0)


# ----------------------------------------------------------------------------- Navier-Stokes

def navier_stokes(w0, T: float, nu: float, dt: float, nt: int, forcing=None) -> jax.Array:
  """Vorticity ``w_t + v . grad w = nu Laplace w + f`` on the periodic unit square, ``t in [0, T]``.

  Official scheme (neuraloperator ``ns_2d``): per step a Heun predictor-corrector for advection and
  forcing with Crank-Nicolson diffusion, then the 2/3-rule mask with the zero mode removed.
  Between consecutive frames (``T / (nt - 1)`` apart) it takes ``floor(dT / dt)`` steps of ``dt``
  and one step of ``dT mod dt``, exactly as the official loop.

  Args:
    w0: ``(s, s)`` initial vorticity on the grid ``j / s``.
    T: final (physical) time (static).
    nu: viscosity (may be traced).
    dt: time step (static).
    nt: recorded frames including ``t = 0``.
    forcing: optional ``(s, s)`` forcing on the same grid.

  Returns:
    ``(nt, s, s)`` vorticity at ``t_k = k T / (nt - 1)``.

  Raises:
    ValueError: if ``w0`` is not square 2-D, ``nt < 2``, ``forcing`` differs in shape, or an input
      holds NaN/Inf.
  """
  w0 = as_float_array(w0, "w0")
  if w0.ndim != 2 or w0.shape[0] != w0.shape[1]:
    raise ValueError(f"w0: expected a square (s, s) field, got shape {w0.shape}")
  if nt < 2:
    raise ValueError(f"nt: expected >= 2 frames, got {nt}")
  f = jnp.zeros_like(w0) if forcing is None else as_float_array(forcing, "forcing")
  if f.shape != w0.shape:
    raise ValueError(f"forcing: expected shape {w0.shape}, got {f.shape}")
  return _navier_stokes(w0, float(T), nu, float(dt), int(nt), f)


@functools.partial(jax.jit, static_argnums=(1, 3, 4))
def _navier_stokes(w0, T, nu, dt, nt, f):
  s = w0.shape[0]
  kx, ky = problems.wavenumbers(s, s)
  lap = kx ** 2 + ky ** 2
  diffuse = lap * nu
  dealias = (lap < (2 / 3 * np.pi * s) ** 2).astype(w0.dtype).at[0, 0].set(0.0)
  f_hat = jnp.fft.fft2(f)

  def tendency(what):
    vx, vy = _velocity_hat(what, kx, ky, lap, s)
    wx = jnp.fft.irfft2(what * 1j * kx, (s, s))
    wy = jnp.fft.irfft2(what * 1j * ky, (s, s))
    return f_hat - jnp.fft.fft2(vx * wx) - jnp.fft.fft2(vy * wy)

  def step(what, h):
    t1 = tendency(what)
    tilde = (what + h * (t1 - diffuse * what / 2)) / (1 + h * diffuse / 2)
    t2 = tendency(tilde)
    what = (what + h * ((t1 + t2) - diffuse * what) / 2) / (1 + h * diffuse / 2)
    return what * dealias

  frame = T / (nt - 1)
  inner, rest = int(frame // dt), frame % dt

  def record(what, _):
    what = jax.lax.fori_loop(0, inner, lambda _, w: step(w, dt), what)
    what = step(what, rest)
    return what, jnp.fft.irfft2(what, (s, s))

  _, ws = jax.lax.scan(record, jnp.fft.fft2(w0), None, length=nt - 1)
  return jnp.concatenate([w0[None], ws.astype(w0.dtype)], axis=0)


def _velocity_hat(what, kx, ky, lap, s):
  lap = lap.at[0, 0].set(1.0)
  vx = jnp.fft.irfft2(what * 1j * ky / lap, (s, s))
  vy = jnp.fft.irfft2(what * -1j * kx / lap, (s, s))
  return vx, vy


# ----------------------------------------------------------------------------- references

def reference_solution(problem, phi, sizes, *, refine: int = 8, dirichlet_n: int = 48,
                       ns_grid: int = 256, ns_dt: float | None = None) -> jax.Array:
  """Reference ``u`` of ``problem`` for ``phi`` on the uniform grid ``sizes`` (ends included).

  Follows the official data generation: Poisson periodic exact; Poisson Dirichlet collocation
  with ``dirichlet_n`` points; reaction splitting with ``nx = (s_x - 1) refine`` points and
  ``nt = (s_t - 1) refine + 1`` levels, subsampled and wrap-padded (official: 4096, 8); NS on an
  ``ns_grid`` square with ``sizes[0]`` frames, wrap-padded (official: 256, dt 1e-3 / 5e-3 forced).

  Args:
    problem: a :mod:`jspectral.pde.problems` instance.
    phi: parameter coefficients, ``(*phi_modes, 1)``.
    sizes: uniform grid size per axis (time first for time-dependent problems).
    refine: reaction-diffusion refinement factor in space and time.
    dirichlet_n: Poisson Dirichlet collocation points per axis.
    ns_grid: Navier-Stokes solver grid (subsampled every ``ns_grid // (sizes[1] - 1)`` points).
    ns_dt: Navier-Stokes time step (default 1e-3, 5e-3 when forced).

  Returns:
    ``(*sizes, 1)``.

  Raises:
    ValueError: if ``problem`` is not one of the problem classes (or a solver rejects ``phi``).
  """
  phi = jnp.asarray(phi)
  sizes = tuple(int(s) for s in sizes)
  if isinstance(problem, problems.PoissonPeriodic):
    return bases.uniform(poisson_periodic(phi), "FF", sizes)
  if isinstance(problem, problems.PoissonDirichlet):
    return bases.uniform(poisson_dirichlet(phi, dirichlet_n), "CC", sizes)
  if isinstance(problem, problems.ReactionDiffusion):
    nx = (sizes[1] - 1) * refine
    x = jnp.arange(nx, dtype=phi.dtype) / nx
    h = bases.evaluate(phi, "CF", jnp.stack([jnp.zeros_like(x), x], -1))[:, 0]
    u = reaction_diffusion(h, problem.nu, problem.rho, (sizes[0] - 1) * refine + 1)
    u = u[::refine, ::refine]
    return jnp.concatenate([u, u[:, :1]], axis=1)[..., None]
  if isinstance(problem, problems.NavierStokes):
    # official: phi.to(1, s, s).inv(); phi is constant in t, so its first Chebyshev row is w0
    w0 = bases.inverse(bases.resize(phi[0], "FF", (ns_grid, ns_grid)), "FF")[..., 0]
    dt = ns_dt if ns_dt is not None else (5e-3 if problem.forced else 1e-3)
    forcing = jnp.asarray(problem.forcing(ns_grid, ns_grid), w0.dtype)
    w = navier_stokes(w0, problem.T, problem.nu, dt, sizes[0], forcing)
    step = ns_grid // (sizes[1] - 1)
    w = w[:, ::step, ::step]
    w = jnp.concatenate([w, w[:, :1]], axis=1)
    return jnp.concatenate([w, w[:, :, :1]], axis=2)[..., None]
  raise ValueError(f"problem: expected one of the jspectral.pde.problems classes, got {problem!r}")


# ----------------------------------------------------------------------------- inverse problem

@functools.partial(jax.jit, static_argnames=("rho", "steps", "learning_rate"))
def recover_diffusivity(h, observed, nu_init, *, rho: float = 5.0, steps: int = 100,
                        learning_rate: float = 0.05):
  """Fits ``nu`` so that :func:`reaction_diffusion` from ``h`` matches ``observed``.

  Gradient descent (Adam on ``log nu``) through the whole solver, in one jitted ``lax`` loop.

  Args:
    h: ``(nx,)`` initial values.
    observed: observed field, ``(nt, nx)``.
    nu_init: initial diffusivity guess (scalar).
    rho: reaction coefficient (static).
    steps: Adam steps.
    learning_rate: Adam learning rate on ``log nu``.

  Returns:
    ``(nu, losses)``: the recovered diffusivity and the ``(steps,)`` mean-squared misfits.
  """
  nt = observed.shape[0]

  def misfit(log_nu):
    return jnp.mean((_reaction_diffusion(h, jnp.exp(log_nu), rho, nt) - observed) ** 2)

  tx = optax.adam(learning_rate)

  def body(carry, _):
    log_nu, opt_state = carry
    loss, g = jax.value_and_grad(misfit)(log_nu)
    updates, opt_state = tx.update(g, opt_state)
    return (log_nu + updates, opt_state), loss

  log_nu = jnp.log(jnp.asarray(nu_init, h.dtype))
  (log_nu, _), losses = jax.lax.scan(body, (log_nu, tx.init(log_nu)), None, length=steps)
  return jnp.exp(log_nu), losses
