"""SpectralEarth data: band table and statistics, label remapping, TFDS builders on tiny files
written in the published layout, synthetic scenes from real spectra."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jspectral.data.builders import spectral_earth as data


def test_band_table_and_statistics():
  bands = data.enmap_bands()
  assert bands["center_nm"].shape == (202,)
  assert np.all(np.diff(bands["center_nm"]) > 0)
  assert bands["center_nm"][0] == pytest.approx(418.24) and 2440 < bands["center_nm"][-1] < 2450
  assert bands["mu"].mean() == pytest.approx(2066.9, abs=0.1)
  assert bands["sigma"].mean() == pytest.approx(1436.9, abs=0.1)
  x = np.broadcast_to(bands["mu"] + 2 * bands["sigma"], (2, 3, 202))
  np.testing.assert_allclose(data.standardise(x), 2.0, rtol=1e-5)
  with pytest.raises(ValueError, match="202 bands"):
    data.standardise(np.zeros((2, 3, 198)))


def test_remap_and_corine():
  raw = np.array([[0, 1, 45], [999, 210, 2]])
  np.testing.assert_array_equal(data.remap_mask(raw, data.DATASET_CODES["cdl"]),
                                [[14, 0, 6], [14, 13, 1]])
  # 111 -> 0 -> 0, 112 -> 1 -> 0, 211 -> 11 -> 2, 321 -> 25 -> 11, 124 -> 5 (no 19-class map).
  target = data.corine_multihot(np.array([111, 112, 211, 321, 124, 999]))
  assert np.flatnonzero(target).tolist() == [0, 2, 11]
  assert np.flatnonzero(data.corine_multihot(np.array([124, 999]), 43)).tolist() == [5]


@pytest.fixture(scope="module")
def endmembers():
  return data.class_endmembers(np.random.default_rng(0), 4)


def test_pretraining_builder_reads_archive(tmp_path, endmembers):
  data.write_pretraining_archive(tmp_path / "manual", np.random.default_rng(1), 3, 8, endmembers)
  builder = data.SpectralEarth(config="tiny", data_dir=tmp_path / "tfds",
                               file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / "manual")))
  source = builder.as_data_source("train")
  assert len(source) == 3
  ex = {e["location"].decode() if isinstance(e["location"], bytes) else e["location"]: e
        for e in source}
  first = sorted((tmp_path / "manual/enmap/0000000").glob("*.tif"))
  assert ex["0000000"]["images"].shape == (len(first), 8, 8, 202)
  import tifffile
  np.testing.assert_array_equal(ex["0000000"]["images"][0],
                                np.moveaxis(tifffile.imread(first[0]), 0, -1))


@pytest.mark.parametrize("config", ["tiny_cdl", "tiny_corine"])
def test_downstream_builder(tmp_path, endmembers, config):
  counts = {"train": 3, "val": 1, "test": 2}
  data.write_downstream_dataset(tmp_path / "manual", np.random.default_rng(2), config, counts,
                                endmembers)
  builder = data.SpectralEarthDownstream(config=config, data_dir=tmp_path / "tfds",
                                         file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / "manual")))
  for split, n in counts.items():
    source = builder.as_data_source(split)
    assert len(source) == n
    ex = source[0]
    assert ex["image"].shape == (8, 8, 202) and ex["image"].dtype == np.int16
    if config == "tiny_cdl":
      assert ex["mask"].shape == (8, 8) and ex["mask"].max() <= 14
    else:
      assert ex["label"].shape == (19,) and set(np.unique(ex["label"])) <= {0, 1}


def test_synthetic_scene_is_plausible(endmembers):
  cube, dominant = data.synthetic_scene(np.random.default_rng(3), endmembers, 16)
  assert cube.shape == (16, 16, 202) and cube.dtype == np.int16
  assert 0 <= cube.min() and cube.max() <= 10000
  assert len(np.unique(dominant)) > 1
  # Spectra are smooth along wavelength (real spectra, not noise).
  spectrum = cube[0, 0].astype(float)
  assert np.abs(np.diff(spectrum)).mean() < 0.1 * spectrum.mean()


def test_builders_in_the_catalog_with_their_published_layout(tmp_path, endmembers):
  from jspectral.data import builders

  names = {e["name"]: e for e in builders.catalog(tmp_path)}
  assert {"spectral_earth/enmap", "spectral_earth_downstream/enmap_cdl",
          "spectral_earth_downstream/desis_cdl", "spectral_earth_downstream/eo1_cdl"} <= set(names)
  desis = names["spectral_earth_downstream/desis_cdl"]
  assert not desis["present"] and "splits/desis_cdl/train.txt" in desis["missing_files"]
  assert desis["manual_dir"] == str(tmp_path / "spectral_earth_downstream")
  data.write_pretraining_archive(tmp_path / "spectral_earth", np.random.default_rng(0), 2, 8,
                                 endmembers)
  assert {e["name"]: e for e in builders.catalog(tmp_path)}["spectral_earth/enmap"]["present"]


@pytest.mark.parametrize("name, bands", [("desis_cdl", 235), ("eo1_cdl", 198)])
def test_cross_sensor_sets_standardise_with_their_own_statistics(tmp_path, name, bands):
  from jspectral.data import tfds as tfds_lib
  from jspectral.ssl import spectral_earth as se

  stats = data.sensor_statistics(name.split("_")[0])
  assert stats["mu"].shape == stats["sigma"].shape == (bands,)
  assert np.all(stats["sigma"] > 0) and np.all(np.isfinite(stats["mu"]))
  assert not np.allclose(stats["mu"][:10], data.enmap_bands()["mu"][:10])
  config = data.downstream_config(name, size=8)   # the published geometry cut to 8 px
  rng = np.random.default_rng(4)
  spectra = data.class_endmembers(rng, 3, bands=bands)
  data.write_downstream_dataset(tmp_path / "manual", rng, config, {"train": 2, "val": 1,
                                                                   "test": 1}, spectra)
  builder = tfds_lib.prepare(data.SpectralEarthDownstream, config=config,
                             manual_dir=tmp_path / "manual", data_dir=tmp_path / "tfds")
  example = tfds_lib.data_source(builder, "train")[0]
  assert example["image"].shape == (8, 8, bands)
  out = se.downstream_augment(example, None, scale=(0.4, 1.0), mean=stats["mu"],
                              std=stats["sigma"], train=False)
  np.testing.assert_allclose(out["image"], (example["image"] - stats["mu"]) / stats["sigma"],
                             rtol=1e-5)
  with pytest.raises(ValueError, match=f"{bands}"):
    data.standardise(example["image"])   # EnMAP's 202 statistics do not apply
  with pytest.raises(ValueError, match="sensor"):
    data.sensor_statistics("aviris")
