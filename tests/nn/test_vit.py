"""timm-style ViT core: parameter counts, token order, pooling, bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.nn import vit


def _count(module, size, chans):
  shapes = jax.eval_shape(module.init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, size, size, chans), jnp.float32))
  return models.param_count(shapes)


@pytest.mark.parametrize("variant,dim,depth", [("t", 192, 12), ("s", 384, 12), ("b", 768, 12),
                                               ("l", 1024, 24), ("h", 1280, 32), ("g", 1536, 40)])
def test_variant_param_counts_closed_form(variant, dim, depth):
  # timm: per block 12 D^2 + 13 D; patch conv p^2 C D + D; cls D; pos (1 + T) D; final norm 2 D.
  module = vit.VARIANTS[variant](img_size=32, patch_size=4)
  expected = depth * (12 * dim**2 + 13 * dim) + 16 * 128 * dim + dim + dim + 65 * dim + 2 * dim
  assert _count(module, 32, 128) == expected


def test_vit_small_timm_count():
  # timm vit_small_patch16_224 with num_classes=1000 has 22,050,664 parameters.
  assert _count(vit.vit_small(num_classes=1000), 224, 3) == 22_050_664


@pytest.fixture(scope="module")
def tiny():
  module = vit.VisionTransformer(img_size=8, patch_size=4, embed_dim=16, depth=2, num_heads=2)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  return module, jax.jit(module.init)(jax.random.key(0), x), x


def test_tokens_are_row_major_patches(tiny):
  module, variables, x = tiny
  tokens = module.apply(variables, x, method="embed")
  p = variables["params"]
  patches = x.reshape(2, 2, 4, 2, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, 48)
  kernel = p["patch_embed"]["kernel"].reshape(48, 16)
  expected = patches @ kernel + p["patch_embed"]["bias"] + p["pos_embed"][:, 1:]
  np.testing.assert_allclose(tokens[:, 1:], expected, atol=1e-5)
  np.testing.assert_allclose(tokens[:, 0], (p["cls_token"] + p["pos_embed"][:, :1])[:, 0]
                             .repeat(2, 0), atol=1e-6)


def test_call_is_normalised_class_token(tiny):
  module, variables, x = tiny
  feats = module.apply(variables, x, method="forward_features")
  np.testing.assert_allclose(module.apply(variables, x), feats[:, 0], atol=1e-6)
  assert feats.shape == (2, 5, 16)


def test_blocks_are_permutation_equivariant(tiny):
  module, variables, x = tiny
  tokens = module.apply(variables, x, method="embed")
  perm = jnp.array([0, 3, 1, 4, 2])
  out = module.apply(variables, tokens, method="blocks_forward")
  out_perm = module.apply(variables, tokens[:, perm], method="blocks_forward")
  np.testing.assert_allclose(out[:, perm], out_perm, atol=1e-5)


def test_bad_input_shape_raises(tiny):
  module, variables, _ = tiny
  with pytest.raises(ValueError, match="x: expected"):
    module.apply(variables, jnp.zeros((1, 12, 12, 3)))
  with pytest.raises(ValueError, match="img_size"):
    jax.eval_shape(vit.VisionTransformer(img_size=10, patch_size=4).init, jax.random.key(0),
                   jnp.zeros((1, 10, 10, 3)))
