"""3-D building blocks shared by the HSDT and MAN denoisers, and their PyTorch weight converter.

Both networks treat the spectrum as the depth axis of a 3-D feature map. Inside this package the
features are ``(N, D, H, W, F)`` (bands ``D`` as depth, Flax channels-last); the public models take
bands-last cubes ``(N, H, W, D)`` and reshape with :func:`to_volume` / :func:`from_volume`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from flax.linen.dtypes import promote_dtype

from jspectral.nn import canonical_conv, dense

# PyTorch ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``: std = sqrt(2 / (out * k^3)).
kaiming_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# PyTorch's default ConvTranspose3d init, kaiming_uniform(a=sqrt(5)) over weight.size(1) * k^3
# = out * k^3: uniform with bound 1 / sqrt(out * k^3).
torch_transpose_default = nn.initializers.variance_scaling(1.0 / 3.0, "fan_out", "uniform")


def to_volume(x: jax.Array) -> jax.Array:
  """Bands-last cube -> volume with one feature channel.

  Args:
    x: ``(N, H, W, D)``.

  Returns:
    ``(N, D, H, W, 1)``.
  """
  return jnp.transpose(x, (0, 3, 1, 2))[..., None]


def from_volume(v: jax.Array) -> jax.Array:
  """Volume -> bands-last cube.

  Args:
    v: ``(N, D, H, W, 1)``.

  Returns:
    ``(N, H, W, D)``.
  """
  return jnp.transpose(v[..., 0], (0, 2, 3, 1))


def check_cube(x: jax.Array, multiple: int, name: str = "x") -> None:
  """``ValueError`` unless ``x`` is ``(N, H, W, D)`` with H, W divisible by ``multiple``.

  Args:
    x: the array to check.
    multiple: required divisor of H and W.
    name: argument name used in the message.

  Returns:
    None.

  Raises:
    ValueError: if ``x`` is not 4-D or H, W are not divisible by ``multiple``.
  """
  if x.ndim != 4:
    raise ValueError(f"{name}: expected a bands-last cube (N, H, W, bands), got shape {x.shape}")
  _, h, w, _ = x.shape
  if h % multiple or w % multiple:
    raise ValueError(f"{name}: height and width must be divisible by {multiple} (2 ** number of "
                     f"downsamplings), got H={h}, W={w}; pad the cube to a multiple of {multiple}")


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

  XLA:CPU runs 2-D NHWC convolutions through its fast Eigen kernels but 3-D ones far slower
  (forward and both gradients; see ``docs/benchmarks.md``), so the band axis is folded into a
  2-D convolution: a ``(1, kh, kw)`` kernel is one 2-D convolution over ``(N * D, H, W)``, a
  ``(kd, 1, 1)`` kernel one over ``(N, D, H * W)``, and a ``(kd, kh, kw)`` kernel the sum of
  ``kd`` band-shifted outputs of 2-D convolutions over the band-padded ``(N * (D + kd - 1), H, W)``
  stack. Same values as the 3-D convolution up to
  the order of the floating-point sums.

  Args:
    v: ``(N, D, H, W, C_in)``.
    kernel: ``(kd, kh, kw, C_in, C_out)``, odd sizes.
    strides: ``(sD, sH, sW)``; ``sD`` must be 1 unless the kernel is ``(kd, 1, 1)``.

  Returns:
    ``(N, ceil(D / sD), ceil(H / sH), ceil(W / sW), C_out)``.
  """
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

  Parameters as ``nn.Conv`` (float32 ``kernel`` ``(kD, kH, kW, F_in, F_out)``, optional
  ``bias``), so checkpoints and initial values are those of the ``nn.Conv`` it replaces; the input
  and parameters are promoted to a common dtype. Computed by
  :func:`conv3d_same`.

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
  use_bias: bool = False
  kernel_init: Callable = kaiming_fan_out
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


def conv3d(features: int, kernel: Sequence[int] = (3, 3, 3), stride: Sequence[int] = (1, 1, 1),
           *, use_bias: bool = False, kernel_init: Callable = kaiming_fan_out,
           bias_init: Callable = nn.initializers.zeros, name: str | None = None) -> Conv3d:
  """PyTorch ``Conv3d`` with zero padding ``k // 2`` on ``(N, D, H, W, F)`` features.

  Args:
    features: output channels.
    kernel: ``(kD, kH, kW)``.
    stride: ``(sD, sH, sW)``.
    use_bias: add a bias.
    kernel_init: kernel initializer (Kaiming fan_out by default).
    bias_init: bias initializer.
    name: module name.

  Returns:
    A :class:`Conv3d` mapping ``(N, D, H, W, F_in) -> (N, D / sD, H / sH, W / sW, features)``.
  """
  return Conv3d(features, tuple(kernel), tuple(stride), use_bias, kernel_init, bias_init,
                name=name)


def pointwise(features: int, *, use_bias: bool = True, kernel_init: Callable = kaiming_fan_out,
              name: str | None = None) -> nn.Dense:
  """A 1x1x1 ``Conv3d``, as the equivalent per-position ``Dense`` over the feature axis.

  The kernel is ``(in, out)``; :func:`load_torch` squeezes the official ``(O, I, 1, 1, 1)``.
  Kaiming fan_out of a 1x1x1 conv is the fan_out of this ``Dense``.

  Args:
    features: output channels.
    use_bias: add a bias (zero init).
    kernel_init: kernel initializer.
    name: module name.

  Returns:
    An ``nn.Dense`` mapping ``(..., F_in) -> (..., features)``.
  """
  return dense.Dense(features, use_bias=use_bias, kernel_init=kernel_init,
                     bias_init=nn.initializers.zeros, name=name)


def align_corners_matrix(n: int) -> np.ndarray:
  """Linear-interpolation matrix of a x2 upsampling with ``align_corners=True``.

  Output sample ``i`` reads source coordinate ``i * (n - 1) / (2n - 1)`` (PyTorch's rule).

  Args:
    n: input length.

  Returns:
    ``(2n, n)`` float64 matrix.
  """
  out = 2 * n
  matrix = np.zeros((out, n), np.float64)
  scale = (n - 1) / (out - 1) if out > 1 else 0.0
  for i in range(out):
    src = i * scale
    lo = min(int(np.floor(src)), n - 1)
    hi = min(lo + 1, n - 1)
    frac = src - lo
    matrix[i, lo] += 1.0 - frac
    matrix[i, hi] += frac
  return matrix


def upsample_hw(v: jax.Array) -> jax.Array:
  """``nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear", align_corners=True)``.

  Identity along bands, bilinear with aligned corners in H and W.

  Args:
    v: ``(N, D, H, W, F)``.

  Returns:
    ``(N, D, 2H, 2W, F)``.
  """
  _, _, h, w, _ = v.shape
  mh = jnp.asarray(align_corners_matrix(h), v.dtype)
  mw = jnp.asarray(align_corners_matrix(w), v.dtype)
  v = jnp.einsum("ph,ndhwf->ndpwf", mh, v, precision="highest")
  return jnp.einsum("qw,ndpwf->ndpqf", mw, v, precision="highest")


def transposed_conv_kernel(weight: np.ndarray) -> np.ndarray:
  """PyTorch ``ConvTranspose3d(stride=1, padding=k//2)`` weight -> ordinary-convolution kernel.

  The kernel of the equivalent ordinary convolution is spatially flipped.

  Args:
    weight: ``(I, O, kD, kH, kW)``.

  Returns:
    ``(kD, kH, kW, I, O)``.
  """
  return np.ascontiguousarray(weight[:, :, ::-1, ::-1, ::-1].transpose(2, 3, 4, 0, 1))


def load_torch(state_dict: Mapping[str, np.ndarray], renames: Sequence[tuple[str, str]],
               expected: Mapping, transposed: Callable[[str], bool] = lambda key: False) -> dict:
  """Converts an official PyTorch ``state_dict`` into Flax ``variables``.

  Args:
    state_dict: official name -> array (Conv3d ``(O, I, kD, kH, kW)``, Linear ``(O, I)``,
      BatchNorm ``weight/bias/running_mean/running_var``).
    renames: ``(regex, replacement)`` pairs turning an official name into the dotted Flax path.
    expected: the variables tree (arrays or ``ShapeDtypeStruct``) the converted tree must equal in
      structure and shapes, e.g. from ``jax.eval_shape(module.init, ...)``.
    transposed: predicate on the official name: ``True`` for ``ConvTranspose3d`` weights.

  Returns:
    ``{"params": ..., "batch_stats": ...}`` shaped like ``expected``.

  Raises:
    ValueError: names missing or left over, or a shape that disagrees with ``expected``.
  """
  flat = {}
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked"):
      continue
    name = key
    for pattern, replacement in renames:
      name = re.sub(pattern, replacement, name)
    *path, leaf = name.split(".")
    value = np.asarray(value)
    if leaf == "weight" and value.ndim == 5:
      collection, leaf, value = "params", "kernel", (
          transposed_conv_kernel(value) if transposed(key) else value.transpose(2, 3, 4, 1, 0))
    elif leaf == "weight" and value.ndim == 2:
      collection, leaf, value = "params", "kernel", value.T
    elif leaf == "weight":
      collection, leaf = "params", "scale"
    elif leaf == "bias":
      collection = "params"
    elif leaf in ("running_mean", "running_var"):
      collection, leaf = "batch_stats", leaf[len("running_"):]
    else:
      raise ValueError(f"state_dict: unexpected entry {key!r}")
    flat[(collection, *path, leaf)] = np.ascontiguousarray(value)
  want = traverse_util.flatten_dict(flax.core.unfreeze(expected))
  missing = sorted("/".join(k) for k in want.keys() - flat.keys())
  extra = sorted("/".join(k) for k in flat.keys() - want.keys())
  if missing or extra:
    raise ValueError(f"state_dict: does not match the configuration read off its shapes; "
                     f"missing {missing[:5]}, unexpected {extra[:5]}")
  for k, v in flat.items():
    if len(want[k].shape) == 2 and v.ndim == 5 and v.shape[:3] == (1, 1, 1):
      flat[k] = v = v[0, 0, 0]
    if tuple(want[k].shape) != v.shape:
      raise ValueError(f"state_dict: {'/'.join(k)} has shape {v.shape}, expected {want[k].shape}")
  return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})


def layer_indices(state_dict: Mapping[str, np.ndarray], prefix: str) -> list[int]:
  """Sorted indices ``i`` of the official names starting with ``f"{prefix}.{i}."``.

  Args:
    state_dict: official name -> array.
    prefix: dotted name prefix, e.g. ``"encoder.layers"``.

  Returns:
    Sorted list of ints.
  """
  pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
  return sorted({int(m.group(1)) for k in state_dict if (m := pattern.match(k))})
