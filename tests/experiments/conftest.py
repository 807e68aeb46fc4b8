"""Fixtures of the paper dry runs."""

import jax
import pytest


@pytest.fixture
def cheap_compiles():
  """XLA without most optimisations: the graphs are several, the inputs tiny."""
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)
