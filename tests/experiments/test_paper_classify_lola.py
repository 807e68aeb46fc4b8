"""Paper dry runs of ``classify_lola`` on miniature scenes in the publishers' ``.mat`` format
(WHU-Hi LongKou, Salinas, Indian Pines: ``scipy.io.loadmat``-readable MATLAB v5 files with the
official file and variable names): the TFDS scene builders, PCA, scikit-learn's stratified split,
the grain pipeline, the official epoch-derived schedule with gradient accumulation, validation
(or the official test-set) selection with early stopping, test scoring and the report. The model
is cut to the mini configuration and the epochs to two; everything else is the paper recipe."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.io

from experiments import runner
from experiments.configs import classify_lola
from jspectral.data.builders import indian_pines, salinas, whu_hi

TINY = ["model_name=lola_specvit_mini", "model.depths=[1]", "model.heads=[2]", "epochs=2",
        "eval_epochs=1", "train.batch_size=16", "train_fraction=0.5", "val_fraction=0.3",
        "train.log_every=1", "train.checkpoint_every=1000", "axis_orders=['official']"]
SHAPE = (14, 12)   # pixels; 3 classes, about 150 labelled


def _write_scene(manual, builder_cls, config_name, dtype, seed):
  """A class-structured cube (band-count of the real scene) and a uint8 ground truth, saved as
  the publisher's two ``.mat`` files. Every scene shares one label map, so the three fits have
  the same shapes and schedule and the run's compilation cache serves the second and third."""
  spec = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == config_name)
  labels = np.repeat(np.arange(1, 4), math.ceil(SHAPE[1] / 3))[:SHAPE[1]][None].repeat(SHAPE[0], 0)
  labels = np.where(np.random.default_rng(0).random(SHAPE) < 0.1, 0, labels).astype(np.uint8)
  rng = np.random.default_rng(seed)
  spectra = rng.uniform(500, 4000, size=(4, spec.bands))
  cube = spectra[labels] + rng.normal(0, 200, size=SHAPE + (spec.bands,))
  folder = manual / builder_cls.name
  folder.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(folder / spec.image_file, {spec.image_key: cube.astype(dtype)})
  scipy.io.savemat(folder / spec.gt_file, {spec.gt_key: labels})
  return labels


def _run(tmp_path, monkeypatch, preset, extra):
  """``python -m experiments run classify_lola`` on the files under ``tmp_path/manual``."""
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "classify_lola", "--preset", preset, "--workdir", str(workdir)]
  for item in TINY + extra:
    argv += ["--set", item]
  assert runner.main(argv) == 0
  return workdir, (workdir / "report.md").read_text()


def _rows(report, dataset):
  rows = [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines()
          if line.startswith(f"| {dataset} ")]
  for row in rows:
    assert all(0 <= float(c) <= 100 for c in row[3:6]), row      # OA, AA, kappa are finite
    assert row[-1] == "–"                                          # no retrievable paper number
  return rows


@pytest.mark.slow  # three fits of the one-level mini model
def test_paper_preset_runs_on_longkou_salinas_and_indian_pines_files(tmp_path, monkeypatch,
                                                                    cheap_compiles):
  manual = tmp_path / "manual"
  labels = _write_scene(manual, whu_hi.WhuHi, "longkou", np.float32, 0)
  _write_scene(manual, salinas.Salinas, "corrected", np.int16, 1)
  _write_scene(manual, indian_pines.IndianPines, "corrected", np.uint16, 2)
  workdir, report = _run(tmp_path, monkeypatch, "paper",
                         ["datasets=['whu_hi_longkou', 'salinas', 'indian_pines']"])
  for builder, config in (("whu_hi", "longkou"), ("salinas", "corrected"),
                          ("indian_pines", "corrected")):
    assert (tmp_path / "tfds" / builder / config).is_dir()
  for dataset in ("whu_hi_longkou", "salinas", "indian_pines"):
    rows = _rows(report, dataset)
    assert [r[1] for r in rows] == ["lola_specvit_mini (official axes)",
                                    "per-pixel logistic regression"]
  # 50 % of the labelled pixels train, 70 % of those are fitted: ceil(n / 8) // 2 updates per
  # epoch (micro-batches of 16 / 2), an evaluation every epoch, two epochs
  n = int((labels > 0).sum())
  train_size = n - math.ceil(0.5 * n)
  per_epoch = math.ceil((train_size - math.ceil(0.3 * train_size)) / 8) // 2
  records = [json.loads(line) for line in
             (workdir / "whu_hi_longkou" / "official" / "metrics.jsonl").open()]
  assert [r["step"] for r in records if "eval/val_oa" in r] == [per_epoch, 2 * per_epoch]
  assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)
  assert "model selected on the validation split" in report
  assert "here the weights with the best validation OA" in report
  assert "split: sklearn (seed 345)" in report and "99.91 %" in report


def test_test_selection_is_the_official_protocol_and_labelled():
  config = classify_lola.get_config("paper")
  labels = np.repeat(np.arange(1, 4), 100).reshape(15, 20)
  where = classify_lola.protocol_splits(labels, config)     # 10 % train, 10 % of it validates
  assert [len(where[k]) for k in ("fit", "select", "test")] == [27, 3, 270]
  config.select_on = "test"
  where = classify_lola.protocol_splits(labels, config)
  np.testing.assert_array_equal(where["select"], where["test"])
  assert len(where["fit"]) == 30                                  # every training pixel is fitted
  table = classify_lola._table(config, [])
  assert "(the official protocol: test-set selection)" in table.title
  assert any("THIS RUN SELECTED ON THE TEST SET" in n for n in classify_lola._notes(config))
  config.select_on = "train"
  with pytest.raises(ValueError, match="select_on"):
    classify_lola.protocol_splits(labels, config)


def test_paper_variants_carry_their_fraction_and_scene():
  config = classify_lola.get_config("paper:honghu_2pct")
  assert config.datasets == ["whu_hi_honghu"] and config.train_fraction == 0.02
  assert config.axis_orders == ["official", "spectral"] and config.train.grad_accum_steps == 2
  assert classify_lola.get_config("paper").train_fraction == 0.1
  # Salinas at 10 %: 5,412 training pixels -> ceil(5412 / 32) // 2 = 85 updates per epoch
  derived = classify_lola.train_config(classify_lola.get_config("paper:salinas"), 5_412)
  assert (derived.total_steps, derived.eval_every) == (8_500, 425)
  with pytest.raises(ValueError, match="preset"):
    classify_lola.get_config("paper:pavia")
  assert config.train.select.patience == 15 and config.train.select.ties == "earlier"
