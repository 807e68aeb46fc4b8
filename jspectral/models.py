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


# Keys under which released checkpoints nest their weights (HSIR/HSDT/MAN ``{'net': ...}``,
# Lightning and SSPSR-style ``{'state_dict': ...}``, ``{'model': ...}``).
CHECKPOINT_KEYS = ("net", "state_dict", "model", "model_state_dict", "params")


def unwrap_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The flat ``state_dict`` inside a released checkpoint, as NumPy arrays.

  Descends through the wrapper keys of :data:`CHECKPOINT_KEYS` (a dict that holds one of them and
  no tensors) and strips the ``module.`` prefix that ``DataParallel`` adds to every key. Tensors
  are converted with ``.numpy()`` when they have it (torch), ``np.asarray`` otherwise.

  Args:
    checkpoint: what ``torch.load(path, map_location="cpu")`` returned, or a flat state dict.

  Returns:
    ``{parameter name: array}``.

  Raises:
    ValueError: no tensor is found (the message lists the keys that were there).
  """
  node = checkpoint
  while isinstance(node, Mapping) and not any(hasattr(v, "shape") for v in node.values()):
    inner = next((k for k in CHECKPOINT_KEYS if isinstance(node.get(k), Mapping)), None)
    if inner is None:
      raise ValueError(f"checkpoint: no state_dict found; top-level keys {sorted(node)[:10]} "
                       f"(expected tensors or one of {CHECKPOINT_KEYS})")
    node = node[inner]
  to_numpy = lambda v: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
  strip = lambda k: k[len("module."):] if k.startswith("module.") else k
  return {strip(k): to_numpy(v) for k, v in node.items() if hasattr(v, "shape")}


def from_torch(name: str, state_dict: Mapping[str, Any]) -> tuple[nn.Module, dict]:
  """Builds model ``name`` from an official PyTorch checkpoint or ``state_dict``.

  The configuration (widths, depths, band counts) is read off the tensor shapes; the returned
  ``module.apply(variables, x)`` takes bands-last input. The released files' wrappers are
  unwrapped (:func:`unwrap_checkpoint`), so ``from_torch("hsdt", torch.load(path,
  map_location="cpu"))`` works on the official ``{'net': ...}`` checkpoints; an ``.npz`` loads
  with ``dict(np.load(path))``.

  Args:
    name: registered model name.
    state_dict: a checkpoint dict or a flat ``state_dict`` (torch tensors or arrays).

  Returns:
    ``(module, variables)``.

  Raises:
    ValueError: the model has no converter, or the checkpoint holds no tensors.
  """
  model_spec = spec(name)
  if model_spec.from_torch is None:
    raise ValueError(f"model {name!r} has no PyTorch converter")
  return model_spec.from_torch(unwrap_checkpoint(state_dict))


def _init_rngs(rng: jax.Array, model_spec: ModelSpec) -> dict[str, jax.Array]:
  keys = jax.random.split(rng, 1 + len(model_spec.rng_names))
  return dict(zip(("params", *model_spec.rng_names), keys, strict=True))


def _materialise(example: dict[str, Any]) -> dict[str, Any]:
  return {k: jax.numpy.zeros(v.shape, v.dtype) if isinstance(v, jax.ShapeDtypeStruct) else v
          for k, v in example.items()}
