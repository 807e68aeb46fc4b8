"""Deep pansharpening networks of the hyperspectral toolbox, with official-weight loading.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; code github.com/matciotola/hyperspectral_pansharpening_toolbox
(``HyperPNN/``, ``HSpeNet/``, ``HyperDSNet/``, ``DHPDarn/``, ``DIPHyperKite/``, ``R_PNN/``,
``PCA_Z_PNN/``). Original papers: HyperPNN (He et al., IEEE JSTARS 2019), HSpeNet (He et al.,
IEEE TGRS 2021), Hyper-DSNet (Zhuo et al., IEEE TGRS 2022), DHP-DARN (Zheng et al., IEEE TGRS
2020), DIP-HyperKite (Bandara et al., IEEE TGRS 2022), R-PNN (Guarino et al., 2024), PCA-Z-PNN.

All modules take bands-last inputs: ``pan (N, H, W, 1)`` and cubes ``(N, H, W, B)``; the call
order of the official ``forward`` is kept (``pan`` first where the official takes it first).
Parameter counts at B = 159 equal the official ``sum(p.numel())`` (fixed Hyper-DSNet edge taps
included: they live in ``params`` and are wrapped in ``stop_gradient``).

Official defect kept by default: the toolbox calls ``DARN.forward(prior, pan)`` as
``net(pan, prior)``, so FEN sees ``[pan, prior]`` and the residual is the PAN broadcast over
bands; ``DARN(swapped_inputs=False)`` gives the intended network.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jspectral.data import wald
from jspectral.nn import canonical_conv
from jspectral.nn.model_spec import ModelSpec

_PAD = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}


class Conv(nn.Module):
  """A PyTorch-style ``Conv2d`` with 'same' padding of a given mode (or ``padding_mode=None``).

  Attributes:
    features: output channels.
    kernel: kernel side k.
    padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``None`` (valid).
    use_bias: add a bias.
  """

  features: int
  kernel: int
  padding_mode: str | None = "zeros"
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    """Applies the conv.

    Args:
      x: ``(N, H, W, C)``.

    Returns:
      ``(N, H, W, features)``; ``(N, H - k + 1, W - k + 1, features)`` when
      ``padding_mode`` is ``None``.
    """
    if self.padding_mode is not None and self.kernel > 1:
      lo, hi = (self.kernel - 1) // 2, self.kernel // 2
      x = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode=_PAD[self.padding_mode])
    return nn.Conv(self.features, (self.kernel, self.kernel), padding="VALID",
                   use_bias=self.use_bias, conv_general_dilated=canonical_conv.conv_general_dilated,
                   name="conv")(x)


def _bn(train: bool, name: str):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def _check(pan, cube, name="hs"):
  if pan.ndim != 4 or pan.shape[-1] != 1:
    raise ValueError(f"pan: expected (N, H, W, 1), got shape {pan.shape}")
  if cube.ndim != 4 or cube.shape[:3] != pan.shape[:3]:
    raise ValueError(f"{name}: expected (N, H, W, B) with (N, H, W) = {pan.shape[:3]}, "
                     f"got shape {cube.shape}")


def _gap(x):
  return jnp.mean(x, axis=(1, 2), keepdims=True)


# ------------------------------------------------------------------------------------------------
# HyperPNN, HSpeNet
# ------------------------------------------------------------------------------------------------

class HyperPNN(nn.Module):
  """``HyperPNN_model``: spectral 1x1 features, PAN-concatenated 3x3 body, 1x1 head; no residual.

  Attributes:
    nbands: bands B of the output cube.
  """

  nbands: int = 159

  @nn.compact
  def __call__(self, pan, hs):
    """Fuses PAN and upsampled HS cube.

    Args:
      pan: PAN, ``(N, H, W, 1)``.
      hs: upsampled HS cube, ``(N, H, W, B)``.

    Returns:
      ``(N, H, W, nbands)``.

    Raises:
      ValueError: if ``pan`` is not ``(N, H, W, 1)`` or the cube does not match its ``(N, H, W)``.
    """
    _check(pan, hs)
    c = lambda f, k, n: Conv(f, k, "reflect", name=n)
    x = nn.relu(c(64, 1, "conv1")(hs))
    x = nn.relu(c(64, 1, "conv2")(x))
    y = jnp.concatenate([pan, x], -1)
    for i in (3, 4, 5):
      y = nn.relu(c(64, 3, f"conv{i}")(y))
    y = nn.relu(c(64, 1, "conv6")(y + x))
    return c(self.nbands, 1, "conv7")(y)


class HSpeNet(nn.Module):
  """``HSpeNet_model``: PAN detail branch, spectral branch, dense 3x3 block, 1x1 head + hs.

  Attributes:
    nbands: bands B of the output cube.
  """

  nbands: int = 159

  @nn.compact
  def __call__(self, pan, hs):
    """Fuses PAN and upsampled HS cube.

    Args:
      pan: PAN, ``(N, H, W, 1)``.
      hs: upsampled HS cube, ``(N, H, W, nbands)``.

    Returns:
      ``(N, H, W, nbands)``.

    Raises:
      ValueError: if ``pan`` is not ``(N, H, W, 1)`` or the cube does not match its ``(N, H, W)``.
    """
    _check(pan, hs)
    c = lambda f, k, n: Conv(f, k, "reflect", name=n)
    p = nn.relu(c(16, 3, "conv1_2")(pan))
    p = pan - nn.relu(c(16, 3, "conv2_2")(p))
    h = nn.relu(c(64, 1, "conv1_1")(hs))
    h = nn.relu(c(64, 1, "conv2_1")(h))
    y = jnp.concatenate([p, h], -1)
    for i in range(3, 8):
      y = jnp.concatenate([y, nn.relu(c(16, 3, f"conv{i}")(y))], -1)
    return c(self.nbands, 1, "conv8")(y) + hs


# ------------------------------------------------------------------------------------------------
# Hyper-DSNet
# ------------------------------------------------------------------------------------------------

EDGE_KERNELS = {
    "gaussian_filter": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0,
    "sobel_x": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float64),
    "sobel_y": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64),
    "prewitt_x": np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float64),
    "prewitt_y": np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], np.float64),
    "roberts_x": np.array([[-1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64),
    "roberts_y": np.array([[0, -1, 0], [1, 0, 0], [0, 0, 0]], np.float64),
    "laplacian": np.array([[2, 0, 2], [0, -8, 0], [2, 0, 2]], np.float64),
}


class EdgeBlock(nn.Module):
  """Hyper-DSNet Block1: fixed edge detectors on the 0..255-scaled low-passed PAN (no gradient).

  The taps are parameters (so the count equals the official ``sum(p.numel())``) initialised to
  the official kernels and wrapped in ``stop_gradient``. Rounding and flooring follow the official
  code; output channels ``[dy, dx, roberts, prewitt, sobel, laplacian]``.
  """

  @nn.compact
  def __call__(self, pan):
    """Computes the edge features.

    Args:
      pan: PAN, ``(N, H, W, 1)``.

    Returns:
      ``(N, H, W, 6)``: ``[dy, dx, roberts, prewitt, sobel, laplacian]``.
    """
    def conv(name, x):
      k = self.param(name, lambda _: jnp.asarray(EDGE_KERNELS[name][:, :, None, None], x.dtype))
      k = jax.lax.stop_gradient(k)
      xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
      return jax.lax.conv_general_dilated(xp, k, (1, 1), "VALID",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))

    edge = lambda name, x: jnp.round(jnp.clip(jnp.abs(conv(name, x)), 0, 255))
    pan = jax.lax.stop_gradient(pan)
    lp = conv("gaussian_filter", pan)
    norm = jnp.max(lp, axis=(1, 2, 3), keepdims=True)
    lp = lp * 255.0 / norm
    half = lambda a, b: jnp.round(0.5 * a + 0.5 * b) * norm / 255.0
    sobel = half(edge("sobel_x", lp), edge("sobel_y", lp))
    lp = jnp.floor(lp)
    prewitt = half(edge("prewitt_x", lp), edge("prewitt_y", lp))
    roberts = half(edge("roberts_x", lp), edge("roberts_y", lp))
    laplacian = edge("laplacian", lp) * norm / 255.0
    dx = jnp.diff(jnp.pad(pan, ((0, 0), (0, 0), (1, 0), (0, 0)), mode="edge"), axis=2)
    dy = jnp.diff(jnp.pad(pan, ((0, 0), (1, 0), (0, 0), (0, 0)), mode="edge"), axis=1)
    return jnp.concatenate([dy, dx, roberts, prewitt, sobel, laplacian], -1)


class HyperDSNet(nn.Module):
  """``Hyper_DSNet``: edge block, multi-scale block, dense block, channel attention on ms_lr.

  Attributes:
    nbands: bands B of the output cube. (>= 4).
  """

  nbands: int = 159

  @nn.compact
  def __call__(self, pan, ms, ms_lr):
    """Fuses PAN and HS cubes.

    Args:
      pan: PAN, ``(N, H, W, 1)``.
      ms: upsampled HS cube, ``(N, H, W, nbands)``.
      ms_lr: LR HS cube, ``(N, h, w, nbands)``.

    Returns:
      ``(N, H, W, nbands)``.

    Raises:
      ValueError: if ``pan`` is not ``(N, H, W, 1)``, ``ms`` does not match its ``(N, H, W)``,
        or ``nbands < 4``.
    """
    _check(pan, ms, "ms")
    if self.nbands < 4:
      raise ValueError(f"nbands: the channel attention reduces by 4, so nbands >= 4 is needed, "
                       f"got {self.nbands}")
    edges = EdgeBlock(name="block1")(pan)
    x = jnp.concatenate([pan, edges, ms], -1)
    x = jnp.concatenate([nn.relu(Conv(16, k, "zeros", name=f"block2_conv{i}")(x))
                         for i, k in ((1, 3), (2, 5), (3, 7))], -1)
    feats = [x]
    for i, f in enumerate((32, 16, 8, 8), start=1):
      feats.append(nn.relu(Conv(f, 3, "zeros", name=f"block3_conv{i}")(feats[-1])))
    out = Conv(self.nbands, 1, None, name="convlast")(jnp.concatenate(feats, -1))
    a = nn.relu(Conv(self.nbands // 4, 1, None, name="CA_conv_du_0")(_gap(ms_lr)))
    a = nn.sigmoid(Conv(self.nbands, 1, None, name="CA_conv_du_2")(a))
    return out * a + ms


# ------------------------------------------------------------------------------------------------
# DHP-DARN (stage 2) and DIP-HyperKite (stage 2), PanPrediction
# ------------------------------------------------------------------------------------------------

class CSA(nn.Module):
  """DARN's channel-spatial attention block.

  Attributes:
    features: channels.
    reduction: channel-attention reduction.
  """

  features: int = 64
  reduction: int = 16

  @nn.compact
  def __call__(self, x):
    """Applies the block.

    Args:
      x: ``(N, H, W, features)``.

    Returns:
      ``(N, H, W, features)``.
    """
    u = Conv(self.features, 3, name="conv2")(nn.relu(Conv(self.features, 3, name="conv1")(x)))
    ca = nn.relu(Conv(self.features // self.reduction, 1, name="conv3")(_gap(u)))
    ca = nn.sigmoid(Conv(self.features, 1, name="conv4")(ca))
    sa = nn.sigmoid(Conv(1, 1, name="conv5")(u))
    return u * ca + u * sa + x


class DARN(nn.Module):
  """``DARN``: FEN, four CSA blocks, RRN, residual; called ``(pan, prior)`` like the toolbox.

  With ``swapped_inputs`` (default, the official behaviour) FEN sees ``[pan, prior]`` and the
  residual added is the PAN; otherwise ``[prior, pan]`` and the prior (the intended design).

  Attributes:
    nbands: bands B of the output cube.
    features: width of the CSA blocks.
    swapped_inputs: the official input order.
  """

  nbands: int = 159
  features: int = 64
  swapped_inputs: bool = True

  @nn.compact
  def __call__(self, pan, prior):
    """Refines the prior.

    Args:
      pan: PAN, ``(N, H, W, 1)``.
      prior: prior cube, ``(N, H, W, nbands)``.

    Returns:
      ``(N, H, W, nbands)``.

    Raises:
      ValueError: if ``pan`` is not ``(N, H, W, 1)`` or the cube does not match its ``(N, H, W)``.
    """
    _check(pan, prior, "prior")
    first, second = (pan, prior) if self.swapped_inputs else (prior, pan)
    x = Conv(self.features, 3, name="FEN")(jnp.concatenate([first, second], -1))
    for i in range(1, 5):
      x = CSA(self.features, name=f"CSA{i}")(x)
    return Conv(self.nbands, 3, name="RRN")(x) + first


def _upsample2(x):
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear")


def _maxpool2(x):
  return nn.max_pool(x, (2, 2), (2, 2))


class KiteNetwork(nn.Module):
  """``KiteNetwork``: overcomplete encoder (x2 bilinear per stage), max-pool decoder, + prior.

  Attributes:
    nbands: bands B of the output cube.
    filters: encoder widths.
  """

  nbands: int = 159
  filters: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, pan, prior, train: bool = False):
    """Refines the prior.

    Args:
      pan: PAN, ``(N, H, W, 1)``.
      prior: prior cube, ``(N, H, W, nbands)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, H, W, nbands)``.

    Raises:
      ValueError: if ``pan`` is not ``(N, H, W, 1)`` or the cube does not match its ``(N, H, W)``.
    """
    _check(pan, prior, "prior")
    act = lambda v: nn.leaky_relu(v, 0.2)
    f = self.filters
    block = lambda x, n, bn, feat: act(_bn(train, bn)(Conv(feat, 3, "reflect", name=n)(x)))
    t1 = block(jnp.concatenate([pan, prior], -1), "encoder1", "ebn1", f[0])
    t2 = block(_upsample2(t1), "encoder2", "ebn2", f[1])
    t3 = block(_upsample2(t2), "encoder3", "ebn3", f[2])
    out = block(_upsample2(t3), "endec_conv", "endec_bn", f[2])
    out = block(jnp.concatenate([_maxpool2(out), t3], -1), "decoder1", "dbn1", f[1])
    out = block(jnp.concatenate([_maxpool2(out), t2], -1), "decoder2", "dbn2", f[0])
    out = block(jnp.concatenate([_maxpool2(out), t1], -1), "decoder3", "dbn3", self.nbands)
    return Conv(self.nbands, 1, None, name="final_conv")(out) + prior


class PanPredictionNetwork(nn.Module):
  """DIP-HyperKite's PAN predictor: softmax band weights from pooled features, weighted sum.

  Attributes:
    nbands: bands B of the output cube.
  """

  nbands: int = 159

  @nn.compact
  def __call__(self, cube):
    """Predicts the PAN.

    Args:
      cube: ``(N, H, W, nbands)``.

    Returns:
      ``(N, H, W, 1)``.
    """
    w = nn.relu(Conv(self.nbands // 2, 1, None, name="conv1")(_gap(cube)))
    w = nn.softmax(Conv(self.nbands, 1, None, name="conv2")(w), axis=-1)
    return jnp.sum(cube * w, axis=-1, keepdims=True)


def dhp_downsample(x, ratio: int = 6) -> jax.Array:
  """DHP-DARN's prior loss degradation.

  9x9 MTF (gain 0.3, float32 taps, reflect 'same'), then nearest-exact decimation by ``ratio``.

  Args:
    x: ``(N, H, W, C)``.
    ratio: decimation factor r.

  Returns:
    ``(N, H/r, W/r, C)``.
  """
  taps = wald.toolbox_taps(wald.gen_mtf(ratio, 9))
  return wald.decimate(wald.depthwise_filter(x, taps, "reflect"), ratio)


def dip_downsample(x, factor: int = 6) -> jax.Array:
  """DIP-HyperKite's prior loss degradation.

  Depthwise Lanczos-2 (phase 0.5, ``4 factor`` taps, float32), replicate padding
  ``(4 factor - factor) / 2``, stride ``factor``.

  Args:
    x: ``(N, H, W, C)``.
    factor: downsampling factor f.

  Returns:
    ``(N, H/f, W/f, C)``.
  """
  kernel = wald.toolbox_taps(wald.lanczos2_kernel(factor, 0.5, 4 * factor + 1))
  pad = (kernel.shape[0] - factor) // 2
  x = wald.pad_hw(x, pad, pad, pad, pad, "replicate")
  return wald.correlate_valid(x, kernel, stride=factor)


# ------------------------------------------------------------------------------------------------
# Per-image prior generators: DIP (DIP-HyperKite) and DHP (DHP-DARN)
# ------------------------------------------------------------------------------------------------

def _centre_cat(xs):
  """``adjust_shapes_and_cat``: centre-crop every input to the smallest size, concatenate."""
  h, w = min(x.shape[1] for x in xs), min(x.shape[2] for x in xs)
  crop = lambda x: x[:, (x.shape[1] - h) // 2:(x.shape[1] - h) // 2 + h,
                     (x.shape[2] - w) // 2:(x.shape[2] - w) // 2 + w]
  return jnp.concatenate([crop(x) for x in xs], -1)


class _Down(nn.Module):
  """Encoder stage. DIP: reflect pad 1 + stride-2 conv; DHP: the fixed dense Lanczos-2 filter."""

  features: int
  lanczos: bool
  slope: float
  train: bool

  @nn.compact
  def __call__(self, x):
    act = lambda v: nn.leaky_relu(v, self.slope)
    if self.lanczos:
      # The official dense 128x128 conv repeats one 9x9 kernel for every (out, in) pair: it is
      # the channel sum filtered once, copied to every output channel (a fixed, untrained layer).
      k = wald.toolbox_taps(wald.lanczos2_kernel(2, 0, 9))
      summed = wald.pad_hw(jnp.sum(x, -1, keepdims=True), 4, 4, 4, 4, "replicate")
      x = jnp.broadcast_to(wald.correlate_valid(summed, k, stride=2),
                           x.shape[:1] + ((x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1)
                           + x.shape[-1:])
    else:
      x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
      x = nn.Conv(self.features, (3, 3), (2, 2), padding="VALID", name="conv1")(x)
    x = act(_bn(self.train, "bn1")(x))
    return act(_bn(self.train, "bn2")(Conv(self.features, 3, "reflect", name="conv2")(x)))


class _Skip(nn.Module):
  features: int
  slope: float
  train: bool

  @nn.compact
  def __call__(self, x):
    return nn.leaky_relu(_bn(self.train, "bn1")(Conv(self.features, 1, name="conv1")(x)),
                         self.slope)


class _Up(nn.Module):
  """Decoder stage; DIP adds an input BN and a 1x1 conv + BN + LeakyReLU after the upsampling."""

  features: int
  dip: bool
  slope: float
  train: bool

  @nn.compact
  def __call__(self, x):
    act = lambda v: nn.leaky_relu(v, self.slope)
    if self.dip:
      x = _bn(self.train, "bn0")(x)
    x = act(_bn(self.train, "bn1")(Conv(self.features, 3, "reflect", name="conv1")(x)))
    x = _upsample2(act(_bn(self.train, "bn2")(Conv(self.features, 3, "reflect", name="conv2")(x))))
    if self.dip:
      x = act(_bn(self.train, "bn1x")(Conv(self.features, 1, name="conv1x")(x)))
    return x


class PriorNet(nn.Module):
  """DIP (``DIP(num_inputs, B)``, DIP-HyperKite) or DHP (``DHP(B)``, DHP-DARN) prior generator.

  Five stages of 128 channels with 4-channel skips; DIP: LeakyReLU 0.02, strided convs; DHP:
  LeakyReLU 0.01, a first 3x3 conv and the fixed channel-mixing Lanczos-2 downsampler (whose
  6,635,520 fixed weights are not parameters here: our count is the official trainable count).

  Attributes:
    nbands: bands B of the output cube.
    kind: ``"dip"`` or ``"dhp"``.
    features: stage width.
    skip: skip width.
  """

  nbands: int = 159
  kind: str = "dip"
  features: int = 128
  skip: int = 4

  @nn.compact
  def __call__(self, z, train: bool = False):
    """Generates the prior from its input.

    Args:
      z: network input, ``(N, H, W, C_in)`` (noise for DIP, the upsampled cube for DHP).
      train: BatchNorm batch statistics.

    Returns:
      ``(N, H, W, nbands)`` for H, W divisible by 32.

    Raises:
      ValueError: if ``kind`` is unknown.
    """
    dip = self.kind == "dip"
    if self.kind not in ("dip", "dhp"):
      raise ValueError(f"kind: expected 'dip' or 'dhp', got {self.kind!r}")
    slope = 0.02 if dip else 0.01
    x = z if dip else Conv(self.features, 3, "reflect", name="conv1")(z)
    skips = []
    for k in range(1, 6):
      x = _Down(self.features, not dip, slope, train, name=f"down_{k}")(x)
      skips.append(_Skip(self.skip, slope, train, name=f"skip_{k}")(x))
    for k in range(1, 6):
      x = _Up(self.features, dip, slope, train, name=f"up_{k}")(_centre_cat([x, skips[-k]]))
    return Conv(self.nbands, 1, name="final_conv")(x)


# ------------------------------------------------------------------------------------------------
# R-PNN and PCA-Z-PNN (toolbox versions)
# ------------------------------------------------------------------------------------------------

class RPNNToolbox(nn.Module):
  """``R_PNN_model``: valid convs 7/5/3 on ``[band, pan]`` + the band cropped by ``scope`` = 6.

  Attributes:
    features: conv widths.
    kernels: conv kernel sides.
  """

  features: Sequence[int] = (48, 32, 1)
  kernels: Sequence[int] = (7, 5, 3)

  @nn.compact
  def __call__(self, x):
    """Sharpens one band.

    Args:
      x: ``[band, pan]``, ``(N, H, W, 2)``.

    Returns:
      ``(N, H - 2s, W - 2s, 1)`` with ``s = sum(k // 2)`` (6).

    Raises:
      ValueError: if ``x`` is not ``(N, H, W, 2)``.
    """
    if x.ndim != 4 or x.shape[-1] != 2:
      raise ValueError(f"x: expected (N, H, W, 2) = [band, pan], got shape {x.shape}")
    y = x
    for i, (f, k) in enumerate(zip(self.features, self.kernels, strict=True)):
      y = Conv(f, k, None, name=f"conv{i + 1}")(y)
      y = nn.relu(y) if i < len(self.features) - 1 else y
    s = sum(k // 2 for k in self.kernels)
    return y + x[:, s:-s, s:-s, :-1]


class PCAZPNN(nn.Module):
  """``PCA_Z_PNN_model(n)``: reflect 'same' convs 7/5/3 on ``[PCs, pan]`` + the PCs.

  Attributes:
    ncomponents: principal components n.
  """

  ncomponents: int = 4

  @nn.compact
  def __call__(self, x):
    """Sharpens the principal components.

    Args:
      x: ``[PCs, pan]``, ``(N, H, W, ncomponents + 1)``.

    Returns:
      ``(N, H, W, ncomponents)``.

    Raises:
      ValueError: if ``x`` has the wrong shape.
    """
    if x.ndim != 4 or x.shape[-1] != self.ncomponents + 1:
      raise ValueError(f"x: expected (N, H, W, {self.ncomponents + 1}) = [PCs, pan], got {x.shape}")
    y = nn.relu(Conv(48, 7, "reflect", name="conv1")(x))
    y = nn.relu(Conv(32, 5, "reflect", name="conv2")(y))
    return Conv(self.ncomponents, 3, "reflect", name="conv3")(y) + x[..., :-1]


# ------------------------------------------------------------------------------------------------
# Official initialisation (training from scratch)
# ------------------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames=("scheme",))
def official_init(params, rng: jax.Array, scheme: str = "torch"):
  """Re-draws conv kernels / biases as the official code initialises them.

  ``"torch"``: PyTorch's default, weights and biases ``U(+-1/sqrt(fan_in))``. ``"hyper_dsnet"``:
  torch default, then Block2/3 and channel-attention kernels from a fan-in truncated normal
  (variance ``1/fan_in``, truncation at 2 std) with zero biases. ``"he_normal"``: torch default
  biases, kernels ``N(0, 2 / (kh kw out))`` (Kite's ``initialize_weights``). BatchNorm and the
  fixed Hyper-DSNet taps are left alone.

  Args:
    params: a model's ``params`` tree.
    rng: PRNG key.
    scheme: ``"torch"``, ``"hyper_dsnet"`` or ``"he_normal"``.

  Returns:
    ``params`` with every 4-D kernel (and its bias) re-drawn.

  Raises:
    ValueError: if ``scheme`` is unknown.
  """
  if scheme not in ("torch", "hyper_dsnet", "he_normal"):
    raise ValueError(f"scheme: expected 'torch', 'hyper_dsnet' or 'he_normal', got {scheme!r}")
  flat = traverse_util.flatten_dict(params)
  out = dict(flat)
  for i, (path, kernel) in enumerate(sorted(flat.items())):
    if path[-1] != "kernel" or kernel.ndim != 4:
      continue
    kh, kw, cin, cout = kernel.shape
    fan_in = kh * kw * cin
    key_w, key_b = jax.random.split(jax.random.fold_in(rng, i))
    bound = 1.0 / math.sqrt(fan_in)
    w = jax.random.uniform(key_w, kernel.shape, kernel.dtype, -bound, bound)
    bias_path = path[:-1] + ("bias",)
    b = (jax.random.uniform(key_b, flat[bias_path].shape, kernel.dtype, -bound, bound)
         if bias_path in flat else None)
    name = "/".join(path)
    if scheme == "hyper_dsnet" and any(s in name for s in ("block2_", "block3_", "CA_conv")):
      w = bound * jax.random.truncated_normal(key_w, -2.0, 2.0, kernel.shape, kernel.dtype)
      w = w / 0.87962566103423978
      b = None if b is None else jnp.zeros_like(b)
    elif scheme == "he_normal":
      w = math.sqrt(2.0 / (kh * kw * cout)) * jax.random.normal(key_w, kernel.shape, kernel.dtype)
    out[path] = w
    if b is not None:
      out[bias_path] = b
  return traverse_util.unflatten_dict(out)


# ------------------------------------------------------------------------------------------------
# Official weights
# ------------------------------------------------------------------------------------------------

_RENAMES = (("block2.conv", "block2_conv"), ("block3.conv", "block3_conv"),
            ("CA.conv_du.", "CA_conv_du_"))


def convert_state_dict(state_dict) -> dict:
  """Official ``state_dict`` -> flax variables (conv OIHW -> ``{.../conv/kernel HWIO}``, BN stats).

  BatchNorm layers are recognised by their ``running_mean``; ``num_batches_tracked`` is skipped;
  Hyper-DSNet's fixed ``block1.*`` taps become ``block1/<name>`` HWIO parameters.

  Args:
    state_dict: ``{name: array}``.

  Returns:
    ``{"params": ...}`` plus ``"batch_stats"`` when the model has BatchNorm.
  """
  params, stats = {}, {}
  bn_prefixes = {k[:-len(".running_mean")] for k in state_dict if k.endswith(".running_mean")}

  def put(tree, path, value):
    for p in path[:-1]:
      tree = tree.setdefault(p, {})
    tree[path[-1]] = jnp.asarray(value)

  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked"):
      continue
    value = np.asarray(value)
    name = key
    for old, new in _RENAMES:
      name = name.replace(old, new)
    *mod, leaf = name.split(".")
    prefix = key.rsplit(".", 1)[0]
    if mod[0] == "block1":
      put(params, ["block1", mod[1]], np.transpose(value, (2, 3, 1, 0)))
    elif prefix in bn_prefixes:
      if leaf in ("running_mean", "running_var"):
        put(stats, mod + [{"running_mean": "mean", "running_var": "var"}[leaf]], value)
      else:
        put(params, mod + [{"weight": "scale", "bias": "bias"}[leaf]], value)
    else:
      # DIP's stride-2 ``down_k.conv1`` is a bare flax Conv; every other conv has a wrapper.
      bare = mod[0].startswith("down_") and mod[-1] == "conv1"
      path = mod + ([] if bare else ["conv"])
      put(params, path + ["kernel" if leaf == "weight" else "bias"],
          np.transpose(value, (2, 3, 1, 0)) if leaf == "weight" else value)
  return {"params": params, **({"batch_stats": stats} if stats else {})}


def _bands(sd, key, axis=0):
  return int(np.shape(sd[key])[axis])


def _shape(*dims):
  return jax.ShapeDtypeStruct(dims, jnp.float32)


def _spec(build, example, from_sd):
  return ModelSpec(build=build, example_inputs=example,
                   from_torch=lambda sd: (lambda m: (m, convert_state_dict(sd)))(from_sd(sd)))


MODELS = {
    "hyperpnn": _spec(lambda **kw: HyperPNN(**kw),
                      lambda m: {"pan": _shape(1, 8, 8, 1), "hs": _shape(1, 8, 8, m.nbands)},
                      lambda sd: HyperPNN(nbands=_bands(sd, "conv7.weight"))),
    "hspenet": _spec(lambda **kw: HSpeNet(**kw),
                     lambda m: {"pan": _shape(1, 8, 8, 1), "hs": _shape(1, 8, 8, m.nbands)},
                     lambda sd: HSpeNet(nbands=_bands(sd, "conv8.weight"))),
    "hyper_dsnet": _spec(
        lambda **kw: HyperDSNet(**kw),
        lambda m: {"pan": _shape(1, 12, 12, 1), "ms": _shape(1, 12, 12, m.nbands),
                   "ms_lr": _shape(1, 2, 2, m.nbands)},
        lambda sd: HyperDSNet(nbands=_bands(sd, "convlast.weight"))),
    "darn": _spec(lambda **kw: DARN(**kw),
                  lambda m: {"pan": _shape(1, 8, 8, 1), "prior": _shape(1, 8, 8, m.nbands)},
                  lambda sd: DARN(nbands=_bands(sd, "RRN.weight"))),
    "dip_hyperkite": _spec(
        lambda **kw: KiteNetwork(**kw),
        lambda m: {"pan": _shape(1, 8, 8, 1), "prior": _shape(1, 8, 8, m.nbands), "train": False},
        lambda sd: KiteNetwork(nbands=_bands(sd, "final_conv.weight"))),
    "hyperkite_pan_predictor": _spec(
        lambda **kw: PanPredictionNetwork(**kw),
        lambda m: {"cube": _shape(1, 8, 8, m.nbands)},
        lambda sd: PanPredictionNetwork(nbands=_bands(sd, "conv2.weight"))),
    "dip_prior": _spec(
        lambda **kw: PriorNet(**{"kind": "dip", **kw}),
        lambda m: {"z": _shape(1, 64, 64, 32), "train": False},
        lambda sd: PriorNet(nbands=_bands(sd, "final_conv.weight"), kind="dip")),
    "dhp_prior": _spec(
        lambda **kw: PriorNet(**{"kind": "dhp", **kw}),
        lambda m: {"z": _shape(1, 64, 64, m.nbands), "train": False},
        lambda sd: PriorNet(nbands=_bands(sd, "final_conv.weight"), kind="dhp")),
    "r_pnn": _spec(lambda **kw: RPNNToolbox(**kw), lambda m: {"x": _shape(1, 24, 24, 2)},
                   lambda sd: RPNNToolbox()),
    "pca_z_pnn": _spec(
        lambda **kw: PCAZPNN(**kw),
        lambda m: {"x": _shape(1, 16, 16, m.ncomponents + 1)},
        lambda sd: PCAZPNN(ncomponents=_bands(sd, "conv3.weight"))),
}
