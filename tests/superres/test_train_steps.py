"""Training-step parity of ESSAformer: the official module under SSPSR's training step (float64).

``parity/essaformer_train_steps.npz`` was generated outside the project (docs/parity.md,
"ESSAformer training steps"): Rexzhan/ESSAformer ``ESSA.py`` (dc834c1) ``ESSA(inch=8, dim=16,
upscale=2).double().train()`` with every ``Dropout2d`` at p = 0, SSPSR ``mains.py``'s step
(``Adam(lr, weight_decay=0)``, ``adjust_learning_rate`` at epoch 1, ``L1Loss``) on one fixed batch
(LR 2 x 8 x 8 x 8, HR 2 x 8 x 16 x 16), three zero_grad / backward / step rounds.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jspectral import train
from jspectral.superres import essaformer, tasks

PACK = pathlib.Path(__file__).parent / "parity" / "essaformer_train_steps.npz"


def _state(pack, prefix: str) -> dict[str, np.ndarray]:
  return {k.removeprefix(prefix): pack[k] for k in pack.files if k.startswith(prefix)}


def test_essaformer_train_steps_match_the_official_module_under_sspsrs_step():
  with jax.enable_x64(True):
    pack = np.load(PACK)
    module, init = essaformer.from_torch(_state(pack, "init/"), np.float64)
    task = tasks.SingleImageSRTask(module.clone(drop_rate=0.0), [], [], scale=2)
    config = train.default_config()
    config.optimizer.update(name="adam", learning_rate=float(pack["learning_rate"]))
    config.schedule.update(name="step", boundaries=[29], decay_factor=0.1)
    tx, _ = train.make_optimizer(config, total_steps=3)
    params = init["params"]
    nhwc = lambda x: jnp.asarray(np.transpose(x, (0, 2, 3, 1)), jnp.float64)
    batch = {"lr": nhwc(pack["x"]), "hr": nhwc(pack["gt"])}
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), {},
                          jax.random.key(0))
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
    losses = []
    for k in (1, 2, 3):
      ts, metrics, ok = step(ts, batch)
      assert bool(ok)
      losses.append(float(metrics["loss"]))
      official = essaformer.from_torch(_state(pack, f"step{k}/"), np.float64)[1]["params"]
      for path, value in jax.tree_util.tree_leaves_with_path(official):
        ours = functools.reduce(lambda t, p: t[p.key], path, ts.params)
        np.testing.assert_allclose(np.asarray(ours), value, rtol=1e-9, atol=1e-12,
                                   err_msg=f"step {k} {jax.tree_util.keystr(path)}")
    np.testing.assert_allclose(losses, pack["losses"], rtol=1e-10)
