"""Classical pansharpening methods of the hyperspectral toolbox, as pure JAX functions.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; code github.com/matciotola/hyperspectral_pansharpening_toolbox
(``Utils/EXP.py``, ``CS/Brovey.py``, ``MRA/GLP.py``). Method papers: BT-H (Lolli et al., IEEE
GRSL 2017), MTF-GLP-FS (Vivone et al., IEEE TIP 2018), MTF-GLP-HPM (Aiazzi et al., PE&RS 2006),
MTF-GLP-HPM-R (Vivone et al., IEEE GRSL 2018).

Every method is ``method(hs_lr, pan, ratio, *, hs_up=None, **params) -> fused``: ``hs_lr``
``(h, w, B)`` or ``(N, h, w, B)``; ``pan`` ``(r h, r w)`` / ``(N, r h, r w, 1)``; ``hs_up`` the
upsampled cube (the dataset's ``I_MS``; default: the toolbox's ideal interpolator of ``hs_lr``).
They are jit-compiled, vmap over the batch axis, and differentiable in their inputs and float
parameters. Per-image statistics (means, stds, covariances, regressions) are over each image.

Implemented here: EXP, BT-H, MTF-GLP-FS, MTF-GLP-HPM, MTF-GLP-HPM-R. Not implemented (see
BUILD_NOTES): GSA and AWLP (need the toolbox's non-decimated MATLAB-style wavelet), PRACS, BDSD-PC,
SR-D (need the MATLAB bicubic ``imresize``), MF, TV, HySURE.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jspectral.pansharpening import protocol

_EPS64 = float(jnp.finfo(jnp.float64).eps)


def _inputs(hs_lr, pan, ratio, hs_up):
  ratio = protocol.check_ratio(ratio)
  lr, squeeze = protocol.as_batch(hs_lr, "hs_lr")
  p, _ = protocol.as_pan_batch(pan)
  protocol.check_hs_pan(lr, p, ratio)
  if hs_up is None:
    up = protocol.ideal_interpolator(lr, ratio)
  else:
    up, _ = protocol.as_batch(hs_up, "hs_up")
    if up.shape != p.shape[:3] + lr.shape[-1:]:
      raise ValueError(f"hs_up: expected shape {p.shape[:3] + lr.shape[-1:]}, got {up.shape}")
  dtype = jnp.result_type(lr.dtype, p.dtype, up.dtype, jnp.float32)
  return lr.astype(dtype), p.astype(dtype), up.astype(dtype), squeeze


def _mean(x):
  return jnp.mean(x, axis=(1, 2), keepdims=True)


def _std(x):
  return jnp.std(x, axis=(1, 2), keepdims=True, ddof=1)


def _cov(a, b):
  return jnp.sum((a - _mean(a)) * (b - _mean(b)), axis=(1, 2), keepdims=True) / (
      a.shape[1] * a.shape[2] - 1)


def _lowpass_pan_lr(bands_hr, ratio):
  """MTF low-pass, nearest-exact decimation, ideal interpolation (the GLP detail base)."""
  lr = protocol.decimate(protocol.mtf_filter(bands_hr, ratio), ratio)
  return protocol.ideal_interpolator(lr, ratio)


def _out(x, squeeze):
  return x[0] if squeeze else x


@functools.partial(jax.jit, static_argnames=("ratio",))
def exp(hs_lr, pan, ratio: int, *, hs_up=None):
  """EXP: the upsampled cube itself (``Utils/EXP.py``)."""
  _, _, up, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  return _out(up, squeeze)


@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_fs(hs_lr, pan, ratio: int, *, hs_up=None):
  """MTF-GLP-FS: injection gains ``cov(ms_b, P) / cov(P_L, P)`` estimated at full scale."""
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  low = _lowpass_pan_lr(bands, ratio)
  gain = _cov(ms, bands) / _cov(low, bands)
  return _out(ms + gain * (bands - low), squeeze)


@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_hpm(hs_lr, pan, ratio: int, *, hs_up=None, max_ratio: float = 10.0):
  """MTF-GLP-HPM: ``ms * clip(P_b / (P_L,b + eps), 0, max_ratio)`` with P equalised per band.

  The equalisation uses the std of ``LPfilterGauss(P)`` (float32 taps, replicate padding).
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  gauss = protocol.toolbox_taps(protocol.lp_filter_gauss_kernel(ratio))
  bands = (bands - _mean(bands)) * (_std(ms) / _std(protocol.depthwise_filter(bands, gauss))) \
      + _mean(ms)
  low = _lowpass_pan_lr(bands, ratio)
  return _out(ms * jnp.clip(bands / (low + _EPS64), 0.0, max_ratio), squeeze)


@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_hpm_r(hs_lr, pan, ratio: int, *, hs_up=None, max_ratio: float = 10.0):
  """MTF-GLP-HPM-R: HPM with a regression-based haze-like offset ``c_b`` per band."""
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  low = _lowpass_pan_lr(bands, ratio)
  g = _cov(ms, low) / _cov(low, low)
  c = _mean(ms) / g - _mean(bands)
  return _out(ms * jnp.clip((bands + c) / (low + c + _EPS64), 0.0, max_ratio), squeeze)


@functools.partial(jax.jit, static_argnames=("ratio", "float32_alpha"))
def bt_h(hs_lr, pan, ratio: int, *, hs_up=None, float32_alpha: bool = True):
  """BT-H: haze-corrected Brovey (haze = per-band spatial minimum of the upsampled cube).

  ``float32_alpha`` rounds the regression weights to float32 as the toolbox does.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  gauss = protocol.toolbox_taps(protocol.lp_filter_gauss_kernel(ratio))
  p_lp = protocol.depthwise_filter(p, gauss)
  haze = jnp.min(ms, axis=(1, 2), keepdims=True)
  design = ms.reshape(ms.shape[0], -1, ms.shape[-1])
  alpha = jnp.linalg.pinv(design) @ p_lp.reshape(p.shape[0], -1, 1)
  if float32_alpha:
    alpha = alpha.astype(jnp.float32).astype(ms.dtype)
  intensity = jnp.sum((ms - haze) * alpha[:, None, :, 0][:, :, None, :], axis=-1, keepdims=True)
  p_eq = (p - _mean(p_lp)) * (_std(intensity) / _std(p_lp)) + _mean(intensity)
  shifted = ms - haze
  shifted = jnp.clip(shifted, 0.0, jnp.max(shifted))
  return _out(shifted * (p_eq / (intensity + _EPS64)) + haze, squeeze)


METHODS = {"EXP": exp, "BT-H": bt_h, "MTF-GLP-FS": mtf_glp_fs, "MTF-GLP-HPM": mtf_glp_hpm,
           "MTF-GLP-HPM-R": mtf_glp_hpm_r}
