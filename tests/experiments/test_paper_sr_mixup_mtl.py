"""Paper dry-runs of ``sr_mixup_mtl``: miniature publisher files (CAVE 16-bit band PNGs, DIV2K HR
PNGs, the official ``conversion_8channels.mat``, NTIRE 2020 v7.3 cubes) through the registered
builders, the on-the-fly patch pipeline, fit, evaluation and the report."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.io

from experiments import runner
from experiments.configs import sr_mixup_mtl
from jspectral.data.builders import cave, ntire2020
from jspectral.superres import mixup_data, mixup_mtl
from tests.data.real_format import write_cave_scene, write_div2k, write_v73

RNG = np.random.default_rng(0)
MATRIX = RNG.uniform(size=(31, 8))


@pytest.fixture
def manual(tmp_path, monkeypatch):
  root = tmp_path / "manual"
  for scene in cave.SCENES:
    write_cave_scene(root / "cave", scene, RNG.integers(0, 65536, (16, 16, 31), dtype=np.uint16))
  write_div2k(root / "div2k", {"0001": RNG.integers(0, 256, (20, 24, 3)),
                               "0002": RNG.integers(0, 256, (16, 16, 3))})
  write_div2k(root / "div2k", {"0801": RNG.integers(0, 256, (16, 16, 3))}, "DIV2K_valid_HR")
  (root / "hsisr").mkdir()
  scipy.io.savemat(root / "hsisr" / mixup_data.CONVERSION_FILE,
                   {mixup_data.CONVERSION_KEY: MATRIX})
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(root))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  return root


def test_paper_preset_runs_cave_and_div2k_end_to_end(manual, tmp_path):
  workdir = tmp_path / "run"
  overrides = ["model.features=16", "data.patch=8", "data.rgb_patch=8", "plan.epochs=2",
               "plan.iterations_per_epoch=1", "plan.theta_rgb=1", "plan.theta_unlabel=1",
               "dispatch=select", "ablations=['RGB-SR + SSL + SMixup']", "train.batch_size=2",
               "train.log_every=1"]
  argv = ["run", "sr_mixup_mtl", "--preset", "paper", "--workdir", str(workdir)]
  assert runner.main(argv + [a for o in overrides for a in ("--set", o)]) in (0, 1)
  report = (workdir / "report.md").read_text()
  ours = next(line for line in report.splitlines() if "RGB-SR + SSL + SMixup (ours, cave)" in line)
  numbers = [float(v) for v in re.findall(r"[-+]?\d+\.\d+|nan|inf", ours)]
  assert len(numbers) == len(sr_mixup_mtl.METRICS) and np.all(np.isfinite(numbers))
  assert "RGB-SR + SSL + SMixup (paper, cave)" in report
  assert "Protocol: cave/sr x4" in report and "official conversion_8channels.mat" in report
  # 2 epochs x 1 iteration x (labeled, mixup, RGB, SSL), all with SSL on
  assert "| RGB-SR + SSL + SMixup | 8 |" in report


def test_official_projection_file_is_read_and_its_absence_explained(manual, tmp_path):
  data = sr_mixup_mtl.get_config("paper").data
  np.testing.assert_array_equal(sr_mixup_mtl.projection_matrix(data), MATRIX.astype(np.float32))
  data.conversion_file = str(tmp_path / "elsewhere.mat")
  with pytest.raises(FileNotFoundError, match=r"elsewhere\.mat.*kli8996/HSISR.*projection='cie'"):
    sr_mixup_mtl.projection_matrix(data)
  data.projection = "cie"                                       # the named alternative
  cie = sr_mixup_mtl.projection_matrix(data)
  assert cie.shape == (31, 8) and np.all(np.isfinite(cie))
  # CIE response (31, 3) times RGB_TO_8CH: white (all-ones) pixels map to RGB_TO_8CH's column sums
  np.testing.assert_allclose(np.ones(31) @ cie, mixup_mtl.RGB_TO_8CH.sum(axis=0), rtol=1e-5)


def test_ntire2020_variant_reads_v73_cubes_and_keeps_the_odd_test_size(tmp_path, monkeypatch):
  root = tmp_path / "manual"
  (root / "ntire2020").mkdir(parents=True)
  for name in ntire2020.SR_LABELED + ntire2020.SR_UNLABELED + ntire2020.SR_TEST:
    write_v73(root / "ntire2020" / f"{name}.mat", cube=RNG.uniform(size=(18, 16, 31)))
  write_div2k(root / "div2k", {"0001": RNG.integers(0, 256, (16, 16, 3))})
  write_div2k(root / "div2k", {"0801": RNG.integers(0, 256, (16, 16, 3))}, "DIV2K_valid_HR")
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(root))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  data = sr_mixup_mtl.get_config("paper:ntire2020").data
  data.patch, data.rgb_patch = 8, 8
  labeled, unlabeled, rgb_set, test, samplers, patches = sr_mixup_mtl._paper_data(data)
  assert (len(labeled), len(unlabeled), len(test)) == (105, 315, 40)
  assert patches == 105 * mixup_data.grid_count(18, 16, 8, 32)
  # 18 rows at x4: MATLAB imresize gives 5 LR rows and a 20-row bicubic cube; hr stays 18
  assert test[0]["lr"].shape == (5, 4, 31) and test[0]["lms"].shape == (20, 16, 31)
  assert test[0]["hr"].shape == (18, 16, 31)
  pair = samplers["rgb"](rgb_set[0], np.random.default_rng(0))
  assert pair["hr"].shape == (8, 8, 8) and pair["lr"].shape == (2, 2, 8)
