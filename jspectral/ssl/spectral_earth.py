"""SpectralEarth: self-supervised objectives (MoCo-v2, DINO, MAE) and downstream heads.


Braham, Albrecht, Mairal, Chanussot, Wang, Zhu, "SpectralEarth: Training Hyperspectral Foundation
Models at Scale", arXiv 2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth
(``src/backbones/{spec_resnet,spec_vit}.py``, ``src/models/{moco,dino,mae}_module.py``; the losses
and heads come from the ``lightly`` library; downstream heads from
``src/models/{semantic_segmentation,regression}_module.py``).

All inputs are bands-last ``(N, H, W, B)`` cubes standardised per band. Differences from the
official code, each deliberate:

- Official quirks kept by default, corrected behind flags: the MoCo key encoder is initialised
  independently of the query encoder (``MoCoTask.copy_key_encoder=False``), so is the DINO
  teacher head (``DINOTask.copy_teacher_head=False``); the DINO teacher momentum follows
  lightly's per-epoch cosine over 10 epochs and then stays at 1.0
  (``DINOTask.per_step_momentum=False``).
- DINO's frozen last-layer weight-norm gain ``g`` (always 1) is not stored as a parameter, so the
  DINO head has 128 fewer parameters than the torch count; the MAE decoder's fixed sin-cos
  position embedding is a constant, not a parameter, as it is frozen in torch.
- During DINO's first epoch the student's last layer gets a zero gradient (torch sets it to
  ``None``); AdamW leaves it alone as torch does only with ``optimizer.skip_unused=True``.
- The MAE encoder's position embedding is lightly's fixed sin-cos table, held by ``MAETask`` as
  a constant (torch: a frozen parameter).
- Augmentations run on the host in NumPy (``augment``), not on the GPU with kornia.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from jspectral.data.crops import crop_box, random_resized_crop, resize_crop
from jspectral.nn import vit as vit_lib
from jspectral.nn.spec_vit import SpecViT
from jspectral.nn.spectral_adapter import batch_norm

# --------------------------------------------------------------------------------------------------
# Projection heads and the MAE decoder (lightly's modules)


class MoCoProjectionHead(nn.Module):
  """lightly ``MoCoProjectionHead(in, 2048, 128, num_layers=2, batch_norm=True)``.

  Dense (no bias) - BN - ReLU - Dense (no bias) - BN.

  Attributes:
    hidden: hidden width.
    out: output width.
  """

  hidden: int = 2048
  out: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Projects backbone features.

    Args:
      x: ``(N, F)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, out)``.
    """
    h = nn.relu(batch_norm(train, "bn1")(nn.Dense(self.hidden, use_bias=False, name="fc1")(x)))
    return batch_norm(train, "bn2")(nn.Dense(self.out, use_bias=False, name="fc2")(h))


class DINOProjectionHead(nn.Module):
  """lightly ``DINOProjectionHead(in, 2048, 256, out)``.

  Three Dense layers (GELU between), L2 normalisation, then a weight-normalised Dense without bias
  whose gain is fixed to 1. ``freeze_last_layer`` stops the gradient to the last layer (DINO's
  first epoch).

  Attributes:
    hidden: hidden width.
    bottleneck: bottleneck width before the last layer.
    out: output width K.
  """

  hidden: int = 2048
  bottleneck: int = 256
  out: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False,
               freeze_last_layer: jax.Array | bool = False) -> jax.Array:
    """Projects backbone features.

    Args:
      x: ``(N, F)``.
      train: unused (no BatchNorm in this head).
      freeze_last_layer: stop the gradient to the last layer (bool or traced bool).

    Returns:
      ``(N, out)``.
    """
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
  """MAE's fixed 2-D sin-cos position embedding with a zero class row.

  Args:
    dim: embedding width (multiple of 4).
    grid: token grid side.

  Returns:
    ``(1 + grid**2, dim)`` float32.

  Raises:
    ValueError: if ``dim`` is not a multiple of 4.
  """
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
  """lightly ``MAEDecoderTIMM``.

  Embeds to ``dim``, scatters kept tokens among mask tokens, adds the fixed sin-cos position
  embedding, runs ``depth`` timm blocks and LayerNorm, and predicts ``patch**2 * bands`` values per
  masked token linearly.

  Attributes:
    num_patches: tokens without the class token (a square number).
    patch_size: token patch side p.
    bands: bands B.
    dim: decoder width.
    depth: decoder blocks.
    num_heads: attention heads.
    mlp_ratio: MLP width / ``dim``.
  """

  num_patches: int = 1024
  patch_size: int = 4
  bands: int = 202
  dim: int = 512
  depth: int = 1
  num_heads: int = 16
  mlp_ratio: float = 4.0

  @nn.compact
  def __call__(self, encoded: jax.Array, idx_keep: jax.Array, idx_mask: jax.Array) -> jax.Array:
    """Predicts the masked patches.

    Args:
      encoded: encoder tokens, ``(N, 1 + K, D_enc)`` (class token first).
      idx_keep: kept token indices incl. the class token 0, ``(N, 1 + K)``.
      idx_mask: masked token indices (class token counted), ``(N, M)``.

    Returns:
      ``(N, M, p*p*bands)``.
    """
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


def l2_normalise(x: jax.Array) -> jax.Array:
  """``x / max(||x||_2, 1e-12)`` along the last axis.

  Args:
    x: ``(..., D)``.

  Returns:
    ``(..., D)``.
  """
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ntxent_loss(q: jax.Array, k: jax.Array, bank: jax.Array | None = None,
                temperature: float = 0.1) -> jax.Array:
  """lightly ``NTXentLoss``.

  With a memory ``bank`` ``(M, D)`` (MoCo): InfoNCE of each query against its key and the bank,
  target index 0. Without (SimCLR): the symmetric 2N-way loss. ``q, k`` ``(N, D)`` are
  L2-normalised here; bank rows are used as given.

  Args:
    q: queries, ``(N, D)``.
    k: keys, ``(N, D)``.
    bank: optional memory bank, ``(M, D)``.
    temperature: softmax temperature.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``q`` and ``k`` are not equal ``(N, D)`` shapes or ``bank`` is not ``(M, D)``.
  """
  if q.ndim != 2 or q.shape != k.shape:
    raise ValueError(f"q, k: expected equal (N, D) shapes, got {q.shape} and {k.shape}")
  q, k = l2_normalise(q), l2_normalise(k)
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
  """lightly memory bank FIFO: write ``keys`` at ``ptr``.

  A batch that would overflow is truncated and the pointer goes back to 0 (no wrap-around).

  Args:
    bank: ``(M, D)``.
    ptr: scalar integer write position.
    keys: ``(N, D)``.

  Returns:
    ``(bank, ptr)``: the updated ``(M, D)`` bank and the next pointer.
  """
  size, batch = bank.shape[0], keys.shape[0]
  idx = ptr + jnp.arange(batch)
  bank = bank.at[idx].set(keys.astype(bank.dtype), mode="drop")
  return bank, jnp.where(ptr + batch >= size, 0, ptr + batch).astype(ptr.dtype)


def dino_loss(teacher_out: jax.Array, student_out: jax.Array, center: jax.Array,
              teacher_temp: float = 0.04, student_temp: float = 0.1,
              center_momentum: float = 0.9) -> tuple[jax.Array, jax.Array]:
  """lightly ``DINOLoss``.

  Cross-entropy between centred, sharpened teacher softmaxes and student log-softmaxes over all
  pairs of different views, divided by ``pairs * N``. The new centre is
  ``m * center + (1 - m) * mean_{views, batch}(teacher_out)``.

  Args:
    teacher_out: ``(Vt, N, K)``.
    student_out: ``(Vs, N, K)``.
    center: ``(K,)`` or ``(1, K)``.
    teacher_temp: teacher temperature.
    student_temp: student temperature.
    center_momentum: ``m``.

  Returns:
    ``(loss, new_center)``: scalar and an array shaped like ``center``.

  Raises:
    ValueError: if the outputs are not ``(views, N, K)`` with equal N, K.
  """
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
  """Row-major patches, each laid out ``(p, q, c)``.

  Args:
    images: ``(N, H, W, C)``.
    patch: patch side p.

  Returns:
    ``(N, (H/p)(W/p), p*p*C)``.

  Raises:
    ValueError: if H or W is not a multiple of ``patch``.
  """
  n, h, w, c = images.shape
  if h % patch or w % patch:
    raise ValueError(f"images: height and width must be multiples of {patch}, got {images.shape}")
  x = images.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


def mae_loss(pred: jax.Array, images: jax.Array, idx_mask: jax.Array, patch: int,
             norm_pix: bool = True) -> jax.Array:
  """MAE MSE between ``pred`` and the masked patches of ``images``.

  ``idx_mask`` ``(N, M)`` indexes the token sequence *with* the class token (patch = index - 1).
  ``norm_pix`` standardises each target patch with its mean and unbiased variance + 1e-6.

  Args:
    pred: ``(N, M, p*p*C)``.
    images: ``(N, H, W, C)``.
    idx_mask: ``(N, M)``.
    patch: patch side p.
    norm_pix: standardise each target patch.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``pred`` does not match the target shape (or H, W are not multiples of p).
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
  """lightly ``random_token_mask`` without masking the class token.

  ``idx_keep`` starts with the class token 0 and ``K = int(num_patches * (1 - mask_ratio))``
  random patches; ``idx_mask`` holds the rest (indices count the class token).

  Args:
    rng: PRNG key.
    batch: N.
    num_patches: tokens without the class token.
    mask_ratio: fraction masked.

  Returns:
    ``(idx_keep, idx_mask)``, ``(N, 1 + K)`` and ``(N, num_patches - K)``.

  Raises:
    ValueError: unless ``0 < K < num_patches``.
  """
  keep = int(num_patches * (1 - mask_ratio))
  if not 0 < keep < num_patches:
    raise ValueError(f"mask_ratio: {mask_ratio} keeps {keep} of {num_patches} patches")
  noise = jax.random.uniform(rng, (batch, num_patches))
  order = jnp.argsort(noise, axis=1) + 1
  cls = jnp.zeros((batch, 1), order.dtype)
  return jnp.concatenate([cls, order[:, :keep]], axis=1), order[:, keep:]


def cosine_momentum(step, max_steps: int, start: float = 0.996, end: float = 1.0):
  """lightly ``cosine_schedule``: ``start`` at 0, ``end`` at ``max_steps - 1`` and after.

  Args:
    step: current step (scalar or array).
    max_steps: schedule length.
    start: value at step 0.
    end: final value.

  Returns:
    float32, shaped like ``step``.
  """
  step = jnp.asarray(step, jnp.float32)
  value = end - (end - start) * (jnp.cos(jnp.pi * step / (max_steps - 1)) + 1) / 2
  return jnp.where(step >= max_steps - 1, end, value)


def dino_learning_rate(epoch, base_lr: float = 1e-3, warmup_epochs: int = 20, t_max: int = 100):
  """Official DINO lr per epoch.

  LinearLR from ``lr / warmup`` over ``warmup`` epochs, then CosineAnnealingLR with
  ``T_max = max_epochs`` (so the lr never reaches 0 in 100 epochs).

  Args:
    epoch: epoch (scalar or array).
    base_lr: peak learning rate.
    warmup_epochs: warm-up epochs.
    t_max: cosine period ``T_max``.

  Returns:
    float32, shaped like ``epoch``.
  """
  epoch = jnp.asarray(epoch, jnp.float32)
  warm = base_lr * (1 / warmup_epochs + (1 - 1 / warmup_epochs) * epoch / warmup_epochs)
  cos = base_lr * (1 + jnp.cos(jnp.pi * (epoch - warmup_epochs) / t_max)) / 2
  return jnp.where(epoch < warmup_epochs, warm, cos)


def dino_teacher_temperature(epoch, start: float = 0.04, end: float = 0.04,
                             warmup_epochs: int = 10):
  """lightly ``DINOLoss`` teacher temperature per epoch: ``linspace(start, end, warmup_epochs)``
  over the warm-up, ``end`` afterwards (official values 0.04 -> 0.04: constant).

  Args:
    epoch: epoch (scalar or array).
    start: temperature at epoch 0.
    end: temperature from epoch ``warmup_epochs - 1`` on.
    warmup_epochs: warm-up length (>= 2 for a ramp).

  Returns:
    float32, shaped like ``epoch``.
  """
  epoch = jnp.asarray(epoch, jnp.float32)
  ramp = start + (end - start) * epoch / max(warmup_epochs - 1, 1)
  return jnp.where(epoch < warmup_epochs, ramp, end).astype(jnp.float32)


def moco_learning_rate(epoch, base_lr: float = 1e-3, milestones: Sequence[int] = (60, 80),
                       gamma: float = 0.1):
  """Official MoCo lr per epoch: MultiStepLR, ``x gamma`` at each milestone.

  Args:
    epoch: epoch (scalar or array).
    base_lr: initial learning rate.
    milestones: epochs at which the lr is multiplied by ``gamma``.
    gamma: decay factor.

  Returns:
    Shaped like ``epoch``.
  """
  epoch = jnp.asarray(epoch)
  return base_lr * gamma ** sum((epoch >= m).astype(jnp.float32) for m in milestones)


# --------------------------------------------------------------------------------------------------
# Hyperspectral augmentations (host side, NumPy)


def ssl_view(image: np.ndarray, rng: np.random.Generator, *, size: int,
             scale: tuple[float, float], blur_p: float, mean: np.ndarray,
             std: np.ndarray) -> np.ndarray:
  """One SpectralEarth SSL view.

  RandomResizedCrop, Gaussian blur (kernel ``size//10//2*2+1``, sigma in [0.1, 2], probability
  ``blur_p``, reflect padding), h/v flips, per-band standardisation. No colour/spectral
  augmentation, on purpose.

  Args:
    image: ``(H, W, B)``.
    rng: NumPy generator.
    size: output side S.
    scale: crop area range.
    blur_p: blur probability.
    mean: per-band mean, ``(B,)``.
    std: per-band std, ``(B,)``.

  Returns:
    ``(S, S, B)`` float32.
  """
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
# --------------------------------------------------------------------------------------------------
# Networks


class SSLNet(nn.Module):
  """``backbone`` followed by a projection ``head``: returns ``(features, projection)``.

  Attributes:
    backbone: encoder ``(N, H, W, B) -> (N, F)``, called as ``backbone(x, train)``.
    head: projection head, called as ``head(features, train, **head_kw)``.
  """

  backbone: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = False, **head_kw):
    """Encodes and projects.

    Args:
      x: ``(N, H, W, B)``.
      train: training mode for backbone and head.
      **head_kw: extra head arguments (e.g. ``freeze_last_layer``).

    Returns:
      ``(features, projection)``, ``(N, F)`` and ``(N, out)``.
    """
    features = self.backbone(x, train)
    return features, self.head(features, train, **head_kw)



class MAENet(nn.Module):
  """Spec ViT encoder on kept tokens + :class:`MAEDecoder` predicting the masked patches.

  Attributes:
    encoder: the :class:`SpecViT`.
    decoder_dim: decoder width.
    decoder_depth: decoder blocks.
    decoder_heads: decoder attention heads.
    bands: bands B.
  """

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
    """Encodes the kept tokens and predicts the masked patches.

    Args:
      x: ``(N, H, W, B)``.
      idx_keep: ``(N, 1 + K)`` from :func:`random_token_mask`.
      idx_mask: ``(N, M)``.
      train: encoder training mode.

    Returns:
      ``(N, M, p*p*B)``.
    """
    encoded = self.encoder.encode_masked(x, idx_keep, train)
    return self.decoder(encoded, idx_keep, idx_mask)


# --------------------------------------------------------------------------------------------------
# Downstream heads and losses (src/models/*_module.py)


def _upsample2(x: jax.Array) -> jax.Array:
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")


class ConvHead(nn.Module):
  """Official ``ConvHead``.

  For ``log2(patch_size)`` stages, bilinear x2 upsampling (``align_corners=False``) and a 3x3 conv
  with bias; widths 128, 64, ... then ``num_classes``; BatchNorm + ReLU after every conv but the
  last.

  Attributes:
    num_classes: output classes.
    patch_size: token patch side (power of 2 >= 2).
  """

  num_classes: int
  patch_size: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Decodes a token grid.

    Args:
      x: ``(N, h, w, D)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, h * patch_size, w * patch_size, num_classes)``.

    Raises:
      ValueError: if ``patch_size`` is not a power of 2 >= 2.
    """
    p = self.patch_size
    if p < 2 or p & (p - 1):
      raise ValueError(f"patch_size: expected a power of 2 >= 2, got {p}")
    steps = int(math.log2(p))
    widths = [128 // 2**i for i in range(steps - 1)] + [self.num_classes]
    for i, width in enumerate(widths):
      x = nn.Conv(width, (3, 3), padding=[(1, 1), (1, 1)], name=f"conv{i}")(_upsample2(x))
      if i < steps - 1:
        x = nn.relu(batch_norm(train, f"bn{i}")(x))
    return x


class ViTSegmentor(nn.Module):
  """``backbone`` (a :class:`jspectral.ssl.spectral_earth.SpecViT`) + :class:`ConvHead`.

  Maps ``(N, H, W, B) -> (N, H, W, num_classes)`` logits.

  ``standardise`` (not in the official code, off by default) puts a BatchNorm without scale and
  shift between the frozen tokens and the head, as the MAE / DINO / MoCo-v3 linear-probe
  protocols do: each token feature is standardised by batch statistics in training and by their
  running averages in inference, so the head sees pretrained and random-init features at a
  common scale. ``head="linear"``: a 1x1 conv on the token grid, logits resized bilinearly to
  the input (the official "linear" protocol is the ConvHead on a frozen encoder).

  Attributes:
    backbone: the SpecViT.
    num_classes: output classes.
    standardise: BatchNorm without scale/shift on the tokens.
    head: ``"conv"`` or ``"linear"``.
  """

  backbone: nn.Module
  num_classes: int
  standardise: bool = False
  head: str = "conv"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, backbone_train: bool | None = None):
    """Segments a cube.

    Args:
      x: ``(N, H, W, B)``.
      train: training mode of the head.
      backbone_train: training mode of the backbone (default ``train``).

    Returns:
      Logits, ``(N, H, W, num_classes)``.

    Raises:
      ValueError: if ``head`` is unknown.
    """
    if self.head not in ("conv", "linear"):
      raise ValueError(f"head: expected 'conv' or 'linear', got {self.head!r}")
    backbone_train = train if backbone_train is None else backbone_train
    tokens = self.backbone.patch_tokens(x, backbone_train, norm=True)
    grid = x.shape[1] // self.backbone.token_patch_size
    fmap = tokens.reshape(x.shape[0], grid, grid, tokens.shape[-1])
    if self.standardise:
      fmap = batch_norm(train, "feature_bn", use_scale=False, use_bias=False)(fmap)
    if self.head == "linear":
      logits = nn.Conv(self.num_classes, (1, 1), name="head")(fmap)
      return jax.image.resize(logits, (*x.shape[:3], self.num_classes), method="bilinear")
    return ConvHead(self.num_classes, self.backbone.token_patch_size, name="head")(fmap, train)


class FCNHead(nn.Module):
  """Official ``FCNHead``: 3x3 conv (no bias) to ``in/8`` channels, BN, ReLU, 1x1 conv.

  Attributes:
    num_classes: output classes.
  """

  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the head.

    Args:
      x: ``(N, h, w, F)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, h, w, num_classes)``.
    """
    inter = x.shape[-1] // 8
    x = nn.Conv(inter, (3, 3), padding=[(1, 1), (1, 1)], use_bias=False, name="conv0")(x)
    x = nn.relu(batch_norm(train, "bn0")(x))
    return nn.Conv(self.num_classes, (1, 1), name="conv1")(x)


class FCNSegmenter(nn.Module):
  """``backbone`` + FCNHead + bilinear resize of the logits to the input size.

  The backbone is a ``SpecResNet50(return_features=True)``, usually all-dilated.

  Attributes:
    backbone: feature-map encoder.
    num_classes: output classes.
  """

  backbone: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, backbone_train: bool | None = None):
    """Segments a cube.

    Args:
      x: ``(N, H, W, B)``.
      train: training mode of the head.
      backbone_train: training mode of the backbone (default ``train``).

    Returns:
      Logits, ``(N, H, W, num_classes)``.
    """
    backbone_train = train if backbone_train is None else backbone_train
    logits = FCNHead(self.num_classes, name="head")(self.backbone(x, backbone_train), train)
    n, h, w, _ = x.shape
    return jax.image.resize(logits, (n, h, w, self.num_classes), method="bilinear")


def _torch_dense(features: int, fan_in: int, name: str) -> nn.Dense:
  """``nn.Dense`` drawn as torch's ``nn.Linear``: kernel and bias ``U(-1/sqrt(fan_in), ...)``."""
  bound = 1.0 / math.sqrt(fan_in)
  return nn.Dense(features, name=name,
                  kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                  bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
                      key, shape, dtype, -bound, bound))


class RegressionHead(nn.Module):
  """Official Hyperview head (``RegressionModule._configure_backbone``): BatchNorm1d on the
  pooled feature, then Linear-ReLU-Dropout per hidden width and a final Linear.

  Linear layers start as torch's defaults. ViT-S (384 -> 2048 -> 1024 -> 4): 2,891,524 params;
  Spec ResNet-50 (2048 -> ...): 6,302,724.

  Attributes:
    num_outputs: regression targets ``T`` (P, K, Mg, pH).
    hidden: hidden widths (official ``mlp_dims``).
    dropout: dropout rate after each hidden ReLU.
  """

  num_outputs: int = 4
  hidden: tuple[int, ...] = (2048, 1024)
  dropout: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Regresses the targets.

    Args:
      x: pooled features ``(N, D)``.
      train: batch statistics and dropout (needs a ``"dropout"`` rng).

    Returns:
      ``(N, num_outputs)``.
    """
    x = batch_norm(train, "bn")(x)
    for i, width in enumerate(self.hidden):
      x = nn.relu(_torch_dense(width, x.shape[-1], f"linear{i}")(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return _torch_dense(self.num_outputs, x.shape[-1], f"linear{len(self.hidden)}")(x)


class Regressor(nn.Module):
  """``backbone`` pooled feature + :class:`RegressionHead` (official: the MLP replaces timm's
  ``head`` on the class token of a Spec ViT, or the ResNet's ``fc`` on its pooled feature).

  Attributes:
    backbone: a :class:`SpecViT` or Spec ResNet-50 with ``num_classes=0``, ``(N, H, W, B) ->
      (N, D)``.
    num_outputs: regression targets.
    hidden: hidden widths of the head.
  """

  backbone: nn.Module
  num_outputs: int = 4
  hidden: tuple[int, ...] = (2048, 1024)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, backbone_train: bool | None = None):
    """Regresses the targets of a cube.

    Args:
      x: ``(N, H, W, B)``.
      train: training mode of the head (BatchNorm, dropout).
      backbone_train: training mode of the backbone (default ``train``).

    Returns:
      ``(N, num_outputs)``.
    """
    backbone_train = train if backbone_train is None else backbone_train
    features = self.backbone(x, backbone_train)
    return RegressionHead(self.num_outputs, tuple(self.hidden), name="head")(features, train)


def convert_torch_conv_head(state_dict, prefix: str = "segmentation_conv.") -> tuple[dict, dict]:
  """Official ``ConvHead`` ``nn.Sequential`` entries -> ``(params, batch_stats)``.

  The target is :class:`ConvHead`; the conv sits at Sequential index ``4i + 1``, BatchNorm
  at ``4i + 2``.

  Args:
    state_dict: ``{name: array}``.
    prefix: name prefix of the Sequential.

  Returns:
    ``(params, batch_stats)``.

  Raises:
    ValueError: if no ConvHead keys are found under ``prefix``.
  """
  params, stats = {}, {}
  i = 0
  while f"{prefix}{4 * i + 1}.weight" in state_dict:
    c = f"{prefix}{4 * i + 1}."
    params[f"conv{i}"] = {"kernel": np.asarray(state_dict[c + "weight"]).transpose(2, 3, 1, 0),
                          "bias": state_dict[c + "bias"]}
    b = f"{prefix}{4 * i + 2}."
    if b + "weight" in state_dict:
      params[f"bn{i}"] = {"scale": state_dict[b + "weight"], "bias": state_dict[b + "bias"]}
      stats[f"bn{i}"] = {"mean": state_dict[b + "running_mean"],
                         "var": state_dict[b + "running_var"]}
    i += 1
  if not params:
    raise ValueError(f"state_dict: no ConvHead keys under {prefix!r}")
  return params, stats


# --------------------------------------------------------------------------------------------------
# Losses


def segmentation_loss(logits: jax.Array, target: jax.Array, ignore_index: int) -> jax.Array:
  """torch ``CrossEntropyLoss(ignore_index=...)``.

  Mean over the pixels whose target is not ``ignore_index``.

  Args:
    logits: ``(..., C)``.
    target: integer labels, ``(...)``.
    ignore_index: label excluded from the mean.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``target`` does not match ``logits.shape[:-1]``.
  """
  if logits.shape[:-1] != target.shape:
    raise ValueError(f"target: expected shape {logits.shape[:-1]}, got {target.shape}")
  valid = target != ignore_index
  logp = jax.nn.log_softmax(logits, axis=-1)
  safe = jnp.where(valid, target, 0)
  nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(valid.sum(), 1)


def multilabel_loss(logits: jax.Array, target: jax.Array) -> jax.Array:
  """BCE-with-logits averaged over samples and labels.

  Args:
    logits: ``(N, L)``.
    target: multi-hot, ``(N, L)``.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if the shapes differ.
  """
  if logits.shape != target.shape:
    raise ValueError(f"target: expected shape {logits.shape}, got {target.shape}")
  t = target.astype(logits.dtype)
  return jnp.mean(jnp.maximum(logits, 0) - logits * t + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def downstream_augment(example, rng: np.random.Generator, *, scale: tuple[float, float],
                       mean: np.ndarray, std: np.ndarray, train: bool = True):
  """Official downstream transform on ``{"image" (S, S, B), "mask" (S, S) or "label" (L,)}``.

  (train) RandomResizedCrop with ``scale`` (a mask is resampled nearest), vertical and horizontal
  flips; then per-band standardisation. A ``label`` (multi-hot, or Hyperview's float targets)
  passes through unchanged.

  Args:
    example: ``{"image": (S, S, B)}`` with ``"mask": (S, S)`` or ``"label": (L,)``.
    rng: NumPy generator.
    scale: crop area range.
    mean: per-band mean, ``(B,)``.
    std: per-band std, ``(B,)``.
    train: apply the random crop and flips.

  Returns:
    ``{"image": (S, S, B) float32}`` with ``"mask": (S, S) int32`` or ``"label": (L,)`` (int32;
    float32 for float targets).

  Raises:
    ValueError: if the example holds neither ``mask`` nor ``label``.
  """
  if ("mask" in example) == ("label" in example):
    raise ValueError(f"example: expected 'image' with exactly one of 'mask' or 'label', got "
                     f"{sorted(example)}")
  image = np.asarray(example["image"], np.float32)
  mask = np.asarray(example["mask"]) if "mask" in example else None
  if train:
    size = image.shape[0]
    box = crop_box(*image.shape[:2], rng, scale)
    image = resize_crop(image, box, size)
    mask = None if mask is None else resize_crop(mask, box, size, order=0)
    for axis in (0, 1):
      if rng.uniform() < 0.5:
        image = np.flip(image, axis)
        mask = None if mask is None else np.flip(mask, axis)
  out = {"image": ((image - mean) / std).astype(np.float32)}
  if mask is None:
    label = np.asarray(example["label"])
    out["label"] = label.astype(np.float32 if label.dtype.kind == "f" else np.int32)
  else:
    out["mask"] = np.ascontiguousarray(mask).astype(np.int32)
  return out


def trainable_pattern(backbone: nn.Module, *, freeze_backbone: bool = True,
                      finetune_adapter: bool = False, finetune_first_n_layers: int = 0,
                      prefix: str = "backbone/", head: str = "head/") -> str:
  """The ``trainable`` regex of the official downstream freezing flags.

  ``freeze_backbone`` freezes the encoder (the "linear" protocol; the head is always trained);
  ``finetune_adapter`` unfreezes the spectral adapter; ``finetune_first_n_layers = n`` unfreezes
  the first ``n`` ViT blocks or ResNet stages (``layer1..4``). Without ``freeze_backbone`` every
  parameter trains (full fine-tuning). Official: ``_freeze_encoder``, ``_unfreeze_adapter_layers``
  and ``_unfreeze_first_n_layers`` of ``src/models/{semantic_segmentation,
  multilabel_classification}_module.py``.

  Args:
    backbone: the encoder (a :class:`SpecViT` or a Spec ResNet-50).
    freeze_backbone: freeze the encoder.
    finetune_adapter: train the spectral adapter.
    finetune_first_n_layers: train ViT blocks / ResNet stages ``0 .. n-1``.
    prefix: path of the encoder's parameters in the model (``""`` when the model is the encoder).
    head: path of the head's parameters (e.g. ``"vit_core/head/"`` or ``"fc/"``).

  Returns:
    A regex over parameter paths (``""``: everything trains).

  Raises:
    ValueError: if ``finetune_first_n_layers`` is negative.
  """
  if finetune_first_n_layers < 0:
    raise ValueError(f"finetune_first_n_layers: expected >= 0, got {finetune_first_n_layers}")
  if not freeze_backbone:
    return ""
  parts = [head]
  if finetune_adapter:
    parts.append(f"{prefix}spectral_adapter/")
  layer = (lambda i: f"{prefix}vit_core/blocks_{i}/") if isinstance(backbone, SpecViT) else \
      (lambda i: f"{prefix}layer{i + 1}_\\d+/")
  parts += [layer(i) for i in range(finetune_first_n_layers)]
  return "^(" + "|".join(parts) + ")"
