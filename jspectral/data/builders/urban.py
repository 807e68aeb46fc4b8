"""HYDICE Urban (307 x 307 px): the real-noise cube the QRNN3D-family denoisers show
qualitatively (no ground truth).

Files as distributed with the unmixing ground truths (Zhu et al., RSLab): ``Urban_R162.mat``
(162 bands after removing noisy/water bands) or ``Urban_F210.mat`` (all 210 bands), with the
spectra in ``Y`` as a ``(bands, nRow * nCol)`` matrix (pixels in MATLAB column-major order) and the
sizes in ``nRow``, ``nCol``. The builder returns the ``(nRow, nCol, bands)`` cube, globally min-max
normalised (split ``test``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import tfds as tfds_lib


@dataclasses.dataclass(eq=False)
class UrbanConfig(tfds_lib.ManualConfig):
  """The Urban release to read.

  Attributes:
    file: the ``.mat`` file name.
    bands: band count of that release.
  """
  file: str = ""
  bands: int = 0


def unfold(y: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """Column-major pixel matrix -> bands-last cube.

  Args:
    y: ``(bands, rows * cols)``.
    rows: image height.
    cols: image width.

  Returns:
    ``(rows, cols, bands)``.
  """
  if y.ndim != 2 or y.shape[1] != rows * cols:
    raise ValueError(f"y: expected (bands, {rows * cols}), got {y.shape}")
  return y.T.reshape(cols, rows, -1).transpose(1, 0, 2)


class Urban(tfds_lib.ManualBuilder):
  """Urban as one ``{"name", "cube"}`` example."""

  BUILDER_CONFIGS = [UrbanConfig(name="r162", files=("Urban_R162.mat",), file="Urban_R162.mat",
                                 bands=162),
                     UrbanConfig(name="f210", files=("Urban_F210.mat",), file="Urban_F210.mat",
                                 bands=210)]
  HOMEPAGE = "https://rslab.ut.ac.ir/data"
  DESCRIPTION = "HYDICE Urban scene with real noise (no clean reference)."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the Urban data (Urban_R162.mat and/or Urban_F210.mat, variables Y, nRow, nCol) and put
  the files, unchanged, in the manual directory.
  """

  def _features(self):
    return tfds.features.FeaturesDict({"name": tfds.features.Text(),
                                       "cube": tfds_lib.cube_feature(self.builder_config.bands)})

  def _split_names(self):
    return ("test",)

  def _generate_examples(self, split, manual_dir):
    config = self.builder_config
    path = manual_dir / config.file
    rows = int(np.ravel(tfds_lib.load_mat(path, "nRow"))[0])
    cols = int(np.ravel(tfds_lib.load_mat(path, "nCol"))[0])
    try:
      cube = unfold(np.asarray(tfds_lib.load_mat(path, "Y")), rows, cols)
    except ValueError as error:
      raise ValueError(f"{path}: variable 'Y': {error}") from error
    if cube.shape[-1] != config.bands:
      raise ValueError(f"{path}: 'Y' has {cube.shape[-1]} bands, expected {config.bands}")
    yield config.name, {"name": config.name, "cube": tfds_lib.minmax(cube)}
