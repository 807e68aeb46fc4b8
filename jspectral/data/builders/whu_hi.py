"""WHU-Hi UAV scenes (Zhong et al., RSIDEA, Wuhan University): LongKou and HongHu, 270 bands.

LongKou: 550 x 400 px, 9 classes (``WHU_Hi_LongKou.mat`` / ``WHU_Hi_LongKou``,
``WHU_Hi_LongKou_gt.mat`` / ``WHU_Hi_LongKou_gt``); HongHu: 940 x 475 px, 22 classes (same naming).
Class names and counts: specs/lola_specvit.md section 4.1.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

LONGKOU_CLASSES = ("corn", "cotton", "sesame", "broad-leaf soybean", "narrow-leaf soybean", "rice",
                   "water", "roads and houses", "mixed weed")
LONGKOU_COUNTS = (34511, 8374, 3031, 63212, 4151, 11854, 67056, 7124, 5229)
HONGHU_CLASSES = ("red roof", "road", "bare soil", "cotton", "cotton firewood", "rape",
                  "chinese cabbage", "pakchoi", "cabbage", "tuber mustard",
                  "brassica parachinensis", "brassica chinensis", "small brassica chinensis",
                  "lactuca sativa", "celtuce", "film-covered lettuce", "romaine lettuce", "carrot",
                  "white radish", "garlic sprout", "broad bean", "tree")
# LoLA-SpecViT split: stratified, 10 % of labelled pixels for training (README: 2 %), seed 345.
PAPER_SPLITS = {"lola_specvit": {"train_fraction": 0.10, "seed": 345}}


def _config(scene: str, classes: tuple[str, ...]) -> tfds_lib.SceneConfig:
  stem = f"WHU_Hi_{scene}"
  return tfds_lib.SceneConfig(name=scene.lower(), files=(f"{stem}.mat", f"{stem}_gt.mat"),
                              image_file=f"{stem}.mat", image_key=stem,
                              gt_file=f"{stem}_gt.mat", gt_key=f"{stem}_gt", bands=270,
                              classes=classes)


class WhuHi(tfds_lib.SceneBuilder):
  """WHU-Hi-LongKou (config ``longkou``) and WHU-Hi-HongHu (config ``honghu``)."""

  BUILDER_CONFIGS = [_config("LongKou", LONGKOU_CLASSES), _config("HongHu", HONGHU_CLASSES)]
  HOMEPAGE = "http://rsidea.whu.edu.cn/resource_WHUHi_sharing.htm"
  DESCRIPTION = "WHU-Hi UAV-borne hyperspectral scenes (Nano-Hyperspec, 400-1000 nm)."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download WHU-Hi-LongKou and/or WHU-Hi-HongHu from the RSIDEA WHU-Hi sharing page and place the
  MATLAB files, unchanged, in the manual directory: WHU_Hi_LongKou.mat, WHU_Hi_LongKou_gt.mat,
  WHU_Hi_HongHu.mat, WHU_Hi_HongHu_gt.mat.
  """
