"""ResNet backbones (ResNet-18/50) in the layout of the INTL / solo-learn / VICReg code.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
Layout and quirks follow the backbone of winci-ai/INTL (``src/resnet.py``, ``src/model.py``) used by
"Modulate Your Spectrum in Self-Supervised Learning" (Weng et al., ICLR 2024):

* the forward zero-pads the input by 1 pixel before ``conv1``; the ImageNet stem is a 7x7/2 conv
  with padding 2 (1 + 2 = torchvision's 3) followed by a 3x3/2 max-pool; the CIFAR stem replaces it
  by a 3x3/1 conv with padding 1 and no max-pool, so together with the extra pad a 32x32 input gives
  34x34 maps (stages 34/17/9/5). Both are reproduced by one stem convolution with padding ``1 + conv
  padding``.
* stride-2 3x3 convolutions pad (1, 1) explicitly (flax ``"SAME"`` would pad asymmetrically);
  ResNet-50 strides on the 3x3 conv ("v1.5"); no fc: global average pool -> (N, 512 | 2048).
* init: convs kaiming-normal (fan_out, ReLU gain), BatchNorm scale 1 / bias 0;
  ``zero_init_residual`` (last BN scale of every block = 0) is off for ResNet-18 and on for
  ResNet-50, as in the official ``get_backbone``.

Speed (CPU): every convolution is :func:`matmul_grad_conv`, lax's convolution whose weight gradient
is one matmul for the 1x1 shortcuts, where XLA:CPU's convolution form is slow; the pool is
:func:`global_average_pool`, which keeps the last blocks' convolutions out of a YNNPACK fusion.

Images are bands-last ``(N, H, W, 3)``. BatchNorm carries no ``axis_name``: under ``jit`` on a
data-parallel mesh the batch statistics are reduced over the sharded batch axis, i.e. over the
global batch (the official code uses SyncBatchNorm). Deviation: flax updates the running variance
with the biased batch variance (PyTorch uses the unbiased one); this affects eval-mode statistics
only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn.model_spec import ModelSpec

conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
_NHWC = ("NHWC", "HWIO", "NHWC")


def _lax_conv(x, w, stride, padding, precision):
  return jax.lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                      dimension_numbers=_NHWC, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def matmul_grad_conv(x: jax.Array, w: jax.Array, stride: int, padding: int,
                     precision=None) -> jax.Array:
  """The convolution of ``lax``; its weight gradient is written as matmuls where XLA:CPU is slow.

  XLA:CPU (jaxlib 0.10.2) computes a weight gradient as a convolution whose kernel is the whole
  cotangent image, after transposing the input to ``(Ci, H, W, N)``. For the 1x1 kernels of the
  strided projection shortcuts one matmul ``g^T x[:, ::s, ::s]`` is cheaper (CPU seconds, batch
  32, 2 cores: 0.011 / 0.005 / 0.004 s as XLA's convolution vs 0.002 / 0.001 / 0.001 s; the whole
  INTL step 2.01 -> 1.88 s with Eigen's convolutions). Other shapes keep XLA's weight gradient
  (per-tap matmuls measured slower; the CIFAR stem's, 3 -> 64, is 0.0028 s as XLA's with Eigen's
  convolutions, 0.0031 s as nine matmuls). The forward pass and the input gradient are XLA's own;
  values and gradients are those of ``lax`` up to summation order.

  Args:
    x: input ``(N, H, W, Ci)``.
    w: kernel ``(kh, kw, Ci, Co)``.
    stride: the same in both spatial axes.
    padding: zeros on every side.
    precision: ``lax`` precision.

  Returns:
    ``(N, (H + 2 padding - kh) // stride + 1, (W + 2 padding - kw) // stride + 1, Co)``.
  """
  return _lax_conv(x, w, stride, padding, precision)


def _matmul_grad_conv_fwd(x, w, stride, padding, precision):
  return _lax_conv(x, w, stride, padding, precision), (x, w)


def _matmul_grad_conv_bwd(stride, padding, precision, residuals, g):
  x, w = residuals
  kh, kw = w.shape[:2]
  dx = jax.vjp(lambda x: _lax_conv(x, w, stride, padding, precision), x)[1](g)[0]
  if kh * kw == 1 and padding == 0:  # (Co, N H W) @ (N H W, Ci), then transposed
    g_t = jnp.transpose(g, (3, 0, 1, 2))
    dw = jnp.einsum("onhw,nhwi->oi", g_t, x[:, ::stride, ::stride], precision=precision)
    return dx, dw.T.reshape(w.shape)
  return dx, jax.vjp(lambda w: _lax_conv(x, w, stride, padding, precision), w)[1](g)[0]


matmul_grad_conv.defvjp(_matmul_grad_conv_fwd, _matmul_grad_conv_bwd)


def _conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                          rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                          batch_group_count=1, precision=None, preferred_element_type=None):
  """What ``nn.Conv`` calls, routed to :func:`matmul_grad_conv`; the ResNet convolutions use
  square strides and symmetric padding only, so anything else is refused."""
  (lo, hi), (left, right) = padding
  undilated = all(tuple(d or (1, 1)) == (1, 1) for d in (lhs_dilation, rhs_dilation))
  if not (window_strides[0] == window_strides[1] and lo == hi == left == right and undilated
          and feature_group_count == batch_group_count == 1 and preferred_element_type is None
          and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
          == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
    raise ValueError(f"padding/window_strides: expected an NHWC convolution with square strides "
                     f"and symmetric padding, no dilation or groups; got {window_strides}, "
                     f"{padding}")
  return matmul_grad_conv(lhs, rhs, window_strides[0], lo, precision)


def _conv(features: int, kernel: int, stride: int, padding: int, name: str) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=[(padding, padding)] * 2,
                 use_bias=False, kernel_init=conv_init, name=name,
                 conv_general_dilated=_conv_general_dilated)


def batch_norm(train: bool, name: str, zero_init: bool = False) -> nn.BatchNorm:
  """PyTorch-default BatchNorm (momentum 0.1, eps 1e-5) over every axis but the last.

  Args:
    train: use batch statistics (and update the running ones) rather than the running ones.
    name: the submodule name.
    zero_init: start the scale at 0 (``zero_init_residual``) instead of 1.

  Returns:
    An ``nn.BatchNorm``.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name,
                      scale_init=nn.initializers.zeros if zero_init else nn.initializers.ones)


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with a residual; ``expansion`` 1.

  Attributes:
    filters: channels of both convolutions (and of the output).
    stride: stride of the first convolution (and of the projection shortcut).
    zero_init_residual: start the last BatchNorm scale at 0.
  """

  filters: int
  stride: int = 1
  zero_init_residual: bool = False
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, C)``.
      train: BatchNorm mode.

    Returns:
      ``(N, H / stride, W / stride, filters)``.
    """
    y = nn.relu(batch_norm(train, "bn1")(_conv(self.filters, 3, self.stride, 1, "conv1")(x)))
    y = batch_norm(train, "bn2", self.zero_init_residual)(_conv(self.filters, 3, 1, 1, "conv2")(y))
    return nn.relu(y + _shortcut(x, self.filters, self.stride, train))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided) -> 1x1 convolutions with a residual; ``expansion`` 4.

  Attributes:
    filters: width of the 1x1 and 3x3 convolutions; the output has ``4 * filters`` channels.
    stride: stride of the 3x3 convolution (and of the projection shortcut).
    zero_init_residual: start the last BatchNorm scale at 0.
  """

  filters: int
  stride: int = 1
  zero_init_residual: bool = False
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, C)``.
      train: BatchNorm mode.

    Returns:
      ``(N, H / stride, W / stride, 4 * filters)``.
    """
    y = nn.relu(batch_norm(train, "bn1")(_conv(self.filters, 1, 1, 0, "conv1")(x)))
    y = nn.relu(batch_norm(train, "bn2")(_conv(self.filters, 3, self.stride, 1, "conv2")(y)))
    y = _conv(4 * self.filters, 1, 1, 0, "conv3")(y)
    y = batch_norm(train, "bn3", self.zero_init_residual)(y)
    return nn.relu(y + _shortcut(x, 4 * self.filters, self.stride, train))


def _shortcut(x: jax.Array, features: int, stride: int, train: bool) -> jax.Array:
  """Identity, or 1x1 strided conv + BN when the shape changes (called inside a compact block)."""
  if stride == 1 and x.shape[-1] == features:
    return x
  return batch_norm(train, "downsample_bn")(_conv(features, 1, stride, 0, "downsample_conv")(x))


class ResNet(nn.Module):
  """ResNet backbone: stem, four stages, global average pool; no classifier.

  Attributes:
    stage_sizes: blocks per stage ([2, 2, 2, 2] for ResNet-18, [3, 4, 6, 3] for ResNet-50).
    block_cls: :class:`BasicBlock` or :class:`Bottleneck`.
    stem: ``"imagenet"`` (7x7/2 + max-pool) or ``"cifar"`` (3x3/1, no max-pool).
    width: channels of the stem and of the first stage (64).
    zero_init_residual: zero the last BN scale of every block.
    extra_pad: the official extra 1-pixel zero padding before the stem (keep for parity).
  """

  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block_cls: type[nn.Module] = BasicBlock
  stem: str = "imagenet"
  width: int = 64
  zero_init_residual: bool = False
  extra_pad: bool = True

  @property
  def num_features(self) -> int:
    """Width of the pooled feature: 512 for ResNet-18, 2048 for ResNet-50."""
    return self.width * 2 ** (len(self.stage_sizes) - 1) * self.block_cls.expansion

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Pooled features of normalised images.

    Args:
      x: normalised images ``(N, H, W, 3)``.
      train: BatchNorm mode (batch statistics, running averages updated).

    Returns:
      ``(N, num_features)`` pooled features (>= 0).
    """
    if x.ndim != 4:
      raise ValueError(f"x: expected images of shape (N, H, W, C), got shape {x.shape}")
    if self.stem not in ("imagenet", "cifar"):
      raise ValueError(f"stem: expected 'imagenet' or 'cifar', got {self.stem!r}")
    pad = int(self.extra_pad)
    if self.stem == "imagenet":
      x = _conv(self.width, 7, 2, 2 + pad, "conv1")(x)
    else:
      x = _conv(self.width, 3, 1, 1 + pad, "conv1")(x)
    x = nn.relu(batch_norm(train, "bn1")(x))
    if self.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for i, blocks in enumerate(self.stage_sizes):
      for j in range(blocks):
        stride = 2 if i > 0 and j == 0 else 1
        x = self.block_cls(self.width * 2 ** i, stride, self.zero_init_residual,
                           name=f"layer{i + 1}_{j}")(x, train)
    return global_average_pool(x)


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet18Cifar = functools.partial(ResNet18, stem="cifar")
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck,
                             zero_init_residual=True)


def global_average_pool(x: jax.Array) -> jax.Array:
  """Mean of ``(N, H, W, C)`` feature maps over ``H, W`` -> ``(N, C)``, as a matrix-vector product.

  The values of ``x.mean((1, 2))`` up to float rounding: the product runs at full float32 (or
  float64) precision on every backend, half-precision inputs summed in float32. XLA:CPU (jaxlib
  0.10.2) hands a reduction to a YNNPACK fusion together with the elementwise chain that feeds
  it, and in eval mode that chain reaches back through BatchNorm, ReLU and the residual sums into
  the last blocks' convolutions: seven of ResNet-18's twenty then run in YNNPACK instead of Eigen
  (ResNet-18 CIFAR inference, batch 32: 0.24 instead of 0.26 s, docs/benchmarks.md). A product
  is not a reduction, so they stay apart.
  """
  if x.ndim != 4:
    raise ValueError(f"x: expected feature maps of shape (N, H, W, C), got shape {x.shape}")
  n, h, w, c = x.shape
  weights = jnp.full((h * w,), 1.0 / (h * w), jnp.promote_types(x.dtype, jnp.float32))
  return jnp.einsum("nsc,s->nc", x.reshape(n, h * w, c), weights,
                    precision=jax.lax.Precision.HIGHEST).astype(x.dtype)


def variables_from_torch(state_dict: Mapping[str, np.ndarray], prefix: str = "") -> dict:
  """Converts the ``prefix``-ed entries of an official ResNet ``state_dict`` to flax variables.

  Names map one to one (``layer2.0.downsample.0`` -> ``layer2_0/downsample_conv``); conv weights
  go OIHW -> HWIO; ``num_batches_tracked`` is dropped. Works on partial state dicts.

  Args:
    state_dict: name -> array (NumPy or torch tensors converted with ``.numpy()``).
    prefix: keep only keys starting with it (e.g. ``"backbone."``), stripped before mapping.

  Returns:
    ``{"params": ..., "batch_stats": ...}`` for :class:`ResNet`.
  """
  params: dict = {}
  stats: dict = {}
  for key, value in state_dict.items():
    if not key.startswith(prefix) or key.endswith("num_batches_tracked"):
      continue
    parts = key[len(prefix):].split(".")
    if parts[0].startswith("layer"):
      parts = [f"{parts[0]}_{parts[1]}", *parts[2:]]
    if len(parts) >= 3 and parts[-3] == "downsample":
      parts = [*parts[:-3], "downsample_conv" if parts[-2] == "0" else "downsample_bn", parts[-1]]
    *path, leaf = parts
    value = np.asarray(value)
    if value.ndim == 4:
      target, name, value = params, "kernel", value.transpose(2, 3, 1, 0)
    elif leaf in ("running_mean", "running_var"):
      target, name = stats, {"running_mean": "mean", "running_var": "var"}[leaf]
    else:
      target, name = params, {"weight": "scale", "bias": "bias"}[leaf]
    node = target
    for p in path:
      node = node.setdefault(p, {})
    node[name] = jnp.asarray(value)
  return {"params": params, "batch_stats": stats}


def backbone_from_torch(state_dict: Mapping[str, np.ndarray], prefix: str = "") -> ResNet:
  """The :class:`ResNet` a ``state_dict`` describes, read off its keys and tensor shapes.

  Args:
    state_dict: name -> array with backbone keys ``<prefix>conv1.weight``, ``<prefix>layerS.B...``.
    prefix: the backbone's key prefix (``""`` for torchvision, ``"backbone."`` inside INTL).

  Returns:
    The module: stage sizes from the block indices, Bottleneck when ``conv3`` exists (then
    ``zero_init_residual`` as the official ResNet-50), CIFAR stem for a 3x3 ``conv1``.

  Raises:
    ValueError: when ``<prefix>conv1.weight`` is missing.
  """
  stem_key = f"{prefix}conv1.weight"
  if stem_key not in state_dict:
    raise ValueError(f"state_dict: expected ResNet keys such as {stem_key!r}, got e.g. "
                     f"{sorted(state_dict)[:3]}")
  blocks = {tuple(k[len(prefix):].split(".")[:2]) for k in state_dict
            if k.startswith(f"{prefix}layer")}
  stage_sizes = tuple(sum(1 for stage, _ in blocks if stage == f"layer{i}") for i in range(1, 5))
  bottleneck = any(k.startswith(prefix) and k.endswith("conv3.weight") for k in state_dict)
  stem = np.shape(state_dict[stem_key])
  return ResNet(stage_sizes=stage_sizes, block_cls=Bottleneck if bottleneck else BasicBlock,
                stem="cifar" if stem[-1] == 3 else "imagenet", width=stem[0],
                zero_init_residual=bottleneck)


def from_torch(state_dict: Mapping[str, np.ndarray]) -> tuple[ResNet, dict]:
  """A torchvision-layout ResNet ``state_dict`` (e.g. the converted INTL ResNet-50 release) as a
  :class:`ResNet` and its variables; the classifier ``fc.*`` is dropped (the backbone has none).

  Args:
    state_dict: name -> array (``module.`` prefixes are removed by :func:`jspectral.models.
      from_torch`).

  Returns:
    ``(ResNet, {"params", "batch_stats"})``.
  """
  backbone = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
  return backbone_from_torch(backbone), variables_from_torch(backbone)


def _example(module: nn.Module) -> dict:
  size = 32 if module.stem == "cifar" else 224
  return {"x": jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32), "train": False}


MODELS = {
    "resnet18_cifar": ModelSpec(build=ResNet18Cifar, example_inputs=_example,
                                from_torch=from_torch),
    "resnet18": ModelSpec(build=ResNet18, example_inputs=_example, from_torch=from_torch),
    "resnet50": ModelSpec(build=ResNet50, example_inputs=_example, from_torch=from_torch),
}
