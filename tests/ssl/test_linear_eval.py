"""The official ImageNet linear evaluation as a fit task: frozen backbone, trained head."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jspectral import train
from jspectral.nn import resnet
from jspectral.ssl import tasks


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, 96)
  colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
  images = np.clip(colours[labels][:, None, None] + 0.15 * rng.normal(size=(96, 20, 20, 3)), 0, 1)
  images = (images * 255).astype(np.uint8)
  backbone = resnet.ResNet(stage_sizes=(1, 1, 1, 1), width=4, stem="cifar")
  variables = jax.jit(backbone.init, static_argnames="train")(
      jax.random.key(0), np.zeros((1, 16, 16, 3), np.float32), train=False)
  task = tasks.LinearEvalTask(backbone, variables, images[:64], labels[:64], images[64:],
                              labels[64:], num_classes=3, crop=16, resize=20,
                              mean=(0.5,) * 3, std=(0.25,) * 3)
  config = train.default_config()
  config.update(total_steps=40, batch_size=16, log_every=10, eval_every=20, progress=False)
  config.optimizer.update(name="momentum", learning_rate=0.5, weight_decay=0.0)
  config.select.update(metric="top1", mode="max")
  before = task.evaluate(*jax.tree.map(np.asarray, task.init(jax.random.key(1), None)))
  return task, variables, before, train.fit(task, config, tmp_path_factory.mktemp("probe"))


def test_the_head_learns_and_the_backbone_stays_frozen(probe_run):
  task, variables, before, result = probe_run
  assert result.evals["eval/top1"] > max(before["top1"], 0.6)
  assert result.evals["eval/top5"] == 1.0                               # 3 classes
  frozen = result.model_state["backbone"]
  for ours, theirs in zip(jax.tree.leaves(frozen), jax.tree.leaves(variables), strict=True):
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
  assert set(result.params) == {"kernel", "bias"} and result.params["kernel"].shape == (32, 3)


def test_validation_takes_the_centre_crop_of_the_resized_image(probe_run):
  task = probe_run[0]
  head = {"kernel": np.zeros((32, 3), np.float32), "bias": np.zeros(3, np.float32)}
  state = {"backbone": probe_run[1]}
  odd = np.zeros((2, 40, 48, 3), np.uint8)               # resized to 20 x 24, centre 16 x 16
  assert task._val_logits(head, state, odd).shape == (2, 3)
  with pytest.raises(ValueError, match="x_val"):
    tasks.LinearEvalTask(task.backbone, probe_run[1], task.x_train, task.y_train,
                         task.x_val[:, 0], task.y_val, num_classes=3)


def test_fine_tuning_scales_the_backbone_gradient_and_trains_batchnorm(probe_run):
  """``FineTuneTask``: one optimizer with the backbone gradient scaled by lr_backbone /
  lr_classifier is the official two-group SGD (momentum, no weight decay); BN in train mode."""
  base = probe_run[0]
  kw = dict(num_classes=3, crop=16, resize=20, mean=(0.5,) * 3, std=(0.25,) * 3)
  make = lambda ratio: tasks.FineTuneTask(base.backbone, probe_run[1], base.x_train,  # noqa: E731
                                          base.y_train, base.x_val, base.y_val,
                                          backbone_lr_ratio=ratio, **kw)
  batch = {"image": base.x_train[:16], "label": base.y_train[:16]}
  grads, values = {}, {}
  for ratio in (1.0, 0.02):
    task = make(ratio)
    params, state = task.init(jax.random.key(1), None)
    (values[ratio], aux), grads[ratio] = jax.jit(jax.value_and_grad(task.loss, has_aux=True))(
        params, state, batch, jax.random.key(2))
  assert values[1.0] == values[0.02]
  for name in ("kernel", "bias"):
    np.testing.assert_array_equal(grads[1.0][name], grads[0.02][name])
  for g1, g2 in zip(jax.tree.leaves(grads[1.0]["backbone"]),
                    jax.tree.leaves(grads[0.02]["backbone"]), strict=True):
    np.testing.assert_allclose(g2, 0.02 * g1, rtol=1e-6, atol=1e-12)
  assert max(float(np.max(np.abs(g))) for g in jax.tree.leaves(grads[1.0]["backbone"])) > 0
  moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(aux["state"]["batch_stats"]),
                                                 jax.tree.leaves(state["batch_stats"]),
                                                 strict=True)]
  assert any(moved)                                      # running statistics updated
  assert 0.0 <= make(0.02).evaluate(params, state)["top1"] <= 1.0
  with pytest.raises(ValueError, match="backbone_lr_ratio"):
    make(-1.0)
  with pytest.raises(ValueError, match="x_val"):
    tasks.LinearEvalTask(base.backbone, probe_run[1], base.x_train, base.y_train,
                         list(base.x_val), base.y_val, num_classes=3)
