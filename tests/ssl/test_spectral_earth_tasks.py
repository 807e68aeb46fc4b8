"""SpectralEarth SSL tasks: one short fit per objective, official quirks vs their flags, and
data-parallel equality of the DINO and MoCo loss curves over 8 host devices."""

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.data.builders import spectral_earth as data
from jspectral.nn import spec_vit
from jspectral.ssl import tasks
from tests.conftest import subprocess_env

TINY_VIT = dict(token_patch_size=4, img_size=8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)


def make_source(n=16, size=12, seed=0):
  rng = np.random.default_rng(seed)
  endmembers = data.class_endmembers(rng, 3, per_class=2)
  return [{"images": np.stack([data.synthetic_scene(rng, endmembers, size)[0]] * 2)}
          for _ in range(n)]


def make_task(method, source, **kw):
  bands = data.enmap_bands()
  common = dict(source=source, mean=bands["mu"], std=bands["sigma"], size=8)
  vit = spec_vit.SpecViT(**TINY_VIT)
  if method == "moco":
    return tasks.MoCoTask(**common, backbone=vit, head_hidden=32, bank_size=32, **kw)
  if method == "dino":
    return tasks.DINOTask(**common, backbone=vit, head_hidden=32, out_dim=16, steps_per_epoch=2,
                       total_steps=8, **kw)
  return tasks.MAETask(**common, encoder=vit, mask_ratio=0.5, decoder_dim=16, decoder_heads=2, **kw)


def fit_config(steps, lr=1e-3, optimizer="adamw"):
  config = train.default_config()
  config.update(total_steps=steps, batch_size=8, log_every=1, checkpoint_every=1000,
                progress=False)
  config.optimizer.update(name=optimizer, learning_rate=lr)
  return config


def batch_of(task, n=8, seed=0):
  rng = np.random.default_rng(seed)
  views = [task.augment(e, rng) for e in task.source[:n]]
  return {k: jnp.stack([v[k] for v in views]) for k in views[0]}


@pytest.mark.slow  # ~30 s: a 12-step fit
def test_mae_fit_loss_falls(tmp_path):
  result = train.fit(make_task("mae", make_source()), fit_config(12, 3e-3), tmp_path)
  losses = [r["loss"] for r in result.history if "loss" in r]
  assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_moco_step_updates_bank_and_key_encoder():
  task = make_task("moco", make_source(8))
  batch = batch_of(task)
  params, state = jax.jit(task.init)(jax.random.key(0), batch)
  loss, aux = jax.jit(task.loss)(params, state, batch, jax.random.key(1))
  new = aux["state"]
  assert np.isfinite(loss) and int(new["ptr"]) == 8
  assert not np.allclose(new["bank"][:8], state["bank"][:8])
  np.testing.assert_allclose(new["bank"][8:], state["bank"][8:])
  np.testing.assert_allclose(np.linalg.norm(new["bank"][:8], axis=1), 1.0, rtol=1e-5)
  leaf = lambda tree: jax.tree.leaves(tree)[0]
  expected = 0.999 * leaf(state["key_params"]) + 0.001 * leaf(params)
  np.testing.assert_allclose(leaf(new["key_params"]), expected, rtol=1e-6, atol=1e-7)


def test_moco_key_encoder_init_quirk_and_flag():
  source = make_source(8)
  batch = batch_of(make_task("moco", source))
  for copy in (False, True):
    params, state = make_task("moco", source, copy_key_encoder=copy).init(jax.random.key(0), batch)
    same = jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), params,
                                     state["key_params"]))
    assert same == copy


def test_dino_last_layer_frozen_in_first_epoch_and_momentum_flag():
  task = make_task("dino", make_source(8))
  batch = batch_of(task)
  params, state = jax.jit(task.init)(jax.random.key(0), batch)
  grad = jax.jit(jax.grad(lambda p, s, step: task.loss(p, s, batch, None, step)[0]))
  assert np.all(np.asarray(grad(params, state, jnp.int32(0))["head"]["last_layer"]) == 0)
  # epoch 1 (2 steps per epoch)
  assert np.any(np.asarray(grad(params, state, jnp.int32(2))["head"]["last_layer"]) != 0)
  official = [float(task.teacher_momentum(s)) for s in range(0, 30, 2)]
  assert official[0] == pytest.approx(0.996) and official[9:] == [1.0] * 6
  per_step = make_task("dino", make_source(8), per_step_momentum=True)
  assert float(per_step.teacher_momentum(4)) != pytest.approx(float(task.teacher_momentum(4)))
  assert float(per_step.teacher_momentum(7)) == 1.0


_DATA_PARALLEL = r'''
import json, sys, tempfile, pathlib
import jax
from jax.sharding import Mesh
import numpy as np
sys.path.insert(0, ".")
from jspectral.train import loop
from tests.ssl.test_spectral_earth_tasks import make_task, make_source, fit_config
assert len(jax.devices()) == 8
out = {}
for method in sys.argv[1:]:
  for devices in (1, 8):
    loop.make_mesh = lambda d=devices: Mesh(np.asarray(jax.devices()[:d]), ("data",))
    with tempfile.TemporaryDirectory() as tmp:
      # SGD, not Adam: Adam rescales near-zero gradients to full-size steps, so float32
      # reduction-order noise (8 shards vs 1) would grow into visible loss differences.
      result = loop.fit(make_task(method, make_source()), fit_config(4, lr=0.05, optimizer="sgd"),
                        pathlib.Path(tmp))
    out[f"{method}_{devices}"] = [r["loss"] for r in result.history if "loss" in r]
print(json.dumps(out))
'''


@pytest.mark.slow  # ~50 s: two fits in an 8-device subprocess
@pytest.mark.parametrize("method", ["dino", "moco"])
def test_loss_curves_equal_over_8_devices(method):
  """DINO (centring) and MoCo (queue, global BatchNorm) give the 1-device loss curve on 8 devices.

  Before BatchNorm used the two-pass variance, MoCo's curves parted by 5% at step 4 (float32
  cancellation in ``E[x^2] - E[x]^2``)."""
  root = pathlib.Path(__file__).resolve().parents[2]
  proc = subprocess.run([sys.executable, "-c", _DATA_PARALLEL, method], cwd=root,
                        env=subprocess_env(8), capture_output=True, text=True, timeout=1800)
  assert proc.returncode == 0, proc.stderr[-3000:]
  curves = json.loads(proc.stdout.strip().splitlines()[-1])
  one, eight = curves[f"{method}_1"], curves[f"{method}_8"]
  assert len(one) == 4
  np.testing.assert_allclose(eight, one, rtol=2e-4, err_msg=method)


def test_dino_official_schedules_at_given_steps():
  """Official DINO: per-epoch LinearLR (lr/20 -> lr over 20 epochs) then cosine with T_max =
  100 epochs; lightly's teacher momentum cosine over 10 epochs then 1.0; teacher temperature
  linspace(start, 0.04) over 10 epochs (0.04 -> 0.04 officially)."""
  task = make_task("dino", make_source(2), official_lr=True)   # 2 steps per epoch
  lr = task.schedule(fit_config(1))
  # step -> epoch: 0, 0, 1, 39 (warm-up end), 40 (cosine start), 199 (epoch 99).
  warm = lambda e: 1e-3 * (1 / 20 + 0.95 * e / 20)
  expected = {0: 5e-5, 1: 5e-5, 2: warm(1), 39: warm(19), 40: 1e-3,
              199: 1e-3 * (1 + np.cos(np.pi * 79 / 100)) / 2}
  for step, value in expected.items():
    np.testing.assert_allclose(float(lr(step)), value, rtol=1e-5, err_msg=f"step {step}")
  assert float(lr(199)) > 0.09e-3   # T_max = 100 epochs: still ~0.095 lr at the last epoch
  cos = lambda e: 1 - 0.004 * (np.cos(np.pi * e / 9) + 1) / 2
  momentum = {0: 0.996, 1: 0.996, 2: cos(1), 17: cos(8), 18: 1.0, 150: 1.0}
  for step, value in momentum.items():
    np.testing.assert_allclose(float(task.teacher_momentum(step)), value, rtol=1e-6)
  np.testing.assert_allclose([float(task.teacher_temperature(s)) for s in (0, 9, 40)], 0.04)
  ramp = make_task("dino", make_source(2), warmup_teacher_temp=0.02)
  np.testing.assert_allclose([float(ramp.teacher_temperature(s)) for s in (0, 2, 16, 18, 40)],
                             [0.02, 0.02 + 0.02 / 9, 0.02 + 0.02 * 8 / 9, 0.04, 0.04], rtol=1e-6)
  assert make_task("dino", make_source(2)).schedule(fit_config(1)) is None  # engine schedule


def test_pretraining_paper_variants_build_their_tasks():
  from experiments.common import spectral_earth_task
  from experiments.configs import pretrain_spectral_earth as pretrain

  assert set(pretrain.PAPER_VARIANTS) == {"rn50", "mae_vit_b", "mae_vit_l", "mae_vit_h",
                                          "mae_vit_g"}
  rn50 = pretrain.get_config("paper:rn50")
  assert rn50.methods == ["moco", "dino"] and rn50.backbone == "spec_resnet50"
  dino = spectral_earth_task("dino", rn50, [])
  assert dino.official_lr and type(dino.backbone).__name__ == "SpecResNet50"
  assert not dino.per_step_momentum and dino.momentum_start == 0.996
  assert rn50.train.dino.precision == "bfloat16"
  g = pretrain.get_config("paper:mae_vit_g")
  assert g.methods == ["mae"] and (g.vit.embed_dim, g.vit.depth, g.vit.num_heads) == (1536, 40, 24)
  assert spectral_earth_task("mae", g, []).encoder.img_size == 128
  with pytest.raises(ValueError, match="backbone"):
    spectral_earth_task("mae", rn50, [])


def test_multilabel_task_loss_scores_and_frozen_encoder(tmp_path):
  from jspectral.metrics import segmentation
  from jspectral.ssl import spectral_earth as se

  rng = np.random.default_rng(0)
  source = [{"image": rng.normal(size=(8, 8, 202)).astype(np.float32),
             "label": rng.integers(0, 2, 3).astype(np.int32)} for _ in range(6)]
  encoder = spec_vit.SpecViT(**TINY_VIT)
  batch = {k: jnp.stack([e[k] for e in source[:4]]) for k in source[0]}
  pretrained = jax.jit(encoder.init)(jax.random.key(5), batch["image"])
  model = encoder.clone(num_classes=3)
  task = tasks.MultiLabelTask(model=model, source=source, eval_source=source[4:],
                              init_variables=pretrained, eval_batch=4)
  params, state = task.init(jax.random.key(0), batch)
  assert set(params["vit_core"]) - set(pretrained["params"]["vit_core"]) == {"head"}
  same = lambda a, b: jax.tree.all(jax.tree.map(lambda u, v: bool(jnp.all(u == v)), a, b))
  assert same(params["spectral_adapter"], pretrained["params"]["spectral_adapter"])
  # Loss: BCE-with-logits of the training-mode logits (BatchNorm on batch statistics).
  loss, _ = task.loss(params, state, batch, None)
  logits = model.apply({"params": params, **state}, batch["image"], True,
                       mutable=["batch_stats"])[0]
  p = jax.nn.sigmoid(logits)
  y = batch["label"]
  bce = -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))
  np.testing.assert_allclose(loss, bce, rtol=1e-5)
  # Scores: the torchmetrics-style metrics of the inference-mode logits of the whole split.
  scores = task.scores(params, state, source)
  all_logits = model.apply({"params": params, **state}, jnp.stack([e["image"] for e in source]))
  targets = jnp.stack([e["label"] for e in source])
  expected = segmentation.multilabel_metrics(jax.nn.sigmoid(all_logits), targets)
  for key, value in expected.items():
    np.testing.assert_allclose(scores[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
  np.testing.assert_allclose(scores["loss"], se.multilabel_loss(all_logits, targets), rtol=1e-5)
  # The linear protocol trains the head only.
  config = fit_config(2, lr=1e-2)
  config.batch_size = 4
  config.trainable = se.trainable_pattern(encoder, prefix="", head="vit_core/head/")
  result = train.fit(task, config, tmp_path)
  assert same(result.params["vit_core"]["blocks_0"], params["vit_core"]["blocks_0"])
  assert not same(result.params["vit_core"]["head"], params["vit_core"]["head"])
