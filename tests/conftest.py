"""Shared test fixtures: the public parity packs and the suite's CPU compile settings."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The suite's compile settings, fixed here before jax starts its backend; subprocesses inherit
# them through ``subprocess_env``. XLA:CPU compilation is most of the suite's time (tiny inputs,
# large graphs):
#  - LLVM optimisation level 1 instead of 2 (~12% less compile time; at level 0 float rounding
#    moves enough to change short-training outcomes);
#  - jax's ``rbg`` generator: threefry's unrolled rounds compile ~3x slower (20 ``normal`` draws:
#    10 s vs 3 s). Tests that need vmap-stable draws (rbg's are not) or a particular draw ask for
#    threefry keys explicitly: ``jax.random.key(seed, impl="threefry2x32")``. The library keeps
#    jax's default.
SUITE_XLA_FLAGS = "--xla_backend_optimization_level=1"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SUITE_XLA_FLAGS}".strip()
os.environ["JAX_DEFAULT_PRNG_IMPL"] = "rbg"

import jax  # noqa: E402  (after the settings above)

jax.config.update("jax_default_prng_impl", "rbg")


def subprocess_env(devices: int | None = None, **extra: str) -> dict[str, str]:
  """The environment of a test's child Python: the suite's settings, the repository on the path,
  the CPU backend and, with ``devices``, that many host devices."""
  flags = SUITE_XLA_FLAGS
  if devices is not None:
    flags += f" --xla_force_host_platform_device_count={devices}"
  return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags,
          **extra}


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


@pytest.fixture
def cheap_compiles():
  """XLA without most optimisations, for tests whose graphs are large and whose inputs are tiny
  (LLVM at level 0, no expensive passes: compile time matters more than run time)."""
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
  return REFERENCE_DIR


def pytest_collection_modifyitems(items):
  """Modules holding ``slow`` tests run first, each kept whole (module fixtures are built once).

  pytest-xdist hands tests to its workers in this order, so the long ones start early and the short
  ones fill in at the end instead of one worker finishing a 60 s test alone.
  """
  slow = {item.path for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.path not in slow)


def file_snapshot(directory: pathlib.Path) -> dict[str, bytes]:
  """Every file under ``directory`` (relative path -> bytes), to show a run left them untouched."""
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}
