"""Classical pansharpening methods of the hyperspectral toolbox, as pure JAX functions.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; code github.com/matciotola/hyperspectral_pansharpening_toolbox
(``Utils/EXP.py``, ``CS/{GS,Brovey,BDSD,PRACS}.py``, ``MRA/{AWLP,GLP,MF}.py``,
``ModelBasedOptimization/{TV,SR_D}.py``). Method papers: GSA (Aiazzi et al., IEEE TGRS 2007),
BT-H (Lolli et al., IEEE GRSL 2017), BDSD-PC (Vivone, IEEE TGRS 2019), PRACS (Choi et al., IEEE
TGRS 2011), AWLP (Otazu et al., IEEE TGRS 2005), MTF-GLP-FS (Vivone et al., IEEE TIP 2018),
MTF-GLP-HPM (Aiazzi et al., PE&RS 2006), MTF-GLP-HPM-R (Vivone et al., IEEE GRSL 2018), MF
(Restaino et al., IEEE TIP 2016), TV (Palsson et al., IEEE GRSL 2014), SR-D (Vicinanza et al.,
IEEE GRSL 2015).

Every method is ``method(hs_lr, pan, ratio, *, hs_up=None, **params) -> fused``: ``hs_lr``
``(h, w, B)`` or ``(N, h, w, B)``; ``pan`` ``(r h, r w)`` / ``(N, r h, r w, 1)``; ``hs_up`` the
upsampled cube (the dataset's ``I_MS``; default: the toolbox's ideal interpolator of ``hs_lr``).
They are jit-compiled, vmap over the batch axis, and differentiable in their inputs and float
parameters, except where stated: BDSD-PC's active set and SR-D's atom choice are discrete
(gradients flow through the solution for the chosen set). Per-image statistics (means, stds,
covariances, regressions) are over each image; where the toolbox pools a statistic over its batch
(MF's finiteness fallback, PRACS's maximum) ours is per image (identical for batch 1).

Implemented: EXP, GSA, BT-H, BDSD-PC, PRACS, AWLP, MTF-GLP-FS, MTF-GLP-HPM, MTF-GLP-HPM-R, MF,
TV, SR-D, HySURE (no parity data: its VCA draws from the torch RNG).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jspectral.data import wald
from jspectral.metrics.image import validated
from jspectral.pansharpening import resample

_EPS64 = float(jnp.finfo(jnp.float64).eps)


def _inputs(hs_lr, pan, ratio, hs_up, *, interpolate: bool = True):
  """Validated float batches ``(lr, pan, up, squeeze)``; without ``hs_up`` and ``interpolate``
  (methods that never read it) ``up`` is a zero scalar."""
  ratio = wald.check_ratio(ratio)
  lr, squeeze = wald.as_batch(hs_lr, "hs_lr")
  p, _ = wald.as_pan_batch(pan)
  wald.check_hs_pan(lr, p, ratio)
  if hs_up is None:
    up = wald.ideal_interpolator(lr, ratio) if interpolate else jnp.zeros((), lr.dtype)
  else:
    up, _ = wald.as_batch(hs_up, "hs_up")
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


def _corr(a, b):
  """Pearson correlation over each image (``torch.corrcoef``)."""
  return _cov(a, b) / jnp.sqrt(_cov(a, a) * _cov(b, b))


def _flat(x):
  return x.reshape(x.shape[0], -1, x.shape[-1])


def _regress(design, target):
  """Least squares ``design @ coef ~ target`` per image by QR (the toolbox's ``regress``)."""
  q, r = jnp.linalg.qr(design)
  return jax.scipy.linalg.solve_triangular(r, jnp.swapaxes(q, -1, -2) @ target, lower=False)


def _float32(x, enabled: bool):
  return x.astype(jnp.float32).astype(x.dtype) if enabled else x


def _lowpass_pan_lr(bands_hr, ratio):
  """MTF low-pass, nearest-exact decimation, ideal interpolation (the GLP detail base)."""
  lr = wald.decimate(wald.mtf_filter(bands_hr, ratio), ratio)
  return wald.ideal_interpolator(lr, ratio)


def _out(x, squeeze):
  return x[0] if squeeze else x


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def exp(hs_lr, pan, ratio: int, *, hs_up=None):
  """EXP: the upsampled cube itself (``Utils/EXP.py``).

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, _, up, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  return _out(up, squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_fs(hs_lr, pan, ratio: int, *, hs_up=None):
  """MTF-GLP-FS: injection gains ``cov(ms_b, P) / cov(P_L, P)`` estimated at full scale.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  low = _lowpass_pan_lr(bands, ratio)
  gain = _cov(ms, bands) / _cov(low, bands)
  return _out(ms + gain * (bands - low), squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_hpm(hs_lr, pan, ratio: int, *, hs_up=None, max_ratio: float = 10.0):
  """MTF-GLP-HPM: ``ms * clip(P_b / (P_L,b + eps), 0, max_ratio)`` with P equalised per band.

  The equalisation uses the std of ``LPfilterGauss(P)`` (float32 taps, replicate padding).

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    max_ratio: upper clip of the modulation ratio.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  gauss = wald.toolbox_taps(wald.lp_filter_gauss_kernel(ratio))
  bands = (bands - _mean(bands)) * (_std(ms) / _std(wald.depthwise_filter(bands, gauss))) \
      + _mean(ms)
  low = _lowpass_pan_lr(bands, ratio)
  return _out(ms * jnp.clip(bands / (low + _EPS64), 0.0, max_ratio), squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def mtf_glp_hpm_r(hs_lr, pan, ratio: int, *, hs_up=None, max_ratio: float = 10.0):
  """MTF-GLP-HPM-R: HPM with a regression-based haze-like offset ``c_b`` per band.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    max_ratio: upper clip of the modulation ratio.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  low = _lowpass_pan_lr(bands, ratio)
  g = _cov(ms, low) / _cov(low, low)
  c = _mean(ms) / g - _mean(bands)
  return _out(ms * jnp.clip((bands + c) / (low + c + _EPS64), 0.0, max_ratio), squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "float32_alpha"))
def bt_h(hs_lr, pan, ratio: int, *, hs_up=None, float32_alpha: bool = True):
  """BT-H: haze-corrected Brovey (haze = per-band spatial minimum of the upsampled cube).

  ``float32_alpha`` rounds the regression weights to float32 as the toolbox does.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    float32_alpha: round the regression weights to float32.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  gauss = wald.toolbox_taps(wald.lp_filter_gauss_kernel(ratio))
  p_lp = wald.depthwise_filter(p, gauss)
  haze = jnp.min(ms, axis=(1, 2), keepdims=True)
  design = ms.reshape(ms.shape[0], -1, ms.shape[-1])
  alpha = jnp.linalg.pinv(design) @ p_lp.reshape(p.shape[0], -1, 1)
  alpha = _float32(alpha, float32_alpha)
  intensity = jnp.sum((ms - haze) * alpha[:, None, :, 0][:, :, None, :], axis=-1, keepdims=True)
  p_eq = (p - _mean(p_lp)) * (_std(intensity) / _std(p_lp)) + _mean(intensity)
  shifted = ms - haze
  shifted = jnp.clip(shifted, 0.0, jnp.max(shifted))
  return _out(shifted * (p_eq / (intensity + _EPS64)) + haze, squeeze)



def _levels(ratio: int) -> int:
  return math.ceil(math.log2(ratio))


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "float32_coeffs"))
def gsa(hs_lr, pan, ratio: int, *, hs_up=None, float32_coeffs: bool = True):
  """GSA: adaptive Gram-Schmidt; the intensity regresses the wavelet low-passed PAN on the LR cube.

  ``float32_coeffs`` rounds the regression weights and injection gains to float32 as the toolbox
  does (it stores them in float32 tensors).

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    float32_coeffs: round regression weights and injection gains to float32.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  lr, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  ms0, lr0, p0 = ms - _mean(ms), lr - _mean(lr), p - _mean(p)
  p_lr = wald.decimate(resample.wavelet_lowpass(p0, _levels(ratio)), ratio)
  design = _flat(jnp.concatenate([lr0, jnp.ones_like(lr0[..., :1])], axis=-1))
  alpha = _float32(_regress(design, _flat(p_lr)), float32_coeffs)[:, None, :, 0]
  intensity = jnp.sum(ms0 * alpha[..., None, :-1], axis=-1, keepdims=True) + alpha[..., None, -1:]
  intensity = intensity - _mean(intensity)
  gain = _float32(_cov(intensity, ms0) / _cov(intensity, intensity), float32_coeffs)
  fused = ms0 + gain * (p0 - intensity)
  return _out(fused - _mean(fused) + _mean(ms), squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def awlp(hs_lr, pan, ratio: int, *, hs_up=None):
  """AWLP: wavelet details of the equalised PAN injected proportionally to each band's share.

  The equalisation gain is ``std(ms_b) / std(bicubic down-up(P))``; the low-pass is the toolbox's
  undecimated Starck-Murtagh wavelet (linear with unit DC gain, so it is applied once to P).

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  share = ms / (jnp.mean(ms, axis=-1, keepdims=True) + jnp.finfo(ms.dtype).eps)
  gain = _std(ms) / _std(resample.imresize_down_up(p, ratio))
  details = gain * (p - resample.wavelet_lowpass(p, _levels(ratio)))
  return _out(ms + details * share, squeeze)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def pracs(hs_lr, pan, ratio: int, *, hs_up=None, beta: float = 0.95):
  """PRACS: partial replacement of the intensity with band-wise adaptive PAN/MS mixtures.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    beta: detail injection weight (0.95).

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  sp, sm = _std(p), _std(ms)
  ms_hm = (ms - _mean(ms) + _mean(p) / sp * sm) * sp / sm
  ms_hm = jnp.clip(ms_hm, 0.0, jnp.max(ms_hm, axis=(1, 2, 3), keepdims=True))
  design = _flat(jnp.concatenate([jnp.ones_like(p), ms_hm], axis=-1))
  fit = lambda target: (design @ _regress(design, _flat(target))).reshape(target.shape)
  intensity = fit(resample.imresize_down_up(p, ratio))
  cc = _corr(intensity, ms_hm)
  high = cc * p + (1.0 - cc) * ms_hm
  low = fit(resample.imresize_down_up(high, ratio))
  delta = high - low - (_mean(high) - _mean(low))
  weight = beta * _corr(low, ms) * sm / jnp.mean(sm, axis=-1, keepdims=True)
  local = jnp.clip(1.0 - jnp.abs(1.0 - _corr(intensity, ms) * ms / low), -10.0, 10.0)
  return _out(ms + weight * local * delta, squeeze)


def _cross_extremum(x, op, fill):
  """Min/max over the 3x3 cross; pixels outside the image are ignored (kornia 'geodesic')."""
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=fill)
  neighbours = (xp[:, :-2, 1:-1], xp[:, 2:, 1:-1], xp[:, 1:-1, :-2], xp[:, 1:-1, 2:])
  return functools.reduce(op, neighbours, x)


def _half_gradient_lowpass(x, levels: int):
  """Coarsest level of MF's morphological pyramid brought back to full size, and its validity.

  Each level averages the 3x3-cross erosion and dilation, keeps ``[1::2, 1::2]`` (first level) or
  ``[::2, ::2]``, and is resized back through the intermediate sizes (antialiased bilinear). The
  flag is False where any level is non-finite (the toolbox then falls back to the input).
  """
  sizes, finite, level = [x.shape[1:3]], jnp.ones((x.shape[0], 1, 1, 1), bool), x
  for i in range(1, levels):
    dilated = _cross_extremum(level, jnp.maximum, -jnp.inf)
    eroded = _cross_extremum(level, jnp.minimum, jnp.inf)
    smooth = level - 0.5 * ((level - eroded) - (dilated - level))
    level = smooth[:, 1::2, 1::2] if i == 1 else smooth[:, ::2, ::2]
    sizes.append(level.shape[1:3])
    back = level
    for size in reversed(sizes[:-1]):
      back = resample.resize_bilinear(back, size, antialias=True)
    finite &= jnp.all(jnp.isfinite(back), axis=(1, 2, 3), keepdims=True)
  return back, finite


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio",))
def mf(hs_lr, pan, ratio: int, *, hs_up=None, max_ratio: float = 10.0):
  """MF: high-pass modulation with a morphological half-gradient pyramid low-pass of the PAN.

  The PAN is equalised to each band with its own std; ``ceil(log2 r) + 1`` pyramid levels.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    max_ratio: upper clip of the modulation ratio.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  bands = jnp.broadcast_to(p, ms.shape)
  bands = (bands - _mean(bands)) * (_std(ms) / _std(bands)) + _mean(ms)
  low, finite = _half_gradient_lowpass(bands, _levels(ratio) + 1)
  low = jnp.where(finite, low, bands)
  return _out(ms * jnp.clip(bands / (low + _EPS64), 0.0, max_ratio), squeeze)


def _solve_free(gram, rhs, free):
  """Least squares restricted to the ``free`` variables (the others are 0)."""
  f = free.astype(gram.dtype)
  return jnp.linalg.solve(gram * f[:, None] * f[None, :] + jnp.diag(1.0 - f), rhs * f)


def _nnls(gram, rhs, max_iter: int):
  """Lawson-Hanson active set for ``min x'Gx - 2 c'x`` s.t. ``x >= 0`` (normal-equation form).

  The free set is found with ``lax.while_loop`` on stopped-gradient data; the returned solution is
  the least squares on the final free set, so it is differentiable in ``gram`` and ``rhs``
  wherever the active set is locally constant.
  """
  n = rhs.shape[-1]
  g, c = jax.lax.stop_gradient((gram, rhs))
  tol = 100.0 * n * jnp.finfo(c.dtype).eps * jnp.max(jnp.abs(c))

  def outer_cond(state):
    x, free, it = state
    return (it < max_iter) & jnp.any(~free & (c - g @ x > tol))

  def inner_cond(state):
    s, _, free, it = state
    return (it < max_iter) & jnp.any(free & (s <= 0))

  def inner_body(state):
    s, x, free, it = state
    blocking = free & (s <= 0)
    step = jnp.where(blocking, x / jnp.where(blocking, x - s, 1.0), jnp.inf)
    k = jnp.argmin(step)
    x = jnp.where(free, x + step[k] * (s - x), 0.0).at[k].set(0.0)
    free = free & (x > 0)
    return _solve_free(g, c, free), x, free, it + 1

  def outer_body(state):
    x, free, it = state
    free = free.at[jnp.argmax(jnp.where(free, -jnp.inf, c - g @ x))].set(True)
    s, _, free, it = jax.lax.while_loop(inner_cond, inner_body,
                                        (_solve_free(g, c, free), x, free, it + 1))
    return s, free, it

  init = (jnp.zeros_like(c), jnp.zeros(n, bool), jnp.asarray(0))
  _, free, _ = jax.lax.while_loop(outer_cond, outer_body, init)
  return _solve_free(gram, rhs, free)


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "sensor"))
def bdsd_pc(hs_lr, pan, ratio: int, *, hs_up=None, sensor: str = "PRISMA",
            scale: float = 2.0 ** 16):
  """BDSD-PC: band-dependent spatial detail with physical constraints (PAN gain >= 0, MS <= 0).

  Per band, ``min ||[P_L, M_L] g - (G_b - M_L,b)||^2`` at reduced scale, where ``G`` is the
  bicubic-reduced ``hs_up``, ``M_L`` its MTF-filtered version and ``P_L`` the MTF-filtered,
  decimated PAN; ``fused_b = ms_b + [P, ms] g``. The QP is solved exactly by an active-set NNLS
  after the sign change ``g = S u`` (the toolbox calls PIQP through cvxpy); data are divided by
  ``scale`` (2^16) first as in the toolbox.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    sensor: PAN MTF sensor name (``"PRISMA"``).
    scale: data divisor (2^16).

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  ms, p = ms / scale, p / scale
  gt = resample.imresize(ms, 1 / ratio)
  ms_lr = wald.depthwise_filter(gt, wald.toolbox_taps(wald.gen_mtf(ratio)))
  pan_taps = wald.toolbox_taps(wald.gen_mtf_pan(ratio, sensor=sensor))
  pan_lr = wald.decimate(wald.depthwise_filter(p, pan_taps), ratio)
  design = _flat(jnp.concatenate([pan_lr, ms_lr], axis=-1))
  bands = ms.shape[-1]
  sign = jnp.concatenate([jnp.ones(1), -jnp.ones(bands)]).astype(ms.dtype)
  gram = jnp.swapaxes(design, 1, 2) @ design * sign[:, None] * sign[None, :]
  rhs = (jnp.swapaxes(design, 1, 2) @ _flat(gt - ms_lr)) * sign[:, None]
  solve = jax.vmap(jax.vmap(lambda g, c: _nnls(g, c, 10 * (bands + 1)), (None, 1), 1), (0, 0), 0)
  gains = solve(gram, rhs) * sign[:, None]
  hr = jnp.concatenate([p, ms], axis=-1)
  fused = ms + jnp.einsum("nhwk,nkb->nhwb", hr, gains, precision=jax.lax.Precision.HIGHEST)
  return _out(fused * scale, squeeze)


# Spectral weights of the synthetic PAN in the toolbox's TV forward model, by dataset.
TV_WEIGHTS = {
    "WV3": (0.0657, 0.1012, 0.1537, 0.1473, 0.1245, 0.1545, 0.1338, 0.1192),
    "PRISMA": (
        0.0015, 0.0014, 0.0016, 0.0016, 0.0018, 0.0017, 0.0019, 0.0019, 0.0021, 0.0023, 0.0026,
        0.0028, 0.0029, 0.0030, 0.0030, 0.0031, 0.0032, 0.0031, 0.0033, 0.0034, 0.0035, 0.0036,
        0.0036, 0.0037, 0.0036, 0.0037, 0.0038, 0.0040, 0.0044, 0.0048, 0.0056, 0.0063, 0.0069,
        0.0076, 0.0083, 0.0083, 0.0091, 0.0086, 0.0088, 0.0093, 0.0089, 0.0093, 0.0094, 0.0095,
        0.0095, 0.0096, 0.0100, 0.0102, 0.0100, 0.0096, 0.0109, 0.0103, 0.0099, 0.0089, 0.0088,
        0.0094, 0.0077, 0.0079, 0.0080, 0.0082, 0.0082, 0.0083, 0.0085, 0.0086, 0.0088, 0.0089,
        0.0090, 0.0089, 0.0091, 0.0090, 0.0088, 0.0069, 0.0080, 0.0081, 0.0086, 0.0089, 0.0087,
        0.0088, 0.0088, 0.0089, 0.0093, 0.0099, 0.0100, 0.0095, 0.0090, 0.0087, 0.0087, 0.0082,
        0.0085, 0.0051, 0.0056, 0.0061, 0.0064, 0.0065, 0.0065, 0.0067, 0.0068, 0.0069, 0.0071,
        0.0072, 0.0073, 0.0073, 0.0074, 0.0074, 0.0074, 0.0074, 0.0074, 0.0074, 0.0073, 0.0072,
        0.0071, 0.0072, 0.0071, 0.0070, 0.0068, 0.0068, 0.0066, 0.0064, 0.0065, 0.0048, 0.0052,
        0.0053, 0.0049, 0.0053, 0.0048, 0.0050, 0.0049, 0.0048, 0.0048, 0.0048, 0.0047, 0.0047,
        0.0048, 0.0049, 0.0048, 0.0048, 0.0049, 0.0049, 0.0049, 0.0050, 0.0049, 0.0050, 0.0051,
        0.0050, 0.0050, 0.0049, 0.0049, 0.0047, 0.0047, 0.0046, 0.0045, 0.0045, 0.0044, 0.0042,
        0.0042, 0.0038, 0.0035, 0.0038, 0.0040),
}
# The toolbox's channel offset of the y-part in its gradient adjoint (should be the band count).
TV_OFFICIAL_CHANNEL_OFFSET = 4


def _tv_weights(weights, bands: int, dtype):
  if weights is None:
    by_count = {len(w): w for w in TV_WEIGHTS.values()}
    if bands not in by_count:
      raise ValueError(f"weights: the toolbox defines TV weights for {sorted(by_count)} bands "
                       f"(WV3, PRISMA); pass weights of shape ({bands},) for {bands} bands")
    weights = np.asarray(by_count[bands], np.float32)   # float32 tensors in the toolbox
  weights = jnp.asarray(weights)
  if weights.shape != (bands,):
    raise ValueError(f"weights: expected shape ({bands},), got {weights.shape}")
  return weights.astype(dtype)


def _safe_sqrt(x):
  """``sqrt`` with a zero (not NaN) gradient at 0, where TV magnitudes start."""
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _forward_diff(x, axis: int):
  """Forward difference along a spatial axis with a replicated edge (last difference 0)."""
  last = jax.lax.slice_in_dim(x, x.shape[axis] - 1, x.shape[axis], axis=axis)
  return jnp.diff(jnp.concatenate([x, last], axis=axis), axis=axis)


def _forward_diff_adjoint(v, axis: int):
  """Exact adjoint of :func:`_forward_diff`: ``v[i - 1] - v[i]`` with the last ``v`` ignored."""
  n = v.shape[axis]
  v = jnp.concatenate([jax.lax.slice_in_dim(v, 0, n - 1, axis=axis),
                       jnp.zeros_like(jax.lax.slice_in_dim(v, 0, 1, axis=axis))], axis=axis)
  shifted = jnp.concatenate([jnp.zeros_like(jax.lax.slice_in_dim(v, 0, 1, axis=axis)),
                             jax.lax.slice_in_dim(v, 0, n - 1, axis=axis)], axis=axis)
  return shifted - v


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "iterations", "fix_channel_offset"))
def tv(hs_lr, pan, ratio: int, *, hs_up=None, weights=None, alpha: float = 0.75,
       lam: float = 1e-3, c: float = 8.0, iterations: int = 50, fix_channel_offset: bool = False):
  """TV: total-variation regularised inversion by majorisation-minimisation (uses hs_lr and pan).

  Forward model ``H x = (bilinear-antialiased decimation of x, sum_b w_b x_b)`` with "adjoint"
  ``(bilinear x r upsampling, w y)``; ``iterations`` MM steps from zero. ``weights`` default to the
  toolbox's table for the band count (8: WV3, 159: PRISMA). The toolbox reads the y-part of the
  gradient field from channels ``[4, B + 4)`` in the divergence; that defect is the default and
  ``fix_channel_offset=True`` reads ``[B, 2B)``. ``hs_up`` is validated but unused.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); validated but unused.
    weights: PAN spectral weights ``(B,)``; default: the toolbox's table for ``B``.
    alpha: TV weight.
    lam: regularisation weight.
    c: majorisation constant.
    iterations: MM steps.
    fix_channel_offset: read the y-gradients from ``[B, 2B)`` instead of ``[4, B + 4)``.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape, ``weights``
      are missing for ``B`` or not ``(B,)``, or ``B`` is too small for the official offset.
  """
  lr, p, _, squeeze = _inputs(hs_lr, pan, ratio, hs_up, interpolate=False)
  bands = lr.shape[-1]
  offset = bands if fix_channel_offset else TV_OFFICIAL_CHANNEL_OFFSET
  if offset + bands > 2 * bands:
    raise ValueError(f"hs_lr: TV with the official channel offset needs >= {offset} bands, got "
                     f"{bands}; pass fix_channel_offset=True")
  w = _tv_weights(weights, bands, lr.dtype)
  hr_size, lr_size = p.shape[1:3], lr.shape[1:3]

  def forward(x):
    return (resample.resize_bilinear(x, lr_size, antialias=True, scale=float(ratio)),
            jnp.sum(w * x, axis=-1, keepdims=True))

  def adjoint(y_hs, y_pan):
    return resample.resize_bilinear(y_hs, hr_size, antialias=False, scale=1.0 / ratio) + w * y_pan

  def grad(x):
    return jnp.concatenate([_forward_diff(x, 2), _forward_diff(x, 1)], axis=-1)

  def div(z):
    return (_forward_diff_adjoint(z[..., :bands], 2)
            + _forward_diff_adjoint(z[..., offset:offset + bands], 1))

  def step(_, state):
    x, z = state
    hs_x, pan_x = forward(x)
    b = alpha * x + adjoint(lr - hs_x, p - pan_x)
    magnitude = _safe_sqrt(_forward_diff(x, 2) ** 2 + _forward_diff(x, 1) ** 2)
    z = (grad(b) + grad(div(z))) / jnp.tile(2.0 * alpha / lam * magnitude + c, 2)
    return (b - div(z)) / alpha, z

  x0 = jnp.zeros(p.shape[:3] + (bands,), lr.dtype)
  x, _ = jax.lax.fori_loop(0, iterations, step, (x0, jnp.zeros(x0.shape[:3] + (2 * bands,),
                                                               lr.dtype)))
  return _out(x, squeeze)


def _tile_starts(size: int, tile: int, overlap: int) -> np.ndarray:
  """LR tile origins of SR-D: stride ``tile - overlap``, the last tile shifted back to fit."""
  stride = tile - overlap
  count = math.ceil((size - overlap) / stride)
  starts = np.arange(count) * stride
  if (size - overlap) % stride:
    starts[-1] -= stride - (size - overlap) % stride
  return starts


def _tiles(x, starts_r, starts_c, size: int):
  """``(h, w, B)`` -> ``(T, size, size, B)`` tiles at the given origins (row-major tile order)."""
  rows = starts_r[:, None] + np.arange(size)
  cols = starts_c[:, None] + np.arange(size)
  t = x[rows[:, None, :, None], cols[None, :, None, :]]
  return t.reshape((-1, size, size, x.shape[-1]))


def _omp(atoms, target, first, n_atoms: int):
  """The toolbox's OMP on multi-band atoms ``(T, p, p, B)``: per-band coefficients on a shared
  support; the first atom is forced, later ones maximise ``|<atom, residual>|`` over all bands;
  a band's coefficients are its normal-equation solution when ``det(D'D) > 0.1``, else 0; stops
  when the residual energy is 0. Returns the support ``(n_atoms,)`` and coefficients
  ``(n_atoms, B)`` (zero beyond the atoms used).
  """
  hi = jax.lax.Precision.HIGHEST

  def step(t, state):
    support, coef, residual = state
    active = jnp.sum(residual ** 2) > 0
    best = jnp.argmax(jnp.abs(jnp.einsum("thwb,hwb->t", atoms, residual, precision=hi)))
    cand = support.at[t].set(jnp.where(t == 0, first, best).astype(jnp.int32))
    used = (jnp.arange(n_atoms) <= t).astype(target.dtype)
    chosen = atoms[cand] * used[:, None, None, None]
    gram = jnp.einsum("ihwb,jhwb->bij", chosen, chosen, precision=hi) + jnp.diag(1.0 - used)
    ok = jnp.linalg.det(gram) > 0.1
    gram = jnp.where(ok[:, None, None], gram, jnp.eye(n_atoms, dtype=gram.dtype))
    rhs = jnp.einsum("ihwb,hwb->bi", chosen, target, precision=hi)
    c = jnp.where(ok[:, None], jnp.linalg.solve(gram, rhs[..., None])[..., 0], 0.0).T
    fit = target - jnp.einsum("ihwb,ib->hwb", chosen, c, precision=hi)
    return (jnp.where(active, cand, support), jnp.where(active, c, coef),
            jnp.where(active, fit, residual))

  init = (jnp.zeros(n_atoms, jnp.int32), jnp.zeros((n_atoms, target.shape[-1]), target.dtype),
          target)
  support, coef, _ = jax.lax.fori_loop(0, n_atoms, step, init)
  return support, coef


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "tile", "overlap", "n_atoms",
                                             "fix_tile_index"))
def sr_d(hs_lr, pan, ratio: int, *, hs_up=None, tile: int = 7, overlap: int = 4,
         n_atoms: int = 10, fix_tile_index: bool = False):
  """SR-D: sparse representation of the injected details over a PAN-detail dictionary.

  LR tiles of ``tile`` px (stride ``tile - overlap``) of the MTF-reduced PAN details form the
  dictionary, the matching HR tiles (``ratio * tile`` px) of the PAN details its HR twin; each
  tile's MS details are coded by :func:`_omp` and rebuilt with the HR atoms, overlaps averaged.
  The toolbox never advances its tile counter, so every tile is coded with tile 0's target and
  forced atom (one code pasted on every tile): that defect is the default; ``fix_tile_index=True``
  codes each tile with its own target and forced atom. Atom choice is discrete (argmax), so the
  output is differentiable only for a fixed support.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); default: the toolbox's ideal
      interpolator of ``hs_lr``.
    tile: LR tile side.
    overlap: overlap of adjacent LR tiles.
    n_atoms: OMP atoms per tile.
    fix_tile_index: code each tile with its own target and forced atom.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape, or the LR sides are smaller than ``tile``.
  """
  _, p, ms, squeeze = _inputs(hs_lr, pan, ratio, hs_up)
  lr_size = (ms.shape[1] // ratio, ms.shape[2] // ratio)
  if min(lr_size) < tile:
    raise ValueError(f"hs_lr: SR-D needs LR sides >= tile ({tile}), got {lr_size}")
  taps = wald.toolbox_taps(wald.gen_mtf(ratio))
  bands = (p - _mean(p)) / _std(p) * _std(ms) + _mean(ms)
  ms_d = wald.decimate(ms - wald.depthwise_filter(ms, taps), ratio)
  pan_d = bands - resample.imresize(
      wald.decimate(wald.depthwise_filter(bands, taps), ratio), ratio)
  pan_lr_d = wald.decimate(wald.depthwise_filter(pan_d, taps), ratio)
  starts_r, starts_c = (_tile_starts(n, tile, overlap) for n in lr_size)
  hr_r, hr_c, hr_tile = starts_r * ratio, starts_c * ratio, tile * ratio

  def one(pan_d, pan_lr_d, ms_d):
    atoms_lr = _tiles(pan_lr_d, starts_r, starts_c, tile)
    atoms_hr = _tiles(pan_d, hr_r, hr_c, hr_tile)
    targets = _tiles(ms_d, starts_r, starts_c, tile)
    if fix_tile_index:
      support, coef = jax.vmap(lambda y, k: _omp(atoms_lr, y, k, n_atoms))(
          targets, jnp.arange(targets.shape[0]))
    else:
      support, coef = _omp(atoms_lr, targets[0], 0, n_atoms)
      support = jnp.broadcast_to(support, (targets.shape[0],) + support.shape)
      coef = jnp.broadcast_to(coef, (targets.shape[0],) + coef.shape)
    patches = jnp.einsum("tihwb,tib->thwb", atoms_hr[support], coef,
                         precision=jax.lax.Precision.HIGHEST)
    rows = hr_r[:, None] + np.arange(hr_tile)
    cols = hr_c[:, None] + np.arange(hr_tile)
    index = (rows[:, None, :, None], cols[None, :, None, :])
    patches = patches.reshape((len(hr_r), len(hr_c), hr_tile, hr_tile, patches.shape[-1]))
    count = np.zeros(pan_d.shape[:2])
    np.add.at(count, index, 1.0)
    return jnp.zeros_like(pan_d).at[index].add(patches) / count[..., None]

  return _out(ms + jax.vmap(one)(pan_d, pan_lr_d, ms_d), squeeze)


def _box_blur_spectrum(shape: tuple[int, int], half: int, centre: tuple[int, int]) -> np.ndarray:
  """FFT of a normalised ``(2 half + 1)^2`` box placed at ``centre`` and ifftshifted."""
  box = np.zeros(shape)
  box[centre[0] - half:centre[0] + half + 1, centre[1] - half:centre[1] + half + 1] = 1.0
  return np.fft.fft2(np.fft.ifftshift(box / box.sum()))


def _circular(x, spectrum):
  """Circular filtering of ``(H, W, C)`` by a spectrum ``(H, W)`` or ``(H, W, 1)`` (FFT)."""
  spectrum = spectrum if spectrum.ndim == 3 else spectrum[..., None]
  return jnp.real(jnp.fft.ifft2(jnp.fft.fft2(x, axes=(0, 1)) * spectrum, axes=(0, 1)))


def _first_difference(n: int) -> np.ndarray:
  """``(n - 1, n)`` first-difference matrix (rows ``e_i - e_{i+1}``)."""
  return np.eye(n - 1, n) - np.eye(n - 1, n, 1)


def _periodic_difference(shape: tuple[int, int], axis: int) -> np.ndarray:
  """Circular first-difference kernel: 1 at the origin, -1 at the last index along ``axis``."""
  kernel = np.zeros(shape)
  kernel[0, 0] = 1.0
  kernel[(0, -1) if axis == 1 else (-1, 0)] = -1.0
  return kernel


@functools.partial(jax.jit, static_argnames=("p", "reflected"))
def vca(data, p: int, key, *, reflected: bool = True):
  """Vertex component analysis with the projective projection.

  The toolbox calls it with a user SNR of 0, so the data are projected on the ``p - 1`` principal
  directions of their covariance. ``data`` is ``(L, N)``; returns endmembers ``(L, p)``.

  The toolbox's port negates the projection (``x_p = -U^T (R - m)``) and builds the endmembers
  from it, which reflects them through the data mean (``2 m - e``): ``reflected=True`` (default)
  reproduces that; ``False`` returns the selected pixels' projections as in the VCA paper.

  Args:
    data: ``(L, N)``: L bands, N pixels.
    p: number of endmembers.
    key: PRNG key of the random directions.
    reflected: reflect the endmembers through the data mean (toolbox behaviour).

  Returns:
    Endmembers, ``(L, p)``.
  """
  mean = jnp.mean(data, axis=1, keepdims=True)
  corr = data @ data.T / data.shape[1]
  u = jnp.linalg.svd(corr - mean @ mean.T)[0][:, :p - 1]
  proj = -u.T @ (data - mean)
  projected = (u @ proj if reflected else -u @ proj) + mean
  y = jnp.concatenate([proj, jnp.full((1, data.shape[1]), jnp.max(jnp.linalg.norm(proj, axis=0)))])

  def pick(i, state):
    a, index = state
    w = jax.random.uniform(jax.random.fold_in(key, i), (p,), data.dtype)
    f = w - a @ (jnp.linalg.pinv(a) @ w)
    j = jnp.argmax(jnp.abs((f / jnp.linalg.norm(f)) @ y))
    return a.at[:, i].set(y[:, j]), index.at[i].set(j.astype(jnp.int32))

  a0 = jnp.zeros((p, p), data.dtype).at[-1, 0].set(1.0)
  _, index = jax.lax.fori_loop(0, p, pick, (a0, jnp.zeros(p, jnp.int32)))
  return projected[:, index]


def _hysure_response(ms, pan, ratio, overlap, p, lam_r, lam_b, size, shift):
  """HySURE's sensor estimation on one image: spectral response ``R (B,)``, blur spectrum
  ``(H, W)`` and the SVD denoising basis ``V (B, p)``."""
  (h, w, bands), (hh, ww) = ms.shape, pan.shape[:2]
  pan_blur = _circular(pan, _box_blur_spectrum((hh, ww), 4, (hh // 2, ww // 2)))
  pan_blur = pan_blur[shift::ratio, shift::ratio].reshape(-1)
  ms_blur = _circular(ms, _box_blur_spectrum((h, w), round(4 / ratio), (round(h / 2),
                                                                        round(w / 2))))
  inter = ms_blur[..., :overlap].reshape(-1, overlap).T
  diff = _first_difference(overlap)
  r = jnp.linalg.solve(inter @ inter.T + lam_r * (diff.T @ diff), inter @ pan_blur)
  response = jnp.zeros(bands, ms.dtype).at[:overlap].set(r)
  basis = jnp.linalg.svd(ms.reshape(-1, bands).T, full_matrices=False)[0][:, :p]
  denoised = ms.reshape(-1, bands) @ (basis @ basis.T)
  target = denoised @ response                                        # R Y_h at the samples
  lo, hi = (size - 1) // 2, size // 2
  rows = np.arange(shift, hh, ratio)
  cols = np.arange(shift, ww, ratio)
  keep_r = rows[(rows >= lo) & (rows < hh - lo - 1)]
  keep_c = cols[(cols >= lo) & (cols < ww - lo - 1)]
  offsets = np.arange(-lo, hi + 1)
  patches = pan[..., 0][(keep_r[:, None, None, None] + offsets[None, None, :, None]),
                        (keep_c[None, :, None, None] + offsets[None, None, None, :])]
  patches = patches.reshape(-1, size * size)
  target = target.reshape(h, w)[(keep_r - shift) // ratio][:, (keep_c - shift) // ratio]
  diff = _first_difference(size)
  smooth = np.kron(diff, np.eye(size)).T @ np.kron(diff, np.eye(size)) + \
      np.kron(np.eye(size), diff).T @ np.kron(np.eye(size), diff)
  kernel = jnp.linalg.solve(patches.T @ patches + lam_b * smooth, patches.T @ target.reshape(-1))
  blur = jnp.zeros((hh, ww), ms.dtype).at[hh // 2 - lo:hh // 2 + hi + 1,
                                          ww // 2 - lo:ww // 2 + hi + 1].set(
      kernel.reshape(size, size))
  volume = jnp.sum(blur)
  return response / volume, jnp.fft.fft2(jnp.fft.ifftshift(blur / volume)), basis


@validated("hs_lr", "pan", "hs_up")
@functools.partial(jax.jit, static_argnames=("ratio", "overlap", "p", "iterations",
                                             "vca_runs", "reflected_vca", "offset"))
def hysure(hs_lr, pan, ratio: int, *, hs_up=None, key=None, overlap: int | None = None,
           p: int = 10, iterations: int = 200, vca_runs: int = 20, lam_r: float = 10.0,
           lam_b: float = 10.0, lam_phi: float = 1e-2, lam_m: float = 1.0, mu: float = 0.05,
           reflected_vca: bool = True, offset: int = 1):
  """HySURE: subspace-regularised fusion with estimated spectral response and blur (SALSA/ADMM).

  Data are divided by the image maximum of ``hs_lr``. The PAN's spectral response ``R`` is
  estimated by ridge regression (first-difference penalty ``lam_r``) on strongly blurred data,
  restricted to the first ``overlap`` bands (default all; PRISMA's dataset uses 25, the bands
  below 700 nm); a 10x10 blur by regularised regression of ``R Y_h`` on PAN patches (``lam_b``);
  the subspace ``E`` (``p`` columns) is the largest-volume result of ``vca_runs`` VCA draws from
  ``key`` (the toolbox draws from the torch RNG, so no two runs agree); then ``iterations``
  SALSA steps with isotropic vector TV (``lam_phi``), PAN fidelity ``lam_m`` and penalty ``mu``;
  the result is projected on the first ``p`` left singular vectors of ``hs_lr``. The model puts
  the LR samples at ``offset`` in each ``ratio`` block: 1 in the toolbox, although its own Wald
  protocol decimates at ``ratio // 2`` (``offset=ratio // 2`` registers them). ``reflected_vca``:
  see :func:`vca`. ``hs_up`` is unused.

  Args:
    hs_lr: LR hyperspectral cube ``(h, w, B)`` or ``(N, h, w, B)``.
    pan: PAN ``(r h, r w)``, ``(r h, r w, 1)`` or ``(N, r h, r w, 1)``.
    ratio: PAN / HS resolution ratio ``r``.
    hs_up: upsampled cube ``(r h, r w, B)`` (batched like ``hs_lr``); unused.
    key: PRNG key of the VCA draws (default ``jax.random.key(0)``).
    overlap: bands used for the spectral response (default all).
    p: subspace dimension.
    iterations: SALSA steps.
    vca_runs: VCA draws.
    lam_r: response regularisation.
    lam_b: blur regularisation.
    lam_phi: vector-TV weight.
    lam_m: PAN fidelity weight.
    mu: ADMM penalty.
    reflected_vca: see :func:`vca`.
    offset: position of the LR samples in each ``ratio`` block.

  Returns:
    Fused cube ``(r h, r w, B)``, batched like ``hs_lr``.

  Raises:
    ValueError: if ``ratio`` is invalid, the inputs are not HS/PAN cubes of matching sizes, or
      ``hs_up`` has the wrong shape, or ``overlap``, ``p`` or ``offset`` is out of range.
  """
  lr, p_img, _, squeeze = _inputs(hs_lr, pan, ratio, hs_up, interpolate=False)
  n, h, w, bands = lr.shape
  overlap = bands if overlap is None else overlap
  if not 2 <= overlap <= bands:
    raise ValueError(f"overlap: expected 2 <= overlap <= {bands} bands, got {overlap}")
  if not 1 <= p <= bands:
    raise ValueError(f"hs_lr: HySURE's subspace of p = {p} needs >= {p} bands, got {bands}")
  if not 0 <= offset < ratio:
    raise ValueError(f"offset: expected 0 <= offset < ratio = {ratio}, got {offset}")
  key = jax.random.key(0) if key is None else key
  shift, size = offset, 10

  def one(ms, pan, key):
    scale = jnp.max(ms)
    ms, pan = ms / scale, pan / scale
    response, fb, basis = _hysure_response(ms, pan, ratio, overlap, p, lam_r, lam_b, size, shift)
    hh, ww = pan.shape[:2]
    fdh, fdv = (np.fft.fft2(_periodic_difference((hh, ww), axis)) for axis in (1, 0))
    denom = jnp.abs(fb) ** 2 + np.abs(fdh) ** 2 + np.abs(fdv) ** 2 + 1.0
    mask = np.zeros((hh, ww, 1))
    mask[shift::ratio, shift::ratio] = 1.0
    up = jnp.zeros((hh, ww, bands), ms.dtype).at[shift::ratio, shift::ratio].set(ms)
    samples = ms.reshape(-1, bands).T
    runs = jax.vmap(lambda k: vca(samples, p, k, reflected=reflected_vca))(
        jax.random.split(key, vca_runs))
    volumes = jnp.abs(jnp.linalg.det(jnp.swapaxes(runs, 1, 2) @ runs))
    e = runs[jnp.argmax(volumes)]
    eye = jnp.eye(p, dtype=ms.dtype)
    ie = e.T @ e + mu * eye
    ire = lam_m * e.T @ jnp.outer(response, response) @ e + mu * eye
    yyh = up @ e
    yym = pan * (e.T @ response)
    spectra = (jnp.conj(fb) / denom, 1.0 / denom, np.conj(fdh) / denom, np.conj(fdv) / denom)

    def step(_, state):
      _, v, d = state
      x = sum(_circular(vi + di, s) for vi, di, s in zip(v, d, spectra, strict=True))
      nu = (_circular(x, fb) - d[0], x - d[1], _circular(x, fdh) - d[2],
            _circular(x, fdv) - d[3])
      v1 = jnp.linalg.solve(ie, (mu * nu[0] + yyh).reshape(-1, p).T).T.reshape(nu[0].shape)
      v1 = v1 * mask + nu[0] * (1.0 - mask)
      v2 = jnp.linalg.solve(ire, (mu * nu[1] + lam_m * yym).reshape(-1, p).T).T.reshape(x.shape)
      norm = _safe_sqrt(jnp.sum(nu[2] ** 2 + nu[3] ** 2, -1, keepdims=True))
      shrink = jnp.maximum(norm - lam_phi / mu, 0.0)
      shrink = shrink / (shrink + lam_phi / mu)
      v = (v1, v2, shrink * nu[2], shrink * nu[3])
      return x, v, tuple(vi - ni for vi, ni in zip(v, nu, strict=True))

    zeros = jnp.zeros((hh, ww, p), ms.dtype)
    x, _, _ = jax.lax.fori_loop(0, iterations, step, (zeros, (zeros,) * 4, (zeros,) * 4))
    return (x @ e.T) @ (basis @ basis.T) * scale

  return _out(jax.vmap(one)(lr, p_img, jax.random.split(key, n)), squeeze)


METHODS = {"EXP": exp, "GSA": gsa, "BT-H": bt_h, "BDSD-PC": bdsd_pc, "PRACS": pracs,
           "AWLP": awlp, "MTF-GLP-FS": mtf_glp_fs, "MTF-GLP-HPM": mtf_glp_hpm,
           "MTF-GLP-HPM-R": mtf_glp_hpm_r, "MF": mf, "SR-D": sr_d, "TV": tv, "HySURE": hysure}
