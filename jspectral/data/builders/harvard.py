"""Harvard real-world hyperspectral images (Chakrabarti & Zickler, CVPR 2011): 50 outdoor/indoor
scenes, 1040 x 1392, 31 bands (420-720 nm), MATLAB ``.mat`` files with the cube in ``ref``.

Configurations:

* ``denoising`` (HSIR): global min-max, then the central 512 x 512 crop; ``harvard_train.txt`` /
  ``harvard_test.txt`` (30 / 20 images).
* ``denoising_patches`` (split ``train``): the ``denoising`` training images cut into 64 x 64
  patches at scales 1, 1/2, 1/4 (strides 64, 32, 32; 122 per image), HSIR's training LMDB recipe.
* ``sr`` (Spectral Mixup SR): values multiplied by 20, as the paper's ``crop_image.m`` does as
  committed (specs/hsi_sr_mixup.md section 6); splits ``labeled`` / ``unlabeled`` / ``test``
  (10 / 30 / 10 images) from the paper's ``image_list/harvard_list.txt`` (kli8996/HSISR), whole
  images.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import cave

SR_SCALE = 20.0
SR_LABELED = ("img1", "imga6", "imgb4", "imgb8", "imgc5", "imgd3", "imge0", "imge5", "imgf3",
              "imgf8")
SR_UNLABELED = ("img2", "imga5", "imgb1", "imgb5", "imgb7", "imgc2", "imgc7", "imgc9", "imgd7",
                "imge2", "imge4", "imgf1", "imgf4", "imgf7", "imgh1", "imga2", "imgb0", "imgb2",
                "imgb6", "imgc1", "imgc4", "imgc8", "imgd4", "imgd9", "imge3", "imge7", "imgf2",
                "imgf6", "imgh0", "imgh2")
SR_TEST = ("imga1", "imga7", "imgb3", "imgb9", "imgd2", "imgd8", "imge1", "imge6", "imgf5", "imgh3")


class Harvard(tfds_lib.ImageSetBuilder):
  """Harvard scenes as ``(H, W, 31)`` cubes."""

  BUILDER_CONFIGS = [
      tfds_lib.ImageSetConfig(name="denoising",
                              files=("harvard_train.txt", "harvard_test.txt", "*.mat"),
                              splits=(("train", "harvard_train.txt"),
                                      ("test", "harvard_test.txt")), crop=512),
      tfds_lib.ImageSetConfig(name="denoising_patches", files=("harvard_train.txt", "*.mat"),
                              splits=(("train", "harvard_train.txt"),), crop=512,
                              **cave.DENOISING_PATCHES),
      tfds_lib.ImageSetConfig(name="sr", files=tuple(
                                  f"{n}.mat" for n in SR_LABELED + SR_UNLABELED + SR_TEST),
                              splits=(("labeled", SR_LABELED), ("unlabeled", SR_UNLABELED),
                                      ("test", SR_TEST)),
                              normalisation="none", scale=SR_SCALE),
  ]
  HOMEPAGE = "http://vision.seas.harvard.edu/hyperspec/"
  DESCRIPTION = "Harvard real-world hyperspectral images, 31 bands."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the Harvard hyperspectral database (CZ_hsdb and CZ_hsdbi) and put every .mat file
  (variable `ref`) in the manual directory; for `denoising` also the split lists (image names,
  one a line) harvard_train.txt and harvard_test.txt. The `sr` splits are the paper's lists.
  """

  def _read_image(self, manual_dir, name):
    return tfds_lib.load_mat(tfds_lib.mat_path(manual_dir, name), "ref")
