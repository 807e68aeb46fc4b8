"""Tasks for :func:`jspectral.train.fit` of the self-supervised family: INTL pre-training,
SpectralEarth MoCo-v2 / DINO / MAE pre-training and SpectralEarth downstream segmentation,
multi-label classification and Hyperview regression.

INTL: Weng et al., "Modulate Your Spectrum in Self-Supervised Learning", ICLR 2024,
github.com/winci-ai/INTL. SpectralEarth: Braham et al., arXiv 2408.08447,
github.com/AABNassim/spectral_earth (``src/models/*_module.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.data.builders.imagenet import DecodedImages, decode
from jspectral.metrics import regression, segmentation
from jspectral.nn.spec_vit import SpecViT
from jspectral.ssl import protocol
from jspectral.ssl import spectral_transform as st
from jspectral.ssl.intl import (
  CIFAR10_MEAN,
  CIFAR10_STD,
  INTLNet,
  ViewAugment,
  augment_crops,
  augment_views,
  cifar_views,
  crop_views,
  ema_momentum_at,
  normalize,
  official_schedule,
)
from jspectral.ssl.spectral_earth import (
  DINOProjectionHead,
  MAENet,
  MoCoProjectionHead,
  SSLNet,
  cosine_momentum,
  dino_learning_rate,
  dino_loss,
  dino_teacher_temperature,
  enqueue,
  l2_normalise,
  mae_loss,
  multilabel_loss,
  ntxent_loss,
  random_token_mask,
  segmentation_loss,
  sincos_pos_embed_2d,
  ssl_view,
)

# --------------------------------------------------------------------------------------------------
# INTL


class _Images:
  """Random-access ``{"image": (H, W, 3)}`` examples over an image array (for grain)."""

  def __init__(self, images: np.ndarray):
    self.images = images

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, i):
    image = np.asarray(self.images[i])
    scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
    return {"image": image.astype(np.float32) * np.float32(scale)}


def _is_array(images) -> bool:
  return isinstance(images, (np.ndarray, jax.Array))


def _encoded_crops(example, rng, views):
  """The host crop stage of an encoded example (``{"image": bytes, ...}``): its view crops
  (:func:`~jspectral.ssl.intl.crop_views`) and its label when it has one."""
  out = crop_views(decode(example["image"]), rng, views)
  if "label" in example:
    out["label"] = np.int32(example["label"])
  return out


@dataclasses.dataclass
class EvalData:
  """Labelled images for online kNN / linear evaluation of the backbone.

  Attributes:
    x_train: training images ``(N, H, W, 3)`` in [0, 1] (or uint8), or a random-access sequence
      whose slices are such arrays (e.g. :class:`~jspectral.data.builders.imagenet.DecodedImages`
      of full-resolution records, decoded a batch at a time).
    y_train: integer training labels ``(N,)``.
    x_test: test images ``(M, H, W, 3)`` in [0, 1] (same forms as ``x_train``).
    y_test: integer test labels ``(M,)``.
    mean: per-channel normalisation mean (the official CIFAR-100 eval uses the CIFAR-10
      statistics).
    std: per-channel normalisation std (same convention).
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  mean: tuple[float, float, float] = CIFAR10_MEAN
  std: tuple[float, float, float] = CIFAR10_STD


@dataclasses.dataclass
class INTLTask:
  """INTL pre-training for :func:`jspectral.train.fit`.

  Attributes:
    model: an :class:`INTLNet` (e.g. ``intl_resnet18_cifar()``).
    images: training images ``(N, H, W, 3)``, float in [0, 1] or uint8 (labels are not used),
      augmented wholly on device; or a random-access sequence of encoded examples
      ``{"image": bytes}`` (a prepared ImageNet split at full resolution), decoded and
      random-resized-cropped per view on the host (:meth:`augment`, grain's per-example stage,
      so memory stays bounded) and augmented photometrically on device.
    views: one :class:`ViewAugment` per view (>= 2).
    beta: trace-loss weight; ``None`` = the official ``trade_off`` of the global batch.
    iterations, whiten: IterNorm settings (official: 4, "samples").
    ema_momentum: base momentum m0 of the INTL_M key network; ``None`` = plain INTL.
    transform: ``"iternorm"`` (INTL: IterNorm + trace loss) or ``"power"`` (the power-law ST of
      exponent ``power`` with the normalised MSE only; 0.5 = hard whitening).
    total_steps: length of the run (the EMA momentum schedule needs it).
    eval_data: optional :class:`EvalData` for kNN (k = ``knn_k``) and the linear probe.
    linear_epochs: epochs of the linear probe run at every evaluation (0 = none).
    eval_batch: batch size of the feature extraction.

  ``evaluate`` appends ``(embedding eigenvalues, backbone-feature eigenvalues)`` of the test images
  to ``spectra`` (host-side record for the eigen-spectrum figure). A batch that carries ``views``
  ``(N, V, S, S, 3)`` (augmented and normalised elsewhere, e.g. fed identically to the official
  code) is used as it is, without the on-device augmentation.
  """

  model: INTLNet
  images: np.ndarray
  views: Sequence[ViewAugment] = dataclasses.field(default_factory=cifar_views)
  beta: float | None = None
  iterations: int = 4
  whiten: str = "samples"
  ema_momentum: float | None = None
  transform: str = "iternorm"
  power: float = 0.5
  total_steps: int = 1
  eval_data: EvalData | None = None
  knn_k: int = 5
  linear_epochs: int = 0
  eval_batch: int = 256
  seed: int = 0
  spectra: list = dataclasses.field(default_factory=list)

  def __post_init__(self):
    if len(self.views) < 2:
      raise ValueError(f"views: expected at least 2 views, got {len(self.views)}")
    if self.transform not in ("iternorm", "power"):
      raise ValueError(f"transform: expected 'iternorm' or 'power', got {self.transform!r}")
    if _is_array(self.images):
      if np.ndim(self.images) != 4 or np.shape(self.images)[-1] != 3:
        raise ValueError(f"images: expected (N, H, W, 3), got shape {np.shape(self.images)}")
    elif not hasattr(self.images, "__getitem__") or not hasattr(self.images, "__len__"):
      raise ValueError("images: expected an (N, H, W, 3) array or a random-access sequence of "
                       f"{{'image': bytes}} examples, got {type(self.images).__name__}")

  def train_source(self):
    return _Images(self.images) if _is_array(self.images) else self.images

  def augment(self, example, rng):
    """Host stage: the view crops of an encoded example; array examples pass unchanged."""
    if isinstance(example.get("image"), bytes):
      return _encoded_crops({"image": example["image"]}, rng, self.views)
    return example

  def schedule(self, config):
    """The official warm-up + cosine schedule (``config.schedule.warmup_steps``, at least 1)."""
    return official_schedule(config.optimizer.learning_rate,
                             max(config.schedule.warmup_steps, 1), config.total_steps)

  def init(self, rng, batch):
    size = self.views[0].crop_size
    # Weights are drawn from an RBG key seeded by ``rng``: on CPU, XLA compiles a ResNet init
    # with (partitionable) threefry keys several times slower.
    init_key = jax.random.wrap_key_data(jax.random.bits(rng, (4,), jnp.uint32), impl="rbg")
    variables = self.model.init(init_key, jnp.zeros((2, size, size, 3), jnp.float32), train=True)
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    if self.ema_momentum is not None:
      state["ema"] = {"params": params, "batch_stats": variables["batch_stats"]}
      state["ema_step"] = jnp.zeros((), jnp.int32)
    return params, state

  def _encode(self, params, stats, x):
    (z, _), updates = self.model.apply({"params": params, "batch_stats": stats}, x, train=True,
                                       mutable=["batch_stats"])
    return z, updates["batch_stats"]

  def loss(self, params, state, batch, rng):
    if "views" in batch:   # already augmented and normalised: (N, V, S, S, 3)
      views = [batch["views"][:, v] for v in range(batch["views"].shape[1])]
    elif "crop0" in batch:  # host crops of full-resolution images
      views = augment_crops(rng, [batch[f"crop{v}"] for v in range(len(self.views))], self.views)
    else:
      views = augment_views(rng, batch["image"], self.views)
    stats = state["batch_stats"]
    new_state = dict(state)
    if self.ema_momentum is None:
      zs = []
      for x in views:
        z, stats = self._encode(params, stats, x)
        zs.append(z)
      if self.transform == "iternorm":
        loss, aux = st.intl_loss(zs, self.beta, self.iterations, self.whiten)
      else:
        loss, aux = st.power_st_loss(zs, self.power, self.whiten)
    else:
      m = ema_momentum_at(state["ema_step"], self.total_steps, self.ema_momentum)
      ema_params = jax.tree.map(lambda k, q: m * k + (1 - m) * jax.lax.stop_gradient(q),
                                state["ema"]["params"], params)
      z_key, ema_stats = self._encode(ema_params, state["ema"]["batch_stats"], views[0])
      zs = []
      for x in views[1:]:
        z, stats = self._encode(params, stats, x)
        zs.append(z)
      loss, aux = st.intl_momentum_loss(z_key, zs, self.beta, self.iterations, self.whiten)
      new_state["ema"] = {"params": ema_params, "batch_stats": ema_stats}
      new_state["ema_step"] = state["ema_step"] + 1
    new_state["batch_stats"] = stats
    return loss, {"state": new_state, "trace_loss": jnp.mean(aux["trace_losses"]),
                  "norm_mse": jnp.mean(aux["norm_mse"])}

  @functools.cached_property
  def _embed(self):
    def embed(params, stats, x):
      return self.model.apply({"params": params, "batch_stats": stats}, x, train=False)
    return jax.jit(embed)

  def embed(self, params, state, images, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode ``(embeddings, backbone features)`` of un-augmented images, in batches."""
    scale = 1.0 / 255.0 if np.asarray(images[:1]).dtype == np.uint8 else 1.0
    outs = [self._embed(params, state["batch_stats"],
                        normalize(np.asarray(images[i:i + self.eval_batch]) * scale, mean, std))
            for i in range(0, len(images), self.eval_batch)]
    return (np.concatenate([np.asarray(z) for z, _ in outs]),
            np.concatenate([np.asarray(h) for _, h in outs]))

  def evaluate(self, params, state) -> dict[str, float]:
    if self.eval_data is None:
      return {}
    data = self.eval_data
    _, h_train = self.embed(params, state, data.x_train, data.mean, data.std)
    z_test, h_test = self.embed(params, state, data.x_test, data.mean, data.std)
    spec_z = np.asarray(st.covariance_spectrum(jnp.asarray(z_test), "features"))
    spec_h = np.asarray(st.covariance_spectrum(jnp.asarray(h_test), "features"))
    self.spectra.append((spec_z, spec_h))
    out = {"knn_top1": protocol.knn_accuracy(h_train, data.y_train, h_test, data.y_test,
                                               k=self.knn_k),
           "embedding_effective_rank": float(st.effective_rank(spec_z)),
           "feature_effective_rank": float(st.effective_rank(spec_h))}
    if self.linear_epochs:
      lin = protocol.linear_probe(h_train, data.y_train, h_test, data.y_test,
                                    key=jax.random.key(self.seed), epochs=self.linear_epochs)
      out.update(linear_top1=lin["top1"], linear_top5=lin["top5"])
    return out



class _Labelled(_Images):
  """Random-access ``{"image", "label"}`` examples (for grain)."""

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    super().__init__(images)
    self.labels = np.asarray(labels, np.int32)

  def __getitem__(self, i):
    return {**super().__getitem__(i), "label": self.labels[i]}


@dataclasses.dataclass
class LinearEvalTask:
  """The official ImageNet linear evaluation (winci-ai/INTL ``evaluate.py``) for ``fit``.

  A frozen backbone in eval mode (BatchNorm running statistics) under a linear classifier (weights
  ``N(0, 0.01)``, bias 0) trained with cross-entropy on ``RandomResizedCrop(crop)`` (scale
  0.08-1, bilinear) + horizontal-flip views; scored on the centre ``crop`` of the images resized to
  a ``resize`` shorter side (top-1 and top-5, fractions). The optimizer (SGD momentum 0.9, no
  weight decay, ``lr_classifier * batch / 256``, x0.1 at epochs 60 and 80) is the fit config's.

  Full-resolution ImageNet streams: ``x_train`` is then a random-access sequence of encoded
  examples ``{"image": bytes, "label"}`` (cropped on the host per example, ``y_train`` may be
  ``None``) and ``x_val`` a :class:`~jspectral.data.builders.imagenet.DecodedImages` (already
  resized and centre-cropped on the host).

  Attributes:
    backbone: the frozen network: ``backbone.apply(variables, x, train=False)`` is ``(N, F)``.
    variables: the backbone's ``{"params", "batch_stats"}`` (kept in the model state, never
      trained).
    x_train: training images ``(N, H, W, 3)``, uint8 or float in [0, 1], or encoded examples.
    y_train: integer labels ``(N,)`` (``None`` for encoded examples: their own labels).
    x_val: validation images ``(M, H', W', 3)`` or :class:`DecodedImages`.
    y_val: integer labels ``(M,)``.
    num_classes: ``C``.
    crop: the training and validation crop side (official 224).
    resize: the validation shorter side before the centre crop (official 256).
    mean: normalisation mean.
    std: normalisation std.
    eval_batch: validation batch size.
  """

  backbone: nn.Module
  variables: Any
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  num_classes: int
  crop: int = 224
  resize: int = 256
  mean: tuple[float, float, float] = CIFAR10_MEAN
  std: tuple[float, float, float] = CIFAR10_STD
  eval_batch: int = 256

  def __post_init__(self):
    for name in ("x_train", "x_val"):
      images = getattr(self, name)
      if _is_array(images) and (np.ndim(images) != 4 or np.shape(images)[-1] != 3):
        raise ValueError(f"{name}: expected (N, H, W, 3), got {np.shape(images)}")
    if not _is_array(self.x_val) and not isinstance(self.x_val, DecodedImages):
      raise ValueError(f"x_val: expected (N, H, W, 3) or DecodedImages, got "
                       f"{type(self.x_val).__name__}")
    if (_is_array(self.x_train) and len(self.x_train) != len(self.y_train)) or \
        len(self.x_val) != len(self.y_val):
      raise ValueError("y_train, y_val: expected one label per image")
    self.view = ViewAugment(crop_size=self.crop, jitter_prob=0.0, gray_prob=0.0, mean=self.mean,
                            std=self.std, interpolation="bilinear")

  def train_source(self):
    return _Labelled(self.x_train, self.y_train) if _is_array(self.x_train) else self.x_train

  def augment(self, example, rng):
    """Host stage: the bilinear random-resized crop of an encoded example."""
    if isinstance(example.get("image"), bytes):
      return _encoded_crops(example, rng, [self.view])
    return example

  def _train_view(self, batch, rng):
    if "crop0" in batch:
      return augment_crops(rng, [batch["crop0"]], [self.view])[0]
    return augment_views(rng, batch["image"], [self.view])[0]

  def init(self, rng, batch):
    features = self.backbone.num_features
    head = {"kernel": 0.01 * jax.random.normal(rng, (features, self.num_classes)),
            "bias": jnp.zeros((self.num_classes,))}
    return head, {"backbone": self.variables}

  def _logits(self, params, state, x):
    features = self.backbone.apply(state["backbone"], x, train=False)
    return jax.lax.stop_gradient(features) @ params["kernel"] + params["bias"]

  def loss(self, params, state, batch, rng):
    logp = jax.nn.log_softmax(self._logits(params, state, self._train_view(batch, rng)))
    nll = -jnp.take_along_axis(logp, batch["label"][:, None].astype(jnp.int32), axis=1)
    return jnp.mean(nll), {"state": state}

  @functools.cached_property
  def _val_logits(self):
    def logits(params, state, images):
      x = images.astype(jnp.float32) / (255.0 if images.dtype == jnp.uint8 else 1.0)
      height, width = x.shape[1:3]
      if not isinstance(self.x_val, DecodedImages) and min(height, width) != self.resize:
        scale = self.resize / min(height, width)
        x = jax.image.resize(x, (x.shape[0], round(height * scale), round(width * scale), 3),
                             "bilinear", antialias=True)
        height, width = x.shape[1:3]
      top, left = (height - self.crop) // 2, (width - self.crop) // 2
      x = x[:, top:top + self.crop, left:left + self.crop]
      return self._logits(params, state, normalize(x, self.mean, self.std))
    return jax.jit(logits)

  def evaluate(self, params, state) -> dict[str, float]:
    logits = np.concatenate([np.asarray(self._val_logits(params, state,
                                                         self.x_val[i:i + self.eval_batch]))
                             for i in range(0, len(self.x_val), self.eval_batch)])
    hits = np.argsort(-logits, axis=1)[:, :5] == np.asarray(self.y_val)[:, None]
    return {"top1": float(hits[:, 0].mean()), "top5": float(hits.any(1).mean())}


@jax.custom_vjp
def _scale_gradient(x, scale):
  return x


def _scale_gradient_fwd(x, scale):
  return x, scale


def _scale_gradient_bwd(scale, g):
  return jax.tree.map(lambda t: scale * t, g), None


_scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


@dataclasses.dataclass
class FineTuneTask(LinearEvalTask):
  """The official semi-supervised fine-tuning (winci-ai/INTL ``evaluate.py --weights finetune``).

  The whole network trains: the backbone in train mode (BatchNorm batch statistics, running
  statistics updated) under the ``N(0, 0.01)`` head, on the 1 % / 10 % subsets (the ImageNet
  builder's ``percent1`` / ``percent10``), with the views and validation of
  :class:`LinearEvalTask`. The official SGD has two parameter groups (head ``lr_classifier``,
  backbone ``lr_backbone``, both times ``batch / 256``, momentum 0.9, no weight decay); here the
  fit config's optimizer carries the head's rate and the backbone's gradient is scaled by
  ``lr_backbone / lr_classifier``, which is the same update for momentum SGD without weight decay.

  Attributes:
    (those of :class:`LinearEvalTask`; ``variables`` is the starting backbone)
    backbone_lr_ratio: ``lr_backbone / lr_classifier`` (official 0.004 / 0.2 = 0.02).
  """

  backbone_lr_ratio: float = 0.02

  def __post_init__(self):
    super().__post_init__()
    if self.backbone_lr_ratio < 0:
      raise ValueError(f"backbone_lr_ratio: expected >= 0, got {self.backbone_lr_ratio}")

  def init(self, rng, batch):
    head, _ = super().init(rng, batch)
    return ({**head, "backbone": self.variables["params"]},
            {"batch_stats": self.variables["batch_stats"]})

  def _logits(self, params, state, x):
    features = self.backbone.apply({"params": params["backbone"],
                                    "batch_stats": state["batch_stats"]}, x, train=False)
    return features @ params["kernel"] + params["bias"]

  def loss(self, params, state, batch, rng):
    backbone = _scale_gradient(params["backbone"], self.backbone_lr_ratio)
    features, updates = self.backbone.apply(
        {"params": backbone, "batch_stats": state["batch_stats"]}, self._train_view(batch, rng),
        train=True, mutable=["batch_stats"])
    logp = jax.nn.log_softmax(features @ params["kernel"] + params["bias"])
    nll = -jnp.take_along_axis(logp, batch["label"][:, None].astype(jnp.int32), axis=1)
    return jnp.mean(nll), {"state": {"batch_stats": updates["batch_stats"]}}


# --------------------------------------------------------------------------------------------------
# SpectralEarth pre-training


def _apply(net: nn.Module, params, stats, x, **kw):
  variables = {"params": params, "batch_stats": stats} if stats else {"params": params}
  if not stats:
    return net.apply(variables, x, **kw), stats
  out, updated = net.apply(variables, x, mutable=["batch_stats"], **kw)
  return out, updated["batch_stats"]


def _feature_std(features: jax.Array) -> jax.Array:
  """Collapse monitor: mean per-dimension std of L2-normalised features (official logging)."""
  return jnp.std(l2_normalise(features), axis=0, ddof=1).mean()


@dataclasses.dataclass
class _ViewsTask:
  """Shared plumbing of the SpectralEarth pre-training tasks: raw cubes and their SSL views.

  Attributes:
    source: training examples: ``{"images": (D, S, S, B)}`` (dates), ``{"image1", "image2"}`` or
      ``{"image"}`` raw cubes.
    mean: per-band standardisation mean ``(B,)``.
    std: per-band standardisation std ``(B,)``.
    size: side of the square views.
    scale: RandomResizedCrop area range.
    blur_p: probability of the Gaussian blur.
    two_views: produce ``view2`` as well as ``view1``.
  """

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
  """MoCo-v2 pre-training (lightly flavour) for :func:`jspectral.train.fit`.

  EMA key encoder (momentum updated before the key forward), InfoNCE against a FIFO bank of
  L2-normalised keys (random normalised init), keys enqueued after the loss. BatchNorm everywhere
  uses global-batch statistics (torch ``sync_batchnorm``).

  Attributes:
    (the view fields ``source`` .. ``two_views``: :class:`_ViewsTask`)
    backbone: the encoder (e.g. a SpecResNet50 or SpecViT).
    head_hidden: hidden width of the MoCo projection head.
    bank_size: length of the key bank.
    temperature: InfoNCE temperature.
    momentum: EMA momentum of the key encoder.
    copy_key_encoder: ``False`` reproduces the official independent random init of the key
      encoder; ``True`` starts it as a copy of the query encoder (the MoCo paper's recipe).
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
    bank = l2_normalise(jax.random.normal(k_bank, (self.bank_size, 128)))
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
    bank, ptr = enqueue(state["bank"], state["ptr"], l2_normalise(k))
    new_state = {"batch_stats": stats, "key_params": key_params, "key_batch_stats": key_stats,
                 "bank": bank, "ptr": ptr}
    return loss, {"state": new_state, "feature_std": _feature_std(features)}


@dataclasses.dataclass
class DINOTask(_ViewsTask):
  """DINO pre-training (lightly flavour): two global views, no local crops (official configs).

  Teacher = EMA of the student, centred and sharpened teacher targets, last layer frozen during
  the first ``freeze_last_layer`` epochs. As in the official module the teacher backbone starts
  as a copy of the student's and the teacher head is initialised independently
  (``copy_teacher_head`` copies it). The teacher momentum is lightly's per-epoch cosine over
  ``momentum_epochs`` (default) or a per-step cosine over the whole run (``per_step_momentum``),
  both starting at ``momentum_start``. The frozen last layer gets a zero gradient; torch sets it
  to ``None``, so AdamW neither decays it nor advances its moments or step count: train with
  ``optimizer.skip_unused=True`` for the same (the paper preset does).

  Attributes:
    (the view fields ``source`` .. ``two_views``: :class:`_ViewsTask`)
    backbone: the encoder.
    head_hidden: hidden width of the DINO head.
    bottleneck: bottleneck width of the DINO head.
    out_dim: output dimension (prototypes) of the DINO head.
    teacher_temp: teacher softmax temperature.
    student_temp: student softmax temperature.
    center_momentum: EMA momentum of the teacher centre.
    steps_per_epoch: optimiser steps per epoch (epoch-based schedules need it).
    total_steps: length of the run (the per-step momentum schedule needs it).
    momentum_epochs: epochs of lightly's per-epoch cosine, after which the momentum stays 1.0.
    freeze_last_layer: epochs during which the student's last layer gets a zero gradient.
    copy_teacher_head: start the teacher head as a copy of the student's (official: independent
      initialisation).
    per_step_momentum: per-step cosine over the whole run instead of the per-epoch one.
    momentum_start: teacher momentum at step 0.
    warmup_teacher_temp: teacher temperature at epoch 0, ramped linearly (per epoch) to
      ``teacher_temp`` over ``warmup_teacher_temp_epochs`` (official: 0.04 -> 0.04 over 10).
    warmup_teacher_temp_epochs: epochs of the teacher-temperature ramp.
    official_lr: the official per-epoch learning rate (:meth:`schedule`: LinearLR from lr/20 over
      ``warmup_epochs``, then cosine with ``T_max = lr_t_max`` epochs) instead of the training
      config's schedule.
    warmup_epochs: learning-rate warm-up epochs (``official_lr``).
    lr_t_max: cosine period in epochs (``official_lr``; official: max_epochs = 100).
  """

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
  copy_teacher_head: bool = False
  per_step_momentum: bool = False
  momentum_start: float = 0.996
  warmup_teacher_temp: float = 0.04
  warmup_teacher_temp_epochs: int = 10
  official_lr: bool = False
  warmup_epochs: int = 20
  lr_t_max: int = 100
  scale: tuple[float, float] = (0.05, 1.0)
  blur_p: float = 0.5

  def __post_init__(self):
    self.net = SSLNet(self.backbone, DINOProjectionHead(
        hidden=self.head_hidden, bottleneck=self.bottleneck, out=self.out_dim))

  def init(self, rng, batch):
    variables = self.net.init(rng, batch["view1"])
    stats, teacher = variables.get("batch_stats", {}), variables["params"]
    if not self.copy_teacher_head:
      own = self.net.init(jax.random.fold_in(rng, 1), batch["view1"])["params"]["head"]
      teacher = {**teacher, "head": own}
    state = {"batch_stats": stats, "teacher_params": teacher, "teacher_batch_stats": stats,
             "center": jnp.zeros((self.out_dim,))}
    return variables["params"], state

  def schedule(self, config):
    """The official per-epoch learning rate as a per-step schedule (``official_lr``), else
    ``None`` (the training config's schedule)."""
    if not self.official_lr:
      return None
    base, epoch_of = config.optimizer.learning_rate, lambda step: step // self.steps_per_epoch
    return lambda step: dino_learning_rate(epoch_of(step), base, self.warmup_epochs,
                                           self.lr_t_max)

  def teacher_temperature(self, step):
    return dino_teacher_temperature(step // self.steps_per_epoch, self.warmup_teacher_temp,
                                    self.teacher_temp, self.warmup_teacher_temp_epochs)

  def teacher_momentum(self, step):
    if self.per_step_momentum:
      return cosine_momentum(step, self.total_steps, self.momentum_start)
    return cosine_momentum(step // self.steps_per_epoch, self.momentum_epochs, self.momentum_start)

  def loss(self, params, state, batch, rng, step):
    """DINO loss of the two views at the global ``step`` (teacher momentum, frozen last layer)."""
    del rng
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
                             self.teacher_temperature(step), self.student_temp,
                             self.center_momentum)
    new_state = {"batch_stats": stats, "teacher_params": teacher, "teacher_batch_stats": t_stats,
                 "center": center}
    return loss, {"state": new_state, "feature_std": _feature_std(feats), "teacher_momentum": m}


@dataclasses.dataclass
class MAETask(_ViewsTask):
  """MAE pre-training of a SpecViT.

  One view (RandomResizedCrop scale (0.4, 1), flips, no blur), mask ratio 0.9 of the tokens after
  patch- and position-embedding (the adapter sees the full image), norm-pix MSE on the masked
  patches of the augmented, standardised image. As lightly's ``MaskedVisionTransformerTIMM``
  does, the encoder's position embedding is the fixed 2-D sin-cos table (not a parameter here:
  :meth:`encoder_params` puts it back). A batch that carries ``idx_keep`` / ``idx_mask`` (e.g.
  masks drawn by the official code) is masked with them instead of a fresh random mask.
  :meth:`schedule` (``official_lr``) is the official per-epoch ``CosineAnnealingLR``.

  Attributes:
    (the view fields ``source`` .. ``two_views``: :class:`_ViewsTask`)
    encoder: the :class:`~jspectral.nn.spec_vit.SpecViT` encoder.
    mask_ratio: fraction of tokens masked.
    decoder_dim: width of the MAE decoder.
    decoder_heads: attention heads of the decoder.
    norm_pix: normalise each target patch by its own mean and variance.
    bands: band count ``B`` the decoder reconstructs.
    official_lr: the official learning rate: cosine over ``lr_t_max`` epochs, constant within
      an epoch (else the training config's schedule).
    steps_per_epoch: optimiser steps per epoch (``official_lr``).
    lr_t_max: cosine period ``T_max`` in epochs (official 200).
  """

  encoder: SpecViT = None
  mask_ratio: float = 0.9
  decoder_dim: int = 512
  decoder_heads: int = 16
  norm_pix: bool = True
  bands: int = 202
  official_lr: bool = False
  steps_per_epoch: int = 1
  lr_t_max: int = 200
  two_views: bool = False
  scale: tuple[float, float] = (0.4, 1.0)
  blur_p: float = 0.0

  def __post_init__(self):
    self.net = MAENet(self.encoder, self.decoder_dim, 1, self.decoder_heads, self.bands)
    grid = self.encoder.img_size // self.encoder.token_patch_size
    self.pos_embed = jnp.asarray(sincos_pos_embed_2d(self.encoder.embed_dim, grid))[None]

  def _mask(self, rng, batch_size):
    return random_token_mask(rng, batch_size, self.encoder.num_patches, self.mask_ratio)

  def encoder_params(self, params):
    """The encoder's parameter tree with the fixed position embedding (a plain SpecViT's)."""
    vit_core = params["encoder"]["vit_core"]
    pos_embed = self.pos_embed.astype(vit_core["cls_token"].dtype)
    return {**params["encoder"], "vit_core": {**vit_core, "pos_embed": pos_embed}}

  def schedule(self, config):
    """``CosineAnnealingLR(T_max=lr_t_max, eta_min=0)`` stepped per epoch (``official_lr``),
    else ``None`` (the training config's schedule)."""
    if not self.official_lr:
      return None
    base = config.optimizer.learning_rate
    return lambda step: base * (1 + jnp.cos(jnp.pi * (step // self.steps_per_epoch)
                                            / self.lr_t_max)) / 2

  def init(self, rng, batch):
    k_init, k_mask = jax.random.split(rng)
    x = batch["view1"]
    variables = self.net.init(k_init, x, *self._mask(k_mask, x.shape[0]))
    params = dict(variables["params"])
    vit_core = dict(params["encoder"]["vit_core"])
    del vit_core["pos_embed"]
    params["encoder"] = {**params["encoder"], "vit_core": vit_core}
    return params, {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    x = batch["view1"]
    if "idx_keep" in batch:
      idx_keep, idx_mask = batch["idx_keep"], batch["idx_mask"]
    else:
      idx_keep, idx_mask = self._mask(rng, x.shape[0])
    params = {**params, "encoder": self.encoder_params(params)}
    pred, stats = _apply(self.net, params, state["batch_stats"], x, idx_keep=idx_keep,
                         idx_mask=idx_mask, train=True)
    loss = mae_loss(pred, x, idx_mask, self.encoder.token_patch_size, self.norm_pix)
    return loss, {"state": {"batch_stats": stats}}



# --------------------------------------------------------------------------------------------------
# SpectralEarth downstream


@dataclasses.dataclass
class SegmentationTask:
  """SpectralEarth downstream semantic segmentation with CE(ignore_index).

  Freezing is done by the training config's ``trainable`` regex (:attr:`trainable_head`).
  Sources are random-access sequences (a ``grain.MapDataset`` over a prepared TFDS split streams
  them); evaluation reads ``eval_batch`` examples at a time and accumulates one confusion matrix.

  Attributes:
    model: a :class:`~jspectral.ssl.spectral_earth.ViTSegmentor` or
      :class:`~jspectral.ssl.spectral_earth.FCNSegmenter`.
    source: training examples ``{"image": (H, W, B), "mask": (H, W)}``.
    eval_source: evaluation examples of the same form, already standardised (the validation
      split: ``evaluate`` scores it and ``fit`` selects on its loss).
    num_classes: number of classes.
    ignore_index: label value left out of the loss and the metrics.
    init_variables: pretrained backbone variables ``{"params": ..., "batch_stats": ...}`` copied
      under ``backbone`` (optional).
    eval_frozen_bn: run the backbone's BatchNorm in inference mode during training (the official
      code does not).
    augment_fn: optional host-side ``(example, np_rng) -> example``.
    eval_batch: images per compiled evaluation call.
  """

  model: nn.Module
  source: Any
  eval_source: Any
  num_classes: int
  ignore_index: int
  init_variables: dict | None = None
  eval_frozen_bn: bool = False
  augment_fn: Any = None
  eval_batch: int = 16

  trainable_head = r"^head/"

  def train_source(self):
    return self.source

  def augment(self, example, rng):
    return self.augment_fn(example, rng) if self.augment_fn is not None else example

  def init(self, rng, batch):
    return _init_with_backbone(self.model, rng, batch["image"], self.init_variables)

  def loss(self, params, state, batch, rng):
    """Cross-entropy (``ignore_index`` left out) of one batch in training mode.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      batch: ``{"image": (N, H, W, B), "mask": (N, H, W)}``.
      rng: unused.

    Returns:
      ``(loss, {"state": {"batch_stats": ...}})``.
    """
    del rng
    logits, stats = _apply(self.model, params, state["batch_stats"], batch["image"], train=True,
                           backbone_train=not self.eval_frozen_bn)
    loss = segmentation_loss(logits, batch["mask"], self.ignore_index)
    return loss, {"state": {"batch_stats": stats}}

  @functools.cached_property
  def _infer(self):
    def infer(params, stats, images, masks):
      logits = self.model.apply({"params": params, "batch_stats": stats}, images)
      valid = masks != self.ignore_index
      ce = segmentation_loss(logits, masks, self.ignore_index) * jnp.sum(valid)
      pred = jnp.argmax(logits, axis=-1)
      conf = segmentation.segmentation_confusion(pred, masks, self.num_classes, self.ignore_index)
      return pred, conf, ce, jnp.sum(valid)
    return jax.jit(infer)

  def _batches(self, source):
    for i in range(0, len(source), self.eval_batch):
      examples = [source[j] for j in range(i, min(i + self.eval_batch, len(source)))]
      yield (np.stack([e["image"] for e in examples]),
             np.stack([e["mask"] for e in examples]).astype(np.int32))

  def predict(self, params, state, images):
    """Per-pixel class indices, ``eval_batch`` images per call.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      images: standardised cubes ``(M, H, W, B)``.

    Returns:
      Class indices ``(M, H, W)``, NumPy.
    """
    step = self.eval_batch
    return np.concatenate([np.asarray(self._infer(
        params, state["batch_stats"], images[i:i + step],
        np.zeros(images[i:i + step].shape[:3], np.int32))[0])
        for i in range(0, len(images), step)])

  def scores(self, params, state, source) -> dict[str, float]:
    """Pixel accuracy, micro Jaccard, mean IoU and mean CE over a whole split.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      source: standardised examples ``{"image", "mask"}`` (random access).

    Returns:
      ``{"accuracy", "jaccard_micro", "miou", "loss"}`` Python floats, accumulated over the
      split (one confusion matrix; CE averaged over every non-ignored pixel).
    """
    conf, ce, count = 0, 0.0, 0
    for images, masks in self._batches(source):
      _, c, e, n = self._infer(params, state["batch_stats"], images, masks)
      conf, ce, count = conf + c, ce + float(e), count + int(n)
    return {"accuracy": float(segmentation.micro_accuracy(conf)),
            "jaccard_micro": float(segmentation.micro_jaccard(conf, self.ignore_index)),
            "miou": float(segmentation.mean_iou(conf, self.ignore_index)),
            "loss": ce / max(count, 1)}

  def evaluate(self, params, state):
    """:meth:`scores` on ``eval_source``."""
    return self.scores(params, state, self.eval_source)


def _init_with_backbone(model: nn.Module, rng, images, init_variables: dict | None):
  """``(params, {"batch_stats": ...})`` of ``model`` with ``init_variables`` (pretrained encoder
  ``{"params", "batch_stats"}``) written over its ``backbone`` entries."""
  variables = model.init(rng, images)
  params, stats = dict(variables["params"]), dict(variables.get("batch_stats", {}))
  if init_variables is not None:
    params["backbone"] = init_variables["params"]
    if "batch_stats" in init_variables:
      stats["backbone"] = init_variables["batch_stats"]
  return params, {"batch_stats": stats}


@functools.cache
def _inference(model: nn.Module):
  """``(params, batch_stats, images) -> outputs`` of ``model`` in inference mode, jitted once per
  model configuration."""
  return jax.jit(lambda params, stats, images: model.apply(
      {"params": params, "batch_stats": stats}, images))


def _split_outputs(model: nn.Module, params, state, source, eval_batch: int,
                   label_dtype) -> tuple[np.ndarray, np.ndarray]:
  """Inference-mode outputs of ``model`` over a split, ``eval_batch`` examples per call, and the
  split's ``label``s.

  Args:
    model: the task's module (applied with ``params`` and ``state["batch_stats"]``).
    params: parameters.
    state: ``{"batch_stats": ...}``.
    source: standardised examples ``{"image", "label"}`` (random access).
    eval_batch: examples per call.
    label_dtype: dtype of the returned labels.

  Returns:
    ``(outputs (M, ...), labels (M, ...) as label_dtype)``, NumPy, in source order.
  """
  apply = _inference(model)
  out, labels = [], []
  for i in range(0, len(source), eval_batch):
    examples = [source[j] for j in range(i, min(i + eval_batch, len(source)))]
    out.append(np.asarray(apply(params, state["batch_stats"],
                                np.stack([e["image"] for e in examples]))))
    labels.append(np.stack([e["label"] for e in examples]).astype(label_dtype))
  return np.concatenate(out), np.concatenate(labels)


def _merge(tree: dict, update: dict) -> dict:
  """``tree`` with the leaves of ``update`` written over it (nested dicts merged key by key)."""
  out = dict(tree)
  for key, value in update.items():
    nested = isinstance(value, dict) and isinstance(out.get(key), dict)
    out[key] = _merge(out[key], value) if nested else value
  return out


@dataclasses.dataclass
class MultiLabelTask:
  """SpectralEarth downstream multi-label classification (EnMAP-CORINE) with BCE-with-logits.

  The model is the encoder with its own linear head (``num_classes > 0``: Spec ViT's
  ``vit_core/head`` on the class token, Spec ResNet-50's ``fc`` on the pooled feature), as the
  official ``MultiLabelClassificationModule``. Freezing is done by the training config's
  ``trainable`` regex (:func:`jspectral.ssl.spectral_earth.trainable_pattern`); the frozen
  encoder's BatchNorm stays in training mode unless ``eval_frozen_bn`` (official: it does).

  Attributes:
    model: encoder with a ``num_classes`` head, ``(N, H, W, B) -> (N, L)`` logits.
    source: training examples ``{"image": (H, W, B), "label": (L,)}`` (multi-hot).
    eval_source: standardised evaluation examples of the same form (``fit`` selects on their
      loss).
    init_variables: pretrained encoder variables ``{"params", "batch_stats"}`` written over the
      initialisation (the head, absent from them, keeps its initial values).
    eval_frozen_bn: run the model's BatchNorm in inference mode during training.
    augment_fn: optional host-side ``(example, np_rng) -> example``.
    eval_batch: images per compiled evaluation call.
    threshold: probability threshold of accuracy and F1 (torchmetrics' 0.5).
  """

  model: nn.Module
  source: Any
  eval_source: Any
  init_variables: dict | None = None
  eval_frozen_bn: bool = False
  augment_fn: Any = None
  eval_batch: int = 16
  threshold: float = 0.5

  def train_source(self):
    return self.source

  def augment(self, example, rng):
    return self.augment_fn(example, rng) if self.augment_fn is not None else example

  def init(self, rng, batch):
    variables = self.model.init(rng, batch["image"])
    params, stats = dict(variables["params"]), dict(variables.get("batch_stats", {}))
    if self.init_variables is not None:
      params = _merge(params, self.init_variables["params"])
      stats = _merge(stats, self.init_variables.get("batch_stats", {}))
    return params, {"batch_stats": stats}

  def loss(self, params, state, batch, rng):
    """BCE-with-logits of one batch (mean over samples and labels) in training mode.

    Args:
      params: parameters.
      state: ``{"batch_stats": ...}``.
      batch: ``{"image": (N, H, W, B), "label": (N, L)}``.
      rng: unused.

    Returns:
      ``(loss, {"state": {"batch_stats": ...}})``.
    """
    del rng
    logits, stats = _apply(self.model, params, state["batch_stats"], batch["image"],
                           train=not self.eval_frozen_bn)
    return multilabel_loss(logits, batch["label"]), {"state": {"batch_stats": stats}}

  def logits(self, params, state, source) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode ``(logits (M, L), int32 targets (M, L))`` of a whole split, in source
    order (:func:`_split_outputs`, ``eval_batch`` images per call)."""
    return _split_outputs(self.model, params, state, source, self.eval_batch, np.int32)

  def scores(self, params, state, source) -> dict[str, float]:
    """torchmetrics-style micro/macro accuracy, F1 and AP and the mean BCE over a whole split.

    Args:
      params: parameters.
      state: ``{"batch_stats": ...}``.
      source: standardised examples ``{"image", "label"}`` (random access).

    Returns:
      ``{"accuracy_micro", "accuracy_macro", "f1_micro", "f1_macro", "ap_micro", "ap_macro",
      "loss"}`` Python floats.
    """
    logits, targets = self.logits(params, state, source)
    metrics = segmentation.multilabel_metrics(jax.nn.sigmoid(jnp.asarray(logits)),
                                              jnp.asarray(targets), self.threshold)
    metrics["loss"] = multilabel_loss(jnp.asarray(logits), jnp.asarray(targets))
    return {k: float(v) for k, v in metrics.items()}

  def evaluate(self, params, state):
    """:meth:`scores` on ``eval_source``."""
    return self.scores(params, state, self.eval_source)


@dataclasses.dataclass
class RegressionTask:
  """SpectralEarth downstream regression (Hyperview soil P, K, Mg, pH) with the challenge's
  baseline-normalised MSE as loss (official ``RegressionModule`` with ``custom_mse_loss``).

  The model is a :class:`~jspectral.ssl.spectral_earth.Regressor` (encoder under ``backbone``,
  MLP under ``head``). Freezing is done by the training config's ``trainable`` regex; the frozen
  encoder's BatchNorm stays in training mode unless ``eval_frozen_bn`` (official: it does).

  Attributes:
    model: ``(N, H, W, B) -> (N, T)``.
    source: training examples ``{"image": (H, W, B), "label": (T,) float}``.
    eval_source: standardised evaluation examples of the same form (``evaluate`` scores them;
      ``fit`` selects on their ``loss``).
    baseline: the baseline's constant prediction per target ``(T,)`` (official: zeros, the mean
      of the standardised targets).
    init_variables: pretrained encoder variables ``{"params", "batch_stats"}`` put under
      ``backbone``.
    eval_frozen_bn: run the backbone's BatchNorm in inference mode during training.
    augment_fn: optional host-side ``(example, np_rng) -> example``.
    eval_batch: images per compiled evaluation call.
    score_batch: the official per-GPU batch (32). Each score divides by the baseline MSE of
      one such batch: the training loss is the mean of the scores of the global batch's
      ``score_batch``-sample chunks (DDP averages the per-GPU losses' gradients), and the
      evaluation ``loss`` the official epoch ``val_loss``
      (:func:`~jspectral.metrics.regression.batch_mean_score` over consecutive batches).
  """

  model: nn.Module
  source: Any
  eval_source: Any
  baseline: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
  init_variables: dict | None = None
  eval_frozen_bn: bool = False
  augment_fn: Any = None
  eval_batch: int = 16
  score_batch: int = 32

  def train_source(self):
    return self.source

  def augment(self, example, rng):
    return self.augment_fn(example, rng) if self.augment_fn is not None else example

  def init(self, rng, batch):
    return _init_with_backbone(self.model, rng, batch["image"], self.init_variables)

  def loss(self, params, state, batch, rng):
    """The challenge score in training mode, per ``score_batch`` chunk (head dropout drawn from
    ``rng``).

    Args:
      params: parameters.
      state: ``{"batch_stats": ...}``.
      batch: ``{"image": (N, H, W, B), "label": (N, T)}``.
      rng: PRNG key of the head's dropout.

    Returns:
      ``(loss, {"state": {"batch_stats": ...}})``.
    """
    pred, stats = _apply(self.model, params, state["batch_stats"], batch["image"], train=True,
                         backbone_train=not self.eval_frozen_bn, rngs={"dropout": rng})
    loss = regression.batch_mean_score(pred, batch["label"], jnp.asarray(self.baseline),
                                       batch_size=self.score_batch)
    return loss, {"state": {"batch_stats": stats}}

  def predictions(self, params, state, source) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode ``(pred (M, T), float32 target (M, T))`` of a whole split, in source
    order (:func:`_split_outputs`, ``eval_batch`` images per call)."""
    return _split_outputs(self.model, params, state, source, self.eval_batch, np.float32)

  def scores(self, params, state, source) -> dict[str, float]:
    """Challenge score over the split, per target, the official per-batch mean and RMSE.

    Args:
      params: parameters.
      state: ``{"batch_stats": ...}``.
      source: standardised examples ``{"image", "label"}`` (random access).

    Returns:
      ``{"score", "score_0" .. "score_{T-1}", "batch_mean", "rmse", "loss"}`` Python floats:
      ``score`` is the challenge score of the whole split, ``score_t`` its per-target ratios,
      ``batch_mean`` (= ``loss``) the official epoch ``val_loss``.
    """
    pred, target = self.predictions(params, state, source)
    baseline = jnp.asarray(self.baseline)
    per_target = regression.normalised_mse(pred, target, baseline)
    batch_mean = float(regression.batch_mean_score(pred, target, baseline,
                                                   batch_size=self.score_batch))
    return {"score": float(jnp.mean(per_target)),
            **{f"score_{t}": float(v) for t, v in enumerate(per_target)},
            "batch_mean": batch_mean, "rmse": float(regression.rmse(pred, target)),
            "loss": batch_mean}

  def evaluate(self, params, state):
    """:meth:`scores` on ``eval_source``."""
    return self.scores(params, state, self.eval_source)
