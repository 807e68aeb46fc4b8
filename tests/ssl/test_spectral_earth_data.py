"""SpectralEarth data: band table and statistics, label remapping, TFDS builders on tiny files
written in the published layout, synthetic scenes from real spectra."""

import dataclasses

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
  hyperview = names["spectral_earth_downstream/hyperview"]
  assert hyperview["missing_files"] == ["splits/hyperview/train.csv", "splits/hyperview/val.csv",
                                        "hyperview/images/*.npz"]
  for name in ("enmap_eurocrops", "enmap_treemap"):
    product = name.split("_")[1]
    assert names[f"spectral_earth_downstream/{name}"]["expected_files"] == [
        f"splits/{name}/train.txt", f"splits/{name}/val.txt", f"splits/{name}/test.txt",
        "enmap/*/*.tif", f"{product}/*/*.tif"]
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


@pytest.mark.parametrize("name", ["enmap_eurocrops", "enmap_treemap"])
def test_eurocrops_and_treemap_builders_remap_their_official_codes(tmp_path, endmembers, name):
  import tifffile

  from jspectral.data import tfds as tfds_lib

  config = data.downstream_config(name, size=8)   # the published layout cut to 8 px
  assert config.product == name.split("_")[1] and config.bands == 202
  assert len(config.codes) == {"enmap_eurocrops": 15, "enmap_treemap": 24}[name]
  data.write_downstream_dataset(tmp_path / "manual", np.random.default_rng(5), config,
                                {"train": 2, "val": 1, "test": 1}, endmembers)
  builder = tfds_lib.prepare(data.SpectralEarthDownstream, config=config,
                             manual_dir=tmp_path / "manual", data_dir=tmp_path / "tfds")
  for split in ("train", "val", "test"):
    for example in tfds_lib.data_source(builder, split):
      sample = example["id"].decode() if isinstance(example["id"], bytes) else example["id"]
      raw = tifffile.imread(tmp_path / "manual" / config.product / sample)
      expected = np.full(raw.shape, len(config.codes))   # 0 and unlisted codes: background
      for i, code in enumerate(config.codes):
        expected[raw == code] = i
      np.testing.assert_array_equal(example["mask"], expected)
  if name == "enmap_eurocrops":   # HCAT codes above 2**31 survive the int64 label rasters
    assert raw.dtype == np.int64 and raw.max() > 2**31


def test_bicubic_resize_matches_torch_align_corners():
  import pathlib

  pack = np.load(pathlib.Path(__file__).parent / "parity" / "spectral_earth_bicubic.npz")
  for case in ("up", "down"):
    image = np.moveaxis(pack[f"{case}/input"], 0, -1)
    out = data.bicubic_resize(image, 8)
    np.testing.assert_allclose(np.moveaxis(out, -1, 0), pack[f"{case}/output"], rtol=1e-6)
    np.testing.assert_allclose(out[[0, 0, -1, -1], [0, -1, 0, -1]],
                               image[[0, 0, -1, -1], [0, -1, 0, -1]], rtol=1e-6)  # corners kept
  np.testing.assert_allclose(data.bicubic_resize(np.full((3, 4, 2), 7.0), 9), 7.0, rtol=1e-6)
  with pytest.raises(ValueError, match="size"):
    data.bicubic_resize(np.zeros((3, 4)), 8)
  with pytest.raises(ValueError, match="size"):
    data.bicubic_resize(np.zeros((3, 4, 2)), 1)


def test_hyperview_builder_resizes_patches_and_reads_the_soil_targets(tmp_path):
  from jspectral.data import tfds as tfds_lib

  rng = np.random.default_rng(6)
  data.write_hyperview_dataset(tmp_path / "manual", rng, {"train": 3, "val": 2},
                               data.class_endmembers(rng, 2, bands=150))
  config = dataclasses.replace(data.downstream_config("hyperview"), size=8, name="hyperview_8")
  builder = tfds_lib.prepare(data.SpectralEarthDownstream, config=config,
                             manual_dir=tmp_path / "manual", data_dir=tmp_path / "tfds")
  assert set(builder.info.splits) == {"train", "val"}   # no published test.csv
  rows = dict(data.read_hyperview_split(tmp_path / "manual/splits/hyperview/val.csv"))
  val = list(tfds_lib.data_source(builder, "val"))
  assert len(val) == 2 and len(tfds_lib.data_source(builder, "train")) == 3
  for example in val:
    index = int(example["id"])
    cube = np.load(tmp_path / f"manual/hyperview/images/{index}.npz")["data"]
    assert cube.shape[1] < 8 and example["image"].shape == (8, 8, 150)
    np.testing.assert_allclose(example["image"], data.bicubic_resize(np.moveaxis(cube, 0, -1), 8))
    np.testing.assert_allclose(example["label"], rows[index])


def test_hyperview_bad_files_name_what_is_wrong(tmp_path):
  bad = tmp_path / "train.csv"
  bad.write_text("sample_index,P,K\n1,0.1,0.2\n")
  with pytest.raises(ValueError, match="Mg"):
    data.read_hyperview_split(bad)
  (tmp_path / "splits/hyperview").mkdir(parents=True)
  (tmp_path / "splits/hyperview/train.csv").write_text("sample_index,P,K,Mg,pH\n3,1,2,3,4\n")
  (tmp_path / "hyperview/images").mkdir(parents=True)
  np.savez(tmp_path / "hyperview/images/3.npz", data=np.zeros((149, 5, 5)))
  with pytest.raises(ValueError, match=r"3\.npz.*\(150, h, w\)"):
    list(data._hyperview_examples(tmp_path, "train", data.downstream_config("hyperview")))


@pytest.mark.parametrize("compression", ["lzw", "deflate"])
def test_compressed_geotiffs_are_decoded(tmp_path, endmembers, compression):
  """The published archives may be LZW / Deflate GeoTIFFs: tifffile decodes them through
  imagecodecs (a dependency for this reason)."""
  import tifffile

  cube, _ = data.synthetic_scene(np.random.default_rng(7), endmembers, 8)
  path = tmp_path / "enmap" / "0000001" / "20230101.tif"
  path.parent.mkdir(parents=True)
  tifffile.imwrite(path, np.moveaxis(cube, -1, 0), compression=compression)
  with tifffile.TiffFile(path) as tif:
    assert compression.upper() in tif.pages[0].compression.name
  [(location, images)] = list(data.read_archive(tmp_path / "enmap"))
  assert location == "0000001"
  np.testing.assert_array_equal(images[0], cube)
