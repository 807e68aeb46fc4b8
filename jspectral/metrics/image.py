"""Image and spectral quality indices: PSNR, SSIM, SAM, ERGAS, RMSE, CC.

Every function takes ``pred`` and ``target`` of shape ``(..., H, W, C)`` (bands last, any number
of leading batch axes) and returns one value per leading index, shape ``(...)``. All are pure and
jit/vmap/grad-safe. Defaults follow the common definitions; the papers' conventions are options:

* HSIR / torchlight (HSDT, MAN): ``psnr``; ``ssim(window="uniform", data_range=2.0)``;
  ``sam(degrees=False, eps=1e-8)``.
* SSPSR (ESSAformer, Spectral-Mixup SR): ``psnr``; ``ssim(window="uniform")``;
  ``sam(clip=False)`` (zero-norm pixels skipped); ``ergas(ratio=scale)``; ``cc``; ``rmse``.

References: Wang et al., "Image quality assessment: from error visibility to structural
similarity", TIP 2004 (SSIM); Yuhas et al. 1992 (SAM); Wald 2000 (ERGAS).
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np


def as_float_array(x, name: str) -> jax.Array:
  """``x`` (array-like: list, NumPy, JAX) as a non-empty floating-point JAX array.

  Integer and boolean inputs become float32 with the same values, so integer data score as their
  float copy. Outside ``jit`` the values are checked too: NaN/Inf is an error, not a value silently
  left out of a mean.

  Args:
    x: the array.
    name: the argument's name, for error messages.

  Returns:
    ``x`` as a JAX array of a floating dtype.

  Raises:
    TypeError: ``x`` is complex or not numeric.
    ValueError: an empty axis, or NaN/Inf values.
  """
  if not isinstance(x, jax.core.Tracer):
    values = np.asarray(x)          # concrete input (also a constant inside someone's jit)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
      raise ValueError(f"{name}: contains NaN or Inf values")
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
    x = x.astype(jnp.float32)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name}: expected real numbers, got dtype {x.dtype}")
  if x.size == 0:
    raise ValueError(f"{name}: empty array of shape {x.shape}")
  return x


def validated(*names: str):
  """Decorator: the named array arguments go through :func:`as_float_array` before the (jitted)
  function runs, so integer data give the float copy's result and NaN/Inf or empty input is a
  ``ValueError`` naming the argument (values are checked outside ``jit`` only).

  Args:
    *names: the array arguments to convert; ``None`` values pass through.

  Returns:
    A decorator keeping the function's signature.
  """

  def wrap(fn):
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args, **kwargs):
      bound = signature.bind(*args, **kwargs)
      for name in names:
        if bound.arguments.get(name) is not None:
          bound.arguments[name] = as_float_array(bound.arguments[name], name)
      return fn(*bound.args, **bound.kwargs)

    return checked

  return wrap


def as_float_image(x, name: str) -> jax.Array:
  """:func:`as_float_array` for images: ``(..., H, W, C)`` with bands last.

  Args:
    x: the image or batch of images.
    name: the argument's name, for error messages.

  Returns:
    ``x`` as a floating-point JAX array.

  Raises:
    TypeError, ValueError: as :func:`as_float_array`, or fewer than 3 axes.
  """
  shape = np.shape(x)
  if len(shape) < 3:
    raise ValueError(f"{name}: expected (..., H, W, C) with bands last, got shape {shape}")
  return as_float_array(x, name)


def _check_pair(pred, target) -> tuple[jax.Array, jax.Array]:
  pred, target = as_float_image(pred, "pred"), as_float_image(target, "target")
  if pred.shape != target.shape:
    if pred.shape[-1] != target.shape[-1]:
      raise ValueError(f"pred, target: band counts differ ({pred.shape[-1]} vs "
                       f"{target.shape[-1]}); shapes {pred.shape} and {target.shape}")
    raise ValueError(f"pred, target: shapes differ, {pred.shape} vs {target.shape}")
  return pred, target


def band_mse(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error of each band.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.

  Returns:
    ``(..., C)`` per-band MSE.
  """
  pred, target = _check_pair(pred, target)
  return jnp.mean(jnp.square(pred - target), axis=(-3, -2))


def psnr(pred: jax.Array, target: jax.Array, data_range: float = 1.0,
         per_band: bool = True) -> jax.Array:
  """Peak signal-to-noise ratio in dB.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.
    data_range: peak value ``L`` in ``10 log10(L^2 / MSE)``.
    per_band: ``True`` (MPSNR, the HSI papers' convention): mean over bands of each band's PSNR;
      ``False``: PSNR of the whole-cube MSE.

  Returns:
    ``(...)``; ``inf`` where the error is exactly zero.
  """
  mse = band_mse(pred, target)
  if not per_band:
    mse = jnp.mean(mse, axis=-1)
  value = 10.0 * jnp.log10(data_range**2 / mse)
  return jnp.mean(value, axis=-1) if per_band else value


def _gaussian_taps(sigma: float, truncate: float = 3.5) -> jax.Array:
  radius = int(truncate * sigma + 0.5)
  x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  taps = jnp.exp(-0.5 * (x / sigma) ** 2)
  return taps / taps.sum()


def _filter2d(x: jax.Array, taps: jax.Array) -> jax.Array:
  """Separable filter over axes (-3, -2) with SciPy's ``reflect`` (edge-repeating) padding."""
  radius = (taps.shape[0] - 1) // 2
  height, width = x.shape[-3], x.shape[-2]
  pad = [(0, 0)] * (x.ndim - 3) + [(radius, radius), (radius, radius), (0, 0)]
  xp = jnp.pad(x, pad, mode="symmetric")
  rows = sum(taps[k] * xp[..., k:k + height, :, :] for k in range(taps.shape[0]))
  return sum(taps[k] * rows[..., :, k:k + width, :] for k in range(taps.shape[0]))


def ssim(pred: jax.Array, target: jax.Array, data_range: float = 1.0, window: str = "gaussian",
         win_size: int | None = None, sigma: float = 1.5, sample_covariance: bool | None = None,
         k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Structural similarity, computed per band and averaged over bands (MSSIM).

  Matches ``skimage.metrics.structural_similarity`` per band: the SSIM map is averaged after
  dropping a border of ``(win_size - 1) // 2`` pixels.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.
    data_range: ``L`` in ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``.
    window: ``"gaussian"`` (sigma ``sigma``, truncated at 3.5 sigma: 11x11 for sigma 1.5) or
      ``"uniform"`` (``win_size`` x ``win_size``, default 7, scikit-image's default).
    win_size: side of the uniform window (ignored by the Gaussian one).
    sigma: standard deviation of the Gaussian window in pixels.
    sample_covariance: use N/(N-1) for (co)variances; defaults to scikit-image's choice for each
      window (``False`` with the Gaussian window as in Wang et al., ``True`` with the uniform one).
    k1: stabilising constant of the luminance term.
    k2: stabilising constant of the contrast-structure term.

  Returns:
    ``(...)`` mean SSIM.
  """
  pred, target = _check_pair(pred, target)
  if window == "gaussian":
    taps = _gaussian_taps(sigma)
    sample_covariance = False if sample_covariance is None else sample_covariance
  elif window == "uniform":
    size = 7 if win_size is None else win_size
    taps = jnp.full((size,), 1.0 / size, jnp.float32)
    sample_covariance = True if sample_covariance is None else sample_covariance
  else:
    raise ValueError(f"window: expected 'gaussian' or 'uniform', got {window!r}")
  size = taps.shape[0]
  if min(pred.shape[-3], pred.shape[-2]) < size:
    raise ValueError(f"pred: spatial size {pred.shape[-3:-1]} is smaller than the {size}x{size} "
                     "SSIM window")
  dtype = jnp.result_type(pred.dtype, jnp.float32)
  x, y = pred.astype(dtype), target.astype(dtype)
  taps = taps.astype(dtype)
  n = size * size
  scale = n / (n - 1.0) if sample_covariance else 1.0
  mu_x, mu_y = _filter2d(x, taps), _filter2d(y, taps)
  var_x = scale * (_filter2d(x * x, taps) - mu_x * mu_x)
  var_y = scale * (_filter2d(y * y, taps) - mu_y * mu_y)
  cov = scale * (_filter2d(x * y, taps) - mu_x * mu_y)
  c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
      (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
  r = (size - 1) // 2
  cropped = ssim_map[..., r:ssim_map.shape[-3] - r, r:ssim_map.shape[-2] - r, :]
  return jnp.mean(cropped, axis=(-3, -2, -1))


def sam(pred: jax.Array, target: jax.Array, degrees: bool = True, eps: float = 0.0,
        clip: bool = True) -> jax.Array:
  """Spectral angle mapper: the mean over pixels of the angle between spectra.

  With ``eps == 0`` the cosine is ``<p, t> / (|p| |t|)`` and pixels where either spectrum has zero
  norm are left out of the mean. With ``eps > 0`` it is ``(<p, t> + eps) / (|p| + eps) / (|t| +
  eps)`` over every pixel (the HSIR/torchlight formula, whose SAM(x, x) is not exactly 0).

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.
    degrees: return degrees (SSPSR, pansharpening) rather than radians (HSIR).
    eps: see above.
    clip: clip the cosine to [-1, 1]; ``False`` reproduces SSPSR, where a cosine rounded above 1
      gives NaN.

  Returns:
    ``(...)`` mean angle.
  """
  pred, target = _check_pair(pred, target)
  dot = jnp.sum(pred * target, axis=-1)
  norm_p = jnp.linalg.norm(pred, axis=-1)
  norm_t = jnp.linalg.norm(target, axis=-1)
  if eps > 0:
    valid = jnp.ones_like(dot, dtype=bool)
    cosine = (dot + eps) / (norm_p + eps) / (norm_t + eps)
  else:
    valid = (norm_p > 0) & (norm_t > 0)
    cosine = dot / jnp.where(valid, norm_p * norm_t, 1.0)
  if clip:
    cosine = jnp.clip(cosine, -1.0, 1.0)
  angle = jnp.where(valid, jnp.arccos(jnp.where(valid, cosine, 1.0)), 0.0)
  mean = jnp.sum(angle, axis=(-2, -1)) / jnp.maximum(jnp.sum(valid, axis=(-2, -1)), 1)
  return jnp.degrees(mean) if degrees else mean


def ergas(pred: jax.Array, target: jax.Array, ratio: float) -> jax.Array:
  """ERGAS (Wald 2000), the relative dimensionless global error; 0 for a perfect estimate.

  ``ERGAS = (100 / ratio) sqrt(mean_b MSE_b / mean(target_b)^2)``.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.
    ratio: resolution ratio (the super-resolution scale, or the PAN/HS pixel-size ratio), > 0.

  Returns:
    ``(...)`` ERGAS.
  """
  if ratio <= 0:
    raise ValueError(f"ratio: expected a positive resolution ratio, got {ratio}")
  pred, target = _check_pair(pred, target)
  mse = band_mse(pred, target)
  band_mean = jnp.mean(target, axis=(-3, -2))
  return (100.0 / ratio) * jnp.sqrt(jnp.mean(mse / band_mean**2, axis=-1))


def rmse(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Root-mean-square error over every pixel and band.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.

  Returns:
    ``(...)`` RMSE.
  """
  return jnp.sqrt(jnp.mean(band_mse(pred, target), axis=-1))


def cc(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Cross-correlation: each band's Pearson correlation over pixels, averaged over bands.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.

  Returns:
    ``(...)`` mean correlation coefficient.
  """
  pred, target = _check_pair(pred, target)
  p = pred - jnp.mean(pred, axis=(-3, -2), keepdims=True)
  t = target - jnp.mean(target, axis=(-3, -2), keepdims=True)
  num = jnp.sum(p * t, axis=(-3, -2))
  den = jnp.sqrt(jnp.sum(p * p, axis=(-3, -2)) * jnp.sum(t * t, axis=(-3, -2)))
  return jnp.mean(num / den, axis=-1)


def quality_report(pred: jax.Array, target: jax.Array, ratio: float | None = None) -> dict:
  """All indices at their default settings as floats (mean over leading axes), for reports.

  Args:
    pred: estimate ``(..., H, W, C)``.
    target: reference ``(..., H, W, C)``.
    ratio: resolution ratio for ERGAS; ``None`` leaves ERGAS out.

  Returns:
    ``{"PSNR", "SSIM", "SAM", "RMSE", "CC"[, "ERGAS"]}`` Python floats.
  """
  values = {"PSNR": psnr(pred, target), "SSIM": ssim(pred, target), "SAM": sam(pred, target),
            "RMSE": rmse(pred, target), "CC": cc(pred, target)}
  if ratio is not None:
    values["ERGAS"] = ergas(pred, target, ratio)
  return {k: float(jnp.mean(v)) for k, v in values.items()}


__all__ = ["as_float_array", "as_float_image", "band_mse", "cc", "ergas", "psnr", "quality_report",
           "rmse", "sam", "ssim", "validated"]
