"""LoLA-SpecViT's evaluation protocol: OA, AA and kappa in percent, with the official AA rule.

The official ``AA_andEachClassAccuracy`` divides the confusion diagonal by the row sums and averages
with ``nan_to_num``, so a class that is predicted but absent from the test labels scores 0
(:func:`jspectral.metrics.average_accuracy` with ``predicted_absent_as_zero=True``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jspectral import metrics


def scores(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
  """OA, AA and kappa in percent, as the paper reports them.

  AA follows the official ``AA_andEachClassAccuracy`` rule: a class that is predicted but absent
  from ``labels`` scores 0 (``predicted_absent_as_zero=True``).

  Args:
    pred: predicted class indices, integer array of shape ``(M,)``.
    labels: true class indices, integer array of shape ``(M,)``.
    num_classes: number of classes ``K``; indices lie in ``[0, K)``.

  Returns:
    ``{"OA": ..., "AA": ..., "kappa": ...}``, Python floats, each x100.
  """
  confusion = metrics.confusion_matrix(jnp.asarray(labels), jnp.asarray(pred), num_classes)
  return {"OA": 100 * float(metrics.overall_accuracy(confusion)),
          "AA": 100 * float(metrics.average_accuracy(confusion, predicted_absent_as_zero=True)),
          "kappa": 100 * float(metrics.kappa(confusion))}
