"""The toolbox's released-weights loader on state dicts of the official layout.

``parity/toolbox_state_dicts_b6.npz`` holds ``state_dict()``s of the official ``HyperPNN_model(6)``,
``Hyper_DSNet(6)`` and ``R_PNN_model()`` (matciotola/hyperspectral_pansharpening_toolbox
1b2ea9b, random init, float32), keys prefixed by the registry name.
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

from jspectral.pansharpening import tasks

PARITY = pathlib.Path(__file__).parent / "parity"


def write_released(folder: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
  """Writes ``<folder>/<name>.npz`` for each network of the pack; returns the state dicts."""
  pack = np.load(PARITY / "toolbox_state_dicts_b6.npz")
  states = {}
  for key in pack.files:
    name, param = key.split("/", 1)
    states.setdefault(name, {})[param] = pack[key]
  folder.mkdir(parents=True, exist_ok=True)
  for name, state in states.items():
    np.savez(folder / f"{name}.npz", **state)
  return states


def test_released_weights_convert_the_official_layout(tmp_path):
  states = write_released(tmp_path / "weights")
  for name, state in states.items():
    module, params, extra = tasks.released_weights(name, tmp_path / "weights")
    assert extra == {}
    assert sum(p.size for p in jax.tree_util.tree_leaves(params)) == sum(
        v.size for v in state.values())
    if name == "hyperpnn":
      assert module.nbands == 6
      out = module.apply({"params": params}, np.ones((1, 12, 12, 1)), np.ones((1, 12, 12, 6)))
      assert out.shape == (1, 12, 12, 6) and np.isfinite(out).all()
  # The toolbox checkout layout is the fallback.
  assert tasks.released_weights_path("darn", tmp_path) == tmp_path / "DHPDarn/weights/PRISMA.tar"


def test_released_weights_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="HyperPNN/weights/PRISMA.tar"):
    tasks.released_weights("hyperpnn", tmp_path)
  with pytest.raises(ValueError, match="releases weights"):
    tasks.released_weights("pca_z_pnn", tmp_path)
  if importlib.util.find_spec("torch") is None:
    (tmp_path / "HSpeNet" / "weights").mkdir(parents=True)
    (tmp_path / "HSpeNet" / "weights" / "PRISMA.tar").write_bytes(b"not read")
    with pytest.raises(ImportError, match="np.savez"):
      tasks.released_weights("hspenet", tmp_path)
