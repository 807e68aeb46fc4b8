"""Writers of miniature files in the publishers' real on-disk formats, shared by the builder
tests and the paper dry-run tests."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np


def write_v73(path: pathlib.Path, **variables):
  """A MATLAB v7.3 file: HDF5 with a 512-byte user block, arrays stored with reversed axes."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for key, value in variables.items():
      f.create_dataset(key, data=np.asarray(value).T)
  with open(path, "r+b") as f:
    f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .")


def write_cave_scene(manual_dir: pathlib.Path, scene: str, cube: np.ndarray):
  """A CAVE scene as the archive extracts: ``<scene>_ms/<scene>_ms/<scene>_ms_NN.png``, one
  16-bit grey PNG per band of ``cube`` ``(H, W, 31)`` uint16."""
  from PIL import Image

  folder = manual_dir / f"{scene}_ms" / f"{scene}_ms"
  folder.mkdir(parents=True, exist_ok=True)
  for b in range(cube.shape[-1]):
    Image.fromarray(np.ascontiguousarray(cube[..., b])).save(folder / f"{scene}_ms_{b + 1:02d}.png")


def write_div2k(manual_dir: pathlib.Path, images: dict[str, np.ndarray],
                folder: str = "DIV2K_train_HR"):
  """DIV2K HR images as the publisher's zip extracts: ``<folder>/<name>.png``, 8-bit RGB."""
  from PIL import Image

  (manual_dir / folder).mkdir(parents=True, exist_ok=True)
  for name, image in images.items():
    Image.fromarray(np.asarray(image, np.uint8)).save(manual_dir / folder / f"{name}.png")


def write_nsm_test_set(directory: pathlib.Path, phi_file: str, phi: np.ndarray, u_file: str,
                       u: np.ndarray):
  """An official Neural Spectral Methods test set: what ``python -m src.pde.<problem>.generate``
  of ASK-Berkeley/Neural-Spectral-Methods saves with ``np.save``: the parameter coefficients
  ``(N, *phi_modes, 1)`` and the reference solutions ``(N, *grid, 1)`` on a uniform grid with
  both ends included, under the official file names (e.g. ``h.npy``, ``u.rho=5:nu=0.010.npy``)."""
  directory.mkdir(parents=True, exist_ok=True)
  np.save(directory / phi_file, np.asarray(phi, np.float32))
  np.save(directory / u_file, np.asarray(u, np.float32))
