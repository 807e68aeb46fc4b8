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

from jspectral.nn import conv3d as conv3d_lib
from jspectral.nn import dense

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


def conv3d(features: int, kernel: Sequence[int] = (3, 3, 3), stride: Sequence[int] = (1, 1, 1),
           *, use_bias: bool = False, kernel_init: Callable = kaiming_fan_out,
           bias_init: Callable = nn.initializers.zeros,
           name: str | None = None) -> conv3d_lib.Conv3d:
  """PyTorch ``Conv3d`` with zero padding ``k // 2`` on ``(N, D, H, W, F)`` features, initialised
  as the denoisers' official code does (no bias, Kaiming fan-out).

  Args:
    features: output channels.
    kernel: ``(kD, kH, kW)``.
    stride: ``(sD, sH, sW)``.
    use_bias: add a bias.
    kernel_init: kernel initializer (Kaiming fan_out by default).
    bias_init: bias initializer.
    name: module name.

  Returns:
    A :class:`jspectral.nn.conv3d.Conv3d` mapping
    ``(N, D, H, W, F_in) -> (N, D / sD, H / sH, W / sW, features)``.
  """
  return conv3d_lib.Conv3d(features, tuple(kernel), tuple(stride), use_bias, kernel_init,
                           bias_init, name=name)


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
