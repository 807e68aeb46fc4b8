"""Spectral adapter: official parity (eval and train BatchNorm), band boundary, invariances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.nn.spectral_adapter import SpectralAdapter, batch_norm, spectral_lengths
from tests.conftest import load_pack

PACK = "spectral_earth_parity"


@pytest.fixture(scope="module")
def official():
  pack = load_pack(PACK)
  module, variables = models.from_torch("spectral_adapter", pack.state("adapter"))
  x = jnp.asarray(pack["adapter/input"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
  return pack, module, variables, x


def test_adapter_parity_eval(official):
  pack, module, variables, x = official
  y = jax.jit(module.apply)(variables, x)
  np.testing.assert_allclose(np.asarray(y).transpose(0, 3, 1, 2), pack["adapter/output_eval"],
                             atol=1e-5)


def test_adapter_parity_train_batch_stats(official):
  pack, module, variables, x = official
  y, _ = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=["batch_stats"]))(
      variables, x)
  np.testing.assert_allclose(np.asarray(y).transpose(0, 3, 1, 2),
                             pack["adapter/output_train_batchstats"], atol=1e-5)


def test_param_count():
  assert models.param_count_of("spectral_adapter") == 56_192


@pytest.mark.parametrize("bands,lengths", [(202, (40, 8, 2)), (235, (47, 9, 3)),
                                           (198, (39, 7, 2)), (150, (30, 6, 2)), (75, (15, 3, 1))])
def test_spectral_lengths(bands, lengths):
  assert spectral_lengths(bands) == lengths


def test_band_boundary():
  module = SpectralAdapter()
  out = jax.eval_shape(module.init_with_output, jax.random.key(0), jnp.zeros((1, 2, 3, 75)))[0]
  assert out.shape == (1, 2, 3, 128)
  with pytest.raises(ValueError, match="at least 75 bands, got 74"):
    module.init(jax.random.key(0), jnp.zeros((1, 2, 3, 74)))
  with pytest.raises(ValueError, match="bands-last"):
    module.init(jax.random.key(0), jnp.zeros((2, 3, 202)))


def test_same_weights_accept_other_sensors(official):
  _, module, variables, _ = official
  for bands in (235, 198, 150):
    out = jax.eval_shape(module.apply, variables, jnp.zeros((2, 3, 4, bands)))
    assert out.shape == (2, 3, 4, 128)


def test_pixels_are_independent_in_eval_mode(official):
  _, module, variables, x = official
  apply = jax.jit(module.apply)
  y = apply(variables, x)
  # Permuting pixels permutes outputs.
  flat = x.reshape(3, 20, 202)
  perm = np.random.default_rng(0).permutation(20)
  y_perm = apply(variables, flat[:, perm].reshape(3, 5, 4, 202))
  np.testing.assert_allclose(y_perm.reshape(3, 20, 128), y.reshape(3, 20, 128)[:, perm], atol=1e-5)
  # Changing one pixel changes only that output.
  y_one = apply(variables, x.at[1, 2, 3].add(1.0))
  changed = np.abs(np.asarray(y_one - y)).max(axis=-1) > 0
  assert changed[1, 2, 3] and changed.sum() == 1


def test_batch_norm_variance_is_two_pass():
  """A channel whose mean (1e3) dwarfs its spread (1e-2): flax's default E[x^2] - E[x]^2 loses
  every digit in float32; the two-pass variance keeps the normalised output exact."""
  x = (1e3 + 1e-2 * np.random.default_rng(0).standard_normal((64, 1))).astype(np.float32)
  bn = batch_norm(True, "bn")
  variables = bn.init(jax.random.key(0), jnp.zeros((64, 1)))
  y, _ = bn.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
  x = x.astype(np.float64)
  expected = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
  np.testing.assert_allclose(np.asarray(y), expected, atol=1e-3)
