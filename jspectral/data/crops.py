"""Host-side random resized crops of ``(H, W, C)`` arrays (NumPy), drawn as torchvision does."""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage


def crop_box(height: int, width: int, rng: np.random.Generator, scale: tuple[float, float],
             ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
  """torchvision/kornia ``RandomResizedCrop`` window.

  Area fraction in ``scale``, log-uniform aspect ratio; the centre square after 10 failed tries.

  Args:
    height: image height.
    width: image width.
    rng: NumPy generator.
    scale: ``(min, max)`` area fraction.
    ratio: ``(min, max)`` aspect ratio (width / height).

  Returns:
    ``(top, left, h, w)``.
  """
  area = height * width
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
    cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
    if 0 < cw <= width and 0 < ch <= height:
      return int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side, side


def resize_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int,
                order: int = 1) -> np.ndarray:
  """Resizes the ``box`` window to ``size x size``, half-pixel centres (``align_corners=False``).

  Args:
    image: ``(H, W, C)`` (bilinear) or ``(H, W[, C])`` (nearest).
    box: ``(top, left, h, w)``.
    size: output side.
    order: 1 = bilinear, 0 = nearest (masks).

  Returns:
    ``(size, size, C)`` (float32 for bilinear; the input dtype for nearest).
  """
  top, left, ch, cw = box
  ys = np.clip((np.arange(size) + 0.5) * ch / size - 0.5, 0, ch - 1) + top
  xs = np.clip((np.arange(size) + 0.5) * cw / size - 0.5, 0, cw - 1) + left
  if order == 0:
    return image[np.floor(ys + 0.5).astype(int)][:, np.floor(xs + 0.5).astype(int)]
  yy, xx = np.meshgrid(ys, xs, indexing="ij")
  return np.stack([scipy.ndimage.map_coordinates(image[..., c], [yy, xx], order=1)
                   for c in range(image.shape[-1])], axis=-1).astype(np.float32)


def random_resized_crop(image: np.ndarray, rng: np.random.Generator, size: int,
                        scale: tuple[float, float]) -> np.ndarray:
  """RandomResizedCrop to ``size x size`` (bilinear).

  Args:
    image: ``(H, W, C)``.
    rng: NumPy generator.
    size: output side.
    scale: ``(min, max)`` area fraction.

  Returns:
    ``(size, size, C)`` float32.
  """
  return resize_crop(image, crop_box(*image.shape[:2], rng, scale), size)
