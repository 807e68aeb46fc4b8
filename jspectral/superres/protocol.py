"""SR quality indices with the conventions of SSPSR's ``metrics.quality_assessment``.

SSPSR (Jiang et al., "Learning Spatial-Spectral Prior for Super-Resolution of Hyperspectral
Imagery", IEEE TCI 2020; github.com/junjun-jiang/SSPSR ``metrics.py``) is the evaluation protocol of
both SR systems here (ESSAformer and the Spectral Mixup network reuse that file). Per test image,
on bands-last ``(..., H, W, C)`` arrays, argument order ``(pred, target)``:

* MPSNR: mean over bands of ``10 log10(R² / MSE_b)``; no border crop, no clamping.
* MSSIM: mean over bands of scikit-image SSIM with its defaults: 7×7 *uniform* window,
  K1 0.01, K2 0.03, sample covariance (N/(N−1)), averaged over the valid region (3 px cropped).
* SAM: mean over pixels of the spectral angle in degrees; pixels where either spectrum has zero
  norm are skipped; the cosine is not clipped (official; a cosine rounding above 1 gives NaN):
  ``clip_cosine=True`` clips it to [−1, 1].
* CC: per-band Pearson correlation over pixels, averaged over bands.
* RMSE: ``‖target − pred‖_F / √(HWC)``.
* ERGAS: ``(100 / ratio) √(mean_b MSE_b / mean(target_b)²)``.

The reported number for a test set is the mean of the per-image values. The indices themselves
are :mod:`jspectral.metrics.image`; this module fixes the SSPSR options and names.
"""

from __future__ import annotations

import jax

from jspectral.metrics import image


def quality_assessment(pred: jax.Array, target: jax.Array, data_range: float = 1.0,
                       ratio: float = 4, clip_cosine: bool = False) -> dict[str, jax.Array]:
  """SSPSR's ``quality_assessment``: six indices of one image (or a batch), official names.

  Args:
    pred: super-resolved cube(s), bands-last ``(..., H, W, C)``.
    target: ground-truth cube(s), same shape as ``pred``.
    data_range: peak value ``R`` of MPSNR and MSSIM.
    ratio: ERGAS's resolution ratio (the Spectral Mixup code fixes it to 4 even at x8).
    clip_cosine: clip SAM's cosine to [-1, 1] (official: no clip; a cosine rounding above 1 gives
      NaN).

  Returns:
    ``{"MPSNR", "MSSIM", "ERGAS", "SAM", "CrossCorrelation", "RMSE"}``, each of shape ``(...)``
    (one value per image; the reported number is their mean over the test set). SAM is in degrees.
  """
  return {"MPSNR": image.psnr(pred, target, data_range),
          "MSSIM": image.ssim(pred, target, data_range, window="uniform", win_size=7),
          "ERGAS": image.ergas(pred, target, ratio),
          "SAM": image.sam(pred, target, degrees=True, clip=clip_cosine),
          "CrossCorrelation": image.cc(pred, target),
          "RMSE": image.rmse(pred, target)}
