"""Figures of the SR experiments and notebook: false-colour panels, per-band PSNR, spectra.

All functions take bands-last ``(H, W, C)`` NumPy arrays, write one PNG and return its path.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def false_colour_bands(bands: int) -> tuple[int, int, int]:
  """Three bands shown as R, G, B: at 80 %, 50 % and 15 % of the band range (long -> short).

  Args:
    bands: number of bands ``C``.

  Returns:
    ``(r, g, b)`` band indices.
  """
  return tuple(min(bands - 1, int(round(f * (bands - 1)))) for f in (0.8, 0.5, 0.15))


def _false_colour(cube: np.ndarray, bands: tuple[int, int, int], vmax: float) -> np.ndarray:
  return np.clip(cube[..., list(bands)] / vmax, 0.0, 1.0)


def comparison_panel(path: str | pathlib.Path, images: dict[str, np.ndarray]) -> pathlib.Path:
  """False-colour panels side by side (e.g. LR / bicubic / ours / HR), one shared scale.

  Args:
    path: output PNG path.
    images: ``{title: cube}``, each ``(H, W, C)`` (sizes may differ; bands from the last cube).

  Returns:
    ``path`` as a ``pathlib.Path``.
  """
  path = pathlib.Path(path)
  cubes = list(images.values())
  bands = false_colour_bands(cubes[-1].shape[-1])
  vmax = float(max(np.percentile(c[..., list(bands)], 99.5) for c in cubes)) or 1.0
  fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3.2))
  for ax, (title, cube) in zip(np.atleast_1d(axes), images.items(), strict=True):
    ax.imshow(_false_colour(cube, bands, vmax), interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
  fig.suptitle(f"false colour: bands {bands}")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def per_band_psnr_plot(path: str | pathlib.Path, target: np.ndarray,
                       predictions: dict[str, np.ndarray]) -> pathlib.Path:
  """PSNR (data range 1) of every band for each prediction.

  Args:
    path: output PNG path.
    target: reference cube, ``(H, W, C)``.
    predictions: ``{name: cube}``, each ``(H, W, C)``.

  Returns:
    ``path`` as a ``pathlib.Path``.
  """
  path = pathlib.Path(path)
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for name, pred in predictions.items():
    mse = np.mean((pred - target) ** 2, axis=(0, 1))
    ax.plot(10 * np.log10(1.0 / mse), label=name)
  ax.set_xlabel("band")
  ax.set_ylabel("PSNR (dB)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def spectral_profile_plot(path: str | pathlib.Path, spectra: dict[str, np.ndarray],
                          pixels: list[tuple[int, int]]) -> pathlib.Path:
  """Spectra of a few pixels, one subplot per pixel, one line per cube in ``spectra``.

  Args:
    path: output PNG path.
    spectra: ``{name: cube}``, each ``(H, W, C)``.
    pixels: ``(row, col)`` pixels to plot.

  Returns:
    ``path`` as a ``pathlib.Path``.
  """
  path = pathlib.Path(path)
  fig, axes = plt.subplots(1, len(pixels), figsize=(3.2 * len(pixels), 3), squeeze=False)
  for ax, (row, col) in zip(axes[0], pixels, strict=True):
    for name, cube in spectra.items():
      ax.plot(cube[row, col], label=name)
    ax.set_title(f"pixel ({row}, {col})")
    ax.set_xlabel("band")
  axes[0, 0].set_ylabel("reflectance")
  axes[0, -1].legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
