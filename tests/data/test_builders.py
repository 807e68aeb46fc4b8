"""Every builder parses tiny files written in the publishers' real on-disk formats."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from jspectral.data import builders
from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import cave, chikusei, harvard, icvl, pavia, urban
from tests.data.real_format import write_v73

RNG = np.random.default_rng(0)


def _build(builder_cls, config, manual_dir, tmp_path):
  builder = tfds_lib.prepare(builder_cls, config=config, manual_dir=manual_dir,
                             data_dir=tmp_path / "tfds")
  return builder


def _records(builder, split):
  source = tfds_lib.data_source(builder, split)
  return sorted((source[i] for i in range(len(source))), key=lambda r: str(r.get("name", "")))


def test_load_mat_reads_v5_and_v73_in_matlab_order(tmp_path):
  cube = RNG.uniform(size=(4, 5, 3))
  scipy.io.savemat(tmp_path / "a.mat", {"x": cube})
  write_v73(tmp_path / "b.mat", x=cube)
  np.testing.assert_array_equal(tfds_lib.load_mat(tmp_path / "a.mat", "x"), cube)
  np.testing.assert_array_equal(tfds_lib.load_mat(tmp_path / "b.mat", "x"), cube)
  for name in ("a.mat", "b.mat"):
    with pytest.raises(ValueError, match=rf"{name}.*'y'"):
      tfds_lib.load_mat(tmp_path / name, "y")
  (tmp_path / "c.mat").write_bytes(b"not a mat file")
  with pytest.raises(ValueError, match="c.mat"):
    tfds_lib.load_mat(tmp_path / "c.mat", "x")


def test_icvl_patches_crops_and_noisy_sets(tmp_path):
  manual = tmp_path / "icvl"
  manual.mkdir()
  raws = {f"scene_{i}": RNG.uniform(0, 4000, size=(40, 36, 31)) for i in range(3)}
  for name, rad in raws.items():
    write_v73(manual / f"{name}.mat", rad=rad)
  (manual / "ICVL_train.txt").write_text("scene_0.mat\nscene_1.mat\n")
  (manual / "ICVL_test_gauss.txt").write_text("scene_2.mat\n")
  (manual / "ICVL_test_complex.txt").write_text("scene_2\n")
  config = icvl.IcvlConfig(name="tiny_patches", kind="patches", files=("ICVL_train.txt", "*.mat"),
                           splits=(("train", "ICVL_train.txt"),), crop_train=32, patch=8,
                           strides=(8, 4, 4))
  builder = _build(icvl.Icvl, config, manual, tmp_path)
  source = tfds_lib.data_source(builder, "train")
  assert len(source) == 2 * (16 + 9 + 1)
  expected = {tuple(p.ravel()[:4]) for _, _, p in icvl.training_patches(
      raws["scene_0"], 32, 8, (8, 4, 4))}
  got = {tuple(source[i]["clean"].ravel()[:4]) for i in range(len(source))}
  assert expected <= got and source[0]["clean"].shape == (8, 8, 31)
  assert "tensorflow" not in sys.modules                   # as_data_source + grain only

  config = icvl.IcvlConfig(name="tiny_crops", kind="crops",
                           files=("ICVL_test_gauss.txt", "ICVL_test_complex.txt"),
                           splits=(("test_gauss", "ICVL_test_gauss.txt"),
                                   ("test_complex", "ICVL_test_complex.txt")),
                           crop=16, rot90=1, normalise_after_crop=True)
  record = _records(_build(icvl.Icvl, config, manual, tmp_path), "test_complex")[0]
  crop = np.rot90(raws["scene_2"], 1)[18 - 8:18 + 8, 20 - 8:20 + 8]
  np.testing.assert_allclose(record["cube"], (crop - crop.min()) / np.ptp(crop), atol=1e-6)

  folder = manual / "icvl_512_50"
  folder.mkdir()
  gt = RNG.uniform(size=(8, 8, 31))
  scipy.io.savemat(folder / "scene_2.mat", {"gt": gt, "input": gt + 0.1, "sigma": 50.0})
  builder = _build(icvl.Icvl, "noisy_test", manual, tmp_path)
  assert list(builder.info.splits) == ["icvl_512_50"]
  record = _records(builder, "icvl_512_50")[0]
  np.testing.assert_allclose(record["input"] - record["gt"], 0.1, atol=1e-6)
  np.testing.assert_array_equal(record["sigma"], np.full(31, 50.0))


def test_cave_reads_16_bit_band_pngs(tmp_path):
  manual = tmp_path / "cave"
  scenes = {}
  for scene in ("balloons", "beads"):
    folder = manual / f"{scene}_ms" / f"{scene}_ms"
    folder.mkdir(parents=True)
    scenes[scene] = RNG.integers(0, 65536, size=(6, 7, 31), dtype=np.uint16)
    for b in range(31):
      Image.fromarray(scenes[scene][..., b]).save(folder / f"{scene}_ms_{b + 1:02d}.png")
  config = tfds_lib.ImageSetConfig(name="tiny", files=("balloons_ms", "beads_ms"),
                                   splits=(("labeled", ("balloons",)), ("test", ("beads",))),
                                   normalisation="none")
  record = _records(_build(cave.Cave, config, manual, tmp_path), "test")[0]
  np.testing.assert_allclose(record["cube"], scenes["beads"] / 65535.0, atol=1e-7)
  (manual / "beads_ms" / "beads_ms" / "beads_ms_07.png").unlink()
  with pytest.raises(FileNotFoundError, match="beads_ms_01.png"):
    cave.read_band_pngs(manual / "beads_ms", "beads")


def test_harvard_minmax_then_central_crop(tmp_path):
  manual = tmp_path / "harvard"
  manual.mkdir()
  ref = RNG.uniform(size=(10, 12, 31))
  scipy.io.savemat(manual / "imga1.mat", {"ref": ref, "lbl": np.ones((10, 12))})
  (manual / "harvard_train.txt").write_text("imga1\n")
  (manual / "harvard_test.txt").write_text("imga1.mat\n")
  config = tfds_lib.ImageSetConfig(name="tiny", files=("harvard_train.txt", "harvard_test.txt"),
                                   splits=(("test", "harvard_test.txt"),), crop=4)
  record = _records(_build(harvard.Harvard, config, manual, tmp_path), "test")[0]
  normalised = (ref - ref.min()) / np.ptp(ref)
  np.testing.assert_allclose(record["cube"], normalised[3:7, 4:8], atol=1e-6)


def test_chikusei_crop_normalise_and_tiles(tmp_path):
  manual = tmp_path / "chikusei"
  manual.mkdir()
  scene = RNG.uniform(0, 5000, size=(14, 11, 128))
  write_v73(manual / chikusei.FILE, chikusei=scene)
  config = chikusei.ChikuseiConfig(name="tiny", files=(chikusei.FILE,), rows=(2, 13), cols=(2, 9),
                                   test_size=4, train_tile=4)
  builder = _build(chikusei.Chikusei, config, manual, tmp_path)
  test = _records(builder, "test")
  crop = scene[1:13, 1:9] / scene[1:13, 1:9].max()
  assert len(test) == 2 and len(tfds_lib.data_source(builder, "train")) == 4
  np.testing.assert_allclose(test[1]["cube"], crop[:4, 4:8], rtol=1e-6)


def test_scene_builder_pavia_university(tmp_path):
  manual = tmp_path / "pavia"
  manual.mkdir()
  cube = RNG.integers(0, 8000, size=(6, 5, 103)).astype(np.uint16)
  gt = RNG.integers(0, 10, size=(6, 5)).astype(np.uint8)
  scipy.io.savemat(manual / "PaviaU.mat", {"paviaU": cube})
  scipy.io.savemat(manual / "PaviaU_gt.mat", {"paviaU_gt": gt})
  record = _records(_build(pavia.Pavia, "university", manual, tmp_path), "scene")[0]
  np.testing.assert_array_equal(record["cube"], cube)
  np.testing.assert_array_equal(record["labels"], gt)
  scipy.io.savemat(manual / "Pavia.mat", {"wrong_key": cube[..., :102]})
  scipy.io.savemat(manual / "Pavia_gt.mat", {"pavia_gt": gt})
  with pytest.raises(ValueError, match=r"Pavia\.mat.*'pavia'"):
    _build(pavia.Pavia, "centre", manual, tmp_path)


def test_urban_unfolds_column_major(tmp_path):
  manual = tmp_path / "urban"
  manual.mkdir()
  cube = RNG.uniform(size=(4, 3, 162))
  y = cube.transpose(2, 1, 0).reshape(162, 12)            # MATLAB reshape(cube, [], B)' order
  scipy.io.savemat(manual / "Urban_R162.mat", {"Y": y, "nRow": 4.0, "nCol": 3.0})
  record = _records(_build(urban.Urban, "r162", manual, tmp_path), "test")[0]
  np.testing.assert_allclose(record["cube"], (cube - cube.min()) / np.ptp(cube), atol=1e-6)


def test_missing_files_name_directory_and_files(tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    tfds_lib.prepare(pavia.Pavia, config="centre", manual_dir=tmp_path / "nowhere",
                     data_dir=tmp_path)
  message = str(info.value)
  assert "nowhere" in message and "Pavia.mat" in message and "Pavia_gt.mat" in message
  # the plain TFDS entry point gives the same kind of message
  (tmp_path / "partial").mkdir()
  (tmp_path / "partial" / "Pavia.mat").touch()
  builder = pavia.Pavia(config="centre", data_dir=tmp_path)
  with pytest.raises(FileNotFoundError, match=r"partial.*Pavia_gt\.mat"):
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(tmp_path / "partial")))


def test_catalog_lists_every_dataset(tmp_path):
  (tmp_path / "salinas").mkdir()
  for name in ("Salinas_corrected.mat", "Salinas_gt.mat"):
    (tmp_path / "salinas" / name).touch()
  entries = {e["name"]: e for e in builders.catalog(tmp_path)}
  json.dumps(list(entries.values()))
  for dataset in ("icvl", "cave", "harvard", "chikusei", "pavia", "indian_pines", "salinas",
                  "whu_hi", "urban"):
    assert any(name.startswith(dataset + "/") for name in entries)
  assert {"pavia/centre", "pavia/university", "whu_hi/longkou", "whu_hi/honghu"} <= set(entries)
  assert entries["salinas/corrected"]["present"]
  assert not entries["icvl/train_patches"]["present"]
  assert entries["icvl/train_patches"]["missing_files"] == ["ICVL_train.txt", "*.mat"]
  assert entries["icvl/train_patches"]["manual_dir"] == str(tmp_path / "icvl")
  assert "salinas/corrected" in builders.format_catalog(list(entries.values()))


@pytest.mark.parametrize("builder_cls,config", [
    (b, c.name) for b in builders.BUILDERS if issubclass(b, tfds_lib.SceneBuilder)
    for c in b.BUILDER_CONFIGS])
def test_every_scene_config_reads_its_named_files(tmp_path, builder_cls, config):
  """Salinas, Indian Pines, Pavia x2, WHU-Hi x2: the file and variable names of each config."""
  spec = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == config)
  manual = tmp_path / builder_cls.name
  manual.mkdir()
  cube = RNG.uniform(size=(3, 4, spec.bands)).astype(np.float32)
  gt = RNG.integers(0, len(spec.classes) + 1, size=(3, 4)).astype(np.uint8)
  scipy.io.savemat(manual / spec.image_file, {spec.image_key: cube})
  scipy.io.savemat(manual / spec.gt_file, {spec.gt_key: gt})
  record = _records(_build(builder_cls, config, manual, tmp_path), "scene")[0]
  np.testing.assert_array_equal(record["cube"], cube)
  np.testing.assert_array_equal(record["labels"], gt)
  scipy.io.savemat(manual / spec.gt_file, {spec.gt_key: gt[:2]})
  with pytest.raises(ValueError, match="ground truth shape"):
    builder_cls(config=config, data_dir=tmp_path / "again").download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))


@pytest.mark.parametrize("damage, match", [("nan", "NaN or Inf pixels"),
                                           ("fraction", "whole numbers")])
def test_scene_files_with_nan_pixels_or_fractional_labels_are_refused(tmp_path, damage, match):
  manual = tmp_path / "pavia"
  manual.mkdir()
  cube = RNG.uniform(size=(6, 5, 103)).astype(np.float32)
  gt = RNG.integers(0, 10, size=(6, 5)).astype(np.float64)
  if damage == "nan":
    cube[2, 3, 7] = np.nan
  else:
    gt[1, 1] = 2.5
  scipy.io.savemat(manual / "PaviaU.mat", {"paviaU": cube})
  scipy.io.savemat(manual / "PaviaU_gt.mat", {"paviaU_gt": gt})
  with pytest.raises(ValueError, match=match):
    _build(pavia.Pavia, "university", manual, tmp_path)
