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
  """Mean over bands of the per-band PSNR ``10 log10(data_range^2 / MSE_band)``.

  Not the PSNR of the cube MSE; an exact band gives ``inf``.

  Args:
    pred: denoised cube(s), bands-last ``(..., H, W, C)``.
    target: clean cube(s), same shape as ``pred``.
    data_range: peak value ``R`` of the signal (official: 1).

  Returns:
    The MPSNR in dB, shape ``(...)``.
  """
  return image.psnr(pred, target, data_range=data_range, per_band=True)


def mssim(pred: jax.Array, target: jax.Array, data_range: float = 2.0) -> jax.Array:
  """Mean over bands of scikit-image SSIM (7x7 uniform window), official ``data_range=2.0``.

  scikit-image's defaults: 7x7 uniform window, sample covariance, 3-pixel border dropped. The
  official ``data_range=2.0`` comes from scikit-image <= 0.19, which gave float images the range
  -1..1; the published numbers use it. ``data_range=1.0`` gives the conventional value.

  Args:
    pred: denoised cube(s), bands-last ``(..., H, W, C)``.
    target: clean cube(s), same shape as ``pred``.
    data_range: SSIM's data range (official: 2.0).

  Returns:
    The MSSIM, shape ``(...)``.
  """
  return image.ssim(pred, target, data_range=data_range, window="uniform", win_size=7)


def sam(pred: jax.Array, target: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Mean over pixels of the spectral angle in radians, official epsilon placement.

  The angle is ``arccos((<x, y> + eps) / (|x| + eps) / (|y| + eps))``, so ``sam(x, x) != 0``.

  Args:
    pred: denoised cube(s), bands-last ``(..., H, W, C)``.
    target: clean cube(s), same shape as ``pred``.
    eps: the official epsilon (1e-8).

  Returns:
    The mean spectral angle in radians, shape ``(...)``.
  """
  return image.sam(pred, target, degrees=False, eps=eps)
