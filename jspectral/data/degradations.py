"""Super-resolution degradations: MATLAB ``imresize`` bicubic and Gaussian blur + decimation.

``imresize`` follows MATLAB's algorithm (used by SSPSR ``crop_image.m`` for ESSAformer and by the
Spectral Mixup SR code): Keys cubic kernel with ``a = -0.5``; when shrinking with antialiasing the
kernel is stretched by ``1 / scale`` (``h(x) = scale * cubic(scale * x)``); output pixel ``i``
(1-based) sits at input coordinate ``u = i / scale + (1 - 1 / scale) / 2``; it reads
``ceil(kernel_width) + 2`` taps starting at ``floor(u - kernel_width / 2)``, normalised to sum 1;
out-of-range taps are mirrored with the edge sample repeated (MATLAB ``symmetric``). Rows are
resized before columns (MATLAB's order for equal scales). ``jax.image.resize(..., "bicubic",
antialias=True)`` uses the same kernel but a different edge rule, so it is not used.

Each axis becomes a dense ``(out, in)`` matrix built once in NumPy; applying it is two
``einsum``s, so the functions are jit/vmap/grad-safe and accept any leading batch axes.

References: Jiang et al., "Learning Spatial-Spectral Prior for Super-Resolution of Hyperspectral
Imagery" (junjun-jiang/SSPSR); Zhang et al., "ESSAformer" (Rexzhan/ESSAformer).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

SCALES = (2, 4, 8)


def cubic(x: np.ndarray) -> np.ndarray:
  """Keys cubic convolution kernel with ``a = -0.5`` (MATLAB ``imresize`` ``cubic``).

  Args:
    x: distances, any shape.

  Returns:
    Kernel values, same shape.
  """
  ax = np.abs(x)
  near = (1.5 * ax**3 - 2.5 * ax**2 + 1.0) * (ax <= 1)
  far = (-0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
  return near + far


def output_length(in_length: int, scale: float) -> int:
  """MATLAB's output size ``ceil(in_length * scale)`` (guarded against ``1/3``-style round-off).

  Args:
    in_length: input length.
    scale: resize factor.

  Returns:
    The output length.
  """
  return math.ceil(round(in_length * scale, 9))


@functools.lru_cache(maxsize=64)
def resize_matrix(in_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
  """The matrix of MATLAB's 1-D bicubic resize (cached).

  Args:
    in_length: input length.
    scale: resize factor (< 1 shrinks).
    antialiasing: stretch the kernel by ``1 / scale`` when shrinking.

  Returns:
    ``(out_length, in_length)`` float64, ``out_length = ceil(in_length * scale)``.
  """
  out_length = output_length(in_length, scale)
  kernel_width = 4.0
  if scale < 1 and antialiasing:
    kernel = lambda t: scale * cubic(scale * t)
    kernel_width /= scale
  else:
    kernel = cubic
  u = np.arange(1, out_length + 1) / scale + 0.5 * (1 - 1 / scale)
  left = np.floor(u - kernel_width / 2)
  taps = left[:, None] + np.arange(math.ceil(kernel_width) + 2)[None, :]
  weights = kernel(u[:, None] - taps)
  weights /= weights.sum(axis=1, keepdims=True)
  mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
  index = mirror[np.mod(taps.astype(np.int64) - 1, 2 * in_length)]
  matrix = np.zeros((out_length, in_length))
  np.add.at(matrix, (np.repeat(np.arange(out_length), taps.shape[1]), index.ravel()),
            weights.ravel())
  return matrix


def _check_image(x: jax.Array, name: str = "x") -> None:
  if x.ndim < 3:
    raise ValueError(f"{name}: expected bands-last images (..., H, W, C), got shape {x.shape}")


def _apply_axes(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
  hi = jax.lax.Precision.HIGHEST
  x = jnp.einsum("oh,...hwc->...owc", jnp.asarray(rows, x.dtype), x, precision=hi)
  return jnp.einsum("pw,...hwc->...hpc", jnp.asarray(cols, x.dtype), x, precision=hi)


def imresize(x: jax.Array, scale: float, antialiasing: bool = True) -> jax.Array:
  """MATLAB ``imresize(x, scale)`` (bicubic) on bands-last images.

  Float input is not rounded or clipped (MATLAB's behaviour for ``double``/``single``).

  >>> imresize(jnp.ones((8, 8, 3)), 0.5).shape
  (4, 4, 3)

  Args:
    x: ``(..., H, W, C)``.
    scale: resize factor > 0.
    antialiasing: MATLAB's antialiasing when shrinking.

  Returns:
    ``(..., ceil(H * scale), ceil(W * scale), C)``.
  """
  _check_image(x)
  if not scale > 0:
    raise ValueError(f"scale: expected a positive number, got {scale}")
  height, width = x.shape[-3], x.shape[-2]
  return _apply_axes(x, resize_matrix(height, float(scale), antialiasing),
                     resize_matrix(width, float(scale), antialiasing))


def _check_factor(factor: int) -> None:
  if not (isinstance(factor, int | np.integer) and factor >= 1):
    raise ValueError(f"factor: expected a positive integer such as {SCALES}, got {factor!r}")


def bicubic_downsample(x: jax.Array, factor: int) -> jax.Array:
  """The papers' LR input: ``imresize(x, 1 / factor)`` with antialiasing; H, W divisible.

  Args:
    x: ``(..., H, W, C)`` with ``H`` and ``W`` divisible by ``factor``.
    factor: positive integer scale (2, 4, 8 in the papers).

  Returns:
    ``(..., H / factor, W / factor, C)``.
  """
  _check_image(x)
  _check_factor(factor)
  if x.shape[-3] % factor or x.shape[-2] % factor:
    raise ValueError(f"x: height and width {x.shape[-3:-1]} must be divisible by factor {factor}")
  return imresize(x, 1.0 / factor)


def gaussian_kernel(sigma: float, kernel_size: int) -> np.ndarray:
  """Normalised 1-D Gaussian taps centred at ``(kernel_size - 1) / 2``.

  Args:
    sigma: standard deviation in samples.
    kernel_size: number of taps.

  Returns:
    ``(kernel_size,)`` float64 summing to 1.
  """
  t = np.arange(kernel_size) - (kernel_size - 1) / 2
  taps = np.exp(-0.5 * (t / sigma) ** 2)
  return taps / taps.sum()


def _blur_matrix(length: int, taps: np.ndarray) -> np.ndarray:
  """``(length, length)`` matrix of a 'same' convolution with symmetric (edge-repeating) padding."""
  before = (len(taps) - 1) // 2
  mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
  matrix = np.zeros((length, length))
  for i in range(length):
    index = mirror[np.mod(np.arange(i - before, i - before + len(taps)), 2 * length)]
    np.add.at(matrix[i], index, taps)
  return matrix


def gaussian_downsample(x: jax.Array, factor: int, sigma: float | None = None,
                        kernel_size: int | None = None) -> jax.Array:
  """Separable Gaussian blur then decimation ``y[i, j] = blur(x)[factor * i, factor * j]``.

  The blur pads symmetrically (edge sample repeated); an even ``kernel_size`` puts the extra tap
  after the centre.

  Args:
    x: ``(..., H, W, C)``.
    factor: positive integer scale.
    sigma: blur standard deviation; default ``factor / 2`` (pass the paper's value when it gives
      one).
    kernel_size: taps; default ``2 * factor + 1``.

  Returns:
    ``(..., ceil(H / factor), ceil(W / factor), C)``.
  """
  _check_image(x)
  _check_factor(factor)
  sigma = factor / 2 if sigma is None else sigma
  kernel_size = 2 * factor + 1 if kernel_size is None else kernel_size
  if not sigma > 0 or kernel_size < 1:
    raise ValueError(f"sigma, kernel_size: expected > 0 and >= 1, got {sigma}, {kernel_size}")
  taps = gaussian_kernel(sigma, kernel_size)
  height, width = x.shape[-3], x.shape[-2]
  rows = _blur_matrix(height, taps)[::factor]
  cols = _blur_matrix(width, taps)[::factor]
  return _apply_axes(x, rows, cols)
