"""Shared test fixtures: the public parity packs and CPU device settings."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

REFERENCE_DIR = pathlib.Path(
    os.environ.get("JSPECTRAL_REFERENCE", pathlib.Path(__file__).resolve().parents[2] / "shared"
                   / "reference"))


class ParityPack:
  """One ``<topic>_parity.npz``: ``pack["case/item"]`` arrays and ``pack.config("case")`` dicts."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    self._npz = np.load(path)

  def __getitem__(self, key: str) -> np.ndarray:
    return self._npz[key]

  def keys(self) -> list[str]:
    return list(self._npz.keys())

  def config(self, case: str) -> dict:
    return json.loads(str(self._npz[f"{case}/config"]))

  def json(self, key: str):
    return json.loads(str(self._npz[key]))

  def state(self, case: str, prefix: str = "state/") -> dict[str, np.ndarray]:
    """The official ``state_dict`` stored under ``<case>/<prefix>``."""
    head = f"{case}/{prefix}"
    return {k[len(head):]: self._npz[k] for k in self._npz.keys() if k.startswith(head)}


def load_pack(stem: str) -> ParityPack:
  """Opens ``../shared/reference/<stem>.npz``; a missing pack is an error, never a skip."""
  path = REFERENCE_DIR / f"{stem}.npz"
  if not path.exists():
    raise FileNotFoundError(f"parity pack {path} is missing: the reference packs live in "
                            "../shared/reference beside the repository "
                            "(or set JSPECTRAL_REFERENCE)")
  return ParityPack(path)


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
  return REFERENCE_DIR


@pytest.fixture
def rbg_prng():
  """jax's ``rbg`` generator as the default for one test.

  XLA:CPU compiles threefry's unrolled rounds slowly, once per initializer: a small ViT's
  ``init`` compiled in ~70 s with threefry and ~25 s with ``rbg`` here. Tests of training
  behaviour (a loss falls, a mask holds) do not depend on which generator drew the weights.
  """
  import jax

  previous = jax.config.jax_default_prng_impl
  jax.config.update("jax_default_prng_impl", "rbg")
  yield
  jax.config.update("jax_default_prng_impl", previous)
