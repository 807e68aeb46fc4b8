"""Chikusei (Yokoya & Iwasaki, 2016): Headwall Hyperspec-VNIR-C airborne scene, 2517 x 2335 px,
128 bands (363-1018 nm), MATLAB v7.3 file ``HyperspecVNIR_Chikusei_20140729.mat``, variable
``chikusei``.

SSPSR protocol (ESSAformer, Spectral Mixup SR; specs/essaformer.md section 4): crop rows 107-2410
and columns 144-2191 (1-based) to 2304 x 2048, divide by the global maximum of the crop; the top 512
rows cut into four 512 x 512 test images (split ``test``); the remaining 1792 x 2048 region is the
training area. It is stored as non-overlapping ``train_tile`` x ``train_tile`` tiles (split
``train``, 7 x 8 tiles of 256 by default) and training patches are cropped from the tiles online
(``jspectral.data.patches.random_patches``): SSPSR's offline 64/32 patch grid would be 7 GB.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import tfds as tfds_lib

FILE = "HyperspecVNIR_Chikusei_20140729.mat"
BANDS = 128


@dataclasses.dataclass(eq=False)
class ChikuseiConfig(tfds_lib.ManualConfig):
  """Crop window (1-based inclusive rows/cols), test tile size and training tile size.

  Attributes:
    rows: first and last row of the crop (1-based, inclusive).
    cols: first and last column of the crop (1-based, inclusive).
    test_size: side of the test tiles cut from the top of the crop.
    train_tile: side of the training tiles cut from the rest.
  """

  rows: tuple[int, int] = (107, 2410)
  cols: tuple[int, int] = (144, 2191)
  test_size: int = 512
  train_tile: int = 256


def split_scene(cube: np.ndarray, config: ChikuseiConfig):
  """Test and training tiles of the max-normalised crop.

  Args:
    cube: the raw ``(H, W, C)`` scene.
    config: the crop and tile sizes.

  Returns:
    ``(test tiles, train tiles)``, lists of ``(h, w, C)`` float32 arrays.
  """
  crop = cube[config.rows[0] - 1:config.rows[1], config.cols[0] - 1:config.cols[1]]
  crop = (np.asarray(crop, np.float64) / crop.max()).astype(np.float32)
  t, s = config.test_size, config.train_tile

  def tiles(region, size):
    rows, cols = region.shape[0] // size, region.shape[1] // size
    return [region[i * size:(i + 1) * size, j * size:(j + 1) * size]
            for i in range(rows) for j in range(cols)]

  return tiles(crop[:t], t), tiles(crop[t:], s)


class Chikusei(tfds_lib.ManualBuilder):
  """Chikusei test tiles and training tiles, ``{"name", "cube" (h, w, 128)}``."""

  BUILDER_CONFIGS = [ChikuseiConfig(name="sspsr", files=(FILE,))]
  HOMEPAGE = "https://naotoyokoya.com/Download.html"
  DESCRIPTION = "Chikusei airborne hyperspectral scene, 128 bands, SSPSR super-resolution split."
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Download the MATLAB version of the Chikusei data set (Hyperspec_Chikusei_MATLAB.zip) from
  Naoto Yokoya's page and put {FILE} (variable `chikusei`) in the manual directory.
  """

  def _features(self):
    return tfds.features.FeaturesDict({"name": tfds.features.Text(),
                                       "cube": tfds_lib.cube_feature(BANDS)})

  def _split_names(self):
    return ("train", "test")

  def _generate_examples(self, split, manual_dir):
    path = manual_dir / FILE
    cube = tfds_lib.load_mat(path, "chikusei")
    if cube.ndim != 3 or cube.shape[-1] != BANDS:
      raise ValueError(f"{path}: 'chikusei' must be (H, W, {BANDS}) in MATLAB order, got "
                       f"{cube.shape}")
    test, train = split_scene(cube, self.builder_config)
    for i, tile in enumerate(test if split == "test" else train):
      yield f"{split}_{i}", {"name": f"{split}_{i}", "cube": np.ascontiguousarray(tile)}
