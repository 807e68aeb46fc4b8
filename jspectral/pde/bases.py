"""Fourier and Chebyshev bases on the unit box ``[0, 1]^d`` as pure functions of coefficient arrays.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods: Self-supervised learning in the spectral
domain", ICLR 2024 (arXiv 2312.05225); official JAX code:
github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/basis``). The coefficient layouts, grids and
operators reproduce the official ones exactly:

* A series over ``d`` axes is an array ``coef`` of shape ``(*modes, *channels)`` plus a string
  ``kinds`` with one letter per mode axis: ``"F"`` (Fourier, periodic) or ``"C"`` (shifted
  Chebyshev). Trailing channel axes broadcast through every operation; batches go through
  ``jax.vmap`` (or sit on trailing channel axes: every operator is linear per mode axis).
* Fourier with ``n`` modes stores ``[a_0, .., a_{n//2}, b_{ceil(n/2)-1}, .., b_1]`` and represents
  ``f(x) = sum_k a_k cos(2 pi k x) - sum_k b_k sin(2 pi k x)``; grid ``j / n`` (no right end).
  One derivative of an even-``n`` series drops the Nyquist cosine (official behaviour).
* Chebyshev with ``n >= 2`` modes stores ``c_k`` of ``T_k(2x - 1)``; its grid is the descending
  Gauss-Lobatto set ``(1 + cos(pi j / (n - 1))) / 2``; the transform is a DCT-I computed by FFT.
* ``add`` pads to the per-axis maximum of the modes; ``mul`` pads to the per-axis sum and multiplies
  on that collocation grid (the exact product of the truncated series).

Everything is jit/vmap/grad-safe; mode counts and ``kinds`` are static.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("F", "C")


# ----------------------------------------------------------------------------- validation

def _check_kinds(kinds: str) -> str:
  if not isinstance(kinds, str) or not kinds or any(k not in KINDS for k in kinds):
    raise ValueError(f"kinds: expected a non-empty string of 'F' (Fourier) / 'C' (Chebyshev) "
                     f"letters, one per mode axis, got {kinds!r}")
  return kinds


def _check_coef(coef, kinds: str, name: str = "coef") -> jax.Array:
  _check_kinds(kinds)
  coef = jnp.asarray(coef)
  if coef.ndim < len(kinds):
    raise ValueError(f"{name}: expected at least {len(kinds)} leading mode axes for kinds "
                     f"{kinds!r}, got shape {coef.shape}")
  for axis, kind in enumerate(kinds):
    if kind == "C" and coef.shape[axis] < 2:
      raise ValueError(f"{name}: Chebyshev axis {axis} needs at least 2 modes/grid points, got "
                       f"shape {coef.shape}")
    if coef.shape[axis] < 1:
      raise ValueError(f"{name}: axis {axis} is empty in shape {coef.shape}")
  if not isinstance(coef, jax.core.Tracer) and not np.isfinite(np.asarray(coef)).all():
    raise ValueError(f"{name}: contains NaN or Inf")
  return coef


def _check_modes(modes: Sequence[int], kinds: str, name: str = "modes") -> tuple[int, ...]:
  modes = tuple(int(m) for m in modes)
  if len(modes) != len(kinds) or any(
      m < (2 if k == "C" else 1) for m, k in zip(modes, kinds, strict=True)):
    raise ValueError(f"{name}: expected {len(kinds)} mode counts for kinds {kinds!r} (>= 2 on "
                     f"Chebyshev axes, >= 1 on Fourier axes), got {modes}")
  return modes


def _along(fn, x: jax.Array, axis: int) -> jax.Array:
  """Applies a 1-D operator acting on axis 0 to ``axis`` of ``x``."""
  return jnp.moveaxis(fn(jnp.moveaxis(x, axis, 0)), 0, axis)


def _apply_matrix(matrix: np.ndarray, x: jax.Array) -> jax.Array:
  return jnp.tensordot(jnp.asarray(matrix, x.dtype), x, axes=(1, 0))


# ----------------------------------------------------------------------------- Fourier, 1-D

def _half(n: int) -> int:
  """ceil(n / 2): entries 1 .. ceil(n/2) - 1 of the half spectrum have a sine partner."""
  return (n + 1) // 2


def _fourier_real(spectrum: jax.Array, n: int) -> jax.Array:
  """Complex half spectrum (n//2 + 1, ...) -> compact real layout (n, ...)."""
  return jnp.concatenate([spectrum.real, spectrum.imag[1:_half(n)][::-1]], axis=0)


def _fourier_complex(coef: jax.Array) -> jax.Array:
  """Compact real layout (n, ...) -> complex half spectrum (n//2 + 1, ...)."""
  n = coef.shape[0]
  m = n // 2 + 1
  cos, sin = coef[:m], coef[m:]
  imag = jnp.concatenate([jnp.zeros_like(cos[:1]), sin[::-1],
                          jnp.zeros_like(cos[:m - _half(n)])], axis=0)
  return jax.lax.complex(cos, imag)


def _scale_rows(x: jax.Array, start: int, stop: int, factor: float) -> jax.Array:
  """``x`` with rows ``start:stop`` of axis 0 times ``factor`` (a broadcast product, not a
  scatter, so XLA need not constant-fold a scatter when ``x`` is a constant)."""
  weight = np.ones(x.shape[0])
  weight[start:stop] = factor
  return x * jnp.asarray(weight, x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))


def _fourier_forward(values: jax.Array) -> jax.Array:
  n = values.shape[0]
  spectrum = jnp.fft.rfft(values, axis=0, norm="forward")
  return _fourier_real(_scale_rows(spectrum, 1, _half(n), 2.0), n)


def _fourier_inverse(coef: jax.Array) -> jax.Array:
  n = coef.shape[0]
  spectrum = _scale_rows(_fourier_complex(coef), 1, _half(n), 0.5)
  return jnp.fft.irfft(spectrum, n, axis=0, norm="forward")


def _fourier_multiplier(coef: jax.Array, k: int, inverse: bool) -> jax.Array:
  n = coef.shape[0]
  freq = 2j * np.pi * np.arange(n // 2 + 1)
  if inverse:
    factor = np.zeros_like(freq)
    factor[1:] = freq[1:] ** (-k)
  else:
    factor = freq ** k
  spectrum = _fourier_complex(coef)
  factor = jnp.asarray(factor, spectrum.dtype).reshape((-1,) + (1,) * (coef.ndim - 1))
  return _fourier_real(spectrum * factor, n)


def _fourier_fn(n: int, x: jax.Array) -> jax.Array:
  """Basis functions of the compact layout at points ``x`` (P,) -> (P, n)."""
  k = np.arange(n // 2 + 1)
  phase = 2 * np.pi * x[:, None] * k
  sines = -jnp.sin(phase[:, 1:_half(n)])[:, ::-1]
  return jnp.concatenate([jnp.cos(phase), sines], axis=1)


def fourier_index(n: int) -> np.ndarray:
  """The index set kept by truncation/padding: ``(-n)//2 + 1 .. n//2`` (negative = sine block).

  Args:
    n: number of Fourier modes.

  Returns:
    Integer indices, ``(n,)``.
  """
  return np.arange((-n) // 2 + 1, n // 2 + 1)


# ----------------------------------------------------------------------------- Chebyshev, 1-D

def _chebyshev_forward(values: jax.Array) -> jax.Array:
  n = values.shape[0]
  extended = jnp.concatenate([values, values[-2:0:-1]], axis=0)
  coef = jnp.fft.rfft(extended, axis=0).real[:n] / (2 * (n - 1))
  return _scale_rows(coef, 1, n - 1, 2.0)


def _chebyshev_inverse(coef: jax.Array) -> jax.Array:
  n = coef.shape[0]
  half = _scale_rows(coef, 1, n - 1, 0.5)
  extended = jnp.concatenate([half, half[-2:0:-1]], axis=0)
  return jnp.fft.rfft(extended, axis=0).real[:n]


def _chebyshev_fn(n: int, x: jax.Array) -> jax.Array:
  """``T_k(2x - 1)`` for k < n at points ``x`` (P,) -> (P, n)."""
  return jnp.cos(np.arange(n) * jnp.arccos(jnp.clip(2 * x[:, None] - 1, -1, 1)))


@functools.cache
def chebyshev_gradient_matrix(n: int) -> np.ndarray:
  """Matrix mapping ``n`` shifted-Chebyshev coefficients to those of the derivative.

  Args:
    n: number of Chebyshev modes.

  Returns:
    ``(n - 1, n)`` NumPy matrix (cached).
  """
  j = np.arange(n - 1)[:, None]
  k = np.arange(n)[None, :]
  kappa = np.where(j == 0, 2.0, 1.0)
  return np.where((k > j) & ((k - j) % 2 == 1), 4.0 * k / kappa, 0.0)


@functools.cache
def chebyshev_integrate_matrix(n: int) -> np.ndarray:
  """Antiderivative matrix (constant 0); ``gradient(n+1) @ integrate(n) = I_n``.

  Args:
    n: number of Chebyshev modes.

  Returns:
    ``(n + 1, n)`` NumPy matrix (cached).
  """
  out = np.zeros((n + 1, n))
  for r in range(1, n + 1):
    out[r, r - 1] = (2.0 if r == 1 else 1.0) / (4 * r)
    if r + 1 < n:
      out[r, r + 1] = -1.0 / (4 * r)
  return out


# ----------------------------------------------------------------------------- per-axis dispatch

def _forward_1d(kind):
  return _fourier_forward if kind == "F" else _chebyshev_forward


def _inverse_1d(kind):
  return _fourier_inverse if kind == "F" else _chebyshev_inverse


def _grad_1d(kind: str, x: jax.Array, k: int) -> jax.Array:
  if kind == "F":
    return _fourier_multiplier(x, k, inverse=False)
  n = x.shape[0]
  square = np.pad(chebyshev_gradient_matrix(n), [(0, 1), (0, 0)])
  return _apply_matrix(np.linalg.matrix_power(square, k), x)


def _int_1d(kind: str, x: jax.Array, k: int) -> jax.Array:
  if kind == "F":
    return _fourier_multiplier(x, k, inverse=True)
  n = x.shape[0]
  return _apply_matrix(np.linalg.matrix_power(chebyshev_integrate_matrix(n)[:-1], k), x)


def _resize_1d(kind: str, x: jax.Array, m: int) -> jax.Array:
  n = x.shape[0]
  if n == m:
    return x
  idx = fourier_index(min(n, m)) if kind == "F" else np.arange(min(n, m))
  out = jnp.zeros((m,) + x.shape[1:], x.dtype)
  return out.at[idx % m].set(x[idx % n])


def _fn_1d(kind: str, n: int, x: jax.Array) -> jax.Array:
  return _fourier_fn(n, x) if kind == "F" else _chebyshev_fn(n, x)


def grid_1d(kind: str, n: int) -> np.ndarray:
  """Collocation points of ``n`` modes: Fourier ``j/n``; Chebyshev descending Gauss-Lobatto.

  Args:
    kind: ``"F"`` or ``"C"``.
    n: number of modes.

  Returns:
    Points in ``[0, 1]``, ``(n,)``.
  """
  if kind == "F":
    return np.arange(n) / n
  return (1 + np.cos(np.pi * np.arange(n) / (n - 1))) / 2


# ----------------------------------------------------------------------------- public API

def grid(kinds: str, modes: Sequence[int]) -> np.ndarray:
  """ij-meshgrid of the 1-D collocation grids.

  Args:
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    modes: mode count per axis, ``d`` ints.

  Returns:
    Points, ``(*modes, d)``.

  Raises:
    ValueError: if ``kinds`` is malformed or ``modes`` does not match it.
  """
  modes = _check_modes(modes, _check_kinds(kinds))
  axes = np.meshgrid(*[grid_1d(k, n) for k, n in zip(kinds, modes, strict=True)], indexing="ij")
  return np.stack(axes, axis=-1)


# Every public operator validates its inputs, then calls a jitted core (static kinds and sizes), so
# eager calls compile once per shape instead of once per primitive; under an outer jit it inlines.

def transform(values, kinds: str) -> jax.Array:
  """Grid values on :func:`grid` -> coefficients of the same shape.

  Args:
    values: grid values ``(*modes, *channels)``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).

  Returns:
    Coefficients, ``(*modes, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf.
  """
  return _transform(_check_coef(values, kinds, "values"), kinds)


@functools.partial(jax.jit, static_argnums=1)
def _transform(values, kinds):
  for axis, kind in enumerate(kinds):
    values = _along(_forward_1d(kind), values, axis)
  return values


def inverse(coef, kinds: str) -> jax.Array:
  """Coefficients -> values on the collocation grid of their own mode counts.

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).

  Returns:
    Grid values, ``(*modes, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf.
  """
  return _inverse(_check_coef(coef, kinds), kinds)


@functools.partial(jax.jit, static_argnums=1)
def _inverse(coef, kinds):
  for axis, kind in enumerate(kinds):
    coef = _along(_inverse_1d(kind), coef, axis)
  return coef


def resize(coef, kinds: str, modes: Sequence[int]) -> jax.Array:
  """Truncates/zero-pads every mode axis (official ``to``): grow-then-shrink is the identity.

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    modes: new mode count per axis.

  Returns:
    Coefficients, ``(*new_modes, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf or ``modes`` does not match ``kinds``.
  """
  return _resize(_check_coef(coef, kinds), kinds, _check_modes(modes, kinds))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _resize(coef, kinds, modes):
  for axis, (kind, m) in enumerate(zip(kinds, modes, strict=True)):
    coef = _along(functools.partial(_resize_1d, kind, m=m), coef, axis)
  return coef


def grad(coef, kinds: str, k: int = 1) -> jax.Array:
  """k-th derivative along each axis separately: appends a trailing axis of size d.

  ``grad(grad(c))`` is the Hessian (trailing ``(d, d)``); the mode count is preserved.

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    k: derivative order.

  Returns:
    Coefficients, ``(*modes, *channels, d)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf.
  """
  return _grad(_check_coef(coef, kinds), kinds, int(k))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _grad(coef, kinds, k):
  return jnp.stack([_along(functools.partial(_grad_1d, kind, k=k), coef, axis)
                    for axis, kind in enumerate(kinds)], axis=-1)


def integrate(coef, kinds: str, k: int = 1) -> jax.Array:
  """k-fold antiderivative along each axis (constant 0), trailing axis of size d.

  Chebyshev drops the top mode (official ``int``); Fourier divides by ``2 pi i k`` and zeroes the
  mean (the official Fourier ``int`` is broken; see docs/pde.md).

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    k: number of integrations.

  Returns:
    Coefficients ``(*modes, *channels, d)`` (mode counts preserved): the antiderivative along
    each of the ``d`` mode axes, stacked on a trailing axis.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf.
  """
  return _integrate(_check_coef(coef, kinds), kinds, int(k))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _integrate(coef, kinds, k):
  return jnp.stack([_along(functools.partial(_int_1d, kind, k=k), coef, axis)
                    for axis, kind in enumerate(kinds)], axis=-1)


def laplacian(coef, kinds: str, axes: Sequence[int] | None = None) -> jax.Array:
  """Trace of ``grad(grad(coef))`` over ``axes`` (default all mode axes).

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    axes: mode axes to sum over (default all).

  Returns:
    Coefficients, ``(*modes, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf.
  """
  axes = tuple(range(len(kinds)) if axes is None else axes)
  return _laplacian(_check_coef(coef, kinds), kinds, axes)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _laplacian(coef, kinds, axes):
  total = 0
  for axis in axes:
    first = _along(functools.partial(_grad_1d, kinds[axis], k=1), coef, axis)
    total = total + _along(functools.partial(_grad_1d, kinds[axis], k=1), first, axis)
  return total


def evaluate(coef, kinds: str, points) -> jax.Array:
  """Series at arbitrary points (dense tensor-product sum).

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    points: ``(P, d)`` in ``[0, 1]^d``.

  Returns:
    Values, ``(P, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf or ``points`` is not ``(P, d)``.
  """
  coef = _check_coef(coef, kinds)
  points = jnp.asarray(points)
  if points.ndim != 2 or points.shape[1] != len(kinds):
    raise ValueError(f"points: expected shape (P, {len(kinds)}), got {points.shape}")
  return _evaluate(coef, kinds, points)


@functools.partial(jax.jit, static_argnums=1)
def _evaluate(coef, kinds, points):
  out = jnp.tensordot(_fn_1d(kinds[0], coef.shape[0], points[:, 0]).astype(coef.dtype), coef,
                      axes=(1, 0))
  for axis in range(1, len(kinds)):
    phi = _fn_1d(kinds[axis], coef.shape[axis], points[:, axis]).astype(coef.dtype)
    out = jnp.einsum("pk,pk...->p...", phi, out)
  return out


def _uniform_1d(kind: str, x: jax.Array, s: int) -> jax.Array:
  if kind == "F":
    values = _fourier_inverse(_resize_1d("F", x, s - 1))
    return jnp.concatenate([values, values[:1]], axis=0)
  matrix = _chebyshev_fn(x.shape[0], jnp.linspace(0.0, 1.0, s, dtype=x.dtype))
  return jnp.tensordot(matrix.astype(x.dtype), x, axes=(1, 0))


def uniform(coef, kinds: str, sizes: Sequence[int]) -> jax.Array:
  """Values on the uniform grid ``linspace(0, 1, s_i)`` per axis, both ends included.

  Fourier axes truncate to ``s - 1`` modes first (official ``f[s]``; silently drops higher modes).

  Args:
    coef: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    sizes: grid size per axis, each >= 2.

  Returns:
    Values, ``(*sizes, *channels)``.

  Raises:
    ValueError: if ``kinds`` is malformed, ``coef`` has too few mode axes (or a Chebyshev axis
      with fewer than 2 modes) or holds NaN/Inf or ``sizes`` does not match ``kinds``.
  """
  coef = _check_coef(coef, kinds)
  sizes = tuple(int(s) for s in sizes)
  if len(sizes) != len(kinds) or any(s < 2 for s in sizes):
    raise ValueError(f"sizes: expected {len(kinds)} grid sizes >= 2, got {sizes}")
  return _uniform(coef, kinds, sizes)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _uniform(coef, kinds, sizes):
  for axis, (kind, s) in enumerate(zip(kinds, sizes, strict=True)):
    coef = _along(functools.partial(_uniform_1d, kind, s=s), coef, axis)
  return coef


def _align(kinds: str, coefs, scheme) -> list[jax.Array]:
  coefs = [_check_coef(c, kinds, f"coefs[{i}]") for i, c in enumerate(coefs)]
  if len({c.shape[len(kinds):] for c in coefs}) != 1:
    raise ValueError(f"coefs: channel axes differ: {[c.shape for c in coefs]}")
  modes = tuple(scheme(c.shape[i] for c in coefs) for i in range(len(kinds)))
  return [_resize(c, kinds, modes) for c in coefs]


def add(kinds: str, *coefs) -> jax.Array:
  """Sum of series padded to the per-axis maximum of their modes.

  Args:
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    *coefs: coefficient arrays ``(*modes_i, *channels)`` with equal channel axes.

  Returns:
    Coefficients, ``(*max_modes, *channels)``.

  Raises:
    ValueError: if an array is malformed (see :func:`inverse`) or channel axes differ.
  """
  return sum(_align(kinds, coefs, max))


def mul(kinds: str, *coefs) -> jax.Array:
  """Exact product: pad to the per-axis SUM of modes, multiply on that grid, transform back.

  Args:
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    *coefs: coefficient arrays ``(*modes_i, *channels)`` with equal channel axes.

  Returns:
    Coefficients, ``(*sum_modes, *channels)``.

  Raises:
    ValueError: if an array is malformed (see :func:`inverse`) or channel axes differ.
  """
  return _mul(kinds, *_align(kinds, coefs, sum))


@functools.partial(jax.jit, static_argnums=0)
def _mul(kinds, *coefs):
  product = _inverse(coefs[0], kinds)
  for c in coefs[1:]:
    product = product * _inverse(c, kinds)
  return _transform(product, kinds)


# ----------------------------------------------------------------------------- inner products

def _chebyshev_gram(n: int) -> np.ndarray:
  """``G[j, k] = integral_0^1 T_j(2x-1) T_k(2x-1) dx``."""
  m = np.arange(2 * n)
  moment = np.where(m % 2 == 0, 1.0 / (1.0 - np.where(m % 2 == 0, m, 0) ** 2), 0.0)  # int T*_m
  j, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
  return 0.5 * (moment[j + k] + moment[np.abs(j - k)])


def _fourier_weights(n: int) -> np.ndarray:
  return np.where(np.arange(n) == 0, 1.0, 0.5)


def inner(a, b, kinds: str, weighted: bool = False) -> jax.Array:
  """Inner product of two series with equal modes, summed over the mode axes.

  ``weighted=False`` is the official spectral-loss sum ``sum a * b`` over all coefficients;
  ``weighted=True`` is the exact ``integral_{[0,1]^d} f g dx`` (Parseval on Fourier axes: weight 1
  for the mean and 1/2 otherwise; the Gram matrix of the shifted Chebyshev polynomials).

  Args:
    a: coefficients ``(*modes, *channels)``, one mode axis per letter of ``kinds``.
    b: coefficients of the same shape.
    kinds: one letter per mode axis, ``"F"`` (Fourier) or ``"C"`` (Chebyshev).
    weighted: exact integral instead of the plain coefficient sum.

  Returns:
    ``(*channels)``.

  Raises:
    ValueError: if either array is malformed (see :func:`inverse`) or their shapes differ.
  """
  a = _check_coef(a, kinds, "a")
  b = _check_coef(b, kinds, "b")
  if a.shape != b.shape:
    raise ValueError(f"b: expected the shape of a {a.shape}, got {b.shape}")
  if weighted:
    for axis, kind in enumerate(kinds):
      n = a.shape[axis]
      if kind == "F":
        a = _along(lambda x, n=n: x * _fourier_weights(n).reshape((-1,) + (1,) * (x.ndim - 1)),
                   a, axis)
      else:
        a = _along(functools.partial(_apply_matrix, _chebyshev_gram(n)), a, axis)
  return jnp.sum(a * b, axis=tuple(range(len(kinds))))
