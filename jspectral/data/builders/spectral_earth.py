"""SpectralEarth data: the EnMAP band table and per-band statistics, TFDS builders for the
pretraining patch archive and the downstream datasets in their published layout, label
remapping, and synthetic EnMAP-like cubes mixed from real reflectance spectra.

Braham et al., "SpectralEarth: Training Hyperspectral Foundation Models at Scale", arXiv 2408.08447.
Official code: AABNassim/spectral_earth (``src/datasets/*.py``, ``data/statistics``,
``data/splits``).

Published layouts (read with ``tifffile``: the official code uses rasterio but no geo-referencing):

- Pretraining: ``<manual_dir>/enmap/<location>/<date>.tif``, each ``(202, 128, 128)`` int16
  reflectance (scale 1e4); one example per location holding all its dates ``(D, S, S, B)``.
- Downstream: ``<manual_dir>/<sensor>/<tile>/<patch>.tif`` images ``(B, S, S)``,
  ``<manual_dir>/<product>/<tile>/<patch>.tif`` single-band label rasters with *raw* codes, and
  ``<manual_dir>/splits/<sensor>_<product>/{train,val,test}.txt`` (the official ``data/splits``
  files, lines like ``0000823/04138.tif``).

Masks are remapped as in the official datasets: the listed codes become ``0..K-1`` in list order,
code 0 and every unlisted code become ``K`` (background, ignored). CORINE masks map CLC level-3
codes to the 43 labels, then to the 19 BigEarthNet classes; the label is the multi-hot set of
classes present in the patch.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.util
import pathlib

import numpy as np
import scipy.ndimage
import tensorflow_datasets as tfds
import tifffile

from jspectral.data import tfds as tfds_lib

BANDS_CSV = pathlib.Path(__file__).with_name("spectral_earth_enmap_bands.csv")
RGB_BANDS = (43, 28, 10)  # ~641, 556, 468 nm


@functools.cache
def enmap_bands() -> dict[str, np.ndarray]:
  """The 202 SpectralEarth EnMAP bands and the official normalisation statistics.

  Returns:
    ``(202,)`` float32 arrays ``center_nm``, ``fwhm_nm``, ``original_idx``, and ``mu``, ``sigma``
    (raw int16 reflectance).
  """
  rows = [r for r in csv.reader(line for line in BANDS_CSV.read_text().splitlines()
                                if not line.startswith("#"))]
  header, body = rows[0], np.array(rows[1:], dtype=np.float64)
  return {name: body[:, i].astype(np.float32) for i, name in enumerate(header) if name != "idx"}


SENSORS = {"enmap": 202, "desis": 235, "eo1": 198, "hyperview": 150}


@functools.cache
def sensor_statistics(sensor: str) -> dict[str, np.ndarray]:
  """The official per-band normalisation statistics of a sensor.

  EnMAP: the pretraining-set statistics of :func:`enmap_bands`. DESIS, EO-1 Hyperion and
  Hyperview: the official tables (``data/{desis,eo1,hyperview}_statistics/{mu,sigma}.npy`` of
  AABNassim/spectral_earth, shipped as ``spectral_earth_<sensor>_stats.csv``), each in its own
  sensor's band order.

  Args:
    sensor: one of :data:`SENSORS`.

  Returns:
    ``{"mu": (B,), "sigma": (B,)}`` float32 (raw values, e.g. int16 reflectance x 1e4).
  """
  if sensor not in SENSORS:
    raise ValueError(f"sensor: expected one of {sorted(SENSORS)}, got {sensor!r}")
  if sensor == "enmap":
    bands = enmap_bands()
    return {"mu": bands["mu"], "sigma": bands["sigma"]}
  path = BANDS_CSV.with_name(f"spectral_earth_{sensor}_stats.csv")
  rows = list(csv.reader(line for line in path.read_text().splitlines()
                         if not line.startswith("#")))
  body = np.array(rows[1:], dtype=np.float64)
  return {"mu": body[:, 1].astype(np.float32), "sigma": body[:, 2].astype(np.float32)}


def standardise(image: np.ndarray, mean: np.ndarray | None = None,
                std: np.ndarray | None = None) -> np.ndarray:
  """Per-band ``(x - mu) / sigma``; EnMAP statistics by default.

  Args:
    image: bands-last ``(..., B)``.
    mean: ``(B,)`` (default :func:`enmap_bands` ``mu``).
    std: ``(B,)`` (default :func:`enmap_bands` ``sigma``).

  Returns:
    float32, same shape.
  """
  bands = enmap_bands()
  mean = bands["mu"] if mean is None else mean
  std = bands["sigma"] if std is None else std
  if image.shape[-1] != mean.shape[-1]:
    raise ValueError(f"image: expected {mean.shape[-1]} bands last, got shape {image.shape}")
  return ((image - mean) / std).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Label remapping

DATASET_CODES = {
    "cdl": (1, 2, 3, 4, 5, 6, 45, 54, 69, 72, 75, 76, 204, 210),
    "nlcd": (11, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95),
    "bdforet": (1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 14, 16),
    "bnetd": (1, 2, 3, 6, 9, 10, 13, 15, 16, 21),
    # configs/data/enmap_eurocrops.yaml: HCAT codes, wider than int32 (read masks as int64)
    "eurocrops": (3301090205, 3301010600, 3301090303, 3301010800, 3301090301, 3303060000,
                  3303030600, 3303050000, 3303030100, 3301060500, 3301060300, 3303010000,
                  3301020000, 3301160000, 3301029900),
    "treemap": (184, 185, 221, 924, 105, 503, 520, 706, 801, 201, 264, 266, 281, 301, 901, 406,
                923, 142, 161, 602, 607, 608, 267, 371),
}
HYPERVIEW_TARGETS = ("P", "K", "Mg", "pH")

CORINE_TO_43 = {
    111: 0, 112: 1, 121: 2, 122: 3, 123: 4, 124: 5, 131: 6, 132: 7, 133: 8, 141: 9, 142: 10,
    211: 11, 212: 12, 213: 13, 221: 14, 222: 15, 223: 16, 231: 17, 241: 18, 242: 19, 243: 20,
    244: 21, 311: 22, 312: 23, 313: 24, 321: 25, 322: 26, 323: 27, 324: 28, 331: 29, 332: 30,
    333: 31, 334: 32, 411: 33, 412: 34, 421: 35, 422: 36, 423: 37, 511: 38, 512: 39, 521: 40,
    522: 41, 523: 42}
LABEL43_TO_19 = {
    0: 0, 1: 0, 2: 1, 11: 2, 12: 2, 13: 2, 14: 3, 15: 3, 16: 3, 18: 3, 17: 4, 19: 5, 20: 6, 21: 7,
    22: 8, 23: 9, 24: 10, 25: 11, 31: 11, 26: 12, 27: 12, 28: 13, 29: 14, 33: 15, 34: 15, 35: 16,
    36: 16, 38: 17, 39: 17, 40: 18, 41: 18, 42: 18}


def remap_mask(raw: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
  """Raw label codes -> ``0..K-1`` in ``codes`` order; 0 and unlisted codes -> ``K``.

  Args:
    raw: label raster ``(H, W)``.
    codes: the dataset's ``K`` class codes.

  Returns:
    ``(H, W)`` int32.
  """
  out = np.full(raw.shape, len(codes), np.int32)
  raw = np.asarray(raw).astype(np.int64)   # EuroCrops codes exceed int32
  for i, code in enumerate(codes):
    out[raw == code] = i
  return out


def bicubic_resize(image: np.ndarray, size: int) -> np.ndarray:
  """torch ``F.interpolate(mode="bicubic", align_corners=True)`` of a bands-last image.

  Cubic convolution with ``A = -0.75``, source coordinate ``i (H - 1) / (size - 1)``, taps
  clamped at the borders (Hyperview's resize to the model's patch side).

  Args:
    image: ``(H, W, C)``.
    size: output side.

  Returns:
    ``(size, size, C)`` float32.

  Raises:
    ValueError: if ``image`` is not ``(H, W, C)`` or ``size < 2``.
  """
  if np.ndim(image) != 3 or size < 2:
    raise ValueError(f"image, size: expected (H, W, C) and size >= 2, got {np.shape(image)}, "
                     f"{size}")
  rows, cols = (_cubic_matrix(n, size) for n in np.shape(image)[:2])
  out = np.einsum("ih,hwc,jw->ijc", rows, np.asarray(image, np.float64), cols)
  return out.astype(np.float32)


def _cubic_matrix(n: int, size: int, a: float = -0.75) -> np.ndarray:
  """``(size, n)`` weights of 1-D align-corners cubic convolution with clamped taps."""
  src = np.arange(size) * ((n - 1) / (size - 1))
  base = np.floor(src).astype(int)
  t = src - base
  weights = np.zeros((size, n))
  for k in range(-1, 3):
    d = np.abs(t - k)
    w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                 np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
    np.add.at(weights, (np.arange(size), np.clip(base + k, 0, n - 1)), w)
  return weights


def corine_multihot(raw: np.ndarray, num_classes: int = 19) -> np.ndarray:
  """CLC codes of a patch -> multi-hot: codes -> 43 labels (-> 19 classes); unmapped codes dropped.

  Args:
    raw: CORINE code raster, any shape.
    num_classes: 19 or 43.

  Returns:
    ``(num_classes,)`` int32.
  """
  if num_classes not in (19, 43):
    raise ValueError(f"num_classes: expected 19 or 43, got {num_classes}")
  labels = {CORINE_TO_43[c] for c in np.unique(raw).tolist() if c in CORINE_TO_43}
  if num_classes == 19:
    labels = {LABEL43_TO_19[v] for v in labels if v in LABEL43_TO_19}
  target = np.zeros(num_classes, np.int32)
  target[sorted(labels)] = 1
  return target


# --------------------------------------------------------------------------------------------------
# TFDS builders


def _read_tif(path: pathlib.Path) -> np.ndarray:
  """A multi-band GeoTIFF ``(B, H, W)`` (or single band ``(H, W)``) -> bands-last array."""
  data = tifffile.imread(path)
  return np.moveaxis(data, 0, -1) if data.ndim == 3 else data


@dataclasses.dataclass(eq=False)
class PatchConfig(tfds_lib.ManualConfig):
  """Pretraining patch geometry.

  Attributes:
    size: patch side ``S``.
    bands: band count ``B``.
  """
  size: int = 128
  bands: int = 202


def _patch(name: str, size: int) -> PatchConfig:
  return PatchConfig(name=name, size=size, bands=202, files=("enmap/*/*.tif",))


def patch_config(name: str, size: int | None = None) -> PatchConfig:
  """The :class:`SpectralEarth` configuration ``name``, optionally with another patch side
  (synthetic archives and dry runs on miniature files in the published layout).

  Args:
    name: ``enmap``, ``smoke`` or ``tiny``.
    size: patch side; ``None`` keeps the configuration's.

  Returns:
    The configuration.
  """
  return _with_size(SpectralEarth.BUILDER_CONFIGS, name, size)


def _with_size(configs, name: str, size: int | None):
  named = {c.name: c for c in configs}
  if name not in named:
    raise ValueError(f"name: expected one of {sorted(named)}, got {name!r}")
  config = named[name]
  if size in (None, config.size):
    return config
  return dataclasses.replace(config, name=f"{name}_{size}px", size=size)


class SpectralEarth(tfds_lib.ManualBuilder):
  """The SpectralEarth pretraining archive: one example per location with all its dates.

  Listed in ``python -m experiments data list``; manual directory
  ``<manual root>/spectral_earth`` holding ``enmap/<location>/<date>.tif``.
  """

  BUILDER_CONFIGS = [_patch("enmap", 128), _patch("smoke", 32), _patch("tiny", 8)]
  HOMEPAGE = "https://github.com/AABNassim/spectral_earth"
  DESCRIPTION = "SpectralEarth: 415,153 EnMAP locations of 128x128x202 int16 patches."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request 'enmap_spectralearth' from the DLR GeoService (geoservice.dlr.de, account required;
  about 3.3 TB) and extract it so that <manual_dir>/enmap/<location_id>/<date>.tif holds
  (202, 128, 128) int16 patches.
  """

  def _features(self):
    c = self.builder_config
    return tfds.features.FeaturesDict({
        "location": tfds.features.Text(),
        "images": tfds.features.Tensor(shape=(None, c.size, c.size, c.bands), dtype=np.int16),
    })

  def _split_names(self):
    return ("train",)

  def _generate_examples(self, split, manual_dir):
    c = self.builder_config
    for loc, images in read_archive(pathlib.Path(manual_dir) / "enmap"):
      if images.shape[1:] != (c.size, c.size, c.bands):
        raise ValueError(f"{manual_dir}/enmap/{loc}: expected ({c.bands}, {c.size}, {c.size}) "
                         f"patches, got {np.moveaxis(images[0], -1, 0).shape}")
      yield loc, {"location": loc, "images": images}


def read_archive(root: pathlib.Path):
  """Reads the pretraining archive location by location.

  Args:
    root: the sensor folder holding ``<location>/*.tif``.

  Yields:
    ``(location, images (D, S, S, B) int16)``, one per location with at least one date.
  """
  for loc in sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir()):
    dates = [_read_tif(t).astype(np.int16) for t in sorted(loc.glob("*.tif"))]
    if dates:
      yield loc.name, np.stack(dates)


@dataclasses.dataclass(eq=False)
class DownstreamConfig(tfds_lib.ManualConfig):
  """One downstream dataset of the SpectralEarth benchmark.

  Attributes:
    sensor: ``"enmap"`` or another sensor folder.
    product: label product (``"cdl"``, ``"nlcd"``, ``"corine"``, ...).
    bands: band count ``B``.
    size: patch side (128 in the published files; a dry run may cut it).
    codes: the class codes kept (segmentation masks are remapped with :func:`remap_mask`).
    multilabel: CORINE-style multi-hot targets instead of masks.
    regression: Hyperview: ``images/<sample_index>.npz`` cubes resized to ``size`` and the four
      soil targets of the split CSVs.
  """
  sensor: str = "enmap"
  product: str = "cdl"
  bands: int = 202
  size: int = 128
  codes: tuple[int, ...] = ()
  multilabel: bool = False
  regression: bool = False


SPLITS = ("train", "val", "test")


def _downstream(name, sensor, product, bands, codes=(), multilabel=False, size=128):
  files = (*(f"splits/{sensor}_{product}/{s}.txt" for s in SPLITS), f"{sensor}/*/*.tif",
           f"{product}/*/*.tif")
  return DownstreamConfig(name=name, sensor=sensor, product=product, bands=bands, size=size,
                          codes=codes, multilabel=multilabel, files=files)


def _hyperview(name="hyperview", size=128):
  files = ("splits/hyperview/train.csv", "splits/hyperview/val.csv", "hyperview/images/*.npz")
  return DownstreamConfig(name=name, sensor="hyperview", product="soil", bands=150, size=size,
                          regression=True, files=files)


def read_hyperview_split(path: pathlib.Path) -> list[tuple[int, np.ndarray]]:
  """``(sample_index, (P, K, Mg, pH) float32)`` rows of an official Hyperview split CSV.

  Args:
    path: ``splits/hyperview/<split>.csv`` (columns ``sample_index``, ``P``, ``K``, ``Mg``,
      ``pH`` among others).

  Returns:
    The rows in file order.

  Raises:
    ValueError: if a column is missing.
  """
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    missing = {"sample_index", *HYPERVIEW_TARGETS} - set(reader.fieldnames or ())
    if missing:
      raise ValueError(f"{path}: expected columns sample_index, P, K, Mg, pH; missing "
                       f"{sorted(missing)}")
    return [(int(float(r["sample_index"])),
             np.array([float(r[k]) for k in HYPERVIEW_TARGETS], np.float32)) for r in reader]


def downstream_config(name: str, size: int | None = None) -> DownstreamConfig:
  """The :class:`SpectralEarthDownstream` configuration ``name``, optionally with another patch
  side (dry runs on miniature files in the published layout).

  Args:
    name: a configuration name (``enmap_cdl``, ``desis_cdl``, ...).
    size: patch side; ``None`` keeps the published one.

  Returns:
    The configuration.
  """
  return _with_size(SpectralEarthDownstream.BUILDER_CONFIGS, name, size)


class SpectralEarthDownstream(tfds_lib.ManualBuilder):
  """The SpectralEarth downstream datasets (segmentation masks remapped; CORINE multi-hot).

  Listed in ``python -m experiments data list``; manual directory
  ``<manual root>/spectral_earth_downstream``.
  """

  BUILDER_CONFIGS = [
      _downstream("enmap_cdl", "enmap", "cdl", 202, DATASET_CODES["cdl"]),
      _downstream("enmap_nlcd", "enmap", "nlcd", 202, DATASET_CODES["nlcd"]),
      _downstream("enmap_bdforet", "enmap", "bdforet", 202, DATASET_CODES["bdforet"]),
      _downstream("enmap_bnetd", "enmap", "bnetd", 202, DATASET_CODES["bnetd"]),
      _downstream("enmap_corine", "enmap", "corine", 202, multilabel=True),
      _downstream("enmap_eurocrops", "enmap", "eurocrops", 202, DATASET_CODES["eurocrops"]),
      _downstream("enmap_treemap", "enmap", "treemap", 202, DATASET_CODES["treemap"]),
      _hyperview(),
      _downstream("desis_cdl", "desis", "cdl", 235, DATASET_CODES["cdl"]),
      _downstream("eo1_cdl", "eo1", "cdl", 198, DATASET_CODES["cdl"]),
      _downstream("tiny_cdl", "enmap", "cdl", 202, DATASET_CODES["cdl"], size=8),
      _downstream("smoke_cdl", "enmap", "cdl", 202, DATASET_CODES["cdl"], size=16),
      _downstream("tiny_corine", "enmap", "corine", 202, multilabel=True, size=8),
  ]
  HOMEPAGE = "https://github.com/AABNassim/spectral_earth"
  DESCRIPTION = "SpectralEarth downstream benchmarks: EnMAP/DESIS/EO-1 128x128 patches + labels."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the SpectralEarth downstream datasets from the DLR GeoService (geoservice.dlr.de) and
  arrange them as <manual_dir>/<sensor>/<tile>/<patch>.tif (images; sensor enmap, desis or eo1),
  <manual_dir>/<product>/<tile>/<patch>.tif (raw label rasters; product cdl, nlcd, bdforet, bnetd,
  corine, eurocrops or treemap) and copy the official split lists (AABNassim/spectral_earth
  data/splits) to <manual_dir>/splits/<sensor>_<product>/{train,val,test}.txt.
  Hyperview (soil P, K, Mg, pH from 150-band airborne patches; the EOTDL 'HyperView' challenge
  data): the patches as <manual_dir>/hyperview/images/<sample_index>.npz (key 'data', (150, h, w))
  and the official split CSVs as <manual_dir>/splits/hyperview/{train,val}.csv (the repository
  publishes no test.csv).
  """

  def _features(self):
    c = self.builder_config
    if c.regression:   # resized float cubes and four soil targets
      return tfds.features.FeaturesDict({
          "id": tfds.features.Text(),
          "image": tfds.features.Tensor(shape=(c.size, c.size, c.bands), dtype=np.float32),
          "label": tfds.features.Tensor(shape=(len(HYPERVIEW_TARGETS),), dtype=np.float32)})
    label = (tfds.features.Tensor(shape=(19,), dtype=np.int32) if c.multilabel else
             tfds.features.Tensor(shape=(c.size, c.size), dtype=np.int32))
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "image": tfds.features.Tensor(shape=(c.size, c.size, c.bands), dtype=np.int16),
        "label" if c.multilabel else "mask": label,
    })

  def _split_names(self):
    return SPLITS[:2] if self.builder_config.regression else SPLITS

  def _generate_examples(self, split, manual_dir):
    c = self.builder_config
    root = pathlib.Path(manual_dir)
    if c.regression:
      yield from _hyperview_examples(root, split, c)
      return
    ids = tfds_lib.read_list(root / "splits" / f"{c.sensor}_{c.product}" / f"{split}.txt")
    for sample in ids:
      image = _read_tif(root / c.sensor / sample).astype(np.int16)
      if image.shape != (c.size, c.size, c.bands):
        raise ValueError(f"{sample}: expected a ({c.bands}, {c.size}, {c.size}) image, got "
                         f"{np.moveaxis(image, -1, 0).shape}")
      raw = _read_tif(root / c.product / sample)
      raw = raw[..., 0] if raw.ndim == 3 else raw
      example = {"id": sample, "image": image}
      if c.multilabel:
        example["label"] = corine_multihot(raw)
      else:
        example["mask"] = remap_mask(raw, c.codes)
      yield sample, example


def _hyperview_examples(root: pathlib.Path, split: str, c: DownstreamConfig):
  """Hyperview examples of ``split``: each ``(150, h, w)`` patch resized to ``c.size`` (official
  ``resize_hyperspectral_tensor``) with its soil targets."""
  for index, target in read_hyperview_split(root / "splits" / "hyperview" / f"{split}.csv"):
    with np.load(root / "hyperview" / "images" / f"{index}.npz") as npz:
      cube = np.asarray(npz["data"])
    if cube.ndim != 3 or cube.shape[0] != c.bands:
      raise ValueError(f"hyperview/images/{index}.npz: expected 'data' ({c.bands}, h, w), got "
                       f"{cube.shape}")
    image = bicubic_resize(np.moveaxis(cube, 0, -1), c.size)
    yield str(index), {"id": str(index), "image": image, "label": target}


# --------------------------------------------------------------------------------------------------
# Synthetic EnMAP-like cubes from real spectra


@functools.cache
def earthlib_library(centres_nm: tuple[float, ...] | None = None):
  """earthlib's 7,261 measured spectra resampled to ``centres_nm``.

  Linear interpolation, across its water-vapour gaps. The ENVI library file is read directly;
  earthlib itself is not imported.

  Args:
    centres_nm: band centres (default: the 202 EnMAP centres).

  Returns:
    ``(spectra (n, B) in [0, 1], level2 names)``, or ``None`` when the optional ``earthlib``
    package is not installed.
  """
  spec = importlib.util.find_spec("earthlib")
  if spec is None or spec.origin is None:
    return None
  data = pathlib.Path(spec.origin).parent / "data"
  header = (data / "spectra.sli.hdr").read_text()
  field = lambda key: header.split(f"{key} =")[1].split("\n")[0].strip()
  samples, lines = int(field("samples")), int(field("lines"))
  wl = np.array(header.split("wavelength =")[1].split("{")[1].split("}")[0].split(","), float)
  values = np.fromfile(data / "spectra.sli", "<f4").reshape(lines, samples)
  centres = np.array(centres_nm if centres_nm is not None else enmap_bands()["center_nm"]) / 1000
  spectra = np.stack([np.interp(centres, wl, row) for row in values]).astype(np.float32)
  meta = list(csv.DictReader((data / "spectra.csv").read_text().splitlines()))
  return np.clip(spectra, 0.0, 1.0), tuple(r["LEVEL_2"] for r in meta)


def class_endmembers(rng: np.random.Generator, num_classes: int, per_class: int = 3,
                     bands: int = 202) -> np.ndarray:
  """Reflectance spectra in [0, 1], a few variants per class.

  Each class draws its variants from one earthlib LEVEL_2 group (soil, vegetation, impervious,
  ...) when earthlib is installed, otherwise from
  :func:`jspectral.data.synthetic.endmember_spectra`.

  Args:
    rng: NumPy generator.
    num_classes: ``K``.
    per_class: variants ``V`` per class.
    bands: ``B`` (earthlib is used only for 202).

  Returns:
    ``(K, V, B)``.
  """
  library = earthlib_library() if bands == 202 else None
  if library is not None:
    spectra, groups = library
    names = sorted(set(groups), key=lambda g: -groups.count(g))
    out = []
    for k in range(num_classes):
      members = np.flatnonzero(np.array(groups) == names[k % len(names)])
      out.append(spectra[rng.choice(members, per_class, replace=False)])
    return np.stack(out)
  import jax  # only for the fallback generator

  from jspectral.data.synthetic import endmember_spectra
  key = jax.random.key(int(rng.integers(2**31)))
  return np.asarray(endmember_spectra(key, num_classes * per_class, bands)).reshape(
      num_classes, per_class, bands)


def abundances(rng: np.random.Generator, size: int, num: int, correlation: float = 4.0,
               sharpness: float = 4.0) -> np.ndarray:
  """Sum-to-one abundances from smoothed Gaussian fields (softmax).

  Args:
    rng: NumPy generator.
    size: side ``S``.
    num: number of endmembers ``E``.
    correlation: Gaussian smoothing sigma in pixels (wrap-around).
    sharpness: softmax temperature.

  Returns:
    ``(S, S, E)``.
  """
  field = scipy.ndimage.gaussian_filter(rng.normal(size=(num, size, size)),
                                        sigma=(0, correlation, correlation), mode="wrap")
  field /= field.std(axis=(1, 2), keepdims=True) + 1e-12
  z = sharpness * field
  z = np.exp(z - z.max(axis=0))
  return (z / z.sum(axis=0)).transpose(1, 2, 0)


def synthetic_scene(rng: np.random.Generator, endmembers: np.ndarray, size: int,
                    noise: float = 0.005,
                    composition: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A linear-mixing scene from class endmembers.

  Args:
    rng: NumPy generator.
    endmembers: ``(K, V, B)`` from :func:`class_endmembers`.
    size: side ``S``.
    noise: white-noise level in reflectance.
    composition: if given, the scene's land-cover proportions are drawn from a symmetric
      Dirichlet with this concentration (small = scenes dominated by few classes), so scenes
      differ from each other as real patches do; ``None`` mixes every class evenly in every scene.

  Returns:
    ``(cube (S, S, B) int16 reflectance (scale 1e4), dominant class per pixel (S, S) int32)``.
  """
  k, v, bands = endmembers.shape
  ab = abundances(rng, size, k * v).reshape(size, size, k, v)
  if composition is not None:
    ab = ab * rng.dirichlet(np.full(k, composition))[:, None]
    ab /= ab.sum(axis=(2, 3), keepdims=True)
  cube = np.einsum("hwkv,kvb->hwb", ab, endmembers)
  cube += noise * rng.normal(size=cube.shape)
  dominant = ab.sum(-1).argmax(-1).astype(np.int32)
  return np.clip(cube * 1e4, 0, 10000).astype(np.int16), dominant


def write_pretraining_archive(root: pathlib.Path, rng: np.random.Generator, locations: int,
                              size: int, endmembers: np.ndarray, max_dates: int = 3,
                              composition: float | None = None, log_gain: float = 0.1) -> None:
  """Writes ``<root>/enmap/<loc>/<date>.tif`` ``(B, S, S)`` int16, 1..max_dates dates per location.

  Dates differ by an illumination gain ``exp(U(-log_gain, log_gain))`` and an offset of up to 100.

  Args:
    root: output root.
    rng: NumPy generator.
    locations: number of locations.
    size: side ``S``.
    endmembers: ``(K, V, B)``.
    max_dates: most dates per location.
    composition: see :func:`synthetic_scene`.
    log_gain: half-range of the log illumination gain.
  """
  for loc in range(locations):
    cube, _ = synthetic_scene(rng, endmembers, size, composition=composition)
    folder = pathlib.Path(root) / "enmap" / f"{loc:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    for date in range(int(rng.integers(1, max_dates + 1))):
      gain, offset = np.exp(rng.uniform(-log_gain, log_gain)), rng.uniform(-100, 100)
      dated = np.clip(cube * gain + offset, 0, 10000).astype(np.int16)
      tifffile.imwrite(folder / f"2023{date + 1:02d}01.tif", np.moveaxis(dated, -1, 0))


def write_downstream_dataset(root: pathlib.Path, rng: np.random.Generator,
                             config_name: str | DownstreamConfig,
                             counts: dict[str, int], endmembers: np.ndarray,
                             composition: float | None = None, log_gain: float = 0.0) -> None:
  """Writes a tiny downstream dataset in the published layout for builder config ``config_name``.

  Images, raw label rasters (listed codes, code 0 and an unlisted code; CLC codes for CORINE) and
  split lists. Each scene gets an illumination gain ``exp(U(-log_gain, log_gain))``.

  Args:
    root: output root.
    rng: NumPy generator.
    config_name: a :class:`SpectralEarthDownstream` configuration or its name.
    counts: scenes per split.
    endmembers: ``(K, V, B)``.
    composition: see :func:`synthetic_scene`.
    log_gain: half-range of the log illumination gain.
  """
  config = (downstream_config(config_name) if isinstance(config_name, str) else config_name)
  root = pathlib.Path(root)
  clc = sorted(CORINE_TO_43) + [999]
  for split, n in counts.items():
    ids = []
    for i in range(n):
      sample = f"{split[:2]}{i:05d}/{i:05d}.tif"
      cube, dominant = synthetic_scene(rng, endmembers, config.size, composition=composition)
      if log_gain:
        cube = np.clip(cube * np.exp(rng.uniform(-log_gain, log_gain)), 0, 10000).astype(np.int16)
      if config.multilabel:
        raw = np.array(clc, np.int32)[rng.choice(len(clc), endmembers.shape[0])][dominant]
      else:
        table = np.array((0, 999) + tuple(config.codes), np.int64)
        raw = table[dominant % len(table)]
      for folder, data in ((config.sensor, np.moveaxis(cube, -1, 0)), (config.product, raw)):
        (root / folder / sample).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(root / folder / sample, data)
      ids.append(sample)
    split_dir = root / "splits" / f"{config.sensor}_{config.product}"
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / f"{split}.txt").write_text("\n".join(ids) + "\n")


def write_hyperview_dataset(root: pathlib.Path, rng: np.random.Generator,
                            counts: dict[str, int], endmembers: np.ndarray) -> None:
  """Writes a tiny Hyperview set in the official layout: ``hyperview/images/<index>.npz``
  (``data`` ``(150, h, w)`` of varying sides, as the field patches are) and
  ``splits/hyperview/<split>.csv`` with the official columns (soil targets drawn at random).

  Args:
    root: output root.
    rng: NumPy generator.
    counts: patches per split (``train``, ``val``).
    endmembers: ``(K, V, 150)``.
  """
  root = pathlib.Path(root)
  (root / "hyperview" / "images").mkdir(parents=True, exist_ok=True)
  (root / "splits" / "hyperview").mkdir(parents=True, exist_ok=True)
  index = 0
  for split, n in counts.items():
    rows = ["sample_index,company,field,P,K,Mg,pH"]
    for _ in range(n):
      side = int(rng.integers(5, 8))   # field patches of varying size, smaller than 8 px
      cube, _ = synthetic_scene(rng, endmembers, side)
      np.savez(root / "hyperview" / "images" / f"{index}.npz", data=np.moveaxis(cube, -1, 0))
      rows.append(f"{index},A,{index}," + ",".join(f"{v:.6f}" for v in rng.normal(size=4)))
      index += 1
    (root / "splits" / "hyperview" / f"{split}.csv").write_text("\n".join(rows) + "\n")
