"""INTL: self-supervised learning with IterNorm and trace loss (the model, views and training task).

Paper: X. Weng, Y. Ni, T. Song, J. Luo, R. M. Anwer, S. Khan, F. S. Khan, L. Huang, "Modulate Your
Spectrum in Self-Supervised Learning", ICLR 2024 (arXiv 2305.16789). Official code:
https://github.com/winci-ai/INTL (``methods/intl.py``, ``methods/intl_m.py``, ``src/model.py``,
``src/transform.py``, ``cifar/transform.py``, ``cifar/main.py``).

* :class:`Projector` / :class:`INTLNet`: ResNet backbone (:mod:`jspectral.nn.resnet`) + the
  3-layer projector ``[Linear(no bias) -> BN -> ReLU] x 2 -> Linear``; registered as
  ``intl_resnet18_cifar``, ``intl_resnet18_in100`` and ``intl_resnet50``.
* :class:`ViewAugment` and :func:`augment_view`: the official view pipeline as a keyed JAX
  transform (random resized crop with bicubic resampling, colour jitter in random order,
  grayscale, Gaussian blur, solarisation, horizontal flip, normalisation), applied on device inside
  the loss so that it is part of the jitted, data-parallel step. Full-resolution ImageNet takes a
  host crop stage instead: :func:`crop_views` random-resized-crops a decoded full-size image per
  view with PIL (as the official loader does), and :func:`augment_crops` applies the
  photometric rest on device.
* :class:`INTLTask`: the task for :func:`jspectral.train.fit` (INTL, or INTL_M with an EMA key
  network when ``ema_momentum`` is set), with online kNN evaluation and spectrum monitoring.

Deliberate differences: augmentations run in float32 on device (PIL works on uint8 on the host):
bicubic resampling is PIL's (Keys a = -0.5, kernel stretched when shrinking) on float pixels, the
Gaussian blur is an exact separable Gaussian (PIL approximates it with box filters) truncated at
radius 6; the colour jitter follows torchvision's float-tensor formulas. Every view of a batch is
encoded by a separate forward pass, so BatchNorm statistics are per view, as in the official code.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import resnet
from jspectral.nn.model_spec import ModelSpec

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------

def _torch_uniform(fan_in: int):
  """PyTorch's default ``Linear`` bias init ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class Projector(nn.Module):
  """``[Dense(hidden, no bias) -> BatchNorm -> ReLU] x (num_layers - 1) -> Dense(features)``.

  Parameters: ``F*P + 4P + P*P + P*D + D`` for 3 layers (F input, P hidden, D output width).

  Attributes:
    hidden: hidden width P.
    features: output width D.
    num_layers: Dense layers (>= 1).
  """

  hidden: int = 2048
  features: int = 2048
  num_layers: int = 3

  @nn.compact
  def __call__(self, h: jax.Array, train: bool = True) -> jax.Array:
    """Projects backbone features.

    Args:
      h: ``(N, F)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, features)``.

    Raises:
      ValueError: if ``num_layers < 1``.
    """
    if self.num_layers < 1:
      raise ValueError(f"num_layers: expected >= 1, got {self.num_layers}")
    for i in range(self.num_layers - 1):
      h = nn.Dense(self.hidden, use_bias=False, kernel_init=torch_linear_init, name=f"linear{i}")(h)
      h = nn.relu(resnet.batch_norm(train, f"bn{i}")(h))
    return nn.Dense(self.features, kernel_init=torch_linear_init,
                    bias_init=_torch_uniform(h.shape[-1]), name=f"linear{self.num_layers - 1}")(h)


class INTLNet(nn.Module):
  """Backbone + projector. ``__call__`` returns ``(embedding (N, D), features (N, F))``.

  Attributes:
    backbone: image encoder ``(N, H, W, 3) -> (N, F)``, called as ``backbone(x, train)``.
    projector: :class:`Projector`.
  """

  backbone: nn.Module
  projector: nn.Module

  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
    """Encodes and projects images.

    Args:
      x: images, ``(N, H, W, 3)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(embedding, features)``, ``(N, D)`` and ``(N, F)``.
    """
    h = self.backbone(x, train)
    return self.projector(h, train), h

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Backbone features only (what kNN and the linear probe evaluate).

    Args:
      x: images, ``(N, H, W, 3)``.
      train: BatchNorm batch statistics.

    Returns:
      ``(N, F)``.
    """
    return self.backbone(x, train)


def intl_resnet18_cifar(hidden: int = 2048, features: int = 2048, **backbone) -> INTLNet:
  """CIFAR-10/100 setting: CIFAR-stem ResNet-18, projector 512-2048-2048-2048.

  Args:
    hidden: projector hidden width.
    features: projector output width.
    **backbone: keyword arguments of the ResNet backbone.

  Returns:
    An :class:`INTLNet`.
  """
  return INTLNet(resnet.ResNet18Cifar(**backbone), Projector(hidden, features))


def intl_resnet18_in100(hidden: int = 4096, features: int = 8192, **backbone) -> INTLNet:
  """ImageNet-100 setting: ImageNet-stem ResNet-18, projector 512-4096-4096-8192.

  Args:
    hidden: projector hidden width.
    features: projector output width.
    **backbone: keyword arguments of the ResNet backbone.

  Returns:
    An :class:`INTLNet`.
  """
  return INTLNet(resnet.ResNet18(**backbone), Projector(hidden, features))


def intl_resnet50(hidden: int = 8192, features: int = 8192, **backbone) -> INTLNet:
  """ImageNet setting: ResNet-50 (zero-init residual), projector 2048-8192-8192-8192.

  Args:
    hidden: projector hidden width.
    features: projector output width.
    **backbone: keyword arguments of the ResNet backbone.

  Returns:
    An :class:`INTLNet`.
  """
  return INTLNet(resnet.ResNet50(**backbone), Projector(hidden, features))


def variables_from_torch(state_dict: Mapping[str, np.ndarray]) -> dict:
  """Flax variables of an official INTL ``state_dict``.

  Reads ``[module.]backbone.*`` and ``[module.]projection.*``; ``momentum_*`` entries of INTL_M
  are ignored.

  Args:
    state_dict: ``{name: array}``.

  Returns:
    ``{"params": {"backbone", "projector"}, "batch_stats": {"backbone", "projector"}}``.
  """
  sd = {k.removeprefix("module."): np.asarray(v) for k, v in state_dict.items()}
  variables = resnet.variables_from_torch(sd, prefix="backbone.")
  params, stats = {}, {}
  for key, value in sd.items():
    if not key.startswith("projection.") or key.endswith("num_batches_tracked"):
      continue
    _, index, leaf = key.split(".")
    layer, kind = divmod(int(index), 3)  # Sequential: Linear, BN, ReLU per layer
    if kind == 0:
      node = params.setdefault(f"linear{layer}", {})
      node["kernel" if leaf == "weight" else "bias"] = jnp.asarray(value.T if value.ndim == 2
                                                                   else value)
    elif leaf in ("running_mean", "running_var"):
      stats.setdefault(f"bn{layer}", {})[leaf.removeprefix("running_")] = jnp.asarray(value)
    else:
      params.setdefault(f"bn{layer}", {})[{"weight": "scale", "bias": "bias"}[leaf]] = (
          jnp.asarray(value))
  return {"params": {"backbone": variables["params"], "projector": params},
          "batch_stats": {"backbone": variables["batch_stats"], "projector": stats}}


def from_torch(state_dict: Mapping[str, np.ndarray]) -> tuple[INTLNet, dict]:
  """Builds the INTL network described by an official ``state_dict`` and converts its weights.

  Args:
    state_dict: ``{name: array}`` (``module.`` prefixes allowed).

  Returns:
    ``(INTLNet, variables)``.

  Raises:
    ValueError: if the official keys (e.g. ``backbone.conv1.weight``) are missing.
  """
  sd = {k.removeprefix("module."): np.asarray(v) for k, v in state_dict.items()}
  backbone = resnet.backbone_from_torch(sd, "backbone.")
  linears = sorted((int(k.split(".")[1]), v.shape) for k, v in sd.items()
                   if k.startswith("projection.") and k.endswith("weight") and v.ndim == 2)
  projector = Projector(hidden=linears[0][1][0], features=linears[-1][1][0],
                        num_layers=len(linears))
  return INTLNet(backbone, projector), variables_from_torch(sd)


def _example(module: INTLNet) -> dict:
  size = 32 if module.backbone.stem == "cifar" else 224
  return {"x": jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32), "train": False}


MODELS = {
    name: ModelSpec(build=build, example_inputs=_example, from_torch=from_torch)
    for name, build in (("intl_resnet18_cifar", intl_resnet18_cifar),
                        ("intl_resnet18_in100", intl_resnet18_in100),
                        ("intl_resnet50", intl_resnet50))
}


# ------------------------------------------------------------------------------------------------
# Views: keyed JAX augmentations
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ViewAugment:
  """One view's augmentation pipeline (official defaults of ``CifarTransform``).

  Attributes:
    crop_size: output side S.
    scale: random-resized-crop area range.
    ratio: random-resized-crop aspect-ratio range.
    brightness: colour-jitter brightness strength.
    contrast: colour-jitter contrast strength.
    saturation: colour-jitter saturation strength.
    hue: colour-jitter hue strength.
    jitter_prob: probability of colour jitter.
    gray_prob: probability of grayscale.
    blur_prob: probability of Gaussian blur.
    blur_sigma: blur sigma range.
    solarize_prob: probability of solarisation.
    flip_prob: probability of a horizontal flip.
    mean: per-channel normalisation mean.
    std: per-channel normalisation std.
    interpolation: ``"bicubic"`` (the pre-training views) or ``"bilinear"`` (torchvision's
      ``RandomResizedCrop`` default, the linear evaluation's); PIL-style, antialiased when
      shrinking.
  """

  crop_size: int = 32
  scale: tuple[float, float] = (0.08, 1.0)
  ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
  brightness: float = 0.4
  contrast: float = 0.4
  saturation: float = 0.2
  hue: float = 0.1
  jitter_prob: float = 0.8
  gray_prob: float = 0.2
  blur_prob: float = 0.0
  blur_sigma: tuple[float, float] = (0.1, 2.0)
  solarize_prob: float = 0.0
  flip_prob: float = 0.5
  mean: tuple[float, float, float] = CIFAR10_MEAN
  std: tuple[float, float, float] = CIFAR10_STD
  interpolation: str = "bicubic"

  def __post_init__(self):
    if self.interpolation not in RESAMPLING_KERNELS:
      raise ValueError(f"interpolation: expected one of {sorted(RESAMPLING_KERNELS)}, got "
                       f"{self.interpolation!r}")


def cifar_views(dataset: str = "cifar10", crop_size: int = 32) -> tuple[ViewAugment, ...]:
  """The 2 official CIFAR views: no blur; solarisation probability 0.0 and 0.2.

  Args:
    dataset: ``"cifar10"`` or ``"cifar100"`` (normalisation statistics).
    crop_size: output side.

  Returns:
    Two :class:`ViewAugment`.

  Raises:
    ValueError: if ``dataset`` is unknown.
  """
  if dataset not in ("cifar10", "cifar100"):
    raise ValueError(f"dataset: expected 'cifar10' or 'cifar100', got {dataset!r}")
  mean, std = (CIFAR10_MEAN, CIFAR10_STD) if dataset == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
  return tuple(ViewAugment(crop_size=crop_size, solarize_prob=p, mean=mean, std=std)
               for p in (0.0, 0.2))


def imagenet_views(crop_size: int = 224) -> tuple[ViewAugment, ...]:
  """The 2 official ImageNet / ImageNet-100 views (BYOL asymmetric blur and solarisation).

  Args:
    crop_size: output side.

  Returns:
    Two :class:`ViewAugment`.
  """
  return tuple(ViewAugment(crop_size=crop_size, blur_prob=b, solarize_prob=s, mean=IMAGENET_MEAN,
                           std=IMAGENET_STD) for b, s in ((1.0, 0.0), (0.1, 0.2)))


def multicrop_views(crop_size: int = 224) -> tuple[ViewAugment, ...]:
  """The 6 official multi-crop views (2x224, 192, 160, 128, 96); view 0 feeds the EMA key.

  Args:
    crop_size: side of the two large crops; the others keep their official ratio to 224.

  Returns:
    Six :class:`ViewAugment`.
  """
  crops = ((224, 0.2, 1.0), (224, 0.2, 1.0), (192, 0.171, 0.857), (160, 0.143, 0.714),
           (128, 0.114, 0.571), (96, 0.086, 0.429))
  return tuple(ViewAugment(crop_size=round(c * crop_size / 224), scale=(lo, hi), blur_prob=0.5,
                           solarize_prob=0.1, mean=IMAGENET_MEAN, std=IMAGENET_STD)
               for c, lo, hi in crops)


NUM_UNIFORMS = 36  # uniforms consumed by one augmented view of one image


def _crop_box(u: jax.Array, height: int, width: int, scale, ratio, attempts: int = 10, xp=jnp):
  """torchvision ``RandomResizedCrop.get_params`` from 22 uniforms: (top, left, h, w).

  The first of 10 (area, log-ratio) draws that fits wins; otherwise the central crop of the
  clamped aspect ratio. ``xp``: ``jax.numpy`` (traced, on device) or ``numpy`` (host crops).
  """
  area = height * width * (scale[0] + (scale[1] - scale[0]) * u[:attempts])
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  aspect = xp.exp(log_lo + (log_hi - log_lo) * u[attempts:2 * attempts])
  w = xp.round(xp.sqrt(area * aspect))
  h = xp.round(xp.sqrt(area / aspect))
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = xp.argmax(ok)
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fallback = (round(width / ratio[0]), width)
  elif in_ratio > ratio[1]:
    fallback = (height, round(height * ratio[1]))
  else:
    fallback = (height, width)
  found = ok.any()
  h = xp.where(found, h[first], fallback[0])
  w = xp.where(found, w[first], fallback[1])
  top = xp.where(found, xp.floor(u[2 * attempts] * (height - h + 1)), (height - h) // 2)
  left = xp.where(found, xp.floor(u[2 * attempts + 1] * (width - w + 1)), (width - w) // 2)
  return top, left, h, w


def crop_view(img, u: np.ndarray, cfg: ViewAugment) -> np.ndarray:
  """Host-side ``RandomResizedCrop`` of a full-resolution image (the official PIL operation).

  Args:
    img: ``PIL.Image`` (RGB).
    u: the view's first 22 uniforms (:data:`NUM_UNIFORMS` layout).
    cfg: the view's :class:`ViewAugment` (``crop_size``, ``scale``, ``ratio``, ``interpolation``).

  Returns:
    ``(S, S, 3)`` uint8, ``S = cfg.crop_size``.
  """
  from PIL import Image

  width, height = img.size
  top, left, h, w = (int(v) for v in _crop_box(np.asarray(u[:22], np.float64), height, width,
                                                cfg.scale, cfg.ratio, xp=np))
  resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[cfg.interpolation]
  size = (cfg.crop_size, cfg.crop_size)
  return np.asarray(img.resize(size, resample, box=(left, top, left + w, top + h)), np.uint8)


def crop_views(img, rng: np.random.Generator, views: Sequence[ViewAugment]) -> dict:
  """The host-side crop stage of every view: ``{"crop0": (S_0, S_0, 3) uint8, ...}``.

  The photometric rest of each view runs on device (:func:`augment_crops`).

  Args:
    img: ``PIL.Image`` (RGB), e.g. :func:`jspectral.data.builders.imagenet.decode` of a record.
    rng: NumPy generator.
    views: V :class:`ViewAugment`.

  Returns:
    V crops keyed ``crop<v>``.
  """
  return {f"crop{v}": crop_view(img, rng.random(22), cfg) for v, cfg in enumerate(views)}


def _cubic(x: jax.Array, a: float = -0.5) -> jax.Array:
  """Keys' cubic convolution kernel (a = -0.5, as PIL's bicubic)."""
  x = jnp.abs(x)
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return jnp.where(x <= 1, near, jnp.where(x < 2, far, 0.0))


def _triangle(x: jax.Array) -> jax.Array:
  """The bilinear (tent) kernel, as PIL's bilinear filter."""
  return jnp.maximum(1.0 - jnp.abs(x), 0.0)


RESAMPLING_KERNELS = {"bicubic": _cubic, "bilinear": _triangle}


def _resample_matrix(start, length, in_size: int, out_size: int,
                     interpolation: str = "bicubic") -> jax.Array:
  """``(out_size, in_size)`` PIL-style weights resampling ``[start, start + length)``.

  The kernel (``RESAMPLING_KERNELS[interpolation]``) is stretched by ``length / out_size`` when
  shrinking (antialiasing) and the weights of each output pixel are normalised over the input
  pixels inside the image, as PIL does.
  """
  step = length / out_size
  stretch = jnp.maximum(step, 1.0)
  centre = start + (jnp.arange(out_size) + 0.5) * step
  kernel = RESAMPLING_KERNELS[interpolation]
  w = kernel((jnp.arange(in_size) + 0.5 - centre[:, None]) / stretch)
  return w / jnp.sum(w, axis=1, keepdims=True)


def _gray(img: jax.Array) -> jax.Array:
  return (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2])[..., None]


def _rgb_to_hsv(img):
  r, g, b = img[..., 0], img[..., 1], img[..., 2]
  maxc, minc = jnp.max(img, axis=-1), jnp.min(img, axis=-1)
  delta = maxc - minc
  safe = jnp.where(delta > 0, delta, 1.0)
  s = jnp.where(maxc > 0, delta / jnp.where(maxc > 0, maxc, 1.0), 0.0)
  h = jnp.where(maxc == r, (g - b) / safe,
                jnp.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
  return jnp.where(delta > 0, jnp.mod(h / 6.0, 1.0), 0.0), s, maxc


def _hsv_to_rgb(h, s, v):
  """Branch-free HSV -> RGB: channel n = v - v s clip(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6."""
  k = jnp.mod(jnp.asarray([5.0, 3.0, 1.0]) + 6.0 * h[..., None], 6.0)
  return v[..., None] * (1.0 - s[..., None] * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0))


def _color_jitter(u: jax.Array, img: jax.Array, cfg: ViewAugment) -> jax.Array:
  """torchvision ``ColorJitter`` from 8 uniforms: brightness, contrast, saturation, hue factors
  drawn uniformly, applied in a uniformly random order."""

  def factor(v, strength):
    return max(0.0, 1 - strength) + (1 + strength - max(0.0, 1 - strength)) * v

  b, c, s = factor(u[0], cfg.brightness), factor(u[1], cfg.contrast), factor(u[2], cfg.saturation)
  hue = cfg.hue * (2 * u[3] - 1)

  def hue_shift(x):
    h, sat, v = _rgb_to_hsv(x)
    return _hsv_to_rgb(jnp.mod(h + hue, 1.0), sat, v)

  ops = [lambda x: jnp.clip(x * b, 0, 1),
         lambda x: jnp.clip((x - jnp.mean(_gray(x))) * c + jnp.mean(_gray(x)), 0, 1),
         lambda x: jnp.clip((x - _gray(x)) * s + _gray(x), 0, 1),
         hue_shift]
  order = jnp.argsort(u[4:8])  # a uniformly random permutation
  for position in range(4):
    img = sum(jnp.where(order[position] == i, op(img), 0.0) for i, op in enumerate(ops))
  return img


def _gaussian_blur(img, sigma, radius: int = 6):
  offsets = jnp.arange(-radius, radius + 1, dtype=img.dtype)
  weights = jnp.exp(-0.5 * (offsets / sigma) ** 2)
  weights = weights / jnp.sum(weights)
  for axis in (0, 1):
    pad = [(0, 0)] * 3
    pad[axis] = (radius, radius)
    padded = jnp.pad(img, pad, mode="edge")
    size = img.shape[axis]
    img = sum(weights[i] * jax.lax.slice_in_dim(padded, i, i + size, axis=axis)
              for i in range(2 * radius + 1))
  return img


def _maybe(u: jax.Array, prob: float, fn, x: jax.Array) -> jax.Array:
  """``fn(x)`` when ``u < prob`` (resolved at trace time when prob is 0 or 1)."""
  if prob <= 0:
    return x
  if prob >= 1:
    return fn(x)
  return jnp.where(u < prob, fn(x), x)


def augment_image(u: jax.Array, img: jax.Array, cfg: ViewAugment, crop: bool = True) -> jax.Array:
  """One augmented, normalised view of an image in [0, 1].

  ``u``: ``NUM_UNIFORMS`` uniforms in [0, 1) that drive every random choice (one threefry draw per
  batch instead of one per decision keeps compile time low).

  Args:
    u: ``(NUM_UNIFORMS,)`` uniforms.
    img: ``(H, W, 3)`` in [0, 1]; with ``crop=False`` the view's host crop ``(S, S, 3)``.
    cfg: the view's :class:`ViewAugment`.
    crop: random-resized-crop here (``False``: :func:`crop_view` did it on the host).

  Returns:
    ``(S, S, 3)`` with ``S = cfg.crop_size``.
  """
  out = img
  if crop:
    height, width = img.shape[:2]
    top, left, h, w = _crop_box(u[:22], height, width, cfg.scale, cfg.ratio)
    size = cfg.crop_size
    rows = _resample_matrix(top, h, height, size, cfg.interpolation)
    cols = _resample_matrix(left, w, width, size, cfg.interpolation)
    out = jnp.clip(jnp.einsum("ih,hwc,jw->ijc", rows, img, cols), 0.0, 1.0)
  out = _maybe(u[22], cfg.jitter_prob, lambda x: _color_jitter(u[23:31], x, cfg), out)
  out = _maybe(u[31], cfg.gray_prob, lambda x: jnp.broadcast_to(_gray(x), x.shape), out)
  sigma = cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * u[32]
  out = _maybe(u[33], cfg.blur_prob, lambda x: _gaussian_blur(x, sigma), out)
  out = _maybe(u[34], cfg.solarize_prob,  # PIL threshold 128
               lambda x: jnp.where(x >= 128.0 / 255.0, 1.0 - x, x), out)
  out = _maybe(u[35], cfg.flip_prob, lambda x: x[:, ::-1], out)
  return (out - jnp.asarray(cfg.mean)) / jnp.asarray(cfg.std)


def augment_views(key: jax.Array, images: jax.Array,
                  views: Sequence[ViewAugment]) -> list[jax.Array]:
  """Independent augmentations of ``images`` for each view.

  Args:
    key: PRNG key.
    images: RGB images ``(N, H, W, 3)`` in [0, 1].
    views: V :class:`ViewAugment`.

  Returns:
    V arrays ``(N, S, S, 3)`` (S per view).

  Raises:
    ValueError: if ``images`` is not ``(N, H, W, 3)``.
  """
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"images: expected RGB images (N, H, W, 3) in [0, 1], got {images.shape}")
  u = jax.random.uniform(key, (len(views), images.shape[0], NUM_UNIFORMS))
  images = images.astype(jnp.float32)
  return [jax.vmap(functools.partial(augment_image, cfg=cfg))(u_v, images)
          for u_v, cfg in zip(u, views, strict=True)]


def augment_crops(key: jax.Array, crops: Sequence[jax.Array],
                  views: Sequence[ViewAugment]) -> list[jax.Array]:
  """The on-device (photometric) rest of each view after the host crop stage.

  Args:
    key: PRNG key.
    crops: V batches ``(N, S_v, S_v, 3)``, uint8 or float in [0, 1] (:func:`crop_views`).
    views: V :class:`ViewAugment`.

  Returns:
    V arrays ``(N, S_v, S_v, 3)``, augmented and normalised.

  Raises:
    ValueError: if the crops do not match the views in number or size.
  """
  if len(crops) != len(views):
    raise ValueError(f"crops: expected one batch per view ({len(views)}), got {len(crops)}")
  u = jax.random.uniform(key, (len(views), crops[0].shape[0], NUM_UNIFORMS))
  out = []
  for u_v, x, cfg in zip(u, crops, views, strict=True):
    if x.shape[1:] != (cfg.crop_size, cfg.crop_size, 3):
      raise ValueError(f"crops: expected (N, {cfg.crop_size}, {cfg.crop_size}, 3), got "
                       f"{x.shape}")
    x = x.astype(jnp.float32) / (255.0 if x.dtype == jnp.uint8 else 1.0)
    out.append(jax.vmap(functools.partial(augment_image, cfg=cfg, crop=False))(u_v, x))
  return out


def normalize(images: jax.Array, mean, std) -> jax.Array:
  """``(images - mean) / std`` per channel (the un-augmented evaluation transform).

  Args:
    images: ``(..., 3)``.
    mean: per-channel mean, ``(3,)``.
    std: per-channel std, ``(3,)``.

  Returns:
    float32, same shape.
  """
  return (jnp.asarray(images, jnp.float32) - jnp.asarray(mean)) / jnp.asarray(std)


# ------------------------------------------------------------------------------------------------
# Task
# ------------------------------------------------------------------------------------------------

def ema_momentum_at(step: jax.Array, total_steps: int, base: float) -> jax.Array:
  """Official cosine momentum ``1 - (1 - m0)(1 + cos(pi t / T)) / 2`` (m0 at t = 0, 1 at t = T).

  Args:
    step: current step ``t``.
    total_steps: ``T``.
    base: ``m0``.

  Returns:
    Scalar momentum.
  """
  return 1.0 - (1.0 - base) * (1.0 + jnp.cos(jnp.pi * step / max(total_steps, 1))) / 2.0


def official_schedule(base_lr: float, warmup_steps: int, total_steps: int):
  """The INTL trainers' per-step learning rate (``adjust_learning_rate``).

  Warm-up ``base_lr (s + 1) / W`` for ``s < W``; then, with ``s' = s - W`` and ``S' = total - W``,
  ``q = (1 + cos(pi (s' + 1) / S')) / 2`` and ``lr = base_lr q + 1e-3 base_lr (1 - q)``.

  Args:
    base_lr: peak learning rate.
    warmup_steps: ``W``.
    total_steps: total steps.

  Returns:
    A schedule ``step -> learning rate``.

  Raises:
    ValueError: unless ``1 <= warmup_steps < total_steps``.
  """
  if warmup_steps < 1 or total_steps <= warmup_steps:
    raise ValueError(f"warmup_steps/total_steps: expected 1 <= warmup < total, got "
                     f"{warmup_steps}/{total_steps}")

  def schedule(step):
    warm = base_lr * (step + 1) / warmup_steps
    q = 0.5 * (1 + jnp.cos(jnp.pi * (step - warmup_steps + 1) / (total_steps - warmup_steps)))
    return jnp.where(step < warmup_steps, warm, base_lr * q + 1e-3 * base_lr * (1 - q))

  return schedule
