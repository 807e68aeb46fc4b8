"""A small residual convolutional network: the engine's example model and a smoke-test baseline.

DnCNN-shaped (Zhang et al., 2017, "Beyond a Gaussian Denoiser", TIP): conv-ReLU, ``depth - 2``
conv-ReLU blocks, a final conv, and a global residual, on bands-last images ``(N, H, W, C)``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jspectral.nn.model_spec import ModelSpec


class ResidualConvNet(nn.Module):
  """``y = x + f(x)`` with ``f`` a stack of ``depth`` 3x3 convolutions of ``features`` channels.

  The last convolution starts at zero, so training starts from the identity.

  Attributes:
    features: hidden width.
    depth: number of convolutions (>= 2).
  """

  features: int = 32
  depth: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the network.

    Args:
      x: bands-last images ``(N, H, W, C)``.

    Returns:
      ``(N, H, W, C)``.
    """
    if x.ndim != 4:
      raise ValueError(f"x: expected (N, H, W, C), got shape {x.shape}")
    if self.depth < 2:
      raise ValueError(f"depth: expected >= 2, got {self.depth}")
    h = nn.relu(nn.Conv(self.features, (3, 3))(x))
    for _ in range(self.depth - 2):
      h = nn.relu(nn.Conv(self.features, (3, 3))(h))
    return x + nn.Conv(x.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)


MODELS = {
    "residual_convnet": ModelSpec(
        build=ResidualConvNet,
        example_inputs=lambda m: {"x": jax.ShapeDtypeStruct((1, 32, 32, 31), jnp.float32)}),
}
