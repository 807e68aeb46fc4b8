"""CIFAR / ImageNet-100 builders on tiny files written in the real on-disk formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import cifar, imagenet100
from tests.data.real_format import write_cifar_batch


def test_cifar10_and_100_builders(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / "manual"
  written = {}
  for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch"):
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    written[name] = images
    write_cifar_batch(manual / "cifar-10-batches-py" / name, images, labels=[3, 7])
  builder = tfds_lib.prepare(cifar.Cifar10, manual_dir=manual, data_dir=tmp_path / "data")
  images, labels = cifar.as_arrays(builder, "train")
  assert images.shape == (10, 32, 32, 3) and sorted(labels.tolist()) == [3] * 5 + [7] * 5
  # Pixel layout: the stored image is the HWC view of the channel-major row.
  expected = {img.tobytes() for batch in list(written.values())[:5] for img in batch}
  assert {img.tobytes() for img in images} == expected
  assert cifar.as_arrays(builder, "test")[0].shape == (2, 32, 32, 3)

  images100 = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  for name in ("train", "test"):
    write_cifar_batch(manual / "cifar-100-python" / name, images100, fine_labels=[99, 0, 42],
                      coarse_labels=[19, 0, 7])
  builder = tfds_lib.prepare(cifar.Cifar100, manual_dir=manual, data_dir=tmp_path / "data")
  example = builder.as_data_source("test")[0]
  assert set(example) == {"image", "label", "coarse_label"}
  assert sorted(cifar.as_arrays(builder, "train")[1].tolist()) == [0, 42, 99]


def test_cifar_bad_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="cifar-10-batches-py/data_batch_1"):
    tfds_lib.prepare(cifar.Cifar10, manual_dir=tmp_path, data_dir=tmp_path / "data")
  path = tmp_path / "bad"
  with path.open("wb") as f:
    pickle.dump({b"x": 1}, f)
  with pytest.raises(ValueError, match="b'data'"):
    cifar.read_batch(path)


class TinyImageNet100(imagenet100.ImageNet100):
  """The ImageNet-100 builder with 16-pixel images (test only)."""

  SHORT_SIDE = 16


def test_imagenet100_builder(tmp_path):
  manual = tmp_path / "manual"
  rng = np.random.default_rng(1)
  for split in ("train", "val"):
    for c in range(100):
      folder = manual / split / f"n{c:08d}"
      folder.mkdir(parents=True)
      Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(
          folder / f"n{c:08d}_{split}.JPEG", format="JPEG")
  (manual / "train" / "n00000003" / "notes.txt").write_text("not an image")
  builder = tfds_lib.prepare(TinyImageNet100, manual_dir=manual, data_dir=tmp_path / "data")
  images, labels = imagenet100.as_arrays(builder, "validation")
  assert images.shape == (100, 16, 16, 3) and sorted(labels.tolist()) == list(range(100))
  source = builder.as_data_source("train")
  by_label = {int(source[i]["label"]): source[i]["file_name"] for i in range(len(source))}
  assert by_label[5] == b"n00000005_train.JPEG" or by_label[5] == "n00000005_train.JPEG"
