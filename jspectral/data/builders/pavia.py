"""Pavia Centre and Pavia University (ROSIS): ``.mat`` image + ground truth from the EHU GIC page.

Pavia Centre: 1096 x 715 px, 102 bands, 9 classes (``Pavia.mat`` / ``pavia``,
``Pavia_gt.mat`` / ``pavia_gt``). Pavia University: 610 x 340 px, 103 bands, 9 classes
(``PaviaU.mat`` / ``paviaU``, ``PaviaU_gt.mat`` / ``paviaU_gt``). SSPSR normalises Pavia Centre by
8000 for super-resolution (specs/essaformer.md section 4); the builder stores raw values.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

CENTRE_CLASSES = ("water", "trees", "asphalt", "self-blocking bricks", "bitumen", "tiles",
                  "shadows", "meadows", "bare soil")
UNIVERSITY_CLASSES = ("asphalt", "meadows", "gravel", "trees", "painted metal sheets", "bare soil",
                      "bitumen", "self-blocking bricks", "shadows")
SR_SCALE = 1 / 8000


class Pavia(tfds_lib.SceneBuilder):
  """Pavia Centre (config ``centre``) and Pavia University (config ``university``)."""

  BUILDER_CONFIGS = [
      tfds_lib.SceneConfig(name="centre", files=("Pavia.mat", "Pavia_gt.mat"),
                           image_file="Pavia.mat", image_key="pavia", gt_file="Pavia_gt.mat",
                           gt_key="pavia_gt", bands=102, classes=CENTRE_CLASSES),
      tfds_lib.SceneConfig(name="university", files=("PaviaU.mat", "PaviaU_gt.mat"),
                           image_file="PaviaU.mat", image_key="paviaU", gt_file="PaviaU_gt.mat",
                           gt_key="paviaU_gt", bands=103, classes=UNIVERSITY_CLASSES),
  ]
  HOMEPAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
  DESCRIPTION = "ROSIS scenes over Pavia, Italy, with 9-class ground truth."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download from the EHU GIC page (Hyperspectral Remote Sensing Scenes) and place, unchanged, in the
  manual directory: Pavia.mat and Pavia_gt.mat (Pavia Centre), PaviaU.mat and PaviaU_gt.mat
  (Pavia University).
  """
