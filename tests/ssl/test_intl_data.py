"""CIFAR / ImageNet-100 / ImageNet-1k builders on tiny files written in the real on-disk formats."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from jspectral.data import builders
from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import cifar, imagenet, imagenet100
from tests.data.real_format import write_cifar_batch, write_image_folder


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


def test_imagenet100_builder_keeps_the_original_files(tmp_path):
  manual = tmp_path / "manual"
  write_image_folder(manual, np.random.default_rng(1), classes=100, per_class=1)
  (manual / "train" / "n00000003" / "notes.txt").write_text("not an image")
  builder = tfds_lib.prepare(imagenet100.ImageNet100, manual_dir=manual,
                             data_dir=tmp_path / "data")
  source = builder.as_data_source("validation")
  assert len(source) == 100 and sorted(imagenet.labels(source).tolist()) == list(range(100))
  train = builder.as_data_source("train")
  assert len(train) == 100                                       # notes.txt is not an image
  example = train[0]
  name = example["file_name"]
  name = name.decode() if isinstance(name, bytes) else name
  wnid = name.split("_")[0]
  assert example["label"] == int(wnid[1:])                       # sorted class folders
  assert example["image"] == (manual / "train" / wnid / name).read_bytes()   # unchanged file
  assert np.asarray(imagenet.decode(example["image"])).shape == (20, 30, 3)  # full resolution


class TinyImageNet1k(imagenet.ImageNet1k):
  """The ImageNet-1k builder with 4 classes (test only; the dry run uses all 1000)."""

  NUM_CLASSES = 4


def test_imagenet1k_subsets_read_the_official_lists(tmp_path):
  manual = tmp_path / "manual"
  write_image_folder(manual, np.random.default_rng(2), classes=4, per_class=3)
  (manual / "1percent.txt").write_text("n00000002_1.JPEG\nn00000000_2.JPEG\n")
  builder = tfds_lib.prepare(TinyImageNet1k, config="percent1", manual_dir=manual,
                             data_dir=tmp_path / "data")
  source = builder.as_data_source("train")
  got = sorted((int(source[i]["label"]), source[i]["image"]) for i in range(len(source)))
  assert got == [(0, (manual / "train/n00000000/n00000000_2.JPEG").read_bytes()),
                 (2, (manual / "train/n00000002/n00000002_1.JPEG").read_bytes())]
  assert list(builder.info.splits) == ["train"]
  full = tfds_lib.prepare(TinyImageNet1k, manual_dir=manual, data_dir=tmp_path / "data")
  assert len(full.as_data_source("train")) == 12 and len(full.as_data_source("validation")) == 12
  with pytest.raises(FileNotFoundError, match="10percent.txt"):
    tfds_lib.prepare(TinyImageNet1k, config="percent10", manual_dir=manual,
                     data_dir=tmp_path / "data")
  (manual / "10percent.txt").write_text("n99999999_0.JPEG\n")
  with pytest.raises(ValueError, match="n99999999_0.JPEG"):
    tfds_lib.prepare(TinyImageNet1k, config="percent10", manual_dir=manual,
                     data_dir=tmp_path / "data2")


def test_data_list_names_the_imagenet_files(tmp_path):
  entries = {e["name"]: e for e in builders.catalog(tmp_path)}
  assert entries["image_net1k/default"]["expected_files"] == ["train", "val"]
  assert entries["image_net1k/percent10"]["expected_files"] == ["train", "10percent.txt"]
  assert entries["image_net1k/percent1"]["manual_dir"] == str(tmp_path / "image_net1k")
  assert entries["image_net100/default"]["missing_files"] == ["train", "val"]


def test_imagenet_folder_needs_every_class(tmp_path):
  write_image_folder(tmp_path / "manual", np.random.default_rng(3), classes=3, per_class=1)
  with pytest.raises(ValueError, match="expected 4 class folders, found 3"):
    tfds_lib.prepare(TinyImageNet1k, manual_dir=tmp_path / "manual", data_dir=tmp_path / "data")


def test_decoded_images_resize_the_shorter_side_then_centre_crop():
    # 30 wide x 20 high: a red left third, a blue right third.
  pixels = np.zeros((20, 30, 3), np.uint8)
  pixels[:, :10, 0] = 255
  pixels[:, 20:, 2] = 255
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format="PNG")
  images = imagenet.DecodedImages([{"image": buf.getvalue()}] * 3, resize=10, crop=10)
  batch = images[0:2]
  assert batch.shape == (2, 10, 10, 3) and batch.dtype == np.uint8
  # torchvision: Resize(10) -> 15 x 10 (bilinear), CenterCrop(10) -> left = round(2.5) = 2.
  expected = np.asarray(Image.fromarray(pixels).resize((15, 10), Image.BILINEAR))[:, 2:12]
  np.testing.assert_array_equal(batch[1], expected)
  assert batch[0, 5, 0, 0] == 255 and batch[0, 5, -1, 2] > 200   # red left, blue right
  with pytest.raises(ValueError, match="crop"):
    imagenet.DecodedImages([], resize=8, crop=10)
