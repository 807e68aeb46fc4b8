"""SpectralEarth backbones and self-supervised objectives: Spec ResNet-50, the Spec ViT family,
MoCo-v2, DINO and MAE, with tasks for :func:`jspectral.train.fit`.

Braham, Albrecht, Mairal, Chanussot, Wang, Zhu, "SpectralEarth: Training Hyperspectral Foundation
Models at Scale", arXiv 2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth
(``src/backbones/{spec_resnet,spec_vit}.py``, ``src/models/{moco,dino,mae}_module.py``; the losses
and heads come from the ``lightly`` library).

All inputs are bands-last ``(N, H, W, B)`` cubes standardised per band. Differences from the
official code, each deliberate:

- Official quirks kept by default, corrected behind flags: the MoCo key encoder is initialised
  independently of the query encoder (``MoCoTask.copy_key_encoder=False``); the DINO teacher
  momentum follows lightly's per-epoch cosine over 10 epochs and then stays at 1.0
  (``DINOTask.per_step_momentum=False``).
- DINO's frozen last-layer weight-norm gain ``g`` (always 1) is not stored as a parameter, so the
  DINO head has 128 fewer parameters than the torch count; the MAE decoder's fixed sin-cos
  position embedding is a constant, not a parameter, as it is frozen in torch.
- During DINO's first epoch the student's last layer gets a zero gradient (torch sets it to
  ``None``); with AdamW the decoupled weight decay still shrinks it slightly in that epoch.
- Augmentations run on the host in NumPy (``augment``), not on the GPU with kornia.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from jspectral.models import ModelSpec
from jspectral.nn import vit as vit_lib
from jspectral.ssl.spectral_adapter import SpectralAdapter, batch_norm, convert_torch_adapter

# --------------------------------------------------------------------------------------------------
# Spec ResNet-50


def _conv(features: int, kernel: int, name: str, strides: int = 1, dilation: int = 1) -> nn.Conv:
  pad = dilation * (kernel // 2)
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides), padding=[(pad, pad)] * 2,
                 kernel_dilation=(dilation, dilation), use_bias=False, name=name)


class CustomBottleneck(nn.Module):
  """SpectralEarth's first ResNet block: three convolutions of ``features`` channels each.

  ``1x1 -> BN -> ReLU -> 3x3 (stride, dilation) -> BN -> ReLU -> 1x1 -> BN``, plus a ``1x1``
  strided conv + BN shortcut, then ReLU. Unlike a standard bottleneck there is no 4x reduction.
  """

  features: int = 256
  strides: int = 2
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    y = nn.relu(batch_norm(train, "bn1")(_conv(self.features, 1, "conv1")(x)))
    y = _conv(self.features, 3, "conv2", self.strides, self.dilation)(y)
    y = nn.relu(batch_norm(train, "bn2")(y))
    y = batch_norm(train, "bn3")(_conv(self.features, 1, "conv3")(y))
    shortcut = batch_norm(train, "downsample_1")(
        _conv(self.features, 1, "downsample_0", self.strides)(x))
    return nn.relu(y + shortcut)


class Bottleneck(nn.Module):
  """timm ``resnet50`` bottleneck: width ``planes``, output ``4 * planes``, stride on the 3x3 conv,
  1x1-conv + BN shortcut when the shape changes; the last BN's scale starts at zero (timm)."""

  planes: int
  strides: int = 1
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
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

  ``(N, H, W, B) -> (N, 2048)`` pooled features (or logits when ``num_classes > 0``), or the
  feature map ``(N, H/16, W/16, 2048)`` with ``return_features``. ``replace_stride_with_dilation``
  removes every stride of the chosen stages (the custom block's included) and sets the 3x3
  dilation of every block of those stages to 1, 2, 4, 8 in order of replaced stages, as the
  official ``CustomResNet50`` does; all four replaced gives output stride 1.

  Attributes:
    num_classes: size of the ``fc`` head; 0 = identity.
    stage_sizes: blocks per stage (3, 4, 6, 3); a prefix builds a truncated network.
  """

  num_classes: int = 0
  replace_stride_with_dilation: tuple[bool, ...] = (False, False, False, False)
  return_features: bool = False
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
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
    y = y.mean(axis=(1, 2))
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
  """Official ``SpecResNet50`` state dict (``spectral_adapter.*``, ``resnet.layer*``, optional
  ``resnet.fc``) -> ``(module, variables)``. Missing later stages give a truncated network."""
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


# --------------------------------------------------------------------------------------------------
# Spec ViT


class SpecViT(nn.Module):
  """Spectral adapter + timm ViT with ``token_patch_size`` tokens on the adapter's 128 channels.

  Defaults are Spec ViT-S/4 at 128 px: ``(N, 128, 128, B) -> (N, 384)`` class-token feature;
  1024 tokens on a 32x32 grid. ``img_size`` is the official ``patch_size`` argument.
  """

  token_patch_size: int = 4
  img_size: int = 128
  embed_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: float = 4.0
  num_classes: int = 0

  def setup(self):
    self.spectral_adapter = SpectralAdapter()
    self.vit_core = vit_lib.VisionTransformer(
        img_size=self.img_size, patch_size=self.token_patch_size, embed_dim=self.embed_dim,
        depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
        num_classes=self.num_classes)

  @property
  def num_patches(self) -> int:
    return (self.img_size // self.token_patch_size) ** 2

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Tokens ``(N, 1 + T, D)`` after the adapter, patch embedding and position embedding."""
    return self.vit_core.embed(self.spectral_adapter(x, train))

  def encode_masked(self, x: jax.Array, idx_keep: jax.Array, train: bool = False) -> jax.Array:
    """MAE encoder: the adapter sees the full image; blocks run on tokens ``idx_keep`` only."""
    tokens = jnp.take_along_axis(self.embed(x, train), idx_keep[..., None], axis=1)
    return self.vit_core.final_norm(self.vit_core.blocks_forward(tokens))

  def patch_tokens(self, x: jax.Array, train: bool = False, norm: bool = True) -> jax.Array:
    """Last-block patch tokens without the class token, ``(N, T, D)`` (timm
    ``get_intermediate_layers(n=1, norm=norm)``)."""
    tokens = self.vit_core.blocks_forward(self.embed(x, train))
    return (self.vit_core.final_norm(tokens) if norm else tokens)[:, 1:]

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.vit_core(self.spectral_adapter(x, train))


_VIT_SHAPES = {"t": (192, 12, 3), "s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16),
               "h": (1280, 32, 16), "g": (1536, 40, 24)}


def spec_vit(variant: str = "s", **overrides) -> SpecViT:
  """Spec ViT-T/S/B/L/H/g (timm widths; token size 4, 128 px by default)."""
  if variant not in _VIT_SHAPES:
    raise ValueError(f"variant: expected one of {', '.join(_VIT_SHAPES)}, got {variant!r}")
  d, depth, heads = _VIT_SHAPES[variant]
  return SpecViT(**{"embed_dim": d, "depth": depth, "num_heads": heads, **overrides})


def spec_vit_from_torch(state_dict, num_heads: int | None = None) -> tuple[SpecViT, dict]:
  """Official ``SpecVisionTransformer`` state dict (``spectral_adapter.*``, ``vit_core.*``).

  The head count is not visible in the shapes: it is taken from the timm variant of the same
  width (192: 3, 384: 6, 768: 12, 1024/1280: 16, 1536: 24) unless ``num_heads`` is given.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  if "vit_core.pos_embed" not in sd or "spectral_adapter.0.weight" not in sd:
    raise ValueError("state_dict: expected SpecVisionTransformer keys 'spectral_adapter.*' and "
                     "'vit_core.*'")
  cfg = vit_lib.torch_vit_config(sd, "vit_core.")
  heads = {d: h for d, _, h in _VIT_SHAPES.values()}
  if num_heads is None:
    if cfg["embed_dim"] not in heads:
      raise ValueError(f"num_heads: width {cfg['embed_dim']} is not a timm variant; pass it")
    num_heads = heads[cfg["embed_dim"]]
  module = SpecViT(token_patch_size=cfg["patch_size"], img_size=cfg["img_size"],
                   embed_dim=cfg["embed_dim"], depth=cfg["depth"], num_heads=num_heads,
                   mlp_ratio=cfg["mlp_ratio"], num_classes=cfg["num_classes"])
  adapter = convert_torch_adapter(sd, "spectral_adapter.")
  variables = {"params": {"spectral_adapter": adapter["params"],
                          "vit_core": vit_lib.convert_torch_vit(sd, "vit_core.")},
               "batch_stats": {"spectral_adapter": adapter["batch_stats"]}}
  return module, jax.tree.map(jnp.asarray, variables)


# --------------------------------------------------------------------------------------------------
# Projection heads and the MAE decoder (lightly's modules)


class MoCoProjectionHead(nn.Module):
  """lightly ``MoCoProjectionHead(in, 2048, 128, num_layers=2, batch_norm=True)``:
  Dense (no bias) - BN - ReLU - Dense (no bias) - BN."""

  hidden: int = 2048
  out: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    h = nn.relu(batch_norm(train, "bn1")(nn.Dense(self.hidden, use_bias=False, name="fc1")(x)))
    return batch_norm(train, "bn2")(nn.Dense(self.out, use_bias=False, name="fc2")(h))


class DINOProjectionHead(nn.Module):
  """lightly ``DINOProjectionHead(in, 2048, 256, out)``: three Dense layers (GELU between), L2
  normalisation, then a weight-normalised Dense without bias whose gain is fixed to 1.

  ``freeze_last_layer`` stops the gradient to the last layer (DINO's first epoch).
  """

  hidden: int = 2048
  bottleneck: int = 256
  out: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False,
               freeze_last_layer: jax.Array | bool = False) -> jax.Array:
    del train  # no BatchNorm in this head
    init = nn.initializers.truncated_normal(0.02)
    h = nn.gelu(nn.Dense(self.hidden, kernel_init=init, name="fc1")(x), approximate=False)
    h = nn.gelu(nn.Dense(self.hidden, kernel_init=init, name="fc2")(h), approximate=False)
    h = nn.Dense(self.bottleneck, kernel_init=init, name="fc3")(h)
    h = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    v = self.param("last_layer", init, (self.bottleneck, self.out))
    v = jnp.where(freeze_last_layer, jax.lax.stop_gradient(v), v)
    return h @ (v / jnp.linalg.norm(v, axis=0, keepdims=True))


def sincos_pos_embed_2d(dim: int, grid: int) -> np.ndarray:
  """MAE's fixed 2-D sin-cos position embedding ``(1 + grid**2, dim)`` with a zero class row."""
  if dim % 4:
    raise ValueError(f"dim: expected a multiple of 4, got {dim}")
  omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
  gw, gh = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))

  def one_d(pos):
    out = np.outer(pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)

  emb = np.concatenate([one_d(gw), one_d(gh)], axis=1)
  return np.concatenate([np.zeros((1, dim)), emb], axis=0).astype(np.float32)


class MAEDecoder(nn.Module):
  """lightly ``MAEDecoderTIMM``: embed to ``dim``, scatter kept tokens among mask tokens, add the
  fixed sin-cos position embedding, ``depth`` timm blocks, LayerNorm, and a linear prediction of
  ``patch**2 * bands`` values per masked token."""

  num_patches: int = 1024
  patch_size: int = 4
  bands: int = 202
  dim: int = 512
  depth: int = 1
  num_heads: int = 16
  mlp_ratio: float = 4.0

  @nn.compact
  def __call__(self, encoded: jax.Array, idx_keep: jax.Array, idx_mask: jax.Array) -> jax.Array:
    n = encoded.shape[0]
    x = nn.Dense(self.dim, name="embed")(encoded)
    mask_token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, self.dim))
    full = jnp.broadcast_to(mask_token, (n, 1 + self.num_patches, self.dim)).astype(x.dtype)
    full = full.at[jnp.arange(n)[:, None], idx_keep].set(x)
    grid = int(round(math.sqrt(self.num_patches)))
    full = full + sincos_pos_embed_2d(self.dim, grid)[None]
    for i in range(self.depth):
      full = vit_lib.Block(self.num_heads, self.mlp_ratio, name=f"blocks_{i}")(full)
    full = nn.LayerNorm(epsilon=1e-6, name="norm")(full)
    picked = jnp.take_along_axis(full, idx_mask[..., None], axis=1)
    return nn.Dense(self.patch_size**2 * self.bands, name="pred")(picked)


# --------------------------------------------------------------------------------------------------
# Losses and schedules (pure functions)


def _l2_normalise(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ntxent_loss(q: jax.Array, k: jax.Array, bank: jax.Array | None = None,
                temperature: float = 0.1) -> jax.Array:
  """lightly ``NTXentLoss``. With a memory ``bank`` ``(M, D)`` (MoCo): InfoNCE of each query
  against its key and the bank, target index 0. Without (SimCLR): the symmetric 2N-way loss.
  ``q, k`` ``(N, D)`` are L2-normalised here; bank rows are used as given."""
  if q.ndim != 2 or q.shape != k.shape:
    raise ValueError(f"q, k: expected equal (N, D) shapes, got {q.shape} and {k.shape}")
  q, k = _l2_normalise(q), _l2_normalise(k)
  if bank is not None:
    if bank.ndim != 2 or bank.shape[1] != q.shape[1]:
      raise ValueError(f"bank: expected (M, {q.shape[1]}), got {bank.shape}")
    logits = jnp.concatenate([jnp.sum(q * k, -1, keepdims=True), q @ bank.T], axis=1)
    return -jnp.mean(jax.nn.log_softmax(logits / temperature, axis=1)[:, 0])
  n = q.shape[0]
  z = jnp.concatenate([q, k], axis=0)
  logits = (z @ z.T) / temperature
  logits = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, logits)
  partner = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
  logp = jax.nn.log_softmax(logits, axis=1)
  return -jnp.mean(jnp.take_along_axis(logp, partner[:, None], axis=1))


def enqueue(bank: jax.Array, ptr: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
  """lightly memory bank FIFO: write ``keys`` at ``ptr``; a batch that would overflow is
  truncated and the pointer goes back to 0 (no wrap-around)."""
  size, batch = bank.shape[0], keys.shape[0]
  idx = ptr + jnp.arange(batch)
  bank = bank.at[idx].set(keys.astype(bank.dtype), mode="drop")
  return bank, jnp.where(ptr + batch >= size, 0, ptr + batch).astype(ptr.dtype)


def dino_loss(teacher_out: jax.Array, student_out: jax.Array, center: jax.Array,
              teacher_temp: float = 0.04, student_temp: float = 0.1,
              center_momentum: float = 0.9) -> tuple[jax.Array, jax.Array]:
  """lightly ``DINOLoss``: cross-entropy between centred, sharpened teacher softmaxes
  ``(Vt, N, K)`` and student log-softmaxes ``(Vs, N, K)`` over all pairs of different views,
  divided by ``pairs * N``. Returns ``(loss, new_center)`` with
  ``new_center = m * center + (1 - m) * mean_{views, batch}(teacher_out)``."""
  if teacher_out.ndim != 3 or student_out.ndim != 3 or teacher_out.shape[1:] != \
      student_out.shape[1:]:
    raise ValueError(f"teacher_out, student_out: expected (views, N, K) with equal N, K, got "
                     f"{teacher_out.shape} and {student_out.shape}")
  t = jax.nn.softmax((teacher_out - center.reshape(1, 1, -1)) / teacher_temp, axis=-1)
  s = jax.nn.log_softmax(student_out / student_temp, axis=-1)
  pair = -jnp.einsum("tbk,sbk->ts", jax.lax.stop_gradient(t), s)
  vt, vs = pair.shape
  same = jnp.eye(vt, vs, dtype=bool)
  terms = vt * vs - min(vt, vs)
  loss = jnp.sum(jnp.where(same, 0.0, pair)) / (terms * teacher_out.shape[1])
  batch_center = jax.lax.stop_gradient(teacher_out).mean(axis=(0, 1))
  new_center = center.reshape(-1) * center_momentum + batch_center * (1 - center_momentum)
  return loss, new_center.reshape(center.shape)


def patchify(images: jax.Array, patch: int) -> jax.Array:
  """``(N, H, W, C) -> (N, (H/p)(W/p), p*p*C)``: row-major patches, each laid out ``(p, q, c)``."""
  n, h, w, c = images.shape
  if h % patch or w % patch:
    raise ValueError(f"images: height and width must be multiples of {patch}, got {images.shape}")
  x = images.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


def mae_loss(pred: jax.Array, images: jax.Array, idx_mask: jax.Array, patch: int,
             norm_pix: bool = True) -> jax.Array:
  """MAE MSE between ``pred`` ``(N, M, p*p*C)`` and the masked patches of ``images``.

  ``idx_mask`` ``(N, M)`` indexes the token sequence *with* the class token (patch = index - 1).
  ``norm_pix`` standardises each target patch with its mean and unbiased variance + 1e-6.
  """
  target = jnp.take_along_axis(patchify(images, patch), (idx_mask - 1)[..., None], axis=1)
  if pred.shape != target.shape:
    raise ValueError(f"pred: expected {target.shape}, got {pred.shape}")
  if norm_pix:
    mean = target.mean(-1, keepdims=True)
    var = target.var(-1, keepdims=True, ddof=1)
    target = (target - mean) / jnp.sqrt(var + 1e-6)
  return jnp.mean((pred - target) ** 2)


def random_token_mask(rng: jax.Array, batch: int, num_patches: int,
                      mask_ratio: float) -> tuple[jax.Array, jax.Array]:
  """lightly ``random_token_mask`` without masking the class token: ``idx_keep`` ``(N, 1+K)``
  starts with the class token 0 and ``K = int(num_patches * (1 - mask_ratio))`` random patches;
  ``idx_mask`` ``(N, num_patches - K)`` holds the rest (indices count the class token)."""
  keep = int(num_patches * (1 - mask_ratio))
  if not 0 < keep < num_patches:
    raise ValueError(f"mask_ratio: {mask_ratio} keeps {keep} of {num_patches} patches")
  noise = jax.random.uniform(rng, (batch, num_patches))
  order = jnp.argsort(noise, axis=1) + 1
  cls = jnp.zeros((batch, 1), order.dtype)
  return jnp.concatenate([cls, order[:, :keep]], axis=1), order[:, keep:]


def cosine_momentum(step, max_steps: int, start: float = 0.996, end: float = 1.0):
  """lightly ``cosine_schedule``: ``start`` at 0, ``end`` at ``max_steps - 1`` and after."""
  step = jnp.asarray(step, jnp.float32)
  value = end - (end - start) * (jnp.cos(jnp.pi * step / (max_steps - 1)) + 1) / 2
  return jnp.where(step >= max_steps - 1, end, value)


def dino_learning_rate(epoch, base_lr: float = 1e-3, warmup_epochs: int = 20, t_max: int = 100):
  """Official DINO lr per epoch: LinearLR from ``lr / warmup`` over ``warmup`` epochs, then
  CosineAnnealingLR with ``T_max = max_epochs`` (so the lr never reaches 0 in 100 epochs)."""
  epoch = jnp.asarray(epoch, jnp.float32)
  warm = base_lr * (1 / warmup_epochs + (1 - 1 / warmup_epochs) * epoch / warmup_epochs)
  cos = base_lr * (1 + jnp.cos(jnp.pi * (epoch - warmup_epochs) / t_max)) / 2
  return jnp.where(epoch < warmup_epochs, warm, cos)


def moco_learning_rate(epoch, base_lr: float = 1e-3, milestones: Sequence[int] = (60, 80),
                       gamma: float = 0.1):
  """Official MoCo lr per epoch: MultiStepLR, ``x gamma`` at each milestone."""
  epoch = jnp.asarray(epoch)
  return base_lr * gamma ** sum((epoch >= m).astype(jnp.float32) for m in milestones)


# --------------------------------------------------------------------------------------------------
# Hyperspectral augmentations (host side, NumPy)


def crop_box(height: int, width: int, rng: np.random.Generator, scale: tuple[float, float],
             ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
  """torchvision/kornia RandomResizedCrop window ``(top, left, h, w)``: area fraction in
  ``scale``, log-uniform aspect ratio; the centre square after 10 failed tries."""
  area = height * width
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
    cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
    if 0 < cw <= width and 0 < ch <= height:
      return int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side, side


def resize_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int,
                order: int = 1) -> np.ndarray:
  """Resizes the ``box`` window of ``(H, W[, C])`` to ``size x size`` with half-pixel centres
  (``align_corners=False``); ``order`` 1 = bilinear, 0 = nearest (masks)."""
  top, left, ch, cw = box
  ys = np.clip((np.arange(size) + 0.5) * ch / size - 0.5, 0, ch - 1) + top
  xs = np.clip((np.arange(size) + 0.5) * cw / size - 0.5, 0, cw - 1) + left
  if order == 0:
    return image[np.floor(ys + 0.5).astype(int)][:, np.floor(xs + 0.5).astype(int)]
  yy, xx = np.meshgrid(ys, xs, indexing="ij")
  return np.stack([scipy.ndimage.map_coordinates(image[..., c], [yy, xx], order=1)
                   for c in range(image.shape[-1])], axis=-1).astype(np.float32)


def random_resized_crop(image: np.ndarray, rng: np.random.Generator, size: int,
                        scale: tuple[float, float]) -> np.ndarray:
  """RandomResizedCrop of ``(H, W, C)`` to ``size x size`` (bilinear)."""
  return resize_crop(image, crop_box(*image.shape[:2], rng, scale), size)


def ssl_view(image: np.ndarray, rng: np.random.Generator, *, size: int,
             scale: tuple[float, float], blur_p: float, mean: np.ndarray,
             std: np.ndarray) -> np.ndarray:
  """One SpectralEarth SSL view: RandomResizedCrop, Gaussian blur (kernel ``size//10//2*2+1``,
  sigma in [0.1, 2], probability ``blur_p``, reflect padding), h/v flips, per-band standardisation.
  No colour/spectral augmentation, on purpose."""
  x = random_resized_crop(image, rng, size, scale)
  if rng.uniform() < blur_p:
    sigma = rng.uniform(0.1, 2.0)
    radius = (size // 10 // 2 * 2 + 1) // 2
    x = scipy.ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="mirror",
                                      truncate=max(radius, 1) / sigma)
  if rng.uniform() < 0.5:
    x = x[:, ::-1]
  if rng.uniform() < 0.5:
    x = x[::-1]
  return ((x - mean) / std).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Tasks for jspectral.train.fit


class SSLNet(nn.Module):
  """``backbone`` followed by a projection ``head``: returns ``(features, projection)``."""

  backbone: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = False, **head_kw):
    features = self.backbone(x, train)
    return features, self.head(features, train, **head_kw)


def _apply(net: nn.Module, params, stats, x, **kw):
  variables = {"params": params, "batch_stats": stats} if stats else {"params": params}
  if not stats:
    return net.apply(variables, x, **kw), stats
  out, updated = net.apply(variables, x, mutable=["batch_stats"], **kw)
  return out, updated["batch_stats"]


def _feature_std(features: jax.Array) -> jax.Array:
  """Collapse monitor: mean per-dimension std of L2-normalised features (official logging)."""
  return jnp.std(_l2_normalise(features), axis=0, ddof=1).mean()


@dataclasses.dataclass
class _ViewsTask:
  """Shared plumbing: a source of raw cubes and the per-example view augmentation."""

  source: Any
  mean: np.ndarray
  std: np.ndarray
  size: int
  scale: tuple[float, float]
  blur_p: float
  two_views: bool = True

  def train_source(self):
    return self.source

  def augment(self, example, rng):
    """``{"images": (D, S, S, B)}`` (the TFDS archive: two distinct random dates when D >= 2,
    else the same image twice), ``{"image1", "image2"}`` or ``{"image"}`` -> standardised
    ``{"view1"[, "view2"]}``."""
    view = functools.partial(ssl_view, rng=rng, size=self.size, scale=self.scale,
                             blur_p=self.blur_p, mean=self.mean, std=self.std)
    if "images" in example:
      dates = example["images"]
      pick = rng.choice(len(dates), 2, replace=False) if len(dates) >= 2 else (0, 0)
      first, second = dates[pick[0]], dates[pick[1]]
    elif "image1" in example:
      first, second = example["image1"], example["image2"]
    else:
      first = second = example["image"]
    out = {"view1": view(np.asarray(first, np.float32))}
    if self.two_views:
      out["view2"] = view(np.asarray(second, np.float32))
    return out

  def evaluate(self, params, state):
    return {}


@dataclasses.dataclass
class MoCoTask(_ViewsTask):
  """MoCo-v2 (lightly flavour): EMA key encoder (momentum updated before the key forward), InfoNCE
  against a FIFO bank of L2-normalised keys (random normalised init), keys enqueued after the
  loss. BatchNorm everywhere uses global-batch statistics (torch ``sync_batchnorm``).

  ``copy_key_encoder=False`` reproduces the official independent random init of the key encoder;
  True starts it as a copy of the query encoder (the MoCo paper's recipe).
  """

  backbone: nn.Module = None
  head_hidden: int = 2048
  bank_size: int = 32768
  temperature: float = 0.1
  momentum: float = 0.999
  copy_key_encoder: bool = False
  scale: tuple[float, float] = (0.08, 1.0)
  blur_p: float = 0.5

  def __post_init__(self):
    self.net = SSLNet(self.backbone, MoCoProjectionHead(hidden=self.head_hidden))

  def init(self, rng, batch):
    k_q, k_k, k_bank = jax.random.split(rng, 3)
    x = batch["view1"]
    variables = self.net.init(k_q, x)
    key_vars = variables if self.copy_key_encoder else self.net.init(k_k, x)
    bank = _l2_normalise(jax.random.normal(k_bank, (self.bank_size, 128)))
    state = {"batch_stats": variables.get("batch_stats", {}),
             "key_params": key_vars["params"], "key_batch_stats": key_vars.get("batch_stats", {}),
             "bank": bank, "ptr": jnp.zeros((), jnp.int32)}
    return variables["params"], state

  def loss(self, params, state, batch, rng):
    del rng
    m = self.momentum
    key_params = jax.tree.map(lambda k, q: m * k + (1 - m) * jax.lax.stop_gradient(q),
                              state["key_params"], params)
    (features, q), stats = _apply(self.net, params, state["batch_stats"], batch["view1"],
                                  train=True)
    (_, k), key_stats = _apply(self.net, key_params, state["key_batch_stats"], batch["view2"],
                               train=True)
    k = jax.lax.stop_gradient(k)
    loss = ntxent_loss(q, k, state["bank"], self.temperature)
    bank, ptr = enqueue(state["bank"], state["ptr"], _l2_normalise(k))
    new_state = {"batch_stats": stats, "key_params": key_params, "key_batch_stats": key_stats,
                 "bank": bank, "ptr": ptr}
    return loss, {"state": new_state, "feature_std": _feature_std(features)}


@dataclasses.dataclass
class DINOTask(_ViewsTask):
  """DINO (lightly flavour) with two global views and no local crops (official configs): teacher =
  EMA of the student (same init), centred and sharpened teacher targets, last layer frozen during
  the first ``freeze_last_layer`` epochs. The teacher momentum is lightly's per-epoch cosine over
  ``momentum_epochs`` (default) or a per-step cosine over the whole run (``per_step_momentum``),
  both starting at ``momentum_start``."""

  backbone: nn.Module = None
  head_hidden: int = 2048
  bottleneck: int = 256
  out_dim: int = 128
  teacher_temp: float = 0.04
  student_temp: float = 0.1
  center_momentum: float = 0.9
  steps_per_epoch: int = 1
  total_steps: int = 1
  momentum_epochs: int = 10
  freeze_last_layer: int = 1
  per_step_momentum: bool = False
  momentum_start: float = 0.996
  scale: tuple[float, float] = (0.05, 1.0)
  blur_p: float = 0.5

  def __post_init__(self):
    self.net = SSLNet(self.backbone, DINOProjectionHead(
        hidden=self.head_hidden, bottleneck=self.bottleneck, out=self.out_dim))

  def init(self, rng, batch):
    variables = self.net.init(rng, batch["view1"])
    stats = variables.get("batch_stats", {})
    state = {"batch_stats": stats, "teacher_params": variables["params"],
             "teacher_batch_stats": stats, "center": jnp.zeros((self.out_dim,)),
             "step": jnp.zeros((), jnp.int32)}
    return variables["params"], state

  def teacher_momentum(self, step):
    if self.per_step_momentum:
      return cosine_momentum(step, self.total_steps, self.momentum_start)
    return cosine_momentum(step // self.steps_per_epoch, self.momentum_epochs, self.momentum_start)

  def loss(self, params, state, batch, rng):
    del rng
    step = state["step"]
    m = self.teacher_momentum(step)
    teacher = jax.tree.map(lambda t, s: m * t + (1 - m) * jax.lax.stop_gradient(s),
                           state["teacher_params"], params)
    views = (batch["view1"], batch["view2"])
    t_stats, t_out = state["teacher_batch_stats"], []
    for v in views:
      (_, z), t_stats = _apply(self.net, teacher, t_stats, v, train=True)
      t_out.append(jax.lax.stop_gradient(z))
    frozen = step // self.steps_per_epoch < self.freeze_last_layer
    stats, s_out, feats = state["batch_stats"], [], None
    for v in views:
      (f, z), stats = _apply(self.net, params, stats, v, train=True, freeze_last_layer=frozen)
      feats = f if feats is None else feats
      s_out.append(z)
    loss, center = dino_loss(jnp.stack(t_out), jnp.stack(s_out), state["center"],
                             self.teacher_temp, self.student_temp, self.center_momentum)
    new_state = {"batch_stats": stats, "teacher_params": teacher, "teacher_batch_stats": t_stats,
                 "center": center, "step": step + 1}
    return loss, {"state": new_state, "feature_std": _feature_std(feats), "teacher_momentum": m}


class MAENet(nn.Module):
  """Spec ViT encoder on kept tokens + :class:`MAEDecoder` predicting the masked patches."""

  encoder: SpecViT
  decoder_dim: int = 512
  decoder_depth: int = 1
  decoder_heads: int = 16
  bands: int = 202

  def setup(self):
    self.decoder = MAEDecoder(num_patches=self.encoder.num_patches,
                              patch_size=self.encoder.token_patch_size, bands=self.bands,
                              dim=self.decoder_dim, depth=self.decoder_depth,
                              num_heads=self.decoder_heads)

  def __call__(self, x, idx_keep, idx_mask, train: bool = False):
    encoded = self.encoder.encode_masked(x, idx_keep, train)
    return self.decoder(encoded, idx_keep, idx_mask)


@dataclasses.dataclass
class MAETask(_ViewsTask):
  """MAE: one view (RandomResizedCrop scale (0.4, 1), flips, no blur), mask ratio 0.9 of the
  tokens after patch- and position-embedding (the adapter sees the full image), norm-pix MSE on
  the masked patches of the augmented, standardised image."""

  encoder: SpecViT = None
  mask_ratio: float = 0.9
  decoder_dim: int = 512
  decoder_heads: int = 16
  norm_pix: bool = True
  bands: int = 202
  two_views: bool = False
  scale: tuple[float, float] = (0.4, 1.0)
  blur_p: float = 0.0

  def __post_init__(self):
    self.net = MAENet(self.encoder, self.decoder_dim, 1, self.decoder_heads, self.bands)

  def _mask(self, rng, batch_size):
    return random_token_mask(rng, batch_size, self.encoder.num_patches, self.mask_ratio)

  def init(self, rng, batch):
    k_init, k_mask = jax.random.split(rng)
    x = batch["view1"]
    variables = self.net.init(k_init, x, *self._mask(k_mask, x.shape[0]))
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    x = batch["view1"]
    idx_keep, idx_mask = self._mask(rng, x.shape[0])
    pred, stats = _apply(self.net, params, state["batch_stats"], x, idx_keep=idx_keep,
                         idx_mask=idx_mask, train=True)
    loss = mae_loss(pred, x, idx_mask, self.encoder.token_patch_size, self.norm_pix)
    return loss, {"state": {"batch_stats": stats}}


# --------------------------------------------------------------------------------------------------
# Registry


def _example(size: int = 128):
  return lambda m: {"x": jax.ShapeDtypeStruct((1, size, size, 202), jnp.float32)}


MODELS = {
    "spec_resnet50": ModelSpec(build=SpecResNet50, example_inputs=_example(),
                               from_torch=spec_resnet50_from_torch),
    "spec_vit": ModelSpec(build=spec_vit, example_inputs=lambda m: {
        "x": jax.ShapeDtypeStruct((1, m.img_size, m.img_size, 202), jnp.float32)},
        from_torch=spec_vit_from_torch),
    **{f"spec_vit_{v}": ModelSpec(
        build=functools.partial(spec_vit, v),
        example_inputs=lambda m: {
            "x": jax.ShapeDtypeStruct((1, m.img_size, m.img_size, 202), jnp.float32)})
       for v in _VIT_SHAPES},
}
