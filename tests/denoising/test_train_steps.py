"""Training-step parity: the official training loop's first three Adam steps (float64).

``denoising_train_steps.npz`` (../shared/reference/README.md): HSDT(1, 4, 5, [1, 3]) and MAN v2
(1, 4, 5, [1, 3]) in ``.double().train()``, ``Adam(lr=1e-3)``, ``MSELoss`` on one fixed batch,
three zero_grad / backward / step rounds. jspectral's engine step (``train.train_step``) with
the denoising task's loss must land on the same parameters and losses to 1e-8 relative.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral import models, train
from jspectral.denoising.tasks import takes_train_flag
from tests.conftest import load_pack


def _official_steps(pack, case: str, name: str, bands_last):
  """``(module, variables before step 1, [variables after step k], losses, batch)``."""
  module, init = models.from_torch(name, pack.state(case, prefix="init/"))
  after = [models.from_torch(name, pack.state(case, prefix=f"step{k}/"))[1] for k in (1, 2, 3)]
  batch = {"noisy": bands_last(pack[f"{case}/input"]), "clean": bands_last(pack[f"{case}/target"])}
  return module, init, after, np.asarray(pack[f"{case}/losses"]), batch


def _run(module, init, batches):
  """Three engine steps of the official recipe: MSE(model(noisy), clean), Adam(1e-3) with
  PyTorch's per-parameter state (``optimizer.skip_unused``: the GSSA branch not drawn in a step
  has no gradient in torch and is not updated)."""
  config = train.default_config()
  config.optimizer.update(name="adam", learning_rate=1e-3, skip_unused=True)
  tx, _ = train.make_optimizer(config, total_steps=3)
  params = init["params"]
  state = {k: v for k, v in init.items() if k != "params"}

  kwargs = {"train": True} if takes_train_flag(module) else {}

  def loss_fn(params, state, batch, rng):
    extra = {"gssa_branch": batch["branches"]} if "branches" in batch else {}
    out, updates = module.apply({"params": params, **state, **extra}, batch["noisy"],
                                mutable=list(state), **kwargs)
    return jnp.mean((out - batch["clean"]) ** 2), {"state": dict(updates)}

  ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state,
                        jax.random.key(0))
  step = jax.jit(functools.partial(train.train_step, loss_fn=loss_fn, tx=tx))
  states, losses = [], []
  for batch in batches:
    ts, metrics, ok = step(ts, batch)
    assert bool(ok)
    losses.append(float(metrics["loss"]))
    states.append({"params": ts.params, **ts.model_state})
  return states, losses


def _assert_close(ours, official, what):
  flat_ours = dict(jax.tree_util.tree_leaves_with_path(ours))
  for path, value in jax.tree_util.tree_leaves_with_path(official):
    np.testing.assert_allclose(np.asarray(flat_ours[path]), np.asarray(value), rtol=1e-8,
                               atol=1e-12, err_msg=f"{what} {jax.tree_util.keystr(path)}")


def test_manv2_c4_three_adam_steps_match_the_official_training_loop(bands_last):
  with jax.enable_x64(True):
    pack = load_pack("denoising_train_steps")
    module, init, after, official_losses, batch = _official_steps(pack, "manv2_c4", "man",
                                                                  bands_last)
    init = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), init)
    batch = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), batch)
    states, losses = _run(module, init, [batch] * 3)
    np.testing.assert_allclose(losses, official_losses, rtol=1e-8)
    for k, (ours, official) in enumerate(zip(states, after, strict=True), 1):
      _assert_close(ours, official, f"step {k}")


def _gssa_paths(module, variables, x) -> list[tuple[str, ...]]:
  """Module paths of HSDT's GSSA layers in call order (the order of the official draws)."""
  from jspectral.denoising import hsdt

  paths = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, hsdt.GSSA) and context.method_name == "__call__":
      paths.append(context.module.path)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    module.apply(variables, x)
  return paths


def _branch_tree(paths, draws) -> dict:
  """``gssa_branch`` variables: a draw > 0.5 takes the self branch (official ``random.random``)."""
  tree = {}
  for path, draw in zip(paths, draws, strict=True):
    node = tree
    for name in path:
      node = node.setdefault(name, {})
    node["self_branch"] = jnp.asarray(draw > 0.5)
  return tree


def test_hsdt_c4_three_adam_steps_follow_the_official_gssa_draws_and_batchnorm(bands_last):
  with jax.enable_x64(True):
    pack = load_pack("denoising_train_steps")
    module, init, after, official_losses, batch = _official_steps(pack, "hsdt_c4", "hsdt",
                                                                  bands_last)
    init = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), init)
    batch = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), batch)
    paths = _gssa_paths(module, init, batch["noisy"])
    batches = [{**batch, "branches": _branch_tree(paths, pack[f"hsdt_c4/py_random_draws_step{k}"])}
               for k in range(3)]
    states, losses = _run(module, init, batches)
    np.testing.assert_allclose(losses, official_losses, rtol=1e-8)
    for k, (ours, official) in enumerate(zip(states, after, strict=True), 1):
      _assert_close(ours, official, f"step {k}")   # parameters and BatchNorm running statistics
