"""The PDEs of Neural Spectral Methods: parameter priors, hard constraints and residuals.

Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225); official code
github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/pde``, ``src/dists.py``). Each problem gives

* ``draw(key, shape)`` (jitted: :func:`sample`): parameter functions ``phi`` (source or initial
  condition) from the official Gaussian-process prior on the official collocation grid,
  interpolated by the basis;
* ``mollify(phi, u)`` / ``mollify_grid(x, phi_values, u_values)``: the official hard constraints
  (output scale ``SCALE = 1e-3`` included);
* ``spectral_residual(phi, u)``: the residual in coefficient space (NSM loss = its squared sum);
* ``grid_residual(x, phi_values, u_values)`` and ``boundary(u_values)``: the finite-difference
  (PINN) residual on a uniform grid with both ends included (official ``equation``/``boundary``).

GP samples have the official distribution but not the official draws (the official code factors
the covariance by SVD, whose signs are LAPACK-dependent anyway): periodic kernels on Fourier grids
use the exact FFT diagonalisation of the circulant covariance, other kernels ``numpy.linalg.eigh``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jspectral.pde import bases

SCALE = 1e-3


# ----------------------------------------------------------------------------- Gaussian processes

def periodic_kernel(length: float):
  """``k(x, y) = exp(-sum_i sin^2(pi (x_i - y_i)) / (2 l^2))`` (period 1 per axis).

  Args:
    length: length scale ``l``.

  Returns:
    A NumPy function of differences ``(..., d) -> (...)``.
  """
  return lambda d: np.exp(-np.sum(np.sin(np.pi * d) ** 2, axis=-1) / (2 * length ** 2))


def rbf_kernel(length: float):
  """``k(x, y) = exp(-|x - y|^2 / (2 l^2))``.

  Args:
    length: length scale ``l``.

  Returns:
    A NumPy function of differences ``(..., d) -> (...)``.
  """
  return lambda d: np.exp(-np.sum(d ** 2, axis=-1) / (2 * length ** 2))


@functools.cache
def gp_factor(kinds: str, modes: tuple[int, ...], kernel: str, length: float) -> np.ndarray:
  """``L`` with ``L L^T = Sigma`` for the GP on ``bases.grid(kinds, modes)`` (float64, cached).

  Args:
    kinds: basis letters, one per axis.
    modes: grid size per axis.
    kernel: ``"per"`` (:func:`periodic_kernel`) or ``"rbf"`` (:func:`rbf_kernel`).
    length: length scale.

  Returns:
    ``(P, P)`` with ``P = prod(modes)``.
  """
  points = bases.grid(kinds, modes).reshape(-1, len(modes))
  make = {"per": periodic_kernel, "rbf": rbf_kernel}[kernel]
  sigma = make(length)(points[:, None, :] - points[None, :, :])
  eigval, eigvec = np.linalg.eigh(sigma)
  return eigvec * np.sqrt(np.clip(eigval, 0.0, None))


@functools.cache
def circulant_root(modes: tuple[int, ...], length: float) -> np.ndarray:
  """Square roots of the eigenvalues of the periodic-kernel covariance on the grid ``j / n``.

  The covariance of a periodic kernel on a periodic grid is (block-)circulant, so the FFT
  diagonalises it exactly: sampling costs O(N log N) instead of an O(N^3) factorisation.

  Args:
    modes: grid size per axis.
    length: length scale.

  Returns:
    ``(*modes)`` (float64, cached).
  """
  points = bases.grid("F" * len(modes), modes)
  eig = np.real(np.fft.fftn(periodic_kernel(length)(points)))
  return np.sqrt(np.clip(eig, 0.0, None))


def gp_sample(key: jax.Array, kernel: str, kinds: str, modes: tuple[int, ...], length: float,
              shape: tuple[int, ...], dtype) -> jax.Array:
  """GP samples on ``bases.grid(kinds, modes)``.

  Periodic kernels on all-Fourier grids use the exact circulant (FFT) factorisation; otherwise the
  eigen-factor :func:`gp_factor`.

  Args:
    key: PRNG key.
    kernel: ``"per"`` or ``"rbf"``.
    kinds: basis letters, one per axis.
    modes: grid size per axis.
    length: length scale.
    shape: batch shape.
    dtype: output dtype.

  Returns:
    Samples, ``(*shape, *modes)``.
  """
  if kernel == "per" and set(kinds) == {"F"}:
    axes = tuple(range(-len(modes), 0))
    eps = jax.random.normal(key, shape + modes, dtype)
    root = jnp.asarray(circulant_root(modes, length), dtype)
    return jnp.real(jnp.fft.ifftn(root * jnp.fft.fftn(eps, axes=axes), axes=axes)).astype(dtype)
  factor = gp_factor(kinds, modes, kernel, length)
  eps = jax.random.normal(key, shape + (factor.shape[0],), dtype)
  return jnp.einsum("ij,...j->...i", jnp.asarray(factor, dtype), eps).reshape(shape + modes)


def sample(problem, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
  """``problem``'s parameter coefficients (jit-compiled, cached).

  Args:
    problem: a problem instance (hashable dataclass, e.g. from :func:`get`).
    key: PRNG key.
    shape: batch shape.

  Returns:
    Coefficients, ``(*shape, *phi_modes, 1)``.
  """
  return _sample_jit(problem, key, tuple(int(s) for s in shape))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample_jit(problem, key, shape):
  return problem.draw(key, shape)


def _dtype():
  return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def uniform_grid(sizes) -> np.ndarray:
  """``linspace(0, 1, s_i)`` meshgrid, both ends included.

  Args:
    sizes: grid size per axis, ``d`` ints.

  Returns:
    Points, ``(*sizes, d)``.
  """
  axes = np.meshgrid(*[np.linspace(0, 1, s) for s in sizes], indexing="ij")
  return np.stack(axes, axis=-1)


def finite_differences(u: jax.Array, n: int) -> list[jax.Array]:
  """Official ``fdm``: ``[u, Du, D^2u, ...]`` by ``jnp.gradient`` on a uniform grid incl. ends.

  ``u`` has a trailing channel axis; each derivative appends a trailing axis of size d.

  Args:
    u: grid values, ``(*S, C)``.
    n: highest derivative order.

  Returns:
    ``n + 1`` arrays; the ``k``-th is ``(*S, C, d, ..., d)`` with ``k`` trailing ``d`` axes.
  """
  out = [u]
  d = u.ndim - 1
  spacing = np.array(u.shape[:d]) - 1
  for _ in range(n):
    u = jnp.stack([jnp.gradient(u, axis=i) for i in range(d)], axis=-1) * spacing
    out.append(u)
  return out


def _check_phi(phi, problem) -> jax.Array:
  phi = jnp.asarray(phi)
  if phi.shape[:problem.ndim] != tuple(problem.phi_modes) or phi.ndim != problem.ndim + 1:
    raise ValueError(f"phi: expected coefficients of shape {(*problem.phi_modes, 1)} for "
                     f"{problem.name}, got {phi.shape}")
  return phi


def _trace_hessian_fd(u: jax.Array, axes) -> jax.Array:
  hess = finite_differences(u, 2)[2]
  return sum(hess[..., 0, i, i] for i in axes)[..., None]


# ----------------------------------------------------------------------------- mollifiers

def mollify_periodic(u: jax.Array, kinds: str) -> jax.Array:
  """``(u - u(0)) * SCALE``: the gauge u(0, .., 0) = 0 on the constant coefficient.

  Args:
    u: coefficients, ``(*modes, *channels)``.
    kinds: basis letters.

  Returns:
    Coefficients, ``(*modes, *channels)``.
  """
  origin = bases.evaluate(u, kinds, jnp.zeros((1, len(kinds)), u.dtype))[0]
  return u.at[(0,) * len(kinds)].add(-origin) * SCALE


def mollify_dirichlet(u: jax.Array, kinds: str) -> jax.Array:
  """``transform(inv(u) * prod_i sin(pi x_i) * SCALE)`` on u's own grid (aliased product).

  Args:
    u: coefficients, ``(*modes, *channels)``.
    kinds: basis letters.

  Returns:
    Coefficients, ``(*modes, *channels)``.
  """
  x = bases.grid(kinds, u.shape[:len(kinds)])
  mol = np.prod(np.sin(np.pi * x), axis=-1, keepdims=True)
  return bases.transform(bases.inverse(u, kinds) * jnp.asarray(mol * SCALE, u.dtype), kinds)


def mollify_initial(phi: jax.Array, u: jax.Array, kinds: str) -> jax.Array:
  """``add(transform(inv(u) * t * SCALE), phi)``: u(t = 0) = phi; modes = max(M, phi modes).

  Args:
    phi: initial-condition coefficients, ``(*phi_modes, *channels)``.
    u: coefficients, ``(*modes, *channels)``; axis 0 is time.
    kinds: basis letters.

  Returns:
    Coefficients, ``(*max(modes, phi_modes), *channels)``.
  """
  t = bases.grid(kinds, u.shape[:len(kinds)])[..., :1]
  scaled = bases.transform(bases.inverse(u, kinds) * jnp.asarray(t * SCALE, u.dtype), kinds)
  return bases.add(kinds, scaled, phi)


# ----------------------------------------------------------------------------- problems

@dataclasses.dataclass(frozen=True)
class PoissonPeriodic:
  """``-Laplace u = s`` on the periodic unit square, gauge ``u(0, 0) = 0``.

  Attributes:
    res: parameter grid / mode count per axis.
    length: GP length scale.
    name: registry name (class constant).
    kinds: basis letters (class constant).
    ndim: number of mode axes (class constant).
    test_grid: uniform evaluation grid (class constant).
  """

  res: int = 16
  length: float = 0.2

  name: ClassVar[str] = "poisson_periodic"
  kinds: ClassVar[str] = "FF"
  ndim: ClassVar[int] = 2
  test_grid: ClassVar[tuple[int, ...]] = (256, 256)

  @property
  def phi_modes(self) -> tuple[int, ...]:
    """Mode counts of the parameter function ``phi``: ``(res, res)``.

    Returns:
      A tuple of 2 ints.
    """
    return (self.res, self.res)

  def draw(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Parameter coefficients from the official GP prior (see :func:`sample` for the jitted form).

    Args:
      key: PRNG key.
      shape: batch shape.

    Returns:
      Coefficients, ``(*shape, *phi_modes, 1)``.
    """
    x = gp_sample(key, "per", self.kinds, self.phi_modes, self.length, shape, _dtype())
    x = x - jnp.mean(x, axis=(-2, -1), keepdims=True)
    return _transform_batched(x[..., None], self.kinds, len(shape))

  def mollify(self, phi, u):
    """The official hard constraint in coefficient space.

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: raw network output coefficients, ``(*modes, 1)``.

    Returns:
      Constrained coefficients, ``(*modes, 1)`` (mode counts may grow to ``phi``'s).
    """
    return mollify_periodic(u, self.kinds)

  def mollify_grid(self, x, phi_values, u_values):
    """The official hard constraint on a uniform grid (both ends included).

    Args:
      x: grid points, ``(*S, 2)`` from :func:`uniform_grid`.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: raw network output on the grid, ``(*S, 1)``.

    Returns:
      Constrained values, ``(*S, 1)``.
    """
    return (u_values - u_values[(0,) * (u_values.ndim - 1)]) * SCALE

  def spectral_residual(self, phi, u):
    """The residual in coefficient space (NSM loss = its squared sum).

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: solution coefficients, ``(*modes, 1)``.

    Returns:
      Residual coefficients, ``(*modes, 1)`` (modes of the padded sum).
    """
    return bases.add(self.kinds, _check_phi(phi, self), bases.laplacian(u, self.kinds))

  def grid_residual(self, x, phi_values, u_values):
    """The finite-difference (PINN) residual on a uniform grid with both ends included.

    Args:
      x: grid points, ``(*S, 2)``.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Residual on the periodic grid (last row and column dropped), ``(S0 - 1, S1 - 1, 1)``.
    """
    s, u = phi_values[:-1, :-1], u_values[:-1, :-1]
    lap = (jnp.roll(u, 1, 0) + jnp.roll(u, -1, 0) + jnp.roll(u, 1, 1) + jnp.roll(u, -1, 1)
           - 4 * u)
    return s + lap * u.shape[0] ** 2

  def boundary(self, u_values):
    """Boundary residuals on the uniform grid (official ``boundary``).

    Args:
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Two periodicity residuals, opposite edges along each axis, ``(S, 1)`` each.
    """
    return [jnp.take(u_values, 0, axis=i) - jnp.take(u_values, -1, axis=i) for i in range(2)]


@dataclasses.dataclass(frozen=True)
class PoissonDirichlet:
  """``-Laplace u = s`` on the unit square with ``u = 0`` on the boundary.

  Attributes:
    res: parameter grid / mode count per axis.
    length: GP length scale.
    name: registry name (class constant).
    kinds: basis letters (class constant).
    ndim: number of mode axes (class constant).
    test_grid: uniform evaluation grid (class constant).
  """

  res: int = 16
  length: float = 0.2

  name: ClassVar[str] = "poisson_dirichlet"
  kinds: ClassVar[str] = "CC"
  ndim: ClassVar[int] = 2
  test_grid: ClassVar[tuple[int, ...]] = (255, 255)

  @property
  def phi_modes(self) -> tuple[int, ...]:
    """Mode counts of the parameter function ``phi``: ``(res, res)``.

    Returns:
      A tuple of 2 ints.
    """
    return (self.res, self.res)

  def draw(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Parameter coefficients from the official GP prior (see :func:`sample` for the jitted form).

    Args:
      key: PRNG key.
      shape: batch shape.

    Returns:
      Coefficients, ``(*shape, *phi_modes, 1)``.
    """
    x = gp_sample(key, "rbf", self.kinds, self.phi_modes, self.length, shape, _dtype())
    return _transform_batched(x[..., None], self.kinds, len(shape))

  def mollify(self, phi, u):
    """The official hard constraint in coefficient space.

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: raw network output coefficients, ``(*modes, 1)``.

    Returns:
      Constrained coefficients, ``(*modes, 1)`` (mode counts may grow to ``phi``'s).
    """
    return mollify_dirichlet(u, self.kinds)

  def mollify_grid(self, x, phi_values, u_values):
    """The official hard constraint on a uniform grid (both ends included).

    Args:
      x: grid points, ``(*S, 2)`` from :func:`uniform_grid`.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: raw network output on the grid, ``(*S, 1)``.

    Returns:
      Constrained values, ``(*S, 1)``.
    """
    return u_values * jnp.prod(jnp.sin(jnp.pi * x), axis=-1, keepdims=True) * SCALE

  def spectral_residual(self, phi, u):
    """The residual in coefficient space (NSM loss = its squared sum).

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: solution coefficients, ``(*modes, 1)``.

    Returns:
      Residual coefficients, ``(*modes, 1)`` (modes of the padded sum).
    """
    return bases.add(self.kinds, _check_phi(phi, self), bases.laplacian(u, self.kinds))

  def grid_residual(self, x, phi_values, u_values):
    """The finite-difference (PINN) residual on a uniform grid with both ends included.

    Args:
      x: grid points, ``(*S, 2)``.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Residual, ``(*S, 1)``.
    """
    return phi_values + _trace_hessian_fd(u_values, range(2))

  def boundary(self, u_values):
    """Boundary residuals on the uniform grid (official ``boundary``).

    Args:
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      ``[]`` (the mollifier enforces the boundary).
    """
    return []


@dataclasses.dataclass(frozen=True)
class ReactionDiffusion:
  """``u_t - nu u_xx = rho u (1 - u)`` on ``(t, x) in [0,1]^2``, periodic in x, ``u(0) = h``.

  Attributes:
    nu: diffusion coefficient.
    rho: reaction rate.
    res: initial-condition grid / mode count.
    length: GP length scale.
    name: registry name (class constant).
    kinds: basis letters (class constant).
    ndim: number of mode axes (class constant).
    test_grid: uniform evaluation grid (class constant).
  """

  nu: float = 0.01
  rho: float = 5.0
  res: int = 64
  length: float = 0.2

  name: ClassVar[str] = "reaction_diffusion"
  kinds: ClassVar[str] = "CF"
  ndim: ClassVar[int] = 2
  test_grid: ClassVar[tuple[int, ...]] = (513, 513)

  @property
  def phi_modes(self) -> tuple[int, ...]:
    """Mode counts of the parameter function ``phi``: ``(2, res)``.

    Returns:
      A tuple of 2 ints.
    """
    return (2, self.res)

  def draw(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Parameter coefficients from the official GP prior (see :func:`sample` for the jitted form).

    Args:
      key: PRNG key.
      shape: batch shape.

    Returns:
      Coefficients, ``(*shape, *phi_modes, 1)``.
    """
    h = gp_sample(key, "per", "F", (self.res,), self.length, shape, _dtype())
    lo, hi = jnp.min(h, -1, keepdims=True), jnp.max(h, -1, keepdims=True)
    h = (h - lo) / (hi - lo)
    values = jnp.broadcast_to(h[..., None, :], tuple(shape) + (2, self.res))
    return _transform_batched(values[..., None], self.kinds, len(shape))

  def mollify(self, phi, u, kinds: str | None = None):
    """The official hard constraint in coefficient space.

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: raw network output coefficients, ``(*modes, 1)``.
      kinds: basis letters of ``u`` (default the problem's; ``"FF"`` for NSM-Fourier).

    Returns:
      Constrained coefficients, ``(*modes, 1)`` (mode counts may grow to ``phi``'s).
    """
    return mollify_initial(phi, u, kinds or self.kinds)

  def mollify_grid(self, x, phi_values, u_values):
    """The official hard constraint on a uniform grid (both ends included).

    Args:
      x: grid points, ``(*S, 2)`` from :func:`uniform_grid`.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: raw network output on the grid, ``(*S, 1)``.

    Returns:
      Constrained values, ``(*S, 1)``.
    """
    return u_values * x[..., :1] * SCALE + phi_values

  def spectral_residual(self, phi, u, kinds: str | None = None):
    """The residual in coefficient space (NSM loss = its squared sum).

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: solution coefficients, ``(*modes, 1)``.
      kinds: basis letters of ``u`` (default the problem's; ``"FF"`` for NSM-Fourier).

    Returns:
      Residual coefficients, ``(*modes, 1)`` (modes of the padded sum).
    """
    kinds = kinds or self.kinds
    u = jnp.asarray(u)
    u1 = u.at[0, 0].add(-1.0)
    reaction = bases.mul(kinds, u, u1) * self.rho
    diffusion = -bases.grad(u, kinds, 2)[..., 1] * self.nu
    ut = bases.grad(u, kinds)[..., 0]
    return bases.add(kinds, ut, reaction, diffusion)

  def grid_residual(self, x, phi_values, u_values):
    """The finite-difference (PINN) residual on a uniform grid with both ends included.

    Args:
      x: grid points, ``(*S, 2)``.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Residual, ``(S_t, S_x, 1)``.
    """
    u, du, d2u = finite_differences(u_values, 2)
    return du[..., 0] - self.rho * u * (1 - u) - self.nu * d2u[..., 1, 1]

  def boundary(self, u_values):
    """Boundary residuals on the uniform grid (official ``boundary``).

    Args:
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      One periodicity residual in x, ``(S_t, 1)``.
    """
    return [u_values[:, 0] - u_values[:, -1]]


def transient_forcing(nx: int, ny: int) -> np.ndarray:
  """``0.1 (sin 2pi(x+y) + cos 2pi(x+y))`` on the left (periodic) grid ``j/n``.

  Args:
    nx: grid size along x.
    ny: grid size along y.

  Returns:
    ``(nx, ny)`` NumPy array.
  """
  xy = np.add.outer(np.arange(nx) / nx, np.arange(ny) / ny)
  return 0.1 * (np.sin(2 * np.pi * xy) + np.cos(2 * np.pi * xy))


def velocity(w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Velocity ``(v_x, v_y) = (d_y psi, -d_x psi)`` of a periodic vorticity field.

  Args:
    w: vorticity on the periodic grid, ``(nx, ny)``.

  Returns:
    ``(v_x, v_y)``, each ``(nx, ny)``.
  """
  what = jnp.fft.fft2(w)
  kx, ky = wavenumbers(*w.shape)
  lap = kx ** 2 + ky ** 2
  lap = lap.at[0, 0].set(1.0)
  vx = jnp.fft.irfft2(what * 1j * ky / lap, w.shape)
  vy = jnp.fft.irfft2(what * -1j * kx / lap, w.shape)
  return vx, vy


def wavenumbers(nx: int, ny: int) -> tuple[jax.Array, jax.Array]:
  """Angular wavenumbers ``2 pi fftfreq(n) n`` on an (nx, ny) grid.

  Args:
    nx: grid size along x.
    ny: grid size along y.

  Returns:
    ``(kx, ky)``, each ``(nx, ny)``.
  """
  kx = np.tile(np.fft.fftfreq(nx)[:, None] * nx * 2 * np.pi, (1, ny))
  ky = np.tile(np.fft.fftfreq(ny)[None, :] * ny * 2 * np.pi, (nx, 1))
  return jnp.asarray(kx), jnp.asarray(ky)


@dataclasses.dataclass(frozen=True)
class NavierStokes:
  """Vorticity form ``w_t / T + v . grad w = nu Laplace w + f`` on ``[0,1] x T^2``.

  Instances (official): re2/re3/re4 ``T = 3, nu = 1e-2/1e-3/1e-4`` unforced; tf ``T = 50,
  nu = 2e-3`` with :func:`transient_forcing`. ``res`` is the IC grid (64 officially).

  Attributes:
    T: time horizon (time is rescaled to ``[0, 1]``).
    nu: viscosity.
    forced: add :func:`transient_forcing`.
    res: initial-condition grid / mode count per spatial axis.
    length: GP length scale.
    scaling: factor on the sampled initial vorticity.
    name: registry name (class constant).
    kinds: basis letters (class constant).
    ndim: number of mode axes (class constant).
    test_grid: uniform evaluation grid (class constant).
  """

  T: float = 3.0
  nu: float = 1e-3
  forced: bool = False
  res: int = 64
  length: float = 0.8
  scaling: float = 1.0

  name: ClassVar[str] = "navier_stokes"
  kinds: ClassVar[str] = "CFF"
  ndim: ClassVar[int] = 3
  test_grid: ClassVar[tuple[int, ...]] = (64, 257, 257)

  @property
  def phi_modes(self) -> tuple[int, ...]:
    """Mode counts of the parameter function ``phi``: ``(2, res, res)``.

    Returns:
      A tuple of 3 ints.
    """
    return (2, self.res, self.res)

  def draw(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Parameter coefficients from the official GP prior (see :func:`sample` for the jitted form).

    Args:
      key: PRNG key.
      shape: batch shape.

    Returns:
      Coefficients, ``(*shape, *phi_modes, 1)``.
    """
    w = gp_sample(key, "per", "FF", (self.res, self.res), self.length, shape, _dtype())
    w = (w - jnp.mean(w, axis=(-2, -1), keepdims=True)) * self.scaling
    values = jnp.broadcast_to(w[..., None, :, :], tuple(shape) + self.phi_modes)
    return _transform_batched(values[..., None], self.kinds, len(shape))

  def forcing(self, nx: int, ny: int) -> np.ndarray:
    """The forcing on the periodic ``(nx, ny)`` grid (zero unless ``forced``).

    Args:
      nx: grid size along x.
      ny: grid size along y.

    Returns:
      ``(nx, ny)`` NumPy array.
    """
    return transient_forcing(nx, ny) if self.forced else np.zeros((nx, ny))

  def mollify(self, phi, u):
    """The official hard constraint in coefficient space.

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      u: raw network output coefficients, ``(*modes, 1)``.

    Returns:
      Constrained coefficients, ``(*modes, 1)`` (mode counts may grow to ``phi``'s).
    """
    return mollify_initial(phi, u, self.kinds)

  def mollify_grid(self, x, phi_values, u_values):
    """The official hard constraint on a uniform grid (both ends included).

    Args:
      x: grid points, ``(*S, 3)`` from :func:`uniform_grid`.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: raw network output on the grid, ``(*S, 1)``.

    Returns:
      Constrained values, ``(*S, 1)``.
    """
    return u_values * x[..., :1] * SCALE + phi_values

  def spectral_residual(self, phi, w):
    """Official pseudo-spectral residual (advection NOT de-aliased); no channel axis in output.

    Args:
      phi: parameter coefficients, ``(*phi_modes, 1)``.
      w: vorticity coefficients, ``(*modes, 1)``.

    Returns:
      Residual coefficients without a channel axis, ``(*modes)``.
    """
    kinds = self.kinds
    w = jnp.asarray(w)
    w1 = bases.grad(w, kinds)
    w2 = bases.grad(w1, kinds)
    wt, wx, wy = w1[..., 0, 0], w1[..., 0, 1], w1[..., 0, 2]
    lap = w2[..., 0, 1, 1] + w2[..., 0, 2, 2]
    vx, vy = jax.vmap(velocity)(bases.inverse(w, kinds)[..., 0])
    advection = bases.transform(vx * bases.inverse(wx, kinds) + vy * bases.inverse(wy, kinds),
                                kinds)
    dwdt = bases.add(kinds, wt / self.T, advection)
    force = np.broadcast_to(self.forcing(*w.shape[1:3]), w.shape[:3])
    f = bases.transform(jnp.asarray(force, w.dtype), kinds)
    return bases.add(kinds, dwdt, -self.nu * lap, -f)

  def grid_residual(self, x, phi_values, u_values):
    """The finite-difference (PINN) residual on a uniform grid with both ends included.

    Args:
      x: grid points, ``(*S, 3)``.
      phi_values: parameter values on the grid, ``(*S, 1)``.
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Residual, ``(S_t, S_x, S_y)`` (no channel axis).
    """
    w, w1, w2 = finite_differences(u_values, 2)
    wt, wx, wy = w1[..., 0, 0], w1[..., 0, 1], w1[..., 0, 2]
    lap = w2[..., 0, 1, 1] + w2[..., 0, 2, 2]
    vx, vy = jax.vmap(velocity)(w[..., 0])
    f = jnp.asarray(self.forcing(*w.shape[1:3]), w.dtype)
    return wt / self.T + vx * wx + vy * wy - self.nu * lap - f

  def boundary(self, u_values):
    """Boundary residuals on the uniform grid (official ``boundary``).

    Args:
      u_values: solution values on the grid, ``(*S, 1)``.

    Returns:
      Two periodicity residuals (x and y edges), ``(S_t, S_y, 1)`` and ``(S_t, S_x, 1)``.
    """
    return [u_values[:, 0] - u_values[:, -1], u_values[:, :, 0] - u_values[:, :, -1]]


def _transform_batched(values: jax.Array, kinds: str, batch_dims: int) -> jax.Array:
  fn = functools.partial(bases.transform, kinds=kinds)
  for _ in range(batch_dims):
    fn = jax.vmap(fn)
  return fn(values)


PROBLEMS = {
    "poisson_periodic": PoissonPeriodic(),
    "poisson_dirichlet": PoissonDirichlet(),
    "reaction_nu005": ReactionDiffusion(nu=0.005),
    "reaction_nu01": ReactionDiffusion(nu=0.01),
    "reaction_nu05": ReactionDiffusion(nu=0.05),
    "reaction_nu1": ReactionDiffusion(nu=0.1),
    "navier_stokes_re2": NavierStokes(T=3.0, nu=1e-2),
    "navier_stokes_re3": NavierStokes(T=3.0, nu=1e-3),
    "navier_stokes_re4": NavierStokes(T=3.0, nu=1e-4),
    "navier_stokes_tf": NavierStokes(T=50.0, nu=2e-3, forced=True),
}


def get(name: str):
  """The official problem instance ``name`` (see ``PROBLEMS``).

  Args:
    name: a key of ``PROBLEMS``.

  Returns:
    The problem dataclass instance.

  Raises:
    ValueError: if ``name`` is unknown.
  """
  if name not in PROBLEMS:
    raise ValueError(f"name: unknown problem {name!r}; expected one of {sorted(PROBLEMS)}")
  return PROBLEMS[name]
