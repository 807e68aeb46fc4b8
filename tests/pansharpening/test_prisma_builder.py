"""The PRISMA builder on tiny files written in the toolbox's ``.mat`` layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from jspectral.data import builders
from jspectral.data.builders import prisma


def _write(path, rng, gt: bool):
  h, ratio, b = 2, 6, prisma.BANDS
  data = {"I_PAN": rng.integers(0, 2 ** 16, (h * ratio, h * ratio), dtype=np.uint16),
          "I_MS_LR": rng.integers(0, 2 ** 16, (h, h, b), dtype=np.uint16),
          "I_MS": rng.integers(0, 2 ** 16, (h * ratio, h * ratio, b), dtype=np.uint16),
          "wavelengths": np.linspace(465.7, 2293.1, b, dtype=np.float32)[None], "overlap": 25}
  if gt:
    data["I_GT"] = rng.integers(0, 2 ** 16, (h * ratio, h * ratio, b), dtype=np.uint16)
  scipy.io.savemat(path, data)
  return data


def test_open_mat_and_builder(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / "prisma"   # the catalog looks under <root>/<builder name>
  for folder in prisma.SPLITS.values():
    (manual / folder / "Reduced_Resolution").mkdir(parents=True)
  written = _write(manual / "Test" / "Reduced_Resolution" / "Scene_KANSAS_RR.mat", rng, gt=True)
  _write(manual / "Training" / "Reduced_Resolution" / "patch_0.mat", rng, gt=True)
  _write(manual / "Validation" / "Reduced_Resolution" / "patch_1.mat", rng, gt=True)
  scene = prisma.open_mat(manual / "Test" / "Reduced_Resolution" / "Scene_KANSAS_RR.mat")
  assert scene["pan"].shape == (12, 12, 1) and scene["hs_lr"].shape == (2, 2, 159)
  assert scene["hs_up"].dtype == np.float64
  np.testing.assert_array_equal(scene["overlap"], np.arange(25))
  np.testing.assert_array_equal(scene["gt"], written["I_GT"])
  entry = next(e for e in builders.catalog(tmp_path) if e["name"] == "prisma/rr")
  assert entry["missing_files"] == [] and entry["present"]
  loaded = prisma.load_test_scene("RR", 0, manual_dir=manual, data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(loaded["hs_lr"], written["I_MS_LR"])
  np.testing.assert_array_equal(loaded["pan"][..., 0], written["I_PAN"])
  with pytest.raises(FileNotFoundError, match="Full_Resolution"):
    prisma.make_builder("FR", manual_dir=manual, data_dir=tmp_path / "tfds")


def test_missing_key(tmp_path):
  scipy.io.savemat(tmp_path / "bad.mat", {"I_PAN": np.zeros((6, 6))})
  with pytest.raises(ValueError, match="I_MS_LR"):
    prisma.open_mat(tmp_path / "bad.mat")
