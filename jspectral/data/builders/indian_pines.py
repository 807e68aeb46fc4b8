"""Indian Pines (AVIRIS, 145 x 145 px, 200 bands after water-absorption removal, 16 classes).

Files from the EHU GIC page: ``Indian_pines_corrected.mat`` / ``indian_pines_corrected`` and
``Indian_pines_gt.mat`` / ``indian_pines_gt``. Used qualitatively as a real noisy scene by the
QRNN3D-family denoisers and as a classification benchmark.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

CLASSES = ("alfalfa", "corn-notill", "corn-mintill", "corn", "grass-pasture", "grass-trees",
           "grass-pasture-mowed", "hay-windrowed", "oats", "soybean-notill", "soybean-mintill",
           "soybean-clean", "wheat", "woods", "buildings-grass-trees-drives",
           "stone-steel-towers")


class IndianPines(tfds_lib.SceneBuilder):
  """The corrected 200-band Indian Pines cube with its 16-class ground truth."""

  BUILDER_CONFIGS = [
      tfds_lib.SceneConfig(name="corrected",
                           files=("Indian_pines_corrected.mat", "Indian_pines_gt.mat"),
                           image_file="Indian_pines_corrected.mat",
                           image_key="indian_pines_corrected", gt_file="Indian_pines_gt.mat",
                           gt_key="indian_pines_gt", bands=200, classes=CLASSES),
  ]
  HOMEPAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
  DESCRIPTION = "AVIRIS Indian Pines test site, corrected bands, 16 classes."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download Indian_pines_corrected.mat and Indian_pines_gt.mat from the EHU GIC page (Hyperspectral
  Remote Sensing Scenes) and place them, unchanged, in the manual directory.
  """
