"""ResNet's convolution (lax's values and gradients on every weight-gradient path) and its pool."""

import importlib.metadata

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import prefer_eigen_convolutions
from jspectral.nn import resnet


def _lax(x, w, stride, padding):
  return jax.lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("kernel, ci, stride, padding, size", [
    (3, 3, 1, 2, 7),    # CIFAR stem: XLA's own
    (1, 4, 2, 0, 7),    # strided 1x1 shortcut, odd size: one g^T x matmul
    (1, 4, 2, 0, 8),    # even size
    (3, 4, 2, 1, 7),    # strided 3x3: XLA's own weight gradient
    (3, 4, 1, 1, 6),    # stride 1, many taps: XLA's own
])
def test_values_and_gradients_equal_lax_in_float64(kernel, ci, stride, padding, size):
  with jax.enable_x64(True):
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, size, size + 1, ci), jnp.float64)
    w = jax.random.normal(kw, (kernel, kernel, ci, 5), jnp.float64)
    ours = lambda x, w: resnet.matmul_grad_conv(x, w, stride, padding)
    np.testing.assert_array_equal(ours(x, w), _lax(x, w, stride, padding))
    loss = lambda conv: jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w))), (0, 1)))
    ref = loss(lambda x, w: _lax(x, w, stride, padding))(x, w)
    for a, b in zip(ref, loss(ours)(x, w), strict=True):
      np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_shortcut_weight_gradient_is_a_matmul():
  """No convolution is left in the weight gradient of a strided 1x1 shortcut."""
  x, w = jnp.ones((2, 6, 6, 3)), jnp.ones((1, 1, 3, 4))
  dw = jax.grad(lambda w: jnp.sum(resnet.matmul_grad_conv(x, w, 2, 0)))
  assert " convolution(" not in jax.jit(dw).lower(w).compile().as_text()


def test_unsupported_convolutions_are_refused():
  x, w = jnp.ones((1, 6, 6, 2)), jnp.ones((3, 3, 2, 2))
  with pytest.raises(ValueError, match="padding/window_strides"):
    resnet._conv_general_dilated(x, w, (1, 2), ((1, 1), (1, 1)))
  with pytest.raises(ValueError, match="padding/window_strides"):
    resnet._conv_general_dilated(x, w, (1, 1), ((0, 1), (0, 1)))


def test_global_average_pool_is_the_spatial_mean():
  x = jax.random.normal(jax.random.key(0), (2, 5, 7, 3))
  np.testing.assert_allclose(resnet.global_average_pool(x), x.mean((1, 2)), rtol=1e-6, atol=1e-7)
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(1), (2, 5, 7, 3), jnp.float64)
    np.testing.assert_allclose(resnet.global_average_pool(x), x.mean((1, 2)), rtol=1e-14)
  half = jnp.full((1, 8, 8, 2), 3.0, jnp.bfloat16)
  pooled = resnet.global_average_pool(half)
  assert pooled.dtype == jnp.bfloat16 and np.all(np.asarray(pooled, np.float32) == 3.0)
  with pytest.raises(ValueError, match=r"x: expected feature maps of shape \(N, H, W, C\)"):
    resnet.global_average_pool(jnp.ones((8, 8, 2)))


@pytest.mark.parametrize("stem, shape, message", [
    ("cifar", (8, 8, 3), r"x: expected images of shape \(N, H, W, C\), got shape \(8, 8, 3\)"),
    ("tiny", (1, 8, 8, 3), "stem: expected 'imagenet' or 'cifar', got 'tiny'"),
])
def test_resnet_names_its_bad_input(stem, shape, message):
  model = resnet.ResNet18(stem=stem, width=2)
  with pytest.raises(ValueError, match=message):
    model.init(jax.random.key(0), jnp.ones(shape), train=False)


def _convolutions_in_ynn_fusions(hlo: str) -> int:
  """Convolutions inside the computations that ``__ynn_fusion`` ops call."""
  bodies, name = {}, None
  for line in hlo.splitlines():
    if line.endswith("{") and not line.startswith(" "):
      name = line.removeprefix("ENTRY ").split()[0].lstrip("%")
      bodies[name] = 0
    elif name is not None and " convolution(" in line:
      bodies[name] += 1
  fused = [line.split("calls=")[1].split(",")[0].lstrip("%") for line in hlo.splitlines()
           if "__ynn_fusion" in line and "calls=" in line]
  return sum(bodies.get(callee, 0) for callee in fused)


@pytest.mark.skipif(not prefer_eigen_convolutions({}, importlib.metadata.version("jaxlib")),
                    reason="this jaxlib is outside the releases known to have the flag")
def test_eval_mode_convolutions_stay_out_of_ynnpack_fusions():
  """The pool is not a reduction XLA:CPU could hand to YNNPACK with the last blocks' convs."""
  model = resnet.ResNet18Cifar()
  x = jnp.ones((4, 32, 32, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  features = jax.jit(lambda v, x: model.apply(v, x, train=False))
  hlo = features.lower(variables, x).compile().as_text()
  assert hlo.count(" convolution(") >= 20
  assert _convolutions_in_ynn_fusions(hlo) == 0
