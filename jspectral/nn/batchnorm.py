"""BatchNorm with PyTorch's training-mode semantics (unbiased running variance).

Used by the models whose official code is PyTorch and whose running statistics must follow it
step for step (HSDT's S3Conv, LoLA-SpecViT's 3-D front end, patch embedding and ReduceSize).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class TorchBatchNorm(nn.Module):
  """BatchNorm over the last axis with ``torch.nn.BatchNorm`` semantics in training mode.

  Training normalises with the batch mean and biased variance over every axis but the last and
  updates the running statistics as PyTorch does: ``r <- (1 - m) r + m s`` with the *unbiased*
  batch variance (``n / (n - 1)``); Flax's ``nn.BatchNorm`` would use the biased one. Variable
  names are Flax's (``params/scale``, ``params/bias``, ``batch_stats/mean``, ``batch_stats/var``),
  so official ``weight/bias/running_mean/running_var`` load unchanged.

  Attributes:
    momentum: PyTorch's momentum ``m`` (0.1).
    epsilon: added to the variance (1e-5).
  """

  momentum: float = 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    """Normalises ``x``.

    Args:
      x: ``(..., C)``.
      use_running_average: evaluation mode (running statistics, nothing updated).

    Returns:
      ``(..., C)``.
    """
    channels = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (channels,))
    bias = self.param("bias", nn.initializers.zeros, (channels,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (channels,), jnp.float32)
    running_var = self.variable("batch_stats", "var", jnp.ones, (channels,), jnp.float32)
    if use_running_average:
      mean, var = running_mean.value, running_var.value
    else:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(x, axes)
      var = jnp.mean(jnp.square(x - mean), axes)
      if not self.is_initializing():
        n = x.size // channels
        m = self.momentum
        running_mean.value = (1 - m) * running_mean.value + m * mean
        running_var.value = (1 - m) * running_var.value + m * var * n / max(n - 1, 1)
    return (x - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
