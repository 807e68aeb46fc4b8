"""Per-image fitting methods of the pansharpening toolbox: priors and zero-shot adaptation.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; github.com/matciotola/hyperspectral_pansharpening_toolbox
(``<Method>/<Method>.py``, ``<Method>/aux.py``). Each method is itself an optimisation on one
image, so each runs as one jitted loop rather than through :func:`jspectral.train.fit`.

* Per-image priors (DHP for DARN, DIP + PAN predictor for Kite): :func:`fit_prior`, one jitted
  ``lax.fori_loop``.
* Test-time adaptation: R-PNN (:func:`r_pnn_adapt`, band by band, one jitted loop per band with
  weights and Adam state carried on) and PCA-Z-PNN (:func:`pca_z_pnn`: PCA of each spectral block,
  4 components upsampled with a cubic spline, 1000 Adam steps, inverse PCA).

Official behaviour kept: R-PNN's and PCA-Z-PNN's best-loss checkpoint holds the weights *after*
the update whose pre-update loss was the lowest. Official defect kept by default: R-PNN's
iteration count at the VNIR/SWIR seam is negative (no update, ``seam="official"``);
``seam="absolute"`` uses ``|delta lambda|``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage

from jspectral.data import wald
from jspectral.pansharpening import deep, rho_pnn

NORMALISATION = 2.0 ** 16

PRIOR_RECIPES = {"dhp": dict(iterations=10_000, learning_rate=1e-2, step=0, pan_weight=0.0),
                 "dip": dict(iterations=1500, learning_rate=1e-3, step=1300, pan_weight=0.6)}



# ------------------------------------------------------------------------------------------------
# Per-image priors (DHP for DHP-DARN, DIP + PAN predictor for DIP-HyperKite)
# ------------------------------------------------------------------------------------------------

def fit_prior(kind: str, hs_lr, pan, rng: jax.Array, *, ratio: int = 6,
              iterations: int | None = None, learning_rate: float | None = None,
              prior_kwargs: dict | None = None) -> tuple[jax.Array, jax.Array]:
  """Fits one image's prior network from scratch.

  Inputs are normalised (/2^16): ``hs_lr (h, w, B)``, ``pan (H, W, 1)``. DHP: input
  ``U(0, 1) 0.1`` noise with B channels, loss ``L1(dhp_downsample(out), hs_lr)``. DIP: 32-channel
  noise, loss ``L1(dip_downsample(out), hs_lr) + 0.6 L1(PanPred(out), pan)``, the PAN predictor
  trained jointly. BatchNorm in training mode throughout, final forward included (the official
  net is never switched to eval); the prior is clipped to [0, 1]. One jitted ``lax.fori_loop``.

  Args:
    kind: ``"dhp"`` or ``"dip"`` (see ``PRIOR_RECIPES``).
    hs_lr: normalised LR cube, ``(h, w, B)``.
    pan: normalised PAN, ``(H, W, 1)``.
    rng: PRNG key (noise and initialisation).
    ratio: PAN / HS resolution ratio.
    iterations: Adam steps (default: the recipe's).
    learning_rate: Adam learning rate (default: the recipe's).
    prior_kwargs: extra :class:`deep.PriorNet` fields.

  Returns:
    ``(prior, losses)``: ``(H, W, B)`` in [0, 1] and ``(iterations,)``.

  Raises:
    ValueError: if ``kind`` is unknown or the inputs are not ``(h, w, B)`` / ``(H, W, 1)`` at
      ``ratio``.
  """
  if kind not in PRIOR_RECIPES:
    raise ValueError(f"kind: expected 'dhp' or 'dip', got {kind!r}")
  rec = PRIOR_RECIPES[kind]
  iterations = rec["iterations"] if iterations is None else iterations
  learning_rate = rec["learning_rate"] if learning_rate is None else learning_rate
  hs_lr, pan = jnp.asarray(hs_lr, jnp.float32), jnp.asarray(pan, jnp.float32)
  if hs_lr.ndim != 3 or pan.ndim != 3 or pan.shape[-1] != 1:
    raise ValueError(f"hs_lr, pan: expected (h, w, B) and (H, W, 1), got {hs_lr.shape}, "
                     f"{pan.shape}")
  wald.check_hs_pan(hs_lr[None], pan[None], ratio)
  bands = hs_lr.shape[-1]
  net = deep.PriorNet(nbands=bands, kind=kind, **(prior_kwargs or {}))
  pan_net = deep.PanPredictionNetwork(nbands=bands)
  k_noise, k_net, k_pan = jax.random.split(rng, 3)
  # DIP's get_noise has shape (1, 32, W, H): identical to (H, W) for the square toolbox patches.
  depth = 32 if kind == "dip" else bands
  z = 0.1 * jax.random.uniform(k_noise, (1,) + pan.shape[:2] + (depth,), jnp.float32)
  schedule = (optax.piecewise_constant_schedule(learning_rate, {rec["step"]: 0.1})
              if rec["step"] else learning_rate)
  tx = optax.adam(schedule)

  @jax.jit
  def initial(z):
    variables = net.init(k_net, z, train=False)
    params = {"prior": deep.official_init(variables["params"], k_net)}
    if kind == "dip":
      pan_params = pan_net.init(k_pan, jnp.zeros((1, 8, 8, bands)))["params"]
      params["pan"] = deep.official_init(pan_params, k_pan)
    return params, variables["batch_stats"]

  def forward(p, s, z):
    out, upd = net.apply({"params": p["prior"], "batch_stats": s}, z, train=True,
                         mutable=["batch_stats"])
    return out, upd["batch_stats"]

  def loss_fn(p, s, z, hs_lr, pan):
    out, s = forward(p, s, z)
    if kind == "dhp":
      loss = jnp.mean(jnp.abs(deep.dhp_downsample(out, ratio) - hs_lr[None]))
    else:
      loss = (jnp.mean(jnp.abs(deep.dip_downsample(out, ratio) - hs_lr[None]))
              + rec["pan_weight"] * jnp.mean(jnp.abs(
                  pan_net.apply({"params": p["pan"]}, out) - pan[None])))
    return loss, s

  # The image and the noise are arguments, not closed-over constants: XLA would fold them.
  @jax.jit
  def run(params, stats, z, hs_lr, pan):
    def body(i, c):
      p, s, o, trace = c
      (loss, s), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s, z, hs_lr, pan)
      u, o = tx.update(g, o, p)
      return optax.apply_updates(p, u), s, o, trace.at[i].set(loss)

    p, s, _, trace = jax.lax.fori_loop(0, iterations, body,
                                       (params, stats, tx.init(params), jnp.zeros(iterations)))
    return jnp.clip(forward(p, s, z)[0][0], 0.0, 1.0), trace

  return run(*initial(z), z, hs_lr, pan)


# ------------------------------------------------------------------------------------------------
# R-PNN: pre-training task and band-by-band test-time adaptation
# ------------------------------------------------------------------------------------------------

R_PNN_SCOPE = 6            # net_scope: reflect padding of the input (valid convs 7/5/3)


def rpnn_iterations(wavelengths, *, first: int = 20, per_10nm: int = 15, cap: int = 80,
                    seam: str = "official") -> np.ndarray:
  """Per-band iteration counts: ``first`` for band 0, else ``min((dl // 10 + 1) per_10nm, cap)``.

  ``seam="official"`` keeps the toolbox's signed ``dl``: at the VNIR/SWIR seam (wavelengths going
  back) the count is negative and the band gets no update (returned as 0); ``"absolute"`` uses
  ``|dl|`` (the seam band is tuned like any other).

  Args:
    wavelengths: band centres in nm, ``(B,)``.
    first: iterations of band 0.
    per_10nm: iterations per 10 nm step.
    cap: maximum per band.
    seam: ``"official"`` or ``"absolute"``.

  Returns:
    ``(B,)`` int64 counts.

  Raises:
    ValueError: if ``seam`` is unknown.
  """
  wl = np.asarray(wavelengths, np.float64).reshape(-1)
  if seam not in ("official", "absolute"):
    raise ValueError(f"seam: expected 'official' or 'absolute', got {seam!r}")
  dl = np.diff(wl)
  dl = np.abs(dl) if seam == "absolute" else dl
  counts = np.minimum((dl // 10 + 1) * per_10nm, cap).astype(np.int64)
  return np.maximum(np.concatenate([[first], counts]), 0)


def rpnn_losses(module, params, inp, band_lr, alpha, ratio):
  """R-PNN's ``L_spec + alpha L_struct`` on a reflect-padded ``inp = [band, pan]``.

  Args:
    module: the :class:`deep.RPNNToolbox`.
    params: its params.
    inp: :func:`pad_input` output, ``(1, H + 12, W + 12, 2)``.
    band_lr: the LR band, ``(1, H / r, W / r, 1)``.
    alpha: structural-loss weight.
    ratio: PAN / HS resolution ratio r.

  Returns:
    ``(loss, (spec, struct))``, scalars.
  """
  out = module.apply({"params": params}, inp)
  pan = inp[:, R_PNN_SCOPE:-R_PNN_SCOPE, R_PNN_SCOPE:-R_PNN_SCOPE, 1:]
  thr = rho_pnn.correlation_mask(inp[..., :1], inp[..., 1:], ratio)
  thr = thr[:, R_PNN_SCOPE:-R_PNN_SCOPE, R_PNN_SCOPE:-R_PNN_SCOPE]
  spec = rho_pnn.spectral_loss(out, band_lr, ratio)
  struct = rho_pnn.spatial_loss(out, pan, ratio, jax.lax.stop_gradient(thr),
                                apply_threshold=True, absolute=False, clip="all")
  return spec + alpha * struct.astype(spec.dtype), (spec, struct)


def pad_input(band, pan):
  """``[band, pan]`` reflect-padded by ``R_PNN_SCOPE`` (the input of :class:`deep.RPNNToolbox`).

  Args:
    band: ``(N, H, W, 1)``.
    pan: ``(N, H, W, 1)``.

  Returns:
    ``(N, H + 12, W + 12, 2)``.
  """
  x = jnp.concatenate([band, pan], -1)
  s = R_PNN_SCOPE
  return jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="reflect")



@dataclasses.dataclass
class AdaptationResult:
  """Output of :func:`r_pnn_adapt`.

  Attributes:
    fused: ``(H, W, B)`` in DN.
    iterations: ``(B,)`` updates per band.
    loss_spec: per band, the spectral losses of its updates.
    loss_struct: per band, the structural losses of its updates.
  """
  fused: np.ndarray          # (H, W, B) in DN
  iterations: np.ndarray     # (B,) updates per band
  loss_spec: list[np.ndarray]
  loss_struct: list[np.ndarray]


def r_pnn_adapt(params, hs_lr, hs_up, pan, wavelengths, *, ratio: int = 6,
                learning_rate: float = 1e-5, alphas: tuple[float, float] = (0.5, 0.25),
                alpha_switch_nm: float = 700.0, seam: str = "official",
                iterations: Sequence[int] | None = None) -> AdaptationResult:
  """R-PNN's target adaptation and prediction on one scene (``R_PNN.py``).

  One network and one Adam state for all bands; band b runs ``rpnn_iterations`` updates of
  ``L_spec + alpha L_struct`` (alpha 0.5, then 0.25 from the first band above 700 nm) in one jitted
  ``lax.while_loop``, checkpoints the weights after every update whose pre-update loss is the
  lowest so far, predicts the band with that checkpoint and continues from it (a band without
  updates keeps the previous weights). Output x 2^16, rounded, clipped to [0, 2^16].

  Args:
    params: starting weights of :class:`deep.RPNNToolbox` (official / pre-trained).
    hs_lr: LR cube in DN, ``(h, w, B)``.
    hs_up: upsampled cube in DN, ``(H, W, B)``.
    pan: PAN in DN, ``(H, W)`` or ``(H, W, 1)``.
    wavelengths: ``(B,)`` nm.
    ratio: PAN / HS resolution ratio.
    learning_rate: Adam learning rate.
    alphas: structural-loss weights below / above ``alpha_switch_nm``.
    alpha_switch_nm: wavelength from which ``alphas[1]`` applies.
    seam: see :func:`rpnn_iterations`.
    iterations: override counts, ``(B,)``.

  Returns:
    An :class:`AdaptationResult`.

  Raises:
    ValueError: if the inputs do not match in size at ``ratio``, ``wavelengths`` does not have B
      values, or ``seam`` is unknown.
  """
  hs_lr_b, _ = wald.as_batch(hs_lr, "hs_lr")
  pan_b, _ = wald.as_pan_batch(pan)
  hs_up_b, _ = wald.as_batch(hs_up, "hs_up")
  wald.check_hs_pan(hs_lr_b, pan_b, ratio)
  nb = hs_lr_b.shape[-1]
  wl = np.asarray(wavelengths, np.float64).reshape(-1)
  if wl.size != nb:
    raise ValueError(f"wavelengths: expected {nb} values, got {wl.size}")
  counts = (rpnn_iterations(wl, seam=seam) if iterations is None
            else np.asarray(iterations, np.int64))
  hs_lr_b, hs_up_b, pan_b = (jnp.asarray(a, jnp.float32) / NORMALISATION
                             for a in (hs_lr_b, hs_up_b, pan_b))
  module = deep.RPNNToolbox()
  tx = optax.adam(learning_rate)
  cap = max(int(counts.max()), 1)

  @jax.jit
  def tune(p, o, inp, band_lr, n, alpha):
    loss_fn = lambda q: rpnn_losses(module, q, inp, band_lr, alpha, ratio)

    def body(c):
      (loss, (spec, struct)), g = jax.value_and_grad(loss_fn, has_aux=True)(c["p"])
      u, o = tx.update(g, c["o"], c["p"])
      p = optax.apply_updates(c["p"], u)
      better = loss < c["min"]
      best = jax.tree_util.tree_map(lambda b, w: jnp.where(better, w, b), c["best"], p)
      return dict(p=p, o=o, best=best, min=jnp.where(better, loss, c["min"]), i=c["i"] + 1,
                  ls=c["ls"].at[c["i"]].set(spec), lt=c["lt"].at[c["i"]].set(struct))

    init = dict(p=p, o=o, best=p, min=jnp.asarray(jnp.inf, jnp.float32), i=jnp.asarray(0),
                ls=jnp.zeros(cap), lt=jnp.zeros(cap))
    c = jax.lax.while_loop(lambda c: c["i"] < n, body, init)
    return c["best"], c["o"], module.apply({"params": c["best"]}, inp)[..., 0], c["ls"], c["lt"]

  opt_state, alpha, bands, ls, lt = tx.init(params), alphas[0], [], [], []
  for b in range(nb):
    if wl[b] > alpha_switch_nm:
      alpha = alphas[1]
    inp = pad_input(hs_up_b[..., b:b + 1], pan_b)
    params, opt_state, out, spec, struct = tune(params, opt_state, inp, hs_lr_b[..., b:b + 1],
                                                jnp.asarray(counts[b]), jnp.float32(alpha))
    bands.append(np.asarray(out[0]))
    ls.append(np.asarray(spec)[:counts[b]])
    lt.append(np.asarray(struct)[:counts[b]])
  fused = np.clip(np.round(np.stack(bands, -1).astype(np.float64) * NORMALISATION), 0,
                  NORMALISATION)
  return AdaptationResult(fused, counts, ls, lt)


# ------------------------------------------------------------------------------------------------
# PCA-Z-PNN
# ------------------------------------------------------------------------------------------------

def pca(hs_lr) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``PCA_Z_PNN/aux.pca``: principal components of a cube.

  Covariance ``Xc Xc^T / (hw - 1)``, ``U`` from its SVD, projection ``pcs = -U^T Xc``.

  Args:
    hs_lr: ``(h, w, B)``.

  Returns:
    ``(pcs (h, w, B), U (B, B), mean (B,))``.

  Raises:
    ValueError: if ``hs_lr`` is not 3-D.
  """
  x = jnp.asarray(hs_lr)
  if x.ndim != 3:
    raise ValueError(f"hs_lr: expected (h, w, B), got shape {x.shape}")
  h, w, b = x.shape
  flat = x.reshape(-1, b).T
  mean = jnp.mean(flat, axis=1)
  centred = flat - mean[:, None]
  u, _, _ = jnp.linalg.svd(centred @ centred.T / (h * w - 1))
  return (-u.T @ centred).T.reshape(h, w, b), u, mean


def inverse_pca(pcs, u, mean) -> jax.Array:
  """``inverse_pca``: ``-U pcs + mean``.

  Args:
    pcs: ``(H, W, B)``.
    u: ``(B, B)``.
    mean: ``(B,)``.

  Returns:
    ``(H, W, B)``.
  """
  h, w, b = pcs.shape
  return ((-u @ pcs.reshape(-1, b).T) + mean[:, None]).T.reshape(h, w, b)


def spline_upsample(x, ratio: int) -> np.ndarray:
  """``skimage.transform.rescale(x, ratio, order=3, channel_axis=-1)`` for upscaling, in NumPy.

  Cubic B-spline interpolation on the pixel-centre grid (``scipy.ndimage.zoom`` with
  ``grid_mode=True``), mirror boundary (skimage's ``mode="reflect"``), output clipped to the
  input's range (skimage's ``clip=True``).

  Args:
    x: ``(h, w, C)``.
    ratio: integer factor r.

  Returns:
    ``(r h, r w, C)`` float64.

  Raises:
    ValueError: if ``x`` is not 3-D.
  """
  x = np.asarray(x, np.float64)
  if x.ndim != 3:
    raise ValueError(f"x: expected (h, w, C), got shape {x.shape}")
  out = np.stack([scipy.ndimage.zoom(x[..., c], ratio, order=3, mode="mirror", grid_mode=True)
                  for c in range(x.shape[-1])], -1)
  return np.clip(out, x.min(), x.max())


@dataclasses.dataclass
class PCAZPNNResult:
  """Output of :func:`pca_z_pnn`.

  Attributes:
    fused: ``(H, W, B)`` float64 DN (not rounded, as the toolbox returns it).
    split: first band with wavelength >= last_wl (shared by both blocks).
    loss_spec: per block, the ``(iterations,)`` spectral losses.
    loss_struct: per block, the ``(iterations,)`` structural losses.
  """
  fused: np.ndarray          # (H, W, B) float64 DN (not rounded, as the toolbox returns it)
  split: int                 # first band with wavelength >= last_wl (shared by both blocks)
  loss_spec: list[np.ndarray]
  loss_struct: list[np.ndarray]


def pca_z_pnn(hs_lr, pan, wavelengths, rng: jax.Array, *, ratio: int = 6,
              ncomponents: int = 4, iterations: int = 1000, learning_rate: float = 5e-5,
              alphas: tuple[float, float] = (0.5, 0.25), last_wl: float = 770.0,
              params: Sequence[Any] | None = None) -> PCAZPNNResult:
  """PCA-Z-PNN on one scene (``PCA_Z_PNN.py``): per spectral block, PCA, zero-shot fit, inverse.

  Blocks: bands ``0..s`` and ``s..B-1`` with ``s`` the first band at ``>= last_wl`` nm (band
  ``s`` is taken from block 1). Per block: PCA of the LR block; the first ``ncomponents`` PCs
  upsampled by :func:`spline_upsample`, divided by ``sqrt(B_block) 2^16`` (PAN by 2^16); a fresh
  :class:`deep.PCAZPNN` (``params[block]`` if given) trained ``iterations`` Adam steps on
  ``L_spec`` (61-tap MTF, all components) + ``alpha L_struct`` (R-PNN structural loss on PC 1 vs
  PAN with the threshold mask); best-loss checkpoint; the adapted components replace the
  upsampled ones and the block is inverse-transformed (remaining PCs upsampled only).

  Args:
    hs_lr: LR cube in DN, ``(h, w, B)``.
    pan: PAN in DN, ``(H, W)`` or ``(H, W, 1)``.
    wavelengths: ``(B,)`` nm.
    rng: PRNG key of the initialisation (unused with ``params``).
    ratio: PAN / HS resolution ratio.
    ncomponents: adapted principal components per block.
    iterations: Adam steps per block.
    learning_rate: Adam learning rate.
    alphas: structural-loss weight per block.
    last_wl: wavelength (nm) of the block split.
    params: optional starting params per block.

  Returns:
    A :class:`PCAZPNNResult`.

  Raises:
    ValueError: if the inputs do not match in size at ``ratio``, ``wavelengths`` does not have B
      values, or a block has fewer than ``ncomponents`` bands.
  """
  hs_lr_b, _ = wald.as_batch(hs_lr, "hs_lr")
  pan_b, _ = wald.as_pan_batch(pan)
  wald.check_hs_pan(hs_lr_b, pan_b, ratio)
  wl = np.asarray(wavelengths, np.float64).reshape(-1)
  nb = hs_lr_b.shape[-1]
  if wl.size != nb:
    raise ValueError(f"wavelengths: expected {nb} values, got {wl.size}")
  split = int(np.argmax(wl >= last_wl)) if np.any(wl >= last_wl) else nb - 1
  blocks = [(0, split + 1), (split, nb)]
  if min(e - s for s, e in blocks) < ncomponents:
    raise ValueError(f"wavelengths: both spectral blocks need >= {ncomponents} bands, got "
                     f"{[e - s for s, e in blocks]} (split at band {split})")
  module = deep.PCAZPNN(ncomponents=ncomponents)
  tx = optax.adam(learning_rate)
  pan_n = jnp.asarray(pan_b, jnp.float32) / NORMALISATION
  hs_lr64 = np.asarray(hs_lr_b[0], np.float64)

  @jax.jit
  def fit(p, inp, ref, alpha):
    thr = rho_pnn.correlation_mask(inp[..., :1], inp[..., -1:], ratio)

    def loss_fn(q):
      out = module.apply({"params": q}, inp)
      spec = rho_pnn.spectral_loss(out, ref, ratio)
      struct = rho_pnn.spatial_loss(out[..., :1], inp[..., -1:], ratio,
                                    jax.lax.stop_gradient(thr), apply_threshold=True,
                                    absolute=False, clip="all")
      return spec + alpha * struct.astype(spec.dtype), (spec, struct)

    def body(i, c):
      q, o, best, low, ls, lt = c
      (loss, (spec, struct)), g = jax.value_and_grad(loss_fn, has_aux=True)(q)
      u, o = tx.update(g, o, q)
      q = optax.apply_updates(q, u)
      better = loss < low
      best = jax.tree_util.tree_map(lambda b, w: jnp.where(better, w, b), best, q)
      return q, o, best, jnp.where(better, loss, low), ls.at[i].set(spec), lt.at[i].set(struct)

    zeros = jnp.zeros(iterations)
    _, _, best, _, ls, lt = jax.lax.fori_loop(
        0, iterations, body, (p, tx.init(p), p, jnp.asarray(jnp.inf, jnp.float32), zeros, zeros))
    return module.apply({"params": best}, inp), ls, lt

  fused, ls_all, lt_all = [], [], []
  for k, (s, e) in enumerate(blocks):
    pcs, u, mean = pca(hs_lr64[..., s:e])
    scale = math.sqrt(e - s) * NORMALISATION
    pcs_up = spline_upsample(pcs, ratio)
    inp = jnp.concatenate([jnp.asarray(pcs_up[None, ..., :ncomponents] / scale, jnp.float32),
                           pan_n], -1)
    ref = jnp.asarray(np.asarray(pcs)[None, ..., :ncomponents] / scale, jnp.float32)
    p = (params[k] if params is not None else deep.official_init(
        module.init(jax.random.fold_in(rng, 2 * k), inp)["params"],
        jax.random.fold_in(rng, 2 * k + 1)))
    out, ls, lt = fit(p, inp, ref, jnp.float32(alphas[k]))
    pcs_up[..., :ncomponents] = np.asarray(out[0], np.float64) * scale
    block = np.asarray(inverse_pca(jnp.asarray(pcs_up), u, mean))
    fused.append(block[..., :-1] if k == 0 else block)
    ls_all.append(np.asarray(ls))
    lt_all.append(np.asarray(lt))
  return PCAZPNNResult(np.concatenate(fused, -1), split, ls_all, lt_all)
