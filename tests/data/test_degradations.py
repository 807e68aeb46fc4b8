"""MATLAB imresize and Gaussian decimation against closed forms and independent NumPy code."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jspectral.data import degradations


def _keys_cubic(t):
  t = abs(t)
  if t <= 1:
    return 1.5 * t**3 - 2.5 * t**2 + 1
  return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2 if t <= 2 else 0.0


def _resize_1d_reference(signal, scale):
  """Direct 0-based formulation: output sample i sits at (i + 0.5) / scale - 0.5."""
  n = len(signal)
  out_len = math.ceil(round(n * scale, 9))
  stretch = min(scale, 1.0)
  radius = 2.0 / stretch
  padded = np.pad(signal, 3 * n, mode="symmetric")
  out = np.empty(out_len)
  for i in range(out_len):
    centre = (i + 0.5) / scale - 0.5
    js = np.arange(math.floor(centre - radius), math.ceil(centre + radius) + 1)
    w = np.array([_keys_cubic((centre - j) * stretch) for j in js])
    out[i] = (w * padded[js + 3 * n]).sum() / w.sum()
  return out


def test_half_scale_taps_closed_form():
  """Interior pixels of imresize(x, 1/2) are the classic 8-tap antialiased bicubic filter."""
  taps = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375,
                   0.43359375, 0.11328125, -0.03515625, -0.01171875])
  matrix = degradations.resize_matrix(32, 0.5)
  for i in range(2, 14):
    np.testing.assert_allclose(matrix[i, 2 * i - 3:2 * i + 5], taps, atol=1e-15)
    assert abs(matrix[i]).sum() == pytest.approx(abs(taps).sum())


def test_double_scale_edge_row_closed_form():
  """imresize(x, 2), first output pixel: it sits at input coordinate 0.75 (1-based); the taps at
  0 and -1 mirror onto pixels 1 and 2."""
  row = degradations.resize_matrix(6, 2.0)[0]
  c = _keys_cubic
  np.testing.assert_allclose(row[:3], [c(0.25) + c(0.75), c(1.25) + c(1.75), 0.0], atol=1e-15)
  np.testing.assert_allclose(row, [1.09375, -0.09375, 0, 0, 0, 0], atol=1e-15)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 1 / 8, 2.0, 0.75])
def test_resize_matrix_matches_independent_numpy(scale):
  rng = np.random.default_rng(0)
  for n in (24, 17):
    signal = rng.normal(size=n)
    got = degradations.resize_matrix(n, scale) @ signal
    np.testing.assert_allclose(got, _resize_1d_reference(signal, scale), atol=1e-12)


@pytest.fixture(scope="module")
def image():
  return jnp.asarray(np.random.default_rng(1).uniform(size=(2, 32, 24, 3)), jnp.float32)


def test_imresize_is_separable_reference_and_batched(image):
  out = jax.jit(degradations.imresize, static_argnums=1)(image, 0.25)
  assert out.shape == (2, 8, 6, 3)
  x = np.asarray(image[1, :, :, 2], np.float64)
  rows = np.stack([_resize_1d_reference(col, 0.25) for col in x.T], axis=1)
  expected = np.stack([_resize_1d_reference(row, 0.25) for row in rows])
  np.testing.assert_allclose(out[1, :, :, 2], expected, atol=1e-5)
  np.testing.assert_allclose(degradations.imresize(image[0], 0.25), out[0], atol=1e-6)


@pytest.mark.parametrize("factor", degradations.SCALES)
def test_bicubic_downsample_shapes_and_constants(factor):
  x = jnp.full((16, 24, 4), 0.3)
  out = degradations.bicubic_downsample(x, factor)
  assert out.shape == (16 // factor, 24 // factor, 4)
  np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_gaussian_downsample_matches_scipy(image):
  x = np.asarray(image[0], np.float64)
  taps = degradations.gaussian_kernel(1.2, 7)
  blurred = scipy.ndimage.correlate1d(x, taps, axis=0, mode="reflect")
  blurred = scipy.ndimage.correlate1d(blurred, taps, axis=1, mode="reflect")
  out = degradations.gaussian_downsample(image[0], 4, sigma=1.2, kernel_size=7)
  assert out.shape == (8, 6, 3)
  np.testing.assert_allclose(out, blurred[::4, ::4], atol=1e-5)


def test_gaussian_downsample_of_delta_is_kernel():
  x = jnp.zeros((24, 24, 1)).at[8, 8, 0].set(1.0)
  taps = degradations.gaussian_kernel(1.0, 5)
  out = np.asarray(degradations.gaussian_downsample(x, 2, sigma=1.0, kernel_size=5))[..., 0]
  np.testing.assert_allclose(out[3:6, 3:6], np.outer(taps[::2], taps[::2]), atol=1e-7)
  assert out.sum() == pytest.approx(np.outer(taps[::2], taps[::2]).sum(), abs=1e-6)


def test_imresize_gradient_is_transpose():
  """The map is linear: its VJP applies the transposed matrices."""
  x = jnp.ones((8, 8, 1))
  cot = jnp.asarray(np.random.default_rng(2).normal(size=(4, 4, 1)), jnp.float32)
  _, vjp = jax.vjp(lambda v: degradations.imresize(v, 0.5), x)
  m = degradations.resize_matrix(8, 0.5)
  np.testing.assert_allclose(vjp(cot)[0][..., 0], m.T @ np.asarray(cot[..., 0]) @ m, atol=1e-5)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="x"):
    degradations.imresize(jnp.ones((8, 8)), 0.5)
  with pytest.raises(ValueError, match="scale"):
    degradations.imresize(jnp.ones((8, 8, 1)), 0.0)
  with pytest.raises(ValueError, match="factor"):
    degradations.bicubic_downsample(jnp.ones((8, 8, 1)), 3.5)
  with pytest.raises(ValueError, match="divisible"):
    degradations.bicubic_downsample(jnp.ones((10, 8, 1)), 4)
