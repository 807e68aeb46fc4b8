"""Training and test pairs of the Spectral Mixup recipe, drawn from whole images on the fly.

The official code (kli8996/HSISR ``matlab_code/crop_image.m``, ``crop_image_RGB.m``) cuts every
HR image into a grid of patches offline (CAVE 64 x 64 every 32 px; Chikusei 128 / 64; DIV2K
512 / 512), degrades each patch with MATLAB ``imresize`` (bicubic, antialiased) by ``1/s`` and
back, and the loader adds the 8 dihedral variants. Here the images stay whole (read once from the
TFDS builders, decoded scenes kept in host memory) and each training example is a random HR
patch cropped on the fly and degraded the same way (:class:`PatchSampler`), so no patch list is
ever materialised (a 64/32 grid over DIV2K would be ~140 GB). The epoch length is the official
grid's (:func:`grid_count`).

Pure NumPy (host side, inside grain): resizing is MATLAB ``imresize`` in float64
(:func:`jspectral.superres.sspsr_data.imresize_host`), cast to float32 afterwards, as the MATLAB
scripts resize doubles and store singles.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from jspectral.data import tfds as tfds_lib
from jspectral.superres.sspsr_data import imresize_host

Example = dict[str, np.ndarray]
CONVERSION_FILE = "conversion_8channels.mat"
CONVERSION_KEY = "conversion_matrx"
CONVERSION_URL = ("https://github.com/kli8996/HSISR/blob/8dae2db/data/conversion_8channels.mat "
                  "(kli8996/HSISR, data/conversion_8channels.mat)")


def degrade(hr: np.ndarray, scale: int) -> Example:
  """The official pair of one HR image: ``ms = imresize(gt, 1/s)``, ``ms_bicubic = imresize(ms,
  s)``, stored as float32 (``lr``, ``lms``, ``hr``).

  ``lms`` is ``s`` times ``lr``'s size, which exceeds ``hr`` when its side is not a multiple of
  ``s`` (NTIRE's 482 rows: ``lr`` 121, ``lms`` 484); the official test crops predictions to the
  HR size. (:func:`jspectral.superres.sspsr_data.degrade` is the same for sizes divisible by s.)

  Args:
    hr: ``(H, W, C)``.
    scale: SR factor ``s``.

  Returns:
    ``{"lr": (ceil(H/s), ceil(W/s), C), "lms": (s ceil(H/s), s ceil(W/s), C), "hr": (H, W, C)}``.
  """
  lr = imresize_host(hr, 1.0 / scale).astype(np.float32)
  lms = imresize_host(lr, scale).astype(np.float32)
  return {"lr": lr, "lms": lms, "hr": np.asarray(hr, np.float32)}


def grid_count(height: int, width: int, patch: int, stride: int) -> int:
  """Patches of the official grid (``crop_image.m``: tops ``1:stride:H-p+1``).

  Args:
    height: image height.
    width: image width.
    patch: patch side.
    stride: grid step.

  Returns:
    The number of patches (0 if the image is smaller than a patch).
  """
  if height < patch or width < patch:
    return 0
  return ((height - patch) // stride + 1) * ((width - patch) // stride + 1)


@dataclasses.dataclass(frozen=True)
class PatchSampler:
  """A random HR patch of a whole image, optionally expanded to more channels, degraded.

  Attributes:
    patch: HR patch side (a multiple of ``scale``).
    scale: SR factor.
    divisor: the image is divided by it first (DIV2K 8-bit: 255).
    channels: optional ``(C, K)`` per-pixel expansion (RGB -> 8 channels).
  """

  patch: int
  scale: int
  divisor: float = 1.0
  channels: np.ndarray | None = None

  def __post_init__(self):
    if self.patch < self.scale or self.patch % self.scale:
      raise ValueError(f"patch: expected a positive multiple of the scale {self.scale}, got "
                       f"{self.patch}")

  def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Example:
    """Crops, expands and degrades.

    Args:
      image: ``(H, W, C)``, at least ``patch`` on each side.
      rng: NumPy generator (the crop position).

    Returns:
      :func:`degrade`'s ``lr`` / ``lms`` / ``hr``, float32.
    """
    height, width = image.shape[:2]
    if min(height, width) < self.patch:
      raise ValueError(f"image: {height}x{width} is smaller than the patch {self.patch}")
    top, left = rng.integers(0, height - self.patch + 1), rng.integers(0, width - self.patch + 1)
    crop = np.asarray(image[top:top + self.patch, left:left + self.patch], np.float64)
    crop = crop / self.divisor
    if self.channels is not None:
      crop = crop @ np.asarray(self.channels, np.float64)
    return degrade(crop, self.scale)


class Images(Sequence):
  """Random access to one feature of a TFDS split, each record decoded once and kept.

  Decoded images stay in host memory (CAVE's 32 cubes ~1 GB, DIV2K's 800 images ~5 GB as uint8);
  patches are cut from them on the fly.

  Args:
    source: a random-access split (``jspectral.data.tfds.data_source``).
    key: the feature holding the image (``cube``, ``hr``).
  """

  def __init__(self, source, key: str):
    self.source, self.key = source, key
    self._cache: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> np.ndarray:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} images")
    if index not in self._cache:
      self._cache[index] = np.asarray(self.source[index][self.key])
    return self._cache[index]


def conversion_path(path: str | os.PathLike = "") -> pathlib.Path:
  """Where the official 31 x 8 matrix is read: ``path``, or by default
  ``<manual root>/hsisr/conversion_8channels.mat``.

  Args:
    path: an explicit file ('' for the default).

  Returns:
    The path.
  """
  return pathlib.Path(path) if path else tfds_lib.manual_root() / "hsisr" / CONVERSION_FILE


def load_conversion_matrix(path: str | os.PathLike, bands: int, channels: int = 8) -> np.ndarray:
  """The official HSI -> 8-channel projection ``conversion_matrx`` ``(bands, 8)`` as float32.

  Args:
    path: the ``.mat`` file the official repository ships (``data/conversion_8channels.mat``).
    bands: the HSI band count it must have (31).
    channels: its column count (8 = ``n_subs``).

  Returns:
    ``(bands, channels)`` float32 (the official code casts the float64 matrix to float32).

  Raises:
    FileNotFoundError: the file is missing (the message says where to get it).
    ValueError: the matrix is not ``(bands, channels)``.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(
        f"data.conversion_file: the official HSI -> 8-channel matrix {path} is missing. Copy "
        f"{CONVERSION_URL} there (or point data.conversion_file at it); data.projection='cie' "
        f"uses the CIE/sRGB projection instead.")
  matrix = np.asarray(tfds_lib.load_mat(path, CONVERSION_KEY), np.float32)
  if matrix.shape != (bands, channels):
    raise ValueError(f"{path}: {CONVERSION_KEY!r} must be ({bands}, {channels}) for {bands}-band "
                     f"images, got {matrix.shape}")
  return matrix
