"""HSDT: Hybrid Spectral Denoising Transformer with Guided Attention.

Z. Lai, C. Yan, Y. Fu, "Hybrid Spectral Denoising Transformer with Guided Attention", ICCV 2023
(arXiv:2303.09040). Official code: https://github.com/Zeqiang-Lai/HSDT (``hsdt/arch.py``,
``hsdt/attention.py``, ``hsdt/sepconv.py``); facts in ``specs/hsdt.md``.

Input and output are bands-last cubes ``(N, H, W, bands)``; the network treats the spectrum as the
depth axis of 3-D feature maps and works internally on ``(N, bands, H, W, features)``.

Differences from the official code (numerics unchanged unless stated):

* GSSA's training-time switch between self attention and the learned-query (guided) attention
  draws one Bernoulli(1/2) per GSSA module per forward call from the explicit ``"gssa"`` RNG
  stream (the official code uses Python's global ``random``), so it works under ``jit``.
* ``flex=True`` uses the self branch whenever the band count differs from ``num_bands`` (train
  and eval); the official reshape to ``(B, num_bands, num_bands)`` fails on such inputs. With
  ``flex=False`` a band count other than ``num_bands`` is a ``ValueError``.
* Spatial sizes not divisible by ``2 ** len(sample_idx)`` raise a ``ValueError`` (the official
  model fails with a shape mismatch in a skip addition).
* BatchNorm follows PyTorch (:class:`~jspectral.nn.batchnorm.TorchBatchNorm`): normalises
  with the biased batch variance, updates the running variance with the unbiased one, momentum
  0.1, eps 1e-5 (Flax's BatchNorm would update with the biased variance).
* Initialisation follows the training scripts' ``init_params(net, "kn")``: convolutions
  Kaiming-normal (fan_out, ReLU gain), every Linear weight N(0, 1e-3^2), biases 0, BN 1/0.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.denoising import layers
from jspectral.nn import batchnorm, dense
from jspectral.nn.model_spec import ModelSpec

_linear_init = nn.initializers.normal(1e-3)


class S3Conv(nn.Module):
  """Spatial-spectral separable 3-D conv: ``spatial(x) + spectral(x)``.

  ``spatial`` = Conv(1,3,3) -> LeakyReLU(0.01) -> Conv(1,3,3) -> LeakyReLU(0.01); ``spectral`` =
  Conv(3,1,1). All full convolutions without bias: ``12 in out + 9 out^2`` parameters.

  Attributes:
    features: output channels.
  """

  features: int

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the conv.

    Args:
      v: ``(N, D, H, W, C_in)``.

    Returns:
      ``(N, D, H, W, features)``.
    """
    a = nn.leaky_relu(layers.conv3d(self.features, (1, 3, 3), name="spatial_0")(v), 0.01)
    a = nn.leaky_relu(layers.conv3d(self.features, (1, 3, 3), name="spatial_1")(a), 0.01)
    return a + layers.conv3d(self.features, (3, 1, 1), name="spectral")(v)


class GSSA(nn.Module):
  """Guided spectral self-attention over the band axis of ``(N, D, H, W, C)`` features.

  Band descriptors ``p = mean_{H,W}(x)`` ``(N, D, C)``; logits are either ``p p^T`` (self
  branch, no scaling) or ``attn_proj(p)`` (learned queries, ``D == num_bands`` only); softmax
  over the last axis; ``out = fc(A @ value_proj(x)) + x``. The attention ``(N, D, D)`` is sown
  as ``intermediates/attention``.

  Attributes:
    num_bands: band count the learned queries are built for.
    flex: evaluate with the self branch (any band count).
  """

  num_bands: int = 31
  flex: bool = False

  def _self_branch(self) -> jax.Array:
    """This call's training-time branch: a ``gssa_branch/self_branch`` boolean given with the
    variables (to follow a recorded sequence, e.g. the official draws) or Bernoulli(1/2)."""
    if self.has_variable("gssa_branch", "self_branch"):
      return self.get_variable("gssa_branch", "self_branch")
    return jax.random.bernoulli(self.make_rng("gssa"))

  @nn.compact
  def __call__(self, v: jax.Array, train: bool = False) -> jax.Array:
    """Applies the guided spectral self-attention.

    Args:
      v: ``(N, D, H, W, C)``.
      train: switch between the self and guided branch at random (``"gssa"`` RNG), or as the
        ``gssa_branch`` collection says when the variables carry one.

    Returns:
      ``(N, D, H, W, C)``.

    Raises:
      ValueError: if ``D != num_bands`` and not ``flex``.
    """
    bands, channels = v.shape[1], v.shape[-1]
    pooled = v.mean(axis=(2, 3))
    guided = dense.Dense(self.num_bands, kernel_init=_linear_init, name="attn_proj")(pooled)
    self_logits = jnp.einsum("nic,njc->nij", pooled, pooled)
    if bands != self.num_bands:
      if not self.flex:
        raise ValueError(f"x: {bands} bands, but the guided attention is built for num_bands="
                         f"{self.num_bands}; use flex=True for other band counts")
      logits = self_logits
    elif train:
      logits = jnp.where(self._self_branch(), self_logits, guided)
    else:
      logits = self_logits if self.flex else guided
    attn = jax.nn.softmax(logits, axis=-1)
    self.sow("intermediates", "attention", attn)
    values = dense.Dense(channels, use_bias=False, kernel_init=_linear_init, name="value_proj")(v)
    mixed = jnp.einsum("nij,njhwc->nihwc", attn, values)
    return dense.Dense(channels, use_bias=False, kernel_init=_linear_init, name="fc")(mixed) + v


class SMFFN(nn.Module):
  """Self-modulated feed-forward: ``w_2(GELU(w_1 x)) + a * sigmoid(g)``, ``[a, g] = w_3 x``.

  Exact (erf) GELU; all three Linears with bias (``6C^2 + 5C`` parameters).
  """

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the feed-forward.

    Args:
      v: ``(N, D, H, W, C)``.

    Returns:
      ``(N, D, H, W, C)``.
    """
    c = v.shape[-1]
    hidden = nn.gelu(dense.Dense(2 * c, kernel_init=_linear_init, name="w_1")(v), approximate=False)
    x1 = dense.Dense(c, kernel_init=_linear_init, name="w_2")(hidden)
    a, g = jnp.split(dense.Dense(2 * c, kernel_init=_linear_init, name="w_3")(v), 2, axis=-1)
    return x1 + a * jax.nn.sigmoid(g)


class TransformerBlock(nn.Module):
  """``SMFFN(GSSA(x))``: the only residual is inside GSSA; no normalisation.

  Attributes:
    num_bands: band count of the learned GSSA queries.
    flex: evaluate GSSA with its self branch.
  """

  num_bands: int = 31
  flex: bool = False

  @nn.compact
  def __call__(self, v: jax.Array, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      v: ``(N, D, H, W, C)``.
      train: training mode (batch statistics / GSSA branch switch).

    Returns:
      ``(N, D, H, W, C)``.
    """
    v = GSSA(self.num_bands, self.flex, name="attn")(v, train)
    return SMFFN(name="ffn")(v)


class Stage(nn.Module):
  """conv -> BatchNorm -> TransformerBlock; ``kind`` picks the conv.

  ``"plain"``: S3Conv; ``"down"``: Conv3d 3x3x3 stride (1, 2, 2); ``"up"``: x2 trilinear
  (align_corners) upsampling in H, W then Conv3d 3x3x3.

  Attributes:
    features: output channels.
    kind: ``"plain"``, ``"down"`` or ``"up"``.
    num_bands: band count of the learned GSSA queries.
    flex: evaluate GSSA with its self branch.
  """

  features: int
  kind: str = "plain"
  num_bands: int = 31
  flex: bool = False

  @nn.compact
  def __call__(self, v: jax.Array, train: bool = False) -> jax.Array:
    """Applies the stage.

    Args:
      v: ``(N, D, H, W, C)``.
      train: training mode (batch statistics / GSSA branch switch).

    Returns:
      ``(N, D, H', W', features)`` (H, W halved by ``"down"``, doubled by ``"up"``).
    """
    if self.kind == "plain":
      v = S3Conv(self.features, name="conv")(v)
    elif self.kind == "down":
      v = layers.conv3d(self.features, stride=(1, 2, 2), name="conv")(v)
    else:
      v = layers.conv3d(self.features, name="conv")(layers.upsample_hw(v))
    v = batchnorm.TorchBatchNorm(name="bn")(v, use_running_average=not train)
    return TransformerBlock(self.num_bands, self.flex, name="block")(v, train)


class HSDT(nn.Module):
  """The HSDT U-Net denoiser on bands-last cubes ``(N, H, W, bands)`` -> same shape.

  Attributes:
    channels: base width C (HSDT-S 8, HSDT-M 16, HSDT-L 16).
    num_half_layer: encoder (= decoder) depth L.
    sample_idx: encoder layers that halve H and W (and double the width).
    num_bands: band count of the learned GSSA queries.
    flex: evaluate GSSA with its self branch, which accepts any band count.

  ``train=True`` uses batch statistics (pass ``mutable=["batch_stats"]``) and needs the ``"gssa"``
  RNG stream for the attention-branch switch.
  """

  channels: int = 16
  num_half_layer: int = 5
  sample_idx: tuple[int, ...] = (1, 3)
  num_bands: int = 31
  flex: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Denoises a cube.

    Args:
      x: noisy cube, ``(N, H, W, bands)``; H, W divisible by ``2 ** len(sample_idx)``.
      train: batch statistics (pass ``mutable=["batch_stats"]``) and the GSSA branch switch
        (``"gssa"`` RNG).

    Returns:
      ``(N, H, W, bands)``.

    Raises:
      ValueError: if ``x`` is not a cube of a valid size, or its band count differs from
        ``num_bands`` without ``flex``.
    """
    layers.check_cube(x, 2 ** len(self.sample_idx))
    if x.shape[-1] != self.num_bands and not self.flex:
      raise ValueError(f"x: {x.shape[-1]} bands, but the guided attention is built for "
                       f"num_bands={self.num_bands}; use flex=True for other band counts")
    stage = lambda features, kind, name: Stage(features, kind, self.num_bands, self.flex, name=name)
    v = layers.to_volume(x)
    head = stage(self.channels, "plain", "head")(v, train)
    z, skips, c = head, [], self.channels
    for i in range(self.num_half_layer):
      down = i in self.sample_idx
      c = 2 * c if down else c
      z = stage(c, "down" if down else "plain", f"encoder_{i}")(z, train)
      if i < self.num_half_layer - 1:
        skips.append(z)
    for k, i in enumerate(reversed(range(self.num_half_layer))):
      if k:
        z = z + skips.pop()
      up = i in self.sample_idx
      c = c // 2 if up else c
      z = stage(c, "up" if up else "plain", f"decoder_{k}")(z, train)
    out = layers.conv3d(1, use_bias=True, name="tail")(z + head) + v[..., :1]
    return layers.from_volume(out)


_RENAMES = (
    (r"^encoder\.layers\.(\d+)\.", r"encoder_\1."),
    (r"^decoder\.layers\.(\d+)\.", r"decoder_\1."),
    (r"\.dw_conv\.0\.", ".spatial_0."),
    (r"\.dw_conv\.2\.", ".spatial_1."),
    (r"\.pw_conv\.", ".spectral."),
    (r"\.attn\.attn\.", ".block.attn."),
    (r"\.attn\.ffn\.", ".block.ffn."),
)


def from_torch(state_dict: Mapping[str, np.ndarray]) -> tuple[HSDT, dict]:
  """An official ``hsdt.arch.HSDT`` ``state_dict`` -> ``(HSDT module, variables)``.

  Width, depth, downsampling layers and band count are read off the tensor shapes.

  Args:
    state_dict: ``{name: array}`` of the official model.

  Returns:
    ``(module, {"params", "batch_stats"})``.

  Raises:
    ValueError: if it is not an HSDT state_dict, has more than one input channel, or does not
      match the configuration read off its shapes.
  """
  if "head.conv.dw_conv.0.weight" not in state_dict:
    raise ValueError("state_dict: not an HSDT state_dict (no 'head.conv.dw_conv.0.weight')")
  head = state_dict["head.conv.dw_conv.0.weight"]
  if head.shape[1] != 1:
    raise ValueError(f"state_dict: {head.shape[1]} input channels; only in_channels=1 is supported")
  encoder = layers.layer_indices(state_dict, "encoder.layers")
  sample_idx = tuple(i for i in encoder if f"encoder.layers.{i}.conv.weight" in state_dict)
  num_bands = state_dict["head.attn.attn.attn_proj.weight"].shape[0]
  module = HSDT(channels=head.shape[0], num_half_layer=len(encoder), sample_idx=sample_idx,
                num_bands=num_bands)
  side = 2 ** len(sample_idx)
  expected = jax.eval_shape(module.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, side, side, num_bands), jnp.float32))
  return module, layers.load_torch(state_dict, _RENAMES, expected)


def _example(module: HSDT) -> dict:
  return {"x": jax.ShapeDtypeStruct((1, 64, 64, module.num_bands), jnp.float32), "train": False}


def _spec(**defaults) -> ModelSpec:
  return ModelSpec(build=lambda **kw: HSDT(**{**defaults, **kw}), example_inputs=_example,
                   from_torch=from_torch, rng_names=("gssa",))


MODELS = {
    "hsdt_s": _spec(channels=8),
    "hsdt": _spec(),
    "hsdt_l": _spec(num_half_layer=7, sample_idx=(1, 3, 5)),
}
