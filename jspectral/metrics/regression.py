"""Regression scores: the HyperView challenge's baseline-normalised MSE, and RMSE.

The HyperView challenge (soil P, K, Mg and pH from hyperspectral field patches; Nalepa et al.,
"The Hyperview Challenge: Estimating Soil Parameters from Hyperspectral Images", ICIP 2022)
scores a model by the mean over the targets of its MSE divided by the MSE of a baseline that
predicts one constant per target. SpectralEarth (Braham et al., arXiv 2408.08447;
github.com/AABNassim/spectral_earth, ``src/models/regression_module.py: custom_mse_loss``) uses
that ratio as its training loss and validation metric, with a zero baseline on the standardised
targets of its split CSVs, computed per batch; Lightning's epoch value of the logged ``val_loss``
is the batch-size-weighted mean of the per-batch ratios (:func:`batch_mean_score`).

All functions take predictions and targets ``(N, T)`` (array-likes; integers score as floats) and
are jit-able. A target whose values all
equal the baseline has a zero denominator and scores ``inf`` or ``nan``, as in the official code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check(pred, target, baseline):
  """Validated float ``(pred (N, T), target (N, T), baseline (T,))``; zero baseline by default."""
  dtype = jnp.promote_types(jnp.result_type(jnp.asarray(pred), jnp.asarray(target)), jnp.float32)
  pred, target = jnp.asarray(pred, dtype), jnp.asarray(target, dtype)
  if pred.ndim != 2 or pred.shape != target.shape:
    raise ValueError(f"pred, target: expected equal shapes (N, T), got {pred.shape} and "
                     f"{target.shape}")
  if baseline is None:
    return pred, target, jnp.zeros(pred.shape[1], dtype)
  baseline = jnp.asarray(baseline, dtype)
  if baseline.shape != pred.shape[1:]:
    raise ValueError(f"baseline: expected shape ({pred.shape[1]},), got {baseline.shape}")
  return pred, target, baseline


def normalised_mse(pred, target, baseline=None) -> jax.Array:
  """Per-target MSE of ``pred`` over the MSE of the constant ``baseline``.

  Args:
    pred: predictions ``(N, T)``.
    target: ground truth ``(N, T)``.
    baseline: the baseline's constant prediction per target ``(T,)`` (default zeros: the mean
      of standardised targets, as the official configuration).

  Returns:
    ``(T,)`` ratios; 1 for a prediction as good as the baseline, 0 for a perfect one.

  Raises:
    ValueError: if the shapes do not match.
  """
  pred, target, baseline = _check(pred, target, baseline)
  model = jnp.sum(jnp.square(pred - target), axis=0)
  reference = jnp.sum(jnp.square(baseline - target), axis=0)
  return model / reference


def challenge_score(pred, target, baseline=None) -> jax.Array:
  """The HyperView score: :func:`normalised_mse` averaged over the targets (official
  ``custom_mse_loss``; lower is better, the baseline scores 1).

  Args:
    pred: predictions ``(N, T)``.
    target: ground truth ``(N, T)``.
    baseline: constant prediction per target ``(T,)`` (default zeros).

  Returns:
    Scalar.

  Raises:
    ValueError: if the shapes do not match.
  """
  return jnp.mean(normalised_mse(pred, target, baseline))


def batch_mean_score(pred, target, baseline=None, *, batch_size: int) -> jax.Array:
  """:func:`challenge_score` of consecutive batches, averaged with weights = batch sizes.

  The official epoch value of ``val_loss``: each batch's score uses that batch's own baseline
  MSE, so the result depends on how the split is cut into batches (the last one may be short).

  Args:
    pred: predictions ``(N, T)`` in evaluation order.
    target: ground truth ``(N, T)``.
    baseline: constant prediction per target ``(T,)`` (default zeros).
    batch_size: samples per batch (static).

  Returns:
    Scalar.

  Raises:
    ValueError: if the shapes do not match or ``batch_size < 1``.
  """
  pred, target, baseline = _check(pred, target, baseline)
  if batch_size < 1:
    raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
  n = pred.shape[0]
  batches = -(-n // batch_size)
  pad = batches * batch_size - n
  fold = lambda x: jnp.pad(x, ((0, pad), (0, 0))).reshape(batches, batch_size, x.shape[-1])
  valid = fold(jnp.ones((n, 1), pred.dtype))
  model = jnp.sum(valid * jnp.square(fold(pred) - fold(target)), axis=1)
  reference = jnp.sum(valid * jnp.square(baseline - fold(target)), axis=1)
  scores = jnp.mean(model / reference, axis=-1)
  sizes = valid[:, :, 0].sum(axis=1)
  return jnp.sum(sizes * scores) / n


def rmse(pred, target) -> jax.Array:
  """Root mean squared error over every sample and target (torchmetrics
  ``MeanSquaredError(squared=False)``, the official ``*_RMSE`` log).

  Args:
    pred: predictions ``(N, T)``.
    target: ground truth ``(N, T)``.

  Returns:
    Scalar.

  Raises:
    ValueError: if the shapes do not match.
  """
  pred, target, _ = _check(pred, target, None)
  return jnp.sqrt(jnp.mean(jnp.square(pred - target)))
