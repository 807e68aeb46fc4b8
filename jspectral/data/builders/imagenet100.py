"""ImageNet-100: the 100-class ImageNet subset (Tian et al., CMC, 2020) in ImageFolder layout.

The INTL code (winci-ai/INTL ``main.py``, ``scripts/in100.sh``) reads ``IN100/{train,val}/<wnid>/*``
with torchvision's ``ImageFolder``: classes are the sub-folders in sorted order. This builder reads
the same layout from the manual directory, so the folder must already hold the 100-class subset
(the class list is not part of the INTL repository). Images are decoded and resized on the host
so that their shorter side is ``short_side`` pixels (256 by default, the evaluation resize) and
center-cropped to a square, so that they batch; the official pipeline random-crops the full-size
image instead (a documented deviation).
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import tfds as tfds_lib

EXTENSIONS = (".jpeg", ".jpg", ".png")


def class_names(split_dir: pathlib.Path) -> list[str]:
  """Sorted class folder names of an ImageFolder split (torchvision's class order).

  Args:
    split_dir: ``train/`` or ``val/``.

  Returns:
    The ``wnid`` folder names, sorted.
  """
  return sorted(p.name for p in pathlib.Path(split_dir).iterdir() if p.is_dir())


def load_square(path: pathlib.Path, short_side: int) -> np.ndarray:
  """RGB image resized (bicubic) to a ``short_side`` shorter side and center-cropped square.

  Args:
    path: an image file.
    short_side: output side ``S``.

  Returns:
    ``(S, S, 3)`` uint8.
  """
  from PIL import Image

  with Image.open(path) as img:
    img = img.convert("RGB")
    scale = short_side / min(img.size)
    size = tuple(max(short_side, round(side * scale)) for side in img.size)
    img = img.resize(size, Image.BICUBIC)
    left, top = (size[0] - short_side) // 2, (size[1] - short_side) // 2
    return np.asarray(img.crop((left, top, left + short_side, top + short_side)), np.uint8)


class ImageNet100(tfds_lib.ManualBuilder):
  """ImageNet-100 ``train`` / ``validation`` from ``train/<wnid>/*`` and ``val/<wnid>/*``."""

  BUILDER_CONFIGS = [tfds_lib.ManualConfig(name="default", files=("train", "val"))]
  HOMEPAGE = "https://github.com/HobbitLong/CMC"
  DESCRIPTION = "100-class ImageNet subset in ImageFolder layout, images squared to 256 px."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Build the ImageNet-100 folder from ImageNet-1k (ILSVRC2012) with the CMC 100-class list
  (HobbitLong/CMC imagenet100.txt) and place it in the manual directory as train/<wnid>/*.JPEG and
  val/<wnid>/*.JPEG (validation images sorted into class folders).
  """
  SHORT_SIDE = 256
  NUM_CLASSES = 100

  def _features(self):
    size = self.SHORT_SIDE
    return tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(size, size, 3), dtype=np.uint8),
        "label": tfds.features.Tensor(shape=(), dtype=np.int64),
        "file_name": tfds.features.Text()})

  def _split_names(self):
    return ("train", "validation")

  def _generate_examples(self, split, manual_dir):
    split_dir = pathlib.Path(manual_dir) / ("train" if split == "train" else "val")
    names = class_names(split_dir)
    if len(names) != self.NUM_CLASSES:
      raise ValueError(f"{split_dir}: expected {self.NUM_CLASSES} class folders, found "
                       f"{len(names)}")
    for label, name in enumerate(names):
      for path in sorted((split_dir / name).iterdir()):
        if path.suffix.lower() in EXTENSIONS:
          yield f"{name}/{path.name}", {"image": load_square(path, self.SHORT_SIDE),
                                         "label": label, "file_name": path.name}


def as_arrays(builder: tfds_lib.ManualBuilder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """All images and labels of a prepared split (ImageNet-100 fits in ~25 GB).

  Args:
    builder: a prepared ImageNet-100 builder.
    split: split name.

  Returns:
    ``(images (N, S, S, 3) uint8, labels (N,) int32)``.
  """
  source = builder.as_data_source(split)
  examples = [source[i] for i in range(len(source))]
  return (np.stack([e["image"] for e in examples]),
          np.asarray([e["label"] for e in examples], np.int32))
