"""Segmentation and multi-label metrics with torchmetrics semantics (pure JAX).

Micro pixel accuracy, torchmetrics' micro Jaccard index with an ignore index, mean IoU, and
multi-label micro/macro accuracy, F1 and average precision at threshold 0.5, as the SpectralEarth
downstream protocols report them (Braham et al., arXiv 2408.08447).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jspectral.metrics.classification import confusion_matrix


def micro_accuracy(confusion: jax.Array) -> jax.Array:
  """torchmetrics ``MulticlassAccuracy(average='micro', ignore_index=...)`` from a confusion matrix.

  The matrix is built without the ignored pixels; predictions of the ignore class count as wrong.

  Args:
    confusion: ``(K', K')`` counts (rows: targets, columns: predictions).

  Returns:
    Scalar accuracy (0 for an empty matrix).
  """
  return jnp.trace(confusion) / jnp.maximum(confusion.sum(), 1)


def micro_jaccard(confusion: jax.Array, ignore_index: int | None = None) -> jax.Array:
  """torchmetrics ``MulticlassJaccardIndex(average='micro', ignore_index=...)``.

  ``sum TP / sum(TP + FP + FN)`` over classes, where the ignore class's entry is dropped from the
  denominator.

  Args:
    confusion: ``(K', K')`` counts with ``K' > ignore_index`` (rows: targets, columns:
      predictions).
    ignore_index: the class left out of the denominator (``None``: none).

  Returns:
    Scalar Jaccard index (0 when the denominator is empty).
  """
  confusion = confusion.astype(jnp.float32)
  tp = jnp.diag(confusion)
  denom = confusion.sum(0) + confusion.sum(1) - tp
  total = denom.sum()
  if ignore_index is not None and 0 <= ignore_index < confusion.shape[0]:
    total = total - denom[ignore_index]
  return jnp.where(total > 0, tp.sum() / jnp.maximum(total, 1e-12), 0.0)


def mean_iou(confusion: jax.Array, ignore_index: int | None = None) -> jax.Array:
  """Mean IoU over classes with a non-empty union (the ignore class excluded).

  Args:
    confusion: ``(K', K')`` counts (rows: targets, columns: predictions).
    ignore_index: a class to leave out (``None``: none).

  Returns:
    Scalar mean IoU.
  """
  confusion = confusion.astype(jnp.float32)
  tp = jnp.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - tp
  keep = union > 0
  if ignore_index is not None and 0 <= ignore_index < confusion.shape[0]:
    keep = keep.at[ignore_index].set(False)
  return jnp.sum(jnp.where(keep, tp / jnp.maximum(union, 1e-12), 0.0)) / jnp.maximum(keep.sum(), 1)


def segmentation_confusion(preds: jax.Array, target: jax.Array, num_classes: int,
                           ignore_index: int) -> jax.Array:
  """Confusion over ``max(num_classes, ignore_index + 1)`` classes with ignored targets dropped.

  Args:
    preds: predicted class map, integer ``(...)``.
    target: true class map of the same shape.
    num_classes: number of real classes.
    ignore_index: the target value to skip.

  Returns:
    ``(K', K')`` int32 counts, ``K' = max(num_classes, ignore_index + 1)``.
  """
  size = max(num_classes, ignore_index + 1)
  return confusion_matrix(target, preds, size, ignore_index=ignore_index)


def _binary_average_precision(scores: jax.Array, target: jax.Array) -> jax.Array:
  """Step-wise AP (torchmetrics / scikit-learn) with tied scores grouped.

  Without positives torchmetrics (1.x) sets recall to 1 at every threshold, so the area is 0.
  """
  order = jnp.argsort(-scores)
  s, t = -scores[order], target[order].astype(jnp.float32)
  n_ge = jnp.searchsorted(s, s, side="right")
  precision = jnp.cumsum(t)[n_ge - 1] / n_ge
  positives = t.sum()
  return jnp.sum(t * precision) / jnp.maximum(positives, 1)


def multilabel_metrics(probs: jax.Array, target: jax.Array,
                       threshold: float = 0.5) -> dict[str, jax.Array]:
  """torchmetrics ``Multilabel{Accuracy, F1Score, AveragePrecision}``, micro and macro.

  Args:
    probs: probabilities ``(N, L)``, binarised with ``> threshold`` for accuracy and F1.
    target: multi-hot ``(N, L)``.
    threshold: decision threshold (torchmetrics' default 0.5).

  Returns:
    Scalars ``accuracy_micro``, ``accuracy_macro``, ``f1_micro``, ``f1_macro``, ``ap_micro`` and
    ``ap_macro`` (step-wise AP with tied scores grouped; a label without positives scores 0 and
    counts in the macro mean, as torchmetrics' ``MultilabelAveragePrecision`` does).
  """
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
      "ap_macro": jnp.mean(ap),
  }
