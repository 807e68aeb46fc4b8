"""rho-PNN: zero-shot hyperspectral pansharpening with hysteresis-based tuning of the spatial loss.

Reference: G. Guarino, M. Ciotola, G. Vivone, G. Poggi, G. Scarpa, "Zero-Shot Hyperspectral
Pansharpening Using Hysteresis-Based Tuning for Spectral Quality Control", IEEE TGRS 63 (2025),
arXiv 2505.16658; official code github.com/giu-guarino/rho-PNN (commit 633a13d). The network and
losses descend from R-PNN (toolbox ``R_PNN/``), whose threshold-masked structural loss is
:func:`spatial_loss` with ``absolute=False, apply_threshold=True``.

The procedure as the official ``main.py`` runs it:
  * one lightweight network (:class:`RPNN`, 80,849 parameters) processes one band at a time, input
    ``[upsampled HS band, PAN]`` bands-last, output the band plus a residual;
  * stage A (pre-training on band 0 tiles): A1, the "model ensemble", leaves the weights unchanged
    in the released code (each copy's optimiser holds other tensors); reproduced by default
    (``ensemble="official"``), a working average of independently trained copies with
    ``ensemble="working"``. A2 trains with the hysteresis switch at beta 0.5, ends on EMA weights;
  * stage B (:func:`tune_band`): per band, one jitted ``lax.while_loop`` with weights and Adam state
    carried from the previous band; the spectral loss drives a hysteresis switch of the spatial term
    between ``gamma * gamma_l * min_spec`` and ``gamma * min_spec`` (``min_spec`` = the
    interpolator's own spectral loss), the spatial weight is found once per band by
    :func:`beta_search`, the budget comes from :func:`adaptive_epochs`, and the band is produced by
    the EMA weights (or the best-L_s checkpoint / last weights, as the official code decides).

Deliberate choices: the spatial loss ignores its threshold map by default, exactly like the
released ``StructuralLoss`` (``apply_threshold=True`` gives the paper's masked form); the local
correlation runs in float64 when x64 is enabled (float32 otherwise); FR salient tiles (MobileNetV3
features + k-means in the official code) are an input (``tile_indices``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jspectral.data import wald
from jspectral.metrics import pansharpening as indices
from jspectral.nn import canonical_conv
from jspectral.nn.model_spec import ModelSpec
from jspectral.pansharpening import deep

NORMALISATION = 2.0 ** 16


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RhoPNNConfig:
  """Hyper-parameters of ``config_dict.py`` (defaults: the RR set; :meth:`full_resolution`).

  Attributes:
    gamma: upper hysteresis limit factor on the spectral loss.
    gamma_l: lower limit factor (lower limit ``gamma * gamma_l``).
    beta_0: initial spatial weight of the beta search.
    epsilon: tolerated spectral-loss increase in the beta search.
    ns: active steps after which a band stops.
    eta: budget factor of :func:`adaptive_epochs`.
    learning_rate: Adam learning rate.
    pretrain_tile: stage-A tile side.
    pretrain_epochs: stage-A epochs.
    pretrain_beta: stage-A spatial weight.
    pretrain_batch: stage-A batch size.
    tile: stage-B tile side.
    ema_decay: EMA decay of the weights.
    ratio: PAN / HS resolution ratio.
    spectral_kernel_size: taps of the spectral-loss MTF.
    ensemble: ``"official"`` (no-op, released code), ``"working"`` or ``"none"``.
    ensemble_copies: copies of the working ensemble.
    ensemble_epochs: epochs per ensemble copy.
    float64_correlation: :func:`fuse` enables x64 so the spatial loss's local correlation runs
      in float64 as in the official ``xcorr_torch`` (weights, inputs and the spectral loss stay
      float32); False keeps everything float32.
  """

  gamma: float = 0.62
  gamma_l: float = 0.90
  beta_0: float = 1.0
  epsilon: float = 1.003
  ns: int = 5
  eta: float = 30.0
  learning_rate: float = 1e-5
  pretrain_tile: int = 90
  pretrain_epochs: int = 300
  pretrain_beta: float = 0.5
  pretrain_batch: int = 4
  tile: int = 300
  ema_decay: float = 0.95
  ratio: int = 6
  spectral_kernel_size: int = 61
  ensemble: str = "official"          # "official" (no-op, released code) | "working" | "none"
  ensemble_copies: int = 10
  ensemble_epochs: int = 10
  float64_correlation: bool = True

  @classmethod
  def full_resolution(cls, **overrides) -> RhoPNNConfig:
    """The full-resolution (FR) set.

    Args:
      **overrides: fields to change on top of it.

    Returns:
      A :class:`RhoPNNConfig`.
    """
    fr = dict(gamma=0.65, gamma_l=0.90, beta_0=2.0, epsilon=1.007, ns=20, eta=30.0,
              pretrain_tile=120)
    return cls(**{**fr, **overrides})

  @property
  def limits(self) -> tuple[float, float]:
    """The hysteresis limit factors.

    Returns:
      ``(gamma * gamma_l, gamma)``: lower and upper factors on the minimum spectral loss.
    """
    return self.gamma * self.gamma_l, self.gamma


# ------------------------------------------------------------------------------------------------
# Network
# ------------------------------------------------------------------------------------------------

class RPNN(nn.Module):
  """The rho-PNN network (official ``networks.R_PNN(1, [48, 32, 1], [7, 7, 5])``).

  Input ``(N, H, W, 2)`` = ``[upsampled HS band, PAN]``; reflect 'same' padding (PyTorch
  "reflect": the edge sample is not repeated); output ``(N, H, W, 1)`` = last conv + channel 0.

  Attributes:
    features: conv widths.
    kernel_sizes: conv kernel sides.
  """

  features: tuple[int, ...] = (48, 32, 1)
  kernel_sizes: tuple[int, ...] = (7, 7, 5)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Sharpens one band.

    Args:
      x: ``[upsampled HS band, PAN]``, ``(N, H, W, 2)``.

    Returns:
      ``(N, H, W, 1)``.

    Raises:
      ValueError: if ``x`` is not ``(N, H, W, >= 2)``.
    """
    if x.ndim != 4 or x.shape[-1] < 2:
      raise ValueError(f"x: expected (N, H, W, 2) = [band, pan], got shape {x.shape}")
    y = x
    for i, (feat, k) in enumerate(zip(self.features, self.kernel_sizes, strict=True)):
      p = k // 2
      y = jnp.pad(y, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
      y = nn.Conv(feat, (k, k), padding="VALID",
                  conv_general_dilated=canonical_conv.conv_general_dilated, name=f"conv{i + 1}")(y)
      if i < len(self.features) - 1:
        y = nn.relu(y)
    return y + x[..., :-1]


def conv_from_torch(state_dict, prefix: str) -> dict[str, jax.Array]:
  """An official ``Conv2d`` (OIHW weight, bias) as flax ``{"kernel": HWIO, "bias"}``.

  Args:
    state_dict: ``{name: array}``.
    prefix: the conv's name prefix.

  Returns:
    ``{"kernel": (kh, kw, I, O), "bias": (O,)}`` (no ``bias`` if absent).
  """
  out = {"kernel": jnp.asarray(np.transpose(state_dict[f"{prefix}.weight"], (2, 3, 1, 0)))}
  if f"{prefix}.bias" in state_dict:
    out["bias"] = jnp.asarray(state_dict[f"{prefix}.bias"])
  return out


def rpnn_from_torch(state_dict) -> tuple[RPNN, dict]:
  """``R_PNN`` state dict -> (module, variables); widths and kernel sizes read off the shapes.

  Args:
    state_dict: ``{name: array}``.

  Returns:
    ``(RPNN, {"params": ...})``.
  """
  names = sorted({k.split(".")[0] for k in state_dict}, key=lambda n: int(n[4:]))
  features = tuple(int(state_dict[f"{n}.weight"].shape[0]) for n in names)
  kernels = tuple(int(state_dict[f"{n}.weight"].shape[-1]) for n in names)
  module = RPNN(features=features, kernel_sizes=kernels)
  return module, {"params": {n: conv_from_torch(state_dict, n) for n in names}}


MODELS = {
    "rho_pnn": ModelSpec(
        build=lambda **kw: RPNN(**kw),
        example_inputs=lambda m: {"x": jax.ShapeDtypeStruct((1, 48, 48, 2), jnp.float32)},
        from_torch=rpnn_from_torch),
}


# ------------------------------------------------------------------------------------------------
# Losses
# ------------------------------------------------------------------------------------------------

def _wide_float(x: jax.Array) -> jax.Array:
  """float64 when x64 is enabled (the official local correlation is float64), else float32."""
  return x.astype(jax.dtypes.canonicalize_dtype(jnp.float64))


def spectral_kernel(ratio: int = 6, kernel_size: int = 61) -> np.ndarray:
  """The spectral loss filter: ``gen_mtf(ratio, N)`` rounded to float32 as in the official code.

  Args:
    ratio: PAN / HS resolution ratio.
    kernel_size: taps N.

  Returns:
    ``(N, N)`` taps.
  """
  return wald.toolbox_taps(wald.gen_mtf(ratio, kernel_size))


@functools.partial(jax.jit, static_argnames=("ratio", "kernel_size"))
def spectral_degrade(output: jax.Array, ratio: int = 6, kernel_size: int = 61) -> jax.Array:
  """Valid MTF filtering, rows/cols ``3::6``.

  Only the kept samples are computed (a stride-``ratio`` correlation from offset ``ratio // 2``):
  the same values as filtering the whole tile and subsampling, 1/ratio² of the work in the
  forward pass and in the gradient.

  Args:
    output: ``(N, 6h, 6w, C)``.
    ratio: PAN / HS resolution ratio.
    kernel_size: MTF taps.

  Returns:
    ``(N, h - 10, w - 10, C)`` at the defaults.
  """
  offset = ratio // 2
  return wald.correlate_valid(output[:, offset:, offset:], spectral_kernel(ratio, kernel_size),
                              stride=ratio)


@functools.partial(jax.jit, static_argnames=("ratio", "kernel_size"))
def spectral_loss(output: jax.Array, hs_lr: jax.Array, ratio: int = 6,
                  kernel_size: int = 61) -> jax.Array:
  """``SpectralLossNocorr``: L1 mean between the degraded output and ``hs_lr`` cropped by 5.

  The valid filtering needs tiles larger than the kernel (``H, W >= ratio (2 crop + 1)``, 66 px at
  the defaults; the official pre-training tiles are 90 px); smaller ones raise, since the loss
  would be the mean of nothing (NaN) and training on it a silent no-op.

  Args:
    output: fused band(s), ``(N, H, W, C)``.
    hs_lr: LR reference, ``(N, H / ratio, W / ratio, C)``.
    ratio: PAN / HS resolution ratio.
    kernel_size: MTF taps.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``output`` is too small for the kernel or ``hs_lr`` has the wrong size.
  """
  crop = (kernel_size // ratio) // 2
  if min(output.shape[1:3]) < ratio * (2 * crop + 1):
    raise ValueError(f"output: spatial size {output.shape[1:3]} is too small for the "
                     f"{kernel_size}-tap valid spectral loss (need >= {ratio * (2 * crop + 1)})")
  ref = hs_lr[:, crop:-crop, crop:-crop]
  degraded = spectral_degrade(output, ratio, kernel_size)
  if degraded.shape != ref.shape:
    raise ValueError(f"hs_lr: expected LR size {tuple(s // ratio for s in output.shape[1:3])} "
                     f"for an output of {output.shape[1:3]}, got {hs_lr.shape[1:3]}")
  return jnp.mean(jnp.abs(degraded - ref))


@functools.partial(jax.jit, static_argnames=("ratio", "apply_threshold", "absolute", "clip"))
def spatial_loss(output: jax.Array, pan: jax.Array, ratio: int = 6, threshold=None, *,
                 apply_threshold: bool = False, absolute: bool = True,
                 clip: str = "variances") -> jax.Array:
  """The correlation ("rho") spatial loss, computed in float64 when x64 is on.

  Args:
    output: ``(N, H, W, 1)``.
    pan: ``(N, H, W, 1)``.
    ratio: PAN / HS resolution ratio (correlation half-width ``ceil(ratio / 2)``).
    threshold: ``(N, H, W, 1)`` map (:func:`correlation_mask`); ignored unless ``apply_threshold``
      (the released rho-PNN ``StructuralLoss`` ignores it).
    apply_threshold: average ``X * [X > threshold]`` (the paper's / R-PNN's masked loss).
    absolute: ``X = 1 - |max(rho, -1)|`` (rho-PNN); False gives R-PNN's ``1 - max(rho, -1)``.
    clip: covariance clipping of :func:`indices.local_correlation` (``"all"`` for the toolbox's
      R-PNN loss).

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``apply_threshold`` is set without a ``threshold``.
  """
  rho = indices.local_correlation(_wide_float(output), _wide_float(pan), math.ceil(ratio / 2),
                                  clip=clip)
  rho = jnp.maximum(rho, -1.0)
  x = 1.0 - (jnp.abs(rho) if absolute else rho)
  if apply_threshold:
    if threshold is None:
      raise ValueError("threshold: apply_threshold=True needs a threshold map")
    x = x * (x > threshold)
  return jnp.mean(x)


@functools.partial(jax.jit, static_argnames=("ratio", "half_width"))
def correlation_mask(band_up: jax.Array, pan: jax.Array, ratio: int = 6,
                     half_width: int = 18) -> jax.Array:
  """``utils.local_corr_mask``: ``1 - rho(MTF(PAN), band; half_width)`` (unclipped covariance).

  The PAN is low-passed with the 41-tap MTF kernel (gain 0.3) after reflect padding of 20.

  Args:
    band_up: upsampled band, ``(N, H, W, 1)``.
    pan: ``(N, H, W, 1)``.
    ratio: PAN / HS resolution ratio.
    half_width: correlation window half-width.

  Returns:
    ``(N, H, W, 1)``.
  """
  pan_lp = wald.depthwise_filter(pan, wald.toolbox_taps(wald.gen_mtf(ratio)),
                                     "reflect")
  rho = indices.local_correlation(_wide_float(pan_lp), _wide_float(band_up), half_width,
                                  clip="none")
  return 1.0 - rho


# ------------------------------------------------------------------------------------------------
# Iteration budget, hysteresis, beta search
# ------------------------------------------------------------------------------------------------

def adjacent_correlation(hs_lr) -> np.ndarray:
  """Pearson correlation of consecutive LR bands (``np.corrcoef``).

  Args:
    hs_lr: ``(h, w, B)``.

  Returns:
    ``(B - 1,)`` float64.

  Raises:
    ValueError: if ``hs_lr`` is not 3-D.
  """
  x = np.asarray(hs_lr, np.float64)
  if x.ndim != 3:
    raise ValueError(f"hs_lr: expected (h, w, B), got shape {x.shape}")
  flat = x.reshape(-1, x.shape[-1]).T
  return np.diag(np.corrcoef(flat), 1)


def adaptive_epochs(hs_lr, n1: int, eta: float) -> np.ndarray:
  """The per-band budget of ``main.adaptive_epochs`` (uint16 arithmetic, as the official code).

  ``max_iter[b] = N1 + trunc(k (c_b - 1))`` with ``k = eta (B-1) N1 / (sum c - (B-1))``;
  ``max_iter[0] = max_iter[1]``.

  Args:
    hs_lr: ``(h, w, B)``.
    n1: base budget ``N1``.
    eta: budget factor.

  Returns:
    ``(B,)`` int64.

  Raises:
    ValueError: if ``hs_lr`` is not 3-D.
  """
  c = adjacent_correlation(hs_lr)
  nb = c.size + 1
  k = eta * (nb - 1) * n1 / (c.sum() - (nb - 1))
  budget = n1 * np.ones(nb, dtype=np.uint16)
  budget[1:] += (k * (c - 1)).astype(np.uint16)
  budget[0] = budget[1]
  return budget.astype(np.int64)


class Switch(NamedTuple):
  """Hysteresis state of one band: spatial weight in use, whether beta was searched, countdown.

  Attributes:
    beta_s: spatial weight in use (scalar).
    good_beta: whether beta was searched (scalar bool).
    counter: remaining active steps (scalar int).
  """

  beta_s: jax.Array
  good_beta: jax.Array
  counter: jax.Array


def switch_weight(state: Switch, loss_spec, lower, upper, beta_adapt) -> jax.Array:
  """Step (b): once beta is known, spatial term on below ``lower``, off above ``upper``.

  Args:
    state: the band's :class:`Switch`.
    loss_spec: current spectral loss.
    lower: lower limit.
    upper: upper limit.
    beta_adapt: searched spatial weight.

  Returns:
    The spatial weight for this step (scalar).
  """
  on = jnp.where(loss_spec < lower, beta_adapt, jnp.where(loss_spec > upper, 0.0, state.beta_s))
  return jnp.where(state.good_beta, on, state.beta_s)


def switch_after_step(state: Switch, beta_used, loss_spec, lower) -> Switch:
  """Steps (d, f): the first lower crossing marks beta as searched; an active step counts down.

  Args:
    state: the band's :class:`Switch`.
    beta_used: spatial weight of the step just taken.
    loss_spec: the step's spectral loss.
    lower: lower limit.

  Returns:
    The new :class:`Switch`.
  """
  good = state.good_beta | (loss_spec < lower)
  counter = state.counter - (beta_used > 0).astype(state.counter.dtype)
  return Switch(jnp.asarray(beta_used, state.beta_s.dtype), good, counter)


def beta_search(loss_fn, params, opt_state, optimizer, beta_0: float, epsilon: float):
  """``main.beta_adaptation``: halve beta until two trial steps keep L_spec within epsilon.

  From the saved ``(params, opt_state)``: two optimiser steps on ``L_spec + beta L_s``; if the
  spectral loss after them exceeds ``epsilon`` times the one before them, halve beta (floor
  ``beta_0 / 8``, which ends the search). The trial steps leave no trace.

  Args:
    loss_fn: ``params -> (L_spec, L_s)``.
    params: current weights.
    opt_state: current optimiser state.
    optimizer: the optax optimiser.
    beta_0: starting beta.
    epsilon: tolerated spectral-loss ratio.

  Returns:
    The searched beta (float32 scalar).
  """
  def step(p, s, beta):
    (ls, lt), pullback = jax.vjp(loss_fn, p)
    grads = pullback((jnp.ones_like(ls), jnp.asarray(beta, lt.dtype)))[0]
    updates, s = optimizer.update(grads, s, p)
    return optax.apply_updates(p, updates), s, ls

  def body(carry):
    beta, _ = carry
    p1, s1, before = step(params, opt_state, beta)
    p2, _, _ = step(p1, s1, beta)
    after = loss_fn(p2)[0]
    worse = after > before * epsilon
    halved = beta / 2.0
    floor = halved <= beta_0 / 8.0
    new_beta = jnp.where(worse, jnp.where(floor, beta_0 / 8.0, halved), beta)
    return new_beta, ~worse | floor

  beta, _ = jax.lax.while_loop(lambda c: ~c[1], body,
                               (jnp.asarray(beta_0, jnp.float32), jnp.asarray(False)))
  return beta


# ------------------------------------------------------------------------------------------------
# Per-band fine-tuning (stage B)
# ------------------------------------------------------------------------------------------------

class BandResult(NamedTuple):
  """Output of the stage-B loop of :func:`make_band_tuner`.

  Attributes:
    params: weights after the loop (the start of the next band).
    opt_state: optimiser state after the loop.
    final_params: weights that produce the band (EMA / checkpoint / last).
    iterations: steps taken.
    beta_adapt: searched spatial weight.
    good_beta: whether beta was searched.
    counter: remaining active steps.
    loss_spec: ``(max_iter_cap,)`` before each step, zero-padded.
    loss_struct: ``(max_iter_cap,)`` spatial losses, zero-padded.
    beta_used: ``(max_iter_cap,)`` spatial weight per step, zero-padded.
    min_spec: spectral loss of the upsampled band itself.
  """
  params: Any            # weights after the loop (the start of the next band)
  opt_state: Any
  final_params: Any      # weights that produce the band (EMA / checkpoint / last)
  iterations: jax.Array
  beta_adapt: jax.Array
  good_beta: jax.Array
  counter: jax.Array
  loss_spec: jax.Array   # (max_iter_cap,) before each step, zero-padded
  loss_struct: jax.Array
  beta_used: jax.Array
  min_spec: jax.Array


def _ema(ema, params, started, decay):
  return jax.tree_util.tree_map(
      lambda e, w: jnp.where(started, decay * e + (1.0 - decay) * w, w), ema, params)


def make_band_tuner(config: RhoPNNConfig, max_iter_cap: int, module: RPNN | None = None):
  """Builds the jitted stage-B loop ``tune(params, opt_state, x, hs_lr, max_iter) -> BandResult``.

  ``x``: tuning tiles ``(T, H, W, 2)`` = [upsampled band, PAN]; ``hs_lr``: ``(T, H/r, W/r, 1)``.
  The whole loop is one ``lax.while_loop``.

  Args:
    config: the :class:`RhoPNNConfig`.
    max_iter_cap: static length of the loss traces (and the largest budget).
    module: the network (default :class:`RPNN`).

  Returns:
    ``(tune, optimizer)``.
  """
  module = module or RPNN()
  optimizer = optax.adam(config.learning_rate)
  ratio = config.ratio

  def losses(params, x, hs_lr):
    out = module.apply({"params": params}, x)
    return (spectral_loss(out, hs_lr, ratio, config.spectral_kernel_size),
            spatial_loss(out, x[..., -1:], ratio))

  @jax.jit
  def tune(params, opt_state, x, hs_lr, max_iter):
    min_spec = spectral_loss(x[..., :1], hs_lr, ratio, config.spectral_kernel_size)
    lower, upper = min_spec * config.limits[0], min_spec * config.limits[1]
    loss_fn = lambda p: losses(p, x, hs_lr)
    trace = jnp.zeros((max_iter_cap,), jnp.float32)
    init = dict(params=params, opt_state=opt_state, ema=params, best=params,
                best_ls=jnp.asarray(jnp.inf, jnp.float32), it=jnp.asarray(0),
                beta_adapt=jnp.asarray(config.beta_0, jnp.float32),
                sw=Switch(jnp.asarray(0.0, jnp.float32), jnp.asarray(False),
                          jnp.asarray(config.ns)),
                ls=trace, lt=trace, bu=trace)

    def cond(c):
      return (c["it"] < jnp.minimum(max_iter, max_iter_cap)) & (c["sw"].counter > 0)

    def body(c):
      sw = c["sw"]
      # One forward: L = L_spec + beta_s L_s with beta_s decided from this forward's L_spec.
      (ls, lt), pullback = jax.vjp(loss_fn, c["params"])
      beta_s = switch_weight(sw, ls, lower, upper, c["beta_adapt"])
      grads = pullback((jnp.ones_like(ls), beta_s.astype(lt.dtype)))[0]
      updates, opt_state = optimizer.update(grads, c["opt_state"], c["params"])
      params = optax.apply_updates(c["params"], updates)
      first_crossing = (ls < lower) & ~sw.good_beta
      beta_adapt = jax.lax.cond(
          first_crossing,
          lambda: beta_search(loss_fn, params, opt_state, optimizer, config.beta_0,
                              config.epsilon),
          lambda: c["beta_adapt"])
      new_sw = switch_after_step(sw, beta_s, ls, lower)
      ema = jax.tree_util.tree_map(
          lambda e, n: jnp.where(new_sw.good_beta, n, e), c["ema"],
          _ema(c["ema"], params, sw.good_beta, config.ema_decay))
      improve = (beta_s > 0) & (lt <= c["best_ls"])
      best = jax.tree_util.tree_map(lambda b, w: jnp.where(improve, w, b), c["best"], params)
      return dict(params=params, opt_state=opt_state, ema=ema, best=best,
                  best_ls=jnp.where(improve, lt.astype(jnp.float32), c["best_ls"]),
                  it=c["it"] + 1, beta_adapt=beta_adapt, sw=new_sw,
                  ls=c["ls"].at[c["it"]].set(ls.astype(jnp.float32)),
                  lt=c["lt"].at[c["it"]].set(lt.astype(jnp.float32)),
                  bu=c["bu"].at[c["it"]].set(beta_s))

    c = jax.lax.while_loop(cond, body, init)
    sw = c["sw"]
    chosen = jax.tree_util.tree_map(lambda b, w: jnp.where(sw.counter == config.ns, w, b),
                                    c["best"], c["params"])
    final = jax.tree_util.tree_map(lambda e, w: jnp.where(sw.good_beta, e, w), c["ema"], chosen)
    return BandResult(c["params"], c["opt_state"], final, c["it"], c["beta_adapt"],
                      sw.good_beta, sw.counter, c["ls"], c["lt"], c["bu"], min_spec)

  return tune, optimizer


# ------------------------------------------------------------------------------------------------
# Tiling, pre-training (stage A), whole-scene driver
# ------------------------------------------------------------------------------------------------

def tile(x: jax.Array, size: int) -> jax.Array:
  """Cuts images into row-major tiles.

  H and W must be multiples of ``size`` or at most ``size`` (a smaller side is one tile).

  Args:
    x: ``(N, H, W, C)``.
    size: tile side.

  Returns:
    ``(N * (H/size) * (W/size), size, size, C)``.

  Raises:
    ValueError: if H or W is larger than and not a multiple of ``size``.
  """
  n, h, w, c = x.shape
  th, tw = min(size, h), min(size, w)
  if h % th or w % tw:
    raise ValueError(f"x: spatial size {(h, w)} must be a multiple of the tile size {size}")
  x = x.reshape(n, h // th, th, w // tw, tw, c).transpose(1, 3, 0, 2, 4, 5)
  return x.reshape(-1, th, tw, c)


def postprocess(band: jax.Array) -> jax.Array:
  """``x 2^16``, round, clip to [0, 2^16], cast to uint16 (65536 wraps to 0, as in the official).

  Args:
    band: normalised values, any shape.

  Returns:
    uint16, same shape.
  """
  counts = jnp.clip(jnp.round(band * NORMALISATION), 0, NORMALISATION)
  return counts.astype(jnp.uint32).astype(jnp.uint16)


def patchify(x: jax.Array, size: int, count: int) -> jax.Array:
  """The official ``utils.patchify`` (no overlap): a ``count x count`` grid of ``size`` tiles.

  Tiles are taken row-major from the top-left corner; what lies beyond ``count * size`` on either
  axis is dropped.

  Args:
    x: ``(N, H, W, C)``.
    size: tile side.
    count: tiles per axis (the official derives it from the PAN's height for both axes).

  Returns:
    ``(N * count^2, size, size, C)``, tile ``row * count + col``.

  Raises:
    ValueError: if the grid does not fit in ``x`` (the official would cut ragged tiles).
  """
  n, h, w, c = x.shape
  if count < 1 or count * size > min(h, w):
    raise ValueError(f"x: a {count} x {count} grid of {size}-px tiles does not fit in the "
                     f"spatial size {(h, w)}")
  x = x[:, :count * size, :count * size]
  x = x.reshape(n, count, size, count, size, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, size, size, c)


def pretrain_tiles(hs_lr, hs_up, pan, size: int, ratio: int) -> tuple[jax.Array, jax.Array]:
  """Stage-A training tiles of band 0: ``[I_MS band 0, PAN]`` and the LR band, as ``patchify``.

  The grid is ``H // size`` tiles per axis (H = the PAN's height, used for both axes as in the
  official code), so a scene that is not a multiple of the tile keeps only its whole tiles.

  Args:
    hs_lr: ``(1, h, w, B)``.
    hs_up: ``(1, H, W, B)``.
    pan: ``(1, H, W, 1)``.
    size: HR tile side (a multiple of ``ratio``).
    ratio: resolution ratio.

  Returns:
    ``(x (T, size, size, 2), lr (T, size / ratio, size / ratio, 1))``.
  """
  count = pan.shape[1] // size
  x = patchify(jnp.concatenate([hs_up[..., :1], pan], -1), size, count)
  return x, patchify(hs_lr[..., :1], size // ratio, count)


def ema_step(ema, params, decay: float):
  """``decay * ema + (1 - decay) * params`` leaf by leaf (the official ``cumulate_EMA``)."""
  return jax.tree_util.tree_map(lambda e, w: decay * e + (1 - decay) * w, ema, params)


def make_pretrain_step(config: RhoPNNConfig, module: RPNN | None = None):
  """The jitted stage-A2 update ``step(params, opt_state, beta, active, x, lr)``.

  One forward per batch: ``min_spec`` is the batch's interpolator L_spec; beta becomes
  ``config.pretrain_beta`` below ``gamma gamma_l min_spec`` (and EMA activates), 0 above
  ``gamma min_spec``, else keeps its value; Adam steps on ``L_spec + beta L_s``.

  Args:
    config: the :class:`RhoPNNConfig`.
    module: the network (default :class:`RPNN`).

  Returns:
    ``(step, optimizer)``; ``step`` returns ``(params, opt_state, beta, active, (L_spec, L_s))``
    with the losses of the forward before the update.
  """
  module = module or RPNN()
  optimizer = optax.adam(config.learning_rate)
  lower_f, upper_f = config.limits

  def losses(p, xb, lb):
    out = module.apply({"params": p}, xb)
    return (spectral_loss(out, lb, config.ratio, config.spectral_kernel_size),
            spatial_loss(out, xb[..., -1:], config.ratio))

  @jax.jit
  def step(p, s, beta, active, xb, lb):
    min_spec = spectral_loss(xb[..., :1], lb, config.ratio, config.spectral_kernel_size)
    (ls, lt), pullback = jax.vjp(lambda q: losses(q, xb, lb), p)
    below, above = ls < lower_f * min_spec, ls > upper_f * min_spec
    beta = jnp.where(below, config.pretrain_beta, jnp.where(above, 0.0, beta))
    grads = pullback((jnp.ones_like(ls), beta.astype(lt.dtype)))[0]
    u, s = optimizer.update(grads, s, p)
    return optax.apply_updates(p, u), s, beta, active | below, (ls, lt)

  return step, optimizer


def pretrain(params, hs_lr, hs_up, pan, config: RhoPNNConfig, rng: jax.Array,
             module: RPNN | None = None):
  """Stage A on band 0: (A1) the ensemble per ``config.ensemble``, (A2) hysteresis training + EMA.

  The official code loads the EMA weights when the switch engaged; it crashes otherwise, here the
  last weights are kept and ``engaged`` is False.

  Args:
    params: starting weights.
    hs_lr: normalised LR cube, ``(1, h, w, B)``.
    hs_up: normalised upsampled cube, ``(1, H, W, B)``.
    pan: normalised PAN, ``(1, H, W, 1)``.
    config: the :class:`RhoPNNConfig`.
    rng: PRNG key of the shuffling.
    module: the network (default :class:`RPNN`).

  Returns:
    ``(params, opt_state, engaged)``.

  Raises:
    ValueError: if ``config.ensemble`` is unknown.
  """
  module = module or RPNN()
  step, optimizer = make_pretrain_step(config, module)
  x, lr = pretrain_tiles(hs_lr, hs_up, pan, config.pretrain_tile, config.ratio)
  ema_update = jax.jit(functools.partial(ema_step, decay=config.ema_decay))

  n_tiles = x.shape[0]
  batch = min(config.pretrain_batch, n_tiles)

  def batches(key):
    order = np.asarray(jax.random.permutation(key, n_tiles))
    return [order[i:i + batch] for i in range(0, n_tiles, batch)]

  if config.ensemble == "working":
    copies = []
    for k in range(config.ensemble_copies):
      p, s = params, optimizer.init(params)
      for e in range(config.ensemble_epochs):
        for idx in batches(jax.random.fold_in(jax.random.fold_in(rng, 1000 + k), e)):
          # Each copy starts from the same weights with its own optimiser and shuffling.
          p, s, *_ = step(p, s, jnp.float32(0.0), jnp.asarray(False), x[idx], lr[idx])
      copies.append(p)
    params = jax.tree_util.tree_map(lambda *w: sum(w) / len(w), *copies)
  elif config.ensemble not in ("official", "none"):
    raise ValueError(f"config.ensemble: expected 'official', 'working' or 'none', "
                     f"got {config.ensemble!r}")

  opt_state = optimizer.init(params)
  beta, active, ema = jnp.float32(0.0), jnp.asarray(False), None
  for epoch in range(config.pretrain_epochs):
    for idx in batches(jax.random.fold_in(rng, epoch)):
      params, opt_state, beta, active, _ = step(params, opt_state, beta, active, x[idx],
                                                lr[idx])
      if bool(active):
        ema = params if ema is None else ema_update(ema, params)
  engaged = ema is not None
  return (ema if engaged else params), opt_state, engaged


@dataclasses.dataclass
class FusionResult:
  """Output of :func:`fuse`.

  Attributes:
    fused: ``(H, W, B)`` normalised float32 (the official saves ``postprocess()``).
    iterations: ``(B,)`` steps per band.
    beta_adapt: ``(B,)`` searched spatial weights.
    spatial_active: ``(B,)`` iterations with the spatial term on.
    min_spec: ``(B,)`` spectral loss of each upsampled band.
    final_spec: ``(B,)`` spectral loss of the last iteration.
    max_iter: ``(B,)`` budgets.
  """
  fused: np.ndarray              # (H, W, B) normalised float32 (the official saves postprocess())
  iterations: np.ndarray         # (B,)
  beta_adapt: np.ndarray         # (B,)
  spatial_active: np.ndarray     # (B,) iterations with the spatial term on
  min_spec: np.ndarray           # (B,)
  final_spec: np.ndarray         # (B,) spectral loss of the last iteration
  max_iter: np.ndarray           # (B,)


def fuse(hs_lr, hs_up, pan, config: RhoPNNConfig = RhoPNNConfig(), **kwargs) -> FusionResult:
  """Zero-shot rho-PNN on one scene (see :func:`_fuse` for the arguments).

  Runs under ``jax.enable_x64(config.float64_correlation)``: the official local correlation is
  float64 and the hysteresis margins are small.

  Args:
    hs_lr: ``(h, w, B)`` LR cube in DN.
    hs_up: ``(H, W, B)`` upsampled cube in DN.
    pan: ``(H, W)`` PAN in DN.
    config: :class:`RhoPNNConfig`.
    **kwargs: ``params``, ``rng``, ``tile_indices``, ``max_iter``, ``pretrain_stage``.

  Returns:
    A :class:`FusionResult`.
  """
  with jax.enable_x64(config.float64_correlation):
    return _fuse(hs_lr, hs_up, pan, config, **kwargs)


def _fuse(hs_lr, hs_up, pan, config: RhoPNNConfig, *, params=None,
          rng: jax.Array | None = None, tile_indices=None, max_iter=None,
          pretrain_stage: bool = True) -> FusionResult:
  """Zero-shot rho-PNN on one scene, any size as the official code runs it.

  Stage A trains on the whole ``pretrain_tile`` tiles of band 0 (:func:`pretrain_tiles`, the
  remainder dropped); stage B tunes on the ``config.tile`` tiles (:func:`tile`: sides that are
  multiples of the tile or smaller than it, like the official ``torch.split``) and predicts each
  band on the whole scene.

  Args:
    hs_lr: ``(h, w, B)`` LR cube in DN (divided by 2^16 here, as the official code).
    hs_up: ``(H, W, B)`` upsampled cube (``I_MS``) in DN, ``H // r = h``, ``W // r = w``.
    pan: ``(H, W)`` PAN in DN.
    config: :class:`RhoPNNConfig` (RR defaults; :meth:`RhoPNNConfig.full_resolution` for FR).
    params: starting weights (default: a fresh PyTorch-default init from ``rng``, like the
      official ``R_PNN`` module; flax's LeCun-normal default is sqrt(3) larger per layer).
    rng: PRNG key (default ``jax.random.key(0)``).
    tile_indices: which ``config.tile`` tiles to tune on (FR salient tiles); default all.
    max_iter: per-band budgets (default :func:`adaptive_epochs` with ``N1 = 4 ns``).
    pretrain_stage: run stage A first.

  Returns:
    A :class:`FusionResult`.

  Raises:
    ValueError: if the inputs do not match in size at ``config.ratio``.
  """
  ratio = config.ratio
  hs_lr_b, _ = wald.as_batch(hs_lr, "hs_lr")
  hs_up_b, _ = wald.as_batch(hs_up, "hs_up")
  pan_b, _ = wald.as_pan_batch(pan)
  # The official code takes both sizes from the file: any PAN whose size floors to the LR one.
  if (pan_b.shape[0] != hs_lr_b.shape[0]
      or tuple(d // ratio for d in pan_b.shape[1:3]) != hs_lr_b.shape[1:3]):
    raise ValueError(f"pan: expected spatial size (H, W) with (H // {ratio}, W // {ratio}) = "
                     f"hs_lr's {hs_lr_b.shape[1:3]}, got {pan_b.shape[1:3]}")
  if hs_up_b.shape[:3] != pan_b.shape[:3] or hs_up_b.shape[-1] != hs_lr_b.shape[-1]:
    raise ValueError(f"hs_up: expected shape {pan_b.shape[1:3] + hs_lr_b.shape[-1:]}, "
                     f"got {hs_up_b.shape[1:]}")
  hs_lr_b, hs_up_b, pan_b = (jnp.asarray(a, jnp.float32) / NORMALISATION
                             for a in (hs_lr_b, hs_up_b, pan_b))
  rng = jax.random.key(0) if rng is None else rng
  module = RPNN()
  if params is None:
    # PyTorch's default conv initialisation, as the official network starts from.
    params = deep.official_init(module.init(rng, hs_up_b[:, :8, :8, :1].repeat(2, -1))["params"],
                                jax.random.fold_in(rng, 2))
  params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
  if max_iter is None:
    max_iter = adaptive_epochs(np.asarray(hs_lr_b[0]), 4 * config.ns, config.eta)
  max_iter = np.asarray(max_iter, np.int64)
  if pretrain_stage:
    params, _, _ = pretrain(params, hs_lr_b, hs_up_b, pan_b, config, jax.random.fold_in(rng, 1),
                            module)
  tune, optimizer = make_band_tuner(config, int(max_iter.max()), module)
  opt_state = optimizer.init(params)
  apply = jax.jit(module.apply)
  out_bands, rows = [], []
  for b in range(hs_lr_b.shape[-1]):
    x_full = jnp.concatenate([hs_up_b[..., b:b + 1], pan_b], -1)
    x = tile(x_full, config.tile)
    lr = tile(hs_lr_b[..., b:b + 1], config.tile // ratio)
    if tile_indices is not None:
      x, lr = x[np.asarray(tile_indices)], lr[np.asarray(tile_indices)]
    res = tune(params, opt_state, x, lr, jnp.asarray(max_iter[b]))
    params, opt_state = res.params, res.opt_state
    out_bands.append(np.asarray(apply({"params": res.final_params}, x_full)[0, ..., 0]))
    n = int(res.iterations)
    rows.append((n, float(res.beta_adapt), int(np.sum(np.asarray(res.beta_used)[:n] > 0)),
                 float(res.min_spec), float(res.loss_spec[max(n - 1, 0)])))
  cols = list(zip(*rows, strict=True))
  return FusionResult(np.stack(out_bands, -1), np.asarray(cols[0]), np.asarray(cols[1]),
                      np.asarray(cols[2]), np.asarray(cols[3]), np.asarray(cols[4]), max_iter)
