"""Patch samplers: training crops with dihedral augmentation, full-image test crops, and
classification patches centred on labelled pixels with fixed-seed stratified splits.

The training-side functions are NumPy ``(example, np.random.Generator) -> example`` transforms for
``jspectral.data.pipeline.train_batches(augment=...)`` (grain), so augmentation is replayable from
``(seed, step)``. Arrays are bands-last ``(H, W, C)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.ndimage

Example = dict[str, np.ndarray]


def dihedral(x: np.ndarray, mode: int) -> np.ndarray:
  """One of the 8 symmetries of the square on the spatial axes ``(0, 1)``.

  Modes 0-3 rotate by ``mode`` quarter turns; modes 4-7 flip rows first (``x[::-1]``), then
  rotate by ``mode - 4`` quarter turns (the 8 modes of QRNN3D/SSPSR ``data_augmentation``, in a
  different numbering).

  Args:
    x: ``(H, W, ...)``.
    mode: 0..7.

  Returns:
    A view, ``(H, W, ...)`` or ``(W, H, ...)``.
  """
  if not 0 <= mode < 8:
    raise ValueError(f"mode: expected 0..7, got {mode}")
  x = x[::-1] if mode >= 4 else x
  return np.rot90(x, mode % 4, axes=(0, 1))


def augment_dihedral(example: Example, rng: np.random.Generator,
                     keys: Sequence[str] = ("clean",), band_reverse: bool = False) -> Example:
  """The same random dihedral mode for every ``keys`` entry (a grain ``random_map`` transform).

  Args:
    example: dict of ``(H, W, C)`` arrays.
    rng: NumPy generator.
    keys: the entries to transform.
    band_reverse: also reverse the band order with probability 1/2 (QRNN3D's ICVL patch
      augmentation).

  Returns:
    A new dict with contiguous transformed entries.
  """
  mode = int(rng.integers(0, 8))
  flip_bands = band_reverse and bool(rng.integers(0, 2))
  out = dict(example)
  for key in keys:
    v = dihedral(example[key], mode)
    out[key] = np.ascontiguousarray(v[..., ::-1] if flip_bands else v)
  return out


def qrnn3d_augment(example: Example, rng: np.random.Generator,
                   keys: Sequence[str] = ("clean",)) -> Example:
  """QRNN3D's training-patch augmentation (the one baked into the ICVL LMDB of HSDT and MAN).

  ``create_lmdb_train(augment=True)`` -> ``data_augmentation`` (Vandermode/QRNN3D
  ``utility/util.py``): one of the 8 dihedral symmetries, uniformly, then the band order reversed
  with probability 1/2, so each of the 16 results has probability 1/16.

  Args:
    example: dict of ``(H, W, C)`` arrays.
    rng: NumPy generator.
    keys: the entries to transform.

  Returns:
    A new dict with contiguous transformed entries.
  """
  return augment_dihedral(example, rng, keys, band_reverse=True)


def multiscale_patches(image: np.ndarray, patch: int, strides: Sequence[int],
                       scales: Sequence[float]):
  """Grid patches of an image at several zoom factors (QRNN3D's ``create_lmdb_train``).

  Args:
    image: ``(H, W, C)``.
    patch: patch side.
    strides: one grid stride per scale.
    scales: zoom factors of the spatial axes (cubic ``scipy.ndimage.zoom``; 1 = as is).

  Yields:
    ``(scale index, patch index, patch (patch, patch, C) float32)``, row-major per scale.
  """
  if len(strides) != len(scales):
    raise ValueError(f"strides, scales: expected equal lengths, got {strides} and {scales}")
  for s, (stride, scale) in enumerate(zip(strides, scales, strict=True)):
    zoomed = image if scale == 1 else scipy.ndimage.zoom(image, (scale, scale, 1), order=3)
    rows = range(0, zoomed.shape[0] - patch + 1, stride)
    cols = range(0, zoomed.shape[1] - patch + 1, stride)
    for i, (top, left) in enumerate((r, c) for r in rows for c in cols):
      yield s, i, np.ascontiguousarray(zoomed[top:top + patch, left:left + patch], np.float32)


def random_patch(example: Example, rng: np.random.Generator, size: int,
                 keys: Sequence[str] = ("cube",), scales: Sequence[int] | None = None) -> Example:
  """Aligned random crops at several scales.

  ``keys[i]`` gets a ``size * scales[i]`` window at ``scales[i]`` times the same position (e.g. LR
  ``ms`` with scale 1 and HR ``gt`` with scale 4).

  Args:
    example: dict of ``(H_i, W_i, ...)`` arrays.
    rng: NumPy generator.
    size: patch side at scale 1.
    keys: the entries to crop.
    scales: one integer scale per key (default all 1).

  Returns:
    A new dict with ``(size * s, size * s, ...)`` entries.
  """
  scales = [1] * len(keys) if scales is None else list(scales)
  if len(scales) != len(keys):
    raise ValueError(f"scales: expected one per key ({len(keys)}), got {len(scales)}")
  height, width = (example[keys[0]].shape[0] // scales[0], example[keys[0]].shape[1] // scales[0])
  if size > min(height, width):
    raise ValueError(f"size: patch {size} is larger than the image ({height}x{width})")
  top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
  out = dict(example)
  for key, s in zip(keys, scales, strict=True):
    out[key] = example[key][top * s:(top + size) * s, left * s:(left + size) * s]
  return out


def grid_patches(cube: np.ndarray, size: int, stride: int) -> np.ndarray:
  """All ``size x size`` windows at ``stride`` (top-left first, row-major).

  With ``stride == size`` this tiles the image into non-overlapping test crops.

  Args:
    cube: ``(H, W, C)``.
    size: window side.
    stride: step between windows.

  Returns:
    ``(N, size, size, C)``.
  """
  if size > min(cube.shape[:2]) or stride < 1:
    raise ValueError(f"size, stride: need size <= {min(cube.shape[:2])} and stride >= 1, got "
                     f"{size}, {stride}")
  rows = range(0, cube.shape[0] - size + 1, stride)
  cols = range(0, cube.shape[1] - size + 1, stride)
  return np.stack([cube[r:r + size, c:c + size] for r in rows for c in cols])


def crop_to_multiple(cube: np.ndarray, multiple: int) -> np.ndarray:
  """The central crop whose height and width are multiples of ``multiple``.

  For whole-image tests of U-shaped networks or scale-``s`` super-resolution.

  Args:
    cube: ``(H, W, ...)``.
    multiple: the required divisor.

  Returns:
    ``(H', W', ...)`` with ``H' = H - H % multiple``, ``W' = W - W % multiple``.
  """
  height, width = (cube.shape[0] // multiple) * multiple, (cube.shape[1] // multiple) * multiple
  if height == 0 or width == 0:
    raise ValueError(f"cube: image {cube.shape[:2]} is smaller than multiple {multiple}")
  top, left = (cube.shape[0] - height) // 2, (cube.shape[1] - width) // 2
  return cube[top:top + height, left:left + width]


# ------------------------------------------------------------------------------------------------
# Classification: labelled pixels, stratified splits, centred patches.

def labelled_pixels(labels: np.ndarray) -> np.ndarray:
  """Row/column of every pixel with label > 0, in row-major scan order.

  Args:
    labels: ``(H, W)`` label map, 0 = unlabelled.

  Returns:
    ``(N, 2)`` int positions.
  """
  if labels.ndim != 2:
    raise ValueError(f"labels: expected a (H, W) label map, got shape {labels.shape}")
  return np.argwhere(labels > 0)


def stratified_split(labels: np.ndarray, *, seed: int, train_per_class: int | None = None,
                     train_fraction: float | None = None, min_train: int = 1
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Fixed-seed stratified split of the labelled pixels into ``(train, test)`` positions.

  Each class's pixels are shuffled with ``np.random.default_rng(seed)`` in class order; the result
  is deterministic for a given seed (not sklearn's ``train_test_split`` stream).

  Args:
    labels: ``(H, W)`` label map, 0 = unlabelled.
    seed: shuffling seed.
    train_per_class: a count per class; a class with no more pixels than the count keeps half of
      them for testing. Exactly one of this and ``train_fraction`` is given.
    train_fraction: ``round(fraction * n_class)`` training pixels per class, at least
      ``min_train``.
    min_train: lower bound with ``train_fraction``.

  Returns:
    ``(train, test)``, ``(N, 2)`` row/column arrays in scan order.
  """
  if (train_per_class is None) == (train_fraction is None):
    raise ValueError("train_per_class, train_fraction: give exactly one")
  if train_fraction is not None and not 0 < train_fraction < 1:
    raise ValueError(f"train_fraction: expected a value in (0, 1), got {train_fraction}")
  positions = labelled_pixels(labels)
  classes = labels[positions[:, 0], positions[:, 1]]
  rng = np.random.default_rng(seed)
  train = np.zeros(len(positions), bool)
  for c in np.unique(classes):
    members = np.flatnonzero(classes == c)
    if train_fraction is not None:
      count = max(min_train, round(train_fraction * len(members)))
    else:
      count = train_per_class if len(members) > train_per_class else len(members) // 2
    count = min(count, len(members) - 1)
    train[rng.permutation(members)[:count]] = True
  return positions[train], positions[~train]


def approximate_mode(class_counts: np.ndarray, n_draws: int,
                     rng: np.random.RandomState) -> np.ndarray:
  """scikit-learn's per-class allocation of ``n_draws`` draws (``utils.extmath._approximate_mode``).

  Each class gets ``floor(n_draws * count / total)``; the draws left over go to the classes with
  the largest fractional parts, ties between equal fractions broken by ``rng.choice`` without
  replacement (so the ``rng`` stream advances exactly as scikit-learn's does).

  Args:
    class_counts: ``(K,)`` non-negative integer counts.
    n_draws: how many to allocate, at most ``class_counts.sum()``.
    rng: a legacy ``np.random.RandomState`` (scikit-learn's ``check_random_state``).

  Returns:
    ``(K,)`` int counts summing to ``n_draws``.
  """
  continuous = class_counts / class_counts.sum() * n_draws
  floored = np.floor(continuous)
  need = int(n_draws - floored.sum())
  remainder = continuous - floored
  for value in np.sort(np.unique(remainder))[::-1]:
    if need <= 0:
      break
    (ties,) = np.where(remainder == value)
    chosen = rng.choice(ties, size=min(len(ties), need), replace=False)
    floored[chosen] += 1
    need -= len(chosen)
  return floored.astype(int)


def sklearn_stratified_split(classes: np.ndarray, *, test_size: float, random_state: int
                             ) -> tuple[np.ndarray, np.ndarray]:
  """The indices of scikit-learn's ``train_test_split(..., test_size=, stratify=classes,
  random_state=)``, reimplemented with NumPy (``StratifiedShuffleSplit``, one split).

  ``n_test = ceil(test_size * n)``, ``n_train = n - n_test``; per-class train counts from
  :func:`approximate_mode`, then test counts from the remaining pixels; each class's members
  (stable class order) are permuted and cut; both index lists are permuted at the end. All draws
  come from one ``np.random.RandomState(random_state)`` in scikit-learn's order, so the indices
  (and their order) equal scikit-learn's.

  Args:
    classes: ``(N,)`` class of each sample (any sortable values).
    test_size: test fraction in ``(0, 1)``.
    random_state: seed (the official LoLA-SpecViT code uses 345).

  Returns:
    ``(train, test)`` integer index arrays into ``classes``, in scikit-learn's order.

  Raises:
    ValueError: if ``test_size`` is outside ``(0, 1)``, a class has fewer than 2 members, or
      either part would have fewer samples than there are classes (scikit-learn's checks).
  """
  if not 0 < test_size < 1:
    raise ValueError(f"test_size: expected a fraction in (0, 1), got {test_size}")
  classes = np.asarray(classes)
  n = len(classes)
  n_test = math.ceil(test_size * n)
  n_train = n - n_test
  _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
  if counts.min() < 2:
    raise ValueError("classes: every class needs at least 2 members for a stratified split, "
                     f"got counts {counts.tolist()}")
  if min(n_train, n_test) < len(counts):
    raise ValueError(f"test_size: {test_size} leaves {n_train} train / {n_test} test samples, "
                     f"fewer than the {len(counts)} classes")
  members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
  rng = np.random.RandomState(random_state)
  n_i = approximate_mode(counts, n_train, rng)
  t_i = approximate_mode(counts - n_i, n_test, rng)
  train, test = [], []
  for idx, count, k, t in zip(members, counts, n_i, t_i, strict=True):
    shuffled = idx.take(rng.permutation(count), mode="clip")
    train.extend(shuffled[:k])
    test.extend(shuffled[k:k + t])
  return rng.permutation(train), rng.permutation(test)


def sklearn_label_map_split(labels: np.ndarray, *, train_fraction: float, random_state: int
                            ) -> tuple[np.ndarray, np.ndarray]:
  """The official LoLA-SpecViT split of a label map: scikit-learn's stratified
  ``train_test_split(test_size=1 - train_fraction)`` over the labelled pixels in row-major scan
  order (the order the official ``createImageCubes`` collects patches).

  Args:
    labels: ``(H, W)`` label map, 0 = unlabelled.
    train_fraction: fraction of labelled pixels to train on (the official code: 0.1).
    random_state: scikit-learn seed (official 345).

  Returns:
    ``(train, test)``, ``(N, 2)`` row/column arrays in scikit-learn's order.

  Raises:
    ValueError: as :func:`sklearn_stratified_split`, or a class is missing from either part.
  """
  positions = labelled_pixels(labels)
  classes = labels[tuple(positions.T)]
  train, test = sklearn_stratified_split(classes, test_size=1 - train_fraction,
                                         random_state=random_state)
  for part, name in ((train, "train"), (test, "test")):
    missing = np.setdiff1d(classes, classes[part])
    if missing.size:
      raise ValueError(f"train_fraction: {train_fraction} leaves classes {missing.tolist()} out "
                       f"of the {name} split (the official code asserts every class is in both)")
  return positions[train], positions[test]


class PatchSource:
  """Random-access patch records around labelled pixels, for ``grain.MapDataset.source``.

  Record ``i`` is ``{"patch" (size, size, C), "label" () int32, "position" (2,)}``. The cube is
  padded once by ``size // 2`` with ``pad_mode`` (``"reflect"`` by default; ``"constant"`` gives
  the zero padding of LoLA-SpecViT); labels are shifted to ``0..K-1``.

  Args:
    cube: ``(H, W, C)``.
    labels: ``(H, W)`` label map, 1..K labelled.
    positions: ``(N, 2)`` row/column of the centre pixels.
    size: odd patch side.
    pad_mode: ``np.pad`` mode.
  """

  def __init__(self, cube: np.ndarray, labels: np.ndarray, positions: np.ndarray, size: int,
               pad_mode: str = "reflect"):
    if cube.ndim != 3 or labels.shape != cube.shape[:2]:
      raise ValueError(f"cube, labels: expected (H, W, C) and (H, W), got {cube.shape} and "
                       f"{labels.shape}")
    if size % 2 != 1:
      raise ValueError(f"size: expected an odd patch size (centred on the pixel), got {size}")
    half = size // 2
    self.padded = np.pad(cube, ((half, half), (half, half), (0, 0)), mode=pad_mode)
    self.positions = np.asarray(positions)
    self.labels = labels[self.positions[:, 0], self.positions[:, 1]].astype(np.int32) - 1
    self.size = size

  def __len__(self) -> int:
    return len(self.positions)

  def __getitem__(self, index: int) -> Example:
    row, col = self.positions[index]
    return {"patch": self.padded[row:row + self.size, col:col + self.size],
            "label": self.labels[index], "position": self.positions[index]}


def classification_patches(cube: np.ndarray, labels: np.ndarray, positions: np.ndarray,
                           size: int, pad_mode: str = "reflect"
                           ) -> tuple[np.ndarray, np.ndarray]:
  """All patches of :class:`PatchSource` stacked.

  Args:
    cube: ``(H, W, C)``.
    labels: ``(H, W)`` label map, 1..K labelled.
    positions: ``(N, 2)`` row/column of the centre pixels.
    size: odd patch side.
    pad_mode: ``np.pad`` mode.

  Returns:
    ``(patches (N, size, size, C), labels (N,) in 0..K-1)``.
  """
  source = PatchSource(cube, labels, positions, size, pad_mode)
  patches = np.stack([source[i]["patch"] for i in range(len(source))])
  return patches, source.labels
