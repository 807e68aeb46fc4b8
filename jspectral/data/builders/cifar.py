"""CIFAR-10 and CIFAR-100 from the python pickle archives (A. Krizhevsky, 2009).

Files, as distributed at https://www.cs.toronto.edu/~kriz/cifar.html and extracted unchanged into
the manual directory: ``cifar-10-batches-py/{data_batch_1..5, test_batch}`` and
``cifar-100-python/{train, test}``. Each pickle holds ``b"data"`` (N, 3072) uint8 in channel-major
order (1024 red, 1024 green, 1024 blue, rows of 32) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` / ``b"coarse_labels"`` (CIFAR-100). Examples: ``image`` (32, 32, 3) uint8,
``label`` (the fine label for CIFAR-100), ``coarse_label`` (CIFAR-100 only).
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import tfds as tfds_lib

CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"


def read_batch(path: str | pathlib.Path) -> dict:
  """One pickle of the python archives.

  Args:
    path: a ``data_batch_*`` / ``test_batch`` / ``train`` / ``test`` pickle.

  Returns:
    ``{"image": (N, 32, 32, 3) uint8, <label keys>: (N,) int64}`` (``labels``, or ``fine_labels``
    and ``coarse_labels``).
  """
  path = pathlib.Path(path)
  with path.open("rb") as f:
    raw = pickle.load(f, encoding="bytes")
  if b"data" not in raw:
    raise ValueError(f"{path}: not a CIFAR python batch (no b'data' entry)")
  data = np.asarray(raw[b"data"], np.uint8)
  if data.ndim != 2 or data.shape[1] != 3072:
    raise ValueError(f"{path}: expected b'data' of shape (N, 3072), got {data.shape}")
  out = {"image": data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)}
  for key in (b"labels", b"fine_labels", b"coarse_labels"):
    if key in raw:
      out[key.decode()] = np.asarray(raw[key], np.int64)
  return out


class _Cifar(tfds_lib.ManualBuilder):
  NUM_CLASSES = 10
  DIRECTORY = CIFAR10_DIR
  SPLIT_FILES: dict[str, tuple[str, ...]] = {}
  HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"

  def _features(self):
    features = {"image": tfds.features.Tensor(shape=(32, 32, 3), dtype=np.uint8),
                "label": tfds.features.Tensor(shape=(), dtype=np.int64)}
    if self.NUM_CLASSES == 100:
      features["coarse_label"] = tfds.features.Tensor(shape=(), dtype=np.int64)
    return tfds.features.FeaturesDict(features)

  def _split_names(self):
    return tuple(self.SPLIT_FILES)

  def _generate_examples(self, split, manual_dir):
    for name in self.SPLIT_FILES[split]:
      batch = read_batch(pathlib.Path(manual_dir) / self.DIRECTORY / name)
      labels = batch.get("labels", batch.get("fine_labels"))
      for i, image in enumerate(batch["image"]):
        example = {"image": image, "label": int(labels[i])}
        if "coarse_labels" in batch:
          example["coarse_label"] = int(batch["coarse_labels"][i])
        yield f"{name}_{i}", example


class Cifar10(_Cifar):
  """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images, 10 classes."""

  DIRECTORY = CIFAR10_DIR
  SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                 "test": ("test_batch",)}
  BUILDER_CONFIGS = [tfds_lib.ManualConfig(
      name="default", files=tuple(f"{CIFAR10_DIR}/{n}" for names in SPLIT_FILES.values()
                                  for n in names))]
  DESCRIPTION = "CIFAR-10 from the python version of the archive."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it
  in the manual directory (this creates cifar-10-batches-py/ with data_batch_1..5 and test_batch).
  """


class Cifar100(_Cifar):
  """CIFAR-100: 50,000 train / 10,000 test 32x32 RGB images, 100 fine / 20 coarse classes."""

  NUM_CLASSES = 100
  DIRECTORY = CIFAR100_DIR
  SPLIT_FILES = {"train": ("train",), "test": ("test",)}
  BUILDER_CONFIGS = [tfds_lib.ManualConfig(
      name="default", files=(f"{CIFAR100_DIR}/train", f"{CIFAR100_DIR}/test"))]
  DESCRIPTION = "CIFAR-100 from the python version of the archive."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it
  in the manual directory (this creates cifar-100-python/ with train and test).
  """


def as_arrays(builder: tfds_lib.ManualBuilder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """All images and labels of a prepared split, in key order.

  Args:
    builder: a prepared CIFAR builder.
    split: split name.

  Returns:
    ``(images (N, H, W, 3) uint8, labels (N,) int32)``.
  """
  source = builder.as_data_source(split)
  examples = [source[i] for i in range(len(source))]
  return (np.stack([e["image"] for e in examples]),
          np.asarray([e["label"] for e in examples], np.int32))
