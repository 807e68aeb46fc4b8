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
