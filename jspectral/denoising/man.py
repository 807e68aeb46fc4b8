"""MAN: Mixed Attention Network for hyperspectral image denoising (v2, the default, and v1).

Z. Lai, Y. Fu, "Mixed Attention Network for Hyperspectral Image Denoising", arXiv:2301.11525
(v1 January 2023; v2 February 2023 with multi-head recurrent spectral attention, progressive
spectral channel attention and attentive skip connections). Official code:
https://github.com/Zeqiang-Lai/MAN (``mans_v2.py`` = v2, ``mans.py`` = v1); facts in
``specs/man.md``.

Input and output are bands-last cubes ``(N, H, W, bands)``; the network treats the spectrum as the
depth axis of 3-D feature maps and works internally on ``(N, bands, H, W, features)``. There are
no band-specific parameters: any band count works.

Differences from the official code (numerics unchanged unless stated):

* The quasi-recurrent band scan ``h_t = f_t h_{t-1} + (1 - f_t) z_t`` is the official loop
  unrolled under ``jit``, with its adjoint loop as a custom gradient (:func:`linear_recurrence`).
* The official decoder builds one attentive skip connection too many (``fusions[0]``), never uses
  it, and counts it in its parameter total. ``count_unused_fusion=True`` (default) keeps it for
  parameter-count and checkpoint parity; ``False`` drops it.
* The training scripts' Kaiming-normal (fan_out, ReLU gain) init overwrites PSCA's zero init of
  ``w_3``; we reproduce that by default and offer ``zero_init_psca=True``.
* v1's ``ConvTranspose3d(stride 1, padding 1)`` layers are the equivalent ``Conv3d`` (kernel
  flipped by :func:`from_torch_v1`), initialised like PyTorch's default ConvTranspose3d.
* Spatial sizes not divisible by ``2 ** len(sample_idx)`` and odd widths (v2 splits channels into
  two heads) raise a ``ValueError``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.denoising import layers
from jspectral.nn.model_spec import ModelSpec


def _band(x: jax.Array, t: int, axis: int) -> jax.Array:
  return jax.lax.index_in_dim(x, t, axis, keepdims=False)


def _linear_recurrence_loop(a: jax.Array, b: jax.Array, reverse: bool, axis: int) -> jax.Array:
  """``h_t = a_t h_{t-1} + b_t`` (``h_{-1} = 0``), one band at a time, in scan order."""
  n = a.shape[axis]
  order = range(n - 1, -1, -1) if reverse else range(n)
  h, out = None, [None] * n
  for t in order:
    h = _band(b, t, axis) if h is None else _band(a, t, axis) * h + _band(b, t, axis)
    out[t] = h
  return jnp.stack(out, axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def linear_recurrence(a: jax.Array, b: jax.Array, reverse: bool = False,
                      axis: int = 1) -> jax.Array:
  """``h_t = a_t h_{t-1} + b_t`` along ``axis`` with ``h_{-1} = 0`` (``reverse``: from the end).

  An unrolled loop over the (short) band axis: one fused elementwise pass per band, far cheaper
  on CPU than a log-depth associative scan. The gradient is the adjoint recurrence run the other
  way, ``l_t = g_t + a_{t+1} l_{t+1}``, ``db_t = l_t``, ``da_t = l_t h_{t-1}``, also one pass
  per band (differentiating the loop itself would cost a full-size update per band).

  Args:
    a: coefficients, e.g. ``(N, D, H, W, C)``.
    b: inputs, same shape.
    reverse: run from the last index down.
    axis: the recurrence axis.

  Returns:
    ``h``, same shape.
  """
  return _linear_recurrence_loop(a, b, reverse, axis)


def _linear_recurrence_fwd(a, b, reverse, axis):
  h = _linear_recurrence_loop(a, b, reverse, axis)
  return h, (a, h)


def _shift(x: jax.Array, axis: int, by: int) -> jax.Array:
  """``y_t = x_{t - by}`` along ``axis``, zero where ``t - by`` falls outside (``by`` = +-1)."""
  config = [(0, 0, 0)] * x.ndim
  config[axis] = (by, -by, 0)
  return jax.lax.pad(x, jnp.zeros((), x.dtype), config)


def _linear_recurrence_bwd(reverse, axis, residuals, g):
  a, h = residuals
  step = -1 if reverse else 1  # h_t depends on h_{t - step}
  # l_t = g_t + a_{t+step} l_{t+step}: the same recurrence run the other way.
  lam = _linear_recurrence_loop(_shift(a, axis, -step), g, not reverse, axis)
  return lam * _shift(h, axis, step), lam


linear_recurrence.defvjp(_linear_recurrence_fwd, _linear_recurrence_bwd)


def recurrent_scan(z: jax.Array, f: jax.Array, reverse: bool = False, axis: int = 1) -> jax.Array:
  """``h_t = f_t * h_{t-1} + (1 - f_t) * z_t`` along ``axis`` with ``h_{-1} = 0``.

  The official loop's order of operations, through :func:`linear_recurrence`.

  Args:
    z: candidate states, e.g. ``(N, D, H, W, C)``.
    f: forget gates in ``[0, 1]``, same shape.
    reverse: scan from the last index down.
    axis: the scanned (band) axis.

  Returns:
    Hidden states ``h``, same shape as ``z``.
  """
  return linear_recurrence(f, (1.0 - f) * z, reverse, axis)


class MLP(nn.Module):
  """1x1x1 conv -> tanh -> 1x1x1 conv, both with bias (``2C^2 + 2C`` parameters)."""

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the MLP.

    Args:
      v: ``(N, D, H, W, C)``.

    Returns:
      ``(N, D, H, W, C)``.
    """
    c = v.shape[-1]
    return layers.pointwise(c, name="w_2")(jnp.tanh(layers.pointwise(c, name="w_1")(v)))


class MHRSA(nn.Module):
  """Multi-head recurrent spectral attention (v2).

  ``Z = tanh(MLP(x))``, ``F = sigmoid(MLP'(x))``; the first half of the channels scans the bands
  in one direction and the second half in the other (``reverse`` swaps them).

  Attributes:
    multi_head: split the channels into two opposite-direction heads (else one scan).
  """

  multi_head: bool = True

  @nn.compact
  def __call__(self, v: jax.Array, reverse: bool = False) -> jax.Array:
    """Applies the recurrent attention.

    Args:
      v: ``(N, D, H, W, C)``.
      reverse: scan the bands from the last to the first (swapped halves with multi-head).

    Returns:
      ``(N, D, H, W, C)``.
    """
    z = jnp.tanh(MLP(name="mlp_z")(v))
    f = jax.nn.sigmoid(MLP(name="mlp_f")(v))
    if not self.multi_head:
      return recurrent_scan(z, f, reverse)
    half = v.shape[-1] // 2
    flip_second = lambda t: jnp.concatenate([t[..., :half], jnp.flip(t[..., half:], axis=1)], -1)
    return flip_second(recurrent_scan(flip_second(z), flip_second(f), reverse))


class PSCA(nn.Module):
  """Progressive spectral channel attention: ``x <- x + w_3(x) * x``; ``w_2(GELU(w_1 x))``.

  Three bias-free 1x1x1 convs (``5C^2`` parameters), exact GELU.

  Attributes:
    zero_init_w3: zero-initialise ``w_3`` instead of Kaiming.
  """

  zero_init_w3: bool = False

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the channel attention.

    Args:
      v: ``(N, D, H, W, C)``.

    Returns:
      ``(N, D, H, W, C)``.
    """
    c = v.shape[-1]
    w3_init = nn.initializers.zeros if self.zero_init_w3 else layers.kaiming_fan_out
    v = v + layers.pointwise(c, use_bias=False, kernel_init=w3_init, name="w_3")(v) * v
    hidden = nn.gelu(layers.pointwise(2 * c, use_bias=False, name="w_1")(v), approximate=False)
    return layers.pointwise(c, use_bias=False, name="w_2")(hidden)


class ASC(nn.Module):
  """Attentive skip connection: ``w = sigmoid(conv3(act(conv1([x, y]))))``, ``(1-w) x + w y``.

  ``x`` is the decoder feature, ``y`` the encoder skip. ``activation`` is LeakyReLU(0.01) in v2
  and tanh in v1 (``AdaptiveSkipConnection``). ``29C^2 + 2C`` parameters.

  Attributes:
    activation: activation after the 1x1x1 reduction.
  """

  activation: Callable[[jax.Array], jax.Array] = nn.leaky_relu

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    """Fuses decoder feature and skip.

    Args:
      x: decoder feature, ``(N, D, H, W, C)``.
      y: encoder skip, ``(N, D, H, W, C)``.

    Returns:
      ``(N, D, H, W, C)``.
    """
    c = x.shape[-1]
    w = self.activation(layers.pointwise(c, name="reduce")(jnp.concatenate([x, y], axis=-1)))
    w = jax.nn.sigmoid(layers.conv3d(c, use_bias=True, name="gate")(w))
    return (1.0 - w) * x + w * y


class MAB(nn.Module):
  """Mixed attention block (v2): conv -> MHRSA(reverse) -> PSCA.

  ``kind``: ``"plain"`` Conv3d 3x3x3; ``"down"`` stride (1, 2, 2); ``"up"`` x2 trilinear
  (align_corners) upsampling in H, W then Conv3d 3x3x3. Convs without bias.

  Attributes:
    features: output channels.
    kind: ``"plain"``, ``"down"`` or ``"up"``.
    zero_init_psca: zero-initialise PSCA's ``w_3``.
  """

  features: int
  kind: str = "plain"
  zero_init_psca: bool = False

  @nn.compact
  def __call__(self, v: jax.Array, reverse: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      v: ``(N, D, H, W, C_in)``.
      reverse: scan the bands from the last to the first (swapped halves with multi-head).

    Returns:
      ``(N, D, H', W', features)`` (H, W halved by ``"down"``, doubled by ``"up"``).
    """
    if self.kind == "up":
      v = layers.upsample_hw(v)
    stride = (1, 2, 2) if self.kind == "down" else (1, 1, 1)
    v = layers.conv3d(self.features, stride=stride, name="conv")(v)
    v = MHRSA(name="mhrsa")(v, reverse)
    return PSCA(self.zero_init_psca, name="psca")(v)


def _check_man_input(x: jax.Array, sample_idx, channels: int, even: bool) -> None:
  layers.check_cube(x, 2 ** len(sample_idx))
  if even and channels % 2:
    raise ValueError(f"channels: expected an even width (two spectral heads), got {channels}")


def _decoder_plan(channels: int, num_half_layer: int, sample_idx) -> list[tuple[int, str, int]]:
  """``(features, kind, fusion width)`` per decoder layer, from the bottleneck up."""
  c = channels * 2 ** len(sample_idx)
  plan = []
  for i in reversed(range(num_half_layer)):
    fusion_width = c
    up = i in sample_idx
    c = c // 2 if up else c
    plan.append((c, "up" if up else "plain", fusion_width))
  return plan


class MAN(nn.Module):
  """MAN v2 on bands-last cubes ``(N, H, W, bands)`` -> same shape (``out = net(x) + x``).

  Attributes:
    channels: base width C (MAN-S 12, MAN-M 16, MAN-L 20); must be even.
    num_half_layer: encoder (= decoder) depth L.
    sample_idx: encoder layers that halve H and W (and double the width).
    count_unused_fusion: create the official, never-used ``fusions[0]`` parameters.
    zero_init_psca: zero-initialise PSCA's ``w_3`` (the module's intent) instead of the training
      scripts' Kaiming init.
  """

  channels: int = 16
  num_half_layer: int = 5
  sample_idx: tuple[int, ...] = (1, 3)
  count_unused_fusion: bool = True
  zero_init_psca: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Denoises a cube (``out = net(x) + x``).

    Args:
      x: noisy cube ``(N, H, W, bands)``, H and W divisible by ``2 ** len(sample_idx)``.

    Returns:
      ``(N, H, W, bands)``.

    Raises:
      ValueError: if ``x`` is not a cube with H, W divisible by ``2 ** len(sample_idx)``
        or ``channels`` is odd.
    """
    _check_man_input(x, self.sample_idx, self.channels, even=True)
    mab = lambda features, kind, name: MAB(features, kind, self.zero_init_psca, name=name)
    v = layers.to_volume(x)
    head = mab(self.channels, "plain", "head")(v, False)
    z, skips, c, reverse = head, [], self.channels, True
    for i in range(self.num_half_layer):
      down = i in self.sample_idx
      c = 2 * c if down else c
      z = mab(c, "down" if down else "plain", f"encoder_{i}")(z, reverse)
      reverse = not reverse
      if i < self.num_half_layer - 1:
        skips.append(z)
    reverse = True
    for k, (features, kind, _) in enumerate(_decoder_plan(self.channels, self.num_half_layer,
                                                          self.sample_idx)):
      if k:
        z = ASC(name=f"fusion_{k}")(z, skips.pop())
      elif self.count_unused_fusion and self.is_initializing():
        ASC(name="fusion_0")(z, z)
      z = mab(features, kind, f"decoder_{k}")(z, reverse)
      reverse = not reverse
    out = layers.conv3d(1, use_bias=True, name="tail")(z + head) + v
    return layers.from_volume(out)


def _transposed_bias_init(key, shape, dtype=jnp.float32):
  # PyTorch ConvTranspose3d bias: U(-1/sqrt(out * 27), 1/sqrt(out * 27)).
  bound = 1.0 / np.sqrt(27 * shape[-1])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class RecurrentAttention(nn.Module):
  """v1 mixed attention block (``MAB`` / ``BiMAB`` of ``mans.py``) with channel attention.

  ``Z = tanh(MLP(x))``, gate ``F = sigmoid(MLP'(x))``; one scan over all channels (direction by
  ``reverse``), or with ``bidirectional`` a second gate ``F2`` and ``h_fwd + h_bwd``; then
  ``y * sigmoid(conv1(mean_{D,H,W} y))``. ``5C^2 + 5C`` (``7C^2 + 7C`` bidirectional) parameters.

  Attributes:
    reverse: scan direction (ignored when bidirectional).
    bidirectional: forward plus backward scan.
  """

  reverse: bool = False
  bidirectional: bool = False

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the attention.

    Args:
      v: ``(N, D, H, W, C)``.

    Returns:
      ``(N, D, H, W, C)``.
    """
    z = jnp.tanh(MLP(name="mlp_z")(v))
    f = jax.nn.sigmoid(MLP(name="mlp_f")(v))
    if self.bidirectional:
      f2 = jax.nn.sigmoid(MLP(name="mlp_f2")(v))
      y = recurrent_scan(z, f) + recurrent_scan(z, f2, reverse=True)
    else:
      y = recurrent_scan(z, f, self.reverse)
    gate = layers.pointwise(v.shape[-1], name="sca")(y.mean(axis=(1, 2, 3), keepdims=True))
    return y * jax.nn.sigmoid(gate)


class StageV1(nn.Module):
  """v1 layer: conv (``plain``, ``down``, ``up`` or ``transposed``) -> RecurrentAttention.

  Attributes:
    features: output channels.
    kind: ``"plain"``, ``"down"``, ``"up"`` or ``"transposed"`` (a flipped-kernel Conv3d with
      PyTorch's ConvTranspose3d init).
    reverse: scan direction of the attention.
    bidirectional: bidirectional attention.
    use_bias: conv bias.
  """

  features: int
  kind: str = "plain"
  reverse: bool = False
  bidirectional: bool = False
  use_bias: bool = False

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the layer.

    Args:
      v: ``(N, D, H, W, C_in)``.

    Returns:
      ``(N, D, H', W', features)`` (H, W halved by ``"down"``, doubled by ``"up"``).
    """
    if self.kind == "up":
      v = layers.upsample_hw(v)
    if self.kind == "transposed":
      conv = layers.conv3d(self.features, use_bias=self.use_bias,
                           kernel_init=layers.torch_transpose_default,
                           bias_init=_transposed_bias_init, name="conv")
    else:
      stride = (1, 2, 2) if self.kind == "down" else (1, 1, 1)
      conv = layers.conv3d(self.features, stride=stride, use_bias=self.use_bias, name="conv")
    return RecurrentAttention(self.reverse, self.bidirectional, name="attn")(conv(v))


class MANv1(nn.Module):
  """MAN v1 (first arXiv version, ``mans.py``; released checkpoints ``man_*``).

  Attributes as :class:`MAN`; encoder layer ``i`` scans in reverse when ``i`` is odd, decoder layer
  built for ``i`` when ``i`` is even; head and tail use the bidirectional block.

  Attributes:
    channels: base width C.
    num_half_layer: encoder (= decoder) depth L.
    sample_idx: encoder layers that halve H and W (and double the width).
    count_unused_fusion: create the official, never-used ``fusions[0]`` parameters.
  """

  channels: int = 16
  num_half_layer: int = 5
  sample_idx: tuple[int, ...] = (1, 3)
  count_unused_fusion: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Denoises a cube (``out = net(x) + x``).

    Args:
      x: noisy cube ``(N, H, W, bands)``, H and W divisible by ``2 ** len(sample_idx)``.

    Returns:
      ``(N, H, W, bands)``.

    Raises:
      ValueError: if ``x`` is not a cube with H, W divisible by ``2 ** len(sample_idx)``.
    """
    _check_man_input(x, self.sample_idx, self.channels, even=False)
    fusion = lambda name: ASC(jnp.tanh, name=name)
    v = layers.to_volume(x)
    head = StageV1(self.channels, bidirectional=True, name="head")(v)
    z, skips, c = head, [], self.channels
    for i in range(self.num_half_layer):
      down = i in self.sample_idx
      c = 2 * c if down else c
      z = StageV1(c, "down" if down else "plain", reverse=i % 2 == 1, name=f"encoder_{i}")(z)
      if i < self.num_half_layer - 1:
        skips.append(z)
    plan = _decoder_plan(self.channels, self.num_half_layer, self.sample_idx)
    for k, (features, kind, _) in enumerate(plan):
      if k:
        z = fusion(f"fusion_{k}")(z, skips.pop())
      elif self.count_unused_fusion and self.is_initializing():
        fusion("fusion_0")(z, z)
      i = self.num_half_layer - 1 - k
      z = StageV1(features, "up" if kind == "up" else "transposed", reverse=i % 2 == 0,
                  name=f"decoder_{k}")(z)
    out = StageV1(1, "transposed", bidirectional=True, use_bias=True, name="tail")(z + head)
    return layers.from_volume(out + v)


_LAYER_RENAMES = (
    (r"^encoder\.layers\.(\d+)\.", r"encoder_\1."),
    (r"^decoder\.layers\.(\d+)\.", r"decoder_\1."),
    (r"^decoder\.fusions\.(\d+)\.", r"fusion_\1."),
)
_V2_RENAMES = _LAYER_RENAMES + (
    (r"\.conv\.conv3d\.", ".conv."),
    (r"\.inter_sa\.ffn1\.", ".mhrsa.mlp_z."),
    (r"\.inter_sa\.ffn2\.", ".mhrsa.mlp_f."),
    (r"\.intra_sa\.", ".psca."),
    (r"\.weight\.0\.", ".reduce."),
    (r"\.weight\.2\.", ".gate."),
)
_V1_RENAMES = _LAYER_RENAMES + (
    (r"^(head|tail)\.0\.", r"\1.conv."),
    (r"^(head|tail)\.1\.", r"\1.attn."),
    (r"\.conv_weight\.0\.", ".reduce."),
    (r"\.conv_weight\.2\.", ".gate."),
    (r"\.ffn_f\.", ".mlp_z."),
    (r"\.ffn_w2\.", ".mlp_f2."),
    (r"\.ffn_w\.", ".mlp_f."),
    (r"\.sca\.sca\.1\.", ".sca."),
)


def _layout(state_dict: Mapping[str, np.ndarray], head_key: str) -> tuple[int, int, tuple]:
  if head_key not in state_dict:
    raise ValueError(f"state_dict: not a MAN state_dict of this version (no {head_key!r})")
  head = state_dict[head_key]
  if head.shape[1] != 1:
    raise ValueError(f"state_dict: {head.shape[1]} input channels; only in_channels=1 is supported")
  encoder = layers.layer_indices(state_dict, "encoder.layers")
  shapes = [state_dict[f"encoder.layers.{i}.conv.weight"].shape for i in encoder]
  sample_idx = tuple(i for i, s in zip(encoder, shapes, strict=True) if s[0] == 2 * s[1])
  return head.shape[0], len(encoder), sample_idx


def _convert(module: nn.Module, state_dict, renames, transposed=lambda key: False) -> dict:
  side = 2 ** len(module.sample_idx)
  expected = jax.eval_shape(module.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, side, side, 4), jnp.float32))
  return layers.load_torch(state_dict, renames, expected, transposed)


def from_torch(state_dict: Mapping[str, np.ndarray]) -> tuple[MAN, dict]:
  """An official ``mans_v2.MAN(..., Fusion=ASC)`` ``state_dict`` -> ``(MAN, variables)``.

  Args:
    state_dict: ``{name: array}`` of the official v2 model.

  Returns:
    ``(module, {"params": ...})``.

  Raises:
    ValueError: if it is not a v2 MAN state_dict, has more than one input channel, or does not
      match the configuration read off its shapes.
  """
  channels, depth, sample_idx = _layout(state_dict, "head.conv.weight")
  module = MAN(channels, depth, sample_idx,
               count_unused_fusion="decoder.fusions.0.weight.0.weight" in state_dict)
  return module, _convert(module, state_dict, _V2_RENAMES)


def from_torch_v1(state_dict: Mapping[str, np.ndarray]) -> tuple[MANv1, dict]:
  """An official ``mans.MAN`` (v1) ``state_dict`` -> ``(MANv1, variables)``.

  ``ConvTranspose3d`` weights (decoder plain layers and the tail) become flipped Conv3d kernels.

  Args:
    state_dict: ``{name: array}`` of the official v1 model.

  Returns:
    ``(module, {"params": ...})``.

  Raises:
    ValueError: if it is not a v1 MAN state_dict, has more than one input channel, or does not
      match the configuration read off its shapes.
  """
  channels, depth, sample_idx = _layout(state_dict, "head.0.weight")
  module = MANv1(channels, depth, sample_idx,
                 count_unused_fusion="decoder.fusions.0.conv_weight.0.weight" in state_dict)
  plain_decoder = {f"decoder.layers.{depth - 1 - i}.conv.weight"
                   for i in range(depth) if i not in sample_idx}
  transposed = lambda key: key in plain_decoder or key == "tail.0.weight"
  return module, _convert(module, state_dict, _V1_RENAMES, transposed)


def _example(module: nn.Module) -> dict:
  return {"x": jax.ShapeDtypeStruct((1, 64, 64, 31), jnp.float32)}


def _spec(cls, converter, **defaults) -> ModelSpec:
  return ModelSpec(build=lambda **kw: cls(**{**defaults, **kw}), example_inputs=_example,
                   from_torch=converter)


MODELS = {
    "man_s": _spec(MAN, from_torch, channels=12),
    "man": _spec(MAN, from_torch),
    "man_l": _spec(MAN, from_torch, channels=20),
    "man_v1_s": _spec(MANv1, from_torch_v1, channels=8),
    "man_v1_m": _spec(MANv1, from_torch_v1, channels=12),
    "man_v1": _spec(MANv1, from_torch_v1),
    "man_v1_b": _spec(MANv1, from_torch_v1, num_half_layer=7, sample_idx=(1, 3, 5)),
}
