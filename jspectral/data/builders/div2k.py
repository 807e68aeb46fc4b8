"""DIV2K (Agustsson & Timofte, NTIRE 2017): 800 training and 100 validation 2K RGB images, 8-bit
PNGs in the publisher's folders ``DIV2K_train_HR/0001.png ... 0800.png`` and
``DIV2K_valid_HR/0801.png ... 0900.png``.

TFDS ``div2k`` naming where it fits: builder ``div2k``, splits ``train`` and ``validation``,
feature ``hr``. Only the HR images are stored (configuration ``hr``): the Spectral Mixup RGB-SR
task (kli8996/HSISR ``crop_image_RGB.m``) degrades HR crops itself with MATLAB ``imresize``, so
the publisher's bicubic LR folders are not read. Values stay ``uint8`` (``(H, W, 3)``); readers
divide by 255 as the official script does.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jspectral.data import tfds as tfds_lib

FOLDERS = {"train": "DIV2K_train_HR", "validation": "DIV2K_valid_HR"}


def read_png_folder(folder: pathlib.Path):
  """``(name, (H, W, 3) uint8)`` for every PNG of ``folder`` in name order (RGB; alpha dropped).

  Args:
    folder: a publisher folder such as ``DIV2K_train_HR``.

  Yields:
    The file stem and its RGB array.

  Raises:
    FileNotFoundError: the folder holds no PNG.
  """
  files = sorted(folder.glob("*.png"))
  if not files:
    raise FileNotFoundError(f"div2k: no .png images in {folder}")
  for path in files:
    with Image.open(path) as image:
      yield path.stem, np.asarray(image.convert("RGB"), np.uint8)


class Div2k(tfds_lib.ManualBuilder):
  """DIV2K HR images ``{"name", "hr" (H, W, 3) uint8}``, splits ``train`` / ``validation``."""

  BUILDER_CONFIGS = [tfds_lib.ManualConfig(name="hr", files=tuple(FOLDERS.values()))]
  HOMEPAGE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
  DESCRIPTION = "DIV2K 2K-resolution RGB images (HR only), 800 train / 100 validation."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download DIV2K_train_HR.zip and DIV2K_valid_HR.zip from the DIV2K page and extract both into
  the manual directory, giving the folders DIV2K_train_HR/ (0001.png ... 0800.png) and
  DIV2K_valid_HR/ (0801.png ... 0900.png).
  """

  def _features(self):
    return tfds.features.FeaturesDict({"name": tfds.features.Text(),
                                       "hr": tfds_lib.cube_feature(3, np.uint8)})

  def _split_names(self):
    return tuple(FOLDERS)

  def _generate_examples(self, split, manual_dir):
    for name, image in read_png_folder(manual_dir / FOLDERS[split]):
      yield name, {"name": name, "hr": image}
