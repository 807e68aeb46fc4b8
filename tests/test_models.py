"""The model registry: names, creation, parameter counts without allocation, errors."""

import jax
import pytest

from jspectral import models


def test_registry_counts_and_builds():
  assert "residual_convnet" in models.names()
  # 3x3 convs: 31->32, 32->32 (x2), 32->31, with biases.
  expected = (9 * 31 * 32 + 32) + 2 * (9 * 32 * 32 + 32) + (9 * 32 * 31 + 31)
  assert models.param_count_of("residual_convnet") == expected
  module, variables = models.init("residual_convnet", jax.random.PRNGKey(0))
  assert models.param_count(variables) == expected
  assert models.param_count_of("residual_convnet", features=8, depth=2) == (
      9 * 31 * 8 + 8) + (9 * 8 * 31 + 31)


@pytest.mark.slow  # ~20 s: traces every default model
def test_every_registered_model_has_a_countable_default():
  for name in models.names():
    assert models.param_count_of(name) > 0, name


def test_errors_name_the_problem():
  with pytest.raises(ValueError, match="unknown model name 'nope'"):
    models.create("nope")
  with pytest.raises(ValueError, match="no PyTorch converter"):
    models.from_torch("residual_convnet", {})
  with pytest.raises(ValueError, match="params"):
    models.param_count({"batch_stats": {}})


RELEASED = [("hsdt", "denoising_parity", "hsdt_c4"), ("man", "denoising_parity", "man_v2_c4"),
            ("essaformer", "essaformer_parity", "model_x4"),
            ("mixup_mtl", "hsi_sr_mixup_parity", "model_x4")]


@pytest.mark.parametrize("name, pack, case", RELEASED, ids=[r[0] for r in RELEASED])
@pytest.mark.parametrize("layout", ["net", "state_dict_data_parallel", "model"])
def test_released_checkpoint_layouts_load_like_the_flat_state_dict(name, pack, case, layout):
  """The official files wrap their weights ({'net': ...} for HSIR/HSDT/MAN, 'state_dict' with
  DataParallel's 'module.' prefix for SSPSR-style trainers); each loads as the flat dict does."""
  import numpy as np

  from tests.conftest import load_pack

  flat = load_pack(pack).state(case)
  wrapped = {
      "net": lambda: {"net": flat, "optimizer": {"state": {}}, "epoch": 80, "iteration": 1},
      "state_dict_data_parallel": lambda: {"epoch": 3, "state_dict": {
          f"module.{k}": v for k, v in flat.items()}},
      "model": lambda: {"model": flat, "args": {"lr": 1e-4}},
  }[layout]()
  _, expected = models.from_torch(name, flat)
  _, loaded = models.from_torch(name, wrapped)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(loaded), strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_checkpoint_without_tensors_is_named():
  with pytest.raises(ValueError, match="no state_dict found; top-level keys"):
    models.from_torch("hsdt", {"epoch": 3, "optimizer": {"lr": 1.0}})
