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
  """OA, AA (official predicted-but-absent rule) and kappa, x100 as the paper reports them."""
  confusion = metrics.confusion_matrix(jnp.asarray(labels), jnp.asarray(pred), num_classes)
  return {"OA": 100 * float(metrics.overall_accuracy(confusion)),
          "AA": 100 * float(metrics.average_accuracy(confusion, predicted_absent_as_zero=True)),
          "kappa": 100 * float(metrics.kappa(confusion))}
