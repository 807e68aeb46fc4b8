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


def write_toolbox_scene(path: pathlib.Path, rng: np.random.Generator, lr_side: int, *,
                        gt: bool, bands: int = 159, ratio: int = 6):
  """A scene of matciotola/hyperspectral_pansharpening_toolbox as ``elaborate_PRISMA_images.py``
  saves it (``scipy.io.savemat``, MATLAB v5): uint16 ``I_PAN (H, W)``, ``I_MS_LR (h, w, B)``,
  ``I_MS (H, W, B)``, ``I_GT`` in reduced-resolution files, float32 ``wavelengths (1, B)`` and
  ``overlap``. The cube is smooth (a spatially varying mix of two spectra), PAN its band mean."""
  import scipy.io

  h = lr_side * ratio
  yy, xx = np.mgrid[0:h, 0:h] / h
  mix = 0.5 + 0.4 * np.sin(6 * yy + rng.uniform(0, 3)) * np.cos(5 * xx)
  spectra = rng.uniform(4000, 20000, (2, bands))
  cube = mix[..., None] * spectra[0] + (1 - mix[..., None]) * spectra[1]
  cube = np.clip(cube + rng.normal(0, 100, cube.shape), 0, 65535)
  lr = cube.reshape(lr_side, ratio, lr_side, ratio, bands).mean((1, 3))
  data = {"I_PAN": np.round(cube.mean(-1)).astype(np.uint16),
          "I_MS_LR": np.round(lr).astype(np.uint16),
          "I_MS": np.round(np.kron(lr, np.ones((ratio, ratio, 1)))).astype(np.uint16),
          "wavelengths": np.linspace(465.7, 2293.1, bands, dtype=np.float32)[None],
          "overlap": 25}
  if gt:
    data["I_GT"] = np.round(cube).astype(np.uint16)
  path.parent.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(path, data)


def write_cifar_batch(path: pathlib.Path, images: np.ndarray, **labels):
  """A CIFAR python pickle (``data_batch_1``, ``test``, ...): ``{b"data": (N, 3072) uint8 rows,
  channel-major, b"labels" | b"fine_labels" | ...: lists}`` from ``(N, 32, 32, 3)`` images."""
  import pickle

  path.parent.mkdir(parents=True, exist_ok=True)
  data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
  raw = {b"data": data, **{k.encode(): list(map(int, v)) for k, v in labels.items()}}
  with path.open("wb") as f:
    pickle.dump(raw, f)


def write_cifar10(manual: pathlib.Path, rng: np.random.Generator, per_batch: int):
  """The five training batches and the test batch of ``cifar-10-batches-py`` (random images)."""
  for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    write_cifar_batch(manual / "cifar-10-batches-py" / name,
                      rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8),
                      labels=rng.integers(0, 10, per_batch))


def write_image_folder(root: pathlib.Path, rng: np.random.Generator, classes: int,
                       per_class: int, size: tuple[int, int] = (20, 30)):
  """torchvision ``ImageFolder`` splits ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``
  (ImageNet layout); each class has its own mean colour so that a probe can learn it."""
  from PIL import Image

  for split in ("train", "val"):
    for c in range(classes):
      folder = root / split / f"n{c:08d}"
      folder.mkdir(parents=True, exist_ok=True)
      colour = np.asarray([(37 * c) % 256, (91 * c) % 256, (151 * c) % 256])
      for i in range(per_class):
        pixels = np.clip(colour + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"n{c:08d}_{i}.JPEG", format="JPEG")
