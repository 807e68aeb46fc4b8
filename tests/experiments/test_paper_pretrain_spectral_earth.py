"""Paper dry run of ``pretrain_spectral_earth``: a miniature SpectralEarth archive in the published
layout (``spectral_earth/enmap/<location>/<date>.tif``, ``(202, S, S)`` int16 GeoTIFFs, 1-3 dates
per location) through the registered builder, the grain pipeline, MoCo-v2, DINO (official
per-epoch schedules, independent teacher head, per-parameter AdamW state) and MAE (per-epoch
cosine) fits in the paper recipe's bf16, and the report."""

from __future__ import annotations

import json

import numpy as np

from experiments import runner
from jspectral.data.builders import spectral_earth as data

TINY = ["size=8", "archive_size=8", "vit.embed_dim=16", "vit.depth=1", "vit.num_heads=2",
        "head_hidden=16", "bank_size=8", "dino_out=8", "dino_bottleneck=8", "decoder_dim=16",
        "decoder_heads=2", "mask_ratio=0.5", "steps_per_epoch=1",
        *(f"train.{m}.{k}={v}" for m in ("moco", "dino", "mae")
          for k, v in (("total_steps", 2), ("batch_size", 2), ("log_every", 1)))]


def test_paper_preset_runs_on_published_layout(tmp_path, monkeypatch, cheap_compiles):
  manual = tmp_path / "manual"
  rng = np.random.default_rng(0)
  data.write_pretraining_archive(manual / "spectral_earth", rng, 4, 8,
                                 data.class_endmembers(rng, 3))
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(manual))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "pretrain_spectral_earth", "--preset", "paper", "--workdir", str(workdir)]
  for item in TINY:
    argv += ["--set", item]
  assert runner.main(argv) == 0

  assert (tmp_path / "tfds" / "spectral_earth" / "enmap_8px").is_dir()   # prepared there
  for method in ("moco", "dino", "mae"):
    records = [json.loads(line) for line in (workdir / method / "metrics.jsonl").open()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 2 and np.all(np.isfinite(losses)), method
  dino = [json.loads(line) for line in (workdir / "dino" / "metrics.jsonl").open()]
  # Official DINO lr: epoch 0 and 1 of the LinearLR warm-up from lr/20 (one step per epoch).
  np.testing.assert_allclose([r["learning_rate"] for r in dino if "loss" in r],
                             [5e-5, 1e-3 * (1 / 20 + 0.95 / 20)], rtol=1e-5)
  # Official MAE lr: CosineAnnealingLR(T_max = 200 epochs) stepped per epoch.
  mae = [json.loads(line) for line in (workdir / "mae" / "metrics.jsonl").open()]
  np.testing.assert_allclose([r["learning_rate"] for r in mae if "loss" in r],
                             [1e-4, 1e-4 * (1 + np.cos(np.pi / 200)) / 2], rtol=1e-5)
  config = json.loads((workdir / "config.json").read_text())
  assert config["train"]["dino"]["optimizer"]["skip_unused"]   # torch's frozen last layer
  assert not config["dino_copy_teacher_head"] and config["mae_official_lr"]
  report = (workdir / "report.md").read_text()
  assert "Pretraining losses" in report and "4 locations" in report
  for method in ("moco", "dino", "mae"):
    row = next(line for line in report.splitlines() if line.startswith(f"| {method} "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2" and all(np.isfinite(float(c)) for c in cells[2:4]), row
    assert f"{method} {cells[2]} -> {cells[3]}" in report  # the headline
  assert "The paper reports downstream results only" in report
