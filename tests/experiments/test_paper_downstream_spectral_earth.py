"""Paper dry runs of ``downstream_spectral_earth``: a miniature DESIS-CDL set (cross-sensor, 235
bands, its own statistics; segmentation is the only task kind the experiment runs) in the
published layout (``<sensor>/<tile>/<patch>.tif`` images, ``<product>/<tile>/<patch>.tif`` raw
label rasters, ``splits/<sensor>_<product>/{train,val,test}.txt``) through the registered
builder, the grain pipeline, a synthetic-archive pretraining, both probes with validation every
epoch, selection on the validation loss, test scoring of the selected parameters and the report;
and the refusal to run without a named encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import runner
from experiments.configs import downstream_spectral_earth as downstream
from jspectral.data.builders import spectral_earth as data

TINY = ["data.patch_size=8", "pretrained=synthetic", "pretrain.size=8", "pretrain.archive_size=8",
        "pretrain.locations=4", "pretrain.vit.embed_dim=16", "pretrain.vit.depth=1",
        "pretrain.vit.num_heads=2", "pretrain.head_hidden=16", "pretrain.bank_size=8",
        "pretrain.train.moco.total_steps=2", "pretrain.train.moco.batch_size=2",
        "train.total_steps=4", "train.batch_size=2", "train.eval_every=2", "train.log_every=1"]


def test_paper_preset_runs_on_published_layout(tmp_path, monkeypatch, cheap_compiles):
  preset, name, bands = "paper:desis_cdl", "desis_cdl", 235   # cross-sensor segmentation
  manual = tmp_path / "manual" / "spectral_earth_downstream"
  rng = np.random.default_rng(0)
  data.write_downstream_dataset(manual, rng, data.downstream_config(name, 8),
                                {"train": 4, "val": 2, "test": 3},
                                data.class_endmembers(rng, 4, bands=bands))
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "downstream_spectral_earth", "--preset", preset, "--workdir", str(workdir)]
  for item in TINY:
    argv += ["--set", item]
  assert runner.main(argv) == 0

  assert (tmp_path / "tfds" / "spectral_earth_downstream" / f"{name}_8px").is_dir()
  for probe in ("pretrained", "random"):
    records = [json.loads(line) for line in
               (workdir / name / f"probe_{probe}" / "metrics.jsonl").open()]
    evals = [r for r in records if "eval/loss" in r]
    assert [r["step"] for r in evals] == [2, 4]   # validation every epoch (2 steps here)
    assert all(np.isfinite(r["eval/jaccard_micro"]) for r in evals)
  report = (workdir / "report.md").read_text()
  assert "Test scores of the parameters with the best validation loss" in report
  assert f"4 / 2 / 3 train / val / test patches, {bands} bands" in report
  assert "desis statistics" in report
  rows = [line for line in report.splitlines() if line.startswith(f"| {name} ")]
  assert len(rows) == 2
  for row in rows:
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] in ("2", "4")   # the selected step
    assert all(0 <= float(c) <= 1 for c in cells[3:6]), row
  assert rows[0].strip("|").split("|")[-1].strip() == "n/a"   # no published number to show


def test_paper_preset_refuses_an_unnamed_encoder(tmp_path):
  config = downstream.get_config("paper")
  assert config.pretrained == "" and config.train.batch_size == 32
  with pytest.raises(ValueError, match="pretrained: name the encoder"):
    downstream.run(config, tmp_path)
  config.pretrained = str(tmp_path / "missing.npz")
  with pytest.raises(ValueError, match="pretrained: .* is not a file"):
    downstream.run(config, tmp_path)
  assert not any(tmp_path.iterdir())   # nothing written before the refusal


def test_paper_variants_take_their_dataset_sizes():
  for name, (_, batch) in downstream.PAPER_DATASETS.items():
    config = downstream.get_config("paper" if name == "enmap_cdl" else f"paper:{name}")
    steps_per_epoch = downstream.PAPER_SIZES[name] // batch
    assert config.dataset == name and config.train.batch_size == batch
    assert config.train.total_steps == 100 * steps_per_epoch
    assert config.train.eval_every == steps_per_epoch
    assert (config.train.select.metric, config.train.select.mode) == ("loss", "min")
  assert set(downstream.PAPER_VARIANTS) == set(downstream.PAPER_DATASETS) - {"enmap_cdl"}
