"""Classification indices from a confusion matrix: OA, AA, Cohen's kappa, per-class accuracy.

Confusion matrices are additive, so evaluation streams batches through :func:`confusion_matrix`
and sums. Rows are true classes, columns predictions (scikit-learn's convention).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int,
                     ignore_index: int | None = None) -> jax.Array:
  """Confusion counts: rows are true classes, columns predictions.

  Args:
    labels: integer array of any shape, values in ``[0, K)``.
    predictions: integer array of the same shape as ``labels``, values in ``[0, K)``.
    num_classes: number of classes ``K``.
    ignore_index: a label value to leave out (e.g. unlabelled pixels).

  Returns:
    ``(K, K)`` int32 counts; entries whose label equals ``ignore_index`` are skipped.
  """
  if labels.shape != predictions.shape:
    raise ValueError(f"labels, predictions: shapes differ, {labels.shape} vs {predictions.shape}")
  if num_classes < 1:
    raise ValueError(f"num_classes: expected a positive integer, got {num_classes}")
  labels, predictions = labels.reshape(-1), predictions.reshape(-1)
  weight = jnp.ones_like(labels, jnp.int32)
  if ignore_index is not None:
    weight = jnp.where(labels == ignore_index, 0, weight)
  index = jnp.clip(labels, 0, num_classes - 1) * num_classes + jnp.clip(predictions, 0,
                                                                          num_classes - 1)
  counts = jnp.zeros(num_classes * num_classes, jnp.int32).at[index].add(weight)
  return counts.reshape(num_classes, num_classes)


def _check_confusion(confusion: jax.Array) -> None:
  if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
    raise ValueError(f"confusion: expected a square (K, K) matrix, got shape {confusion.shape}")


def overall_accuracy(confusion: jax.Array) -> jax.Array:
  """OA: correctly classified samples over all samples.

  Args:
    confusion: ``(K, K)`` confusion matrix (rows true, columns predicted).

  Returns:
    Scalar accuracy in [0, 1].
  """
  _check_confusion(confusion)
  return jnp.trace(confusion) / jnp.sum(confusion)


def per_class_accuracy(confusion: jax.Array) -> jax.Array:
  """Recall of each class.

  Args:
    confusion: ``(K, K)`` confusion matrix (rows true, columns predicted).

  Returns:
    ``(K,)`` accuracies; NaN for a class with no true samples.
  """
  _check_confusion(confusion)
  support = jnp.sum(confusion, axis=1)
  return jnp.where(support > 0, jnp.diag(confusion) / jnp.maximum(support, 1), jnp.nan)


def average_accuracy(confusion: jax.Array, predicted_absent_as_zero: bool = False) -> jax.Array:
  """AA: mean per-class accuracy over the classes present in the ground truth.

  Args:
    confusion: ``(K, K)`` confusion matrix (rows true, columns predicted).
    predicted_absent_as_zero: ``True`` follows scikit-learn reports built on the sorted union of
      true and predicted labels (LoLA-SpecViT's ``acc_reports``): a class that is predicted but
      never true counts as accuracy 0; classes absent from both are left out.

  Returns:
    Scalar accuracy in [0, 1].
  """
  accuracy = per_class_accuracy(confusion)
  if not predicted_absent_as_zero:
    return jnp.nanmean(accuracy)
  present = (jnp.sum(confusion, axis=0) + jnp.sum(confusion, axis=1)) > 0
  return jnp.sum(jnp.where(present, jnp.nan_to_num(accuracy), 0.0)) / jnp.sum(present)


def kappa(confusion: jax.Array) -> jax.Array:
  """Cohen's kappa: ``(p_o - p_e) / (1 - p_e)`` with chance agreement from the marginals.

  Args:
    confusion: ``(K, K)`` confusion matrix (rows true, columns predicted).

  Returns:
    Scalar kappa in [-1, 1].
  """
  _check_confusion(confusion)
  total = jnp.sum(confusion).astype(jnp.float32)
  p_o = jnp.trace(confusion) / total
  p_e = jnp.sum(jnp.sum(confusion, axis=0) * jnp.sum(confusion, axis=1)) / total**2
  return (p_o - p_e) / (1.0 - p_e)
