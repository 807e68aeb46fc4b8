"""CAVE multispectral image database (Yasuma et al., 2010): 32 scenes, 512 x 512, 31 bands
(400-700 nm), one 16-bit PNG per band: ``<scene>_ms/<scene>_ms/<scene>_ms_NN.png`` (the outer or
inner folder level may be missing; both layouts are read).

Configurations:

* ``sr`` (Spectral Mixup SR, specs/hsi_sr_mixup.md section 6): values / 65535 (8-bit PNGs / 255);
  splits ``labeled`` (5 scenes), ``unlabeled`` (15) and ``test`` (12) as the paper's
  ``image_list/cave_list.txt``.
* ``denoising`` (HSIR, specs/hsi_denoising_data.md section 1): global min-max per scene; splits
  ``train`` / ``test`` from HSIR's ``cave_train.txt`` / ``cave_test.txt`` (20 / 12) placed in the
  manual directory. HSIR reads the PNGs as 8-bit (cv2 ``IMREAD_GRAYSCALE``); this builder keeps the
  full 16-bit precision.
* ``denoising_patches`` (split ``train``): the ``train`` scenes of ``denoising`` cut into
  64 x 64 training patches at scales 1, 1/2, 1/4 with strides 64, 32, 32 (122 per scene), the
  recipe of HSIR's CAVE training LMDB (the ICVL one on the central 512 crop).
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from jspectral.data import tfds as tfds_lib

SCENES = ("balloons", "beads", "cd", "chart_and_stuffed_toy", "clay", "cloth", "egyptian_statue",
          "face", "fake_and_real_beers", "fake_and_real_food", "fake_and_real_lemon_slices",
          "fake_and_real_lemons", "fake_and_real_peppers", "fake_and_real_strawberries",
          "fake_and_real_sushi", "fake_and_real_tomatoes", "feathers", "flowers", "glass_tiles",
          "hairs", "jelly_beans", "oil_painting", "paints", "photo_and_face", "pompoms",
          "real_and_fake_apples", "real_and_fake_peppers", "sponges", "stuffed_toys",
          "superballs", "thread_spools", "watercolors")
SR_LABELED = ("balloons", "chart_and_stuffed_toy", "egyptian_statue", "fake_and_real_peppers",
              "hairs")
SR_TEST = ("jelly_beans", "oil_painting", "paints", "photo_and_face", "pompoms",
           "real_and_fake_apples", "real_and_fake_peppers", "sponges", "stuffed_toys",
           "superballs", "thread_spools", "watercolors")
SR_UNLABELED = tuple(s for s in SCENES if s not in SR_LABELED + SR_TEST)
BANDS = 31
# HSIR's CAVE / Harvard training LMDBs: the ICVL recipe (QRNN3D) on the central 512 x 512 crop.
DENOISING_PATCHES = dict(patch_size=64, patch_strides=(64, 32, 32), patch_scales=(1.0, 0.5, 0.25))


def read_band_pngs(folder, scene: str) -> np.ndarray:
  """The cube of one scene folder, in [0, 1] (16-bit / 65535, 8-bit / 255).

  Args:
    folder: the scene folder holding ``<scene>_ms_01.png`` ... ``<scene>_ms_31.png``.
    scene: the scene name.

  Returns:
    ``(H, W, 31)`` float64.
  """
  pattern = re.compile(rf"{re.escape(scene)}_ms_(\d+)\.png$")
  files = sorted((int(m.group(1)), p) for p in folder.rglob("*.png")
                 if (m := pattern.search(p.name)))
  if [n for n, _ in files] != list(range(1, BANDS + 1)):
    raise FileNotFoundError(f"{folder}: expected {scene}_ms_01.png ... {scene}_ms_{BANDS}.png, "
                            f"found bands {[n for n, _ in files]}")
  bands = []
  for _, path in files:
    band = np.asarray(Image.open(path))
    band = band[..., 0] if band.ndim == 3 else band
    bands.append(band.astype(np.float64) / (65535.0 if band.dtype == np.uint16 else 255.0))
  return np.stack(bands, axis=-1)


class Cave(tfds_lib.ImageSetBuilder):
  """CAVE scenes as whole ``(512, 512, 31)`` cubes."""

  BUILDER_CONFIGS = [
      tfds_lib.ImageSetConfig(name="sr", files=tuple(f"{s}_ms" for s in SCENES),
                              splits=(("labeled", SR_LABELED), ("unlabeled", SR_UNLABELED),
                                      ("test", SR_TEST)), normalisation="none"),
      tfds_lib.ImageSetConfig(name="denoising", files=("cave_train.txt", "cave_test.txt"),
                              splits=(("train", "cave_train.txt"), ("test", "cave_test.txt"))),
      tfds_lib.ImageSetConfig(name="denoising_patches", files=("cave_train.txt",),
                              splits=(("train", "cave_train.txt"),), **DENOISING_PATCHES),
  ]
  HOMEPAGE = "https://www.cs.columbia.edu/CAVE/databases/multispectral/"
  DESCRIPTION = "CAVE multispectral images, 31 bands, 512 x 512."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the 32 scene archives of the CAVE multispectral database and extract them into the
  manual directory so that each scene is a folder <scene>_ms holding <scene>_ms_01.png ...
  <scene>_ms_31.png (possibly one level deeper, as in the archives). For the `denoising`
  configuration also copy HSIR's split lists cave_train.txt and cave_test.txt (scene names, one a
  line) into the manual directory.
  """

  def _read_image(self, manual_dir, name):
    folder = manual_dir / f"{name}_ms"
    if not folder.is_dir():
      raise FileNotFoundError(f"cave: scene folder {folder} is missing")
    return read_band_pngs(folder, name)
