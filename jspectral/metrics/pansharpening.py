"""Quality indices of hyperspectral pansharpening, as the benchmark toolbox computes them.

References: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355, code github.com/matciotola/hyperspectral_pansharpening_toolbox
(``Metrics/``); Q2n: Garzelli & Nencini, IEEE GRSL 2009; D_lambda (Khan): Khan et al., IEEE TGRS
2009; D_sR: Scarpa & Ciotola, "Full-resolution quality assessment for pansharpening", Remote Sens.
2022; QNR / D_s: Alparone et al., PE&RS 2008; D_rho: Ciotola et al. (Z-PNN) IEEE TGRS 2022 and
the rho-PNN code github.com/giu-guarino/rho-PNN (``Metrics/metrics_fr.py``).

Every index is a pure JAX function of bands-last cubes ``(H, W, C)`` (a scalar) or batches
``(N, H, W, C)`` (shape ``(N,)``), jit-compatible and differentiable where the mathematics allows
(Q2n's default integer rounding and the clip in :func:`evaluation_rr` have zero gradient: pass
``round_inputs=False`` to differentiate through Q2n).

Toolbox conventions kept by default: RR crop of 10 px top/left and 11 px bottom/right; SAM counts
pixels with a zero norm (and arccos of values above 1) as 0 degrees but keeps them in the divisor;
Q2n rounds both images, pads spatially with symmetric padding (the H/W amounts swapped) and the
bands with zeros to a power of two, standardises both images with the reference block's mean and
(unbiased) std, leaves a block unscaled when the reference mean is exactly 0, and uses
``k = b^2/(b^2 - 1)`` with the block size b; D_lambda filters with the float32-rounded 41-tap MTF
(replicate padding) and decimates from offset 3.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jspectral.data import wald
from jspectral.metrics.image import validated


def pair_batches(fused, reference, names=("fused", "gt")) -> tuple[jax.Array, jax.Array, bool]:
  """Validates a fused/reference pair and adds a batch axis when needed.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    reference: same shape as ``fused``.
    names: the two arguments' names for error messages.

  Returns:
    ``(fused (N, H, W, C), reference (N, H, W, C), squeeze)``; ``squeeze`` says a batch axis was
    added (drop it from the result).
  """
  f, squeeze = wald.as_batch(fused, names[0])
  g, _ = wald.as_batch(reference, names[1])
  if f.shape[-1] != g.shape[-1]:
    raise ValueError(f"{names[0]}, {names[1]}: band counts differ ({f.shape[-1]} vs "
                     f"{g.shape[-1]}); shapes {f.shape} and {g.shape}")
  if f.shape != g.shape:
    raise ValueError(f"{names[0]}: shape {f.shape} differs from {names[1]}'s {g.shape}")
  return f, g, squeeze


def _out(x: jax.Array, squeeze: bool) -> jax.Array:
  return x[0] if squeeze else x


# ------------------------------------------------------------------------------------------------
# ERGAS, SAM
# ------------------------------------------------------------------------------------------------

@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("ratio",))
def ergas_per_band(fused, gt, ratio: int) -> jax.Array:
  """Per-band ERGAS terms ``(100/r) sqrt(MSE_b / mu_b^2)``.

  Args:
    fused: fused cube ``(H, W, C)`` or batch ``(N, H, W, C)``.
    gt: the reference, same shape as ``fused``.
    ratio: resolution ratio ``r``.

  Returns:
    ``(C,)`` or ``(N, C)``.
  """
  f, g, squeeze = pair_batches(fused, gt)
  mse = jnp.mean((f - g) ** 2, axis=(1, 2))
  mu2 = jnp.mean(g, axis=(1, 2)) ** 2
  return _out(100.0 / ratio * jnp.sqrt(mse / mu2), squeeze)


@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("ratio",))
def ergas(fused, gt, ratio: int) -> jax.Array:
  """ERGAS (toolbox ``Metrics/metrics_rr.ERGAS``): ``(100/r) sqrt(mean_b MSE_b / mu_b^2)``.

  Args:
    fused: fused cube ``(H, W, C)`` or batch ``(N, H, W, C)``.
    gt: the reference, same shape as ``fused``.
    ratio: resolution ratio ``r``.

  Returns:
    Scalar or ``(N,)``.
  """
  f, g, squeeze = pair_batches(fused, gt)
  mse = jnp.mean((f - g) ** 2, axis=(1, 2))
  mu2 = jnp.mean(g, axis=(1, 2)) ** 2
  return _out(100.0 / ratio * jnp.sqrt(jnp.mean(mse / mu2, axis=-1)), squeeze)


@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("degrees",))
def sam(fused, gt, degrees: bool = True) -> jax.Array:
  """Mean spectral angle, toolbox convention.

  Zero-norm pixels (and arccos of values above 1) count as 0 but stay in the divisor.

  Args:
    fused: fused cube ``(H, W, C)`` or batch ``(N, H, W, C)``.
    gt: the reference, same shape as ``fused``.
    degrees: degrees (toolbox) rather than radians.

  Returns:
    Scalar or ``(N,)``.
  """
  f, g, squeeze = pair_batches(fused, gt)
  dot = jnp.sum(f * g, axis=-1)
  norm = jnp.sqrt(jnp.sum(f * f, axis=-1) * jnp.sum(g * g, axis=-1))
  ratio = dot / jnp.where(norm == 0, 1.0, norm)
  valid = (norm != 0) & (ratio <= 1.0)
  angle = jnp.where(valid, jnp.arccos(jnp.where(valid, ratio, 0.0)), 0.0)
  angle = jnp.mean(angle, axis=(1, 2))
  return _out(angle * 180.0 / math.pi if degrees else angle, squeeze)


@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("eps",))
def sam_loss(fused, gt, eps: float = 1e-8) -> jax.Array:
  """HSpeNet's ``SAMLoss``: mean of ``1 - cos`` over all pixels (zero norm products -> eps).

  The official code replaces the *squared* norm product by ``eps``, so a zero pixel scores
  ``1 - 1e-4``.

  Args:
    fused: fused cube ``(H, W, C)`` or batch ``(N, H, W, C)``.
    gt: the reference, same shape as ``fused``.
    eps: the stand-in for a zero squared-norm product.

  Returns:
    Scalar loss, averaged over the batch too.
  """
  f, g, _ = pair_batches(fused, gt)
  dot = jnp.sum(f * g, axis=-1)
  # The official replaces the *squared* norm product by eps, so a zero pixel scores 1 - 1e-4.
  norm_sq = jnp.sum(f * f, axis=-1) * jnp.sum(g * g, axis=-1)
  zero = norm_sq == 0
  return jnp.mean(1.0 - jnp.where(zero, eps, dot) / jnp.sqrt(jnp.where(zero, eps, norm_sq)))


# ------------------------------------------------------------------------------------------------
# Q2n (hypercomplex quality index)
# ------------------------------------------------------------------------------------------------

@functools.cache
def cayley_dickson_table(n: int) -> tuple[np.ndarray, np.ndarray]:
  """Multiplication table of the toolbox's 2^k-onions: ``e_i e_j = sign[i, j] e_{i xor j}``.

  Built recursively from the product
  ``(a, b)(c, d) = (ac - conj(d) b, conj(a) conj(d) + c conj(b))`` (``conj`` keeps the first
  component and negates the others), which is bilinear and maps basis pairs to signed basis
  elements.

  Args:
    n: the algebra's dimension, a power of two.

  Returns:
    ``(index, weight)``, both ``(n, n)``: ``index[i, k] = i xor k`` and ``weight[i, k] =
    sign[i, i xor k]`` so that ``(p q)_k = sum_i weight[i, k] p_i q_{index[i, k]}``.
  """
  if n & (n - 1):
    raise ValueError(f"n: expected a power of two, got {n}")
  sign = np.ones((1, 1))
  while sign.shape[0] < n:
    half = sign.shape[0]
    c = np.where(np.arange(half) == 0, 1.0, -1.0)
    sign = np.block([[sign, c[:, None] * c[None, :] * sign],
                     [c[:, None] * sign.T, -c[None, :] * sign.T]])
  i = np.arange(n)[:, None]
  index = i ^ np.arange(n)[None, :]
  return index, sign[i, index]


def _hyper_mean_product(p: jax.Array, q: jax.Array, weight: jax.Array, count: jax.Array):
  """Masked pixel mean of the onion product: ``p, q (..., P, K)``, ``weight (..., P, 1)``."""
  index, sign = cayley_dickson_table(p.shape[-1])
  moments = jnp.einsum("...pi,...pj->...ij", p * weight, q) / count[..., None, None]
  rows = np.arange(p.shape[-1], dtype=np.int32)[:, None]
  return jnp.sum(jnp.asarray(sign, p.dtype) * moments[..., rows, index.astype(np.int32)],
                 axis=-2)


def _q_block(g: jax.Array, f: jax.Array, block: int, weight: jax.Array) -> jax.Array:
  """Hypercomplex Q vector of blocks ``g, f (..., P, K)`` (reference first) -> ``(..., K)``.

  ``weight (..., P, 1)`` marks the block's real pixels (1) against the gather's filler (0): a
  truncated block's statistics are over its real pixels only, while ``k`` keeps the nominal
  block size, as in the toolbox.
  """
  count = jnp.sum(weight, axis=(-2, -1))

  def mean(x):
    return jnp.sum(x * weight, axis=-2) / count[..., None]

  m = mean(g)[..., None, :]
  s = jnp.sqrt(jnp.sum((g - m) ** 2 * weight, axis=-2, keepdims=True)
               / (count[..., None, None] - 1.0))
  s = jnp.where(s == 0, 1e-10, s)
  g1 = (g - m) / s + 1.0
  f1 = jnp.where(m == 0, f + 1.0, (f - m) / s + 1.0)
  conj = jnp.where(jnp.arange(g.shape[-1]) == 0, 1.0, -1.0).astype(f.dtype)
  f1 = f1 * conj
  k = block ** 2 / (block ** 2 - 1)
  m1, m2 = mean(g1), mean(f1)
  n1, n2 = jnp.sum(m1 ** 2, axis=-1), jnp.sum(m2 ** 2, axis=-1)
  term3 = k * (jnp.sum(mean(g1 ** 2), -1) + jnp.sum(mean(f1 ** 2), -1) - n1 - n2)
  mean_bias = 2.0 * jnp.sqrt(n1 * n2) / (n1 + n2)
  one = jnp.ones(m1.shape[:-1] + (1, 1), m1.dtype)
  mean_moment = _hyper_mean_product(m1[..., None, :], m2[..., None, :], one, one[..., 0, 0])
  q = k * (_hyper_mean_product(g1, f1, weight, count) - mean_moment)
  safe = jnp.where(term3 == 0, 1.0, term3)
  q = q * (mean_bias * 2.0 / safe)[..., None]
  degenerate = jnp.zeros_like(q).at[..., -1].set(mean_bias)
  return jnp.where((term3 == 0)[..., None], degenerate, q)


BLOCK_GRIDS = ("toolbox", "clamped")


def _block_axis(steps: int, shift: int, block: int, side: int, grid: str):
  """Pixel indices ``(steps, block)`` of one axis's blocks and their validity mask.

  ``"toolbox"`` slices ``[i shift : i shift + block]`` of the padded axis of length ``side``, so
  a block that runs past the end is truncated (its filler indices are masked out);
  ``"clamped"`` repeats the axis's last pixel instead (every block keeps ``block`` pixels).
  """
  idx = np.arange(steps)[:, None] * shift + np.arange(block)[None, :]
  valid = (idx < side) | (grid == "clamped")
  return np.minimum(idx, side - 1).astype(np.int32), valid


@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("block_size", "shift", "round_inputs", "block_grid"))
def q2n_map(fused, gt, block_size: int = 32, shift: int = 32, *,
            round_inputs: bool = True, block_grid: str = "toolbox") -> jax.Array:
  """Block map of Q2n (see :func:`q2n`).

  The image is padded as the toolbox pads it (symmetric, by the amount its row count needs added
  as columns and vice versa), so on a non-square image one axis can fall short of a whole number
  of blocks: with ``block_grid="toolbox"`` (default) those last blocks are truncated to the
  pixels that exist, as the toolbox's slicing does; ``"clamped"`` fills them by repeating the
  padded image's last row/column.

  Args:
    fused: fused cube ``(H, W, C)`` or batch ``(N, H, W, C)``.
    gt: the reference, same shape as ``fused``.
    block_size: block side (32 in the toolbox).
    shift: block step (32 in the toolbox).
    round_inputs: round both images to integers first (toolbox); False keeps it differentiable.
    block_grid: ``"toolbox"`` or ``"clamped"`` (see above).

  Returns:
    ``(n_y, n_x)`` or ``(N, n_y, n_x)`` block Q norms, ``n_y = ceil(H / shift)``.
  """
  if block_grid not in BLOCK_GRIDS:
    raise ValueError(f"block_grid: expected one of {BLOCK_GRIDS}, got {block_grid!r}")
  f, g, squeeze = pair_batches(fused, gt)
  _, h, w, c = g.shape
  if round_inputs:
    f, g = jnp.round(f), jnp.round(g)
  steps_y, steps_x = math.ceil(h / shift), math.ceil(w / shift)
  extra_from_h = (steps_y - 1) * shift + block_size - h
  extra_from_w = (steps_x - 1) * shift + block_size - w
  # The toolbox pads columns by the amount computed from the rows and vice versa.
  if extra_from_h > w or extra_from_w > h:
    raise ValueError(f"gt: symmetric padding of {(extra_from_w, extra_from_h)} px exceeds the "
                     f"image size {(h, w)} for block {block_size} / shift {shift}")
  spatial = ((0, 0), (0, extra_from_w), (0, extra_from_h), (0, 0))
  bands = ((0, 0),) * 3 + ((0, 2 ** math.ceil(math.log2(c)) - c),)
  f = jnp.pad(jnp.pad(f, spatial, mode="symmetric"), bands)
  g = jnp.pad(jnp.pad(g, spatial, mode="symmetric"), bands)
  ys, valid_y = _block_axis(steps_y, shift, block_size, h + extra_from_w, block_grid)
  xs, valid_x = _block_axis(steps_x, shift, block_size, w + extra_from_h, block_grid)
  weight = (valid_y[:, None, :, None] & valid_x[None, :, None, :]).astype(g.dtype)
  weight = weight.reshape(steps_y, steps_x, block_size * block_size, 1)

  def blocks(x):  # (N, Hp, Wp, K) -> (N, sy, sx, b*b, K)
    x = x[:, ys][:, :, :, xs]                      # (N, sy, b, sx, b, K)
    x = jnp.transpose(x, (0, 1, 3, 2, 4, 5))
    return x.reshape(x.shape[:3] + (block_size * block_size, x.shape[-1]))

  q = _q_block(blocks(g), blocks(f), block_size, weight)
  # The toolbox stores block vectors in a float32 tensor.
  qmap = jnp.sqrt(jnp.sum(q.astype(jnp.float32) ** 2, axis=-1))
  return _out(qmap, squeeze)


@validated("fused", "gt")
@functools.partial(jax.jit, static_argnames=("block_size", "shift", "round_inputs", "block_grid"))
def q2n(fused, gt, block_size: int = 32, shift: int = 32, *, round_inputs: bool = True,
        block_grid: str = "toolbox"):
  """Q2n (toolbox ``Metrics/metrics_rr.Q2n``): mean over blocks of the hypercomplex Q norm.

  Args:
    fused: fused cube ``(H, W, C)`` / ``(N, H, W, C)``.
    gt: the reference of the same shape (its block statistics standardise both images).
    block_size: block side (32 in the toolbox).
    shift: block step (32 in the toolbox).
    round_inputs: round both images to integers first (toolbox); False keeps it differentiable.
    block_grid: ``"toolbox"`` truncates the blocks that run past the padded image (the
      toolbox's slicing), ``"clamped"`` repeats its last row/column (see :func:`q2n_map`).

  Returns:
    Scalar or ``(N,)`` Q2n in [0, 1].
  """
  qmap = q2n_map(fused, gt, block_size, shift, round_inputs=round_inputs, block_grid=block_grid)
  return jnp.mean(qmap, axis=(-2, -1))


# ------------------------------------------------------------------------------------------------
# Per-band Q (UIQI), local correlation, D_rho
# ------------------------------------------------------------------------------------------------

def _box(x: jax.Array, size: int) -> jax.Array:
  return wald.correlate_valid(x, np.ones((size, size)))


@validated("fused", "reference")
@functools.partial(jax.jit, static_argnames=("block_size",))
def q_per_band(fused, reference, block_size: int = 32) -> jax.Array:
  """Wang-Bovik UIQI per band, averaged over all valid ``block_size`` windows.

  ``Q = 4 s_xy mu_x mu_y / ((s_x^2 + s_y^2)(mu_x^2 + mu_y^2))``; windows with a zero denominator
  count as 1 (identical constant windows). Inputs as in rho-PNN's ``Metrics/metrics_rr.Q``.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    reference: same shape as ``fused``.
    block_size: window side.

  Returns:
    ``(C,)`` or ``(N, C)``.
  """
  f, g, squeeze = pair_batches(fused, reference, ("fused", "reference"))
  n = block_size ** 2
  sf, sg = _box(f, block_size), _box(g, block_size)
  sff, sgg, sfg = _box(f * f, block_size), _box(g * g, block_size), _box(f * g, block_size)
  prod, sq = sf * sg, sf ** 2 + sg ** 2
  num = 4.0 * (n * sfg - prod) * prod
  den = (n * (sff + sgg) - sq) * sq
  q = jnp.where(den == 0, 1.0, num / jnp.where(den == 0, 1.0, den))
  return _out(jnp.mean(q, axis=(1, 2)), squeeze)


@validated("fused", "reference")
def q_avg(fused, reference, block_size: int = 32) -> jax.Array:
  """Band-averaged UIQI (the "Q" column of rho-PNN's tables).

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    reference: same shape as ``fused``.
    block_size: window side.

  Returns:
    Scalar or ``(N,)``.
  """
  return jnp.mean(q_per_band(fused, reference, block_size), axis=-1)


@validated("a", "b")
@functools.partial(jax.jit, static_argnames=("half_width", "clip"))
def local_correlation(a: jax.Array, b: jax.Array, half_width: int, *,
                      clip: str = "variances") -> jax.Array:
  """Local correlation field of the toolbox's ``xcorr_torch``.

  Window of pixel (i, j): rows ``i-w+1 .. i+w`` and columns ``j-w+1 .. j+w`` (2w x 2w, zeros
  outside); each pixel is centred on its own local mean, then the same window sums of the centred
  products give ``rho = S_ab / (sqrt(S_aa S_bb) + 1e-20)``.

  Args:
    a: ``(N, H, W, C)``.
    b: ``(N, H, W, C)`` or ``(N, H, W, 1)`` (broadcast over ``a``'s bands).
    half_width: ``w``.
    clip: ``"variances"`` clips ``S_aa, S_bb`` below at 1e-20 (rho-PNN's ``xcorr_torch``);
      ``"all"`` also clips ``S_ab``, so ``rho >= 0`` (the toolbox's ``R_PNN/loss.py``); ``"none"``
      (``Utils/cross_correlation.py`` of the toolbox).

  Returns:
    ``(N, H, W, C)`` correlations.
  """
  size = 2 * half_width

  def window_sum(x):
    xp = wald.pad_hw(x, half_width, half_width, half_width, half_width, "zero")
    return _box(xp, size)[:, 1:, 1:]

  a_c = a - window_sum(a) / size ** 2
  b_c = b - window_sum(b) / size ** 2
  s_ab = window_sum(a_c * b_c)
  s_aa, s_bb = window_sum(a_c ** 2), window_sum(b_c ** 2)
  if clip not in ("none", "variances", "all"):
    raise ValueError(f"clip: expected 'none', 'variances' or 'all', got {clip!r}")
  if clip != "none":
    s_aa, s_bb = jnp.maximum(s_aa, 1e-20), jnp.maximum(s_bb, 1e-20)
  if clip == "all":
    s_ab = jnp.maximum(s_ab, 1e-20)
  return s_ab / (jnp.sqrt(s_aa * s_bb) + 1e-20)


@validated("fused", "pan")
@functools.partial(jax.jit, static_argnames=("ratio",))
def d_rho(fused, pan, ratio: int = 6) -> jax.Array:
  """D_rho: mean of ``1 - clip(rho(F_b, P), -1, 1)``, local windows of half width ``ratio // 2``.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` at the fused resolution.
    ratio: resolution ratio.

  Returns:
    Scalar or ``(N,)``.
  """
  f, squeeze = wald.as_batch(fused, "fused")
  p, _ = wald.as_pan_batch(pan)
  if p.shape[:3] != f.shape[:3]:
    raise ValueError(f"pan: expected spatial size {f.shape[1:3]}, got {p.shape[1:3]}")
  rho = local_correlation(f, p, ratio // 2, clip="none")
  return _out(jnp.mean(1.0 - jnp.clip(rho, -1.0, 1.0), axis=(1, 2, 3)), squeeze)


# ------------------------------------------------------------------------------------------------
# Full-resolution indices
# ------------------------------------------------------------------------------------------------

@validated("fused")
@functools.partial(jax.jit, static_argnames=("ratio", "offset"))
def khan_degrade(fused, ratio: int, offset: int = 3) -> jax.Array:
  """D_lambda's degradation: 41-tap MTF (G 0.3, replicate 'same'), decimation from ``offset``.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    ratio: resolution ratio.
    offset: first kept pixel (3 in the toolbox).

  Returns:
    ``(h, w, C)`` or ``(N, h, w, C)``, ``h = ceil((H - offset) / ratio)``.
  """
  f, squeeze = wald.as_batch(fused, "fused")
  return _out(wald.decimate(wald.mtf_filter(f, ratio), ratio, offset), squeeze)


@validated("fused", "ms_lr")
@functools.partial(jax.jit, static_argnames=("ratio", "round_inputs", "block_grid"))
def d_lambda_khan(fused, ms_lr, ratio: int, *, round_inputs: bool = True,
                  block_grid: str = "toolbox") -> jax.Array:
  """D_lambda (Khan) = ``1 - Q2n(khan_degrade(fused), ms_lr)``, blocks 32/32 at LR scale.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    ms_lr: the low-resolution input ``(H / ratio, W / ratio, C)`` (batched like ``fused``).
    ratio: resolution ratio.
    round_inputs: passed to :func:`q2n`.
    block_grid: passed to :func:`q2n` (``"toolbox"`` truncates the last blocks of a non-square
      image as the toolbox does).

  Returns:
    Scalar or ``(N,)``.
  """
  f, squeeze = wald.as_batch(fused, "fused")
  m, _ = wald.as_batch(ms_lr, "ms_lr")
  wald.check_hs_pan(m, f, ratio)
  q = q2n(khan_degrade(f, ratio), m, round_inputs=round_inputs, block_grid=block_grid)
  return _out(1.0 - q, squeeze)


@validated("fused", "pan")
@functools.partial(jax.jit, static_argnames=())
def d_sr(fused, pan) -> jax.Array:
  """D_sR = ``1 - R^2`` of the no-intercept least-squares regression of PAN on the fused bands.

  The regression coefficients are under ``stop_gradient`` (the toolbox uses ``no_grad``).

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` at the fused resolution.

  Returns:
    Scalar or ``(N,)``.
  """
  f, squeeze = wald.as_batch(fused, "fused")
  p, _ = wald.as_pan_batch(pan)
  if p.shape[:3] != f.shape[:3]:
    raise ValueError(f"pan: expected shape {f.shape[:3] + (1,)}, got {p.shape}")
  design = f.reshape(f.shape[0], -1, f.shape[-1])
  target = p.reshape(p.shape[0], -1, 1)
  alpha = jax.lax.stop_gradient(jnp.linalg.pinv(design) @ target)   # the toolbox uses no_grad
  residual = target - design @ alpha
  r2 = 1.0 - jnp.var(residual, axis=(1, 2), ddof=1) / jnp.var(target, axis=(1, 2), ddof=1)
  return _out(1.0 - r2, squeeze)


@validated("fused", "pan", "ms_lr")
@functools.partial(jax.jit, static_argnames=("ratio", "block_size", "exponent"))
def d_s(fused, pan, ms_lr, ratio: int, *, block_size: int = 32, exponent: float = 1.0,
        pan_lr=None):
  """Classic QNR spatial distortion (Alparone 2008): ``(mean_b |Q(F_b,P) - Q(M_b,P_L)|^q)^(1/q)``.

  By default the LR PAN ``P_L`` is the PAN MTF-filtered (gain 0.2) and decimated by ``ratio``
  (the toolbox's degradation); rho-PNN's own ``Metrics/metrics_fr.D_s`` resizes it with a bicubic
  ``imresize(pan, 1/ratio)`` instead (``jspectral.pansharpening.protocol.d_s_bicubic`` passes
  that as ``pan_lr``). LR Q uses blocks of ``block_size // ratio``.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` at the fused resolution.
    ms_lr: the low-resolution input ``(H / ratio, W / ratio, C)`` (batched like ``fused``).
    ratio: resolution ratio.
    block_size: UIQI window side at full resolution.
    exponent: ``q``.
    pan_lr: optional LR PAN ``(N, H / ratio, W / ratio, 1)`` replacing the MTF degradation.

  Returns:
    Scalar or ``(N,)``.
  """
  f, squeeze = wald.as_batch(fused, "fused")
  m, _ = wald.as_batch(ms_lr, "ms_lr")
  p, _ = wald.as_pan_batch(pan)
  wald.check_hs_pan(m, p, ratio)
  if pan_lr is None:
    taps = wald.toolbox_taps(wald.gen_mtf_pan(ratio))
    p_lr = wald.decimate(wald.depthwise_filter(p, taps, "replicate"), ratio)
  else:
    p_lr, _ = wald.as_pan_batch(pan_lr, "pan_lr")
    if p_lr.shape[:3] != m.shape[:3]:
      raise ValueError(f"pan_lr: expected shape {m.shape[:3] + (1,)}, got {p_lr.shape}")
  q_high = q_per_band(f, jnp.broadcast_to(p, f.shape), block_size)
  q_low = q_per_band(m, jnp.broadcast_to(p_lr, m.shape), max(block_size // ratio, 2))
  value = jnp.mean(jnp.abs(q_high - q_low) ** exponent, axis=-1) ** (1.0 / exponent)
  return _out(value, squeeze)


def hqnr(d_lambda, d_spatial, alpha: float = 1.0, beta: float = 1.0) -> jax.Array:
  """HQNR / the toolbox's QNR column: ``(1 - D_lambda)^alpha (1 - D_s)^beta``.

  Args:
    d_lambda: spectral distortion, any shape.
    d_spatial: spatial distortion, broadcastable with ``d_lambda``.
    alpha: exponent of the spectral term.
    beta: exponent of the spatial term.

  Returns:
    The index, broadcast shape of the inputs.
  """
  return (1.0 - d_lambda) ** alpha * (1.0 - d_spatial) ** beta
