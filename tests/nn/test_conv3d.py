"""``conv3d.Conv3d``: a zero-padded 3-D convolution's values, gradients and parameters, computed as
2-D convolutions."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.nn import conv3d


def _reference(v, kernel, strides):
  pad = [(k // 2, k // 2) for k in kernel.shape[:3]]
  return jax.lax.conv_general_dilated(v, kernel, strides, pad,
                                      dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))


# every branch: (1, k, k) folded into the batch, (k, 1, 1) over H * W (band stride too), a full
# kernel stacked to kd * C_out <= 48 channels or run slice by slice, a spatial stride
@pytest.mark.parametrize("kernel, strides, c_out", [
    ((1, 3, 3), (1, 1, 1), 4), ((3, 1, 1), (1, 1, 1), 4), ((3, 1, 1), (2, 1, 1), 4),
    ((5, 3, 3), (1, 1, 1), 4), ((3, 3, 3), (1, 1, 1), 20), ((3, 3, 3), (1, 2, 2), 4)])
def test_values_and_gradients_equal_a_3d_convolution_in_float64(kernel, strides, c_out):
  with jax.enable_x64(True):
    v = jax.random.normal(jax.random.key(0), (2, 7, 6, 8, 3), jnp.float64)
    w = jax.random.normal(jax.random.key(1), (*kernel, 3, c_out), jnp.float64)
    np.testing.assert_allclose(conv3d.conv3d_same(v, w, strides), _reference(v, w, strides),
                               atol=1e-12)
    grads = [jax.grad(lambda v, w, f=f: jnp.sum(jnp.sin(f(v, w, strides))), (0, 1))(v, w)
             for f in (conv3d.conv3d_same, _reference)]
    for ours, ref in zip(*grads, strict=True):
      np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_parameters_and_initial_values_are_those_of_nn_conv():
  v = jax.random.normal(jax.random.key(0), (2, 5, 6, 6, 1))
  reference = nn.Conv(8, (5, 3, 3), padding=((2, 2), (1, 1), (1, 1)))
  params = reference.init(jax.random.key(1), v)
  ours = conv3d.Conv3d(8, (5, 3, 3))
  initial = ours.init(jax.random.key(1), v)
  assert jax.tree.structure(initial) == jax.tree.structure(params)
  jax.tree.map(np.testing.assert_array_equal, initial, params)   # same shapes, same draws
  np.testing.assert_allclose(ours.apply(params, v), reference.apply(params, v), atol=1e-5)


def test_bad_shapes_even_kernels_and_band_strides_are_refused():
  v = jnp.ones((1, 4, 4, 4, 2))
  with pytest.raises(ValueError, match=r"strides: a band stride needs a \(kd, 1, 1\) kernel"):
    conv3d.conv3d_same(v, jnp.ones((3, 3, 3, 2, 1)), (2, 1, 1))
  with pytest.raises(ValueError, match=r"kernel: expected odd \(kd, kh, kw\)"):
    conv3d.conv3d_same(v, jnp.ones((2, 3, 3, 2, 1)))
  with pytest.raises(ValueError, match=r"v, kernel: expected \(N, D, H, W, C_in\)"):
    conv3d.conv3d_same(v, jnp.ones((3, 3, 3, 1, 1)))
  with pytest.raises(ValueError, match=r"v, kernel: expected"):
    conv3d.conv3d_same(v[0], jnp.ones((3, 3, 3, 2, 1)))
