"""The toolbox's evaluation protocols over :mod:`jspectral.metrics.pansharpening`.

Reduced resolution (Wald): crop ``RR_CROP`` pixels from the borders, clip the fused image to
``[0, 2^16]``, then ERGAS, SAM and Q2n against the ground truth. Full resolution: D_lambda (Khan),
D_sR and QNR. Reference: Ciotola et al., arXiv 2407.01355;
github.com/matciotola/hyperspectral_pansharpening_toolbox (``Metrics/evaluation.py``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jspectral.metrics.pansharpening import d_lambda_khan, d_sr, ergas, hqnr, pair_batches, q2n, sam

RR_CROP = (10, 11)



@functools.partial(jax.jit, static_argnames=("ratio", "crop", "max_value"))
def evaluation_rr(fused, gt, ratio: int, *, crop: tuple[int, int] | None = RR_CROP,
                  max_value: float = 2.0 ** 16) -> dict[str, jax.Array]:
  """Reduced-resolution scores of the toolbox's ``evaluation_rr``.

  Crops ``crop`` pixels from the borders, clips the fused image to ``[0, max_value]``, then ERGAS,
  SAM and Q2n against the ground truth.

  Args:
    fused: fused image(s) in DN, ``(H, W, B)`` or ``(N, H, W, B)``.
    gt: reference image(s), same shape.
    ratio: PAN / HS resolution ratio (ERGAS).
    crop: ``(top_left, bottom_right)`` border crop (default ``RR_CROP``); ``None`` for none.
    max_value: upper clip of the fused image (2^16).

  Returns:
    ``{"ERGAS", "SAM", "Q2n"}``, scalars averaged over the batch.
  """
  f, g, _ = pair_batches(fused, gt)
  if crop is not None:
    top, bottom = crop
    f, g = f[:, top:-bottom, top:-bottom], g[:, top:-bottom, top:-bottom]
  f = jnp.clip(f, 0.0, max_value)
  return {"ERGAS": jnp.mean(ergas(f, g, ratio)), "SAM": jnp.mean(sam(f, g)),
          "Q2n": jnp.mean(q2n(f, g))}


@functools.partial(jax.jit, static_argnames=("ratio",))
def evaluation_fr(fused, pan, ms_lr, ratio: int) -> dict[str, jax.Array]:
  """Full-resolution scores of the toolbox's ``evaluation_fr``.

  Args:
    fused: fused image(s) ``(H, W, B)`` or ``(N, H, W, B)``.
    pan: panchromatic image(s) ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.
    ms_lr: low-resolution HS image(s) ``(H / ratio, W / ratio, B)`` (batched like ``fused``).
    ratio: PAN / HS resolution ratio.

  Returns:
    ``{"D_lambda", "D_sR", "QNR"}``, scalars averaged over the batch: D_lambda (Khan), D_sR and
    ``QNR = (1 - D_lambda)(1 - D_sR)``.
  """
  dl = jnp.mean(d_lambda_khan(fused, ms_lr, ratio))
  dsr = jnp.mean(d_sr(fused, pan))
  return {"D_lambda": dl, "D_sR": dsr, "QNR": hqnr(dl, dsr)}
