"""Paper dry runs of ``downstream_spectral_earth``, one per task kind and head: miniature sets in
the published layout (``<sensor>/<tile>/<patch>.tif`` images, ``<product>/<tile>/<patch>.tif``
raw label rasters, ``splits/<sensor>_<product>/{train,val,test}.txt``) through the registered
builder and the grain pipeline, then the encoder, both probes with validation every epoch,
selection on the validation loss, test scoring of the selected parameters and the report:
DESIS-CDL segmentation (cross-sensor, 235 bands, its own statistics) with a synthetic-archive
Spec ViT and a ConvHead; EnMAP-CDL segmentation with a Spec ResNet-50 state dict (``pretrained=
PATH``, the official layout, layer1 only) and the FCN head, fully fine-tuned; EnMAP-CORINE
multi-label classification (CLC rasters -> 19 multi-hot labels) with the encoder's linear head;
Hyperview regression (``hyperview/images/<index>.npz`` field patches of varying size resized at
prepare time, ``splits/hyperview/{train,val}.csv``) with the official MLP head, selected and scored
on the validation split. Also: the refusal to run without a named encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.configs import downstream_spectral_earth as downstream
from jspectral import models
from jspectral.data.builders import spectral_earth as data
from jspectral.ssl import spectral_earth as se
from tests.conftest import load_pack
from tests.experiments.cli import run_preset

TINY_VIT = ["pretrained=synthetic", "pretrain.size=8", "pretrain.archive_size=8",
            "pretrain.locations=4", "pretrain.vit.embed_dim=16", "pretrain.vit.depth=1",
            "pretrain.vit.num_heads=2", "pretrain.head_hidden=16", "pretrain.bank_size=8",
            "pretrain.train.moco.total_steps=2", "pretrain.train.moco.batch_size=2"]
TINY_FIT = ["data.patch_size=8", "train.total_steps=4", "train.batch_size=2",
            "train.eval_every=2", "train.log_every=1"]


def _publish(tmp_path, monkeypatch, name: str) -> None:
  """Writes a miniature ``name`` (8 px, 4 / 2 / 3 patches; Hyperview: 4 / 3 patches of 5-7 px)
  under the manual root."""
  config = data.downstream_config(name, 8)
  rng = np.random.default_rng(0)
  root = tmp_path / "manual" / "spectral_earth_downstream"
  spectra = data.class_endmembers(rng, 4, bands=config.bands)
  if config.regression:
    data.write_hyperview_dataset(root, rng, {"train": 4, "val": 3}, spectra)
  else:
    data.write_downstream_dataset(root, rng, config, {"train": 4, "val": 2, "test": 3}, spectra)
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))


def _report_rows(workdir, name: str, metric: str, scored: str = "Test") -> list[list[str]]:
  """The report's two result rows; every probe validated every epoch (2 steps) on ``metric``."""
  for probe in ("pretrained", "random"):
    records = [json.loads(line) for line in
               (workdir / name / f"probe_{probe}" / "metrics.jsonl").open()]
    evals = [r for r in records if "eval/loss" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(np.isfinite(r[f"eval/{metric}"]) for r in evals)
  report = (workdir / "report.md").read_text()
  assert f"{scored} scores of the parameters with the best validation loss" in report
  assert "Claim: a SpectralEarth-pretrained encoder beats a random-init one, " in report
  assert f"Ours: {scored.lower()} " in report   # the headline names the scored split
  rows = [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines()
          if line.startswith(f"| {name} ")]
  assert len(rows) == 2
  for cells in rows:
    assert cells[2] in ("2", "4")   # the selected step
  return rows


def test_paper_preset_runs_on_published_layout(tmp_path, monkeypatch, cheap_compiles):
  name, bands = "desis_cdl", 235   # cross-sensor segmentation
  _publish(tmp_path, monkeypatch, name)
  workdir = tmp_path / "run"
  run_preset(workdir, "downstream_spectral_earth", f"paper:{name}", TINY_VIT + TINY_FIT)
  assert (tmp_path / "tfds" / "spectral_earth_downstream" / f"{name}_8px").is_dir()
  rows = _report_rows(workdir, name, "jaccard_micro")
  for cells in rows:
    assert all(0 <= float(c) <= 1 for c in cells[3:6]), cells
    assert cells[-1] == "n/a"   # no published number to show
  report = (workdir / "report.md").read_text()
  assert f"4 / 2 / 3 train / val / test patches, {bands} bands" in report
  assert "desis statistics" in report and "frozen (linear protocol)" in report


@pytest.mark.slow  # ~60 s on an idle machine: compiles a dilated ResNet stage and its gradient
def test_paper_fcn_resnet50_from_a_state_dict_fine_tuned(tmp_path, monkeypatch, cheap_compiles):
  # The official Spec ResNet-50 layout (adapter + layer1: a truncated network keeps it cheap).
  state = tmp_path / "spec_rn50.npz"
  np.savez(state, **load_pack("spectral_earth_parity_resnet").state("spec_resnet50_layer1"))
  _publish(tmp_path, monkeypatch, "enmap_cdl")
  workdir = tmp_path / "run"
  run_preset(workdir, "downstream_spectral_earth", "paper",
             ["backbone=spec_resnet50", f"pretrained={state}", "model.freeze_backbone=False"]
             + TINY_FIT)
  rows = _report_rows(workdir, "enmap_cdl", "jaccard_micro")
  assert rows[0][1] == "pretrained (official)" and rows[0][-1] == "0.774"
  report = (workdir / "report.md").read_text()
  assert "spec_resnet50; Encoder: fully fine-tuned" in report
  config = downstream.get_config("paper")
  module, _ = models.from_torch("spec_resnet50", dict(np.load(state)))
  model, prefix, head = downstream.downstream_model(config, module,
                                                    data.downstream_config("enmap_cdl", 8))
  assert isinstance(model, se.FCNSegmenter) and (prefix, head) == ("backbone/", "head/")
  assert model.backbone.replace_stride_with_dilation == (True,) * 4
  assert model.backbone.return_features and model.num_classes == 14


@pytest.mark.slow  # ~40 s on an idle machine: a synthetic-archive MoCo and two probes
def test_paper_corine_multilabel(tmp_path, monkeypatch, cheap_compiles):
  _publish(tmp_path, monkeypatch, "enmap_corine")
  workdir = tmp_path / "run"
  run_preset(workdir, "downstream_spectral_earth", "paper:corine", TINY_VIT + TINY_FIT)
  rows = _report_rows(workdir, "enmap_corine", "ap_macro")
  report = (workdir / "report.md").read_text()
  assert "| micro AP | macro AP | micro F1 | macro F1 | micro accuracy | macro accuracy |" in report
  for cells in rows:
    assert all(0 <= float(c) <= 1 for c in cells[3:9]), cells
  assert "multi-label classification" in report


def test_paper_hyperview_regression(tmp_path, monkeypatch, cheap_compiles):
  _publish(tmp_path, monkeypatch, "hyperview")
  workdir = tmp_path / "run"
  run_preset(workdir, "downstream_spectral_earth", "paper:hyperview", TINY_VIT + TINY_FIT)
  assert (tmp_path / "tfds" / "spectral_earth_downstream" / "hyperview_8px").is_dir()
  rows = _report_rows(workdir, "hyperview", "score", scored="Validation")
  report = (workdir / "report.md").read_text()
  assert ("| score (MSE / baseline MSE) | P | K | Mg | pH | val_loss (official per-batch mean) "
          "| RMSE | paper |") in report
  assert "### Validation metrics" in report and "no published test split" in report
  assert "Hyperview regression" in report
  assert "4 / 3 train / val patches, 150 bands" in report and "hyperview statistics" in report
  for cells, probe in zip(rows, ("pretrained", "random"), strict=True):
    assert cells[1].startswith("pretrained (moco" if probe == "pretrained" else "random init")
    score, per_target, batch_mean = float(cells[3]), [float(c) for c in cells[4:8]], cells[8]
    assert score == pytest.approx(np.mean(per_target), rel=1e-3, abs=1e-3)
    # Scored on val with the selected parameters: the report repeats that step's evaluation.
    path = workdir / "hyperview" / f"probe_{probe}" / "metrics.jsonl"
    records = [json.loads(line) for line in path.open()]
    chosen, = [r for r in records if r["step"] == int(cells[2]) and "eval/loss" in r]
    assert float(batch_mean) == pytest.approx(chosen["eval/loss"], rel=1e-3)
    assert score == pytest.approx(chosen["eval/score"], rel=1e-3)
    assert chosen["eval/loss"] == min(r["eval/loss"] for r in records if "eval/loss" in r)
  assert (workdir / "hyperview_regression.png").is_file()


def test_paper_preset_refuses_bad_settings_before_writing(tmp_path):
  config = downstream.get_config("paper")
  assert config.pretrained == "" and config.train.batch_size == 32
  with pytest.raises(ValueError, match="pretrained: name the encoder"):
    downstream.run(config, tmp_path)
  for key, value, message in (("backbone", "vit_b", "backbone: expected one of"),
                               ("train.trainable", "^head/", "train.trainable: derived from")):
    bad = downstream.get_config("paper")
    bad.pretrained = "synthetic"
    bad.update_from_flattened_dict({key: value})
    with pytest.raises(ValueError, match=message):
      downstream.run(bad, tmp_path)
  config.pretrained = str(tmp_path / "missing.npz")
  with pytest.raises(ValueError, match="pretrained: .* is not a file"):
    downstream.run(config, tmp_path)
  with pytest.raises(ValueError, match="pretrained: name the encoder"):
    downstream.run(downstream.get_config("paper:hyperview"), tmp_path)
  assert not any(tmp_path.iterdir())   # nothing written before the refusal


def test_paper_variants_take_their_dataset_sizes():
  presets = {"paper": "enmap_cdl", **{f"paper:{v}": downstream.VARIANT_DATASET.get(v, v)
                                      for v in downstream.PAPER_VARIANTS}}
  assert sorted(presets.values()) == sorted(downstream.PAPER_DATASETS)
  for preset, name in presets.items():
    config = downstream.get_config(preset)
    batch = downstream.PAPER_DATASETS[name][1]
    steps_per_epoch = downstream.PAPER_SIZES[name] // batch
    epochs, patience = (400, 15) if name == "hyperview" else (100, 0)
    assert config.dataset == name and config.train.batch_size == batch
    assert config.train.total_steps == epochs * steps_per_epoch
    assert config.train.eval_every == steps_per_epoch
    assert (config.train.select.metric, config.train.select.mode) == ("loss", "min")
    assert config.train.select.patience == patience
    assert config.train.optimizer.learning_rate == 1e-3
    assert config.train.optimizer.weight_decay == (1e-5 if name == "enmap_corine" else 1e-4)
    assert config.model.freeze_backbone and config.train.trainable == ""
  corine = downstream.get_config("paper:corine")
  assert (corine.train.batch_size, corine.train.total_steps) == (128, 6400)   # 8250 // 128 = 64
  assert tuple(corine.crop_scale) == (0.6, 1.0)
  with pytest.raises(ValueError, match="paper:corine"):
    downstream.get_config("paper:enmap_corine")
  hyperview = downstream.get_config("paper:hyperview")   # 2 GPUs x 32; 1385 // 64 = 21 per epoch
  assert (hyperview.train.batch_size, hyperview.train.total_steps) == (64, 8400)
  assert tuple(hyperview.crop_scale) == (0.4, 1.0) and hyperview.data.patch_size == 128


def test_smoke_check_states_the_claim_and_compares_micro_jaccard():
  config = downstream.get_config("smoke")
  rows = [["smoke_cdl", "pretrained", 75, 0.5975, 0.426, 0.3819, "n/a"],   # seed 0, 2026-12-04
          ["smoke_cdl", "random init", 125, 0.6298, 0.4596, 0.4118, "n/a"]]
  (line, passed), = downstream._checks(config, "smoke_cdl", rows,
                                       "segmentation").items()
  assert not passed and "a pretrained encoder beats a random-init one" in line
  assert "(fully fine-tuned; test" in line   # the smoke fine-tunes both encoders
  assert "micro Jaccard (official) 0.426 vs 0.460, -0.034" in line
  rows[0][4] = 0.47
  assert list(downstream._checks(config, "smoke_cdl", rows,
                                 "segmentation").values()) == [True]
  assert downstream._checks(downstream.get_config("paper"), "enmap_cdl", rows,
                            "segmentation") == {}


def test_mae_pretrained_encoder_keeps_its_fixed_position_embedding(tmp_path, cheap_compiles):
  # MAE trains the encoder without its (fixed sin-cos) position embedding; the downstream
  # encoder is a plain Spec ViT, so the embedding must come back with the pretrained weights.
  config = downstream.get_config("smoke")
  config.pretrain_method = "mae"
  config.pretrain.update(size=8, archive_size=8, locations=4, decoder_dim=16, decoder_heads=2)
  config.pretrain.vit.update(embed_dim=16, depth=1, num_heads=2)
  config.pretrain.train.mae.update(total_steps=2, batch_size=2)
  backbone, variables = downstream._pretrained_backbone(config, tmp_path)
  pos_embed = np.asarray(variables["params"]["vit_core"]["pos_embed"])
  np.testing.assert_array_equal(pos_embed[0], se.sincos_pos_embed_2d(16, 2))
  tokens = backbone.apply(variables, np.ones((1, 8, 8, 202), np.float32), train=False,
                          method=backbone.patch_tokens)
  assert tokens.shape == (1, 4, 16) and np.isfinite(tokens).all()


def test_smoke_seed_changes_the_training_not_the_data(tmp_path):
  images = {}
  for seed, data_seed in ((0, 0), (1, 0), (1, 1)):
    config = downstream.get_config("smoke")
    config.update(seed=seed, data_seed=data_seed, counts={"train": 2, "val": 1, "test": 1})
    _, splits = downstream._sources(config, tmp_path / f"{seed}_{data_seed}")
    images[seed, data_seed] = np.stack([e["image"] for e in splits["train"]])
  np.testing.assert_array_equal(images[1, 0], images[0, 0])
  assert not np.array_equal(images[1, 1], images[0, 0])


@pytest.mark.parametrize("key, value, message", [
    ("pretrain_method", "simclr",
     r"pretrain_method: expected one of \('dino', 'mae', 'moco'\), got 'simclr'"),
    ("data_seed", -1, "data_seed: expected a non-negative integer")])
def test_smoke_refuses_an_unknown_method_or_a_negative_data_seed(tmp_path, key, value, message):
  config = downstream.get_config("smoke")
  config.update_from_flattened_dict({key: value})
  with pytest.raises(ValueError, match=message):
    downstream.run(config, tmp_path)
  assert not any(tmp_path.iterdir())   # nothing written before the refusal
