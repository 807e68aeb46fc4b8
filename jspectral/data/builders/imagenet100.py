"""ImageNet-100: the 100-class ImageNet subset (Tian et al., CMC, 2020) in ImageFolder layout.

The INTL code (winci-ai/INTL ``main.py``, ``scripts/in100.sh``) reads ``IN100/{train,val}/<wnid>/*``
with torchvision's ``ImageFolder``: classes are the sub-folders in sorted order. This builder reads
the same layout from the manual directory, so the folder must already hold the 100-class subset
(the class list is not part of the INTL repository). Records hold the original encoded files at
full resolution (:class:`jspectral.data.builders.imagenet.ImageFolderBuilder`); views are
decoded and random-resized-cropped per example on the host, as in the official data loader.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from jspectral.data.builders.imagenet import FolderConfig, ImageFolderBuilder


class ImageNet100(ImageFolderBuilder):
  """ImageNet-100 ``train`` / ``validation`` from ``train/<wnid>/*`` and ``val/<wnid>/*``."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {"1.0.0": "256 px centre squares.",
                   "2.0.0": "Original encoded files at full resolution."}
  BUILDER_CONFIGS = [FolderConfig(name="default", files=("train", "val"))]
  HOMEPAGE = "https://github.com/HobbitLong/CMC"
  DESCRIPTION = "100-class ImageNet subset in ImageFolder layout, original encoded files."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Build the ImageNet-100 folder from ImageNet-1k (ILSVRC2012) with the CMC 100-class list
  (HobbitLong/CMC imagenet100.txt) and place it in the manual directory as train/<wnid>/*.JPEG and
  val/<wnid>/*.JPEG (validation images sorted into class folders).
  """
  NUM_CLASSES = 100
