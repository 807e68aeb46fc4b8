"""Evaluation protocols of the toolbox and of rho-PNN over :mod:`jspectral.metrics.pansharpening`.

Toolbox (Ciotola et al., arXiv 2407.01355;
github.com/matciotola/hyperspectral_pansharpening_toolbox, ``Metrics/evaluation.py``). Reduced
resolution (Wald): crop ``RR_CROP`` pixels from the borders, clip the fused image to
``[0, 2^16]``, then ERGAS, SAM and Q2n against the ground truth. Full resolution: D_lambda (Khan),
D_sR and QNR = (1 - D_lambda)(1 - D_sR).

rho-PNN (Guarino et al., IEEE TGRS 2025, arXiv 2505.16658; github.com/giu-guarino/rho-PNN,
``Metrics/evaluation.py``, ``Metrics/metrics_fr.py``): the same RR crop plus the band-averaged
UIQI Q; at full resolution D_lambda (Khan), the classic D_s with the LR PAN made by a bicubic
``imresize(pan, 1/ratio)`` (:func:`d_s_bicubic`, not the toolbox's MTF degradation), D_sR,
D_rho, and HQNR = (1 - D_lambda)(1 - D_s).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jspectral.data import wald
from jspectral.metrics.pansharpening import (
  d_lambda_khan,
  d_rho,
  d_s,
  d_sr,
  ergas,
  hqnr,
  pair_batches,
  q2n,
  q_avg,
  sam,
)
from jspectral.pansharpening import resample

RR_CROP = (10, 11)


@functools.partial(jax.jit, static_argnames=("ratio", "crop", "max_value", "block_grid"))
def evaluation_rr(fused, gt, ratio: int, *, crop: tuple[int, int] | None = RR_CROP,
                  max_value: float = 2.0 ** 16,
                  block_grid: str = "toolbox") -> dict[str, jax.Array]:
  """Reduced-resolution scores of the toolbox's ``evaluation_rr``.

  Crops ``crop`` pixels from the borders, clips the fused image to ``[0, max_value]``, then ERGAS,
  SAM and Q2n against the ground truth.

  Args:
    fused: fused image(s) in DN, ``(H, W, B)`` or ``(N, H, W, B)``.
    gt: reference image(s), same shape.
    ratio: PAN / HS resolution ratio (ERGAS).
    crop: ``(top_left, bottom_right)`` border crop (default ``RR_CROP``); ``None`` for none.
    max_value: upper clip of the fused image (2^16).
    block_grid: Q2n's block grid (``"toolbox"`` or ``"clamped"``, see ``q2n_map``).

  Returns:
    ``{"ERGAS", "SAM", "Q2n"}``, scalars averaged over the batch.
  """
  f, g, _ = pair_batches(fused, gt)
  if crop is not None:
    top, bottom = crop
    f, g = f[:, top:-bottom, top:-bottom], g[:, top:-bottom, top:-bottom]
  f = jnp.clip(f, 0.0, max_value)
  return {"ERGAS": jnp.mean(ergas(f, g, ratio)), "SAM": jnp.mean(sam(f, g)),
          "Q2n": jnp.mean(q2n(f, g, block_grid=block_grid))}


@functools.partial(jax.jit, static_argnames=("ratio", "block_grid"))
def evaluation_fr(fused, pan, ms_lr, ratio: int, *,
                  block_grid: str = "toolbox") -> dict[str, jax.Array]:
  """Full-resolution scores of the toolbox's ``evaluation_fr``.

  Args:
    fused: fused image(s) ``(H, W, B)`` or ``(N, H, W, B)``.
    pan: panchromatic image(s) ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.
    ms_lr: low-resolution HS image(s) ``(H / ratio, W / ratio, B)`` (batched like ``fused``).
    ratio: PAN / HS resolution ratio.
    block_grid: D_lambda's Q2n block grid (``"toolbox"`` or ``"clamped"``).

  Returns:
    ``{"D_lambda", "D_sR", "QNR"}``, scalars averaged over the batch: D_lambda (Khan), D_sR and
    ``QNR = (1 - D_lambda)(1 - D_sR)``.
  """
  dl = jnp.mean(d_lambda_khan(fused, ms_lr, ratio, block_grid=block_grid))
  dsr = jnp.mean(d_sr(fused, pan))
  return {"D_lambda": dl, "D_sR": dsr, "QNR": hqnr(dl, dsr)}


def bicubic_pan_lr(pan, ratio: int) -> jax.Array:
  """rho-PNN's LR PAN for D_s: MATLAB-style bicubic ``imresize(pan, 1/ratio)``, run in float32.

  The toolbox's ``Utils/imresize_bicubic.py`` (which rho-PNN imports) always computes in float32
  and casts back.

  Args:
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.
    ratio: resolution ratio.

  Returns:
    ``(N, ceil(H / ratio), ceil(W / ratio), 1)`` in ``pan``'s dtype.
  """
  p, _ = wald.as_pan_batch(pan)
  return resample.imresize(p.astype(jnp.float32), 1.0 / ratio).astype(p.dtype)


@functools.partial(jax.jit, static_argnames=("ratio",))
def d_s_bicubic(fused, pan, ms_lr, ratio: int) -> jax.Array:
  """rho-PNN's full-resolution D_s: classic D_s with the bicubic-resized PAN as LR reference.

  Args:
    fused: ``(H, W, C)`` or ``(N, H, W, C)``.
    pan: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` at the fused resolution.
    ms_lr: ``(H / ratio, W / ratio, C)`` (batched like ``fused``).
    ratio: resolution ratio.

  Returns:
    Scalar or ``(N,)``.
  """
  return d_s(fused, pan, ms_lr, ratio, pan_lr=bicubic_pan_lr(pan, ratio))


@functools.partial(jax.jit, static_argnames=("ratio", "crop"))
def evaluation_rho_pnn_rr(fused, gt, ratio: int, *,
                          crop: tuple[int, int] | None = RR_CROP) -> dict[str, jax.Array]:
  """rho-PNN's ``evaluation_rr``: the toolbox's RR scores plus the band-averaged UIQI ``Q``.

  Args:
    fused: fused image(s) in DN, ``(H, W, B)`` or ``(N, H, W, B)``.
    gt: reference image(s), same shape.
    ratio: PAN / HS resolution ratio.
    crop: border crop as in :func:`evaluation_rr`.

  Returns:
    ``{"ERGAS", "SAM", "Q", "Q2n"}``, scalars averaged over the batch.
  """
  f, g, _ = pair_batches(fused, gt)
  scores = evaluation_rr(f, g, ratio, crop=crop)
  if crop is not None:
    top, bottom = crop
    f, g = f[:, top:-bottom, top:-bottom], g[:, top:-bottom, top:-bottom]
  scores["Q"] = jnp.mean(q_avg(jnp.clip(f, 0.0, 2.0 ** 16), g))
  return scores


@functools.partial(jax.jit, static_argnames=("ratio",))
def evaluation_rho_pnn_fr(fused, pan, ms_lr, ratio: int) -> dict[str, jax.Array]:
  """rho-PNN's full-resolution protocol.

  Args:
    fused: fused image(s) ``(H, W, B)`` or ``(N, H, W, B)``.
    pan: panchromatic image(s) ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.
    ms_lr: low-resolution HS image(s) ``(H / ratio, W / ratio, B)`` (batched like ``fused``).
    ratio: PAN / HS resolution ratio.

  Returns:
    ``{"D_lambda", "D_s", "D_sR", "D_rho", "HQNR"}``, scalars averaged over the batch; D_s is
    :func:`d_s_bicubic` and ``HQNR = (1 - D_lambda)(1 - D_s)``.
  """
  dl = jnp.mean(d_lambda_khan(fused, ms_lr, ratio))
  ds = jnp.mean(d_s_bicubic(fused, pan, ms_lr, ratio))
  return {"D_lambda": dl, "D_s": ds, "D_sR": jnp.mean(d_sr(fused, pan)),
          "D_rho": jnp.mean(d_rho(fused, pan, ratio)), "HQNR": hqnr(dl, ds)}
