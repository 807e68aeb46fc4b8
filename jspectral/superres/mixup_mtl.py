"""Multi-task hyperspectral SR with Spectral Mixup and heterogeneous data (HSI, RGB, LR-only HSI).

K. Li, D. Dai, E. Konukoglu, L. Van Gool, "Hyperspectral Image Super-Resolution with Spectral
Mixup and Heterogeneous Datasets", arXiv 2101.07589. Official code: github.com/kli8996/HSISR
(HEAD 8dae2db; ``BlockModule.DeepShare``, ``basicModule.py``, ``Loss.py``, ``mains.py``), built on
SSPSR (github.com/junjun-jiang/SSPSR).

Bands-last: ``x`` ``(N, h, w, C)``, ``lms`` (bicubic-upsampled ``x``) ``(N, s h, s w, C)``, output
``(N, s h, s w, C)``. The "RGB" modality is 8 channels: an RGB image expanded by
:data:`RGB_TO_8CH` (``n_subs`` = 8).

Architecture as the official code builds it (``specs/hsi_sr_mixup.md`` §2):

* The *shared* part (official ``branch1`` + ``branch2``) super-resolves groups of ``n_subs``
  adjacent bands overlapping by ``n_ovls`` (the last group is shifted to end at band C); every group
  goes through the same weights (vectorised here by stacking groups on the batch axis) and the
  outputs are averaged per band over the groups covering it.
* The HSI head (``trunk``, ``skip_conv``, ``final``) works at HR: ``final(trunk(avg) +
  skip_conv(lms))``; the RGB head (``trunk_RGB``, ``skip_conv_RGB``, ``final_RGB``) does the same
  on the shared part's 8-channel output. No identity skip of ``lms`` on the output; not clamped.
* Blocks: ``ResBlock`` ``x + 0.1 conv3(relu(conv3 x))``; ``ResAttentionBlock``
  ``x + 0.1 CA(conv1(relu(conv1 x)))`` with channel attention (reduction 16); an SSB is the two in
  sequence; an SSPN is 3 SSBs plus an identity skip. ``n_blocks`` of the official constructor is
  ignored there (always 3 SSBs), so it is not a field here.

``init`` always creates both heads (one parameter tree for every task); an HSI-only forward uses
the shared part and the HSI head only. The Flax tree mirrors the official names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn.model_spec import ModelSpec
from jspectral.superres.layers import PixelShuffleUpsampler, params_from_torch, shuffle_stages
from jspectral.superres.losses import hybrid_loss

# RGB -> 8 pseudo-bands (official, per pixel ``v8 = v_rgb @ RGB_TO_8CH``; rows R, G, B).
RGB_TO_8CH = np.array([[1.0, 0.66, 0.34, 0.0, 0.0, 0.0, 0.0, 0.0],
                       [0.0, 0.34, 0.76, 1.0, 0.75, 0.5, 0.25, 0.0],
                       [0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0]], np.float32)


def band_groups(bands: int, n_subs: int, n_ovls: int) -> list[tuple[int, int]]:
  """``[start, end)`` of each band group: stride ``n_subs − n_ovls``, last group ends at ``bands``.

  >>> band_groups(31, 8, 2)
  [(0, 8), (6, 14), (12, 20), (18, 26), (23, 31)]

  Args:
    bands: number of bands C.
    n_subs: bands per group.
    n_ovls: overlap of adjacent groups.

  Returns:
    ``[(start, end), ...]``.

  Raises:
    ValueError: unless ``0 <= n_ovls < n_subs <= bands``.
  """
  if not 0 <= n_ovls < n_subs <= bands:
    raise ValueError(f"n_subs, n_ovls: expected 0 <= n_ovls < n_subs <= bands ({bands}), got "
                     f"{n_subs}, {n_ovls}")
  stride = n_subs - n_ovls
  groups = []
  for g in range(math.ceil((bands - n_ovls) / stride)):
    start = g * stride
    if start + n_subs > bands:
      start = bands - n_subs
    groups.append((start, start + n_subs))
  return groups


def group_counts(bands: int, n_subs: int, n_ovls: int) -> np.ndarray:
  """How many groups cover each band (the official ``channel_counter``).

  Args:
    bands: number of bands C.
    n_subs: bands per group.
    n_ovls: overlap of adjacent groups.

  Returns:
    ``(bands,)`` int32.

  Raises:
    ValueError: unless ``0 <= n_ovls < n_subs <= bands``.
  """
  counts = np.zeros(bands, np.int32)
  for start, end in band_groups(bands, n_subs, n_ovls):
    counts[start:end] += 1
  return counts


def project_bands(x: jax.Array, matrix: jax.Array) -> jax.Array:
  """The official ``conversion``: ``y[..., j] = Σ_c x[..., c] M[c, j]`` per pixel (no bias).

  Args:
    x: ``(..., C)``.
    matrix: ``(C, K)``.

  Returns:
    ``(..., K)``.

  Raises:
    ValueError: if ``matrix`` is not ``(C, K)``.
  """
  if matrix.ndim != 2 or matrix.shape[0] != x.shape[-1]:
    raise ValueError(f"matrix: expected ({x.shape[-1]}, K) for x with {x.shape[-1]} bands, got "
                     f"shape {matrix.shape}")
  return jnp.einsum("...c,ck->...k", x, matrix)


def hsi_to_8ch_matrix(response: jax.Array) -> jax.Array:
  """HSI -> 8-channel projection ``S · RGB_TO_8CH`` for a camera response ``S`` ``(C, 3)``.

  The official 31×8 ``conversion_8channels.mat`` is exactly of this form (S = its columns 0, 3, 7).

  Args:
    response: RGB response curves, ``(C, 3)``.

  Returns:
    ``(C, 8)``.

  Raises:
    ValueError: if ``response`` is not ``(C, 3)``.
  """
  if response.ndim != 2 or response.shape[1] != 3:
    raise ValueError(f"response: expected (C, 3) RGB response curves, got shape {response.shape}")
  return response @ jnp.asarray(RGB_TO_8CH, response.dtype)


class ConvReluConv(nn.Module):
  """``conv(k) -> ReLU -> conv(k)`` named ``0`` and ``2`` (an official ``nn.Sequential``).

  Attributes:
    hidden: width of the first conv.
    features: width of the second conv.
    kernel: kernel size k.
  """

  hidden: int
  features: int
  kernel: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, features)``.
    """
    pad = self.kernel // 2
    x = nn.relu(nn.Conv(self.hidden, (self.kernel,) * 2, padding=pad, name="0")(x))
    return nn.Conv(self.features, (self.kernel,) * 2, padding=pad, name="2")(x)


class ChannelAttention(nn.Module):
  """``u · sigmoid(conv1(relu(conv1(mean_HW u))))`` with F -> ⌊F/16⌋ -> F (``conv_du``).

  Attributes:
    reduction: channel reduction (16).
  """

  reduction: int = 16

  @nn.compact
  def __call__(self, u: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      u: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    features = u.shape[-1]
    pooled = u.mean(axis=(1, 2), keepdims=True)
    gate = ConvReluConv(features // self.reduction, features, 1, name="conv_du")(pooled)
    return u * nn.sigmoid(gate)


class SpectralBody(nn.Module):
  """Body of ``ResAttentionBlock``: conv1 (``0``), ReLU, conv1 (``2``), channel attention ``3``."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    features = x.shape[-1]
    x = nn.relu(nn.Conv(features, (1, 1), name="0")(x))
    return ChannelAttention(name="3")(nn.Conv(features, (1, 1), name="2")(x))


class ResBlock(nn.Module):
  """Spatial residual block: ``x + res_scale · conv3(relu(conv3 x))``.

  Attributes:
    res_scale: residual scaling.
  """

  res_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    features = x.shape[-1]
    return x + self.res_scale * ConvReluConv(features, features, 3, name="body")(x)


class ResAttentionBlock(nn.Module):
  """Spectral residual block: ``x + res_scale · CA(conv1(relu(conv1 x)))``.

  Attributes:
    res_scale: residual scaling.
  """

  res_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    return x + self.res_scale * SpectralBody(name="body")(x)


class SSB(nn.Module):
  """Spatial-spectral block: ``spa`` (ResBlock) then ``spc`` (ResAttentionBlock).

  Attributes:
    res_scale: residual scaling.
  """

  res_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    x = ResBlock(self.res_scale, name="spa")(x)
    return ResAttentionBlock(self.res_scale, name="spc")(x)


class SSPN(nn.Module):
  """Three SSBs (``net1``..``net3``) with an identity skip around all three.

  Attributes:
    res_scale: residual scaling.
  """

  res_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, F)``.

    Returns:
      ``(N, H, W, F)``.
    """
    y = x
    for i in range(3):
      y = SSB(self.res_scale, name=f"net{i + 1}")(y)
    return x + y


class BranchUnit(nn.Module):
  """``head`` conv3 (-> F), ``body`` SSPN, ``upsample`` (x ``up``), optional ``tail`` conv3.

  Attributes:
    features: width F.
    up: upsampling factor.
    tail: output channels of the ``tail`` conv (0: no tail).
    res_scale: residual scaling.
  """

  features: int
  up: int = 1
  tail: int = 0
  res_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: ``(N, H, W, C)``.

    Returns:
      ``(N, up H, up W, tail or features)``.
    """
    x = nn.Conv(self.features, (3, 3), padding=1, name="head")(x)
    x = PixelShuffleUpsampler(self.up, name="upsample")(SSPN(self.res_scale, name="body")(x))
    if self.tail:
      x = nn.Conv(self.tail, (3, 3), padding=1, name="tail")(x)
    return x


class MultiTaskSR(nn.Module):
  """The official ``DeepShare``: shared band-group SR trunk, HSI head, 8-channel RGB head.

  Attributes:
    bands: hyperspectral bands C (CAVE/Harvard/NTIRE 31, Chikusei 128).
    scale: SR factor s, even, with ``s/2`` a power of two or 3 (the shared part upsamples by
      ``s/2`` in ``branch1`` and by 2 in ``branch2``).
    n_subs: bands per group (= channels of the RGB modality, 8).
    n_ovls: overlap of adjacent groups (2).
    features: width F of every conv (256).
    res_scale: residual scaling of the SSB blocks (0.1).
    lms_skip: add ``lms`` to the output of both heads and start ``final``/``final_RGB`` at zero
      (the untrained model is bicubic). Not in the official model (default off); the CPU smoke
      preset turns it on.
  """

  bands: int = 31
  scale: int = 4
  n_subs: int = 8
  n_ovls: int = 2
  features: int = 256
  res_scale: float = 0.1
  lms_skip: bool = False

  def setup(self):
    if self.scale % 2 or self.scale < 2:
      raise ValueError(f"scale: expected an even factor (the shared part upsamples by scale/2 "
                       f"then 2), got {self.scale}")
    shuffle_stages(self.scale // 2)
    self.groups = band_groups(self.bands, self.n_subs, self.n_ovls)
    f, r = self.features, self.res_scale
    self.branch1 = BranchUnit(f, self.scale // 2, 0, r)
    self.branch2 = BranchUnit(f, 2, self.n_subs, r)
    self.trunk = BranchUnit(f, 1, 0, r)
    self.skip_conv = nn.Conv(f, (3, 3), padding=1)
    tail_init = nn.initializers.zeros if self.lms_skip else nn.linear.default_kernel_init
    self.final = nn.Conv(self.bands, (3, 3), padding=1, kernel_init=tail_init)
    self.trunk_RGB = BranchUnit(f, 1, 0, r)
    self.skip_conv_RGB = nn.Conv(f, (3, 3), padding=1)
    self.final_RGB = nn.Conv(self.n_subs, (3, 3), padding=1, kernel_init=tail_init)

  def __call__(self, x: jax.Array, lms: jax.Array, modality: str = "spectral") -> jax.Array:
    """Super-resolves ``x`` given its bicubic upsampling ``lms``.

    ``modality`` ``"spectral"``: K = ``bands``; ``"rgb"``: K = ``n_subs`` (8-channel RGB).

    Args:
      x: LR input, ``(N, h, w, K)``.
      lms: bicubic upsampling of ``x``, ``(N, s h, s w, K)``.
      modality: ``"spectral"`` or ``"rgb"``.

    Returns:
      ``(N, s h, s w, K)``.

    Raises:
      ValueError: if ``modality`` is unknown or ``x`` / ``lms`` have the wrong shape (or, at setup,
        ``scale`` is not even).
    """
    if modality not in ("spectral", "rgb"):
      raise ValueError(f"modality: expected 'spectral' or 'rgb', got {modality!r}")
    channels = self.bands if modality == "spectral" else self.n_subs
    if x.ndim != 4 or x.shape[-1] != channels:
      raise ValueError(f"x: expected (N, h, w, {channels}) for modality {modality!r}, got shape "
                       f"{x.shape}")
    n, h, w, _ = x.shape
    expected = (n, self.scale * h, self.scale * w, channels)
    if lms.shape != expected:
      raise ValueError(f"lms: expected the bicubic upsampling of x with shape {expected}, got "
                       f"{lms.shape}")
    if modality == "rgb":
      out = self._rgb(x, lms)
    else:
      if self.is_initializing():  # create the RGB head too: one parameter tree for every task
        self._rgb(x[..., :self.n_subs], lms[..., :self.n_subs])
      out = self._spectral(x, lms)
    return out + lms if self.lms_skip else out

  def shared(self, x: jax.Array) -> jax.Array:
    """The shared part ``branch2(branch1(x))``.

    Args:
      x: band groups, ``(N, h, w, n_subs)``.

    Returns:
      ``(N, s h, s w, n_subs)``.
    """
    return self.branch2(self.branch1(x))

  def _spectral(self, x: jax.Array, lms: jax.Array) -> jax.Array:
    n = x.shape[0]
    stacked = jnp.concatenate([x[..., a:b] for a, b in self.groups], axis=0)
    outs = self.shared(stacked).reshape(len(self.groups), n, *lms.shape[1:3], self.n_subs)
    total = jnp.zeros(lms.shape, outs.dtype)
    for g, (a, b) in enumerate(self.groups):
      total = total.at[..., a:b].add(outs[g])
    counts = group_counts(self.bands, self.n_subs, self.n_ovls).astype(np.float32)
    group_mean = total / jnp.asarray(counts, total.dtype)
    self.sow("intermediates", "group_mean", group_mean)
    return self.final(self.trunk(group_mean) + self.skip_conv(lms))

  def _rgb(self, x: jax.Array, lms: jax.Array) -> jax.Array:
    return self.final_RGB(self.trunk_RGB(self.shared(x)) + self.skip_conv_RGB(lms))


def consistency_loss(model: MultiTaskSR, variables: Mapping, x: jax.Array, lms: jax.Array,
                     matrix: jax.Array) -> jax.Array:
  """Cross-task consistency on an LR-only HSI (official SSL objective).

  ``HybridLoss(P(net(x, lms, "spectral")), net(P x, P lms, "rgb"))`` with ``P`` the HSI -> 8-channel
  projection ``matrix`` ``(C, n_subs)``: the projected HSI super-resolution must equal the RGB-head
  super-resolution of the projected input. Both sides carry gradients (no stop-gradient); the TV
  terms act on the projected HSI prediction.

  Args:
    model: the :class:`MultiTaskSR`.
    variables: its variables.
    x: LR HSI, ``(N, h, w, C)``.
    lms: bicubic upsampling of ``x``, ``(N, s h, s w, C)``.
    matrix: projection ``P``, ``(C, n_subs)``.

  Returns:
    Scalar loss.
  """
  hsi = model.apply(variables, x, lms, "spectral")
  rgb = model.apply(variables, project_bands(x, matrix), project_bands(lms, matrix), "rgb")
  return hybrid_loss(project_bands(hsi, matrix), rgb)


def official_learning_rate(epoch: int, epochs: int = 10, base: float = 1e-4) -> float:
  """``adjust_learning_rate``: ``base · 0.3^⌊epoch/5⌋`` (1-based epoch), × 0.3 again in the last.

  For 10 epochs: 1e-4 (epochs 1-4), 3e-5 (5-9), 2.7e-6 (10).

  Args:
    epoch: 1-based epoch.
    epochs: total epochs.
    base: base learning rate.

  Returns:
    The learning rate of ``epoch``.

  Raises:
    ValueError: unless ``1 <= epoch <= epochs``.
  """
  if not 1 <= epoch <= epochs:
    raise ValueError(f"epoch: expected 1 <= epoch <= epochs ({epochs}), got {epoch}")
  lr = base * 0.3 ** (epoch // 5)
  return lr * 0.3 if epoch == epochs else lr


def from_torch(state_dict: Mapping[str, np.ndarray]) -> tuple[MultiTaskSR, dict]:
  """``MultiTaskSR`` and its variables from an official ``DeepShare`` ``state_dict``.

  Bands from ``final.weight``, width and ``n_subs`` from ``branch1.head.weight``, the scale from the
  number of ``branch1.upsample`` stages. ``n_ovls`` cannot be read off the weights: the official
  value 2 is assumed (pass a different one by building ``MultiTaskSR`` yourself).

  Args:
    state_dict: ``{name: array}`` with the official DeepShare names.

  Returns:
    ``(module, {"params": ...})``.

  Raises:
    ValueError: if ``final.weight`` or ``branch1.head.weight`` is missing.
  """
  if "final.weight" not in state_dict or "branch1.head.weight" not in state_dict:
    raise ValueError("state_dict: expected the official DeepShare names ('final.weight', "
                     "'branch1.head.weight')")
  bands = int(state_dict["final.weight"].shape[0])
  features, n_subs = (int(v) for v in state_dict["branch1.head.weight"].shape[:2])
  stages = sum(1 for k in state_dict
               if k.startswith("branch1.upsample.") and k.endswith(".weight"))
  first = state_dict.get("branch1.upsample.0.weight")
  half = 3 if first is not None and first.shape[0] == 9 * features else 2 ** stages
  module = MultiTaskSR(bands=bands, scale=2 * half, n_subs=n_subs, features=features)
  return module, {"params": params_from_torch(state_dict)}


def _example(module: MultiTaskSR) -> dict:
  c, s = module.bands, module.scale
  return {"x": jax.ShapeDtypeStruct((1, 4, 4, c), jnp.float32),
          "lms": jax.ShapeDtypeStruct((1, 4 * s, 4 * s, c), jnp.float32)}


def _build(bands: int, scale: int):
  return lambda **overrides: MultiTaskSR(**{"bands": bands, "scale": scale, **overrides})


MODELS = {
    "mixup_mtl": ModelSpec(build=_build(31, 4), example_inputs=_example, from_torch=from_torch),
    "mixup_mtl_x8": ModelSpec(build=_build(31, 8), example_inputs=_example, from_torch=from_torch),
    "mixup_mtl_chikusei": ModelSpec(build=_build(128, 8), example_inputs=_example,
                                    from_torch=from_torch),
}
