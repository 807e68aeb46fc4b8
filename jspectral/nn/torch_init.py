"""PyTorch's default initialisation of ``nn.Linear`` and ``nn.Conv*`` for any Flax parameter tree.

``torch.nn.Linear``/``Conv{1,2,3}d`` draw weights with ``kaiming_uniform_(a=sqrt(5))`` and biases
from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; both bounds reduce to ``1/sqrt(fan_in)``.
Networks whose official code keeps those defaults (ESSAformer, Spectral-Mixup) are initialised
in Flax and then passed through :func:`torch_default_init`, which redraws every kernel and its
sibling bias with the PyTorch distribution; everything else
(norm scales, custom-initialised layers) is left alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np
from flax import traverse_util

Path = tuple[str, ...]


def fan_in(kernel_shape: tuple[int, ...], *, transposed: bool = False) -> int:
  """PyTorch's ``fan_in`` of a Flax kernel.

  Args:
    kernel_shape: Flax layout, ``(in, out)`` for Dense or ``(*window, in / groups, out)`` for Conv.
    transposed: a ``ConvTranspose`` kernel; PyTorch's weight is ``(in, out / groups, *window)`` and
      its ``fan_in`` is ``weight.size(1) * prod(window)``, i.e. counted over the outputs.

  Returns:
    The number the default bounds divide by.
  """
  window = math.prod(kernel_shape[:-2])
  return window * (kernel_shape[-1] if transposed else kernel_shape[-2])


def torch_default_init(params, key: jax.Array, *,
                       transposed: Callable[[Path], bool] = lambda path: False,
                       keep: Callable[[Path], bool] = lambda path: False):
  """Redraws every ``kernel`` (rank >= 2) and its sibling ``bias`` as PyTorch's defaults do.

  Args:
    params: a Flax parameter tree (the ``params`` collection).
    key: PRNG key; each kernel gets ``fold_in(key, its index in sorted path order)``.
    transposed: predicate on a module path (the kernel's path without ``"kernel"``) marking
      ``ConvTranspose`` layers, whose fan-in PyTorch counts over the outputs.
    keep: predicate on a module path for layers whose own initialiser must stay (the official
      code's custom inits, zero-initialised heads).

  Returns:
    A tree of the same structure: ``U(-b, b)`` kernels and biases with ``b = 1/sqrt(fan_in)``.
  """
  flat = traverse_util.flatten_dict(params)
  modules = sorted(path[:-1] for path, leaf in flat.items()
                   if path[-1] == "kernel" and np.ndim(leaf) >= 2 and not keep(path[:-1]))
  out = dict(flat)
  for index, module in enumerate(modules):
    kernel = flat[module + ("kernel",)]
    bound = 1.0 / math.sqrt(fan_in(kernel.shape, transposed=transposed(module)))
    k_kernel, k_bias = jax.random.split(jax.random.fold_in(key, index))
    out[module + ("kernel",)] = jax.random.uniform(k_kernel, kernel.shape, kernel.dtype,
                                                   -bound, bound)
    bias = flat.get(module + ("bias",))
    if bias is not None:
      out[module + ("bias",)] = jax.random.uniform(k_bias, bias.shape, bias.dtype, -bound, bound)
  return traverse_util.unflatten_dict(out)


def torch_default_params(shapes, key: jax.Array, *,
                         transposed: Callable[[Path], bool] = lambda path: False,
                         zero: Callable[[Path], bool] = lambda path: False):
  """PyTorch's default initialisation drawn directly for a tree of shapes, in ONE uniform draw.

  The distribution of :func:`torch_default_init` (``U(-b, b)``, ``b = 1/sqrt(fan_in)`` for every
  kernel and its bias) without running Flax's initialisers first and with a single random call
  for the whole tree: inside ``jit`` each ``jax.random`` call is its own threefry computation, and
  for a network of ~100 convs one call per layer costs minutes of XLA compile time on CPU.

  Args:
    shapes: a Flax parameter tree of arrays or ``jax.ShapeDtypeStruct`` (e.g. ``jax.eval_shape``
      of ``module.init``) holding only ``kernel``/``bias`` leaves.
    key: PRNG key.
    transposed: predicate on a module path marking ``ConvTranspose`` layers.
    zero: predicate on a module path for layers that start at zero (e.g. a zero-initialised
      residual head).

  Returns:
    A tree of arrays with ``shapes``' structure and dtypes.

  Raises:
    ValueError: a leaf is neither a kernel (rank >= 2) nor the bias of a module with a kernel.
  """
  flat = traverse_util.flatten_dict(shapes)
  bounds = {}
  for path in flat:
    kernel = flat.get(path[:-1] + ("kernel",))
    if path[-1] not in ("kernel", "bias") or kernel is None or len(kernel.shape) < 2:
      raise ValueError(f"shapes: {'/'.join(path)} is not a conv/dense kernel or its bias; "
                       f"PyTorch's default initialisation is not defined for it")
    module = path[:-1]
    bounds[path] = 0.0 if zero(module) else 1.0 / math.sqrt(
        fan_in(kernel.shape, transposed=transposed(module)))
  sizes = [math.prod(leaf.shape) for leaf in flat.values()]
  draws = jax.random.uniform(key, (sum(sizes),), minval=-1.0, maxval=1.0)
  out, start = {}, 0
  for (path, leaf), size in zip(flat.items(), sizes, strict=True):
    out[path] = (draws[start:start + size] * bounds[path]).reshape(leaf.shape).astype(leaf.dtype)
    start += size
  return traverse_util.unflatten_dict(out)
