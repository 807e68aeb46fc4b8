"""SR training losses: SSPSR's ``HybridLoss`` (L1 + squared spatial and spectral total variation).

Used by the Spectral Mixup multi-task network (kli8996/HSISR ``Loss.py``, which copies SSPSR,
github.com/junjun-jiang/SSPSR) for every task, and offered as an option for ESSAformer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def hybrid_loss_terms(pred: jax.Array, target: jax.Array, *, spatial_tv: float = 1e-3,
                      spectral_tv: float = 2e-3) -> dict[str, jax.Array]:
  """The three weighted terms of SSPSR's ``HybridLoss``.

  ``l1 = mean|pred - target|``;
  ``tv_spatial = w_s [sum(D_H pred)^2 / (K(H-1)W) + sum(D_W pred)^2 / (KH(W-1))] / B``;
  ``tv_spectral = w_k sum(D_K pred)^2 / ((K-1)HW) / B``. The TV terms act on the prediction only
  and use squared forward differences (official normalisation; ``w_k`` is the official 1e-3 * 2).

  Args:
    pred: predicted cubes, bands-last ``(B, H, W, K)`` with ``H, W, K >= 2``.
    target: ground-truth cubes, same shape.
    spatial_tv: ``w_s``.
    spectral_tv: ``w_k``.

  Returns:
    ``{"l1", "tv_spatial", "tv_spectral"}`` scalars.

  Raises:
    ValueError: if the shapes differ, are not 4-D, or ``H``, ``W`` or ``K`` is below 2.
  """
  if pred.ndim != 4 or pred.shape != target.shape:
    raise ValueError(f"pred, target: expected equal (B, H, W, K) shapes, got {pred.shape}, "
                     f"{target.shape}")
  b, h, w, k = pred.shape
  if min(h, w, k) < 2:
    raise ValueError(f"pred: H, W and K must be >= 2 for the TV terms, got shape {pred.shape}")
  d_h = jnp.sum(jnp.diff(pred, axis=1) ** 2) / (k * (h - 1) * w)
  d_w = jnp.sum(jnp.diff(pred, axis=2) ** 2) / (k * h * (w - 1))
  d_k = jnp.sum(jnp.diff(pred, axis=3) ** 2) / ((k - 1) * h * w)
  return {"l1": jnp.mean(jnp.abs(pred - target)),
          "tv_spatial": spatial_tv * (d_h + d_w) / b,
          "tv_spectral": spectral_tv * d_k / b}


def hybrid_loss(pred: jax.Array, target: jax.Array, *, spatial_tv: float = 1e-3,
                spectral_tv: float = 2e-3) -> jax.Array:
  """``HybridLoss(spatial_tv=True, spectral_tv=True)``: the sum of :func:`hybrid_loss_terms`.

  Args:
    pred: predicted cubes, bands-last ``(B, H, W, K)``.
    target: ground-truth cubes, same shape.
    spatial_tv: weight of the spatial TV term.
    spectral_tv: weight of the spectral TV term.

  Returns:
    The scalar loss.
  """
  terms = hybrid_loss_terms(pred, target, spatial_tv=spatial_tv, spectral_tv=spectral_tv)
  return terms["l1"] + terms["tv_spatial"] + terms["tv_spectral"]
