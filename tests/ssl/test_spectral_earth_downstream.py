"""SpectralEarth downstream: ConvHead parity, head counts, losses with ignore index, and the
torchmetrics-equivalent metrics against the official values."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral import train as train_lib
from jspectral.metrics import segmentation
from jspectral.nn import spec_resnet, spec_vit
from jspectral.ssl import spectral_earth as se
from tests.conftest import load_pack

PACK = "spectral_earth_parity"


def test_vit_segmentor_conv_head_parity_spec_vit_mini():
  pack = load_pack(PACK)
  backbone, variables = spec_vit.spec_vit_from_torch(pack.state("spec_vit_mini"), num_heads=4)
  head_params, head_stats = se.convert_torch_conv_head(
      pack.state("spec_vit_mini", "seg_head/state/"))
  model = se.ViTSegmentor(backbone, 5)
  full = {"params": {"backbone": variables["params"], "head": head_params},
          "batch_stats": {"backbone": variables["batch_stats"], "head": head_stats}}
  x = jnp.asarray(pack["spec_vit_mini/input"].transpose(0, 2, 3, 1))
  logits = jax.jit(model.apply)(jax.tree.map(jnp.asarray, full), x)
  np.testing.assert_allclose(np.asarray(logits).transpose(0, 3, 1, 2),
                             pack["spec_vit_mini/seg_logits"], atol=1e-5)


def _count(module, shape):
  shapes = jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
  return models.param_count(shapes)


def test_head_param_counts():
  assert _count(se.ConvHead(14), (1, 32, 32, 384)) == 458_894   # ViT-S, CDL
  assert _count(se.ConvHead(14), (1, 32, 32, 768)) == 901_262   # ViT-B, CDL
  assert _count(se.ConvHead(10), (1, 32, 32, 384)) == 454_282
  assert _count(se.ConvHead(24), (1, 32, 32, 384)) == 470_424
  assert _count(se.FCNHead(14), (1, 8, 8, 2048)) == 4_722_702
  assert models.param_count_of("spec_vit_s", num_classes=19) - 22_531_328 == 7_315
  assert models.param_count_of("spec_resnet50", num_classes=19) - 24_202_624 == 38_931


def test_segmentor_output_shapes():
  x = jax.ShapeDtypeStruct((1, 16, 16, 202), jnp.float32)
  vit_seg = se.ViTSegmentor(spec_vit.spec_vit("t", img_size=16), 7)
  assert jax.eval_shape(vit_seg.init_with_output, jax.random.key(0), x)[0].shape == (1, 16, 16, 7)
  linear = se.ViTSegmentor(spec_vit.spec_vit("t", img_size=16), 7, standardise=True, head="linear")
  assert jax.eval_shape(linear.init_with_output, jax.random.key(0), x)[0].shape == (1, 16, 16, 7)
  head_count = _count(linear, (1, 16, 16, 202)) - _count(spec_vit.spec_vit("t", img_size=16),
                                                          (1, 16, 16, 202))
  assert head_count == 192 * 7 + 7
  with pytest.raises(ValueError, match="head"):
    jax.eval_shape(se.ViTSegmentor(spec_vit.spec_vit("t", img_size=16), 7, head="mlp").init,
                   jax.random.key(0), x)
  fcn = se.FCNSegmenter(spec_resnet.SpecResNet50(return_features=True), 7)
  assert jax.eval_shape(fcn.init_with_output, jax.random.key(0), x)[0].shape == (1, 16, 16, 7)
  with pytest.raises(ValueError, match="patch_size"):
    se.ConvHead(3, patch_size=3).init(jax.random.key(0), jnp.zeros((1, 2, 2, 4)))


class _AffineTokens(nn.Module):
  """Stand-in backbone: 4x4 patches averaged into tokens, then ``gain * tokens + shift``."""

  gain: float = 1.0
  token_patch_size: int = 4

  def patch_tokens(self, x, train=False, norm=True):
    del train, norm
    n, h, w, c = x.shape
    tokens = x.reshape(n, h // 4, 4, w // 4, 4, c).mean((2, 4)).reshape(n, -1, c)
    return self.gain * tokens + 0.5 * self.gain


def test_standardised_probe_ignores_the_token_scale():
  # With ``standardise`` the head sees batch-standardised tokens: an affine rescaling of the frozen
  # encoder's tokens leaves the training logits of the linear head unchanged; without it they
  # move. (The ConvHead's own BatchNorm makes its forward pass nearly scale-free too; there the
  # layer changes the gradients, i.e. the learning dynamics.)
  x = 4.0 * jax.random.normal(jax.random.key(1), (4, 8, 8, 6))  # tokens of unit variance
  for standardise in (True, False):
    logits = []
    for gain in (1.0, 3.0):
      model = se.ViTSegmentor(_AffineTokens(gain), 3, standardise=standardise, head="linear")
      variables = model.init(jax.random.key(0), x)
      logits.append(model.apply(variables, x, train=True, mutable=["batch_stats"])[0])
    diff = float(jnp.max(jnp.abs(logits[0] - logits[1])))
    assert (diff < 1e-4) if standardise else (diff > 1e-1), (standardise, diff)


def test_official_metrics():
  pack = load_pack(PACK)
  values = pack.json("metrics/values")
  conf = segmentation.segmentation_confusion(jnp.asarray(pack["metrics/seg_preds"]),
                                             jnp.asarray(pack["metrics/seg_target"]), 5, 4)
  np.testing.assert_allclose(segmentation.micro_accuracy(conf),
                             values["seg_micro_accuracy_ignore4"], atol=1e-6)
  np.testing.assert_allclose(segmentation.micro_jaccard(conf, 4),
                             values["seg_micro_jaccard_ignore4"], atol=1e-6)
  ml = segmentation.multilabel_metrics(jnp.asarray(pack["metrics/ml_probs"]),
                             jnp.asarray(pack["metrics/ml_target"]))
  for ours, theirs in [("accuracy_micro", "ml_OverallAccuracy_micro"),
                       ("accuracy_macro", "ml_AverageAccuracy_macro"),
                       ("f1_micro", "ml_F1Score_micro"), ("f1_macro", "ml_AverageF1Score_macro"),
                       ("ap_micro", "ml_AP_micro"), ("ap_macro", "ml_AP_macro")]:
    np.testing.assert_allclose(ml[ours], values[theirs], atol=1e-6, err_msg=ours)


def test_average_precision_matches_sklearn_with_ties():
  from sklearn import metrics as sklearn_metrics  # a core dependency: never skipped
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 5, 60) / 4.0  # many ties
  target = rng.integers(0, 2, 60)
  ours = segmentation._binary_average_precision(jnp.asarray(scores), jnp.asarray(target))
  np.testing.assert_allclose(ours, sklearn_metrics.average_precision_score(target, scores),
                             rtol=1e-6)


def test_macro_average_precision_scores_a_label_without_positives_zero():
  # torchmetrics 1.9 MultilabelAveragePrecision(num_labels=3, average=None) on these arrays gives
  # [1, 1, 0] and macro 2/3 (the third label has no positives).
  probs = jnp.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.6, 0.4, 0.7], [0.3, 0.1, 0.2]])
  target = jnp.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
  np.testing.assert_allclose(segmentation.multilabel_metrics(probs, target)["ap_macro"], 2 / 3,
                             rtol=1e-6)


def test_jaccard_closed_form_and_mean_iou():
  # 2 classes + ignore 2: target [0,0,1,1,2], preds [0,1,1,2,0].
  conf = segmentation.segmentation_confusion(jnp.array([0, 1, 1, 2, 0]),
                                             jnp.array([0, 0, 1, 1, 2]), 2, 2)
  # Non-ignored pixels: 4, TP 2. Pixel predicted as the ignore class drops out of the FP sum.
  assert float(segmentation.micro_accuracy(conf)) == pytest.approx(0.5)
  # denom: class0 1+... -> TP=2, FP(0)=0, FP(1)=1, FN=2  => 2 / 5
  assert float(segmentation.micro_jaccard(conf, 2)) == pytest.approx(2 / 5)
  assert float(segmentation.mean_iou(conf, 2)) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_losses():
  logits = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
  target = jnp.array([[[0, 1, 4], [2, 4, 3], [1, 1, 0]], [[4, 4, 4], [3, 2, 1], [0, 0, 2]]])
  valid = np.asarray(target) != 4
  logp = np.asarray(jax.nn.log_softmax(logits))
  t = np.where(valid, np.asarray(target), 0)
  expected = -np.take_along_axis(logp, t[..., None], -1)[..., 0][valid].mean()
  np.testing.assert_allclose(se.segmentation_loss(logits, target, 4), expected, rtol=1e-6)
  with pytest.raises(ValueError, match="target"):
    se.segmentation_loss(logits, target[..., :2], 4)
  z = jnp.array([[2.0, -1.0], [0.0, 3.0]])
  y = jnp.array([[1, 0], [0, 1]])
  p = jax.nn.sigmoid(z)
  bce = -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p)).mean()
  np.testing.assert_allclose(se.multilabel_loss(z, y), bce, rtol=1e-5)


def _trained_groups(model, x, pattern, depth):
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
  labels = train_lib.trainable_labels(pattern)(shapes)
  groups = {}
  for path, label in jax.tree_util.tree_leaves_with_path(labels):
    name = "/".join(str(getattr(k, "key", k)) for k in path[:min(depth, len(path) - 1)])
    groups.setdefault(name, set()).add(label)
  return {name for name, labels in groups.items() if labels == {"train"}}, set(groups)


def test_trainable_pattern_follows_the_official_freezing_flags():
  x = jax.ShapeDtypeStruct((1, 8, 8, 202), jnp.float32)
  vit = spec_vit.SpecViT(token_patch_size=4, img_size=8, embed_dim=16, depth=2, num_heads=2)
  seg = se.ViTSegmentor(vit, 3)
  blocks = {"backbone/vit_core/blocks_0", "backbone/vit_core/blocks_1"}
  linear, every = _trained_groups(seg, x, se.trainable_pattern(vit), 3)
  assert linear == {"head/conv0", "head/bn0", "head/conv1"}
  assert blocks <= every and "backbone/spectral_adapter/conv1" in every
  adapter, _ = _trained_groups(seg, x, se.trainable_pattern(vit, finetune_adapter=True), 2)
  assert adapter == {"head/conv0", "head/bn0", "head/conv1", "backbone/spectral_adapter"}
  first, _ = _trained_groups(seg, x, se.trainable_pattern(vit, finetune_first_n_layers=1), 3)
  assert first == linear | {"backbone/vit_core/blocks_0"}
  assert se.trainable_pattern(vit, freeze_backbone=False) == ""   # full fine-tuning
  # Spec ResNet-50 with its own fc head (CORINE): stages layer1..4 are the "layers".
  rn50 = spec_resnet.SpecResNet50(num_classes=19)
  pattern = se.trainable_pattern(rn50, finetune_first_n_layers=2, prefix="", head="fc/")
  trained, groups = _trained_groups(rn50, x, pattern, 1)
  assert trained == {"fc"} | {g for g in groups if g.startswith(("layer1_", "layer2_"))}
  assert "layer3_0" in groups and "spectral_adapter" in groups
  with pytest.raises(ValueError, match="finetune_first_n_layers"):
    se.trainable_pattern(vit, finetune_first_n_layers=-1)


def test_downstream_augment_keeps_multilabel_targets():
  rng = np.random.default_rng(0)
  image = rng.uniform(0, 1e4, (8, 8, 202)).astype(np.float32)
  label = np.array([1, 0, 1])
  mean, std = np.full(202, 2e3), np.full(202, 1e3)
  out = se.downstream_augment({"image": image, "label": label}, rng, scale=(0.6, 1.0), mean=mean,
                              std=std)
  assert out["image"].shape == (8, 8, 202) and out["label"].dtype == np.int32
  np.testing.assert_array_equal(out["label"], label)
  plain = se.downstream_augment({"image": image, "label": label}, None, scale=(0.6, 1.0),
                                mean=mean, std=std, train=False)
  np.testing.assert_allclose(plain["image"], (image - 2e3) / 1e3, rtol=1e-6)
  for bad in ({"image": image}, {"image": image, "label": label, "mask": image[..., 0]}):
    with pytest.raises(ValueError, match="exactly one of 'mask' or 'label'"):
      se.downstream_augment(bad, rng, scale=(0.6, 1.0), mean=mean, std=std)
