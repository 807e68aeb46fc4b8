"""Training-step parity with the official INTL CIFAR trainer (float64).

``parity/intl_train_steps.npz`` (docs/parity.md, "INTL"): winci-ai/INTL's ``INTL`` method with a
CIFAR-stem ResNet of one BasicBlock per stage at width 8, projector 64-32-32-16, IterNorm axis 0
T = 4, trade-off of batch 16; ``torch.optim.SGD(momentum=0.9, weight_decay=5e-3)`` with
``cifar/main.py``'s per-step learning rate (base 0.5, 1 warm-up step of 3), on two fixed views of
16 images in ``.double().train()``. jspectral's INTL task with the engine's optimizer and the
official schedule must land on the same losses and parameters.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jspectral import models, train
from jspectral.ssl import intl, tasks

PACK = pathlib.Path(__file__).parent / "parity" / "intl_train_steps.npz"


def _state(pack, prefix):
  return {k.removeprefix(prefix): pack[k] for k in pack.files if k.startswith(prefix)}


def test_intl_cifar_three_sgd_steps_match_the_official_trainer():
  with jax.enable_x64(True):
    pack = np.load(PACK)
    module, init = models.from_torch("intl_resnet18_cifar", _state(pack, "init/"))
    assert module.backbone.stage_sizes == (1, 1, 1, 1) and module.backbone.width == 8
    base_lr, wd, total, warmup = (float(v) for v in pack["config"][:4])
    views = tuple(intl.ViewAugment(crop_size=16) for _ in range(2))
    task = tasks.INTLTask(module, np.zeros((1, 16, 16, 3)), views, total_steps=int(total))
    config = train.default_config()
    config.update(total_steps=int(total))
    config.optimizer.update(name="momentum", learning_rate=base_lr, weight_decay=wd)
    config.schedule.warmup_steps = int(warmup)
    tx, schedule = train.make_optimizer(config, int(total), task.schedule(config))
    np.testing.assert_allclose([schedule(s) for s in range(3)], pack["learning_rates"],
                               rtol=1e-12)
    params = init["params"]
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params),
                          {"batch_stats": init["batch_stats"]}, jax.random.key(0))
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
    batch = {"views": jnp.asarray(pack["views"]).swapaxes(0, 1)}       # (N, V, S, S, 3)
    for k in (1, 2, 3):
      ts, metrics, ok = step(ts, batch)
      assert bool(ok)
      np.testing.assert_allclose(float(metrics["loss"]), pack["losses"][k - 1], rtol=1e-9)
      official = intl.variables_from_torch(_state(pack, f"step{k}/"))["params"]
      flat = dict(jax.tree_util.tree_leaves_with_path(ts.params))
      for path, value in jax.tree_util.tree_leaves_with_path(official):
        np.testing.assert_allclose(np.asarray(flat[path]), np.asarray(value), rtol=1e-8,
                                   atol=1e-11, err_msg=f"step {k} {jax.tree_util.keystr(path)}")



PACK_M = pathlib.Path(__file__).parent / "parity" / "intl_m_train_steps.npz"


def _official_key(pack, step):
  """The official momentum networks of ``step`` under the online networks' names."""
  return intl.variables_from_torch({k.removeprefix(f"step{step}/momentum_"): pack[k]
                                    for k in pack.files
                                    if k.startswith(f"step{step}/momentum_")})["params"]


def _assert_tree_close(ours, official, what):
  flat = dict(jax.tree_util.tree_leaves_with_path(ours))
  for path, value in jax.tree_util.tree_leaves_with_path(official):
    np.testing.assert_allclose(np.asarray(flat[path]), np.asarray(value), rtol=1e-8, atol=1e-11,
                               err_msg=f"{what} {jax.tree_util.keystr(path)}")


def test_intl_m_three_ema_steps_match_the_official_trainer(cheap_compiles):
  """``parity/intl_m_train_steps.npz`` (docs/parity.md): ``methods/intl_m.py`` with a
  ResNet-50-style network (Bottleneck, one block per stage, width 4, zero-init residual, ImageNet
  stem), projector 128-32-32-16, 3 views of 16 images, ``main.py``'s SGD (weight decay 5e-3 off
  1-D parameters), learning rate and ``adjust_momentum`` (m0 = 0.9) over 3 steps, float64."""
  with jax.enable_x64(True):
    pack = np.load(PACK_M)
    module, init = models.from_torch("intl_resnet50", _state(pack, "init/"))
    assert module.backbone.block_cls.__name__ == "Bottleneck" and module.backbone.width == 4
    base_lr, wd, total, warmup, m0 = (float(v) for v in pack["config"])
    views = tuple(intl.ViewAugment(crop_size=32) for _ in range(3))
    task = tasks.INTLTask(module, np.zeros((1, 32, 32, 3)), views, ema_momentum=m0,
                          total_steps=int(total))
    np.testing.assert_allclose([intl.ema_momentum_at(s, int(total), m0) for s in range(3)],
                               pack["momenta"], rtol=1e-12)
    config = train.default_config()
    config.update(total_steps=int(total))
    config.optimizer.update(name="momentum", learning_rate=base_lr, weight_decay=wd,
                            decay_1d=False)
    config.schedule.warmup_steps = int(warmup)
    tx, _ = train.make_optimizer(config, int(total), task.schedule(config))
    params, stats = init["params"], init["batch_stats"]
    state = {"batch_stats": stats, "ema": {"params": params, "batch_stats": stats},
             "ema_step": jnp.zeros((), jnp.int32)}
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state,
                          jax.random.key(0))
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
    batch = {"views": jnp.asarray(pack["views"]).swapaxes(0, 1)}       # (N, V, S, S, 3)
    for k in (1, 2, 3):
      ts, metrics, ok = step(ts, batch)
      assert bool(ok)
      np.testing.assert_allclose(float(metrics["loss"]), pack["losses"][k - 1], rtol=1e-9)
      _assert_tree_close(ts.params, intl.variables_from_torch(_state(pack, f"step{k}/"))["params"],
                         f"online, step {k}")
      _assert_tree_close(ts.model_state["ema"]["params"], _official_key(pack, k), f"key, step {k}")
