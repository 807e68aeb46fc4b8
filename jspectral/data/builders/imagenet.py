"""ImageNet-1k (ILSVRC 2012) in the ImageFolder layout, stored as the original encoded files.

The INTL code (winci-ai/INTL ``main.py``, ``evaluate.py``) reads ``ImageNet/{train,val}/<wnid>/*``
with torchvision's ``ImageFolder``: classes are the sub-folders in sorted order, and the
validation labels are the class folders the 50,000 validation images were sorted into. Images are
kept at full resolution: each record holds the file's bytes unchanged (no re-encoding), so a
prepared split streams from ``array_record`` and is decoded and cropped per example on the host
(``jspectral.ssl.intl.crop_views``), as the official data loader decodes JPEG files.

The semi-supervised subsets (SimCLR's ``1percent.txt`` / ``10percent.txt``, shipped in the INTL
repository as ``src/percent/``) are the configurations ``percent1`` and ``percent10``: a train split
with only the listed files (class = the file-name prefix before ``_``, as ``evaluate.py`` reads it).
"""

from __future__ import annotations

import dataclasses
import io
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


def decode(data: bytes):
  """An encoded image file as an RGB ``PIL.Image`` (torchvision's ``pil_loader``).

  Args:
    data: the file's bytes.

  Returns:
    ``PIL.Image`` in mode RGB.
  """
  from PIL import Image

  with Image.open(io.BytesIO(data)) as img:
    return img.convert("RGB")


def resize_center_crop(img, resize: int, crop: int) -> np.ndarray:
  """torchvision ``Resize(resize)`` (bilinear, shorter side) then ``CenterCrop(crop)``.

  Args:
    img: ``PIL.Image``.
    resize: shorter side after resizing.
    crop: output side.

  Returns:
    ``(crop, crop, 3)`` uint8.

  Raises:
    ValueError: if ``crop > resize``.
  """
  from PIL import Image

  if crop > resize:
    raise ValueError(f"crop: expected <= resize ({resize}), got {crop}")
  width, height = img.size
  if width <= height:
    size = (resize, int(resize * height / width))
  else:
    size = (int(resize * width / height), resize)
  img = img.resize(size, Image.BILINEAR)
  top, left = int(round((size[1] - crop) / 2.0)), int(round((size[0] - crop) / 2.0))
  return np.asarray(img.crop((left, top, left + crop, top + crop)), np.uint8)


class DecodedImages:
  """Random-access evaluation images of encoded examples: ``Resize(resize)`` + ``CenterCrop(crop)``.

  ``images[i]`` is ``(crop, crop, 3)`` uint8; ``images[a:b]`` stacks them (what the feature
  extraction reads a batch at a time), so only one batch is decoded at once.

  Attributes:
    source: random-access examples ``{"image": bytes, ...}``.
    resize: shorter side before the centre crop (official 256).
    crop: output side (official 224).
  """

  def __init__(self, source, resize: int = 256, crop: int = 224):
    if crop > resize:
      raise ValueError(f"crop: expected <= resize ({resize}), got {crop}")
    self.source, self.resize, self.crop = source, resize, crop

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return np.stack([self[i] for i in range(*index.indices(len(self)))])
    return resize_center_crop(decode(self.source[index]["image"]), self.resize, self.crop)


def labels(source) -> np.ndarray:
  """The integer labels of every example of ``source`` (reads every record once).

  Args:
    source: random-access examples with a ``label`` entry.

  Returns:
    ``(N,)`` int32.
  """
  return np.asarray([source[i]["label"] for i in range(len(source))], np.int32)


@dataclasses.dataclass(eq=False)
class FolderConfig(tfds_lib.ManualConfig):
  """An ImageFolder configuration.

  Attributes:
    subset: ``""`` for the whole ``train/`` and ``val/`` folders, else the name of a list of
      training file names in the manual directory (only a train split is written).
  """

  subset: str = ""


class ImageFolderBuilder(tfds_lib.ManualBuilder):
  """``train`` / ``validation`` from ``train/<wnid>/*`` and ``val/<wnid>/*``, encoded bytes.

  Examples: ``image`` (the file's bytes), ``label`` (index of the sorted class folders) and
  ``file_name``.
  """

  NUM_CLASSES = 1000

  def _features(self):
    return tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(), dtype=np.object_),
        "label": tfds.features.Tensor(shape=(), dtype=np.int64),
        "file_name": tfds.features.Text()})

  def _split_names(self):
    return ("train",) if self.builder_config.subset else ("train", "validation")

  def _classes(self, split_dir: pathlib.Path) -> list[str]:
    names = class_names(split_dir)
    if len(names) != self.NUM_CLASSES:
      raise ValueError(f"{split_dir}: expected {self.NUM_CLASSES} class folders, found "
                       f"{len(names)}")
    return names

  def _files(self, split, manual_dir: pathlib.Path):
    """``(label, path)`` of every image of ``split``, in class then file order."""
    split_dir = manual_dir / ("train" if split == "train" else "val")
    names = self._classes(split_dir)
    if self.builder_config.subset:
      index = {name: label for label, name in enumerate(names)}
      listed = tfds_lib.read_list(manual_dir / self.builder_config.subset)
      for file_name in listed:
        wnid = file_name.split("_")[0]
        if wnid not in index:
          raise ValueError(f"{self.builder_config.subset}: {file_name!r} names no class folder")
        yield index[wnid], split_dir / wnid / file_name
      return
    for label, name in enumerate(names):
      for path in sorted((split_dir / name).iterdir()):
        if path.suffix.lower() in EXTENSIONS:
          yield label, path

  def _generate_examples(self, split, manual_dir):
    for label, path in self._files(split, pathlib.Path(manual_dir)):
      yield f"{path.parent.name}/{path.name}", {"image": path.read_bytes(), "label": label,
                                                 "file_name": path.name}


class ImageNet1k(ImageFolderBuilder):
  """ImageNet-1k (ILSVRC 2012): 1,281,167 train / 50,000 validation images, 1000 classes."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      FolderConfig(name="default", files=("train", "val")),
      FolderConfig(name="percent1", files=("train", "1percent.txt"), subset="1percent.txt"),
      FolderConfig(name="percent10", files=("train", "10percent.txt"), subset="10percent.txt")]
  HOMEPAGE = "https://image-net.org/challenges/LSVRC/2012/"
  DESCRIPTION = "ImageNet-1k in ImageFolder layout, original encoded files."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org. Extract
  the training archive into train/<wnid>/*.JPEG (one tar per class) and the validation images into
  val/<wnid>/*.JPEG, sorted into the class folders of the official validation labels (as PyTorch's
  ImageNet examples do, e.g. with their valprep.sh). For the semi-supervised configurations
  percent1 / percent10, also copy 1percent.txt / 10percent.txt (SimCLR's lists, in the INTL
  repository under src/percent/) next to train/.
  """
