"""Patch samplers: dihedral group, aligned crops, grids, stratified splits, centred patches."""

from __future__ import annotations

import math
import pathlib

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


@pytest.fixture(scope="module")
def sklearn_reference():
  path = pathlib.Path(__file__).parents[1] / "classification" / "parity" / "sklearn_split.npz"
  return dict(np.load(path))


@pytest.mark.parametrize("case, test_size, seed", [("p10_345", 0.9, 345), ("p2_345", 0.98, 345),
                                                   ("p10_0", 0.9, 0)])
def test_sklearn_stratified_split_reproduces_train_test_split_indices(sklearn_reference, case,
                                                                       test_size, seed):
  # indices written by scikit-learn 1.9's train_test_split(stratify=y, random_state=seed)
  labels = sklearn_reference["labels"]
  classes = labels[labels > 0]
  train, test = patches.sklearn_stratified_split(classes, test_size=test_size, random_state=seed)
  np.testing.assert_array_equal(train, sklearn_reference[f"{case}/train"])
  np.testing.assert_array_equal(test, sklearn_reference[f"{case}/test"])


def test_sklearn_allocation_differs_from_rounding_and_label_map_split(sklearn_reference):
  labels = sklearn_reference["labels"]
  train, test = patches.sklearn_label_map_split(labels, train_fraction=0.1, random_state=345)
  counts = np.bincount(labels[tuple(train.T)], minlength=8)
  rounded = np.bincount(labels[tuple(patches.stratified_split(
      labels, seed=345, train_fraction=0.1)[0].T)], minlength=8)
  assert counts.sum() == len(labels.nonzero()[0]) - math.ceil(0.9 * len(labels.nonzero()[0]))
  assert not np.array_equal(counts, rounded)      # round(0.1 n) per class is another rule
  assert len(np.unique(np.concatenate([train, test]), axis=0)) == len(labels.nonzero()[0])
  with pytest.raises(ValueError, match="out of the train split"):
    patches.sklearn_label_map_split(labels, train_fraction=0.02, random_state=345)
  with pytest.raises(ValueError, match="at least 2 members"):
    patches.sklearn_stratified_split(np.array([0, 0, 1]), test_size=0.5, random_state=0)


def test_approximate_mode_matches_scikit_learn_docstring_examples():
  mode = lambda counts, draws, seed: patches.approximate_mode(
      np.array(counts), draws, np.random.RandomState(seed)).tolist()
  assert mode([4, 2], 3, 0) == [2, 1]
  assert mode([5, 2], 4, 0) == [3, 1]
  assert mode([2, 2, 2, 1], 2, 0) == [0, 1, 1, 0]
  assert mode([2, 2, 2, 1], 2, 42) == [1, 1, 0, 0]
