"""Paper dry runs of ``ssl_intl``: CIFAR-10 python pickles and ImageNet-100 / ImageNet-1k
ImageFolder trees through the registered builders, INTL (INTL_M with multi-crop on ImageNet-1k)
pre-training with online kNN + Adam probe, the official linear evaluation, the 1 % / 10 %
semi-supervised fine-tuning and the report; sizes and steps cut by ``--set``."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from experiments import runner
from tests.data.real_format import write_cifar10, write_image_folder

PACK = pathlib.Path(__file__).parents[1] / "ssl" / "parity" / "intl_m_train_steps.npz"

TINY = ["model.stage_sizes=(1, 1, 1, 1)", "model.width=4", "model.hidden=16", "model.features=16",
        "train.total_steps=2", "train.batch_size=8", "train.eval_every=0",
        "train.checkpoint_every=2", "train.schedule.warmup_steps=1", "linear_epochs=2"]


def _cifar(manual):
  write_cifar10(manual / "cifar10", np.random.default_rng(0), per_batch=4)
  return []


def _imagenet100(manual):
  write_image_folder(manual / "image_net100", np.random.default_rng(1), classes=100,
                     per_class=1)
  return ["image_size=32", "linear_eval.epochs=2", "linear_eval.batch_size=50",
          "linear_eval.milestones=(1, 2)", "linear_eval.crop=32", "linear_eval.resize=40"]


def _imagenet1k(manual):
  root = manual / "image_net1k"
  write_image_folder(root, np.random.default_rng(2), classes=1000, per_class=1)
  for percent, classes in ((1, range(0, 1000, 50)), (10, range(0, 1000, 25))):
    (root / f"{percent}percent.txt").write_text("".join(f"n{c:08d}_0.JPEG\n" for c in classes))
  # The streamed linear evaluation runs in the ImageNet-100 case, the semi-supervised one in
  # test_released_weights_are_fine_tuned_on_the_10_percent_subset.
  return ["image_size=32", "linear_eval.epochs=0", "linear_eval.crop=32", "linear_eval.resize=40",
          "semi.percents=()"]


@pytest.mark.parametrize("preset, write", [("paper", _cifar), ("paper:in100", _imagenet100),
                                           ("paper:in1k_m", _imagenet1k)])
def test_paper_preset_runs_on_real_format_files(tmp_path, monkeypatch, cheap_compiles, preset,
                                                write):
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  argv = ["run", "ssl_intl", "--preset", preset, "--workdir", str(workdir)]
  for item in write(tmp_path / "manual") + TINY:
    argv += ["--set", item]
  runner.main(argv)           # the kNN margin check cannot pass after 2 steps: status ignored

  config = json.loads((workdir / "config.json").read_text())
  records = [json.loads(line) for line in (workdir / "intl" / "metrics.jsonl").open()]
  assert max(r["step"] for r in records) == 2
  assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)
  report = (workdir / "report.md").read_text()
  ours = [line for line in report.splitlines() if line.startswith("| INTL (ours)")]
  assert len(ours) == 1 and np.isfinite(float(ours[0].split("|")[2]))
  if config["data"]["source"] == "in100":
    assert config["train"]["precision"] == "bfloat16"
    assert config["train"]["optimizer"]["decay_1d"] is False
    evals = [json.loads(line) for line in (workdir / "linear_eval" / "metrics.jsonl").open()]
    assert [r["step"] for r in evals if "eval/top1" in r] == [2, 4]     # every epoch (2 steps)
    assert "Official linear evaluation (2 epochs" in report and "| last epoch |" in report
    assert "| INTL (paper) | 81.68 | 95.42 |" in report
    assert "Claim: INTL learns features without labels" in report
    assert "linear top-1" in report.split("Ours: ")[1].split(" vs ")[0]   # probed: in the headline
    assert "Paper: 5-NN 73.5 %, linear top-1 81.7 %." in report
  elif config["data"]["source"] == "in1k":
    assert config["ema_momentum"] == 0.996 and config["multi_crop"] is True
    assert "INTL_M (EMA key m0 = 0.996), 6 views" in report
    paper_row = next(line for line in report.splitlines() if line.startswith("| INTL (paper)"))
    assert "| 73.5 |" in paper_row                       # README: INTL_M 100 epochs, linear top-1
    assert "Paper: linear top-1 73.5 %." in report        # no published 5-NN
  else:
    assert config["linear_eval"]["epochs"] == 0 and "Official linear evaluation" not in report


def test_released_weights_are_fine_tuned_on_the_10_percent_subset(tmp_path, monkeypatch,
                                                                  cheap_compiles):
  """``pretrained=PATH``: an official INTL state dict (the tiny ResNet-50-style network of the
  INTL_M parity pack) is evaluated and fine-tuned on the 10 % list instead of pre-training."""
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  with np.load(PACK) as pack:
    np.savez(tmp_path / "released.npz",
             **{f"module.{k[5:]}": pack[k] for k in pack.files if k.startswith("init/")})
  workdir = tmp_path / "run"
  overrides = _imagenet1k(tmp_path / "manual")[:-1] + [
      f"pretrained={tmp_path / 'released.npz'}", "linear_epochs=2", "semi.percents=(10,)",
      "semi.epochs=1", "semi.batch_size=10"]
  argv = ["run", "ssl_intl", "--preset", "paper:in1k", "--workdir", str(workdir)]
  for item in overrides:
    argv += ["--set", item]
  runner.main(argv)

  assert not (workdir / "intl").exists()                 # no pre-training
  report = (workdir / "report.md").read_text()
  assert "released weights (released.npz)" in report and "| 10 % |" in report
  # The 10 % list names 40 images: batch 10, 1 epoch, validation after it (the 1 % subset runs
  # the same code; tests/ssl/test_intl_data.py reads its list).
  records = [json.loads(line) for line in (workdir / "semi_10percent" / "metrics.jsonl").open()]
  assert max(r["step"] for r in records) == 4 and any("eval/top1" in r for r in records)
  assert not (workdir / "semi_1percent").exists()
