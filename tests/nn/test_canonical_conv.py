"""The loop-friendly convolution: same values and gradients as lax, canonical inside loops."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jspectral
from jspectral.nn import canonical_conv

NHWC = ("NHWC", "HWIO", "NHWC")


def _lax_valid(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=NHWC)


def test_values_and_gradients_equal_lax_in_float64():
  with jax.enable_x64(True):
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, 9, 11, 3), jnp.float64)
    w = jax.random.normal(kw, (3, 4, 3, 5), jnp.float64)
    np.testing.assert_allclose(canonical_conv.valid_conv(x, w), _lax_valid(x, w), atol=1e-12)
    ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(_lax_valid(x, w))), (0, 1))(x, w)
    ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(canonical_conv.valid_conv(x, w))), (0, 1))(x, w)
    for a, b in zip(ref, ours, strict=True):
      np.testing.assert_allclose(b, a, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{"strides": (2, 2)}, {"padding": "CIRCULAR"},
                                    {"feature_group_count": 2}, {"kernel_dilation": (2, 2)},
                                    {"kernel_dilation": (2, 2), "padding": "SAME"}])
def test_other_convolutions_fall_back_to_lax(kwargs):
  x = jax.random.normal(jax.random.key(0), (1, 8, 8, 4))
  module = nn.Conv(6, (3, 3), padding=kwargs.pop("padding", "VALID"), **kwargs)
  params = module.init(jax.random.key(1), x)
  ours = module.clone(conv_general_dilated=canonical_conv.conv_general_dilated)
  np.testing.assert_array_equal(ours.apply(params, x), module.apply(params, x))


def test_gradient_convolutions_stay_canonical_inside_a_loop():
  """Plain lax leaves a non-canonical (slow on CPU) weight-gradient conv in a while body."""
  x = jax.random.normal(jax.random.key(0), (1, 12, 12, 2))

  def labels(conv):
    module = nn.Conv(3, (3, 3), padding="VALID", conv_general_dilated=conv)
    params = module.init(jax.random.key(1), x)
    grad = jax.grad(lambda p: jnp.mean(module.apply(p, x) ** 2))
    loop = lambda p: jax.lax.fori_loop(
        0, 2, lambda _, q: jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, q, grad(q)), p)
    text = jax.jit(loop).lower(params).compile().as_text()
    return {line.split("dim_labels=")[1].split(",")[0]
            for line in text.splitlines() if " convolution(" in line}

  assert labels(canonical_conv.conv_general_dilated) == {"b01f_01io->b01f"}
  assert labels(jax.lax.conv_general_dilated) != {"b01f_01io->b01f"}


@pytest.mark.parametrize("shape", [(5, 5, 26, 1), (1, 1, 6, 4), (3, 2, 12, 2)])
def test_shifted_matmul_path_equals_lax_in_float64(shape):
  """Few output channels (kh kw Co <= Ci) go through the matmul path: same values and grads."""
  with jax.enable_x64(True):
    kx, kw = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (2, 9, 11, shape[2]), jnp.float64)
    w = jax.random.normal(kw, shape, jnp.float64)
    conv = lambda x, w: canonical_conv.conv_general_dilated(x, w, (1, 1), "VALID",
                                                            dimension_numbers=NHWC)
    np.testing.assert_allclose(conv(x, w), _lax_valid(x, w), atol=1e-12)
    ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(_lax_valid(x, w))), (0, 1))(x, w)
    ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w))), (0, 1))(x, w)
    for a, b in zip(ref, ours, strict=True):
      np.testing.assert_allclose(b, a, atol=1e-12)
    text = jax.jit(conv).lower(x, w).compile().as_text()
    assert " convolution(" not in text


@pytest.mark.parametrize("kernel, padding", [((3, 3), ((1, 2), (0, 1))), ((1, 1), "SAME"),
                                             ((2, 3), "SAME"), ((2, 3), "SAME_LOWER")])
def test_explicit_padding_is_padded_then_valid_with_the_same_gradients(kernel, padding):
  """Explicit and SAME paddings take the canonical path: same values and gradients, and every
  convolution XLA keeps in the compiled gradient in the canonical NHWC / HWIO form (a 1x1
  kernel keeps none: its forward pass and both gradients are matrix products)."""
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(2), (2, 7, 6, 4), jnp.float64)
    module = nn.Conv(5, kernel, padding=padding, param_dtype=jnp.float64)
    params = module.init(jax.random.key(3), x)
    ours = module.clone(conv_general_dilated=canonical_conv.conv_general_dilated)
    grad = lambda m: jax.grad(lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))), (0, 1))
    np.testing.assert_allclose(ours.apply(params, x), module.apply(params, x), atol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(grad(module)(params, x)),
                    jax.tree_util.tree_leaves(grad(ours)(params, x)), strict=True):
      np.testing.assert_allclose(b, a, atol=1e-12)
    text = jax.jit(grad(ours)).lower(params, x).compile().as_text()
  convolutions = [line for line in text.splitlines() if " convolution(" in line]
  assert all("dim_labels=b01f_01io->b01f" in line for line in convolutions)
  assert bool(convolutions) == (kernel != (1, 1))



@pytest.mark.parametrize("eigen, height, window", [(False, 9, "size=3x2 pad=0_1x0_0"),
                                                    (True, 10, "size=3x2")])
def test_many_channel_valid_conv_is_padded_by_a_row_only_for_ynnpack(monkeypatch, eigen, height,
                                                                    window):
  """Ci Co >= 512 with YNNPACK's convolutions: XLA sees a convolution padded by one zero row (4-8x
  faster there than VALID) whose extra output row is dropped; with Eigen's, plain VALID. Values
  and both gradients equal lax's VALID convolution either way. (Each setting traces its own
  height: the trace cache would otherwise hand the second one the first one's program.)"""
  monkeypatch.setattr(jspectral, "EIGEN_CONVOLUTIONS", eigen)
  with jax.enable_x64(True):
    kx, kw = jax.random.split(jax.random.key(4))
    x = jax.random.normal(kx, (2, height, 8, 32), jnp.float64)
    w = jax.random.normal(kw, (3, 2, 32, 16), jnp.float64)
    np.testing.assert_allclose(jax.jit(canonical_conv.valid_conv)(x, w), _lax_valid(x, w),
                               atol=1e-12)
    loss = lambda conv: jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w))), (0, 1))
    for a, b in zip(loss(_lax_valid)(x, w), jax.jit(loss(canonical_conv.valid_conv))(x, w),
                    strict=True):
      np.testing.assert_allclose(b, a, atol=1e-11)
    text = jax.jit(canonical_conv.valid_conv).lower(x, w).compile().as_text()
  windows = [line.split("window={")[1].split("}")[0]
             for line in text.splitlines() if " convolution(" in line]
  assert windows == [window]


@pytest.mark.parametrize("size, kernel, strides, padding", [
    ((12, 13), (3, 3), (2, 2), ((1, 1), (1, 1))),  # MAN / HSDT downsampling
    ((11, 9), (5, 4), (2, 3), ((2, 2), (1, 2))),  # odd sizes, unequal strides and pads
    ((8, 8), (3, 3), (2, 2), ((0, 1), (2, 0))),  # padding on one side
    ((8, 8), (1, 3), (2, 2), ((2, 1), (0, 2))),  # rows: the first offset is positive
    ((9, 7), (1, 1), (2, 1), ((0, 0), (0, 0))),  # a phase no tap reaches
])
def test_strided_conv_equals_lax_with_its_phase_input_gradient(size, kernel, strides, padding):
  def lax_conv(x, w):
    return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)

  def ours(x, w):
    return canonical_conv.strided_conv(x, w, strides, padding)

  with jax.enable_x64(True):
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, *size, 3), jnp.float64)
    w = jax.random.normal(kw, (*kernel, 3, 4), jnp.float64)
    np.testing.assert_array_equal(ours(x, w), lax_conv(x, w))
    loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
    for a, b in zip(jax.grad(loss(lax_conv), (0, 1))(x, w), jax.grad(loss(ours), (0, 1))(x, w),
                    strict=True):
      np.testing.assert_allclose(b, a, atol=1e-12)


def test_strided_conv_input_gradient_is_not_a_dilated_convolution():
  """lax's input gradient convolves the stride-dilated cotangent (``lhs_dilate``) at full size."""
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 4))
  w = jax.random.normal(jax.random.key(1), (3, 3, 4, 8))
  pads = ((1, 1), (1, 1))

  def dilated(conv):
    text = jax.jit(jax.grad(lambda x: jnp.sum(conv(x, w, (2, 2), pads) ** 2))).lower(
        x).compile().as_text()
    return [line for line in text.splitlines() if " convolution(" in line and "lhs_dilate" in line]

  assert not dilated(canonical_conv.strided_conv)
  assert dilated(lambda x, w, s, p: jax.lax.conv_general_dilated(x, w, s, p,
                                                                 dimension_numbers=NHWC))


@pytest.mark.parametrize("strides, padding, named", [((2, 2), "SAME", "padding"),
                                                     ((2, 2), ((1, 1),), "padding"),
                                                     ((2, 0), ((1, 1), (1, 1)), "strides")])
def test_strided_conv_refuses_implicit_padding_and_bad_strides_by_name(strides, padding, named):
  x, w = jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 4))
  with pytest.raises(ValueError, match=f"^{named}:"):
    canonical_conv.strided_conv(x, w, strides, padding)
