"""Paper dry runs of ``denoise_icvl``: miniature files in the publishers' formats (ICVL MATLAB v7.3
``rad`` cubes with QRNN3D's split lists, one authors' ``icvl_512_50`` test folder; CAVE 16-bit band
PNG folders with HSIR's lists) through the registered builders, the augmented grain pipeline, one
``fit`` per model over the whole curriculum (one step per epoch: sigma=50, blind, complex) with
validation every epoch and the official selection, the tests and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.io

from experiments import runner
from experiments.configs import denoise_icvl
from tests.data.real_format import write_cave_scene, write_v73

RNG = np.random.default_rng(0)
TINY = ["models.hsdt.channels=2", "models.hsdt.num_half_layer=2", "models.hsdt.sample_idx=(1,)",
        "models.man.channels=2", "models.man.num_half_layer=2", "models.man.sample_idx=(1,)",
        "patch=8", "data.patch_strides=(8, 4, 4)", "steps_per_epoch=1", "train.batch_size=2",
        "train.log_every=1"]
# The curriculum in miniature: one epoch (one step) per stage, the first stage's rate, warm-ups.
PHASES = {"hsdt": "[[0, 1, 1e-3, False, '50'], [1, 2, 1e-3, True, 'blind'], "
                  "[2, 3, 1e-3, True, 'complex']]",
          "man": "[[0, 1, 1e-3, False, '50'], [1, 2, 5e-4, True, 'blind'], "
                 "[2, 3, 5e-4, True, 'complex']]"}


def _write_icvl(manual):
  folder = manual / "icvl"
  folder.mkdir(parents=True)
  for name in ("scene_a", "scene_b", "scene_c"):
    write_v73(folder / f"{name}.mat", rad=RNG.uniform(0, 4000, size=(20, 18, 31)))
  (folder / "ICVL_train.txt").write_text("scene_a.mat\nscene_b.mat\n")
  (folder / "ICVL_test_gauss.txt").write_text("scene_c.mat\n")
  (folder / "ICVL_test_complex.txt").write_text("scene_c.mat\nscene_a.mat\n")
  authors = folder / "icvl_512_50"           # the authors' prepared sigma=50 set, as it is
  authors.mkdir()
  gt = RNG.uniform(size=(8, 8, 31))
  scipy.io.savemat(authors / "scene_c.mat", {"gt": gt, "sigma": 50.0,
                                             "input": gt + 50 / 255 * RNG.normal(size=gt.shape)})
  return ["data.train_crop=16", "data.test_crop=8"]


def _write_cave(manual):
  folder = manual / "cave"
  for scene in ("balloons", "beads", "cd"):
    write_cave_scene(folder, scene, RNG.integers(0, 65536, size=(16, 16, 31), dtype=np.uint16))
  (folder / "cave_train.txt").write_text("balloons\nbeads\n")
  (folder / "cave_test.txt").write_text("cd\n")
  # one-level U-nets: this case checks the variant's data path, the ICVL case the U-net stages
  return [f"models.{n}.{k}={v}" for n in ("hsdt", "man")
          for k, v in (("num_half_layer", 1), ("sample_idx", "()"))]


CASES = {"paper": (_write_icvl, "icvl", ("50", "blind", "complex"),
                   denoise_icvl.GAUSSIAN_CASES + denoise_icvl.COMPLEX_CASES),
         "paper:cave": (_write_cave, "cave", ("50", "blind"), denoise_icvl.GAUSSIAN_CASES)}


@pytest.mark.parametrize("preset", list(CASES))
def test_paper_preset_runs_on_real_format_files(tmp_path, monkeypatch, cheap_compiles, preset):
  write, source, stages, cases = CASES[preset]
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "denoise_icvl", "--preset", preset, "--workdir", str(workdir)]
  phases = [f"phases.{n}={PHASES[n].split(', [2, 3')[0]}]" if len(stages) == 2
            else f"phases.{n}={PHASES[n]}" for n in PHASES]
  # explicit TFDS directory: TFDS keeps the first data directory it saw in the process
  for item in TINY + write(tmp_path / "manual") + phases + [f"data.data_dir={tmp_path / 'tfds'}"]:
    argv += ["--set", item]
  assert runner.main(argv) == 0

  config = json.loads((workdir / "config.json").read_text())
  assert config["data"]["source"] == source and config["augmentation"] == "fixed"
  for name in PHASES:
    records = [json.loads(line) for line in (workdir / name / "metrics.jsonl").open()]
    evals = [r for r in records if "eval/psnr" in r]
    # validation after every epoch, through the whole curriculum
    assert [r["step"] for r in evals] == list(range(1, len(stages) + 1))
    assert all(math.isfinite(r["eval/psnr"]) for r in evals)
    rates = {r["step"]: r["learning_rate"] for r in records if "learning_rate" in r}
    assert rates[1] == pytest.approx(1e-3) and rates[2] == 0.0    # the blind warm-up starts at 0
    # HSDT: the sigma=50 stage's last validation competes with the blind stage; HSIR (MAN)
    # starts afresh at the first blind epoch.
    first, second = evals[0]["eval/psnr"], evals[1]["eval/psnr"]
    expected = max(first, second) if name == "hsdt" else second
    assert evals[1]["best/psnr"] == pytest.approx(expected)

  report = (workdir / "report.md").read_text()
  for case in cases:
    assert f"{case} ours" in report
  ours_tables = [t for t in report.split("### ")[1:] if " ours |" in t]   # ours beside the paper
  rows = [line for t in ours_tables for line in t.splitlines()
          if line.startswith(("| HSDT-M", "| MAN-M", "| Noisy"))]
  assert len(rows) == 3 * len(ours_tables) == (6 if source == "icvl" else 3)
  for row in rows:
    ours = [cell for cell in row.strip("| ").split(" | ")[1:] if cell != "–"]
    numbers = [float(x) for cell in ours for x in cell.split(" / ")]
    assert numbers and all(math.isfinite(x) for x in numbers), row
  assert "official HSIR/torchlight conventions" in report
  if source == "icvl":
    assert "41.82 / 0.986 / 0.049" in report and "41.18 / 0.979 / 0.097" in report
    assert "Test set 50: icvl_512_50 (authors' folder, 1 files)" in report
    assert "Test set 30: built from the test_gauss images (1 files), seed 0" in report
    assert "Test set mixture: built from the test_complex images (2 files)" in report
    assert (workdir / "hsdt" / "gaussian_stage").is_dir()
  else:
    assert "CAVE, paper (HSDT; noise setting not stated)" in report and "39.80" in report
