"""SpectralEarth downstream protocols: segmentation and multi-label heads, losses, the official
torchmetrics-equivalent metrics, and a task for :func:`jspectral.train.fit`.

Braham et al., "SpectralEarth: Training Hyperspectral Foundation Models at Scale", arXiv
2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth,
``src/models/{semantic_segmentation,multilabel_classification}_module.py``.

- Spec ViT segmentation (:class:`ViTSegmentor`): normalised last-block patch tokens (class token
  dropped) reshaped row-major to the token grid, then :class:`ConvHead` (``log2(p)`` stages of
  bilinear x2 upsampling + 3x3 conv, BN-ReLU between).
- Spec ResNet-50 segmentation (:class:`FCNSegmenter`): feature map -> :class:`FCNHead`
  (3x3 conv to ``C/8`` without bias, BN, ReLU, 1x1 conv) -> bilinear resize to the input size.
- CORINE: the backbone's own linear head (``num_classes=19``) with BCE-with-logits.
- Metrics: micro pixel accuracy and torchmetrics' micro Jaccard with an ignore index (not mean
  IoU; :func:`mean_iou` is reported beside it); multi-label micro/macro accuracy, F1 and average
  precision at threshold 0.5.

The frozen-encoder ("linear") protocol freezes the backbone's parameters but, as in the official
code, leaves its BatchNorm layers in training mode (batch statistics, running stats updated);
``SegmentationTask.eval_frozen_bn=True`` runs them in inference mode instead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.metrics.classification import confusion_matrix
from jspectral.ssl.spectral_adapter import batch_norm
from jspectral.ssl.spectral_earth import crop_box, resize_crop


def _upsample2(x: jax.Array) -> jax.Array:
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")


class ConvHead(nn.Module):
  """Official ``ConvHead``: for ``log2(patch_size)`` stages, bilinear x2 upsampling
  (``align_corners=False``) and a 3x3 conv with bias; widths 128, 64, ... then ``num_classes``;
  BatchNorm + ReLU after every conv but the last."""

  num_classes: int
  patch_size: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
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
  """``backbone`` (a :class:`jspectral.ssl.spectral_earth.SpecViT`) + :class:`ConvHead`:
  ``(N, H, W, B) -> (N, H, W, num_classes)`` logits.

  ``standardise`` (not in the official code, off by default) puts a BatchNorm without scale and
  shift between the frozen tokens and the head, as the MAE / DINO / MoCo-v3 linear-probe
  protocols do: each token feature is standardised by batch statistics in training and by their
  running averages in inference, so the head sees pretrained and random-init features at a
  common scale. ``head="linear"``: a 1x1 conv on the token grid, logits resized bilinearly to
  the input (the official "linear" protocol is the ConvHead on a frozen encoder).
  """

  backbone: nn.Module
  num_classes: int
  standardise: bool = False
  head: str = "conv"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, backbone_train: bool | None = None):
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
  """Official ``FCNHead``: 3x3 conv (no bias) to ``in/8`` channels, BN, ReLU, 1x1 conv."""

  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    inter = x.shape[-1] // 8
    x = nn.Conv(inter, (3, 3), padding=[(1, 1), (1, 1)], use_bias=False, name="conv0")(x)
    x = nn.relu(batch_norm(train, "bn0")(x))
    return nn.Conv(self.num_classes, (1, 1), name="conv1")(x)


class FCNSegmenter(nn.Module):
  """``backbone`` (a ``SpecResNet50(return_features=True)``, usually all-dilated) + FCNHead +
  bilinear resize of the logits to the input size."""

  backbone: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, backbone_train: bool | None = None):
    backbone_train = train if backbone_train is None else backbone_train
    logits = FCNHead(self.num_classes, name="head")(self.backbone(x, backbone_train), train)
    n, h, w, _ = x.shape
    return jax.image.resize(logits, (n, h, w, self.num_classes), method="bilinear")


def convert_torch_conv_head(state_dict, prefix: str = "segmentation_conv.") -> tuple[dict, dict]:
  """Official ``ConvHead`` ``nn.Sequential`` entries -> ``(params, batch_stats)`` of
  :class:`ConvHead` (conv at Sequential index ``4i + 1``, BatchNorm at ``4i + 2``)."""
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
  """torch ``CrossEntropyLoss(ignore_index=...)``: mean over the pixels whose target is not
  ``ignore_index``. ``logits`` ``(..., C)``, ``target`` ``(...)`` integer."""
  if logits.shape[:-1] != target.shape:
    raise ValueError(f"target: expected shape {logits.shape[:-1]}, got {target.shape}")
  valid = target != ignore_index
  logp = jax.nn.log_softmax(logits, axis=-1)
  safe = jnp.where(valid, target, 0)
  nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(valid.sum(), 1)


def multilabel_loss(logits: jax.Array, target: jax.Array) -> jax.Array:
  """BCE-with-logits averaged over samples and labels (``(N, L)`` multi-hot target)."""
  if logits.shape != target.shape:
    raise ValueError(f"target: expected shape {logits.shape}, got {target.shape}")
  t = target.astype(logits.dtype)
  return jnp.mean(jnp.maximum(logits, 0) - logits * t + jnp.log1p(jnp.exp(-jnp.abs(logits))))


# --------------------------------------------------------------------------------------------------
# Metrics (torchmetrics semantics)


def micro_accuracy(confusion: jax.Array) -> jax.Array:
  """``MulticlassAccuracy(average='micro', ignore_index=...)`` from a confusion matrix built
  without the ignored pixels (predictions of the ignore class count as wrong)."""
  return jnp.trace(confusion) / jnp.maximum(confusion.sum(), 1)


def micro_jaccard(confusion: jax.Array, ignore_index: int | None = None) -> jax.Array:
  """``MulticlassJaccardIndex(average='micro', ignore_index=...)``: ``sum TP / sum(TP+FP+FN)``
  over classes, where the ignore class's entry is dropped from the denominator. ``confusion`` is
  ``(K', K')`` with ``K' > ignore_index`` (rows: targets, columns: predictions)."""
  confusion = confusion.astype(jnp.float32)
  tp = jnp.diag(confusion)
  denom = confusion.sum(0) + confusion.sum(1) - tp
  total = denom.sum()
  if ignore_index is not None and 0 <= ignore_index < confusion.shape[0]:
    total = total - denom[ignore_index]
  return jnp.where(total > 0, tp.sum() / jnp.maximum(total, 1e-12), 0.0)


def mean_iou(confusion: jax.Array, ignore_index: int | None = None) -> jax.Array:
  """Mean IoU over classes with a non-empty union (the ignore class excluded)."""
  confusion = confusion.astype(jnp.float32)
  tp = jnp.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - tp
  keep = union > 0
  if ignore_index is not None and 0 <= ignore_index < confusion.shape[0]:
    keep = keep.at[ignore_index].set(False)
  return jnp.sum(jnp.where(keep, tp / jnp.maximum(union, 1e-12), 0.0)) / jnp.maximum(keep.sum(), 1)


def segmentation_confusion(preds: jax.Array, target: jax.Array, num_classes: int,
                           ignore_index: int) -> jax.Array:
  """Confusion over ``max(num_classes, ignore_index + 1)`` classes with ignored targets dropped."""
  size = max(num_classes, ignore_index + 1)
  return confusion_matrix(target, preds, size, ignore_index=ignore_index)


def _binary_average_precision(scores: jax.Array, target: jax.Array) -> jax.Array:
  """Step-wise AP (torchmetrics / scikit-learn) with tied scores grouped; NaN without positives."""
  order = jnp.argsort(-scores)
  s, t = -scores[order], target[order].astype(jnp.float32)
  n_ge = jnp.searchsorted(s, s, side="right")
  precision = jnp.cumsum(t)[n_ge - 1] / n_ge
  positives = t.sum()
  return jnp.where(positives > 0, jnp.sum(t * precision) / jnp.maximum(positives, 1), jnp.nan)


def multilabel_metrics(probs: jax.Array, target: jax.Array,
                       threshold: float = 0.5) -> dict[str, jax.Array]:
  """torchmetrics ``Multilabel{Accuracy, F1Score, AveragePrecision}`` (micro and macro) on
  probabilities ``(N, L)`` (binarised with ``> threshold``) and a multi-hot ``target``."""
  if probs.ndim != 2 or probs.shape != target.shape:
    raise ValueError(f"probs, target: expected equal (N, L) shapes, got {probs.shape}, "
                     f"{target.shape}")
  pred = probs > threshold
  t = target.astype(bool)
  tp = jnp.sum(pred & t, 0).astype(jnp.float32)
  fp = jnp.sum(pred & ~t, 0).astype(jnp.float32)
  fn = jnp.sum(~pred & t, 0).astype(jnp.float32)
  tn = jnp.sum(~pred & ~t, 0).astype(jnp.float32)

  def f1(tp, fp, fn):
    d = 2 * tp + fp + fn
    return jnp.where(d > 0, 2 * tp / jnp.maximum(d, 1e-12), 0.0)

  ap = jax.vmap(_binary_average_precision, in_axes=(1, 1))(probs, target)
  return {
      "accuracy_micro": (tp + tn).sum() / (tp + tn + fp + fn).sum(),
      "accuracy_macro": jnp.mean((tp + tn) / (tp + tn + fp + fn)),
      "f1_micro": f1(tp.sum(), fp.sum(), fn.sum()),
      "f1_macro": jnp.mean(f1(tp, fp, fn)),
      "ap_micro": _binary_average_precision(probs.reshape(-1), target.reshape(-1)),
      "ap_macro": jnp.nanmean(ap),
  }


# --------------------------------------------------------------------------------------------------
# Task


def _apply(model, params, stats, x, **kw):
  out, updated = model.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"],
                             **kw)
  return out, updated["batch_stats"]


@dataclasses.dataclass
class SegmentationTask:
  """Semantic segmentation with CE(ignore_index) on ``{"image", "mask"}`` examples.

  ``model`` is a :class:`ViTSegmentor` or :class:`FCNSegmenter`; ``init_variables`` (optional)
  are pretrained backbone variables ``{"params": ..., "batch_stats": ...}`` copied under
  ``backbone``. Freezing is done by the training config's ``trainable`` regex
  (:attr:`trainable_head`); ``eval_frozen_bn`` runs the backbone's BatchNorm in inference mode
  during training (the official code does not).
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
    variables = self.model.init(rng, batch["image"])
    params, stats = dict(variables["params"]), dict(variables.get("batch_stats", {}))
    if self.init_variables is not None:
      params["backbone"] = self.init_variables["params"]
      if "batch_stats" in self.init_variables:
        stats["backbone"] = self.init_variables["batch_stats"]
    return params, {"batch_stats": stats}

  def loss(self, params, state, batch, rng):
    del rng
    logits, stats = _apply(self.model, params, state["batch_stats"], batch["image"], train=True,
                           backbone_train=not self.eval_frozen_bn)
    loss = segmentation_loss(logits, batch["mask"], self.ignore_index)
    return loss, {"state": {"batch_stats": stats}}

  def predict(self, params, state, images):
    fn = jax.jit(lambda p, s, x: jnp.argmax(
        self.model.apply({"params": p, "batch_stats": s}, x), axis=-1))
    step = self.eval_batch
    return np.concatenate([np.asarray(fn(params, state["batch_stats"], images[i:i + step]))
                           for i in range(0, len(images), step)])

  def evaluate(self, params, state):
    images = np.stack([e["image"] for e in self.eval_source])
    masks = np.stack([e["mask"] for e in self.eval_source])
    conf = segmentation_confusion(jnp.asarray(self.predict(params, state, images)),
                                  jnp.asarray(masks), self.num_classes, self.ignore_index)
    return {"accuracy": float(micro_accuracy(conf)),
            "jaccard_micro": float(micro_jaccard(conf, self.ignore_index)),
            "miou": float(mean_iou(conf, self.ignore_index))}


def downstream_augment(example, rng: np.random.Generator, *, scale: tuple[float, float],
                       mean: np.ndarray, std: np.ndarray, train: bool = True):
  """Official downstream transform on ``{"image" (S, S, B), "mask" (S, S)}``: (train)
  RandomResizedCrop with ``scale`` (mask resampled nearest), vertical and horizontal flips; then
  per-band standardisation."""
  image = np.asarray(example["image"], np.float32)
  mask = np.asarray(example["mask"])
  if train:
    size = image.shape[0]
    box = crop_box(*image.shape[:2], rng, scale)
    image, mask = resize_crop(image, box, size), resize_crop(mask, box, size, order=0)
    if rng.uniform() < 0.5:
      image, mask = image[::-1], mask[::-1]
    if rng.uniform() < 0.5:
      image, mask = image[:, ::-1], mask[:, ::-1]
  return {"image": ((image - mean) / std).astype(np.float32),
          "mask": np.ascontiguousarray(mask).astype(np.int32)}
