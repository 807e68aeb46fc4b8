"""Paper dry run of ``pansharpen_rho_pnn``: miniature toolbox ``.mat`` scenes (159 bands, MATLAB
v5, the layout ``elaborate_PRISMA_images.py`` writes) through the PRISMA builder, rho-PNN's
pre-training and per-band tuning on every test scene of both protocols, the RR and FR (rho-PNN)
indices and the report; bands, budgets and epochs cut by ``--set``."""

from __future__ import annotations

import json

import numpy as np

from experiments import runner
from tests.data.real_format import write_toolbox_scene

CUT = ["bands=2", "rho.pretrain_epochs=1", "rho.ns=1", "rho.eta=0.0", "rho_fr.ns=1",
       "rho_fr.eta=0.0", "rho.learning_rate=1e-4"]


def write_prisma(manual, rng, rr_side=16, fr_side=21):
  """One scene per split and protocol; the test split holds the scored scenes."""
  for split in ("Training", "Validation", "Test"):
    write_toolbox_scene(manual / "prisma" / split / "Reduced_Resolution" / f"{split}_RR.mat",
                        rng, rr_side, gt=True)
    write_toolbox_scene(manual / "prisma" / split / "Full_Resolution" / f"{split}_FR.mat",
                        rng, fr_side, gt=False)


def test_paper_preset_runs_on_toolbox_files(tmp_path, monkeypatch, cheap_compiles):
  write_prisma(tmp_path / "manual", np.random.default_rng(0))
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "pansharpen_rho_pnn", "--preset", "paper", "--workdir", str(workdir)]
  # explicit directories: TFDS keeps the first data directory it saw in the process
  dirs = [f"data.data_dir={tmp_path / 'tfds'}", f"data.manual_dir={tmp_path / 'manual' / 'prisma'}"]
  for item in CUT + dirs:
    argv += ["--set", item]
  runner.main(argv)      # the checks (beat EXP) cannot be expected after one step: status ignored

  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["source"] == "prisma" and config["protocols"] == ["rr", "fr"]
  assert config["rho"]["float64_correlation"] is True
  assert any((tmp_path / "tfds").rglob("*.array_record*"))
  report = (workdir / "report.md").read_text()
  assert "Reduced resolution, mean of 1 scene(s), 2 bands (paper)" in report
  assert "Full resolution (rho-PNN protocol), mean of 1 scene(s)" in report
  assert "paper numbers: not available offline" in report
  assert "paper recipe (official RR / FR hyper-parameters, every test scene)" in report
  rows = [line for line in report.splitlines() if line.startswith("| EXP") or
          line.startswith("| rho-PNN")]
  assert len(rows) == 4                         # EXP and rho-PNN in the RR and FR tables
  for row in rows:
    values = [float(v) for v in row.strip("| ").split("|")[1:]]
    assert len(values) == 5 and np.isfinite(values).all()
  assert (workdir / "per_band.png").exists() and (workdir / "fused.png").exists()
