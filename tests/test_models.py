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
