"""Training-step parity with the official LoLA-SpecViT loop: three AdamW updates (float64).

``parity/lola_train_steps.npz`` was written by running the official ``EnhancedTrainer``
(FadiZidiDz/LoLA-SpecViT-Model 664c45d: ``setup_training`` and ``train_epoch``, so its AdamW
groups, label smoothing, warm-up, gradient accumulation 2, clipping 0.5, per-sample normalisation
and axis permutation) on a one-level mini model (dim 16, heads 2, mlp 1, r 4, alpha 8, dropouts
0) in ``.double()`` for six micro-batches of 8, i.e. three optimizer steps (docs/parity.md).
jspectral's engine step with ``LoLATask.loss`` must land on the same losses and parameters.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import classify_lola
from jspectral import models, train
from jspectral.classification import lola_specvit as lola
from jspectral.classification.tasks import LoLATask
from jspectral.train.loop import _freeze

PACK = pathlib.Path(__file__).parent / "parity" / "lola_train_steps.npz"


@pytest.fixture(scope="module")
def pack():
  return dict(np.load(PACK))


def _state(pack, prefix):
  return {k[len(prefix):]: v for k, v in pack.items() if k.startswith(prefix)}


def _assert_close(ours, official, what):
  flat = dict(jax.tree_util.tree_leaves_with_path(ours))
  for path, value in jax.tree_util.tree_leaves_with_path(official):
    np.testing.assert_allclose(np.asarray(flat[path]), np.asarray(value), rtol=1e-9, atol=1e-13,
                               err_msg=f"{what} {jax.tree_util.keystr(path)}")


def test_lola_train_steps(pack):
  with jax.enable_x64(True):
    init = _state(pack, "init/")
    module, _ = models.from_torch("lola_specvit_mini", init)
    module = module.clone(band_dropout=0.0, embed_dropout=0.0)
    variables = lola.convert_torch_state(init, np.float64)
    x = lola.normalise_patches(jnp.asarray(pack["raw_patches"]), "official")
    y = jnp.asarray(pack["labels"])
    task = LoLATask(module, np.asarray(x), np.asarray(y), np.asarray(x), np.asarray(y))
    config = classify_lola.get_config("paper").train
    config.update(batch_size=16, grad_accum_steps=2)
    # the official run's epoch held 6 micro-batches: its warm-up epoch 0 (lr 2e-5 / 5)
    tx, _ = train.make_optimizer(config, 3, lola.official_lr_schedule(
        config.optimizer.learning_rate, batches_per_epoch=6, accumulation=2))
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state,
                          jax.random.key(0))
    # as fit does: no backward pass through the frozen layers
    step = jax.jit(functools.partial(train.train_step, loss_fn=_freeze(task.loss, config.trainable),
                                     tx=tx, grad_accum_steps=2))
    losses = []
    for k in (1, 2, 3):
      ts, metrics, ok = step(ts, {"x": x, "y": y})
      assert bool(ok)
      losses.append(float(metrics["loss"]))
      official = lola.convert_torch_state({**init, **_state(pack, f"step{k}/")}, np.float64)
      _assert_close({"params": ts.params, **ts.model_state}, official, f"step {k}")
    np.testing.assert_allclose(losses, pack["losses"], rtol=1e-10)
    assert float(pack["learning_rate"]) == pytest.approx(4e-6)
