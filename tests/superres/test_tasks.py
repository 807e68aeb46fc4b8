"""SR training tasks: the official per-task update order, the LR schedule in updates, patch pairs,
the multi-task loss dispatch, and one short ``fit`` whose loss falls."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from experiments.configs import sr_mixup_mtl
from jspectral import models, train
from jspectral.data import mixup
from jspectral.superres import essaformer, mixup_mtl, tasks
from jspectral.superres.losses import hybrid_loss
from jspectral.superres.tasks import antialiased_bicubic as resize
from jspectral.train import optim
from tests.conftest import load_pack


def test_update_plan_official_order_and_ssl_cutoff():
  plan = tasks.UpdatePlan(epochs=10, iterations_per_epoch=3)
  names = lambda counts: [tasks.KINDS[int(plan.kind(jnp.asarray(c)))] for c in counts]
  assert names(range(8)) == ["labeled", "mixup", "rgb", "rgb", "rgb", "ssl", "ssl", "ssl"]
  assert names(range(8, 16)) == names(range(8))
  assert plan.ssl_epochs == 6                      # 0-based epochs 0..5 of 10
  switch = plan.updates_before_epoch(6)
  assert switch == 6 * 3 * 8
  assert names(range(switch - 3, switch + 5)) == ["ssl"] * 3 + ["labeled", "mixup"] + ["rgb"] * 3
  assert plan.total_updates == 6 * 3 * 8 + 4 * 3 * 5
  off = tasks.UpdatePlan(epochs=10, iterations_per_epoch=3, use_mixup=False, use_ssl=False)
  assert [tasks.KINDS[k] for k in off.cycle(True)] == ["labeled", "rgb", "rgb", "rgb"]
  assert off.total_updates == 10 * 3 * 4


def test_lr_boundaries_reproduce_official_epoch_rates():
  plan = tasks.UpdatePlan(epochs=10, iterations_per_epoch=2)
  boundaries = plan.lr_boundaries()
  assert boundaries == [plan.updates_before_epoch(4)] + [plan.updates_before_epoch(9)] * 2
  # the paper preset's optimizer config with these boundaries: the engine's step schedule must
  # decay twice at the repeated boundary (last epoch at 2.7e-6, not 9e-6)
  config = sr_mixup_mtl.get_config("paper").train
  config.schedule.boundaries = boundaries
  schedule = optim.make_schedule(config, plan.total_updates)
  for epoch in range(1, 11):
    first, last = plan.updates_before_epoch(epoch - 1), plan.updates_before_epoch(epoch) - 1
    official = mixup_mtl.official_learning_rate(epoch, 10)
    np.testing.assert_allclose([schedule(first), schedule(last)], official, rtol=1e-6)
  np.testing.assert_allclose(schedule(plan.total_updates - 1), 2.7e-6, rtol=1e-6)


def test_patch_pairs_shapes_and_validation():
  hr = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
  pairs = tasks.patch_pairs(hr, 4, resize, patch=8, stride=8)
  assert len(pairs) == 2 * 3
  assert pairs[0]["lr"].shape == (2, 2, 3) and pairs[0]["lms"].shape == (8, 8, 3)
  np.testing.assert_array_equal(pairs[1]["hr"], hr[:8, 8:16])
  whole = tasks.patch_pairs(hr, 4, resize)
  assert len(whole) == 1 and whole[0]["lr"].shape == (5, 6, 3)
  with pytest.raises(ValueError, match="hr: size"):
    tasks.patch_pairs(hr, 3, resize)
  with pytest.raises(ValueError, match="hr: expected"):
    tasks.patch_pairs(hr[..., 0], 4, resize)


def _cube_pairs(seed, count, bands, size, scale, patch):
  """Smooth random cubes in [0, 1] drawn on the host (no JAX program to compile), as pairs."""
  rng = np.random.default_rng(seed)
  cubes = [ndimage.gaussian_filter(rng.random((size, size, bands)), (1.5, 1.5, 1.0))
           for _ in range(count)]
  return [p for c in cubes for p in tasks.patch_pairs(c, scale, resize, patch, patch)]


# threefry: with rbg (the suite's default, tests/conftest.py) key 2's mixup loss falls within
# 1e-4 of the labeled loss, and the dispatch test needs the two apart
MIXUP_KEY = jax.random.key(2, impl="threefry2x32")


@pytest.fixture(scope="module")
def multitask():
  """A tiny multi-task setup: task, one batch of every source, parameters, per-task losses.

  The parameters are the parity pack's converted ``model_x4`` weights (C=11, n_subs 4, x4, F=24):
  no random initialisation to compile (``jit(init)`` of this model costs ~20 s of CPU, mostly the
  RNG); ``task.init`` is checked against their tree with ``eval_shape``.
  """
  model, variables = models.from_torch("mixup_mtl", load_pack("hsi_sr_mixup_parity").state(
      "model_x4"))
  bands, n_subs = model.bands, model.n_subs
  matrix = np.abs(np.random.default_rng(1).normal(size=(bands, n_subs))).astype(np.float32)
  hsi = _cube_pairs(0, 1, bands, 8, model.scale, 8)
  rgb = [{k: v @ matrix for k, v in e.items()} for e in hsi]
  plan = tasks.UpdatePlan(epochs=2, iterations_per_epoch=1, theta_rgb=1, theta_unlabel=1)
  task = tasks.MultiTaskSRTask(model, hsi, rgb, hsi, hsi, matrix, plan)
  batch = jax.tree.map(lambda v: jnp.asarray(v)[None], task.train_source()[0])
  params = variables["params"]
  shapes, state = jax.eval_shape(task.init, jax.random.key(1), batch)
  assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(jnp.shape, params)
  assert state == {}

  @jax.jit  # one compile, not op-by-op
  def direct_losses(v, batch):
    # the mixup update: the labeled loss on the batch mixed with the key's matrix
    (lr, lms, hr), _ = mixup.spectral_mixup(MIXUP_KEY, batch["lr"], batch["lms"], batch["hr"])
    return {"labeled": hybrid_loss(model.apply(v, batch["lr"], batch["lms"]), batch["hr"]),
            "mixup": hybrid_loss(model.apply(v, lr, lms), hr),
            "rgb": hybrid_loss(model.apply(v, batch["rgb_lr"], batch["rgb_lms"], "rgb"),
                               batch["rgb_hr"]),
            "ssl": mixup_mtl.consistency_loss(model, v, batch["u_lr"], batch["u_lms"], matrix)}

  expected = direct_losses({"params": params}, batch)
  return task, batch, params, expected


@pytest.mark.parametrize("dispatch", ["switch", "select"])
def test_multitask_loss_dispatches_per_update_and_counts(multitask, dispatch):
  task, batch, params, expected = multitask
  task = dataclasses.replace(task, dispatch=dispatch)
  assert sorted(batch) == ["hr", "lms", "lr", "rgb_hr", "rgb_lms", "rgb_lr", "u_lms", "u_lr"]
  loss_fn = jax.jit(task.loss)
  for count, kind in ((0, "labeled"), (1, "mixup"), (2, "rgb"), (3, "ssl"), (4, "labeled")):
    loss, aux = loss_fn(params, {}, batch, MIXUP_KEY, step=jnp.int32(count))
    assert tasks.KINDS[int(aux["kind"])] == kind
    np.testing.assert_allclose(loss, expected[kind], rtol=1e-5)
  assert not np.isclose(expected["mixup"], expected["labeled"], rtol=1e-4)


def test_multitask_task_validation(multitask):
  task = multitask[0]
  with pytest.raises(ValueError, match="rgb"):
    dataclasses.replace(task, rgb=[])
  with pytest.raises(ValueError, match="unlabeled"):
    dataclasses.replace(task, unlabeled=[])
  with pytest.raises(ValueError, match="dispatch"):
    dataclasses.replace(task, dispatch="cond")


def test_short_fit_reduces_l1(tmp_path):
  examples = _cube_pairs(3, 2, 4, 16, 2, 8)
  model = essaformer.ESSAformer(bands=4, dim=8, scale=2, hr_passes=1, drop_rate=0.0)
  task = tasks.SingleImageSRTask(model, examples, examples[:1], 2)
  # host-drawn LeCun-normal weights on init's tree: the RNG-heavy init would add ~15 s of compile
  rng = np.random.default_rng(0)

  def draw(path, s):
    if s.ndim > 1:
      return rng.normal(0.0, np.prod(s.shape[:-1]) ** -0.5, s.shape).astype(s.dtype)
    return (np.ones if path[-1].key == "scale" else np.zeros)(s.shape, s.dtype)

  shapes, _ = jax.eval_shape(task.init, jax.random.key(0), {"lr": examples[0]["lr"][None]})
  task.init = lambda rng, batch: (jax.tree_util.tree_map_with_path(draw, shapes), {})
  config = train.default_config()
  config.update(dict(total_steps=40, batch_size=4, log_every=1, checkpoint_every=40,
                     progress=False))
  config.optimizer.learning_rate = 3e-3
  result = train.fit(task, config, tmp_path)
  losses = [r["loss"] for r in result.history if "loss" in r]
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  assert {"MPSNR", "bicubic_MPSNR", "SAM"} <= {k.removeprefix("eval/") for k in result.evals}
