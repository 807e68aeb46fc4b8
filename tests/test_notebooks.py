"""Every notebook runs top to bottom (they default to small sizes)."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook, tmp_path):
  # rbg: model initialisers compile ~3x faster on CPU than threefry's (tests/conftest.py)
  env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
         "JAX_DEFAULT_PRNG_IMPL": "rbg"}
  proc = subprocess.run([sys.executable, str(notebook)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_there_are_notebooks():
  assert any(p.stem == "quickstart" for p in NOTEBOOKS)
