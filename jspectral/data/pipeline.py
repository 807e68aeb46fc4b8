"""grain input pipelines: shuffling, per-process sharding, batching, and random patch transforms.

Pipelines are random-access ``grain.MapDataset`` chains, so the batch of step ``s`` is a pure
function of ``(seed, s)``: a resumed run reads exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable

import grain
import jax
import numpy as np

Example = dict[str, np.ndarray]


def train_batches(source, *, batch_size: int, seed: int,
                  augment: Callable[[Example, np.random.Generator], Example] | None = None,
                  process_index: int | None = None, process_count: int | None = None):
  """Endless batches of this process's share of a shuffled, repeated dataset.

  Args:
    source: a ``grain.MapDataset`` or any random-access sequence of examples (dicts of arrays).
    batch_size: the global batch size; each process gets ``batch_size // process_count`` rows.
    seed: shuffling and augmentation seed.
    augment: optional ``(example, np.random.Generator) -> example``, applied after repetition, so
      every epoch draws fresh randomness.
    process_index: defaults to ``jax.process_index()``.
    process_count: defaults to ``jax.process_count()``.

  Returns:
    A ``grain.MapDataset`` whose item ``s`` is this process's part of global batch ``s`` (arrays
    ``(batch_size // process_count, ...)``): process ``p`` of ``P`` takes the ``p``-th of the
    ``P`` consecutive local batches that make up global batch ``s``, so the global batch (process
    0's rows first) is the same examples in the same order for any process count.
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if batch_size % process_count:
    raise ValueError(f"batch_size: {batch_size} is not divisible by the {process_count} processes")
  dataset = source if isinstance(source, grain.MapDataset) else grain.MapDataset.source(source)
  if len(dataset) == 0:
    raise ValueError("source: the training dataset is empty")
  dataset = dataset.shuffle(seed=seed).repeat()
  if augment is not None:
    dataset = dataset.random_map(augment, seed=seed + 1)
  local_batches = dataset.batch(batch_size // process_count, drop_remainder=True)
  return local_batches[process_index::process_count]


def iterate(batches: grain.MapDataset, *, prefetch: int = 4, threads: int = 4):
  """A checkpointable iterator over ``batches`` that reads ``prefetch`` batches ahead.

  grain's default read-ahead (500 elements on 16 threads) counts elements of the dataset it is
  given, which here are whole batches: 500 batches of images held in memory (gigabytes; an
  ImageNet-size batch of 256 x 256 images alone is 39 MB) and most of a short run's data work
  done before its first step.

  Args:
    batches: the dataset of :func:`train_batches`.
    prefetch: batches read ahead.
    threads: reader threads.

  Returns:
    ``iter(batches.to_iter_dataset(...))``; ``get_state`` / ``set_state`` resume it exactly.
  """
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch)
  return iter(batches.to_iter_dataset(options))


def random_crop(example: Example, rng: np.random.Generator, size: int,
                keys: tuple[str, ...] = ("image",)) -> Example:
  """Crops the same random ``size x size`` window from every ``keys`` entry.

  Args:
    example: dict of arrays; ``keys`` entries are ``(H, W, ...)``.
    rng: NumPy generator.
    size: crop side.
    keys: the entries to crop (others pass through).

  Returns:
    A new dict with ``(size, size, ...)`` entries.
  """
  height, width = example[keys[0]].shape[:2]
  if size > min(height, width):
    raise ValueError(f"size: crop {size} is larger than the image ({height}x{width})")
  top = rng.integers(0, height - size + 1)
  left = rng.integers(0, width - size + 1)
  return {k: v[top:top + size, left:left + size] if k in keys else v for k, v in example.items()}


def random_flip_rotate(example: Example, rng: np.random.Generator,
                       keys: tuple[str, ...] = ("image",)) -> Example:
  """Applies one of the 8 dihedral transforms (rot90 k times, optional flip) to ``keys``.

  Args:
    example: dict of arrays; ``keys`` entries are ``(H, W, ...)``.
    rng: NumPy generator.
    keys: the entries to transform (others pass through).

  Returns:
    A new dict with contiguous transformed entries.
  """
  k, flip = rng.integers(0, 4), rng.integers(0, 2)

  def transform(v):
    v = np.rot90(v, k, axes=(0, 1))
    return np.ascontiguousarray(v[:, ::-1] if flip else v)

  return {key: transform(v) if key in keys else v for key, v in example.items()}
