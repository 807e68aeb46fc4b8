"""The model registry: one door to every model of every system.

Each family module declares its models in a module-level ``MODELS`` dict of :class:`ModelSpec`
(name -> how to build the default configuration, an example input for ``init``, and optionally a
converter from the official PyTorch ``state_dict``). This file lists those modules and nothing else.

>>> import jspectral.models as models
>>> module = models.create("demo_mlp", features=8)            # doctest: +SKIP
>>> models.param_count_of("demo_mlp")                           # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jspectral.nn.model_spec import ModelSpec, StateDict  # noqa: F401  (re-exported)

# Modules whose ``MODELS`` dicts make up the registry .
FAMILY_MODULES = (
  "jspectral.nn.convnet",
  "jspectral.classification.lola_specvit",
  "jspectral.graph.encoders",
  "jspectral.nn.spectral_adapter",
  "jspectral.nn.spec_resnet",
  "jspectral.nn.spec_vit",
  "jspectral.superres.essaformer",
  "jspectral.superres.mixup_mtl",
  "jspectral.nn.resnet",
  "jspectral.ssl.intl",
  "jspectral.pansharpening.deep",
  "jspectral.pansharpening.rho_pnn",
  "jspectral.pde.nsm",
  "jspectral.denoising.hsdt",
  "jspectral.denoising.man",
)

def _registry() -> dict[str, ModelSpec]:
  table = {}
  for module_name in FAMILY_MODULES:
    for name, spec in importlib.import_module(module_name).MODELS.items():
      if name in table:
        raise RuntimeError(f"model name {name!r} registered twice (again in {module_name})")
      table[name] = spec
  return table


def names() -> list[str]:
  """Sorted names of every registered model."""
  return sorted(_registry())


def spec(name: str) -> ModelSpec:
  """The :class:`ModelSpec` registered under ``name``."""
  table = _registry()
  if name not in table:
    raise ValueError(f"unknown model name {name!r}; registered names: {', '.join(sorted(table))}")
  return table[name]


def create(name: str, **overrides) -> nn.Module:
  """Builds model ``name`` in its paper-default configuration, with ``overrides`` applied."""
  return spec(name).build(**overrides)


def init(name: str, rng: jax.Array, **overrides) -> tuple[nn.Module, dict]:
  """Builds model ``name`` and initialises its variables on its example input."""
  model_spec = spec(name)
  module = model_spec.build(**overrides)
  return module, module.init(_init_rngs(rng, model_spec), **_materialise(
      model_spec.example_inputs(module)))


def param_count(variables: Mapping[str, Any]) -> int:
  """Number of scalars in the ``params`` collection (BatchNorm statistics and other state excluded).

  Works on arrays and on ``jax.ShapeDtypeStruct`` trees alike.
  """
  if "params" not in variables:
    raise ValueError("variables: expected a mapping with a 'params' collection")
  return int(sum(np.prod(leaf.shape, dtype=np.int64)
                 for leaf in jax.tree_util.tree_leaves(variables["params"])))


def param_count_of(name: str, **overrides) -> int:
  """Parameter count of model ``name`` via ``jax.eval_shape``: nothing is allocated."""
  model_spec = spec(name)
  module = model_spec.build(**overrides)
  example = model_spec.example_inputs(module)
  arrays = {k: v for k, v in example.items() if isinstance(v, jax.ShapeDtypeStruct | jax.Array)}
  static = {k: v for k, v in example.items() if k not in arrays}
  shapes = jax.eval_shape(
      lambda rng, arrays: module.init(_init_rngs(rng, model_spec), **arrays, **static),
      jax.random.key(0), arrays)
  return param_count(shapes)


def from_torch(name: str, state_dict: StateDict) -> tuple[nn.Module, dict]:
  """Builds model ``name`` from an official PyTorch ``state_dict`` (name -> NumPy array).

  The configuration (widths, depths, band counts) is read off the tensor shapes; the returned
  ``module.apply(variables, x)`` takes bands-last input. Load a released ``.pth`` with
  ``{k: v.numpy() for k, v in torch.load(path, map_location="cpu").items()}`` or an ``.npz``
  with ``dict(np.load(path))``.
  """
  model_spec = spec(name)
  if model_spec.from_torch is None:
    raise ValueError(f"model {name!r} has no PyTorch converter")
  return model_spec.from_torch({k: np.asarray(v) for k, v in state_dict.items()})


def _init_rngs(rng: jax.Array, model_spec: ModelSpec) -> dict[str, jax.Array]:
  keys = jax.random.split(rng, 1 + len(model_spec.rng_names))
  return dict(zip(("params", *model_spec.rng_names), keys, strict=True))


def _materialise(example: dict[str, Any]) -> dict[str, Any]:
  return {k: jax.numpy.zeros(v.shape, v.dtype) if isinstance(v, jax.ShapeDtypeStruct) else v
          for k, v in example.items()}
