"""PyTorch ``Conv3d`` (zero padding ``k // 2``) as 2-D convolutions that XLA:CPU runs fast.

XLA:CPU runs 2-D NHWC convolutions through its fast Eigen kernels but 3-D ones several times
slower, forward and in both gradients (``docs/benchmarks.md``: HSDT-M's ``3x3x3`` layer 1.28 s
forward, 5.3 s with gradients; LoLA-SpecViT's ``(7|5|3, 3, 3)`` front end on 150 patches 3.2 s
forward, 9.6 s with gradients, against 1.3 s and 4.4 s folded). Used by the HSDT and MAN denoisers
and LoLA-SpecViT's spectral front end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jspectral.nn import canonical_conv

_NHWC = ("NHWC", "HWIO", "NHWC")
_STACK_OUT = 48


def _conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
            padding: Sequence[tuple[int, int]]) -> jax.Array:
  strides = tuple(strides)
  if strides != (1, 1):  # the input gradient per phase, not at the dilated resolution
    return canonical_conv.strided_conv(x, kernel, strides, padding)
  return jax.lax.conv_general_dilated(x, kernel, strides, tuple(padding), dimension_numbers=_NHWC)


def conv3d_same(v: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1, 1)) -> jax.Array:
  """PyTorch ``Conv3d`` (zero padding ``k // 2``, no bias) written as 2-D convolutions.

  A ``(1, kh, kw)`` kernel is one 2-D convolution over ``(N * D, H, W)``, a ``(kd, 1, 1)`` kernel
  one over ``(N, D, H * W)``, and a ``(kd, kh, kw)`` kernel the sum of ``kd`` band-shifted outputs
  of 2-D convolutions over the band-padded ``(N * (D + kd - 1), H, W)`` stack. Same values as the
  3-D convolution up to the order of the floating-point sums.

  Args:
    v: ``(N, D, H, W, C_in)``.
    kernel: ``(kd, kh, kw, C_in, C_out)``, odd sizes.
    strides: ``(sD, sH, sW)``; ``sD`` must be 1 unless the kernel is ``(kd, 1, 1)``.

  Returns:
    ``(N, ceil(D / sD), ceil(H / sH), ceil(W / sW), C_out)``.

  Raises:
    ValueError: if the shapes do not match, a kernel size is even, or a band stride comes with a
      spatial kernel.
  """
  if v.ndim != 5 or kernel.ndim != 5 or kernel.shape[3] != v.shape[-1]:
    raise ValueError(f"v, kernel: expected (N, D, H, W, C_in) and (kd, kh, kw, C_in, C_out), got "
                     f"{v.shape} and {kernel.shape}")
  if any(k % 2 == 0 for k in kernel.shape[:3]):
    raise ValueError(f"kernel: expected odd (kd, kh, kw) (padding k // 2 keeps the size only "
                     f"then), got {kernel.shape[:3]}")
  n, d, h, w, c = v.shape
  kd, kh, kw = kernel.shape[:3]
  sd, sh, sw = strides
  if kh == kw == 1 and sh == sw == 1:
    out = _conv2d(v.reshape(n, d, h * w, c), kernel[:, 0], (sd, 1), ((kd // 2, kd // 2), (0, 0)))
    return out.reshape(n, out.shape[1], h, w, -1)
  if sd != 1:
    raise ValueError(f"strides: a band stride needs a (kd, 1, 1) kernel, got strides {strides} "
                     f"with kernel {kernel.shape[:3]}")
  padded = jnp.pad(v, ((0, 0), (kd // 2, kd // 2), (0, 0), (0, 0), (0, 0)))
  flat = padded.reshape(-1, h, w, c)
  spatial = ((kh // 2, kh // 2), (kw // 2, kw // 2))
  co = kernel.shape[-1]
  if kd * co <= _STACK_OUT:
    # Few output channels: the kd slices as one convolution to kd * co channels (XLA:CPU is
    # slow for narrow outputs; MAN-M, 132 x 64x64, 3x3: 32 -> 16 0.21 s as three convolutions vs
    # 0.15 s stacked, 16 -> 1 0.062 vs 0.037 s; 32 -> 32 stacked is slower, 0.053 vs 0.035 s).
    stacked = _conv2d(flat, jnp.transpose(kernel, (1, 2, 3, 0, 4)).reshape(kh, kw, c, kd * co),
                      (sh, sw), spatial)
    stacked = stacked.reshape(n, d + kd - 1, *stacked.shape[1:3], kd, co)
    outs = [stacked[:, i:i + d, :, :, i] for i in range(kd)]
  else:
    outs = [_conv2d(flat, kernel[i], (sh, sw), spatial) for i in range(kd)]
    outs = [o.reshape(n, d + kd - 1, *o.shape[1:])[:, i:i + d] for i, o in enumerate(outs)]
  # Output band t reads input band t + i - kd // 2 through kernel slice i: every slice runs over
  # the whole padded stack (one shared input, no band-shifted copies) and is shifted after.
  return sum(outs[1:], outs[0])


class Conv3d(nn.Module):
  """PyTorch ``Conv3d`` with zero padding ``k // 2`` on ``(N, D, H, W, F)`` features.

  Parameters and initialisers as ``nn.Conv``'s (float32 ``kernel`` ``(kD, kH, kW, F_in, F_out)``,
  optional ``bias``), so checkpoints and initial values are those of the ``nn.Conv`` it replaces;
  the input and parameters are promoted to a common dtype. Computed by :func:`conv3d_same`.

  Attributes:
    features: output channels.
    kernel_size: ``(kD, kH, kW)``, odd sizes.
    strides: ``(sD, sH, sW)``.
    use_bias: add a bias.
    kernel_init: kernel initializer.
    bias_init: bias initializer.
  """

  features: int
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  strides: tuple[int, int, int] = (1, 1, 1)
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, v: jax.Array) -> jax.Array:
    """Applies the convolution.

    Args:
      v: ``(N, D, H, W, F_in)``.

    Returns:
      ``(N, D / sD, H / sH, W / sW, features)``.
    """
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, v.shape[-1], self.features), jnp.float32)
    bias = (self.param("bias", self.bias_init, (self.features,), jnp.float32)
            if self.use_bias else None)
    v, kernel, bias = promote_dtype(v, kernel, bias)
    out = conv3d_same(v, kernel, self.strides)
    return out + bias if self.use_bias else out
