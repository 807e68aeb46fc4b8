"""Paper dry runs of ``sr_essaformer``: miniature files in each dataset's real format (Chikusei
MATLAB v7.3, Pavia Centre MATLAB v5, CAVE 16-bit band PNG folders) through the registered
builders, the grain patch index, ``fit`` with per-epoch validation, the whole-image test and the
report, with sizes and epochs cut by ``--set``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from experiments import runner
from jspectral.data.builders import cave, chikusei
from tests.data.real_format import write_cave_scene, write_v73

RNG = np.random.default_rng(0)
TINY_MODEL = ["model.dim=8", "model.hr_passes=1", "data.epochs=2", "data.decay_epoch=2"]


def _write_chikusei(manual):
  (manual / "chikusei").mkdir(parents=True)
  write_v73(manual / "chikusei" / chikusei.FILE,
            chikusei=RNG.uniform(0, 5000, size=(60, 52, 128)))
  return ["data.crop_rows=(3, 58)", "data.crop_cols=(3, 50)", "data.test_size=16",
          "data.train_tile=8", "data.patch=16", "data.stride=16", "train.batch_size=8"]


def _write_pavia(manual):
  (manual / "pavia").mkdir(parents=True)
  scipy.io.savemat(manual / "pavia" / "Pavia.mat",
                   {"pavia": RNG.integers(0, 8000, size=(40, 24, 102)).astype(np.uint16)})
  scipy.io.savemat(manual / "pavia" / "Pavia_gt.mat",
                   {"pavia_gt": RNG.integers(0, 10, size=(40, 24)).astype(np.uint8)})
  return ["data.test_size=8", "data.patch=8", "data.stride=8", "train.batch_size=8"]


def _write_cave(manual):
  for scene in cave.SCENES:
    write_cave_scene(manual / "cave", scene,
                     RNG.integers(0, 65536, size=(16, 16, 31), dtype=np.uint16))
  return ["data.patch=16", "data.stride=16", "train.batch_size=8"]


CASES = {"paper": (_write_chikusei, 128, 4, "chikusei"),
         "paper:pavia_x4": (_write_pavia, 102, 3, "pavia_centre"),
         "paper:cave_x4": (_write_cave, 31, 12, "cave")}


@pytest.mark.parametrize("preset", list(CASES))
def test_paper_preset_runs_on_real_format_files(tmp_path, monkeypatch, preset):
  write, bands, test_images, source = CASES[preset]
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  overrides = write(tmp_path / "manual") + TINY_MODEL
  workdir = tmp_path / "run"
  argv = ["run", "sr_essaformer", "--preset", preset, "--workdir", str(workdir)]
  for item in overrides:
    argv += ["--set", item]
  runner.main(argv)   # the checks (beat bicubic) cannot pass after a few steps: status ignored

  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["source"] == source and config["data"]["bands"] == bands
  assert config["model"]["upsample_skip"] is False and config["init"] == "torch"
  assert any((tmp_path / "tfds").rglob("*.array_record*"))
  records = [json.loads(line) for line in (workdir / "essaformer" / "metrics.jsonl").open()]
  vals = [r for r in records if "eval/val_L1" in r]
  assert len(vals) == 2 and all(np.isfinite(r["eval/val_L1"]) for r in vals)
  steps = max(r["step"] for r in records)
  assert steps == vals[-1]["step"] and steps % 2 == 0
  rates = [r["learning_rate"] for r in records if "learning_rate" in r]
  assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1e-5)   # x0.1, epoch 2

  report = (workdir / "report.md").read_text()
  rows = [line for line in report.splitlines() if line.startswith("| ")]
  ours = [r for r in rows if "(ours" in r]
  assert len(ours) == 2
  for row in ours:
    values = [float(v) for v in row.strip("| ").split("|")[1:]]
    assert len(values) == 6 and np.all(np.isfinite(values))
  assert "Protocol (SSPSR)" in report and f"{source} x4" in report
  paper_rows = [r for r in rows if "SSPSR README" in r]
  assert len(paper_rows) == (0 if source == "cave" else 2)
