"""Spec ResNet-50: the SpectralEarth convolutional backbone (spectral adapter + ResNet-50).

Braham, Albrecht, Mairal, Chanussot, Wang, Zhu, "SpectralEarth: Training Hyperspectral Foundation
Models at Scale", arXiv 2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth
(``src/backbones/spec_resnet.py``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn.model_spec import ModelSpec
from jspectral.nn.resnet import global_average_pool
from jspectral.nn.spectral_adapter import SpectralAdapter, batch_norm, convert_torch_adapter


def _conv(features: int, kernel: int, name: str, strides: int = 1, dilation: int = 1) -> nn.Conv:
  pad = dilation * (kernel // 2)
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides), padding=[(pad, pad)] * 2,
                 kernel_dilation=(dilation, dilation), use_bias=False, name=name)


class CustomBottleneck(nn.Module):
  """SpectralEarth's first ResNet block: three convolutions of ``features`` channels each.

  ``1x1 -> BN -> ReLU -> 3x3 (stride, dilation) -> BN -> ReLU -> 1x1 -> BN``, plus a ``1x1``
  strided conv + BN shortcut, then ReLU. Unlike a standard bottleneck there is no 4x reduction.

  Attributes:
    features: channels of every convolution and of the output.
    strides: stride of the 3x3 convolution and of the shortcut.
    dilation: dilation of the 3x3 convolution.
  """

  features: int = 256
  strides: int = 2
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, C)``.
      train: BatchNorm mode.

    Returns:
      ``(N, H / strides, W / strides, features)``.
    """
    y = nn.relu(batch_norm(train, "bn1")(_conv(self.features, 1, "conv1")(x)))
    y = _conv(self.features, 3, "conv2", self.strides, self.dilation)(y)
    y = nn.relu(batch_norm(train, "bn2")(y))
    y = batch_norm(train, "bn3")(_conv(self.features, 1, "conv3")(y))
    shortcut = batch_norm(train, "downsample_1")(
        _conv(self.features, 1, "downsample_0", self.strides)(x))
    return nn.relu(y + shortcut)


class Bottleneck(nn.Module):
  """timm ``resnet50`` bottleneck with a projection shortcut when the shape changes.

  Width ``planes``, output ``4 * planes``, stride on the 3x3 conv, 1x1-conv + BN shortcut when the
  shape changes; the last BN's scale starts at zero (timm).

  Attributes:
    planes: width of the 1x1 and 3x3 convolutions.
    strides: stride of the 3x3 convolution.
    dilation: dilation of the 3x3 convolution.
  """

  planes: int
  strides: int = 1
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, C)``.
      train: BatchNorm mode.

    Returns:
      ``(N, H / strides, W / strides, 4 * planes)``.
    """
    out = 4 * self.planes
    y = nn.relu(batch_norm(train, "bn1")(_conv(self.planes, 1, "conv1")(x)))
    y = nn.relu(batch_norm(train, "bn2")(
        _conv(self.planes, 3, "conv2", self.strides, self.dilation)(y)))
    y = batch_norm(train, "bn3", scale_init=nn.initializers.zeros)(_conv(out, 1, "conv3")(y))
    if self.strides != 1 or x.shape[-1] != out:
      x = batch_norm(train, "downsample_1")(_conv(out, 1, "downsample_0", self.strides)(x))
    return nn.relu(y + x)


class SpecResNet50(nn.Module):
  """Spectral adapter + stem-less ResNet-50 whose first block is :class:`CustomBottleneck`.

  ``replace_stride_with_dilation`` removes every stride of the chosen stages (the custom block's
  included) and sets the 3x3 dilation of every block of those stages to 1, 2, 4, 8 in order of
  replaced stages, as the official ``CustomResNet50`` does; all four replaced gives output stride 1.

  Attributes:
    num_classes: size of the ``fc`` head; 0 = identity.
    replace_stride_with_dilation: one flag per stage (4).
    return_features: return the last feature map instead of the pooled feature.
    stage_sizes: blocks per stage (3, 4, 6, 3); a prefix builds a truncated network.
  """

  num_classes: int = 0
  replace_stride_with_dilation: tuple[bool, ...] = (False, False, False, False)
  return_features: bool = False
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the backbone.

    Args:
      x: bands-last cubes ``(N, H, W, B)``, ``B >= 75``.
      train: BatchNorm mode.

    Returns:
      ``(N, 2048)`` pooled features (or ``(N, num_classes)`` logits when ``num_classes > 0``), or
      the feature map ``(N, H/16, W/16, 2048)`` with ``return_features``.
    """
    if len(self.stage_sizes) > 4 or len(self.replace_stride_with_dilation) != 4:
      raise ValueError("stage_sizes: at most 4 stages; replace_stride_with_dilation: 4 flags")
    y = SpectralAdapter(name="spectral_adapter")(x, train)
    dilation = 1
    for stage, (blocks, dilate) in enumerate(
        zip(self.stage_sizes, self.replace_stride_with_dilation, strict=False)):
      stride = 1 if dilate else 2
      block_dilation = dilation if dilate else 1
      for b in range(blocks):
        name = f"layer{stage + 1}_{b}"
        s = stride if b == 0 else 1
        if stage == 0 and b == 0:
          y = CustomBottleneck(256, s, block_dilation, name=name)(y, train)
        else:
          y = Bottleneck(64 * 2**stage, s, block_dilation, name=name)(y, train)
      if dilate:
        dilation *= 2
    if self.return_features:
      return y
    y = global_average_pool(y)
    return nn.Dense(self.num_classes, name="fc")(y) if self.num_classes else y


def _convert_resnet(sd, prefix: str) -> tuple[dict, dict, tuple[int, ...]]:
  params, stats = {}, {}
  stage_sizes = []
  for stage in range(1, 5):
    blocks = sorted({int(k[len(f"{prefix}layer{stage}."):].split(".")[0]) for k in sd
                     if k.startswith(f"{prefix}layer{stage}.")})
    if not blocks:
      break
    stage_sizes.append(len(blocks))
    for b in blocks:
      head = f"{prefix}layer{stage}.{b}."
      p, s = {}, {}
      for conv in ("conv1", "conv2", "conv3", "downsample.0"):
        if f"{head}{conv}.weight" in sd:
          p[conv.replace(".", "_")] = {"kernel": sd[f"{head}{conv}.weight"].transpose(2, 3, 1, 0)}
      for bn in ("bn1", "bn2", "bn3", "downsample.1"):
        if f"{head}{bn}.weight" in sd:
          key = bn.replace(".", "_")
          p[key] = {"scale": sd[f"{head}{bn}.weight"], "bias": sd[f"{head}{bn}.bias"]}
          s[key] = {"mean": sd[f"{head}{bn}.running_mean"], "var": sd[f"{head}{bn}.running_var"]}
      params[f"layer{stage}_{b}"], stats[f"layer{stage}_{b}"] = p, s
  if f"{prefix}fc.weight" in sd:
    params["fc"] = {"kernel": sd[f"{prefix}fc.weight"].T, "bias": sd[f"{prefix}fc.bias"]}
  return params, stats, tuple(stage_sizes)


def spec_resnet50_from_torch(state_dict, **overrides) -> tuple[SpecResNet50, dict]:
  """Builds a :class:`SpecResNet50` and its variables from the official ``SpecResNet50`` state dict.

  Missing later stages give a truncated network.

  Args:
    state_dict: keys ``spectral_adapter.*``, ``resnet.layer*`` and optionally ``resnet.fc``.
    **overrides: further :class:`SpecResNet50` fields (e.g. ``return_features=True``).

  Returns:
    ``(module, variables)`` with ``params`` and ``batch_stats``.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  if "spectral_adapter.0.weight" not in sd or "resnet.layer1.0.conv1.weight" not in sd:
    raise ValueError("state_dict: expected SpecResNet50 keys 'spectral_adapter.*' and "
                     "'resnet.layer1.0.*'")
  params, stats, stage_sizes = _convert_resnet(sd, "resnet.")
  adapter = convert_torch_adapter(sd, "spectral_adapter.")
  params["spectral_adapter"] = adapter["params"]
  stats["spectral_adapter"] = adapter["batch_stats"]
  num_classes = sd["resnet.fc.weight"].shape[0] if "resnet.fc.weight" in sd else 0
  module = SpecResNet50(num_classes=num_classes, stage_sizes=stage_sizes, **overrides)
  return module, jax.tree.map(jnp.asarray, {"params": params, "batch_stats": stats})



def _example(size: int = 128):
  return lambda m: {"x": jax.ShapeDtypeStruct((1, size, size, 202), jnp.float32)}


MODELS = {
    "spec_resnet50": ModelSpec(build=SpecResNet50, example_inputs=_example(),
                               from_torch=spec_resnet50_from_torch),
}
