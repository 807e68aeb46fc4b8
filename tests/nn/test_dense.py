"""``dense.Dense``: nn.Dense's parameters, values and gradients, with no transposed copy on CPU."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.nn import dense


def _loss(module, params, x):
  return jnp.sum(jnp.sin(module.apply(params, x)))


def test_parameters_values_and_gradients_equal_nn_dense_in_float64():
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4, 6), jnp.float64)
    reference = nn.Dense(7, param_dtype=jnp.float64)
    params = reference.init(jax.random.key(1), x)
    ours = dense.Dense(7, param_dtype=jnp.float64)
    assert jax.tree.structure(ours.init(jax.random.key(1), x)) == jax.tree.structure(params)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), atol=1e-12)
    ref = jax.grad(lambda p, x: _loss(reference, p, x), (0, 1))(params, x)
    got = jax.grad(lambda p, x: _loss(ours, p, x), (0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
      np.testing.assert_allclose(b, a, atol=1e-12)


def test_other_contractions_pass_through_to_lax():
  a = jax.random.normal(jax.random.key(0), (2, 3, 4))
  b = jax.random.normal(jax.random.key(1), (2, 4, 5))
  batched = (((2,), (1,)), ((0,), (0,)))
  np.testing.assert_array_equal(dense.matrix_dot_general(a, b, batched),
                                jax.lax.dot_general(a, b, batched))
  first_axis = (((0,), (0,)), ((), ()))
  np.testing.assert_array_equal(dense.matrix_dot_general(a, a, first_axis),
                                jax.lax.dot_general(a, a, first_axis))


def test_weight_gradient_compiles_without_a_transposed_copy():
  """The reason for the module: XLA:CPU copies a many-axis cotangent to ``(F, M)`` first."""
  x = jnp.zeros((2, 8, 16, 16, 8))

  def transposed_copies(module):
    params = module.init(jax.random.key(0), x)
    grad = jax.jit(jax.grad(lambda p: jnp.sum(jnp.tanh(module.apply(p, x)))))
    hlo = grad.lower(params).compile().as_text()
    return sum("f32[8,4096]{1,0}" in line and "fusion(" in line for line in hlo.splitlines())

  if transposed_copies(nn.Dense(8)) == 0:
    pytest.skip("this XLA copies nothing for nn.Dense either")
  assert transposed_copies(dense.Dense(8)) == 0
