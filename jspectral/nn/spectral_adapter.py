"""The SpectralEarth spectral adapter: per-pixel 1-D convolutions along the spectrum.

Braham, Albrecht, Mairal, Chanussot, Wang, Zhu, "SpectralEarth: Training Hyperspectral Foundation
Models at Scale", arXiv 2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth,
``src/backbones/spectral_adapter.py``.

Every pixel spectrum of a bands-last cube ``(N, H, W, B)`` is treated as a one-channel 1-D signal of
length ``B`` (internally reshaped to ``(N*H*W, B, 1)``; the official code uses ``Conv3d`` kernels
``(k, 1, 1)``, so there is no spatial mixing) and passed through three conv-BatchNorm-ReLU stages
(1->32, k7 s5 p1; 32->64, k7 s5 p1; 64->128, k5 s3 p1), then averaged over the remaining spectral
positions: ``(N, H, W, B) -> (N, H, W, 128)``. BatchNorm statistics are taken over
``(N, spectral, H, W)`` per channel, as in ``BatchNorm3d``. The same weights accept any band count
``>= 75`` (202 EnMAP, 235 DESIS, 198 Hyperion, 150 Intuition-1).

Deviation: flax's BatchNorm keeps the *biased* batch variance as running variance; torch keeps the
unbiased one. Outputs in both modes are unaffected; only the running statistics accumulated in
training differ by the factor ``n/(n-1)`` (n = N*H*W*spectral positions, so negligibly).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn.model_spec import ModelSpec

# (out_channels, kernel, stride, padding) of the three stages.
STAGES = ((32, 7, 5, 1), (64, 7, 5, 1), (128, 5, 3, 1))
MIN_BANDS = 75


def spectral_lengths(bands: int) -> tuple[int, ...]:
  """Spectral positions after each stage: ``L' = floor((L + 2p - k) / s) + 1``.

  Args:
    bands: input band count ``L``.

  Returns:
    The three lengths; the last must be >= 1.

  >>> spectral_lengths(202)
  (40, 8, 2)
  """
  lengths, length = [], bands
  for _, k, s, p in STAGES:
    length = (length + 2 * p - k) // s + 1
    lengths.append(length)
  return tuple(lengths)


def batch_norm(train: bool, name: str, **kw) -> nn.BatchNorm:
  """torch-default BatchNorm (eps 1e-5, momentum 0.1): batch statistics when ``train``.

  The batch variance is the two-pass ``mean((x - mean)**2)`` as in torch, not flax's default
  ``mean(x**2) - mean(x)**2``: in float32 the latter cancels catastrophically when a channel's mean
  is large against its spread, and its error depends on the reduction order, so one device and a
  data-sharded batch gave different MoCo loss curves.

  Args:
    train: use batch statistics (and update the running ones).
    name: the submodule name.
    **kw: further ``nn.BatchNorm`` fields (e.g. ``scale_init``).

  Returns:
    An ``nn.BatchNorm``.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name,
                      use_fast_variance=False, **kw)


class SpectralAdapter(nn.Module):
  """``(N, H, W, B) -> (N, H, W, features)`` with three spectral conv-BN-ReLU stages and pooling.

  Attributes:
    features: output channels (128 in the paper; the third stage's width).
  """

  features: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the adapter to every pixel spectrum.

    Args:
      x: bands-last batch ``(N, H, W, B)``, ``B >= 75``.
      train: BatchNorm mode.

    Returns:
      ``(N, H, W, features)``.
    """
    if x.ndim != 4:
      raise ValueError(f"x: expected a bands-last batch (N, H, W, bands), got shape {x.shape}")
    n, h, w, bands = x.shape
    if spectral_lengths(bands)[-1] < 1:
      raise ValueError(f"x: the spectral adapter needs at least {MIN_BANDS} bands, got {bands} "
                       f"(spectral lengths {spectral_lengths(bands)})")
    y = x.reshape(n * h * w, bands, 1)
    widths = (*(s[0] for s in STAGES[:-1]), self.features)
    for i, ((_, k, s, p), width) in enumerate(zip(STAGES, widths, strict=True)):
      y = nn.Conv(width, (k,), strides=(s,), padding=[(p, p)], name=f"conv{i + 1}")(y)
      y = nn.relu(batch_norm(train, f"bn{i + 1}")(y))
    return y.mean(axis=1).reshape(n, h, w, self.features)


def convert_torch_adapter(state_dict, prefix: str = "") -> dict:
  """Official adapter ``nn.Sequential`` entries ``<prefix>{0,1,3,4,6,7}.*`` -> flax variables.

  Conv3d weights ``(out, in, k, 1, 1)`` become ``nn.Conv`` kernels ``(k, in, out)``.

  Args:
    state_dict: name -> NumPy array.
    prefix: the adapter's key prefix (e.g. ``"spectral_adapter."``).

  Returns:
    ``{"params": ..., "batch_stats": ...}`` for :class:`SpectralAdapter`.
  """
  params, stats = {}, {}
  for i, (conv, bn) in enumerate(((0, 1), (3, 4), (6, 7))):
    weight = np.asarray(state_dict[f"{prefix}{conv}.weight"])
    params[f"conv{i + 1}"] = {"kernel": weight[..., 0, 0].transpose(2, 1, 0),
                              "bias": np.asarray(state_dict[f"{prefix}{conv}.bias"])}
    params[f"bn{i + 1}"] = {"scale": state_dict[f"{prefix}{bn}.weight"],
                            "bias": state_dict[f"{prefix}{bn}.bias"]}
    stats[f"bn{i + 1}"] = {"mean": state_dict[f"{prefix}{bn}.running_mean"],
                           "var": state_dict[f"{prefix}{bn}.running_var"]}
  return {"params": params, "batch_stats": stats}


def adapter_from_torch(state_dict) -> tuple[SpectralAdapter, dict]:
  """Builds a :class:`SpectralAdapter` from the official ``SpectralAdapter`` state dict.

  Args:
    state_dict: keys ``0.weight`` ... ``7.running_var``, optionally under ``spectral_adapter.``.

  Returns:
    ``(module, variables)``.
  """
  prefix = "spectral_adapter." if "spectral_adapter.0.weight" in state_dict else ""
  if f"{prefix}6.weight" not in state_dict:
    raise ValueError("state_dict: expected SpectralAdapter keys '0.weight' ... '7.running_var' "
                     "(optionally prefixed 'spectral_adapter.')")
  module = SpectralAdapter(features=int(state_dict[f"{prefix}6.weight"].shape[0]))
  return module, jax.tree.map(jnp.asarray, convert_torch_adapter(state_dict, prefix))


MODELS = {
    "spectral_adapter": ModelSpec(
        build=SpectralAdapter,
        example_inputs=lambda m: {"x": jax.ShapeDtypeStruct((1, 4, 4, 202), jnp.float32)},
        from_torch=adapter_from_torch),
}
