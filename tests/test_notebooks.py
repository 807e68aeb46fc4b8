"""Every notebook runs top to bottom (they default to small sizes)."""

import pathlib
import subprocess
import sys

import pytest

from tests.conftest import subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.slow  # 10-35 s each: a notebook in a subprocess
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook, tmp_path):
  proc = subprocess.run([sys.executable, str(notebook)], cwd=tmp_path,
                        env=subprocess_env(MPLBACKEND="Agg"),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_there_are_notebooks():
  assert any(p.stem == "quickstart" for p in NOTEBOOKS)
