"""Official HSI-denoising metrics of HSDT/MAN (torchlight / HSIR ``hsirun.test``), with quirks.

Facts in ``specs/hsi_denoising_data.md`` section 4. All functions are pure and jit-able, take
bands-last cubes ``(..., H, W, C)`` (reference first, estimate second) and return one value per
leading index ``(...)``.

* :func:`mpsnr`: mean over bands of the per-band PSNR (not the PSNR of the cube MSE).
* :func:`mssim`: mean over bands of scikit-image's SSIM with its defaults: 7x7 uniform window
  (reflect padding), sample covariance (x 49/48), K1 = 0.01, K2 = 0.03, 3-pixel border dropped, and
  the *official* ``data_range=2.0`` (scikit-image <= 0.19 gave float images the range -1..1; the
  published numbers use it). Pass ``data_range=1.0`` for the conventional value.
* :func:`sam`: spectral angle in radians with the official epsilon placement
  ``arccos((<x, y> + eps) / (|x| + eps) / (|y| + eps))``, clipped to [-1, 1]; ``sam(x, x) != 0``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_pair(target: jax.Array, pred: jax.Array, min_side: int = 1) -> None:
  if target.shape != pred.shape:
    raise ValueError(f"pred: expected the shape of target {target.shape}, got {pred.shape}")
  if target.ndim < 3:
    raise ValueError(f"target: expected (..., H, W, C) cubes, got shape {target.shape}")
  if min(target.shape[-3:-1]) < min_side:
    raise ValueError(f"target: H and W must be at least {min_side}, got {target.shape[-3:-1]}")


def mpsnr(target: jax.Array, pred: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Mean over bands of ``10 log10(data_range^2 / MSE_band)``; an exact band gives ``inf``."""
  _check_pair(target, pred)
  mse = jnp.mean(jnp.square(target - pred), axis=(-3, -2))
  return jnp.mean(10.0 * jnp.log10(data_range**2 / mse), axis=-1)


def _box_mean(x: jax.Array, win: int) -> jax.Array:
  """Uniform ``win x win`` mean over axes (-3, -2) with SciPy's ``reflect`` (symmetric) padding."""
  pad = win // 2
  widths = [(0, 0)] * (x.ndim - 3) + [(pad, pad), (pad, pad), (0, 0)]
  padded = jnp.pad(x, widths, mode="symmetric")
  window = (1,) * (x.ndim - 3) + (win, win, 1)
  return jax.lax.reduce_window(padded, 0.0, jax.lax.add, window, (1,) * x.ndim, "VALID") / win**2


def mssim(target: jax.Array, pred: jax.Array, data_range: float = 2.0, win_size: int = 7,
          k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Mean over bands of scikit-image SSIM (uniform window), official ``data_range=2.0``."""
  _check_pair(target, pred, min_side=win_size)
  x, y = target, pred
  ux, uy = _box_mean(x, win_size), _box_mean(y, win_size)
  uxx, uyy, uxy = _box_mean(x * x, win_size), _box_mean(y * y, win_size), _box_mean(x * y, win_size)
  cov_norm = win_size**2 / (win_size**2 - 1.0)
  vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
  c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
  pad = (win_size - 1) // 2
  s = s[..., pad:s.shape[-3] - pad, pad:s.shape[-2] - pad, :]
  return jnp.mean(s, axis=(-3, -2, -1))


def sam(target: jax.Array, pred: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Mean over pixels of the spectral angle in radians, official epsilon placement."""
  _check_pair(target, pred)
  dot = jnp.sum(target * pred, axis=-1)
  ratio = (dot + eps) / (jnp.sqrt(jnp.sum(target**2, -1)) + eps) / (
      jnp.sqrt(jnp.sum(pred**2, -1)) + eps)
  return jnp.mean(jnp.arccos(jnp.clip(ratio, -1.0, 1.0)), axis=(-2, -1))
