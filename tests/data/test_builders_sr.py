"""The super-resolution builders of the Spectral Mixup experiment (DIV2K, NTIRE 2020, Harvard
``sr``) parse tiny files in the publishers' formats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from jspectral.data import builders
from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import div2k, harvard, ntire2020
from tests.data.real_format import write_div2k, write_v73

RNG = np.random.default_rng(0)


def _records(builder, split):
  source = tfds_lib.data_source(builder, split)
  return {r["name"].decode(): r for r in (source[i] for i in range(len(source)))}


def test_div2k_reads_hr_png_folders_as_uint8(tmp_path):
  manual = tmp_path / "div2k"
  train = {"0001": RNG.integers(0, 256, (5, 7, 3)), "0002": RNG.integers(0, 256, (6, 4, 3))}
  valid = {"0801": RNG.integers(0, 256, (4, 4, 3))}
  write_div2k(manual, train)
  write_div2k(manual, valid, "DIV2K_valid_HR")
  builder = tfds_lib.prepare(div2k.Div2k, manual_dir=manual, data_dir=tmp_path / "tfds")
  records = _records(builder, "train")
  assert sorted(records) == ["0001", "0002"]
  for name, image in train.items():
    assert records[name]["hr"].dtype == np.uint8
    np.testing.assert_array_equal(records[name]["hr"], image)
  np.testing.assert_array_equal(_records(builder, "validation")["0801"]["hr"], valid["0801"])
  assert any(e["name"] == "div2k/hr" for e in builders.catalog(tmp_path))


def test_div2k_without_valid_folder_names_it(tmp_path):
  write_div2k(tmp_path / "div2k", {"0001": np.zeros((4, 4, 3))})
  with pytest.raises(FileNotFoundError, match="DIV2K_valid_HR"):
    tfds_lib.prepare(div2k.Div2k, manual_dir=tmp_path / "div2k", data_dir=tmp_path / "tfds")


def test_ntire2020_reads_v73_cube_with_paper_splits(tmp_path):
  manual = tmp_path / "ntire2020"
  manual.mkdir()
  names = (ntire2020.SR_LABELED[0], ntire2020.SR_TEST[0])
  cubes = {n: RNG.uniform(size=(6, 5, 31)).astype(np.float32) for n in names}
  for n, cube in cubes.items():
    write_v73(manual / f"{n}.mat", cube=cube, bands=np.arange(400, 710, 10))
  config = tfds_lib.ImageSetConfig(
      name="tiny", files=("ARAD_HS_*.mat",), normalisation="none",
      splits=(("labeled", names[:1]), ("test", names[1:])))
  builder = tfds_lib.prepare(ntire2020.Ntire2020, config=config, manual_dir=manual,
                             data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(_records(builder, "test")[names[1]]["cube"], cubes[names[1]])
  sr = ntire2020.Ntire2020.BUILDER_CONFIGS[0]
  sizes = {split: len(members) for split, members in sr.splits}
  assert sizes == {"labeled": 105, "unlabeled": 315, "test": 40}
  assert not set(ntire2020.SR_TEST) & set(ntire2020.SR_LABELED + ntire2020.SR_UNLABELED)


def test_harvard_sr_scales_by_20_with_paper_splits(tmp_path):
  manual = tmp_path / "harvard"
  manual.mkdir()
  cube = RNG.uniform(0, 0.05, size=(4, 6, 31))
  scipy.io.savemat(manual / "imga1.mat", {"ref": cube})
  sr = next(c for c in harvard.Harvard.BUILDER_CONFIGS if c.name == "sr")
  assert {s: len(m) for s, m in sr.splits} == {"labeled": 10, "unlabeled": 30, "test": 10}
  config = tfds_lib.ImageSetConfig(name="tiny", files=("imga1.mat",), normalisation="none",
                                   scale=harvard.SR_SCALE, splits=(("test", ("imga1",)),))
  builder = tfds_lib.prepare(harvard.Harvard, config=config, manual_dir=manual,
                             data_dir=tmp_path / "tfds")
  np.testing.assert_allclose(_records(builder, "test")["imga1"]["cube"], 20 * cube, rtol=1e-6)
