"""Spec ResNet-50 / Spec ViT parity and counts, SSL heads, losses against the official values,
schedules, memory bank and masking semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.nn import spec_resnet, spec_vit
from jspectral.ssl import spectral_earth as se
from tests.conftest import load_pack

PACK = "spectral_earth_parity"
RESNET_PACK = "spectral_earth_parity_resnet"


def _nhwc(a):
  return jnp.asarray(a.transpose(0, 2, 3, 1))


def _nchw(a):
  return np.asarray(a).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("name,count", [
    ("spectral_adapter", 56_192), ("spec_resnet50", 24_202_624), ("spec_vit_t", 5_985_344),
    ("spec_vit_s", 22_531_328), ("spec_vit_b", 87_473_792), ("spec_vit_l", 305_516_416),
    ("spec_vit_h", 633_672_832), ("spec_vit_g", 1_138_043_264)])
def test_official_param_counts(name, count):
  assert models.param_count_of(name) == count


@pytest.mark.parametrize("patch,count", [(8, 24_595_712), (16, 33_959_168)])
def test_spec_vit_s_other_token_sizes(patch, count):
  assert models.param_count_of("spec_vit", token_patch_size=patch) == count


def _count(module, *inputs, **kw):
  shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kw), *inputs)
  return models.param_count(shapes)


def test_head_param_counts():
  f = lambda d: jax.ShapeDtypeStruct((2, d), jnp.float32)
  assert _count(se.MoCoProjectionHead(), f(2048)) == 4_460_800
  assert _count(se.MoCoProjectionHead(), f(384)) == 1_052_928
  # DINO: torch counts 5,542,272 incl. the 128 frozen weight-norm gains (always 1, not stored).
  assert _count(se.DINOProjectionHead(), f(384)) == 5_542_272 - 128
  assert _count(se.DINOProjectionHead(), f(2048)) == 8_950_144 - 128
  keep, mask = jnp.zeros((2, 103), jnp.int32), jnp.ones((2, 922), jnp.int32)
  assert _count(se.MAEDecoder(), jax.ShapeDtypeStruct((2, 103, 384), jnp.float32), keep,
                mask) == 5_009_056
  assert se.sincos_pos_embed_2d(512, 32).size == 524_800


def test_spec_vit_mini_parity():
  pack = load_pack(PACK)
  module, variables = spec_vit.spec_vit_from_torch(pack.state("spec_vit_mini"), num_heads=4)
  assert models.param_count(variables) == pack.config("spec_vit_mini")["params_backbone"]
  x = _nhwc(pack["spec_vit_mini/input"])
  out, tok_norm, tok_raw = jax.jit(lambda v, x: (
      module.apply(v, x), module.apply(v, x, method="patch_tokens"),
      module.apply(v, x, norm=False, method="patch_tokens")))(variables, x)
  np.testing.assert_allclose(out, pack["spec_vit_mini/output"], atol=1e-5)
  np.testing.assert_allclose(tok_norm, pack["spec_vit_mini/tokens_last_block_norm"], atol=1e-5)
  np.testing.assert_allclose(tok_raw, pack["spec_vit_mini/tokens_last_block_raw"], atol=1e-5)


def test_spec_vit_registry_from_torch_reads_shapes():
  pack = load_pack(PACK)
  with pytest.raises(ValueError, match="num_heads"):
    models.from_torch("spec_vit", pack.state("spec_vit_mini"))
  with pytest.raises(ValueError, match="vit_core"):
    models.from_torch("spec_vit", pack.state("adapter"))


def test_spec_resnet_bottleneck_parity():
  pack = load_pack(PACK)
  sd = {f"resnet.layer1.0.{k}": v for k, v in pack.state("spec_resnet_bottleneck").items()}
  params, stats, _ = spec_resnet._convert_resnet(sd, "resnet.")
  block = spec_resnet.CustomBottleneck(32, 2)
  y = block.apply({"params": params["layer1_0"], "batch_stats": stats["layer1_0"]},
                  _nhwc(pack["spec_resnet_bottleneck/input"]))
  np.testing.assert_allclose(_nchw(y), pack["spec_resnet_bottleneck/output"], atol=1e-5)


def test_spec_resnet50_layer1_parity_strided_and_dilated():
  pack = load_pack(RESNET_PACK)
  module, variables = models.from_torch("spec_resnet50", pack.state("spec_resnet50_layer1"))
  assert module.stage_sizes == (3,) and models.param_count(variables) == 919_936
  x = _nhwc(pack["spec_resnet50_layer1/input"])
  strided = module.clone(return_features=True)
  dilated = strided.clone(replace_stride_with_dilation=(True,) * 4)
  y, y_dil = jax.jit(lambda v, x: (strided.apply(v, x), dilated.apply(v, x)))(variables, x)
  np.testing.assert_allclose(_nchw(y), pack["spec_resnet50_layer1/output"], atol=1e-4)
  np.testing.assert_allclose(_nchw(y_dil), pack["spec_resnet50_layer1/output_all_dilated"],
                             atol=1e-4)


def test_spec_resnet50_feature_shapes():
  x = jax.ShapeDtypeStruct((1, 128, 128, 202), jnp.float32)
  fmap = spec_resnet.SpecResNet50(return_features=True)
  out = jax.eval_shape(fmap.init_with_output, jax.random.key(0), x)[0]
  assert out.shape == (1, 8, 8, 2048)
  dilated = spec_resnet.SpecResNet50(return_features=True, replace_stride_with_dilation=(True,) * 4)
  x_small = jax.ShapeDtypeStruct((1, 16, 16, 202), jnp.float32)
  assert jax.eval_shape(dilated.init_with_output, jax.random.key(0), x_small)[0].shape == \
      (1, 16, 16, 2048)
  vit = spec_vit.spec_vit("s")
  tokens = jax.eval_shape(lambda: vit.init_with_output(jax.random.key(0), jnp.zeros(x.shape),
                                                       method="patch_tokens"))[0]
  assert tokens.shape == (1, 1024, 384)


# -------------------------------------------------------------------------------------------------
# Losses (official values in the pack)


@pytest.fixture(scope="module")
def losses():
  pack = load_pack(PACK)
  return pack, pack.json("losses/values")


def test_moco_and_simclr_ntxent(losses):
  pack, values = losses
  q, k, bank = pack["losses/q"], pack["losses/k"], pack["losses/bank"]
  np.testing.assert_allclose(se.ntxent_loss(q, k, bank, 0.1),
                             values["moco_ntxent_T0.1_bank16"], rtol=1e-5)
  np.testing.assert_allclose(se.ntxent_loss(q, k, None, 0.1),
                             values["simclr_ntxent_T0.1_nobank_same_inputs"], rtol=1e-5)
  with pytest.raises(ValueError, match="bank"):
    se.ntxent_loss(q, k, bank[:, :5])


def test_dino_loss_and_center(losses):
  pack, values = losses
  loss, center = se.dino_loss(pack["losses/dino_t"], pack["losses/dino_s"], jnp.zeros((1, 1, 128)))
  np.testing.assert_allclose(loss, values["dino_epoch0_tt0.04_st0.1"], rtol=1e-5)
  np.testing.assert_allclose(center, pack["losses/dino_center_after"], atol=1e-7)
  np.testing.assert_allclose(center.sum(), values["dino_center_after_first_call_sum"], rtol=1e-4)


def test_mae_normpix_loss_and_patch_layout(losses):
  pack, values = losses
  img = _nhwc(pack["losses/mae_img"])
  loss = se.mae_loss(pack["losses/mae_pred"], img, pack["losses/mae_idx_mask"], 4)
  np.testing.assert_allclose(loss, values["mae_normpix_mse"], rtol=1e-5)
  patches = se.patchify(img, 4)
  check = values["patchify_check"]
  np.testing.assert_allclose(patches[0, 0, :3], check["patch0_first3"], rtol=1e-6)
  assert patches[0, 1, 0] == img[0, 0, 4, 0]  # second patch starts at column 4 (row-major)
  assert patches[0, 0, 202] == img[0, 0, 1, 0]  # (p, q, c): channel fastest, then column


def test_dino_loss_gradient_only_through_student():
  t = jax.random.normal(jax.random.key(0), (2, 3, 8))
  s = jax.random.normal(jax.random.key(1), (2, 3, 8))
  e = jnp.zeros_like(s).at[1, 2, 3].set(1e-2)

  @jax.jit
  def check(t, s):
    f = lambda t, s: se.dino_loss(t, s, jnp.zeros(8))[0]
    g_t, g_s = jax.grad(f, argnums=(0, 1))(t, s)
    return g_t, g_s[1, 2, 3], (f(t, s + e) - f(t, s - e)) / 2e-2

  g_t, g_s, finite_difference = check(t, s)
  assert np.all(np.asarray(g_t) == 0)
  np.testing.assert_allclose(finite_difference, g_s, rtol=2e-2, atol=1e-4)


def test_enqueue_truncates_and_resets():
  bank = jnp.zeros((5, 2))
  keys = jnp.arange(6.0).reshape(3, 2) + 1
  bank, ptr = se.enqueue(bank, jnp.int32(0), keys)
  assert int(ptr) == 3
  bank, ptr = se.enqueue(bank, ptr, keys)
  assert int(ptr) == 0
  np.testing.assert_array_equal(bank[:, 0], [1, 3, 5, 1, 3])


def test_random_token_mask_keeps_cls_and_partitions():
  keep, mask = se.random_token_mask(jax.random.key(0), 3, 1024, 0.9)
  assert keep.shape == (3, 103) and mask.shape == (3, 922)
  assert np.all(keep[:, 0] == 0)
  for i in range(3):
    assert sorted(np.concatenate([keep[i, 1:], mask[i]]).tolist()) == list(range(1, 1025))
  with pytest.raises(ValueError, match="mask_ratio"):
    se.random_token_mask(jax.random.key(0), 1, 16, 1.0)


def test_schedules():
  momentum = [float(se.cosine_momentum(e, 10)) for e in range(12)]
  assert momentum[0] == pytest.approx(0.996) and momentum[9:] == [1.0, 1.0, 1.0]
  assert all(a < b for a, b in zip(momentum[:9], momentum[1:9], strict=False))
  lr = lambda e: float(se.moco_learning_rate(e))
  assert (lr(59), lr(60), lr(79), lr(80)) == pytest.approx((1e-3, 1e-4, 1e-4, 1e-5))
  dlr = lambda e: float(se.dino_learning_rate(e))
  assert dlr(0) == pytest.approx(5e-5) and dlr(20) == pytest.approx(1e-3)
  assert dlr(100) == pytest.approx(1e-3 * (1 + np.cos(0.8 * np.pi)) / 2)


def test_augmented_view_shape_and_standardisation():
  rng = np.random.default_rng(0)
  img = rng.uniform(0, 1e4, (20, 20, 6)).astype(np.float32)
  mean, std = img.mean((0, 1)), img.std((0, 1))
  v = se.ssl_view(img, rng, size=8, scale=(1.0, 1.0), blur_p=0.0, mean=mean, std=std)
  assert v.shape == (8, 8, 6) and v.dtype == np.float32
  # scale 1, ratio 1 crop is the whole image: the view is a (flipped) resize of it.
  assert abs(v.mean()) < 0.3
