"""Paper dry run of ``pansharpen_benchmark``: miniature toolbox ``.mat`` scenes through the PRISMA
builder, classical methods, the toolbox networks run from released weights (state dicts of the
official layout as ``<name>.npz``, the benchmark's default in the paper preset), R-PNN adapted
from its released weights, the RR / FR indices and the report; bands, methods and iterations cut
by ``--set``."""

from __future__ import annotations

import json

import numpy as np

from experiments import runner
from tests.experiments.test_paper_pansharpen_rho_pnn import write_prisma
from tests.pansharpening.test_released_weights import write_released


def test_paper_preset_runs_released_weights_on_toolbox_files(tmp_path, monkeypatch):
  write_prisma(tmp_path / "manual", np.random.default_rng(1), rr_side=32, fr_side=32)
  write_released(tmp_path / "weights")                     # 6-band official-layout state dicts
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  cut = ["bands=6", "methods=['EXP', 'MTF-GLP-FS']",
         "deep_methods.supervised=['hyperpnn', 'hyper_dsnet']",
         "deep_methods.zero_shot=['r_pnn']", "deep_methods.r_pnn_iterations=1",
         f"deep_methods.weights_dir={tmp_path / 'weights'}",
         # explicit directories: TFDS keeps the first data directory it saw in the process
         f"data.data_dir={tmp_path / 'tfds'}", f"data.manual_dir={tmp_path / 'manual' / 'prisma'}"]
  argv = ["run", "pansharpen_benchmark", "--preset", "paper", "--workdir", str(workdir)]
  for item in cut:
    argv += ["--set", item]
  runner.main(argv)

  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["source"] == "prisma" and config["deep_methods"]["weights"] == "released"
  assert any((tmp_path / "tfds").rglob("*.array_record*"))
  report = (workdir / "report.md").read_text()
  assert "deep weights: the toolbox's released PRISMA weights from" in report
  assert "R-PNN: released PRISMA weights, then" in report
  assert "paper numbers (arXiv 2407.01355 tables) are not reproduced here" in report
  for table, width in (("Reduced resolution (paper)", 4), ("Full resolution (paper)", 3)):
    lines = report.split(table, 1)[1].splitlines()
    rows = [line for line in lines[:12] if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["EXP", "MTF-GLP-FS", "hyperpnn",
                                                      "hyper_dsnet", "R-PNN"]
    for row in rows:
      values = [float(v) for v in row.strip("| ").split("|")[1:1 + width]]
      assert np.isfinite(values).all()
