"""LoLA-SpecViT: 3-D conv front end, local-window attention, SwiGLU and gated LoRA.

Paper: Zidi et al., "LoLA-SpecViT: Local Attention SwiGLU Vision Transformer with LoRA for
Hyperspectral Imaging", arXiv 2506.17759 (2025). Official code: FadiZidiDz/LoLA-SpecViT-Model
(``improved_GCPE.py``, ``enhanced_training.py``).

Input: bands-last patches ``(N, H, W, C)`` (15x15 windows of a 15-component PCA cube). The model
runs its 3-D convolutions over a ``(depth, plane-1, plane-2)`` arrangement chosen by
``axis_order``:

* ``"official"`` (default): ``(H, W, C)``: what the released pipeline feeds after its transposes
  (depth = image rows, the "spectral" mean averages rows); needed to reproduce released numbers.
* ``"spectral"``: ``(C, H, W)``: the 3-D convolution runs along the spectrum, as the paper says.

Deliberate differences from the official code: none in the forward pass; BatchNorm running
statistics update as PyTorch's (unbiased batch variance,
:class:`~jspectral.nn.batchnorm.TorchBatchNorm`). The never-used RGB upsampling of the official
dataset and the unused ``EnhancedSpectralProcessing`` module are left out. Options the official
code lacks: ``gate_residual=False`` (plain, mergeable LoRA) and
``mask_padding`` (padded window tokens masked out of attention).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import conv3d
from jspectral.nn.batchnorm import TorchBatchNorm
from jspectral.nn.model_spec import ModelSpec

AXIS_ORDERS = ("official", "spectral")


def _init_linear(key, shape, dtype=jnp.float32):
  """trunc-normal(std 0.02) cut at +-2 *absolute* (as torch's ``trunc_normal_``): no visible cut."""
  return 0.02 * jax.random.truncated_normal(key, -100.0, 100.0, shape, dtype)


class LoRALinear(nn.Module):
  """The official "enhanced" LoRA layer.

  ``y = W x + b + sigmoid(G x) * (alpha / r) B A x + R x`` with ``A`` ``lora_down`` (r x in),
  ``B`` ``lora_up`` (out x r), ``G`` ``lora_gate`` and ``R`` ``lora_residual`` (out x in). With
  ``gate_residual=False``: ``y = W x + b + (alpha / r) B A x``, mergeable into ``W``.

  Attributes:
    features: output width.
    rank: LoRA rank r.
    alpha: LoRA scaling alpha.
    gate_residual: add the gate ``G`` and residual ``R`` (official).
  """

  features: int
  rank: int = 16
  alpha: float = 32.0
  gate_residual: bool = True

  @nn.compact
  def __call__(self, x):
    """Applies the layer.

    Args:
      x: ``(..., in)``.

    Returns:
      ``(..., features)``.
    """
    dense = functools.partial(nn.Dense, kernel_init=_init_linear)
    y = dense(self.features, name="linear")(x)
    update = (self.alpha / self.rank) * dense(self.features, use_bias=False, name="lora_up")(
        dense(self.rank, use_bias=False, name="lora_down")(x))
    if not self.gate_residual:
      return y + update
    gate = nn.sigmoid(dense(self.features, use_bias=False, name="lora_gate")(x))
    return y + gate * update + dense(self.features, use_bias=False, name="lora_residual")(x)


def merge_lora(params: dict, alpha: float, rank: int) -> dict:
  """Folds a plain LoRA layer's ``(alpha / r) B A`` into its base kernel; returns base params.

  Args:
    params: the params of a :class:`LoRALinear` with ``gate_residual=False``.
    alpha: LoRA scaling alpha.
    rank: LoRA rank r.

  Returns:
    ``{"kernel": (in, out), "bias": (out,)}`` of the equivalent ``nn.Dense``.
  """
  delta = params["lora_down"]["kernel"] @ params["lora_up"]["kernel"] * (alpha / rank)
  return {"kernel": params["linear"]["kernel"] + delta, "bias": params["linear"]["bias"]}


class SwiGLU(nn.Module):
  """``w3(silu(w1 x) * w2 x)`` with plain Dense layers.

  Attributes:
    hidden: width of ``w1`` and ``w2``.
    features: output width.
  """

  hidden: int
  features: int

  @nn.compact
  def __call__(self, x):
    """Applies the SwiGLU.

    Args:
      x: ``(..., in)``.

    Returns:
      ``(..., features)``.
    """
    dense = functools.partial(nn.Dense, kernel_init=_init_linear)
    return dense(self.features, name="w3")(
        nn.silu(dense(self.hidden, name="w1")(x)) * dense(self.hidden, name="w2")(x))


class SqueezeExcite(nn.Module):
  """Channel attention: mean over every non-channel axis, Dense(C/r) ReLU Dense(C) sigmoid.

  Attributes:
    reduction: channel reduction r.
  """

  reduction: int = 16

  @nn.compact
  def __call__(self, x):
    """Rescales the channels.

    Args:
      x: ``(N, ..., C)``.

    Returns:
      ``(N, ..., C)``.
    """
    channels = x.shape[-1]
    pooled = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
    dense = functools.partial(nn.Dense, use_bias=False, kernel_init=_init_linear)
    scale = nn.sigmoid(dense(channels, name="fc_2")(
        nn.relu(dense(max(channels // self.reduction, 1), name="fc_0")(pooled))))
    return x * scale.reshape(scale.shape[:1] + (1,) * (x.ndim - 2) + scale.shape[1:])


def window_partition(x: jax.Array, window: int) -> jax.Array:
  """Splits an image into non-overlapping windows.

  Args:
    x: ``(B, H, W, C)`` with H, W multiples of ``window``.
    window: window side.

  Returns:
    ``(B * nH * nW, window**2, C)``.

  Raises:
    ValueError: if H or W is not a multiple of ``window``.
  """
  b, h, w, c = x.shape
  if h % window or w % window:
    raise ValueError(f"x: spatial size {(h, w)} is not a multiple of the window {window}")
  x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, window * window, c)


def window_reverse(windows: jax.Array, window: int, height: int, width: int) -> jax.Array:
  """Inverse of :func:`window_partition`.

  Args:
    windows: ``(B * nH * nW, window**2, C)``.
    window: window side.
    height: H.
    width: W.

  Returns:
    ``(B, H, W, C)``.
  """
  c = windows.shape[-1]
  x = windows.reshape(-1, height // window, width // window, window, window, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def pad_to_windows(x: jax.Array, window: int) -> jax.Array:
  """Zero-pads ``(B, H, W, C)`` at the bottom and right to multiples of ``window``.

  Args:
    x: ``(B, H, W, C)``.
    window: window side.

  Returns:
    ``(B, H', W', C)`` with ``H'``, ``W'`` the next multiples of ``window``.
  """
  pad_h, pad_w = -x.shape[1] % window, -x.shape[2] % window
  return jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


def relative_position_index(window: int) -> np.ndarray:
  """Swin's index into the ``(2 window - 1)**2`` bias table.

  Args:
    window: window side.

  Returns:
    ``(window**2, window**2)`` int array.
  """
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
  rel = coords[:, :, None] - coords[:, None, :] + window - 1
  return rel[0] * (2 * window - 1) + rel[1]


class WindowAttention(nn.Module):
  """Multi-head self-attention inside non-overlapping windows with a relative-position bias.

  Attributes:
    heads: attention heads.
    window: window side.
    rank: LoRA rank r.
    alpha: LoRA scaling alpha.
    mask_padding: mask padded tokens out of the attention.
  """

  heads: int
  window: int = 7
  rank: int = 16
  alpha: float = 32.0
  mask_padding: bool = False

  @nn.compact
  def __call__(self, x, valid=None):
    """Attends inside each window.

    Args:
      x: windows, ``(B', N, d)``.
      valid: optional ``(B', N)`` bool marking real tokens (used if ``mask_padding``).

    Returns:
      ``(B', N, d)``.
    """
    n, dim = x.shape[1], x.shape[2]
    head_dim = dim // self.heads
    lora = functools.partial(LoRALinear, rank=self.rank, alpha=self.alpha)
    qkv = lora(3 * dim, name="qkv")(x).reshape(x.shape[0], n, 3, self.heads, head_dim)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    table = self.param("relative_position_bias_table", _init_linear,
                       ((2 * self.window - 1) ** 2, self.heads))
    bias = table[relative_position_index(self.window).reshape(-1)].reshape(n, n, self.heads)
    logits = (q * head_dim**-0.5) @ k.transpose(0, 1, 3, 2) + bias.transpose(2, 0, 1)
    if self.mask_padding and valid is not None:
      logits = jnp.where(valid[:, None, None, :], logits, -jnp.inf)
    out = (nn.softmax(logits, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], n, dim)
    return lora(dim, name="proj")(out)


class DropPath(nn.Module):
  """Stochastic depth: drops the whole residual branch of a sample with probability ``rate``.

  Attributes:
    rate: drop probability.
  """

  rate: float

  @nn.compact
  def __call__(self, x, train: bool):
    """Applies stochastic depth.

    Args:
      x: ``(N, ...)``.
      train: drop (needs a ``"dropout"`` RNG); identity otherwise.

    Returns:
      ``(N, ...)``, kept samples scaled by ``1 / (1 - rate)``.
    """
    if not train or self.rate == 0.0:
      return x
    keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.rate,
                                (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / (1.0 - self.rate), 0.0)


class Block(nn.Module):
  """Pre-norm window-attention block with a LoRA-SwiGLU-LoRA feed-forward.

  Attributes:
    heads: attention heads.
    window: window side.
    mlp_ratio: feed-forward width / ``d``.
    drop_path: stochastic-depth rate.
    rank: LoRA rank r.
    alpha: LoRA scaling alpha.
    mask_padding: mask padded window tokens out of the attention.
  """

  heads: int
  window: int = 7
  mlp_ratio: float = 4.0
  drop_path: float = 0.0
  rank: int = 16
  alpha: float = 32.0
  mask_padding: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False):
    """Applies the block.

    Args:
      x: ``(B, H, W, d)``.
      train: stochastic depth on.

    Returns:
      ``(B, H, W, d)``.
    """
    b, h, w, dim = x.shape
    y = pad_to_windows(nn.LayerNorm(epsilon=1e-5, name="norm1")(x), self.window)
    hp, wp = y.shape[1], y.shape[2]
    valid = window_partition(pad_to_windows(jnp.ones((b, h, w, 1)), self.window),
                             self.window)[..., 0] > 0
    y = WindowAttention(self.heads, self.window, self.rank, self.alpha, self.mask_padding,
                        name="attn")(window_partition(y, self.window), valid)
    y = window_reverse(y, self.window, hp, wp)[:, :h, :w]
    x = x + DropPath(self.drop_path)(y, train)
    hidden = int(dim * self.mlp_ratio)
    lora = functools.partial(LoRALinear, rank=self.rank, alpha=self.alpha)
    y = nn.LayerNorm(epsilon=1e-5, name="norm2")(x)
    y = lora(dim, name="mlp_3")(SwiGLU(hidden, hidden, name="mlp_1")(lora(hidden, name="mlp_0")(y)))
    return x + DropPath(self.drop_path)(y, train)


class ReduceSize(nn.Module):
  """Depthwise 3x3, Swish, SE, 1x1 to 2d, BatchNorm, 3x3 stride 2 (no residual)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    """Halves the spatial size and doubles the width.

    Args:
      x: ``(B, H, W, d)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(B, ceil(H / 2), ceil(W / 2), 2d)``.
    """
    dim = x.shape[-1]
    y = nn.Conv(dim, (3, 3), padding=1, feature_group_count=dim, use_bias=False, name="conv_0")(x)
    y = SqueezeExcite(name="conv_2")(nn.swish(y))
    y = nn.Conv(2 * dim, (1, 1), use_bias=False, name="conv_3")(y)
    y = TorchBatchNorm(name="norm")(y, use_running_average=not train)
    return nn.Conv(2 * dim, (3, 3), strides=2, padding=1, use_bias=False, name="reduction")(y)


class LoLASpecViT(nn.Module):
  """The full classifier; defaults are the paper's WHU-Hi LongKou configuration.

  ``__call__(x, train)``: ``x`` ``(N, S, S, B)`` bands-last patches (S = ``spatial_size``,
  B = ``in_channels``), per-sample normalised (:func:`normalise_patches`) -> logits
  ``(N, num_classes)``.

  Attributes:
    num_classes: classes.
    in_channels: bands B of the input patches.
    spatial_size: patch side S.
    dim: embedding width.
    depths: blocks per level.
    heads: attention heads per level.
    window: attention window side.
    mlp_ratio: feed-forward width / ``dim``.
    drop_path_rate: largest stochastic-depth rate (linear over blocks).
    rank: LoRA rank r.
    alpha: LoRA scaling alpha.
    axis_order: ``"official"`` or ``"spectral"`` (see the module docstring).
    band_dropout: dropout of whole depth slices after the 3-D convs (train only).
    embed_dropout: dropout after the positional embedding.
    mask_padding: mask padded window tokens out of attention.
  """

  num_classes: int = 9
  in_channels: int = 15
  spatial_size: int = 15
  dim: int = 96
  depths: Sequence[int] = (3, 4, 19)
  heads: Sequence[int] = (4, 8, 16)
  window: int = 7
  mlp_ratio: float = 4.0
  drop_path_rate: float = 0.2
  rank: int = 16
  alpha: float = 32.0
  axis_order: str = "official"
  band_dropout: float = 0.1
  embed_dropout: float = 0.1
  mask_padding: bool = False

  def arrange(self, x: jax.Array) -> jax.Array:
    """Bands-last patches -> the ``(N, depth, plane-1, plane-2)`` the model convolves.

    Args:
      x: ``(N, H, W, C)``.

    Returns:
      ``(N, depth, plane-1, plane-2)``.

    Raises:
      ValueError: if ``x`` is not ``(N, spatial_size, spatial_size, in_channels)``, or
        ``axis_order="official"`` with ``spatial_size != in_channels``.
    """
    if x.ndim != 4:
      raise ValueError(f"x: expected bands-last patches (N, H, W, C), got shape {x.shape}")
    if x.shape[1:] != (self.spatial_size, self.spatial_size, self.in_channels):
      raise ValueError(f"x: expected patches of shape (N, {self.spatial_size}, "
                       f"{self.spatial_size}, {self.in_channels}), got {x.shape}")
    if self.axis_order == "official" and self.spatial_size != self.in_channels:
      raise ValueError("axis_order='official' needs spatial_size == in_channels (the released "
                       f"pipeline only runs then), got {self.spatial_size} and {self.in_channels}")
    return depth_first(x, self.axis_order)

  @nn.compact
  def __call__(self, x, train: bool = False):
    """Classifies patches.

    Args:
      x: normalised bands-last patches, ``(N, S, S, B)``.
      train: BatchNorm batch statistics, dropout and stochastic depth (``"dropout"`` RNG).

    Returns:
      Logits, ``(N, num_classes)``.

    Raises:
      ValueError: as :meth:`arrange`.
    """
    x = self.arrange(x)[..., None]  # (N, D, P, Q, 1)

    def bn(name):
      return functools.partial(TorchBatchNorm(name=name), use_running_average=not train)

    for i, (features, depth) in enumerate(((32, 7), (64, 5), (self.dim, 3))):
      x = conv3d.Conv3d(features, (depth, 3, 3), name=f"spectral_conv_{3 * i}")(x)
      x = nn.swish(bn(name=f"spectral_conv_{3 * i + 1}")(x))
    if train and self.band_dropout:
      keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.band_dropout,
                                  (x.shape[0], x.shape[1], 1, 1, x.shape[-1]))
      x = jnp.where(keep, x / (1.0 - self.band_dropout), 0.0)
    x = SqueezeExcite(name="spectral_attention")(x).mean(axis=1)  # (N, P, Q, dim)
    x = nn.Conv(self.dim, (4, 4), strides=2, padding=1, name="patch_embed_0")(x)
    x = nn.swish(bn(name="patch_embed_1")(x))
    x = x + self.param("pos_embed", _init_linear, (1,) + x.shape[1:])
    x = nn.Dropout(self.embed_dropout, deterministic=not train)(x)
    rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths))
    index = 0
    for level, (depth, heads) in enumerate(zip(self.depths, self.heads, strict=True)):
      for j in range(depth):
        x = Block(heads, self.window, self.mlp_ratio, float(rates[index]), self.rank, self.alpha,
                  self.mask_padding, name=f"levels_{level}_{j}")(x, train)
        index += 1
      if level < len(self.depths) - 1:
        x = ReduceSize(name=f"levels_{level}_{depth}")(x, train)
    x = nn.LayerNorm(epsilon=1e-5, name="norm")(x).mean(axis=(1, 2))
    return LoRALinear(self.num_classes, self.rank, self.alpha, gate_residual=False,
                      name="head")(x)


def depth_first(x: jax.Array, axis_order: str) -> jax.Array:
  """Bands-last patches -> ``(N, depth, plane-1, plane-2)`` for ``axis_order``.

  Args:
    x: ``(N, H, W, C)``.
    axis_order: ``"official"`` (unchanged) or ``"spectral"`` (``(N, C, H, W)``).

  Returns:
    The arranged array.

  Raises:
    ValueError: if ``axis_order`` is unknown.
  """
  if axis_order == "official":
    return x
  if axis_order == "spectral":
    return x.transpose(0, 3, 1, 2)
  raise ValueError(f"axis_order: expected one of {AXIS_ORDERS}, got {axis_order!r}")


def normalise_patches(x: jax.Array, axis_order: str = "official") -> jax.Array:
  """The official per-sample normalisation of the arranged patch.

  For each depth index, subtract the mean and divide by (unbiased std + 1e-8) over the two plane
  axes. Bands-last in and out.

  Args:
    x: ``(N, H, W, C)``.
    axis_order: ``"official"`` or ``"spectral"``.

  Returns:
    ``(N, H, W, C)``.

  Raises:
    ValueError: if ``axis_order`` is unknown.
  """
  arranged = depth_first(x, axis_order)
  mean = arranged.mean(axis=(2, 3), keepdims=True)
  std = arranged.std(axis=(2, 3), keepdims=True, ddof=1)
  normalised = (arranged - mean) / (std + 1e-8)
  return normalised if axis_order == "official" else normalised.transpose(0, 2, 3, 1)


def official_lr_schedule(base_lr: float, batches_per_epoch: int, warmup_epochs: int = 5,
                         t0: float = 10.0, t_mult: float = 2.0, eta_min: float = 1e-6,
                         accumulation: int = 1):
  """The learning rate the released training loop uses at each optimizer update.

  Epochs ``e < warmup_epochs`` run at ``base (e + 1) / warmup_epochs``. From then on, torch's
  ``CosineAnnealingWarmRestarts(T_0=t0, T_mult=t_mult, eta_min)`` is stepped after every
  (micro-)batch ``b`` with the fractional epoch ``e + b / nb``. The optimizer steps after every
  ``accumulation``-th batch, so update ``k`` of epoch ``e`` (its last micro-batch
  ``b = a k + a - 1``) uses the value set after batch ``b - 1``: ``f(e + (a k + a - 2) / nb)``;
  with ``a = 1`` that is ``f((s - 1) / nb)`` and the first update after warm-up still uses
  ``base``. An odd micro-batch left at the end of an epoch never steps (the official loop drops
  its gradient), so an epoch holds ``nb // a`` updates.

  Args:
    base_lr: base learning rate.
    batches_per_epoch: ``nb``, the official loader's batches per epoch
      (``ceil(train pixels / micro-batch)``).
    warmup_epochs: linear warm-up epochs.
    t0: first restart period (epochs).
    t_mult: period multiplier.
    eta_min: minimum learning rate.
    accumulation: ``a``, micro-batches per optimizer update (official 2).

  Returns:
    An optax-style schedule ``update count -> learning rate``.

  Raises:
    ValueError: if ``batches_per_epoch < accumulation`` or ``accumulation < 1``.
  """
  if accumulation < 1 or batches_per_epoch < accumulation:
    raise ValueError(f"batches_per_epoch, accumulation: expected 1 <= accumulation <= "
                     f"batches_per_epoch, got {accumulation} and {batches_per_epoch}")
  updates_per_epoch = batches_per_epoch // accumulation

  def cosine(t):
    n = jnp.floor(jnp.log2(t / t0 * (t_mult - 1) + 1) / jnp.log2(t_mult))
    start = t0 * (t_mult**n - 1) / (t_mult - 1)
    t_i = t0 * t_mult**n
    return eta_min + (base_lr - eta_min) * (1 + jnp.cos(jnp.pi * (t - start) / t_i)) / 2

  def schedule(step):
    epoch, k = step // updates_per_epoch, step % updates_per_epoch
    warm = base_lr * (epoch + 1) / warmup_epochs
    t = epoch + (accumulation * k + accumulation - 2) / batches_per_epoch
    return jnp.where(epoch < warmup_epochs, warm,
                     jnp.where(t < warmup_epochs, base_lr, cosine(jnp.maximum(t, 0.0))))

  return schedule


def official_steps_per_epoch(train_size: int, batch_size: int, accumulation: int) -> int:
  """Optimizer updates per epoch of the official loop: ``ceil(N / micro-batch) // accumulation``.

  Args:
    train_size: training pixels ``N``.
    batch_size: pixels per update (``accumulation`` micro-batches; official 2 x 32).
    accumulation: micro-batches per update.

  Returns:
    Updates per epoch, at least 1.

  Raises:
    ValueError: if ``batch_size`` is not a positive multiple of ``accumulation``.
  """
  if accumulation < 1 or batch_size < 1 or batch_size % accumulation:
    raise ValueError(f"batch_size: expected a positive multiple of accumulation={accumulation}, "
                     f"got {batch_size}")
  return max(math.ceil(train_size / (batch_size // accumulation)) // accumulation, 1)


def cyclic_lora_schedule(base_lr: float, t0: int = 10, t_mult: int = 2, eta_min: float = 1e-6,
                         lora_scale: float = 2.0):
  """The repository's ``EnhancedLoRACLRScheduler`` for LoRA groups (unused by its training script).

  Per-step cosine with warm restarts, the LoRA group's amplitude scaled by ``lora_scale``:
  ``eta_min + (base - eta_min) c s``, ``c = (1 + cos(pi T_cur / T_i)) / 2``.

  Args:
    base_lr: base learning rate.
    t0: first restart period (steps).
    t_mult: period multiplier.
    eta_min: minimum learning rate.
    lora_scale: amplitude scale ``s``.

  Returns:
    A schedule ``step -> learning rate``.
  """

  def schedule(step):
    n = jnp.floor(jnp.log2(step / t0 * (t_mult - 1) + 1) / math.log2(t_mult))
    start = t0 * (t_mult**n - 1) / (t_mult - 1)
    c = (1 + jnp.cos(jnp.pi * (step - start) / (t0 * t_mult**n))) / 2
    return eta_min + (base_lr - eta_min) * c * lora_scale

  return schedule


LORA_TRAINABLE = r"lora_(down|up|gate|residual)"


def _example(module: LoLASpecViT) -> dict:
  return {"x": jax.ShapeDtypeStruct((1, module.spatial_size, module.spatial_size,
                                     module.in_channels), jnp.float32), "train": False}


def _from_torch(state: dict) -> tuple[LoLASpecViT, dict]:
  """Builds the model from an official ``state_dict`` (configuration read off the shapes).

  The LoRA scaling ``alpha`` is not stored in a ``state_dict``; every official configuration uses
  ``alpha = 2 r`` (32 with r 16, 8 with r 4), which is assumed here. Patch size and band count are
  the official 15 (the convolution weights do not show them).
  """
  dim = state["patch_embed.0.weight"].shape[0]
  levels = sorted({int(k.split(".")[1]) for k in state if k.startswith("levels.")})
  depths, heads = [], []
  for level in levels:
    blocks = {int(k.split(".")[2]) for k in state
              if k.startswith(f"levels.{level}.") and ".attn." in k}
    depths.append(len(blocks))
    heads.append(state[f"levels.{level}.0.attn.relative_position_bias_table"].shape[1])
  table = state["levels.0.0.attn.relative_position_bias_table"].shape[0]
  hidden = state["levels.0.0.mlp.0.linear.weight"].shape[0]
  rank = state["head.lora_down.weight"].shape[0]
  module = LoLASpecViT(
      num_classes=state["head.linear.weight"].shape[0], dim=dim, depths=tuple(depths),
      heads=tuple(heads), window=(int(math.isqrt(table)) + 1) // 2, mlp_ratio=hidden / dim,
      rank=rank, alpha=2.0 * rank, drop_path_rate=0.0)
  return module, convert_torch_state(state)


def convert_torch_state(state: dict, dtype=np.float32) -> dict:
  """Official ``state_dict`` (name -> array) -> Flax ``{"params", "batch_stats"}``.

  Args:
    state: ``{name: array}`` of the official model.
    dtype: NumPy dtype of the converted arrays (``np.float64`` keeps a ``.double()`` model's
      values exactly).

  Returns:
    ``{"params": ..., "batch_stats": ...}``.
  """
  params, stats = {}, {}

  def put(tree, path, value):
    for part in path[:-1]:
      tree = tree.setdefault(part, {})
    tree[path[-1]] = jnp.asarray(value)

  for name, value in state.items():
    value = np.asarray(value, dtype)
    parts = name.split(".")
    leaf = parts[-1]
    scope = _flax_scope(parts[:-1])
    if leaf in ("running_mean", "running_var"):
      put(stats, scope + ["mean" if leaf == "running_mean" else "var"], value)
    elif leaf == "num_batches_tracked":
      continue
    elif leaf == "weight" and value.ndim == 1:
      put(params, scope + ["scale"], value)
    elif leaf == "weight":
      put(params, scope + ["kernel"], value.transpose(*range(2, value.ndim), 1, 0))
    else:
      put(params, scope + [leaf], value)
  return {"params": params, "batch_stats": stats}


def _flax_scope(parts: list[str]) -> list[str]:
  """Official module path -> Flax scope names (``levels.0.1.conv.2.fc.0`` ->
  ``levels_0_1/conv_2/fc_0``)."""
  out, i = [], 0
  while i < len(parts):
    part = parts[i]
    if part == "levels":
      out.append(f"levels_{parts[i + 1]}_{parts[i + 2]}")
      i += 3
    elif i + 1 < len(parts) and parts[i + 1].isdigit():
      out.append(f"{part}_{parts[i + 1]}")
      i += 2
    else:
      out.append(part)
      i += 1
  return out


MODELS = {
    "lola_specvit": ModelSpec(build=LoLASpecViT, example_inputs=_example,
                              from_torch=_from_torch, rng_names=("dropout",)),
    "lola_specvit_mini": ModelSpec(
        build=functools.partial(LoLASpecViT, dim=16, depths=(1, 1, 1), heads=(2, 2, 4),
                                mlp_ratio=1.0, rank=4, alpha=8.0, drop_path_rate=0.0),
        example_inputs=_example, from_torch=_from_torch, rng_names=("dropout",)),
}


def pca_whiten(cube: np.ndarray, components: int = 15) -> np.ndarray:
  """The official band reduction: PCA fitted on every pixel of the scene, whitened.

  ``z = (x - mean) V^T / sqrt(explained variance)`` (ddof 1), so each component has unit variance.
  Component signs follow the largest-magnitude loading (positive), scikit-learn's ``svd_flip``
  convention being version dependent.

  Args:
    cube: scene, ``(H, W, B)``.
    components: principal components kept.

  Returns:
    ``(H, W, components)`` float32.

  Raises:
    ValueError: if ``cube`` is not ``(H, W, B)`` with ``B >= components``.
  """
  if cube.ndim != 3 or cube.shape[-1] < components:
    raise ValueError(f"cube: expected (H, W, B) with B >= {components}, got {cube.shape}")
  pixels = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
  centred = pixels - pixels.mean(axis=0)
  eigvals, eigvecs = np.linalg.eigh(centred.T @ centred / (len(pixels) - 1))
  order = np.argsort(eigvals)[::-1][:components]
  vectors = eigvecs[:, order]
  vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(components)])
  z = centred @ vectors / np.sqrt(eigvals[order])
  return z.reshape(cube.shape[:2] + (components,)).astype(np.float32)
