"""Pieces shared by the super-resolution models: PyTorch-ordered pixel (un)shuffle and the import
of PyTorch ``state_dict``s whose module names the Flax tree mirrors.

Both SR systems (ESSAformer, the multi-task Spectral Mixup network) upsample with
``torch.nn.PixelShuffle`` and name their Flax sub-modules exactly as the official ``nn.Module``
attributes (``blockup/convup/convu/0``), so one converter serves both.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """``torch.nn.PixelShuffle(factor)`` on bands-last input: ``(N, h, w, C r²) -> (N, h r, w r, C)``.

  Channel ``c r² + a r + b`` of the input becomes channel ``c`` at sub-pixel ``(a, b)``
  (PyTorch's order, not TensorFlow's ``depth_to_space``).
  """
  n, h, w, c = x.shape
  if c % (factor * factor):
    raise ValueError(f"x: channels ({c}) must be divisible by factor² = {factor * factor}")
  out = c // (factor * factor)
  x = x.reshape(n, h, w, out, factor, factor)
  return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * factor, w * factor, out)


def pixel_unshuffle(x: jax.Array, factor: int) -> jax.Array:
  """``torch.nn.PixelUnshuffle(factor)`` on bands-last input (inverse of :func:`pixel_shuffle`)."""
  n, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f"x: spatial size {h}x{w} must be divisible by {factor}")
  x = x.reshape(n, h // factor, factor, w // factor, factor, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // factor, w // factor, c * factor * factor)


# rank of a torch ``weight`` -> (Flax leaf name, layout change): conv OIHW -> HWIO, Linear
# (out, in) -> (in, out), LayerNorm weight -> scale.
_WEIGHT_LAYOUTS = {
    4: ("kernel", lambda v: v.transpose(2, 3, 1, 0)),
    2: ("kernel", lambda v: v.T),
    1: ("scale", lambda v: v),
}


def params_from_torch(state_dict: Mapping[str, np.ndarray]) -> dict:
  """Nested Flax ``params`` from a PyTorch ``state_dict`` whose names the Flax tree mirrors.

  ``a.b.0.weight`` goes to ``params["a"]["b"]["0"]``; 4-D weights (conv, OIHW) become HWIO
  ``kernel``s, 2-D weights (Linear, ``(out, in)``) become ``kernel = W.T``, 1-D weights
  (LayerNorm) become ``scale``; biases stay ``bias``. Arrays are converted to float32.
  """
  params: dict = {}
  for name, value in state_dict.items():
    *path, leaf = name.split(".")
    value = np.asarray(value, np.float32)
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
