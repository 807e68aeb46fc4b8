"""grain pipeline: per-process sharding, determinism by step, transforms."""

import numpy as np
import pytest

from jspectral.data import pipeline


def examples(n=10):
  return [{"i": np.array(i), "image": np.arange(16.0).reshape(4, 4, 1) + i} for i in range(n)]


def test_processes_split_each_global_batch_in_order():
  single = pipeline.train_batches(examples(), batch_size=4, seed=3, process_index=0,
                                  process_count=1)
  shards = [pipeline.train_batches(examples(), batch_size=4, seed=3, process_index=p,
                                   process_count=2) for p in range(2)]
  for step in range(7):  # crosses epoch boundaries
    joined = np.concatenate([shard[step]["i"] for shard in shards])
    np.testing.assert_array_equal(joined, single[step]["i"])


def test_every_epoch_is_a_permutation_and_epochs_differ():
  batches = pipeline.train_batches(examples(), batch_size=5, seed=0, process_index=0,
                                   process_count=1)
  epoch0 = np.concatenate([batches[0]["i"], batches[1]["i"]])
  epoch1 = np.concatenate([batches[2]["i"], batches[3]["i"]])
  assert sorted(epoch0) == list(range(10)) and sorted(epoch1) == list(range(10))
  assert (epoch0 != epoch1).any()


def test_iterator_state_resumes_the_same_stream():
  batches = pipeline.train_batches(examples(), batch_size=2, seed=1, process_index=0,
                                   process_count=1)
  it = iter(batches.to_iter_dataset())
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = next(it)["i"]
  fresh = iter(batches.to_iter_dataset())
  fresh.set_state(state)
  np.testing.assert_array_equal(next(fresh)["i"], expected)


def test_augment_draws_fresh_randomness_each_epoch():
  seen = pipeline.train_batches(
      examples(2), batch_size=2, seed=0, process_index=0, process_count=1,
      augment=lambda ex, rng: {**ex, "r": np.array(rng.uniform())})
  assert len({float(seen[s]["r"].sum()) for s in range(4)}) == 4


def test_crop_and_dihedral_transforms():
  rng = np.random.default_rng(0)
  ex = {"image": np.arange(36.0).reshape(6, 6, 1), "label": np.array(1)}
  crop = pipeline.random_crop(ex, rng, 4)
  assert crop["image"].shape == (4, 4, 1) and crop["label"] == 1
  flipped = pipeline.random_flip_rotate(ex, rng)
  assert sorted(flipped["image"].ravel()) == sorted(ex["image"].ravel())
  with pytest.raises(ValueError, match="size"):
    pipeline.random_crop(ex, rng, 7)


def test_bad_arguments():
  with pytest.raises(ValueError, match="batch_size"):
    pipeline.train_batches(examples(), batch_size=3, seed=0, process_index=0, process_count=2)
  with pytest.raises(ValueError, match="empty"):
    pipeline.train_batches([], batch_size=2, seed=0, process_index=0, process_count=1)
