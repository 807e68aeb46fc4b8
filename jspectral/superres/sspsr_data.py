"""SSPSR's super-resolution data protocol as random-access sources for grain.

SSPSR (Jiang et al., "Learning Spatial-Spectral Prior for Super-Resolution of Hyperspectral
Imagery", IEEE TCI 2020; github.com/junjun-jiang/SSPSR ``mcodes/`` and ``data/HStrain.py``) is the
training harness ESSAformer's README points to. Its MATLAB scripts cut the training region into
``patch x patch`` HR patches every ``stride`` pixels (``1:stride:H-p+1``), degrade each with
``imresize(gt, 1/s)`` (bicubic, antialiased) and store ``gt``, ``ms`` (LR) and ``ms_bicubic``
(``imresize(ms, s)``); ``HSTrainingData`` then serves ``8 x #patches`` items, item ``i`` being
patch ``i // 8`` under dihedral transform ``i % 8`` applied alike to all three arrays.

Here nothing is written offline: :class:`PatchPairs` is a random-access index over
``(image, top, left)`` positions whose item is cut from the HR cube and degraded on the fly with
MATLAB ``imresize`` (:func:`jspectral.data.degradations.resize_matrix`, applied in NumPy float64 on
the host), so a grain pipeline (``jspectral.data.pipeline.train_batches``) shuffles and shards
positions, never a list of patches. Arrays are bands-last ``(H, W, C)`` float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jspectral.data.degradations import resize_matrix
from jspectral.data.patches import dihedral

Example = dict[str, np.ndarray]
DIHEDRAL_MODES = 8


def imresize_host(x: np.ndarray, scale: float) -> np.ndarray:
  """MATLAB ``imresize(x, scale)`` (bicubic, antialiased) of one cube in NumPy float64.

  The same matrices as :func:`jspectral.data.degradations.imresize`, applied on the host (a data
  pipeline should not dispatch device work per example).

  Args:
    x: ``(H, W, C)``.
    scale: resize factor > 0.

  Returns:
    ``(ceil(H scale), ceil(W scale), C)`` float64.
  """
  if x.ndim != 3:
    raise ValueError(f"x: expected an (H, W, C) cube, got shape {x.shape}")
  rows = resize_matrix(x.shape[0], float(scale))
  cols = resize_matrix(x.shape[1], float(scale))
  x = np.asarray(x, np.float64)
  return np.einsum("pw,hwc->hpc", cols, np.einsum("oh,hwc->owc", rows, x))


def degrade(hr: np.ndarray, scale: int, *, bicubic: bool = True) -> Example:
  """SSPSR ``crop_image.m`` for one HR patch: ``ms = single(imresize(gt, 1/s))`` and
  ``ms_bicubic = single(imresize(ms, s))``.

  Args:
    hr: HR cube ``(H, W, C)`` with ``H`` and ``W`` divisible by ``scale``.
    scale: SR factor ``s``.
    bicubic: also return ``lms`` (the bicubic baseline; the LR-only ESSAformer trains without it).

  Returns:
    ``{"lr": (H/s, W/s, C), "hr": (H, W, C)}`` float32, plus ``"lms": (H, W, C)`` with ``bicubic``.
  """
  if hr.shape[0] % scale or hr.shape[1] % scale:
    raise ValueError(f"hr: size {hr.shape[:2]} is not divisible by the scale {scale}")
  lr = imresize_host(hr, 1.0 / scale).astype(np.float32)
  out = {"lr": lr, "hr": np.asarray(hr, np.float32)}
  if bicubic:
    out["lms"] = imresize_host(lr, scale).astype(np.float32)
  return out


def grid_positions(height: int, width: int, patch: int, stride: int) -> np.ndarray:
  """0-based top-left corners of SSPSR's patch grid (MATLAB ``1:stride:(H - p + 1)``).

  Args:
    height: image height.
    width: image width.
    patch: patch side.
    stride: step between patches.

  Returns:
    ``(n, 2)`` int64 ``(top, left)`` in row-major order (rows outer, as ``crop_image.m``).
  """
  if patch > min(height, width):
    raise ValueError(f"patch: {patch} is larger than the image ({height}x{width})")
  if stride < 1:
    raise ValueError(f"stride: expected >= 1, got {stride}")
  tops, lefts = np.arange(0, height - patch + 1, stride), np.arange(0, width - patch + 1, stride)
  return np.stack(np.meshgrid(tops, lefts, indexing="ij"), -1).reshape(-1, 2).astype(np.int64)


def image_positions(images: Sequence[np.ndarray], patch: int, stride: int) -> np.ndarray:
  """The grid of every image, tagged with the image index.

  Args:
    images: cubes ``(H_i, W_i, C)``.
    patch: patch side.
    stride: step between patches.

  Returns:
    ``(n, 3)`` int64 ``(image, top, left)``.
  """
  grids = [np.concatenate([np.full((len(g), 1), i), g], axis=1)
           for i, image in enumerate(images)
           for g in [grid_positions(image.shape[0], image.shape[1], patch, stride)]]
  return np.concatenate(grids).astype(np.int64)


def hold_out(positions: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Moves a seeded ``fraction`` of the positions to a validation set (SSPSR moves 10 % of its
  patch files to ``evals/`` by hand).

  Args:
    positions: ``(n, 3)`` positions.
    fraction: share held out, in [0, 1).
    seed: permutation seed.

  Returns:
    ``(train, validation)`` positions, each in their original order.
  """
  if not 0 <= fraction < 1:
    raise ValueError(f"fraction: expected a share in [0, 1), got {fraction}")
  held = np.zeros(len(positions), bool)
  held[np.random.default_rng(seed).permutation(len(positions))[:round(fraction * len(positions))]] \
      = True
  return positions[~held], positions[held]


def top_row_tiles(cube: np.ndarray, size: int) -> tuple[list[np.ndarray], np.ndarray]:
  """``generate_Chikusei.m``'s split: the top ``size`` rows cut into ``floor(W / size)``
  non-overlapping ``size x size`` test images; the rows below are the training region.

  Args:
    cube: ``(H, W, C)`` with ``H > size``.
    size: test image side.

  Returns:
    ``(test images, training region (H - size, W, C))``.
  """
  if not 0 < size < cube.shape[0] or size > cube.shape[1]:
    raise ValueError(f"size: test tiles of {size} do not fit the cube {cube.shape[:2]}")
  tests = [cube[:size, j * size:(j + 1) * size] for j in range(cube.shape[1] // size)]
  return tests, cube[size:]


def mosaic(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
  """Re-assembles equal row-major tiles into one image (the Chikusei builder's training tiles).

  Args:
    tiles: ``rows * columns`` cubes ``(t, t, C)`` in row-major order.
    columns: tiles per row.

  Returns:
    ``(rows t, columns t, C)``.
  """
  if not tiles or len(tiles) % columns:
    raise ValueError(f"tiles: {len(tiles)} tiles do not fill rows of {columns}")
  rows = [np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1)
          for r in range(len(tiles) // columns)]
  return np.concatenate(rows, axis=0)


@dataclasses.dataclass(frozen=True)
class PatchPairs:
  """Random-access SSPSR examples: HR patches cut at ``positions`` and degraded on the fly.

  Attributes:
    images: HR cubes ``(H_i, W_i, C)`` float32.
    positions: ``(n, 3)`` ``(image, top, left)``.
    scale: SR factor.
    patch: HR patch side (divisible by ``scale``).
    dihedral: serve ``8 n`` items, item ``i`` = position ``i // 8`` under dihedral mode ``i % 8``
      (``HSTrainingData(augment=True)``); otherwise ``n`` untransformed items.
    bicubic: include ``lms`` in each item.
  """

  images: Sequence[np.ndarray]
  positions: np.ndarray
  scale: int
  patch: int
  dihedral: bool = False
  bicubic: bool = False

  def __post_init__(self):
    if self.patch % self.scale:
      raise ValueError(f"patch: {self.patch} is not divisible by the scale {self.scale}")
    positions = np.asarray(self.positions)
    if positions.ndim != 2 or positions.shape[1] != 3:
      raise ValueError(f"positions: expected (n, 3) (image, top, left), got {positions.shape}")

  @property
  def factor(self) -> int:
    return DIHEDRAL_MODES if self.dihedral else 1

  def __len__(self) -> int:
    return len(self.positions) * self.factor

  def __getitem__(self, index: int) -> Example:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} examples")
    image, top, left = (int(v) for v in self.positions[index // self.factor])
    hr = self.images[image][top:top + self.patch, left:left + self.patch]
    example = degrade(hr, self.scale, bicubic=self.bicubic)
    mode = index % self.factor
    return {k: np.ascontiguousarray(dihedral(v, mode)) for k, v in example.items()}


def whole_images(images: Sequence[np.ndarray], scale: int) -> PatchPairs:
  """Test images: each (equal-sized) cube whole, with its LR and bicubic baseline.

  Args:
    images: HR cubes of one size ``(H, H, C)``.
    scale: SR factor.

  Returns:
    A :class:`PatchPairs` of ``len(images)`` items ``{"lr", "lms", "hr"}``.
  """
  sizes = {image.shape[:2] for image in images}
  if len(sizes) != 1 or len({*next(iter(sizes))}) != 1:
    raise ValueError(f"images: expected square test images of one size, got sizes {sizes}")
  positions = np.asarray([(i, 0, 0) for i in range(len(images))], np.int64)
  return PatchPairs(images, positions, scale, images[0].shape[0], bicubic=True)
