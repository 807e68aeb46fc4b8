"""A drop-in ``conv_general_dilated`` whose gradients stay fast inside ``lax`` loops on CPU.

XLA:CPU runs a convolution through its fast (Eigen) kernels only in the canonical form
``b01f_01io->b01f`` (NHWC input, HWIO kernel). Outside loops it rewrites the two gradient
convolutions of a VALID, stride-1 convolution into that form; inside a ``while`` body it does not,
and the weight gradient falls back to a generic loop. Measured here (jax 0.10.2, 2 cores): the
weight gradient of a 7x7x48x32 convolution on a 96x108 image took 0.06 s as one call and 1.5 s per
iteration of a ``fori_loop``; rho-PNN's per-band tuning loop ran 5x slower than the same steps
called one by one. The VJP below writes both gradients as canonical convolutions (with explicit
transposes), which XLA keeps, and is otherwise the same function: same values, same gradients.
Where XLA:CPU's convolutions run in YNNPACK, VALID convolutions with many channels are written as
convolutions padded by one zero row (:func:`_valid`), which YNNPACK runs 4-8x faster.

Pass it to flax: ``nn.Conv(..., conv_general_dilated=canonical_conv.conv_general_dilated)``. Used
by the networks that train inside jitted loops (zero-shot pansharpening, deep image priors) and
by ESSAformer and HyperPNN. :func:`strided_conv` (a strided convolution whose input gradient
skips the stride's zeros) runs HSDT's and MAN's downsampling layers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jspectral

_NHWC = ("NHWC", "HWIO", "NHWC")


def _valid(x, w, precision):
  """VALID convolution; with ``Ci Co >= 512`` on a CPU whose convolutions run in YNNPACK, as one
  padded by a zero row, whose output row is dropped.

  XLA:CPU's YNNPACK convolutions (jaxlib 0.10.2) run a convolution with zero padding 4-8x faster
  than the same convolution written VALID (measured here, CPU seconds, batch 1: 7x7 48 -> 32 on
  198x198 0.19 s VALID vs 0.025 s padded; 3x3 512 -> 512 on 66x66 0.45 vs 0.095 s); with few
  channels it makes no difference, so small convolutions stay VALID. Eigen's convolutions, which
  ``import jspectral`` selects (:data:`jspectral.EIGEN_CONVOLUTIONS`), run both forms equally
  fast (0.036 / 0.035 s and 0.097 / 0.10 s for the two shapes above), and there the padded form
  only adds its extra row and the copy that drops it: ESSAformer's LR 32 train step took 7.66-7.76
  s with it and 6.89-6.92 s without (2 cores, docs/benchmarks.md), so Eigen gets plain VALID.
  """
  if (x.shape[3] * w.shape[3] < 512 or jspectral.EIGEN_CONVOLUTIONS
      or jax.default_backend() != "cpu"):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_NHWC,
                                        precision=precision)
  y = jax.lax.conv_general_dilated(x, w, (1, 1), ((0, 1), (0, 0)), dimension_numbers=_NHWC,
                                   precision=precision)
  return y[:, :-1]


def _forward(x, w, precision):
  """The primal of :func:`valid_conv`: :func:`shifted_matmul_conv` when ``kh kw Co <= Ci``."""
  if w.shape[0] * w.shape[1] * w.shape[3] <= w.shape[2]:
    return shifted_matmul_conv(x, w, precision)
  return _valid(x, w, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def valid_conv(x: jax.Array, w: jax.Array, precision=None) -> jax.Array:
  """VALID, stride-1 correlation with both gradients written as canonical convolutions.

  Args:
    x: input ``(N, H, W, Ci)``.
    w: kernel ``(kh, kw, Ci, Co)``.
    precision: ``lax`` precision of the forward and both backward convolutions.

  Returns:
    ``(N, H - kh + 1, W - kw + 1, Co)``.
  """
  return _forward(x, w, precision)


def _valid_conv_fwd(x, w, precision):
  return _forward(x, w, precision), (x, w)


def _valid_conv_bwd(precision, residuals, g):
  x, w = residuals
  kh, kw = w.shape[:2]
  if kh == kw == 1:
    # Matrix products over the flattened pixels: XLA's 1x1 weight-gradient convolution copies
    # the input and the cotangent to transposed layouts first (HyperPNN: 4 x 60x60x159 -> 64,
    # 3.2 ms of copy).
    dw = jnp.matmul(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]), precision=precision)
    return jnp.matmul(g, w[0, 0].T, precision=precision), dw[None, None]
  # dx: full correlation of the cotangent with the flipped kernel, in/out channels swapped.
  g_full = jnp.pad(g, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
  dx = _valid(g_full, jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2)), precision)
  # dw[a, b, i, o] = sum_{n, y, x} x[n, y + a, x + b, i] g[n, y, x, o]: input channels as the
  # batch, the image batch as the contracted feature axis, the cotangent as the kernel. With
  # Eigen's convolutions this is as fast as XLA's own weight gradient and 1.4-7x faster than one
  # x^T g matmul per kernel tap (CPU seconds, 3x3: 4 x 62x62, 64 -> 64 0.0076 vs 0.028 s;
  # 130x130, 256 -> 256 0.093 vs 0.23 s; 132 x 66x66, 16 -> 16 0.10 vs 0.61 s).
  dw = _valid(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(g, (1, 2, 0, 3)), precision)
  return dx, jnp.transpose(dw, (1, 2, 0, 3))


valid_conv.defvjp(_valid_conv_fwd, _valid_conv_bwd)


def shifted_matmul_conv(x: jax.Array, w: jax.Array, precision=None) -> jax.Array:
  """VALID, stride-1 correlation as one matmul to ``kh kw Co`` channels and ``kh kw`` shifted adds.

  ``y[n, p, q, a, b, o] = sum_i x[n, p, q, i] w[a, b, i, o]``, then
  ``out[n, r, c, o] = sum_{a, b} y[n, r + a, c + b, a, b, o]``. The same values as
  convolution (up to summation order). XLA:CPU's convolution is slow for few output channels
  (measured here, jax 0.10.2, 2 cores: a 5x5 32 -> 1 convolution on 196x196 took 0.06 s of CPU
  as a convolution and 0.001 s this way), so :func:`valid_conv` computes its forward pass this way
  when ``kh kw Co <= Ci`` (the intermediate is then no larger than the input; 1x1 convolutions
  become plain matmuls); its gradients stay the canonical convolutions (autodiff of this form
  costs more than they do).

  Args:
    x: input ``(N, H, W, Ci)``.
    w: kernel ``(kh, kw, Ci, Co)``.
    precision: ``lax`` precision of the matmul.

  Returns:
    ``(N, H - kh + 1, W - kw + 1, Co)``.
  """
  kh, kw, ci, co = w.shape
  n, h, wd, _ = x.shape
  y = jnp.matmul(x, jnp.transpose(w, (2, 0, 1, 3)).reshape(ci, kh * kw * co), precision=precision)
  y = y.reshape(n, h, wd, kh, kw, co)
  oh, ow = h - kh + 1, wd - kw + 1
  return sum(y[:, a:a + oh, b:b + ow, a, b] for a in range(kh) for b in range(kw))


def _phase_taps(k: int, stride: int, lo: int) -> tuple[int, np.ndarray]:
  """Which kernel tap reaches each input phase of a strided convolution's input gradient.

  Input position ``p = stride i + a`` receives ``g[i + d] w[t]`` for every tap ``t`` with
  ``a + lo - t = stride d``. Returns the smallest offset ``d`` and ``taps (stride, L)``: the
  tap at phase ``a`` and window position ``u`` (offset ``first + u``), or ``k`` for none.
  """
  offsets = [(a + lo - t) // stride for a in range(stride) for t in range(k)
             if (a + lo - t) % stride == 0]
  first = min(offsets)
  taps = np.full((stride, max(offsets) - first + 1), k)
  for a, u in np.ndindex(taps.shape):
    t = a + lo - stride * (u + first)
    if 0 <= t < k:
      taps[a, u] = t
  return first, taps


def _phase_input_grad(g, w, x_shape, strides, padding):
  """The input gradient of a strided convolution as one stride-1 convolution and a shuffle.

  lax writes it as the cotangent dilated by the stride (zeros between rows and columns) and
  convolved with the flipped kernel, which XLA:CPU computes at full resolution, zeros included.
  Here each of the ``sh sw`` phases of the input (position modulo the stride) takes its own taps
  of the kernel: one convolution of the undilated cotangent to ``sh sw Ci`` channels, then the
  phases interleaved. Same sums; MAN-M's stride-2 layers (132 x 64x64, 16 -> 32, 3x3) 0.091 ->
  0.032 s, (132 x 32x32, 32 -> 64) 0.033 -> 0.012 s (docs/benchmarks.md).

  Args:
    g: cotangent ``(N, Ho, Wo, Co)``.
    w: kernel ``(kh, kw, Ci, Co)``.
    x_shape: the input's shape ``(N, H, W, Ci)``.
    strides: ``(sh, sw)``.
    padding: ``((lo, hi), (lo, hi))`` of the forward convolution.

  Returns:
    ``(N, H, W, Ci)``.
  """
  n, h, wd, ci = x_shape
  kh, kw, _, co = w.shape
  (first_h, taps_h), (first_w, taps_w) = (
      _phase_taps(k, s, lo) for k, s, (lo, _) in zip((kh, kw), strides, padding, strict=True))
  (sh, lh), (sw, lw) = taps_h.shape, taps_w.shape
  rows, cols = -(-h // sh), -(-wd // sw)
  # kernel[u, v, o, a, b, i] = w[taps_h[a, u], taps_w[b, v], i, o]; tap k is a zero row / column
  swapped = jnp.pad(jnp.transpose(w, (0, 1, 3, 2)), ((0, 1), (0, 1), (0, 0), (0, 0)))
  kernel = swapped[taps_h.T[:, None, :, None], taps_w.T[None, :, None, :]]
  kernel = jnp.transpose(kernel, (0, 1, 4, 2, 3, 5)).reshape(lh, lw, co, sh * sw * ci)
  pads = ((-first_h, rows + lh - 1 + first_h - g.shape[1]),
          (-first_w, cols + lw - 1 + first_w - g.shape[2]))
  phases = jax.lax.conv_general_dilated(g, kernel, (1, 1), pads, dimension_numbers=_NHWC)
  dx = phases.reshape(n, rows, cols, sh, sw, ci).transpose(0, 1, 3, 2, 4, 5)
  return dx.reshape(n, rows * sh, cols * sw, ci)[:, :h, :wd]


def strided_conv(x: jax.Array, w: jax.Array, strides: tuple[int, int],
                 padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  """``lax.conv_general_dilated`` (NHWC, HWIO, explicit padding) whose input gradient runs per
  phase (:func:`_phase_input_grad`); the weight gradient is lax's.

  Args:
    x: input ``(N, H, W, Ci)``.
    w: kernel ``(kh, kw, Ci, Co)``.
    strides: ``(sh, sw)``.
    padding: ``((lo, hi), (lo, hi))``.

  Returns:
    ``(N, Ho, Wo, Co)``, as ``lax.conv_general_dilated``.

  Raises:
    ValueError: if ``padding`` is not two ``(lo, hi)`` pairs of integers or ``strides`` not two
      positive integers.
  """
  if isinstance(padding, str) or len(padding) != 2 or any(
      isinstance(p, str) or len(p) != 2 for p in padding):
    raise ValueError(f"padding: expected explicit ((lo, hi), (lo, hi)), got {padding!r}")
  if len(strides) != 2 or min(strides) < 1:
    raise ValueError(f"strides: expected two positive integers (sh, sw), got {strides!r}")
  return _strided_conv(x, w, tuple(map(int, strides)),
                       tuple((int(lo), int(hi)) for lo, hi in padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _strided_conv(x, w, strides, padding):
  return _strided(x, w, strides, padding)


def _strided(x, w, strides, padding):
  return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


def _strided_conv_fwd(x, w, strides, padding):
  return _strided(x, w, strides, padding), (x, w)


def _strided_conv_bwd(strides, padding, residuals, g):
  x, w = residuals
  _, weight_vjp = jax.vjp(lambda w: _strided(x, w, strides, padding), w)
  return _phase_input_grad(g, w, x.shape, strides, padding), weight_vjp(g)[0]


_strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated`` with :func:`valid_conv` for 2-D stride-1 NHWC convs.

  Explicit non-negative zero padding (``((lo, hi), (lo, hi))``, what ``nn.Conv(padding=1)``
  passes) becomes a ``jnp.pad`` before the VALID convolution; so does ``"SAME"`` /
  ``"SAME_LOWER"`` (``nn.Conv``'s default), so ESSAformer's 1x1 convolutions and HyperPNN's
  take the matmul forward pass of :func:`shifted_matmul_conv`. Any other configuration (strides,
  dilation, groups, layouts, other string paddings) falls through to ``lax.conv_general_dilated``
  unchanged.

  Args:
    lhs: input, e.g. ``(N, H, W, Ci)``.
    rhs: kernel, e.g. ``(kh, kw, Ci, Co)``.
    window_strides: as in ``lax.conv_general_dilated``.
    padding: as in ``lax.conv_general_dilated``.
    lhs_dilation: as in ``lax.conv_general_dilated``.
    rhs_dilation: as in ``lax.conv_general_dilated``.
    dimension_numbers: as in ``lax.conv_general_dilated``.
    feature_group_count: as in ``lax.conv_general_dilated``.
    batch_group_count: as in ``lax.conv_general_dilated``.
    precision: as in ``lax.conv_general_dilated``.
    preferred_element_type: as in ``lax.conv_general_dilated``.

  Returns:
    The convolution, same values as ``lax.conv_general_dilated``.
  """
  unit = (1,) * (lhs.ndim - 2)
  canonical = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  if (isinstance(padding, str) and padding in ("SAME", "SAME_LOWER") and lhs.ndim == 4
      and tuple(window_strides) == unit and tuple(rhs_dilation or unit) == unit
      and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == canonical):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  explicit = (not isinstance(padding, str) and len(padding) == 2
              and all(len(p) == 2 and min(p) >= 0 for p in padding))
  simple = (lhs.ndim == 4 and (padding == "VALID" or explicit) and tuple(window_strides) == unit
            and tuple(lhs_dilation or unit) == unit and tuple(rhs_dilation or unit) == unit
            and feature_group_count == 1 and batch_group_count == 1
            and preferred_element_type is None
            and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
            == canonical)
  if simple:
    if explicit:
      lhs = jnp.pad(lhs, ((0, 0), *map(tuple, padding), (0, 0)))
    return valid_conv(lhs, rhs, precision)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)
