"""ESSAformer: single hyperspectral image super-resolution with SCC-kernel linear attention.

Zhang, Zhang, Zhang, Guo, Gao, Zhang, "ESSAformer: Efficient Transformer for Hyperspectral Image
Super-resolution", ICCV 2023 (arXiv 2307.14010). Official code: github.com/Rexzhan/ESSAformer
(``ESSA.py``, HEAD dc834c1), a model file only; training and metrics follow the SSPSR protocol
(github.com/junjun-jiang/SSPSR), see :mod:`jspectral.superres.tasks`.

Bands-last throughout: input ``(N, h, w, C)``, output ``(N, s h, s w, C)``. Tokens of the attention
are the pixels of a feature map in row-major order, features are its channels.

Official behaviour reproduced (see ``specs/essaformer.md``):

* :func:`essa_attention` is the attention *as the code computes it*: channel-centred q and k are
  squared and divided by their sum of squares (+1e-7); q is L2-normalised over channels, k over
  tokens (F.normalize, eps 1e-12), and the output is ``V + Q (Kᵀ V) / √N``: linear in N, no
  N×N matrix. :func:`essa_attention_quadratic` forms the same kernel explicitly (N×N);
  :func:`scc_attention` is the paper's plain softmax over the spectral correlation coefficient
  (quadratic), and :func:`softmax_attention` ordinary dot-product attention, both selectable with
  ``ESSAformer(attention=...)`` for ablations and the efficiency benchmark.
* The iterative refining structure applies ONE HR encoder (``convup``), ONE LR encoder
  (``convdown``), one upsampler and one downsampler repeatedly (weights shared): 3 HR and 2 LR
  passes by default (``hr_passes``).
* There is no residual around the attention inside an encoder block; the concatenation order is
  [attention, input]; Dropout2d(0.2) drops whole channels in training; no global bicubic skip and
  no clamping of the output. PixelShuffle/Unshuffle use PyTorch's channel order.

Deliberate differences: none in the forward pass. The Flax tree mirrors the official module names
(``blockup/convup/convu/0``) so :func:`from_torch` is a rename plus layout change.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import canonical_conv
from jspectral.nn.model_spec import ModelSpec
from jspectral.superres.layers import (
    PixelShuffleUpsampler,
    params_from_torch,
    pixel_unshuffle,
    shuffle_stages,
)

_SUM_EPS = 1e-7      # added to the per-token sum of squares (official)
_NORM_EPS = 1e-12    # F.normalize clamp of the L2 norm (official)

# Zero-padded convs through canonical_conv: an explicit pad, then a VALID convolution whose 1x1
# forms are matmuls (docs/benchmarks.md); same values and gradients.
_Conv = functools.partial(nn.Conv, conv_general_dilated=canonical_conv.conv_general_dilated)


def _l2_normalise(x: jax.Array, axis: int) -> jax.Array:
  """``x / max(‖x‖₂, 1e-12)`` along ``axis`` (F.normalize); the gradient stays finite at 0."""
  return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), _NORM_EPS ** 2))


def scc_features(x: jax.Array) -> jax.Array:
  """The official feature map of q and k: centre each token over channels, square, normalise.

  ``P_ic = (x_ic − mean_c x_i)² / (Σ_c (x_ic − mean_c x_i)² + 1e-7)`` for ``x`` of shape
  ``(..., N, d)``. Invariant (up to the eps) to ``x_i -> a_i x_i + b_i`` per token.

  Args:
    x: tokens, ``(..., N, d)``.

  Returns:
    Features, ``(..., N, d)``.
  """
  centred = x - x.mean(axis=-1, keepdims=True)
  squared = centred * centred
  return squared / (squared.sum(axis=-1, keepdims=True) + _SUM_EPS)


def _essa_q_k(q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Q̂ (rows L2-normalised over channels) and K̂ (columns L2-normalised over tokens)."""
  return _l2_normalise(scc_features(q), axis=-1), _l2_normalise(scc_features(k), axis=-2)


def _check_qkv(q, k, v):
  for name, value in (("q", q), ("k", k), ("v", v)):
    if value.ndim < 2:
      raise ValueError(f"{name}: expected (..., N tokens, d), got shape {value.shape}")
  if q.shape != k.shape or k.shape != v.shape:
    raise ValueError(f"q, k, v: expected equal shapes (..., N, d), got {q.shape}, {k.shape}, "
                     f"{v.shape}")


def essa_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """Official first-order ESSA: ``V + Q̂ (K̂ᵀ V) / √N`` in O(N d²) time, O(d²) extra memory.

  q, k and v are the three thirds of the qkv projection.

  Args:
    q: queries, ``(..., N, d)``.
    k: keys, ``(..., N, d)``.
    v: values, ``(..., N, d)``.

  Returns:
    ``(..., N, d)``.

  Raises:
    ValueError: if an input has fewer than 2 axes or the shapes differ.
  """
  _check_qkv(q, k, v)
  q_hat, k_hat = _essa_q_k(q, k)
  context = jnp.einsum("...jc,...je->...ce", k_hat, v)
  return v + jnp.einsum("...ic,...ce->...ie", q_hat, context) / math.sqrt(q.shape[-2])


def essa_attention_quadratic(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """The same attention with its N×N kernel formed explicitly: ``v_i + Σ_j κ_ij v_j``.

  ``κ_ij = Q̂_i · K̂_j / √N`` is the first-order term of the exponential SCC-kernel expansion
  ``exp(SCC) ≈ 1 + φ(q)·φ(k)`` as the official code realises it (the zeroth-order term is ``v_i``).

  Args:
    q: queries, ``(..., N, d)``.
    k: keys, ``(..., N, d)``.
    v: values, ``(..., N, d)``.

  Returns:
    ``(..., N, d)``.

  Raises:
    ValueError: if an input has fewer than 2 axes or the shapes differ.
  """
  _check_qkv(q, k, v)
  q_hat, k_hat = _essa_q_k(q, k)
  kernel = jnp.einsum("...ic,...jc->...ij", q_hat, k_hat) / math.sqrt(q.shape[-2])
  return v + kernel @ v


def spectral_correlation(q: jax.Array, k: jax.Array) -> jax.Array:
  """SCC(q_i, k_j) = cosine of channel-centred vectors.

  Args:
    q: ``(..., N, d)``.
    k: ``(..., M, d)``.

  Returns:
    ``(..., N, M)``.
  """
  qc = q - q.mean(axis=-1, keepdims=True)
  kc = k - k.mean(axis=-1, keepdims=True)
  return jnp.einsum("...ic,...jc->...ij", _l2_normalise(qc, -1), _l2_normalise(kc, -1))


def scc_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """The paper's plain SCC attention: ``Σ_j softmax_j(SCC(q_i, k_j)) v_j`` (quadratic in N).

  Args:
    q: queries, ``(..., N, d)``.
    k: keys, ``(..., N, d)``.
    v: values, ``(..., N, d)``.

  Returns:
    ``(..., N, d)``.

  Raises:
    ValueError: if an input has fewer than 2 axes or the shapes differ.
  """
  _check_qkv(q, k, v)
  return jax.nn.softmax(spectral_correlation(q, k), axis=-1) @ v


def softmax_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """Single-head dot-product attention ``softmax(q kᵀ / √d) v`` (quadratic in N).

  Args:
    q: queries, ``(..., N, d)``.
    k: keys, ``(..., N, d)``.
    v: values, ``(..., N, d)``.

  Returns:
    ``(..., N, d)``.

  Raises:
    ValueError: if an input has fewer than 2 axes or the shapes differ.
  """
  _check_qkv(q, k, v)
  logits = jnp.einsum("...ic,...jc->...ij", q, k) / math.sqrt(q.shape[-1])
  return jax.nn.softmax(logits, axis=-1) @ v


ATTENTIONS = {
    "essa": essa_attention,
    "essa_quadratic": essa_attention_quadratic,
    "scc": scc_attention,
    "softmax": softmax_attention,
}


class ESSAttn(nn.Module):
  """``ESSAttn``: qkv Linear (``lnqkv``), attention, output Linear (``ln``) on ``(..., N, d)``.

  Attributes:
    attention: a key of ``ATTENTIONS`` (``"essa"`` official).
  """

  attention: str = "essa"

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    """Attends over the tokens.

    Args:
      tokens: ``(..., N, d)``.

    Returns:
      ``(..., N, d)``.

    Raises:
      ValueError: if ``attention`` is unknown.
    """
    if self.attention not in ATTENTIONS:
      raise ValueError(f"attention: expected one of {sorted(ATTENTIONS)}, got {self.attention!r}")
    dim = tokens.shape[-1]
    q, k, v = jnp.split(nn.Dense(3 * dim, name="lnqkv")(tokens), 3, axis=-1)
    return nn.Dense(dim, name="ln")(ATTENTIONS[self.attention](q, k, v))


class ConvFeedForward(nn.Module):
  """The conv "FFN" of an encoder block (official ``convu``/``convd`` Sequential, indices 0, 3, 6).

  conv1x1 (2d -> 2d), LeakyReLU 0.2, Dropout2d, conv3x3, LeakyReLU 0.2, Dropout2d, conv1x1 (-> d).

  Attributes:
    features: output width d.
    drop_rate: Dropout2d rate.
  """

  features: int
  drop_rate: float = 0.2

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """Applies the conv stack.

    Args:
      z: ``(N, H, W, 2d)`` (attention output concatenated with the input).
      train: dropout on (needs a ``"dropout"`` RNG).

    Returns:
      ``(N, H, W, features)``.
    """
    drop = nn.Dropout(self.drop_rate, broadcast_dims=(1, 2), deterministic=not train)
    width = z.shape[-1]
    z = drop(nn.leaky_relu(_Conv(width, (1, 1), name="0")(z), 0.2))
    z = drop(nn.leaky_relu(_Conv(width, (3, 3), padding=1, name="3")(z), 0.2))
    return _Conv(self.features, (1, 1), name="6")(z)


class EncoderBlock(nn.Module):
  """``Convup``/``Convdown``: LN -> ESSA -> Dropout2d -> cat[attn, x] -> conv FFN -> + x.

  ``conv_name`` is the official name of the conv stack (``convu`` for E_up, ``convd`` for E_down).
  There is no residual around the attention (official).

  Attributes:
    conv_name: name of the conv stack (``convu`` or ``convd``).
    attention: a key of ``ATTENTIONS``.
    drop_rate: Dropout2d rate.
  """

  conv_name: str = "convu"
  attention: str = "essa"
  drop_rate: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, d)``.
      train: dropout on (needs a ``"dropout"`` RNG).

    Returns:
      ``(N, H, W, d)``.
    """
    n, h, w, d = x.shape
    # Normalised as an (N H W, d) matrix: XLA:CPU reduces the scale and bias gradients of an
    # (1, H W, d) array 4x slower (128 vs 28 ms at 128x128, d 256; docs/superres.md).
    tokens = nn.LayerNorm(epsilon=1e-5, name="norm")(x.reshape(n * h * w, d)).reshape(n, h * w, d)
    attended = ESSAttn(self.attention, name="attn")(tokens).reshape(n, h, w, d)
    attended = nn.Dropout(self.drop_rate, broadcast_dims=(1, 2), deterministic=not train)(attended)
    z = jnp.concatenate([attended, x], axis=-1)
    return ConvFeedForward(d, self.drop_rate, name=self.conv_name)(z, train=train) + x


def _factor_steps(scale: int) -> list[int]:
  if scale < 2:
    raise ValueError(f"scale: expected a power of two (2, 4, 8, ...) or 3, got {scale}")
  return shuffle_stages(scale)


class Downsample(nn.Module):
  """``Downsample``: per stage conv3x3 (d -> d / r²) then PixelUnshuffle(r).

  Attributes:
    scale: downscaling factor, a power of two (>= 2) or 3.
  """

  scale: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Downsamples the features.

    Args:
      x: ``(N, H, W, d)``.

    Returns:
      ``(N, H / scale, W / scale, d)``.

    Raises:
      ValueError: if ``scale`` is not a power of two >= 2 or 3.
    """
    for i, r in enumerate(_factor_steps(self.scale)):
      x = pixel_unshuffle(_Conv(x.shape[-1] // (r * r), (3, 3), padding=1, name=str(2 * i))(x), r)
    return x


class IterativeRefining(nn.Module):
  """``blockup``: back-projection between HR and LR features with shared E_up, E_down, Up, Down.

  With ``hr_passes = 3`` (official): ``x1 = E_up(Up(x))``, ``x2 = E_down(Down(x1) + x)``,
  ``x3 = E_up(Up(x2) + x1)``, ``x4 = E_down(Down(x3) + x2)``, ``x5 = E_up(Up(x4) + x3)``.

  Attributes:
    scale: upscaling factor.
    hr_passes: HR encoder passes.
    attention: a key of ``ATTENTIONS``.
    drop_rate: Dropout2d rate.
  """

  scale: int
  hr_passes: int = 3
  attention: str = "essa"
  drop_rate: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Refines LR features into HR features.

    Args:
      x: LR features, ``(N, h, w, d)``.
      train: dropout on (needs a ``"dropout"`` RNG).

    Returns:
      HR features, ``(N, scale h, scale w, d)``.
    """
    up = PixelShuffleUpsampler(self.scale, name="convupsample")
    down = Downsample(self.scale, name="convdownsample")
    e_up = EncoderBlock("convu", self.attention, self.drop_rate, name="convup")
    e_down = EncoderBlock("convd", self.attention, self.drop_rate, name="convdown")
    low = x
    high = e_up(up(low), train=train)
    for _ in range(self.hr_passes - 1):
      low = e_down(down(high) + low, train=train)
      high = e_up(up(low) + high, train=train)
    return high


class ESSAformer(nn.Module):
  """ESSAformer: ``conv_first`` -> iterative refining (``blockup``) -> ``conv_last``.

  Attributes:
    bands: spectral bands C of input and output (Chikusei 128, Pavia Centre 102, CAVE 31).
    dim: feature width d (official 256); must be divisible by 4 (by 9 for ``scale`` 3).
    scale: upscaling factor, a power of two or 3.
    hr_passes: HR encoder passes of the refining loop (official 3; LR passes = hr_passes - 1).
    attention: ``essa`` (official), ``essa_quadratic`` (same maths, N×N kernel), ``scc`` (paper's
      softmax over SCC) or ``softmax`` (dot-product attention).
    drop_rate: Dropout2d rate in the encoder blocks (official 0.2; active only with ``train``).
    upsample_skip: add the bicubic upsampling of ``x`` (``jax.image.resize``) to the output and
      start ``conv_last`` at zero, so the untrained model is bicubic and learns a residual. Not in
      the official model (default off); the CPU smoke preset turns it on.
  """

  bands: int = 128
  dim: int = 256
  scale: int = 4
  hr_passes: int = 3
  attention: str = "essa"
  drop_rate: float = 0.2
  upsample_skip: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Super-resolves an LR cube.

    Args:
      x: LR cube, ``(N, h, w, bands)``.
      train: dropout on (needs a ``"dropout"`` RNG).

    Returns:
      ``(N, scale h, scale w, bands)``.

    Raises:
      ValueError: if ``dim`` does not fit ``scale``, ``hr_passes < 1``, ``scale`` is invalid or
        ``x`` is not ``(N, h, w, bands)``.
    """
    steps = _factor_steps(self.scale)
    if self.dim % (steps[0] ** 2):
      raise ValueError(f"dim: expected a multiple of {steps[0] ** 2} for scale {self.scale}, "
                       f"got {self.dim}")
    if self.hr_passes < 1:
      raise ValueError(f"hr_passes: expected >= 1, got {self.hr_passes}")
    if x.ndim != 4 or x.shape[-1] != self.bands:
      raise ValueError(f"x: expected (N, h, w, {self.bands}) bands-last, got shape {x.shape}")
    features = _Conv(self.dim, (3, 3), padding=1, name="conv_first")(x)
    features = IterativeRefining(self.scale, self.hr_passes, self.attention, self.drop_rate,
                                 name="blockup")(features, train=train)
    if not self.upsample_skip:
      return _Conv(self.bands, (3, 3), padding=1, name="conv_last")(features)
    n, h, w, c = x.shape
    residual = _Conv(self.bands, (3, 3), padding=1, kernel_init=nn.initializers.zeros,
                       name="conv_last")(features)
    return residual + jax.image.resize(x, (n, self.scale * h, self.scale * w, c), "bicubic")


def param_count_closed_form(bands: int, dim: int, scale: int) -> int:
  """The spec's closed-form parameter count for a power-of-two ``scale``.

  Args:
    bands: spectral bands C.
    dim: feature width d.
    scale: upscaling factor (a power of two).

  Returns:
    The number of parameters.
  """
  n = len(_factor_steps(scale))
  d = dim
  return ((9 * bands * d + d) + 2 * (46 * d * d + 11 * d) + n * (36 * d * d + 4 * d)
          + n * (9 * d * d // 4 + d // 4) + (9 * d * bands + bands))


def from_torch(state_dict: Mapping[str, np.ndarray], dtype=np.float32
               ) -> tuple[ESSAformer, dict]:
  """``ESSAformer`` and its variables from an official ``ESSA`` ``state_dict``.

  Bands and width come from ``conv_first.weight`` (O = dim, I = bands); the scale from the
  upsampler (one conv per ×2 stage, or a single ×3 conv with 9·dim outputs).

  Args:
    state_dict: ``{name: array}`` with the official ESSA names.
    dtype: the parameters' dtype (float32; float64 for double-precision parity under x64).

  Returns:
    ``(module, {"params": ...})``.

  Raises:
    ValueError: if ``conv_first.weight`` is missing (or an entry cannot be converted).
  """
  if "conv_first.weight" not in state_dict:
    raise ValueError("state_dict: expected the official ESSA names (missing 'conv_first.weight')")
  dim, bands = state_dict["conv_first.weight"].shape[:2]
  stages = sum(1 for k in state_dict
               if k.startswith("blockup.convupsample.") and k.endswith(".weight"))
  first_out = state_dict["blockup.convupsample.0.weight"].shape[0]
  scale = 3 if first_out == 9 * dim else 2 ** stages
  module = ESSAformer(bands=int(bands), dim=int(dim), scale=scale)
  return module, {"params": params_from_torch(state_dict, dtype)}


def _example(module: ESSAformer) -> dict:
  return {"x": jax.ShapeDtypeStruct((1, 8, 8, module.bands), jnp.float32)}


def _build(bands: int, scale: int):
  return lambda **overrides: ESSAformer(**{"bands": bands, "scale": scale, **overrides})


MODELS = {
    "essaformer": ModelSpec(build=_build(128, 4), example_inputs=_example, from_torch=from_torch,
                            rng_names=("dropout",)),
    "essaformer_x8": ModelSpec(build=_build(128, 8), example_inputs=_example,
                               from_torch=from_torch, rng_names=("dropout",)),
    "essaformer_pavia": ModelSpec(build=_build(102, 4), example_inputs=_example,
                                  from_torch=from_torch, rng_names=("dropout",)),
    "essaformer_cave": ModelSpec(build=_build(31, 4), example_inputs=_example,
                                 from_torch=from_torch, rng_names=("dropout",)),
}
