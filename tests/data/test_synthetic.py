"""Synthetic cubes obey the linear mixing model they are built from."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.data import synthetic


def test_cube_is_deterministic_in_range_and_low_rank():
  key = jax.random.PRNGKey(0)
  cube = synthetic.hyperspectral_cube(key, 24, 20, 31, num_endmembers=4)
  np.testing.assert_array_equal(cube, synthetic.hyperspectral_cube(key, 24, 20, 31,
                                                                     num_endmembers=4))
  assert cube.shape == (24, 20, 31) and 0 <= cube.min() and cube.max() <= 1
  singular = np.linalg.svd(np.asarray(cube).reshape(-1, 31), compute_uv=False)
  assert singular[4] < 1e-4 * singular[0]  # rank = number of endmembers


def test_abundances_sum_to_one_and_are_spatially_smooth():
  maps = synthetic.abundance_maps(jax.random.PRNGKey(1), 32, 32, 5, correlation_length=8.0)
  np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
  neighbour = jnp.mean(jnp.abs(jnp.diff(maps, axis=0)))
  shuffled = jnp.mean(jnp.abs(jnp.diff(jax.random.permutation(jax.random.PRNGKey(2),
                                                                maps.reshape(-1, 5)), axis=0)))
  assert neighbour < 0.5 * shuffled


def test_bad_sizes():
  with pytest.raises(ValueError, match="bands"):
    synthetic.hyperspectral_cube(jax.random.PRNGKey(0), 8, 8, 0)
