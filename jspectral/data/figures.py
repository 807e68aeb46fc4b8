"""Figures of cubes: false-colour composites and spectra at chosen pixels (matplotlib, PNG)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def default_bands(bands: int) -> tuple[int, int, int]:
  """Red, green, blue band indices at 80 %, 50 % and 20 % of the band range.

  For a 400-700 nm cube: about 640, 550 and 460 nm.

  Args:
    bands: band count ``C``.

  Returns:
    ``(r, g, b)`` indices.
  """
  return tuple(int(round(f * (bands - 1))) for f in (0.8, 0.5, 0.2))


def false_colour(cube, bands: Sequence[int] | None = None,
                 percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
  """A false-colour composite in [0, 1].

  Three bands are each stretched between their ``percentiles`` (robust to hot pixels and stripes);
  a constant band maps to 0.

  Args:
    cube: ``(H, W, C)``.
    bands: three band indices (default :func:`default_bands`).
    percentiles: ``(low, high)`` stretch percentiles.

  Returns:
    ``(H, W, 3)`` float32.
  """
  cube = np.asarray(cube, np.float64)
  if cube.ndim != 3:
    raise ValueError(f"cube: expected one bands-last cube (H, W, C), got shape {cube.shape}")
  bands = default_bands(cube.shape[-1]) if bands is None else tuple(bands)
  if len(bands) != 3 or not all(0 <= b < cube.shape[-1] for b in bands):
    raise ValueError(f"bands: expected three indices in 0..{cube.shape[-1] - 1}, got {bands}")
  rgb = cube[..., list(bands)]
  low, high = np.percentile(rgb, percentiles, axis=(0, 1))
  scale = np.where(high > low, high - low, 1.0)
  return np.clip((rgb - low) / scale, 0.0, 1.0).astype(np.float32)


def save_spectra_panel(path: str | os.PathLike, cube, pixels: Sequence[tuple[int, int]],
                       wavelengths: Sequence[float] | None = None,
                       overlays: Mapping[str, np.ndarray] | None = None,
                       title: str | None = None) -> str:
  """Writes a PNG: the false-colour image with the ``pixels`` marked, and their spectra.

  Args:
    path: output file.
    cube: ``(H, W, C)``.
    pixels: ``(row, col)`` positions.
    wavelengths: ``(C,)`` x-axis values in nm (default: band index).
    overlays: names -> cubes of the same shape (e.g. ``{"denoised": y, "clean": x}``) whose
      spectra at the same pixels are drawn dashed beside ``cube``'s.
    title: figure title.

  Returns:
    The path.
  """
  cube = np.asarray(cube)
  if not pixels:
    raise ValueError("pixels: expected at least one (row, col)")
  for row, col in pixels:
    if not (0 <= row < cube.shape[0] and 0 <= col < cube.shape[1]):
      raise ValueError(f"pixels: ({row}, {col}) lies outside the image {cube.shape[:2]}")
  overlays = dict(overlays or {})
  for name, other in overlays.items():
    if np.shape(other) != cube.shape:
      raise ValueError(f"overlays: {name!r} has shape {np.shape(other)}, expected {cube.shape}")
  x = np.arange(cube.shape[-1]) if wavelengths is None else np.asarray(wavelengths)
  fig, (ax_img, ax_spec) = plt.subplots(1, 2, figsize=(10, 4))
  ax_img.imshow(false_colour(cube))
  ax_img.set_axis_off()
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  styles = ["--", ":", "-."]
  for i, (row, col) in enumerate(pixels):
    colour = colours[i % len(colours)]
    ax_img.plot(col, row, "o", markerfacecolor="none", markeredgecolor=colour, markersize=8)
    ax_spec.plot(x, cube[row, col], color=colour, label=f"({row}, {col})")
    for j, (name, other) in enumerate(overlays.items()):
      ax_spec.plot(x, np.asarray(other)[row, col], styles[j % len(styles)], color=colour,
                   label=f"({row}, {col}) {name}")
  ax_spec.set_xlabel("wavelength (nm)" if wavelengths is not None else "band")
  ax_spec.set_ylabel("value")
  ax_spec.legend(fontsize="small")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return os.fspath(path)
