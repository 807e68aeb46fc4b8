"""SpectralEarth Hyperview regression: the official loss and its epoch mean against the official
function's outputs, the official MLP head (counts, torch-default init, the eval-mode closed form,
dropout), the regression task's loss and scores, the linear protocol, and float targets through
the downstream transform."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jspectral import models
from jspectral import train as train_lib
from jspectral.metrics import regression
from jspectral.nn import spec_vit
from jspectral.ssl import spectral_earth as se
from jspectral.ssl import tasks

TINY_VIT = dict(token_patch_size=4, img_size=8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)


def test_score_matches_the_official_custom_mse_loss():
  # docs/parity.md: torch float64 outputs of regression_module.custom_mse_loss on 70 x 4.
  pack = np.load(pathlib.Path(__file__).parent / "parity" / "spectral_earth_hyperview_loss.npz")
  pred, target, baseline = pack["pred"], pack["target"], pack["baseline"]
  with jax.enable_x64(True):
    np.testing.assert_allclose(regression.challenge_score(pred, target, baseline), pack["score"],
                               rtol=1e-12)
    np.testing.assert_allclose(regression.challenge_score(pred, target),
                               pack["score_zero_baseline"], rtol=1e-12)
    np.testing.assert_allclose(regression.batch_mean_score(pred, target, baseline, batch_size=32),
                               pack["batch_mean_32"], rtol=1e-12)   # Lightning's epoch value


def _count(module, shape):
  shapes = jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
  return models.param_count(shapes)


def test_head_param_counts_and_torch_default_init():
  assert _count(se.RegressionHead(), (2, 384)) == 2_891_524      # Spec ViT-S CLS feature
  assert _count(se.RegressionHead(), (2, 2048)) == 6_302_724     # Spec ResNet-50 pooled
  params = se.RegressionHead(hidden=(64, 32)).init(jax.random.key(0), jnp.ones((2, 40)))["params"]
  for name, fan_in in (("linear0", 40), ("linear1", 64), ("linear2", 32)):
    for leaf in params[name].values():   # torch nn.Linear: kernel and bias in U(-b, b)
      bound = 1 / np.sqrt(fan_in)
      assert np.abs(leaf).max() <= bound and np.abs(leaf).max() > 0.8 * bound


def test_head_eval_mode_closed_form_and_dropout():
  head = se.RegressionHead(num_outputs=3, hidden=(6,))
  x = jax.random.normal(jax.random.key(1), (5, 4))
  variables = head.init(jax.random.key(0), x)
  p = jax.tree.map(np.asarray, variables["params"])
  # Fresh running statistics (mean 0, var 1): BN is x / sqrt(1 + eps) * scale + bias.
  h = np.asarray(x) / np.sqrt(1 + 1e-5) * p["bn"]["scale"] + p["bn"]["bias"]
  h = np.maximum(h @ p["linear0"]["kernel"] + p["linear0"]["bias"], 0)
  expected = h @ p["linear1"]["kernel"] + p["linear1"]["bias"]
  np.testing.assert_allclose(head.apply(variables, x), expected, rtol=1e-5, atol=1e-6)
  train = lambda key: head.apply(variables, x, True, rngs={"dropout": key},
                                 mutable=["batch_stats"])[0]
  assert not np.allclose(train(jax.random.key(2)), train(jax.random.key(3)))
  np.testing.assert_array_equal(train(jax.random.key(2)), train(jax.random.key(2)))


def _source(n, seed=0):
  rng = np.random.default_rng(seed)
  return [{"image": rng.normal(size=(8, 8, 150)).astype(np.float32),
           "label": rng.normal(size=4).astype(np.float32)} for _ in range(n)]


def test_regression_task_loss_scores_and_freezing():
  source = _source(6)
  encoder = spec_vit.SpecViT(**TINY_VIT)
  batch = {k: jnp.stack([e[k] for e in source[:4]]) for k in source[0]}
  pretrained = jax.jit(encoder.init)(jax.random.key(5), batch["image"])
  model = se.Regressor(encoder, 4, hidden=(8,))
  task = tasks.RegressionTask(model=model, source=source, eval_source=source[4:],
                              init_variables=pretrained, eval_batch=4, score_batch=2)
  params, state = task.init(jax.random.key(0), batch)
  same = lambda a, b: jax.tree.all(jax.tree.map(lambda u, v: bool(jnp.all(u == v)), a, b))
  assert same(params["backbone"], pretrained["params"]) and set(params) == {"backbone", "head"}
  # Loss: the challenge score (zero baseline) of training-mode predictions with that dropout key,
  # per chunk of score_batch = 2 (two "GPUs"), averaged.
  key = jax.random.key(7)
  loss, _ = task.loss(params, state, batch, key)
  pred = np.asarray(model.apply({"params": params, **state}, batch["image"], True,
                                rngs={"dropout": key}, mutable=["batch_stats"])[0])
  y = np.asarray(batch["label"])
  chunk = lambda s: np.mean(np.mean((pred[s] - y[s]) ** 2, 0) / np.mean(y[s] ** 2, 0))
  np.testing.assert_allclose(loss, (chunk(slice(0, 2)) + chunk(slice(2, 4))) / 2, rtol=1e-5)
  # Scores: inference-mode predictions of the whole split, in source order.
  scores = task.scores(params, state, source)
  pred = np.asarray(model.apply({"params": params, **state},
                                jnp.stack([e["image"] for e in source])))
  target = np.stack([e["label"] for e in source])
  per_target = np.mean((pred - target) ** 2, 0) / np.mean(target ** 2, 0)
  np.testing.assert_allclose([scores[f"score_{t}"] for t in range(4)], per_target, rtol=1e-5)
  np.testing.assert_allclose(scores["score"], per_target.mean(), rtol=1e-5)
  official = regression.batch_mean_score(pred, target, batch_size=2)
  np.testing.assert_allclose([scores["batch_mean"], scores["loss"]], [official] * 2, rtol=1e-5)
  np.testing.assert_allclose(scores["rmse"], np.sqrt(np.mean((pred - target) ** 2)), rtol=1e-5)
  # The linear protocol trains the head only; finetune_adapter adds the spectral adapter.
  def trained(pattern):
    labels = jax.tree_util.tree_leaves_with_path(train_lib.trainable_labels(pattern)(params))
    group = lambda path: "/".join(k.key for k in path[:2])
    groups = {group(path) for path, label in labels if label == "train"}
    assert all(label == "train" for path, label in labels if group(path) in groups)
    return groups

  head = {"head/bn", "head/linear0", "head/linear1"}
  assert trained(se.trainable_pattern(encoder)) == head
  assert trained(se.trainable_pattern(encoder, finetune_adapter=True)) == \
      head | {"backbone/spectral_adapter"}


def test_downstream_augment_keeps_float_targets():
  rng = np.random.default_rng(0)
  image = rng.uniform(0, 1e4, (8, 8, 150)).astype(np.float32)
  label = np.array([0.25, -1.5, 0.0, 2.0], np.float32)
  out = se.downstream_augment({"image": image, "label": label}, rng, scale=(0.4, 1.0),
                              mean=np.full(150, 2e3), std=np.full(150, 1e3))
  assert out["label"].dtype == np.float32 and out["image"].shape == (8, 8, 150)
  np.testing.assert_array_equal(out["label"], label)
