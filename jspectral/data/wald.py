"""Wald reduced-resolution and full-resolution protocols of the hyperspectral pansharpening toolbox.

Reference: M. Ciotola, G. Guarino, G. Vivone, G. Poggi, J. Chanussot, A. Plaza, G. Scarpa,
"Hyperspectral Pansharpening: Critical Review, Tools and Future Perspectives", arXiv 2407.01355;
official code github.com/matciotola/hyperspectral_pansharpening_toolbox (commit 1b2ea9b).

What lives here:
  * filter design (NumPy, float64, static): the MTF-matched Gaussian FIR of the toolbox
    (:func:`gen_mtf`, :func:`gen_mtf_pan`, :func:`lp_filter_gauss_kernel`), the Lanczos kernels of
    the DIP/DHP prior downsamplers and the Starck-Murtagh wavelet filters;
  * pure JAX operators on bands-last cubes ``(H, W, C)`` or ``(N, H, W, C)``: depthwise filtering
    (:func:`depthwise_filter`, :func:`mtf_filter`), centre-phase decimation (:func:`decimate`), the
    23-tap polynomial and the ideal (sinc x3 then 23-tap x2) interpolators;
  * the protocols: :func:`rr_degradation` (Wald) and :func:`fr_upsample` (the FR ``I_MS``).

Toolbox quirks reproduced by default (options in brackets): the MTF taps are not renormalised
(they sum to 0.997 for r 6); uint16 storage truncates instead of rounding (``quantize="round"``);
the RR ``I_MS`` is interpolated from the untruncated float HS-LR; the 23-tap interpolator uses
circular padding; the x3 sinc stage needs the LR side >= 31 px (a ValueError, not silent padding).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jspectral.metrics.image import as_float_array

UINT16_MAX_EXCLUSIVE = 2.0 ** 16
# Nyquist gains used by the toolbox for PRISMA (the HS gain is 0.3 for every sensor name).
HS_NYQUIST_GAIN = 0.3
PAN_NYQUIST_GAIN = {"PRISMA": 0.2}
PAN_NYQUIST_GAIN_OTHER = 0.15
# Half-band coefficients c0..c11 of the 23-tap polynomial interpolator (times 2 below).
_CDF23_HALF = np.array([0.5, 0.305334091185, 0.0, -0.072698593239, 0.0, 0.021809577942, 0.0,
                        -0.005192756653, 0.0, 0.000807762146, 0.0, -0.000060081482])

_PAD_MODES = {"replicate": "edge", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric",
              "circular": "wrap", "wrap": "wrap", "zero": "constant", "constant": "constant"}


# ------------------------------------------------------------------------------------------------
# Filter design (NumPy, float64)
# ------------------------------------------------------------------------------------------------

def _gaussian(size: int, sigma: float) -> np.ndarray:
  """MATLAB ``fspecial('gaussian')``: tiny entries zeroed, normalised to sum 1."""
  half = (size - 1) / 2.0
  y, x = np.ogrid[-half:half + 1, -half:half + 1]
  g = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
  g[g < np.finfo(g.dtype).eps * g.max()] = 0.0
  return g / g.sum()


def _frequency_sampling(response: np.ndarray) -> np.ndarray:
  """MATLAB ``fsamp2``: the FIR whose frequency samples are ``response`` (centred grid)."""
  shifted = np.rot90(np.fft.fftshift(np.rot90(response, 2)), 2)
  return np.real(np.rot90(np.fft.fftshift(np.fft.ifft2(shifted)), 2))


def _radial_kaiser(size: int, beta: float = 0.5) -> np.ndarray:
  """A 1-D Kaiser window spun around the centre (linear interpolation on the radius, 0 outside)."""
  t = np.arange(-(size - 1) / 2, (size - 1) / 2 + 1) * 2 / (size - 1)
  t1, t2 = np.meshgrid(t, t)
  radius = np.sqrt(t1 ** 2 + t2 ** 2)
  outside = (radius < t[0]) | (radius > t[-1])
  radius[outside] = 0.0
  window = np.interp(radius.ravel(), t, np.kaiser(size, beta)).reshape(radius.shape)
  window[outside] = 0.0
  return window


def nyquist_kernel(gain: float, ratio: int, kernel_size: int = 41, *,
                   sigma_span: int | None = None) -> np.ndarray:
  """The toolbox's MTF-matched FIR: a Gaussian frequency response with ``gain`` at Nyquist.

  Args:
    gain: amplitude of the response at the LR Nyquist frequency ``1/(2 ratio)``.
    ratio: resolution ratio.
    kernel_size: N (odd), the kernel is N x N.
    sigma_span: the span used in the std formula; ``None`` = ``N - 1`` (``gen_mtf``), ``N`` is
      what ``LPfilterGauss`` uses.

  Returns:
    ``(N, N)`` float64 taps, not renormalised (they sum to slightly less than 1).
  """
  span = kernel_size - 1 if sigma_span is None else sigma_span
  fcut = 1.0 / ratio
  sigma = math.sqrt((span * fcut / 2) ** 2 / (-2 * math.log(gain)))
  response = _gaussian(kernel_size, sigma)
  response = response / response.max()
  return np.real(_frequency_sampling(response) * _radial_kaiser(kernel_size))


def gen_mtf(ratio: int, kernel_size: int = 41, gain: float = HS_NYQUIST_GAIN) -> np.ndarray:
  """HS MTF kernel (``Utils/spectral_tools.gen_mtf``; the same gain 0.3 for every band).

  Args:
    ratio: resolution ratio.
    kernel_size: kernel side N (odd).
    gain: amplitude at the LR Nyquist frequency.

  Returns:
    ``(N, N)`` float64 taps (:func:`nyquist_kernel`).
  """
  return nyquist_kernel(gain, ratio, kernel_size)


def gen_mtf_pan(ratio: int, kernel_size: int = 41, sensor: str = "PRISMA") -> np.ndarray:
  """PAN MTF kernel (gain 0.2 for PRISMA, 0.15 otherwise).

  Args:
    ratio: resolution ratio.
    kernel_size: kernel side N (odd).
    sensor: sensor name selecting the Nyquist gain.

  Returns:
    ``(N, N)`` float64 taps (:func:`nyquist_kernel`).
  """
  return nyquist_kernel(PAN_NYQUIST_GAIN.get(sensor, PAN_NYQUIST_GAIN_OTHER), ratio, kernel_size)


def lp_filter_gauss_kernel(ratio: int) -> np.ndarray:
  """Kernel of ``LPfilterGauss`` (BT-H, MTF-GLP-HPM): 41 taps, std from N instead of N - 1.

  Args:
    ratio: resolution ratio.

  Returns:
    ``(41, 41)`` float64 taps.
  """
  return nyquist_kernel(HS_NYQUIST_GAIN, ratio, 41, sigma_span=41)


def lanczos2_kernel(factor: int, phase: float, kernel_width: int, support: int = 2) -> np.ndarray:
  """Separable Lanczos kernel of the DIP/DHP downsamplers (size ``kernel_width - 1`` at phase 0.5).

  ``lanczos2_kernel(6, 0.5, 25)`` is the DIP-HyperKite 24x24 kernel, ``(2, 0, 9)`` the DHP one.

  Args:
    factor: downsampling factor.
    phase: 0.5 (half-pixel) or 0.
    kernel_width: nominal kernel width.
    support: Lanczos support ``a``.

  Returns:
    ``(K, K)`` float64 taps summing to 1, ``K = kernel_width - 1`` at phase 0.5, else
    ``kernel_width``.
  """
  size = kernel_width - 1 if phase == 0.5 else kernel_width
  centre = (kernel_width + 1) / 2.0
  idx = np.arange(1, size + 1, dtype=np.float64)
  dist = np.abs(idx + (0.5 if phase == 0.5 else 0.0) - centre) / factor
  safe = np.where(dist == 0, 1.0, dist)
  taps = np.where(dist == 0, 1.0, support * np.sin(np.pi * safe) * np.sin(np.pi * safe / support)
                  / (np.pi ** 2 * safe ** 2))
  kernel = np.outer(taps, taps)
  return kernel / kernel.sum()


def starck_murtagh_filters() -> np.ndarray:
  """Rows ``[lowpass, highpass, reconstruction lowpass, reconstruction highpass]``, times sqrt 2.

  Values are float32-rounded like the toolbox's torch tensors, returned as float64.

  Returns:
    ``(4, 5)`` float64.
  """
  h = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / np.float32(16.0)
  delta = np.array([0.0, 0.0, 1.0, 0.0, 0.0], np.float32)
  bank = np.float32(math.sqrt(2.0)) * np.stack([h, delta - h, h, delta + h])
  return bank.astype(np.float64)


def toolbox_taps(kernel: np.ndarray) -> np.ndarray:
  """The toolbox casts designed kernels to float32 before filtering (``mtf_kernel_to_torch``).

  Args:
    kernel: float64 taps, any shape.

  Returns:
    The taps rounded to float32, as float64.
  """
  return np.asarray(kernel, np.float32).astype(np.float64)


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------

def as_batch(x, name: str) -> tuple[jax.Array, bool]:
  """Adds a batch axis to a single cube.

  Args:
    x: ``(H, W, C)`` or ``(N, H, W, C)``.
    name: the argument's name for error messages.

  Returns:
    ``(x (N, H, W, C), squeeze)``; ``squeeze`` says a batch axis was added.
  """
  x = as_float_array(x, name)
  if x.ndim == 3:
    return x[None], True
  if x.ndim == 4:
    return x, False
  raise ValueError(f"{name}: expected a bands-last cube (H, W, C) or batch (N, H, W, C), "
                   f"got shape {x.shape}")


def as_pan_batch(pan, name: str = "pan") -> tuple[jax.Array, bool]:
  """PAN as a single-band batch; multi-band inputs are refused.

  Args:
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.
    name: the argument's name for error messages.

  Returns:
    ``(pan (N, H, W, 1), squeeze)``; ``squeeze`` says a batch axis was added.
  """
  pan = as_float_array(pan, name)
  if pan.ndim == 2:
    return pan[None, :, :, None], True
  if pan.ndim in (3, 4) and pan.shape[-1] != 1:
    raise ValueError(f"{name}: expected a single-band image (H, W), (H, W, 1) or (N, H, W, 1), "
                     f"got shape {pan.shape} with {pan.shape[-1]} bands")
  if pan.ndim == 3:
    return pan[None], True
  if pan.ndim == 4:
    return pan, False
  raise ValueError(f"{name}: expected (H, W), (H, W, 1) or (N, H, W, 1), got shape {pan.shape}")


def check_ratio(ratio) -> int:
  """Validates a resolution ratio.

  Args:
    ratio: a positive integer.

  Returns:
    ``ratio`` as a Python int (a ``ValueError`` otherwise).
  """
  if not isinstance(ratio, int | np.integer) or ratio < 1:
    raise ValueError(f"ratio: expected a positive integer, got {ratio!r}")
  return int(ratio)


def check_hs_pan(hs_lr: jax.Array, pan: jax.Array, ratio: int) -> None:
  """Raises a ValueError unless ``pan`` is ``ratio`` times ``hs_lr`` in both spatial sizes.

  Args:
    hs_lr: ``(N, h, w, C)``.
    pan: ``(N, h * ratio, w * ratio, ...)``.
    ratio: resolution ratio.
  """
  if hs_lr.shape[0] != pan.shape[0]:
    raise ValueError(f"pan: batch size {pan.shape[0]} differs from hs_lr's {hs_lr.shape[0]}")
  if pan.shape[1:3] != (hs_lr.shape[1] * ratio, hs_lr.shape[2] * ratio):
    raise ValueError(f"pan: expected spatial size {ratio} x hs_lr's {hs_lr.shape[1:3]} = "
                     f"{(hs_lr.shape[1] * ratio, hs_lr.shape[2] * ratio)}, got {pan.shape[1:3]}")


# ------------------------------------------------------------------------------------------------
# Pure JAX operators
# ------------------------------------------------------------------------------------------------

def pad_hw(x: jax.Array, top: int, bottom: int, left: int, right: int, mode: str) -> jax.Array:
  """Pads the spatial axes of ``(N, H, W, C)`` with a PyTorch/NumPy-named mode.

  Args:
    x: ``(N, H, W, C)``.
    top: rows added above.
    bottom: rows added below.
    left: columns added on the left.
    right: columns added on the right.
    mode: ``replicate``/``edge``, ``reflect``, ``symmetric``, ``circular``/``wrap`` or
      ``zero``/``constant``.

  Returns:
    ``(N, H + top + bottom, W + left + right, C)``.
  """
  if mode not in _PAD_MODES:
    raise ValueError(f"mode: expected one of {sorted(_PAD_MODES)}, got {mode!r}")
  return jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=_PAD_MODES[mode])


def correlate_valid(x: jax.Array, kernel, stride: int = 1) -> jax.Array:
  """Depthwise valid correlation (at ``Precision.HIGHEST``).

  Args:
    x: ``(N, H, W, C)``.
    kernel: ``(kh, kw)`` taps shared by every band, or ``(kh, kw, C)`` per band.
    stride: spatial stride.

  Returns:
    ``(N, (H - kh) // stride + 1, (W - kw) // stride + 1, C)``.
  """
  channels = x.shape[-1]
  kernel = jnp.asarray(kernel, dtype=x.dtype)
  if kernel.ndim == 2:
    kernel = jnp.broadcast_to(kernel[:, :, None], kernel.shape + (channels,))
  return jax.lax.conv_general_dilated(
      x, kernel[:, :, None, :], (stride, stride), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
      precision=jax.lax.Precision.HIGHEST)


def depthwise_filter(x: jax.Array, kernel, mode: str = "replicate") -> jax.Array:
  """Same-size depthwise filtering with the given padding (PyTorch ``padding='same'`` split).

  Kernels are symmetric here, so correlation = convolution.

  Args:
    x: ``(N, H, W, C)``.
    kernel: ``(kh, kw)`` or ``(kh, kw, C)`` taps.
    mode: a :func:`pad_hw` mode, or ``"valid"`` to skip the padding.

  Returns:
    ``(N, H, W, C)`` (smaller with ``"valid"``).
  """
  kh, kw = np.shape(kernel)[:2]
  if mode != "valid":
    x = pad_hw(x, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, mode)
  return correlate_valid(x, kernel)


@functools.partial(jax.jit, static_argnames=("ratio", "kernel_size", "gain", "mode"))
def mtf_filter(x, ratio: int, *, kernel_size: int = 41, gain: float = HS_NYQUIST_GAIN,
               mode: str = "replicate") -> jax.Array:
  """The toolbox's ``mtf``: depthwise MTF low-pass, replicate padding, same size (bands-last).

  Args:
    x: ``(H, W, C)`` or ``(N, H, W, C)``.
    ratio: resolution ratio.
    kernel_size: kernel side.
    gain: amplitude at the LR Nyquist frequency.
    mode: a :func:`pad_hw` mode.

  Returns:
    Same shape as ``x``.
  """
  xb, squeeze = as_batch(x, "x")
  y = depthwise_filter(xb, toolbox_taps(gen_mtf(ratio, kernel_size, gain)), mode)
  return y[0] if squeeze else y


def decimate(x: jax.Array, ratio: int, offset: int | None = None) -> jax.Array:
  """Keeps every ``ratio``-th pixel from ``offset`` (default ``ratio // 2``, nearest-exact).

  Args:
    x: ``(N, H, W, C)``.
    ratio: decimation factor.
    offset: first kept row and column.

  Returns:
    ``(N, ceil((H - offset) / ratio), ceil((W - offset) / ratio), C)``.
  """
  start = ratio // 2 if offset is None else offset
  return x[:, start::ratio, start::ratio, :]


def _filter_along(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
  """Valid 1-D correlation of ``(N, H, W, C)`` along spatial ``axis`` (1 = H, 2 = W)."""
  kernel = taps[:, None] if axis == 1 else taps[None, :]
  return correlate_valid(x, kernel)


@functools.partial(jax.jit, static_argnames=("ratio",))
def interp23tap(x, ratio: int) -> jax.Array:
  """The 23-tap polynomial interpolator (``interp23tap_torch``), ratio a power of two.

  Zero insertion (first stage at odd positions, later stages at even ones), then the symmetric
  23-tap kernel along W and H with circular padding of 11.

  Args:
    x: ``(h, w, C)`` or ``(N, h, w, C)``.
    ratio: a power of two.

  Returns:
    ``(h * ratio, w * ratio, C)`` (batched like ``x``).
  """
  ratio = check_ratio(ratio)
  if ratio & (ratio - 1):
    raise ValueError(f"ratio: interp23tap needs a power of two, got {ratio}")
  xb, squeeze = as_batch(x, "x")
  taps = 2.0 * np.concatenate([_CDF23_HALF[:0:-1], _CDF23_HALF])
  for stage in range(ratio // 2):
    n, h, w, c = xb.shape
    up = jnp.zeros((n, 2 * h, 2 * w, c), xb.dtype)
    up = up.at[:, 1::2, 1::2].set(xb) if stage == 0 else up.at[:, ::2, ::2].set(xb)
    up = _filter_along(pad_hw(up, 0, 0, 11, 11, "circular"), taps, 2)
    xb = _filter_along(pad_hw(up, 11, 11, 0, 0, "circular"), taps, 1)
  return xb[0] if squeeze else xb


@functools.cache
def _sinc3_taps(half_width: int) -> tuple[np.ndarray, np.ndarray]:
  m = np.arange(-half_width, half_width + 1, dtype=np.float64)
  after = np.sinc(m - 1.0 / 3.0)     # y[3j + 2] from x[j - N ... j + N]
  before = np.sinc(m + 2.0 / 3.0)    # y[3j] from x[j - N - 1 ... j + N - 1]
  return after / after.sum(), before[::-1] / before.sum()


def _interp3x_along(x: jax.Array, axis: int, half_width: int) -> jax.Array:
  after, before = _sinc3_taps(half_width)
  n = half_width
  pads = (n + 1, n, 0, 0) if axis == 1 else (0, 0, n + 1, n)
  xp = pad_hw(x, *pads, mode="symmetric")
  length = x.shape[axis]
  y_after = jax.lax.slice_in_dim(_filter_along(xp, after, axis), 1, 1 + length, axis=axis)
  y_before = jax.lax.slice_in_dim(_filter_along(xp, before, axis), 0, length, axis=axis)
  stacked = jnp.stack([y_before, x, y_after], axis=axis + 1)
  shape = list(x.shape)
  shape[axis] *= 3
  return stacked.reshape(shape)


@functools.partial(jax.jit, static_argnames=("half_width",))
def interp3x(x, half_width: int = 30) -> jax.Array:
  """The x3 sinc interpolator (``interp_3x_2d``): along W, then along H; LR side must be > N.

  Args:
    x: ``(h, w, C)`` or ``(N, h, w, C)``, ``h, w >= half_width + 1``.
    half_width: ``N``, the sinc half width.

  Returns:
    ``(3 h, 3 w, C)`` (batched like ``x``).
  """
  xb, squeeze = as_batch(x, "x")
  if min(xb.shape[1:3]) < half_width + 1:
    raise ValueError(f"x: the x3 sinc interpolator pads {half_width + 1} px symmetrically, so each "
                     f"spatial side must be >= {half_width + 1}; got {xb.shape[1:3]}")
  y = _interp3x_along(_interp3x_along(xb, 2, half_width), 1, half_width)
  return y[0] if squeeze else y


@functools.partial(jax.jit, static_argnames=("ratio",))
def ideal_interpolator(x, ratio: int) -> jax.Array:
  """The toolbox interpolator: 23-tap for powers of two, else (r 6) sinc x3 then 23-tap x2.

  Args:
    x: ``(h, w, C)`` or ``(N, h, w, C)``.
    ratio: a power of two or 6.

  Returns:
    ``(h * ratio, w * ratio, C)`` (batched like ``x``).
  """
  ratio = check_ratio(ratio)
  if ratio & (ratio - 1) == 0:
    return interp23tap(x, ratio)
  if ratio != 6:
    raise ValueError(f"ratio: the ideal interpolator supports powers of two and 6, got {ratio}")
  return interp23tap(interp3x(x), 2)


def quantize_uint16(x: jax.Array, mode: str) -> jax.Array:
  """Float -> uint16 storage, clipped to [0, 65535].

  Args:
    x: any shape.
    mode: ``"truncate"`` (NumPy ``astype``, the toolbox) or ``"round"``.

  Returns:
    uint16 array of ``x``'s shape.
  """
  if mode == "truncate":
    return jnp.clip(jnp.trunc(x), 0, 65535).astype(jnp.uint16)
  if mode == "round":
    return jnp.clip(jnp.round(x), 0, 65535).astype(jnp.uint16)
  raise ValueError(f"quantize: expected 'truncate', 'round' or None, got {mode!r}")


@functools.partial(jax.jit, static_argnames=("ratio",))
def fr_upsample(hs, ratio: int) -> jax.Array:
  """The FR ``I_MS`` (``interpolate_hs``): ideal interpolation, clip to [0, 2^16], round (float).

  Args:
    hs: ``(h, w, C)`` or ``(N, h, w, C)`` in DN.
    ratio: a power of two or 6.

  Returns:
    ``(h * ratio, w * ratio, C)`` float (batched like ``hs``).
  """
  return jnp.round(jnp.clip(ideal_interpolator(hs, ratio), 0, UINT16_MAX_EXCLUSIVE))


@functools.partial(jax.jit, static_argnames=("ratio", "sensor", "quantize"))
def rr_degradation(hs, pan, ratio: int = 6, *, sensor: str = "PRISMA",
                   quantize: str | None = "truncate") -> dict[str, jax.Array]:
  """The Wald protocol of ``elaborate_PRISMA_images.downsample_hs_pan``.

  Args:
    hs: HR cube ``(H, W, B)`` or ``(N, H, W, B)`` (DN values).
    pan: the PAN at the same ground resolution as ``hs`` ``(H, W)`` / ``(N, H, W, 1)``; each
      input is filtered and decimated independently (the toolbox's PAN is 6x finer than hs).
    ratio: decimation ratio.
    sensor: selects the PAN Nyquist gain.
    quantize: storage of HS-LR and PAN-LR: ``"truncate"`` (toolbox ``astype(uint16)``),
      ``"round"``, or ``None`` (keep floats).

  Returns:
    dict with ``hs_lr``, ``pan_lr`` (quantised as asked), ``hs_lr_float``, ``pan_lr_float`` and
    ``hs_lr_exp`` = round(clip(ideal_interpolator(hs_lr_float))) — the RR ``I_MS``, made from the
    untruncated float HS-LR as in the toolbox.
  """
  ratio = check_ratio(ratio)
  hsb, squeeze = as_batch(hs, "hs")
  panb, _ = as_pan_batch(pan)
  for name, arr in (("hs", hsb), ("pan", panb)):
    if arr.shape[1] % ratio or arr.shape[2] % ratio:
      raise ValueError(f"{name}: spatial size {arr.shape[1:3]} is not a multiple of ratio {ratio}")
  hs_lr = decimate(depthwise_filter(hsb, toolbox_taps(gen_mtf(ratio)), "replicate"), ratio)
  pan_taps = toolbox_taps(gen_mtf_pan(ratio, sensor=sensor))
  pan_lr = decimate(depthwise_filter(panb, pan_taps, "replicate"), ratio)
  out = {"hs_lr_float": hs_lr, "pan_lr_float": pan_lr, "hs_lr_exp": fr_upsample(hs_lr, ratio)}
  if quantize is None:
    out["hs_lr"], out["pan_lr"] = hs_lr, pan_lr
  else:
    out["hs_lr"] = quantize_uint16(hs_lr, quantize)
    out["pan_lr"] = quantize_uint16(pan_lr, quantize)
  if squeeze:
    out = {k: v[0] for k, v in out.items()}
  return out


def synthetic_rr_scene(key: jax.Array, lr_size: int, bands: int, ratio: int = 6, *,
                       crop: int | None = None, dn_scale: float = 2.0 ** 14,
                       correlation_length: float = 6.0) -> dict[str, jax.Array]:
  """A reduced-resolution test scene built with the Wald protocol from a synthetic cube.

  The GT is a linear-mixing cube (``jspectral.data.synthetic``) at HR, scaled to DN; the PAN is
  its band mean (a flat spectral response); ``hs_lr`` is the GT MTF-filtered and decimated;
  ``hs_up`` its rounded ideal interpolation (the dataset's ``I_MS``). ``crop`` keeps the central
  ``crop`` x ``crop`` LR pixels (and the matching HR area), so scenes smaller than the
  interpolator's 31-px minimum can still be made.

  Args:
    key: PRNG key.
    lr_size: LR side ``h = w`` before cropping.
    bands: band count ``B``.
    ratio: resolution ratio.
    crop: LR side kept (central crop), or ``None``.
    dn_scale: the GT's scale (digital numbers).
    correlation_length: abundance-region size of the synthetic cube, in HR pixels.

  Returns:
    dict with ``gt (H, W, B)``, ``pan (H, W, 1)``, ``hs_lr (h, w, B)``, ``hs_up (H, W, B)``.
  """
  from jspectral.data import synthetic

  size = lr_size * ratio
  gt = synthetic.hyperspectral_cube(key, size, size, bands,
                                    correlation_length=correlation_length) * dn_scale
  pan = jnp.mean(gt, axis=-1, keepdims=True)
  hs_lr = decimate(depthwise_filter(gt[None], toolbox_taps(gen_mtf(ratio)), "replicate"),
                   ratio)[0]
  out = {"gt": gt, "pan": pan, "hs_lr": hs_lr, "hs_up": fr_upsample(hs_lr, ratio)}
  if crop is not None:
    lo = (lr_size - crop) // 2
    out = {k: (v[lo:lo + crop, lo:lo + crop] if k == "hs_lr" else
               v[lo * ratio:(lo + crop) * ratio, lo * ratio:(lo + crop) * ratio])
           for k, v in out.items()}
  return out
