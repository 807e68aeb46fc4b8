"""Patch samplers: dihedral group, aligned crops, grids, stratified splits, centred patches."""

from __future__ import annotations

import grain
import numpy as np
import pytest

from jspectral.data import patches


def test_dihedral_modes_are_the_eight_distinct_symmetries():
  x = np.arange(12).reshape(3, 4, 1)
  images = [patches.dihedral(x, m) for m in range(8)]
  assert len({(im.shape, im.tobytes()) for im in images}) == 8
  np.testing.assert_array_equal(images[0], x)
  np.testing.assert_array_equal(images[4], x[::-1])
  with pytest.raises(ValueError, match="mode"):
    patches.dihedral(x, 8)


def test_augment_dihedral_same_mode_for_all_keys_and_band_reversal():
  x = np.random.default_rng(0).normal(size=(5, 5, 4))
  rng = np.random.default_rng(1)
  seen_reversed = False
  for _ in range(20):
    out = patches.augment_dihedral({"a": x, "b": 2 * x}, rng, keys=("a", "b"), band_reverse=True)
    np.testing.assert_allclose(out["b"], 2 * out["a"])
    match = [m for m in range(8) for flip in (False, True)
             if np.array_equal(out["a"], patches.dihedral(x, m)[..., ::-1] if flip
                               else patches.dihedral(x, m))]
    assert match
    seen_reversed |= not any(np.array_equal(out["a"], patches.dihedral(x, m)) for m in range(8))
  assert seen_reversed


def test_random_patch_aligns_lr_and_hr():
  hr = np.random.default_rng(0).normal(size=(16, 16, 3))
  lr = hr[::4, ::4]
  out = patches.random_patch({"ms": lr, "gt": hr}, np.random.default_rng(2), 2, keys=("ms", "gt"),
                             scales=(1, 4))
  assert out["ms"].shape == (2, 2, 3) and out["gt"].shape == (8, 8, 3)
  np.testing.assert_array_equal(out["gt"][::4, ::4], out["ms"])
  with pytest.raises(ValueError, match="size"):
    patches.random_patch({"cube": lr}, np.random.default_rng(0), 5)


def test_grid_patches_and_crop_to_multiple():
  cube = np.arange(10 * 12).reshape(10, 12, 1)
  grid = patches.grid_patches(cube, 4, 2)
  assert grid.shape == (4 * 5, 4, 4, 1)
  np.testing.assert_array_equal(grid[6], cube[2:6, 2:6])      # row 1, column 1 of the grid
  assert patches.grid_patches(cube, 5, 5).shape == (2 * 2, 5, 5, 1)
  np.testing.assert_array_equal(patches.crop_to_multiple(cube, 4), cube[1:9, :])


@pytest.fixture(scope="module")
def label_map():
  rng = np.random.default_rng(3)
  labels = np.zeros((30, 30), np.int32)
  labels[:10] = 1
  labels[10:25, :20] = 2
  labels[25:, :3] = 3                       # 15 pixels
  labels[rng.uniform(size=labels.shape) < 0.2] = 0
  return labels


def test_stratified_split_by_fraction_is_deterministic_and_disjoint(label_map):
  train, test = patches.stratified_split(label_map, seed=345, train_fraction=0.1)
  again, _ = patches.stratified_split(label_map, seed=345, train_fraction=0.1)
  np.testing.assert_array_equal(train, again)
  other, _ = patches.stratified_split(label_map, seed=0, train_fraction=0.1)
  assert not np.array_equal(train, other)
  both = {tuple(p) for p in train} | {tuple(p) for p in test}
  assert len(both) == len(train) + len(test) == (label_map > 0).sum()
  for c in (1, 2, 3):
    n = (label_map == c).sum()
    assert (label_map[train[:, 0], train[:, 1]] == c).sum() == max(1, round(0.1 * n))


def test_stratified_split_by_count(label_map):
  train, _ = patches.stratified_split(label_map, seed=0, train_per_class=20)
  counts = np.bincount(label_map[train[:, 0], train[:, 1]], minlength=4)[1:]
  n3 = (label_map == 3).sum()
  assert counts[0] == counts[1] == 20 and counts[2] == n3 // 2        # small class: half
  with pytest.raises(ValueError, match="exactly one"):
    patches.stratified_split(label_map, seed=0)


def test_patch_source_centres_and_reflects(label_map):
  cube = np.random.default_rng(4).normal(size=(30, 30, 5)).astype(np.float32)
  positions = np.array([[0, 0], [15, 7], [29, 29]])
  labels = label_map.copy()
  labels[0, 0], labels[29, 29] = 1, 3
  source = patches.PatchSource(cube, labels, positions, size=5)
  record = source[1]
  np.testing.assert_array_equal(record["patch"], cube[13:18, 5:10])
  assert record["label"] == labels[15, 7] - 1
  corner = source[0]["patch"]
  np.testing.assert_array_equal(corner[2, 2], cube[0, 0])
  np.testing.assert_array_equal(corner[0, 0], cube[2, 2])              # reflect: no edge repeat
  zero = patches.PatchSource(cube, labels, positions, 5, pad_mode="constant")[2]["patch"]
  assert np.all(zero[3:, :] == 0) and np.all(zero[:, 3:] == 0)
  dataset = grain.MapDataset.source(source)
  assert len(dataset) == 3 and dataset[2]["label"] == 2
  stacked, y = patches.classification_patches(cube, labels, positions, 5)
  assert stacked.shape == (3, 5, 5, 5) and list(y) == [0, labels[15, 7] - 1, 2]
  with pytest.raises(ValueError, match="odd"):
    patches.PatchSource(cube, labels, positions, size=4)
