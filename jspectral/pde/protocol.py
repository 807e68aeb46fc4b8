"""The Neural Spectral Methods evaluation protocol: errors of predicted solution fields.

The paper reports the relative L2 error (in %) of each test solution on a uniform grid that
includes both ends, averaged over the test set. Du, Chalapathi, Krishnapriyan, ICLR 2024
(arXiv 2312.05225); official code github.com/ASK-Berkeley/Neural-Spectral-Methods.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def relative_l2(pred: jax.Array, target: jax.Array) -> jax.Array:
  """``||pred - target||_2 / ||target||_2`` per sample over all but the leading axis.

  Args:
    pred: predicted fields ``(N, ...)``, e.g. ``(N, *grid, 1)``.
    target: reference fields, same shape as ``pred``.

  Returns:
    Relative L2 errors ``(N,)`` (fractions; the paper reports their mean in percent).
  """
  axes = tuple(range(1, target.ndim))
  return jnp.sqrt(jnp.sum((pred - target) ** 2, axes) / jnp.sum(target ** 2, axes))
