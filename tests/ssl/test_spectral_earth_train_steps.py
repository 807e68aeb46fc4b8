"""Training-step parity with the official SpectralEarth pre-training modules (float32).

``parity/spectral_earth_{moco,dino,mae}_steps.npz`` (docs/parity.md, "SpectralEarth training
steps"): AABNassim/spectral_earth 5084a29's ``MoCoModule``, ``DINOModule`` and ``MAEModule``
(lightly 1.5.26, timm 1.0.31, torch 2.13 CPU) with a Spec ViT of width 16, depth 1, 2 heads,
token size 2 on 8 px crops of 202 bands, run for three optimizer steps in Lightning's order on
one fixed batch of 4 standardised views (augmentations replaced by the identity) at epochs
0, 0, 1, so that every per-epoch rule (learning rate, DINO teacher momentum, last-layer freeze,
MAE cosine) changes once. Both sides start from the same weights; jspectral's task, the
engine's optimizer and the task's schedule must land on the official losses and parameters.
"""

from __future__ import annotations

import functools
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.nn.spec_vit import spec_vit_from_torch
from jspectral.ssl import spectral_earth as se
from jspectral.ssl import tasks

PARITY = pathlib.Path(__file__).parent / "parity"
BANDS = 202


def _pack(name):
  return np.load(PARITY / f"spectral_earth_{name}_steps.npz")


def _state(pack, prefix):
  return {k.removeprefix(prefix): pack[k] for k in pack.files if k.startswith(prefix)}


def _snapshot(pack, k, part):
  """The official state dict of ``part`` after ``k`` steps (the pack holds float32 initial
  values and float32 differences from them, computed in float64)."""
  init = {name: np.asarray(v, np.float64) for name, v in _state(pack, f"step0/{part}/").items()}
  if k == 0:
    return init
  return {name: init[name] + v for name, v in _state(pack, f"step{k}/{part}/").items()}


def _nhwc(x):
  return jnp.asarray(np.asarray(x).transpose(0, 2, 3, 1))



def _moco_head(sd):
  params = {"fc1": {"kernel": sd["layers.0.weight"].T}, "fc2": {"kernel": sd["layers.3.weight"].T}}
  stats = {}
  for name, i in (("bn1", 1), ("bn2", 4)):
    params[name] = {"scale": sd[f"layers.{i}.weight"], "bias": sd[f"layers.{i}.bias"]}
    stats[name] = {"mean": sd[f"layers.{i}.running_mean"], "var": sd[f"layers.{i}.running_var"]}
  return params, stats


def _dino_head(sd):
  np.testing.assert_array_equal(sd["last_layer.weight_g"], 1.0)   # frozen gain, not a param
  dense = lambda i: {"kernel": sd[f"layers.{i}.weight"].T, "bias": sd[f"layers.{i}.bias"]}
  return {"fc1": dense(0), "fc2": dense(2), "fc3": dense(4),
          "last_layer": sd["last_layer.weight_v"].T}


def _linear(sd, name):
  return {"kernel": sd[f"{name}.weight"].T, "bias": sd[f"{name}.bias"]}


def _norm(sd, name):
  return {"scale": sd[f"{name}.weight"], "bias": sd[f"{name}.bias"]}


def _mae_decoder(sd):
  b = "decoder_blocks.0."
  block = {"norm1": _norm(sd, b + "norm1"), "norm2": _norm(sd, b + "norm2"),
           "attn": {"qkv": _linear(sd, b + "attn.qkv"), "proj": _linear(sd, b + "attn.proj")},
           "mlp": {"fc1": _linear(sd, b + "mlp.fc1"), "fc2": _linear(sd, b + "mlp.fc2")}}
  return {"embed": _linear(sd, "decoder_embed"), "mask_token": sd["mask_token"],
          "blocks_0": block, "norm": _norm(sd, "decoder_norm"), "pred": _linear(sd, "decoder_pred")}


def _config(name, lr, wd, boundaries=(), **optimizer):
  config = train.default_config()
  config.update(total_steps=3)
  config.optimizer.update(name=name, learning_rate=lr, weight_decay=wd, momentum=0.9,
                          **optimizer)
  if boundaries:
    config.schedule.update(name="step", boundaries=list(boundaries), decay_factor=0.1)
  return config


# Tolerances (docs/parity.md lists the achieved errors). float32: losses to 2e-5 relative (MoCo's
# temperature 0.1 and BatchNorm over 4 rows amplify rounding: 1.05e-5 at its step 2), parameters
# to 5e-6 absolute, except leaves whose exact gradient is zero (biases of the convolutions that
# BatchNorm follows; the key part of the attention qkv bias, to which softmax is blind): Adam
# normalises their rounding noise into steps of up to lr, so they get 2 x the summed lr. float64
# (DINO; the float32 schedule constants leave 7e-8 on its loss): 2e-7 on losses, 5e-8 absolute
# on parameters (the pack stores the float64 updates rounded to float32).
TOL = {"float32": (2e-5, 5e-6), "float64": (2e-7, 5e-8)}
ZERO_GRADIENT = re.compile(r"spectral_adapter'\]\['conv\d'\]\['bias|'qkv'\]\['bias")


def _cast(tree, precision):
  return jax.tree.map(lambda x: jnp.asarray(x, precision) if np.issubdtype(
      np.asarray(x).dtype, np.floating) else jnp.asarray(x), tree)


def _run(task, config, params, state, batches, pack, check, precision):
  """Three ``train.train_step`` calls on ``batches`` (one per step); after each, the loss and
  ``check(k, ts)``."""
  schedule = getattr(task, "schedule", lambda c: None)(config)
  tx, schedule = train.make_optimizer(config, 3, schedule)
  np.testing.assert_allclose([schedule(s) for s in range(3)], pack["learning_rates"], rtol=1e-6)
  params, state, batches = (_cast(t, precision) for t in (params, state, batches))
  ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state,
                        jax.random.key(0))
  step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
  for k, batch in enumerate(batches, start=1):
    ts, metrics, ok = step(ts, batch)
    assert bool(ok)
    np.testing.assert_allclose(float(metrics["loss"]), pack["losses"][k - 1],
                               rtol=TOL[precision][0], err_msg=f"loss at step {k}")
    adam = config.optimizer.name == "adamw" and precision == "float32"
    check(k, ts, 2 * float(np.sum(pack["learning_rates"][:k])) if adam else 0.0)


def _assert_tree(ours, official, what, precision, noise=0.0):
  """Leaf by leaf to ``TOL``; ``noise``: the tolerance of the zero-gradient leaves."""
  flat = dict(jax.tree_util.tree_leaves_with_path(ours))
  for path, value in jax.tree_util.tree_leaves_with_path(official):
    name = jax.tree_util.keystr(path)
    atol = max(TOL[precision][1], noise if ZERO_GRADIENT.search(name) else 0.0)
    np.testing.assert_allclose(np.asarray(flat[path]), np.asarray(value), rtol=0, atol=atol,
                               err_msg=f"{what} {name}")


def _views_task(cls, **kw):
  return cls(source=None, mean=np.zeros(BANDS), std=np.ones(BANDS), size=8, **kw)


def _two_views(pack):
  return {"view1": _nhwc(pack["view1"]), "view2": _nhwc(pack["view2"])}


def _moco(pack, k, part):
  bb = _snapshot(pack, k, f"{part}backbone")
  _, variables = spec_vit_from_torch(bb, num_heads=2)
  head, head_stats = _moco_head(_snapshot(pack, k, f"{part}head"))
  return ({"backbone": variables["params"], "head": head},
          {"backbone": variables["batch_stats"], "head": head_stats})


def test_moco_three_sgd_steps_match_the_official_module(precision="float32"):
  pack = _pack("moco")
  vit, _ = spec_vit_from_torch(_snapshot(pack, 0, "backbone"), num_heads=2)
  task = _views_task(tasks.MoCoTask, backbone=vit, head_hidden=32, bank_size=10)
  params, stats = _moco(pack, 0, "")
  key_params, key_stats = _moco(pack, 0, "key_")
  state = {"batch_stats": stats, "key_params": key_params, "key_batch_stats": key_stats,
           "bank": pack["bank/init"], "ptr": jnp.zeros((), jnp.int32)}

  def check(k, ts, noise):
    np.testing.assert_allclose(ts.model_state["bank"], pack[f"bank/{k}"], atol=2e-5,
                               err_msg=f"bank after step {k}")   # unit keys; 3.6e-6 achieved
    assert int(ts.model_state["ptr"]) == int(pack[f"ptr/{k}"][0])   # 4, 8, then 0 (truncated)
    if k != 2:
      _assert_tree(ts.params, _moco(pack, k, "")[0], f"step {k}", precision, noise)
    if k == 3:
      _assert_tree(ts.model_state["key_params"], _moco(pack, 3, "key_")[0], "key encoder",
                   precision)

  with jax.enable_x64(precision == "float64"):
    _run(task, _config("momentum", 1e-3, 1e-4, boundaries=(2,)), params, state,
         [_two_views(pack)] * 3, pack, check, precision)


def _dino(pack, k, part):
  _, variables = spec_vit_from_torch(_snapshot(pack, k, f"{part}backbone"), num_heads=2)
  return ({"backbone": variables["params"], "head": _dino_head(_snapshot(pack, k, f"{part}head"))},
          {"backbone": variables["batch_stats"]})


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_dino_three_adamw_steps_match_the_official_module(precision):
  pack = _pack("dino")
  vit, _ = spec_vit_from_torch(_snapshot(pack, 0, "backbone"), num_heads=2)
  task = _views_task(tasks.DINOTask, backbone=vit, head_hidden=32, bottleneck=8, out_dim=16,
                     steps_per_epoch=2, official_lr=True)
  params, stats = _dino(pack, 0, "")
  teacher, teacher_stats = _dino(pack, 0, "teacher_")
  state = {"batch_stats": stats, "teacher_params": teacher, "teacher_batch_stats": teacher_stats,
           "center": np.zeros(16)}

  def check(k, ts, noise):
    np.testing.assert_allclose(ts.model_state["center"], pack[f"center/{k}"], rtol=1e-5,
                               atol=1e-7, err_msg=f"centre after step {k}")
    if k != 2:
      _assert_tree(ts.params, _dino(pack, k, "")[0], f"step {k}", precision, noise)
    if k == 3:   # the teacher moved by (1 - m) of the student's noise
      _assert_tree(ts.model_state["teacher_params"], _dino(pack, 3, "teacher_")[0], "teacher",
                   precision, noise * 0.01)

  with jax.enable_x64(precision == "float64"):
    _run(task, _config("adamw", 1e-3, 1e-5, skip_unused=True), params, state,
         [_two_views(pack)] * 3, pack, check, precision)


def _mae(pack, k):
  _, variables = spec_vit_from_torch(_snapshot(pack, k, "encoder"), num_heads=2)
  encoder = variables["params"]
  encoder["vit_core"] = {n: v for n, v in encoder["vit_core"].items() if n != "pos_embed"}
  return {"encoder": encoder, "decoder": _mae_decoder(_snapshot(pack, k, "decoder"))}


def test_mae_three_adamw_steps_match_the_official_module(precision="float32"):
  pack = _pack("mae")
  vit, variables = spec_vit_from_torch(_snapshot(pack, 0, "encoder"), num_heads=2)
  task = tasks.MAETask(source=None, mean=np.zeros(BANDS), std=np.ones(BANDS), size=8,
                       encoder=vit, mask_ratio=0.75, decoder_dim=16, decoder_heads=2,
                       official_lr=True, steps_per_epoch=2, lr_t_max=4)
  # lightly's frozen sin-cos tables: the encoder's (a constant of the task) and the decoder's
  np.testing.assert_allclose(task.pos_embed, _snapshot(pack, 0, "encoder")["vit_core.pos_embed"],
                             atol=1e-7)
  np.testing.assert_allclose(se.sincos_pos_embed_2d(16, 4)[None],
                             _snapshot(pack, 0, "decoder")["decoder_pos_embed"], atol=1e-7)
  state = {"batch_stats": {"encoder": variables["batch_stats"]}}
  # the official masks of the three steps: class token 0 plus int(16 * 0.25) = 4 patches kept
  batches = [{"view1": _nhwc(pack["image"]), "idx_keep": pack[f"idx_keep/{k}"],
              "idx_mask": pack[f"idx_mask/{k}"]} for k in range(3)]
  assert all(b["idx_keep"].shape == (4, 5) and (b["idx_keep"][:, 0] == 0).all() for b in batches)

  def check(k, ts, noise):
    if k != 2:
      _assert_tree(ts.params, _mae(pack, k), f"step {k}", precision, noise)
      np.testing.assert_array_equal(_snapshot(pack, k, "encoder")["vit_core.pos_embed"],
                                    _snapshot(pack, 0, "encoder")["vit_core.pos_embed"])

  with jax.enable_x64(precision == "float64"):
    _run(task, _config("adamw", 1e-4, 0.01), _mae(pack, 0), state, batches, pack, check,
         precision)
