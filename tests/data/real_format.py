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
