"""Shared driver of the three NSM paper dry runs (``test_paper_pde_*.py``)."""

from __future__ import annotations

import math

import jax
import numpy as np

from jspectral.pde import problems
from tests.data.real_format import write_nsm_test_set
from tests.experiments.cli import run_preset


def write_official_files(tmp_path, monkeypatch, problem, phi_file: str, u_file: str,
                         grid: tuple[int, ...], n: int = 3):
  """Official-format ``.npy`` files of ``n`` prior samples under ``$JSPECTRAL_MANUAL_DIR``."""
  manual = tmp_path / "manual"
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(manual))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  phi = np.asarray(problems.sample(problem, jax.random.PRNGKey(0), (n,)))
  u = 1 + np.random.default_rng(0).normal(size=(n, *grid, 1)) * 0.1
  write_nsm_test_set(manual / "neural_spectral_methods", phi_file, phi, u_file, u)


def run_paper(tmp_path, name: str, preset: str, overrides: list[str], methods: list[str],
              seeds: int):
  """Runs ``name --preset preset`` with ``overrides`` and checks the report's tables."""
  workdir = tmp_path / "run"
  config = run_preset(workdir, name, preset, overrides)
  assert config["data"]["source"] == "official" and config["preset"] == preset
  text = (workdir / "report.md").read_text()
  assert "mean ± std over seeds" in text and "Protocol (official src/train.py metric)" in text
  assert "official test set" in text and "paper errr %" in text
  table, per_seed = text.split("### ")[1:3]
  rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")][1:]
  assert [r[1].strip() for r in rows] == methods
  for row in rows:
    assert int(row[2]) == seeds and row[8].strip() == "n/a"
    for cell in row[4:7]:                          # errr, erra, residual: "mean ± std"
      mean, std = (float(v) for v in cell.split("±"))
      assert math.isfinite(mean) and math.isfinite(std) and mean >= 0
  seed_rows = [line for line in per_seed.splitlines() if line.startswith("| ")][1:]
  assert len(seed_rows) == seeds * len(methods)
  return text
