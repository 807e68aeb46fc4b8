"""TFDS plumbing for the real datasets: manual-download builders written as array_record.

The real hyperspectral datasets cannot be downloaded by a script, so every builder is a
``tfds.core.GeneratorBasedBuilder`` with ``MANUAL_DOWNLOAD_INSTRUCTIONS`` that reads the files
exactly as the publishers distribute them from a manual directory, writes ``array_record`` and is
read back with ``as_data_source`` (random access, no TensorFlow) into grain.

A builder subclasses :class:`ManualBuilder` and provides

* ``BUILDER_CONFIGS`` of :class:`ManualConfig` (or a subclass): ``files`` lists the names (or glob
  patterns) that must be in the manual directory;
* ``_features()``: the ``tfds.features.FeaturesDict``;
* ``_split_names()`` and ``_generate_examples(split, manual_dir)`` yielding ``(key, example)``.

Manual directories: ``<root>/<builder name>`` with ``root`` = ``$JSPECTRAL_MANUAL_DIR`` or TFDS's
default ``~/tensorflow_datasets/downloads/manual``. Missing files raise :class:`FileNotFoundError`
naming the directory and every expected file; a file without the expected variable raises
``ValueError`` naming the file and the key.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import pathlib
from collections.abc import Sequence

import grain
import h5py
import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from jspectral.data import patches

Example = dict[str, np.ndarray]


def manual_root() -> pathlib.Path:
  """The root of the manual directories.

  Returns:
    ``$JSPECTRAL_MANUAL_DIR`` or ``~/tensorflow_datasets/downloads/manual``.
  """
  default = pathlib.Path("~/tensorflow_datasets/downloads/manual")
  return pathlib.Path(os.environ.get("JSPECTRAL_MANUAL_DIR", default)).expanduser()


@dataclasses.dataclass(eq=False)
class ManualConfig(tfds.core.BuilderConfig):
  """A builder configuration whose ``files`` must be present in the manual directory.

  Attributes:
    files: names or glob patterns expected in ``<manual root>/<builder name>``.
  """

  files: tuple[str, ...] = ()


def missing_files(manual_dir: pathlib.Path, patterns: Sequence[str]) -> list[str]:
  """The entries of ``patterns`` (names or globs) that match nothing in ``manual_dir``.

  Args:
    manual_dir: the directory to look in.
    patterns: names or glob patterns.

  Returns:
    The unmatched patterns, in order.
  """
  manual_dir = pathlib.Path(manual_dir)
  return [p for p in patterns if not (manual_dir.is_dir() and any(manual_dir.glob(p)))]


def check_manual_files(name: str, manual_dir: pathlib.Path, patterns: Sequence[str],
                       instructions: str) -> None:
  """Raises ``FileNotFoundError`` naming ``manual_dir`` and every missing expected file.

  Args:
    name: the builder name for the message.
    manual_dir: the directory to look in.
    patterns: names or glob patterns expected there.
    instructions: the builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS``, appended to the message.
  """
  missing = missing_files(manual_dir, patterns)
  if missing:
    raise FileNotFoundError(
        f"{name}: missing files in the manual directory {manual_dir}: {', '.join(missing)} "
        f"(expected: {', '.join(patterns)}).\n{instructions.strip()}")


class ManualBuilder(tfds.core.GeneratorBasedBuilder):
  """Base of jspectral's builders: manual files in, array_record out.

  Subclasses provide ``BUILDER_CONFIGS``, ``_features()``, ``_split_names()`` and
  ``_generate_examples(split, manual_dir)`` (module docstring).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = ""
  HOMEPAGE = ""
  DESCRIPTION = ""

  def __init__(self, *, file_format: str = "array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  @abc.abstractmethod
  def _features(self) -> tfds.features.FeaturesDict:
    """The example structure."""

  @abc.abstractmethod
  def _split_names(self) -> tuple[str, ...]:
    """The splits this configuration writes."""

  @abc.abstractmethod
  def _generate_examples(self, split: str, manual_dir: pathlib.Path):
    """Yields ``(unique key, example)`` for ``split`` from the files in ``manual_dir``."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=self._features(),
                                 description=self.DESCRIPTION, homepage=self.HOMEPAGE)

  def expected_files(self) -> tuple[str, ...]:
    """The file names or patterns the current configuration needs.

    Returns:
      ``builder_config.files`` (empty without a configuration).
    """
    return tuple(self.builder_config.files) if self.builder_config else ()

  def _split_generators(self, dl_manager):
    try:
      manual_dir = pathlib.Path(dl_manager.manual_dir)
    except AssertionError as error:
      raise FileNotFoundError(f"{self.name}: {error}\nExpected files: "
                              f"{', '.join(self.expected_files())}") from error
    check_manual_files(self.name, manual_dir, self.expected_files(),
                       self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {split: self._generate_examples(split, manual_dir) for split in self._split_names()}


def prepare(builder_cls: type[ManualBuilder], *, config: str | ManualConfig | None = None,
            manual_dir: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None) -> ManualBuilder:
  """Builds (once) and returns a builder.

  Args:
    builder_cls: a :class:`ManualBuilder` subclass.
    config: configuration name or object (default: the first).
    manual_dir: where the publisher's files are; defaults to ``manual_root()/<name>``.
    data_dir: TFDS data directory for the prepared records; defaults to ``$TFDS_DATA_DIR`` read
      now (TFDS itself reads it once, at import) or TFDS's default.

  Returns:
    The prepared builder.
  """
  builder = builder_cls(config=config, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"))
  manual_dir = pathlib.Path(manual_dir) if manual_dir else manual_root() / builder.name
  check_manual_files(builder.name, manual_dir, builder.expected_files(),
                     builder.MANUAL_DOWNLOAD_INSTRUCTIONS)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


def data_source(builder: ManualBuilder, split: str) -> grain.MapDataset:
  """A split as a random-access ``grain.MapDataset`` (``as_data_source``: no TensorFlow).

  Args:
    builder: a prepared builder.
    split: split name.

  Returns:
    A ``grain.MapDataset`` of example dicts.
  """
  return grain.MapDataset.source(builder.as_data_source(split))


# ------------------------------------------------------------------------------------------------
# Readers of the publishers' file formats.

def load_mat(path: str | os.PathLike, key: str) -> np.ndarray:
  """Variable ``key`` of a MATLAB ``.mat`` file in MATLAB's axis order.

  MATLAB v5/v7 files are read with ``scipy.io.loadmat``; v7.3 files (HDF5) with h5py, whose arrays
  come out with the axes reversed, so they are transposed back (a MATLAB ``(H, W, C)`` variable is
  ``(H, W, C)`` either way).

  Args:
    path: the ``.mat`` file.
    key: the variable name.

  Returns:
    The variable as a NumPy array.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: file not found")
  if h5py.is_hdf5(path):
    with h5py.File(path, "r") as f:
      if key not in f:
        raise ValueError(f"{path}: no variable {key!r} (found: {sorted(f.keys())})")
      return np.asarray(f[key]).T
  try:
    contents = scipy.io.loadmat(path, variable_names=[key])
  except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as error:
    raise ValueError(f"{path}: not a readable MATLAB .mat file ({error})") from error
  if key not in contents:
    names = [n for n, *_ in scipy.io.whosmat(path)]
    raise ValueError(f"{path}: no variable {key!r} (found: {names})")
  return contents[key]


def mat_path(manual_dir: pathlib.Path, name: str) -> pathlib.Path:
  """``manual_dir / name`` with a ``.mat`` suffix added when the list entry has none.

  Args:
    manual_dir: the manual directory.
    name: an entry of a split list.

  Returns:
    The file path.
  """
  return manual_dir / (name if name.endswith(".mat") else f"{name}.mat")


def read_list(path: str | os.PathLike) -> list[str]:
  """Non-empty, stripped lines of a split list file (e.g. QRNN3D's ``ICVL_train.txt``).

  Args:
    path: the list file.

  Returns:
    The names, in file order.
  """
  return [line.strip() for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def minmax(x: np.ndarray) -> np.ndarray:
  """``(x - min) / (max - min)`` over the whole array (the papers' global min-max).

  Args:
    x: any shape, not constant.

  Returns:
    float32, same shape, in [0, 1].
  """
  x = np.asarray(x, np.float64)
  low, high = x.min(), x.max()
  if high <= low:
    raise ValueError(f"x: constant array (min = max = {low}) cannot be min-max normalised")
  return ((x - low) / (high - low)).astype(np.float32)


def center_crop(x: np.ndarray, height: int, width: int) -> np.ndarray:
  """Central ``height x width`` window; top row ``H // 2 - height // 2``.

  Args:
    x: ``(H, W, ...)``.
    height: crop height.
    width: crop width.

  Returns:
    ``(height, width, ...)``.
  """
  if x.shape[0] < height or x.shape[1] < width:
    raise ValueError(f"x: image {x.shape[:2]} is smaller than the crop {(height, width)}")
  top, left = x.shape[0] // 2 - height // 2, x.shape[1] // 2 - width // 2
  return x[top:top + height, left:left + width]


def cube_feature(bands: int | None, dtype=np.float32) -> tfds.features.Tensor:
  """A bands-last tensor feature of any spatial size (zlib-compressed).

  Args:
    bands: band count ``C`` (``None``: any).
    dtype: element type.

  Returns:
    A ``tfds.features.Tensor`` of shape ``(None, None, C)``.
  """
  return tfds.features.Tensor(shape=(None, None, bands), dtype=dtype, encoding="zlib")


# ------------------------------------------------------------------------------------------------
# Labelled scenes (classification): one example holding the whole cube and its label map.

@dataclasses.dataclass(eq=False)
class SceneConfig(ManualConfig):
  """A ``.mat`` image + ground-truth pair: file names, variable names, band and class counts.

  Attributes:
    image_file: the cube's ``.mat`` file.
    image_key: the cube's variable name.
    gt_file: the label map's ``.mat`` file.
    gt_key: the label map's variable name.
    bands: band count ``C``.
    classes: class names, label ``k`` = ``classes[k - 1]``.
  """

  image_file: str = ""
  image_key: str = ""
  gt_file: str = ""
  gt_key: str = ""
  bands: int = 0
  classes: tuple[str, ...] = ()


class SceneBuilder(ManualBuilder):
  """Split ``"scene"``: one example ``{"name", "cube" (H, W, C) float32, "labels" (H, W) int32}``.

  Values are stored as distributed (no normalisation: the classification papers normalise after
  their own PCA / per-patch standardisation); label 0 = unlabelled, 1..K = the classes in
  ``config.classes``. Labelled-pixel train/test splits are drawn afterwards with
  ``jspectral.data.patches.stratified_split`` (fixed seed).
  """

  def _features(self):
    config = self.builder_config
    return tfds.features.FeaturesDict({
        "name": tfds.features.Text(),
        "cube": cube_feature(config.bands),
        "labels": tfds.features.Tensor(shape=(None, None), dtype=np.int32, encoding="zlib"),
    })

  def _split_names(self):
    return ("scene",)

  def _generate_examples(self, split, manual_dir):
    config = self.builder_config
    cube = load_mat(manual_dir / config.image_file, config.image_key)
    labels = load_mat(manual_dir / config.gt_file, config.gt_key)
    check_scene(manual_dir / config.image_file, cube, labels, config.bands, len(config.classes))
    yield config.name, {"name": config.name, "cube": np.asarray(cube, np.float32),
                        "labels": np.asarray(labels, np.int32)}


def check_scene(path: pathlib.Path, cube: np.ndarray, labels: np.ndarray, bands: int,
                num_classes: int) -> None:
  """Validates a scene against its documented band count, size and label range.

  Args:
    path: the image file, for messages.
    cube: ``(H, W, bands)``.
    labels: ``(H, W)`` in ``0..num_classes``.
    bands: the documented band count.
    num_classes: the documented class count.

  Raises:
    ValueError: wrong band count or size, labels outside ``0..num_classes`` or fractional, NaN/Inf
      pixels (the message names the file).
  """
  if cube.ndim != 3 or cube.shape[-1] != bands:
    raise ValueError(f"{path}: expected a cube (H, W, {bands}), got shape {cube.shape}")
  if labels.shape != cube.shape[:2]:
    raise ValueError(f"{path}: ground truth shape {labels.shape} does not match the image "
                     f"{cube.shape[:2]}")
  if labels.min() < 0 or labels.max() > num_classes:
    raise ValueError(f"{path}: labels must lie in 0..{num_classes}, got "
                     f"{labels.min()}..{labels.max()}")
  if not np.array_equal(labels, np.round(labels)):
    raise ValueError(f"{path}: ground truth labels must be whole numbers, got fractional values")
  if not np.isfinite(cube).all():
    raise ValueError(f"{path}: the image holds NaN or Inf pixels "
                     f"({int(np.sum(~np.isfinite(cube)))} values); the published file is finite")


# ------------------------------------------------------------------------------------------------
# Image sets (denoising / super-resolution): named images, list-defined splits, one cube each.

@dataclasses.dataclass(eq=False)
class ImageSetConfig(ManualConfig):
  """Images named by split lists.

  Attributes:
    splits: ``(split, source)`` pairs; ``source`` is a list file in the manual directory or a tuple
      of image names.
    bands: band count of every cube.
    normalisation: ``"minmax"`` (global min-max), ``"max"`` (divide by the global max) or
      ``"none"``; then multiplied by ``scale``.
    scale: multiplier applied after the normalisation.
    crop: central ``crop x crop`` window (``None``: whole image).
    rot90: quarter turns (``np.rot90`` on the spatial axes) before cropping.
    normalise_after_crop: normalise the crop instead of the whole image.
    patch_size: when > 0, each prepared cube is cut into training patches
      ``{"clean": (patch_size, patch_size, bands)}`` with ``patch_strides`` and ``patch_scales``
      (:func:`jspectral.data.patches.multiscale_patches`) instead of being stored whole.
    patch_strides: one grid stride per scale.
    patch_scales: zoom factors.
  """

  splits: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
  bands: int = 31
  normalisation: str = "minmax"
  scale: float = 1.0
  crop: int | None = None
  rot90: int = 0
  normalise_after_crop: bool = False
  patch_size: int = 0
  patch_strides: tuple[int, ...] = ()
  patch_scales: tuple[float, ...] = ()


def normalise(x: np.ndarray, normalisation: str, scale: float = 1.0) -> np.ndarray:
  """Applies an :class:`ImageSetConfig` normalisation.

  Args:
    x: any shape.
    normalisation: ``"minmax"``, ``"max"`` or ``"none"``.
    scale: multiplier applied afterwards.

  Returns:
    float32, same shape.
  """
  if normalisation == "minmax":
    x = minmax(x)
  elif normalisation == "max":
    x = np.asarray(x, np.float64) / np.max(x)
  elif normalisation != "none":
    raise ValueError(f"normalisation: expected 'minmax', 'max' or 'none', got {normalisation!r}")
  return (np.asarray(x, np.float64) * scale).astype(np.float32)


class ImageSetBuilder(ManualBuilder):
  """Splits of whole cubes ``{"name", "cube" (H, W, C) float32}`` named by lists (or of their
  training patches ``{"clean"}`` when the configuration has a ``patch_size``)."""

  @abc.abstractmethod
  def _read_image(self, manual_dir: pathlib.Path, name: str) -> np.ndarray:
    """The raw ``(H, W, C)`` cube of image ``name`` in publisher units."""

  def _features(self):
    config = self.builder_config
    if config.patch_size:
      return tfds.features.FeaturesDict({"clean": tfds.features.Tensor(
          shape=(config.patch_size, config.patch_size, config.bands), dtype=np.float32)})
    return tfds.features.FeaturesDict({"name": tfds.features.Text(),
                                       "cube": cube_feature(config.bands)})

  def _split_names(self):
    return tuple(split for split, _ in self.builder_config.splits)

  def split_members(self, manual_dir: pathlib.Path, split: str) -> list[str]:
    """The image names of ``split``.

    Args:
      manual_dir: the manual directory (for list files).
      split: split name.

    Returns:
      The names, from the config's tuple or the list file.
    """
    source = dict(self.builder_config.splits)[split]
    return list(source) if isinstance(source, tuple) else read_list(manual_dir / source)

  def _prepare_cube(self, cube: np.ndarray) -> np.ndarray:
    config = self.builder_config
    if cube.ndim != 3 or cube.shape[-1] != config.bands:
      raise ValueError(f"expected a cube (H, W, {config.bands}), got shape {cube.shape}")
    cube = np.rot90(cube, config.rot90, axes=(0, 1))
    if not config.normalise_after_crop:
      cube = normalise(cube, config.normalisation, config.scale)
    if config.crop:
      cube = center_crop(cube, config.crop, config.crop)
    if config.normalise_after_crop:
      cube = normalise(cube, config.normalisation, config.scale)
    return np.ascontiguousarray(cube, np.float32)

  def _generate_examples(self, split, manual_dir):
    for name in self.split_members(manual_dir, split):
      raw = self._read_image(manual_dir, name)
      try:
        cube = self._prepare_cube(raw)
      except ValueError as error:
        raise ValueError(f"{self.name} image {name!r} in {manual_dir}: {error}") from error
      config = self.builder_config
      if not config.patch_size:
        yield name, {"name": name, "cube": cube}
        continue
      for s, i, patch in patches.multiscale_patches(cube, config.patch_size, config.patch_strides,
                                                    config.patch_scales):
        yield f"{name}/{s}/{i}", {"clean": patch}
