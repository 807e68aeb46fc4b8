"""Pieces shared by the super-resolution models: PyTorch-ordered pixel (un)shuffle and the import
of PyTorch ``state_dict``s whose module names the Flax tree mirrors.

Both SR systems (ESSAformer, the multi-task Spectral Mixup network) upsample with
``torch.nn.PixelShuffle`` and name their Flax sub-modules exactly as the official ``nn.Module``
attributes (``blockup/convup/convu/0``), so one converter serves both.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import canonical_conv


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """``torch.nn.PixelShuffle(factor)`` on bands-last input: ``(N, h, w, C r²) -> (N, h r, w r, C)``.

  Channel ``c r² + a r + b`` of the input becomes channel ``c`` at sub-pixel ``(a, b)``
  (PyTorch's order, not TensorFlow's ``depth_to_space``).

  Args:
    x: ``(N, h, w, C r²)``.
    factor: ``r``.

  Returns:
    ``(N, h r, w r, C)``.

  Raises:
    ValueError: if the channels are not divisible by ``r²``.
  """
  n, h, w, c = x.shape
  if c % (factor * factor):
    raise ValueError(f"x: channels ({c}) must be divisible by factor² = {factor * factor}")
  out = c // (factor * factor)
  x = x.reshape(n, h, w, out, factor, factor)
  return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * factor, w * factor, out)


def pixel_unshuffle(x: jax.Array, factor: int) -> jax.Array:
  """``torch.nn.PixelUnshuffle(factor)`` on bands-last input (inverse of :func:`pixel_shuffle`).

  Args:
    x: ``(N, H, W, C)``.
    factor: ``r``.

  Returns:
    ``(N, H / r, W / r, C r²)``.

  Raises:
    ValueError: if ``H`` or ``W`` is not divisible by ``r``.
  """
  n, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f"x: spatial size {h}x{w} must be divisible by {factor}")
  x = x.reshape(n, h // factor, factor, w // factor, factor, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // factor, w // factor, c * factor * factor)


def shuffle_stages(scale: int) -> list[int]:
  """PixelShuffle factors of an upsampler: ``[2] * log2(scale)``, ``[3]``, or ``[]`` for 1.

  Args:
    scale: upscaling factor.

  Returns:
    The per-stage factors.

  Raises:
    ValueError: if ``scale`` is neither a power of two nor 3.
  """
  if scale == 3:
    return [3]
  if scale >= 1 and scale & (scale - 1) == 0:
    return [2] * (scale.bit_length() - 1)
  raise ValueError(f"scale: expected a power of two (1, 2, 4, 8, ...) or 3, got {scale}")


class PixelShuffleUpsampler(nn.Module):
  """SR upsampler (EDSR/SSPSR ``Upsampler``, ESSAformer ``Upsample``).

  Per stage of factor r a 3x3 conv (F -> r² F, named ``0``, ``2``, ... as the official
  ``nn.Sequential``) then :func:`pixel_shuffle`; ``scale`` 1 is the identity. No activation.
  The convs go through :mod:`jspectral.nn.canonical_conv` (explicit zero padding, then a VALID
  convolution with canonical gradients).

  Attributes:
    scale: upscaling factor, a power of two or 3.
  """

  scale: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Upsamples the features.

    Args:
      x: ``(N, h, w, F)``.

    Returns:
      ``(N, scale h, scale w, F)``.
    """
    for i, r in enumerate(shuffle_stages(self.scale)):
      conv = nn.Conv(x.shape[-1] * r * r, (3, 3), padding=1, name=str(2 * i),
                     conv_general_dilated=canonical_conv.conv_general_dilated)
      x = pixel_shuffle(conv(x), r)
    return x


# rank of a torch ``weight`` -> (Flax leaf name, layout change): conv OIHW -> HWIO, Linear
# (out, in) -> (in, out), LayerNorm weight -> scale.
_WEIGHT_LAYOUTS = {
    4: ("kernel", lambda v: v.transpose(2, 3, 1, 0)),
    2: ("kernel", lambda v: v.T),
    1: ("scale", lambda v: v),
}


def params_from_torch(state_dict: Mapping[str, np.ndarray], dtype=np.float32) -> dict:
  """Nested Flax ``params`` from a PyTorch ``state_dict`` whose names the Flax tree mirrors.

  ``a.b.0.weight`` goes to ``params["a"]["b"]["0"]``; 4-D weights (conv, OIHW) become HWIO
  ``kernel``s, 2-D weights (Linear, ``(out, in)``) become ``kernel = W.T``, 1-D weights
  (LayerNorm) become ``scale``; biases stay ``bias``. Arrays are converted to ``dtype``.

  Args:
    state_dict: ``{name: array}`` with ``*.weight`` / ``*.bias`` entries.
    dtype: the parameters' dtype (float32; float64 for double-precision parity under x64).

  Returns:
    The nested ``params`` dict.

  Raises:
    ValueError: on an entry that is neither ``*.weight`` nor ``*.bias``, or a weight of
      unsupported rank.
  """
  params: dict = {}
  for name, value in state_dict.items():
    *path, leaf = name.split(".")
    value = np.asarray(value, dtype)
    if leaf == "weight":
      if value.ndim not in _WEIGHT_LAYOUTS:
        raise ValueError(f"state_dict: {name!r} has unsupported rank {value.ndim}")
      leaf, layout = _WEIGHT_LAYOUTS[value.ndim]
      value = layout(value)
    elif leaf != "bias":
      raise ValueError(f"state_dict: unexpected entry {name!r} (expected '*.weight' or '*.bias')")
    node = params
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = jnp.asarray(value)
  return params
