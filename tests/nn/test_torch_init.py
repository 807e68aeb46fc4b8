"""PyTorch's default Linear/Conv initialisation applied to a Flax tree."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import torch_init


class _Net(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(64, (3, 3), name="conv")(x)
    x = nn.LayerNorm(name="norm")(x)
    x = nn.ConvTranspose(8, (2, 2), strides=(2, 2), name="up")(x)
    x = nn.Conv(4, (1, 1), kernel_init=nn.initializers.zeros, name="head")(x)
    return nn.Dense(3, name="dense")(x.mean((1, 2)))


def test_bounds_variance_and_untouched_layers():
  params = _Net().init(jax.random.key(0), jnp.zeros((1, 8, 8, 5)))["params"]
  out = torch_init.torch_default_init(params, jax.random.key(1),
                                      transposed=lambda path: path == ("up",),
                                      keep=lambda path: path == ("head",))
  # conv: fan_in 3*3*5 = 45; transposed: torch weight (64, 8, 2, 2) -> fan_in 8*2*2 = 32.
  for name, fan in (("conv", 45), ("up", 32), ("dense", 4)):
    bound = 1 / np.sqrt(fan)
    for leaf in ("kernel", "bias"):
      values = np.abs(np.asarray(out[name][leaf]))
      assert values.max() <= bound and (values.size < 32 or values.max() > 0.8 * bound), name
  kernel = np.asarray(out["conv"]["kernel"])
  np.testing.assert_allclose(kernel.var(), 1 / (3 * 45), rtol=0.1)      # U(-b, b): b^2 / 3
  assert abs(kernel.mean()) < 0.01
  np.testing.assert_array_equal(out["head"]["kernel"], 0.0)               # kept
  np.testing.assert_array_equal(out["norm"]["scale"], params["norm"]["scale"])
  assert jax.tree.structure(out) == jax.tree.structure(params)


def test_fan_in_follows_torch_weight_layouts():
  assert torch_init.fan_in((7, 9)) == 7
  assert torch_init.fan_in((3, 3, 3, 4, 16)) == 108
  assert torch_init.fan_in((2, 2, 16, 4), transposed=True) == 16
