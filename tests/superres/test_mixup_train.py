"""Spectral Mixup multi-task training: the official first iteration step for step (parity case
``mixup_mtl_train_steps``), PyTorch's default initialisation, and the on-the-fly patch sources.

``tests/superres/parity/mixup_mtl_train_steps.npz`` was made by running the official
kli8996/HSISR training loop (docs/parity.md, section "Spectral-Mixup training steps"): a float64
``DeepShare(n_colors=6, n_subs=4, n_ovls=1, n_feats=16, n_scale=4)``, batch 2, the first
iteration's 8 Adam steps (labeled, Spectral Mixup, RGB x3, SSL x3) under PyTorch 1.x ``zero_grad``
semantics; the mixup matrix was fed the uniform draw jspectral makes from its step key.
"""

from __future__ import annotations

import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import sr_mixup_mtl
from jspectral import train
from jspectral.data import mixup
from jspectral.superres import mixup_data, mixup_mtl, tasks
from jspectral.superres.layers import params_from_torch

PACK = pathlib.Path(__file__).parent / "parity" / "mixup_mtl_train_steps.npz"
HSI_HEAD = ("trunk", "skip_conv", "final")


def _state(pack, prefix):
  return {k.removeprefix(prefix): v for k, v in pack.items() if k.startswith(prefix)}


def _flat(tree):
  leaves = jax.tree_util.tree_leaves_with_path(tree)
  return {jax.tree_util.keystr(path): np.asarray(value) for path, value in leaves}


@pytest.fixture(scope="module")
def official():
  with np.load(PACK) as pack:
    return {k: pack[k] for k in pack.files}


def test_official_first_iteration_eight_adam_steps(official):
  c, subs, ovls, feats, scale, b, t_mix, t_rgb, t_u, seed = (int(v) for v in official["config"])
  with jax.enable_x64(True):
    model = mixup_mtl.MultiTaskSR(bands=c, scale=scale, n_subs=subs, n_ovls=ovls, features=feats)
    plan = tasks.UpdatePlan(epochs=10, iterations_per_epoch=1, theta_mix=t_mix, theta_rgb=t_rgb,
                            theta_unlabel=t_u)
    task = tasks.MultiTaskSRTask(model, [None], [None], [None], [], official["projection"], plan,
                                 dispatch="select")
    config = sr_mixup_mtl.get_config("paper").train      # the paper preset's optimizer
    config.schedule.boundaries = plan.lr_boundaries()
    tx, _ = train.make_optimizer(config, plan.total_updates)
    params = params_from_torch(_state(official, "init/"), np.float64)
    # threefry, as fit's PRNGKey outside the test suite (tests/conftest.py defaults to rbg)
    key = jax.random.key(seed, impl="threefry2x32")
    # the mixup update's key draws the matrix the official run was fed
    np.testing.assert_allclose(
        mixup.mixing_matrix(jax.random.fold_in(key, 1), c, jnp.float64),
        official["mixup_u"] / official["mixup_u"].sum(axis=0).mean(), rtol=1e-12)
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), {}, key)
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
    chunk = lambda name, i: official[name][i * b:(i + 1) * b]
    rgb_chunks = [0, 0] + list(range(t_rgb)) + [0] * t_u
    u_chunks = [0] * (2 + t_rgb) + list(range(t_u))
    losses, snapshots = [], [params]
    for k in range(len(official["losses"])):
      batch = {"lr": official["x"], "lms": official["lms"], "hr": official["gt"],
               "rgb_lr": chunk("rgb_x", rgb_chunks[k]), "rgb_lms": chunk("rgb_lms", rgb_chunks[k]),
               "rgb_hr": chunk("rgb_gt", rgb_chunks[k]), "u_lr": chunk("u_x", u_chunks[k]),
               "u_lms": chunk("u_lms", u_chunks[k])}
      ts, metrics, ok = step(ts, batch)
      assert bool(ok)
      losses.append(float(metrics["loss"]))
      snapshots.append(jax.device_get(ts.params))
  np.testing.assert_allclose(losses, official["losses"], rtol=1e-10)
  for k, start in ((1, 0), (2, 1), (3, 2), (8, 0)):
    reference = params_from_torch(_state(official, f"delta{k}/"), np.float64)
    ours = jax.tree.map(np.subtract, snapshots[k], snapshots[start])
    for path, delta in _flat(reference).items():
      np.testing.assert_allclose(_flat(ours)[path], delta, rtol=1e-5, atol=1e-11,
                                 err_msg=f"step {k} {path}")


def test_parity_case_exercises_torch1_adam_semantics(official):
  """The RGB head is untouched until the first RGB step; after its first gradient the HSI head
  keeps moving on RGB steps (PyTorch 1.x zero_grad): ``optimizer.skip_until_used``."""
  assert not np.any(official["delta1/final_RGB.weight"])
  assert not np.any(official["delta2/final_RGB.weight"])
  assert np.any(official["delta3/final_RGB.weight"]) and np.any(official["delta3/final.weight"])
  assert sr_mixup_mtl.get_config("paper").train.optimizer.skip_until_used


class _TwoConvs(nn.Module):
  """A stand-in with MultiTaskSR's call signature (Flax init of the real network compiles for
  tens of seconds)."""

  lms_skip: bool = False

  @nn.compact
  def __call__(self, x, lms, modality="spectral"):
    return nn.Conv(4, (3, 3), name="final")(nn.Conv(8, (3, 3), name="head")(lms))


def _task(model, scheme, bands=6):
  plan = tasks.UpdatePlan(1, 1, use_rgb=False, use_ssl=False)
  return tasks.MultiTaskSRTask(model, [None], [], [], [], np.eye(bands, 4), plan,
                               init_scheme=scheme)


def test_torch_init_bounds_and_flax_option():
  model = mixup_mtl.MultiTaskSR(bands=6, scale=4, n_subs=4, n_ovls=1, features=16, lms_skip=True)
  batch = {"lr": jnp.zeros((1, 2, 2, 6)), "lms": jnp.zeros((1, 8, 8, 6))}
  params, _ = jax.jit(_task(model, "torch").init)(jax.random.key(0), batch)
  flat = _flat(params)
  for path, value in flat.items():
    if "final" in path:                                        # lms_skip: zero heads stay zero
      assert not np.any(value), path
      continue
    kernel = flat[path.replace("'bias'", "'kernel'")]
    bound = 1 / np.sqrt(np.prod(kernel.shape[:-1]))            # torch fan_in = k*k*in
    assert np.abs(value).max() <= bound, path
    assert value.size < 64 or np.abs(value).max() > 0.9 * bound, path
  head = flat["['branch1']['head']['kernel']"]
  assert abs(head.std() * np.sqrt(3 * 9 * 4) - 1) < 0.15       # U(-b, b): std = b / sqrt(3)
  # init_scheme="flax" is Flax's own initialisation (zero biases), "torch" redraws the biases too
  stand_in, key = _TwoConvs(), jax.random.key(1)
  flax_params, _ = _task(stand_in, "flax").init(key, batch)
  expected = stand_in.init(key, batch["lr"], batch["lms"])["params"]
  jax.tree.map(np.testing.assert_array_equal, flax_params, expected)
  assert not np.any(flax_params["head"]["bias"])
  torch_params, _ = _task(stand_in, "torch").init(key, batch)
  assert 0 < np.abs(torch_params["head"]["bias"]).max() <= 1 / np.sqrt(9 * 6)
  with pytest.raises(ValueError, match="init_scheme"):
    _task(model, "kaiming")


def test_patch_sources_crop_degrade_and_augment():
  rng = np.random.default_rng(0)
  image = rng.uniform(size=(20, 24, 3)) * 255
  sampler = mixup_data.PatchSampler(8, 4, divisor=255.0, channels=mixup_mtl.RGB_TO_8CH)
  pair = sampler(image, np.random.default_rng(1))
  assert pair["hr"].shape == (8, 8, 8) and pair["lr"].shape == (2, 2, 8)
  # the crop is a window of the image expanded to 8 channels; lr/lms are its MATLAB degradation
  top, left = (int(v) for v in np.random.default_rng(1).integers(0, [13, 17]))
  expected = image[top:top + 8, left:left + 8] / 255 @ mixup_mtl.RGB_TO_8CH
  np.testing.assert_allclose(pair["hr"], expected, rtol=1e-6)
  np.testing.assert_allclose(pair["lms"], mixup_data.degrade(expected, 4)["lms"], rtol=1e-6)
  with pytest.raises(ValueError, match="patch"):
    mixup_data.PatchSampler(6, 4)
  assert mixup_data.grid_count(512, 512, 64, 32) == 15 * 15
  images = mixup_data.Images([{"cube": np.ones((2, 2, 1))}, {"cube": np.zeros((3, 3, 1))}], "cube")
  assert [im.shape for im in images] == [(2, 2, 1), (3, 3, 1)]     # iteration stops at the end
  assert images[1] is images[1]                                   # decoded once, kept
  cube = rng.uniform(size=(16, 16, 6)).astype(np.float32)
  hsi = mixup_data.PatchSampler(8, 4)
  model = mixup_mtl.MultiTaskSR(bands=6, scale=4, n_subs=4, n_ovls=1, features=16)
  task = tasks.MultiTaskSRTask(model, [cube], [image], [cube, cube], [], np.eye(6, 4),
                               tasks.UpdatePlan(1, 1),
                               samplers={"labeled": hsi, "unlabeled": hsi, "rgb": sampler})
  source = task.train_source()
  assert len(source) == 2 and set(source[1]) == {"image", "rgb_image", "u_image"}
  example = task.augment(source[1], np.random.default_rng(2))
  assert {k: v.shape[-1] for k, v in example.items()} == {
      "lr": 6, "lms": 6, "hr": 6, "rgb_lr": 8, "rgb_lms": 8, "rgb_hr": 8, "u_lr": 6, "u_lms": 6}
  with pytest.raises(ValueError, match="samplers"):
    tasks.MultiTaskSRTask(model, [cube], [], [], [], np.eye(6, 4), tasks.UpdatePlan(1, 1),
                          samplers={"test": hsi})
