"""Official HSI-denoising metrics of HSDT/MAN (torchlight / HSIR ``hsirun.test``), with quirks.

Thin wrappers over :mod:`jspectral.metrics.image` that fix the official conventions (facts in
``specs/hsi_denoising_data.md`` section 4). Inputs ``(..., H, W, C)`` bands-last, ``pred`` first
as everywhere in jspectral; outputs ``(...)``.

* :func:`mpsnr`: mean over bands of the per-band PSNR (not the PSNR of the cube MSE), range 1.
* :func:`mssim`: mean over bands of scikit-image's SSIM with its defaults (7x7 uniform window,
  sample covariance, 3-pixel border dropped) and the *official* ``data_range=2.0``: scikit-image
  <= 0.19 gave float images the range -1..1 and the published numbers use it. ``data_range=1.0``
  gives the conventional value.
* :func:`sam`: spectral angle in **radians** with the official epsilon placement
  ``arccos((<x, y> + eps) / (|x| + eps) / (|y| + eps))``, eps = 1e-8, so ``sam(x, x) != 0``.
"""

from __future__ import annotations

import jax

from jspectral.metrics import image


def mpsnr(pred: jax.Array, target: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Mean over bands of ``10 log10(data_range^2 / MSE_band)``; an exact band gives ``inf``."""
  return image.psnr(pred, target, data_range=data_range, per_band=True)


def mssim(pred: jax.Array, target: jax.Array, data_range: float = 2.0) -> jax.Array:
  """Mean over bands of scikit-image SSIM (7x7 uniform window), official ``data_range=2.0``."""
  return image.ssim(pred, target, data_range=data_range, window="uniform", win_size=7)


def sam(pred: jax.Array, target: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Mean over pixels of the spectral angle in radians, official epsilon placement."""
  return image.sam(pred, target, degrees=False, eps=eps)
