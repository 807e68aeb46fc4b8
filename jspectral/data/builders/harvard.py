"""Harvard real-world hyperspectral images (Chakrabarti & Zickler, CVPR 2011): 50 outdoor/indoor
scenes, 1040 x 1392, 31 bands (420-720 nm), MATLAB ``.mat`` files with the cube in ``ref``.

Configurations (splits from list files the user copies into the manual directory):

* ``denoising`` (HSIR): global min-max, then the central 512 x 512 crop; ``harvard_train.txt`` /
  ``harvard_test.txt`` (30 / 20 images).
* ``sr`` (Spectral Mixup SR): values multiplied by 20, as the paper's ``crop_image.m`` does as
  committed (specs/hsi_sr_mixup.md section 6); ``harvard_labeled.txt``, ``harvard_unlabeled.txt``,
  ``harvard_test.txt`` (10 / 30 / 10), whole images.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

SR_SCALE = 20.0


class Harvard(tfds_lib.ImageSetBuilder):
  """Harvard scenes as ``(H, W, 31)`` cubes."""

  BUILDER_CONFIGS = [
      tfds_lib.ImageSetConfig(name="denoising",
                              files=("harvard_train.txt", "harvard_test.txt", "*.mat"),
                              splits=(("train", "harvard_train.txt"),
                                      ("test", "harvard_test.txt")), crop=512),
      tfds_lib.ImageSetConfig(name="sr", files=("harvard_labeled.txt", "harvard_unlabeled.txt",
                                                "harvard_test.txt", "*.mat"),
                              splits=(("labeled", "harvard_labeled.txt"),
                                      ("unlabeled", "harvard_unlabeled.txt"),
                                      ("test", "harvard_test.txt")),
                              normalisation="none", scale=SR_SCALE),
  ]
  HOMEPAGE = "http://vision.seas.harvard.edu/hyperspec/"
  DESCRIPTION = "Harvard real-world hyperspectral images, 31 bands."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the Harvard hyperspectral database (CZ_hsdb and CZ_hsdbi) and put every .mat file
  (variable `ref`) in the manual directory, with the split lists (image names, one a line):
  harvard_train.txt and harvard_test.txt for `denoising`; harvard_labeled.txt,
  harvard_unlabeled.txt and harvard_test.txt for `sr`.
  """

  def _read_image(self, manual_dir, name):
    return tfds_lib.load_mat(tfds_lib.mat_path(manual_dir, name), "ref")
