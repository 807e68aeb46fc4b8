"""SSPSR's data protocol as a random-access index: MATLAB's patch grid, the dihedral x8 expansion,
on-the-fly MATLAB bicubic degradation, the hold-out, the Chikusei layout; and ESSAformer's PyTorch
default initialisation."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from flax import traverse_util

from jspectral.data import pipeline
from jspectral.data.builders import chikusei
from jspectral.data.degradations import imresize
from jspectral.data.patches import dihedral
from jspectral.superres import essaformer, sspsr_data, tasks

RNG = np.random.default_rng(0)


def test_grid_is_matlabs_one_to_h_minus_p_plus_one():
  # generate_train_data.m on Chikusei's 1792 x 2048 training region: 64 / 32 -> 55 x 63 patches
  assert len(sspsr_data.grid_positions(1792, 2048, 64, 32)) == 55 * 63
  grid = sspsr_data.grid_positions(10, 7, 4, 3)
  np.testing.assert_array_equal(grid, [[0, 0], [0, 3], [3, 0], [3, 3], [6, 0], [6, 3]])
  with pytest.raises(ValueError, match="patch"):
    sspsr_data.grid_positions(3, 9, 4, 1)


def test_patch_pairs_serve_eight_transforms_of_each_matlab_degraded_patch():
  images = [RNG.uniform(size=(12, 16, 3)).astype(np.float32) for _ in range(2)]
  positions = sspsr_data.image_positions(images, 8, 4)
  assert len(positions) == 2 * 2 * 3
  pairs = sspsr_data.PatchPairs(images, positions, scale=2, patch=8, dihedral=True, bicubic=True)
  assert len(pairs) == 8 * len(positions)
  image, top, left = positions[5]
  hr = images[image][top:top + 8, left:left + 8]
  base = pairs[8 * 5]
  np.testing.assert_array_equal(base["hr"], hr)
  np.testing.assert_allclose(base["lr"], np.asarray(imresize(hr, 0.5)), atol=1e-6)
  np.testing.assert_allclose(base["lms"], np.asarray(imresize(base["lr"], 2.0)), atol=1e-6)
  for mode in range(8):
    item = pairs[8 * 5 + mode]
    for key in ("lr", "lms", "hr"):
      np.testing.assert_array_equal(item[key], dihedral(base[key], mode))
  modes = {pairs[8 * 5 + m]["hr"].tobytes() for m in range(8)}
  assert len(modes) == 8
  with pytest.raises(IndexError):
    pairs[len(pairs)]
  plain = sspsr_data.PatchPairs(images, positions, scale=2, patch=8)
  assert len(plain) == len(positions) and set(plain[0]) == {"lr", "hr"}


def test_grain_batches_of_the_index():
  images = [RNG.uniform(size=(16, 16, 3)).astype(np.float32)]
  pairs = sspsr_data.PatchPairs(images, sspsr_data.image_positions(images, 8, 4), 4, 8, True)
  batches = pipeline.train_batches(pairs, batch_size=4, seed=0, process_index=0, process_count=1)
  first, again = batches[0], batches[0]
  assert first["lr"].shape == (4, 2, 2, 3) and first["hr"].shape == (4, 8, 8, 3)
  np.testing.assert_array_equal(first["hr"], again["hr"])


def test_hold_out_is_a_seeded_disjoint_partition():
  positions = sspsr_data.image_positions([np.zeros((20, 20, 1))], 4, 2)
  train, val = sspsr_data.hold_out(positions, 0.1, seed=3000)
  assert len(val) == round(0.1 * len(positions)) and len(train) + len(val) == len(positions)
  assert not {tuple(p) for p in train} & {tuple(p) for p in val}
  np.testing.assert_array_equal(val, sspsr_data.hold_out(positions, 0.1, seed=3000)[1])
  with pytest.raises(ValueError, match="fraction"):
    sspsr_data.hold_out(positions, 1.0, seed=0)


def test_chikusei_tiles_reassemble_to_the_training_region_and_top_row_tests():
  scene = RNG.uniform(1, 2, size=(14, 13, 2))
  config = chikusei.ChikuseiConfig(name="t", rows=(2, 13), cols=(2, 9), test_size=4,
                                   train_tile=4)
  test, train = chikusei.split_scene(scene, config)
  crop = (scene[1:13, 1:9] / scene[1:13, 1:9].max()).astype(np.float32)
  np.testing.assert_array_equal(sspsr_data.mosaic(train, columns=2), crop[4:])
  tiles, region = sspsr_data.top_row_tiles(crop, 4)
  np.testing.assert_array_equal(np.stack(tiles), np.stack(test))
  np.testing.assert_array_equal(region, crop[4:])
  with pytest.raises(ValueError, match="tiles"):
    sspsr_data.mosaic(train[:3], columns=2)


def _kernels(params):
  flat = traverse_util.flatten_dict(params)
  return {p[:-1]: (v, flat.get(p[:-1] + ("bias",))) for p, v in flat.items() if p[-1] == "kernel"}


def test_essaformer_init_follows_pytorch_default_bounds():
  model = essaformer.ESSAformer(bands=4, dim=8, scale=2, hr_passes=1)
  batch = {"lr": np.zeros((1, 4, 4, 4), np.float32)}
  task = tasks.SingleImageSRTask(model, [], [], 2)
  params, _ = task.init(jax.random.key(0), batch)
  for path, (kernel, bias) in _kernels(params).items():
    bound = 1 / math.sqrt(math.prod(kernel.shape[:-1]))
    kernel = np.asarray(kernel)
    assert np.abs(kernel).max() <= bound, path
    assert np.abs(kernel).max() > 0.7 * bound and abs(kernel.mean()) < 0.25 * bound, path
    assert np.abs(np.asarray(bias)).max() <= bound and np.abs(np.asarray(bias)).max() > 0, path
  np.testing.assert_array_equal(params["blockup"]["convup"]["norm"]["scale"], 1.0)
  flax_params, _ = tasks.SingleImageSRTask(model, [], [], 2, init_scheme="flax").init(
      jax.random.key(0), batch)
  outside = [p for p, (k, _) in _kernels(flax_params).items()
             if np.abs(np.asarray(k)).max() > 1 / math.sqrt(math.prod(k.shape[:-1]))]
  assert outside   # LeCun normal exceeds PyTorch's uniform bound
  skip = tasks.SingleImageSRTask(model.clone(upsample_skip=True), [], [], 2)
  assert not np.any(np.asarray(skip.init(jax.random.key(0), batch)[0]["conv_last"]["kernel"]))
  with pytest.raises(ValueError, match="init_scheme"):
    tasks.SingleImageSRTask(model, [], [], 2, init_scheme="xavier")
