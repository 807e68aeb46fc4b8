"""The record each model module registers: how to build, initialise and load one model.

Model modules (in ``nn/`` and in every family) declare a module-level ``MODELS`` dict of
:class:`ModelSpec`; the registry :mod:`jspectral.models` collects them. The record lives here, below
the families, so that model modules never import the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import numpy as np

StateDict = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """How to build, initialise and load one registered model.

  Attributes:
    build: ``**overrides -> nn.Module``; called with no argument it gives the paper's default.
    example_inputs: ``module -> dict`` of keyword arguments for ``module.init`` (arrays or
      ``jax.ShapeDtypeStruct``; e.g. ``{"x": ShapeDtypeStruct((1, 64, 64, 31)), "train": False}``).
    from_torch: optional ``state_dict -> (module, variables)``; reads the configuration off the
      tensor shapes of the official PyTorch ``state_dict`` and converts the weights.
    rng_names: the RNG streams ``init`` needs besides ``params`` (e.g. ``("dropout",)``).
  """

  build: Callable[..., nn.Module]
  example_inputs: Callable[[nn.Module], dict[str, Any]]
  from_torch: Callable[[StateDict], tuple[nn.Module, dict]] | None = None
  rng_names: tuple[str, ...] = ()
