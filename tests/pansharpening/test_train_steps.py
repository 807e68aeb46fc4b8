"""Training-step parity of the toolbox's supervised networks with the official training code.

``parity/<name>_train_steps.npz`` were made by running the official ``train`` functions of
matciotola/hyperspectral_pansharpening_toolbox 1b2ea9b (``HyperPNN/HyperPNN.py``,
``HyperDSNet/HyperDSNet.py``; torch 2.13 CPU, float64) for 3 epochs over one fixed batch of two
6-band 36x36 RR patches (one optimizer step each), from fixed initial weights; the parameters
after each ``Adam.step`` and the three MSE losses were recorded (docs/parity.md, section
pansharp). Initial weights and batch are exact in float32; the steps are stored as float32
deltas from the initial weights.
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import optax
import pytest

from jspectral.pansharpening import deep, tasks
from jspectral.train.optim import make_optimizer

PARITY = pathlib.Path(__file__).parent / "parity"


def _state(pack, prefix):
  return {k[len(prefix):]: pack[k].astype(np.float64) for k in pack.files if k.startswith(prefix)}


@pytest.mark.parametrize("name", ["hyperpnn", "hyper_dsnet"])
def test_supervised_train_steps_match_official(name):
  pack = np.load(PARITY / f"{name}_train_steps.npz")
  nhwc = lambda k: np.transpose(pack[k].astype(np.float64), (0, 2, 3, 1))
  batch = {"pan": nhwc("pan"), "hs_lr": nhwc("hs_lr"), "hs_up": nhwc("hs_up"), "gt": nhwc("gt")}
  with jax.enable_x64(True):
    _, variables = deep.MODELS[name].from_torch(_state(pack, "init/"))
    params = variables["params"]
    task = tasks.SupervisedTask(name, [{k: v[0] for k, v in batch.items()}])
    assert tasks.RECIPES[name].loss == "mse"
    config = tasks.train_config(name, 1)
    optimizer, _ = make_optimizer(config, config.total_steps)   # the optimizer fit uses
    opt_state = optimizer.init(params)
    grad_fn = jax.jit(jax.value_and_grad(lambda p: task.loss(p, {}, batch, None)[0]))
    start = params
    for k in range(3):
      loss, grads = grad_fn(params)
      np.testing.assert_allclose(float(loss), pack["losses"][k], rtol=1e-10)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      expected = deep.convert_state_dict(_state(pack, f"delta{k + 1}/"))["params"]
      delta = jax.tree_util.tree_map(lambda a, b: a - b, params, start)
      atol = 1e-5 * max(float(np.abs(x).max()) for x in jax.tree_util.tree_leaves(expected))
      for d, e in zip(jax.tree_util.tree_leaves(delta), jax.tree_util.tree_leaves(expected),
                      strict=True):
        np.testing.assert_allclose(d, e, rtol=1e-5, atol=atol)
