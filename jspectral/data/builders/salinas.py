"""Salinas (AVIRIS, 512 x 217 px, 204 bands after water-band removal, 16 classes).

Files as LoLA-SpecViT reads them (specs/lola_specvit.md section 4.1): ``Salinas_corrected.mat`` /
``salinas_corrected`` and ``Salinas_gt.mat`` / ``salinas_gt`` (EHU GIC page).
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

CLASSES = ("brocoli green weeds 1", "brocoli green weeds 2", "fallow", "fallow rough plow",
           "fallow smooth", "stubble", "celery", "grapes untrained", "soil vinyard develop",
           "corn senesced green weeds", "lettuce romaine 4wk", "lettuce romaine 5wk",
           "lettuce romaine 6wk", "lettuce romaine 7wk", "vinyard untrained",
           "vinyard vertical trellis")
CLASS_COUNTS = (2009, 3726, 1976, 1394, 2678, 3959, 3579, 11271, 6203, 3278, 1068, 1927, 916, 1070,
                7268, 1807)
# LoLA-SpecViT split: stratified, 10 % of labelled pixels for training (README: 2 %), seed 345.
PAPER_SPLITS = {"lola_specvit": {"train_fraction": 0.10, "seed": 345}}


class Salinas(tfds_lib.SceneBuilder):
  """The corrected 204-band Salinas cube with its 16-class ground truth."""

  BUILDER_CONFIGS = [
      tfds_lib.SceneConfig(name="corrected", files=("Salinas_corrected.mat", "Salinas_gt.mat"),
                           image_file="Salinas_corrected.mat", image_key="salinas_corrected",
                           gt_file="Salinas_gt.mat", gt_key="salinas_gt", bands=204,
                           classes=CLASSES),
  ]
  HOMEPAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
  DESCRIPTION = "AVIRIS Salinas Valley scene, corrected bands, 16 classes."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download Salinas_corrected.mat and Salinas_gt.mat from the EHU GIC page (Hyperspectral Remote
  Sensing Scenes) and place them, unchanged, in the manual directory.
  """
