"""SpectralEarth self-supervised pretraining: MoCo-v2, DINO and MAE on EnMAP patches.

Smoke: a tiny Spec ViT (token 4, 16 px, width 32, depth 2) trained a few dozen steps by each
objective on synthetic EnMAP-like patches (linear mixtures of earthlib's measured spectra resampled
to the 202 EnMAP bands, 1-3 dates per location); each loss must fall. Paper: the official recipes
(Spec ViT-S/4 at 128 px; batch 256 = 4 GPUs x 64; MoCo SGD lr 1e-3 x0.1 at epochs 60/80 for 100
epochs, bank 32,768, T 0.1, momentum 0.999; DINO AdamW lr 1e-3 wd 1e-5, 20-epoch warm-up, 100
epochs, out 128; MAE AdamW lr 1e-4 wd 0.01 cosine, 200 epochs, mask 0.9) on the SpectralEarth
TFDS archive (``jspectral.data.builders.spectral_earth.SpectralEarth``, manual download).

Paper variants (``PAPER_VARIANTS``): Spec ResNet-50 with MoCo-v2 and DINO (``paper:rn50``) and
MAE with Spec ViT-B/L/H/g (``paper:mae_vit_b`` ...). DINO's schedules are the official ones through
the step-aware engine: the per-epoch LinearLR + Cosine(T_max 100) learning rate
(``DINOTask.schedule``), lightly's per-epoch teacher momentum (0.996 -> 1.0 over 10 epochs) and
teacher temperature (0.04 -> 0.04 over 10 epochs); its teacher head starts from its own random
init and AdamW leaves the frozen last layer alone in epoch 0 (``optimizer.skip_unused``), as in
torch. MAE's learning rate is the official per-epoch CosineAnnealing(T_max 200)
(``MAETask.schedule``). Three training steps of each agree with the official modules
(``tests/ssl/test_spectral_earth_train_steps.py``). The official 16-mixed precision runs as bf16.

Config and tasks are shared with ``downstream_spectral_earth`` (``experiments.common``).
"""

from __future__ import annotations

import pathlib

import matplotlib
import ml_collections
import numpy as np

from experiments.common import (
    SPECTRAL_EARTH_PRETRAIN_VARIANTS,
    spectral_earth_archive,
    spectral_earth_pretrain_config,
    spectral_earth_task,
)
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import train
from jspectral.data.builders import spectral_earth as data

matplotlib.use("Agg")


PAPER_VARIANTS = SPECTRAL_EARTH_PRETRAIN_VARIANTS


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  return spectral_earth_pretrain_config(preset)


def _mean_loss(history, first: bool) -> float:
  """Mean loss over the first or the last third of the logged steps."""
  losses = [r["loss"] for r in history if "loss" in r]
  third = max(len(losses) // 3, 1)
  return float(np.mean(losses[:third] if first else losses[-third:]))


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  source = spectral_earth_archive(config, workdir)
  rows, checks, histories = [], {}, {}
  for method in config.methods:
    result = train.fit(spectral_earth_task(method, config, source), config.train[method],
                       workdir / method)
    histories[method] = result.history
    start, end = _mean_loss(result.history, True), _mean_loss(result.history, False)
    stds = [r["feature_std"] for r in result.history if "feature_std" in r]
    rows.append([method, result.step, start, end, stds[-1] if stds else float("nan")])
    if config.checks:
      checks[f"{method} pretraining on spectral patches learns: loss falls (mean over the last "
             "third of logs < first third)"] = \
          end < start
  for method, records in histories.items():
    save_loss_curve(workdir / f"loss_{method}.png", {method: records})
  smoke = " (smoke, synthetic patches)" if config.data.source == "synthetic" else ""
  return Report(
      title="SpectralEarth pretraining: MoCo-v2, DINO, MAE" + smoke,
      tables=[Table(f"Pretraining losses{smoke}",
                    ["method", "steps", "loss (first third)", "loss (last third)",
                     "feature std (collapse monitor)"], rows,
                    note="The paper reports downstream results only (no pretraining losses); "
                         "MoCo/DINO loss levels depend on bank size / output dim.")],
      figures=[f"loss_{m}.png" for m in histories],
      checks=checks,
      notes=[f"{config.backbone} "
             f"{dict(config.vit) if config.backbone == 'spec_vit' else ''}; {len(source)} "
             "locations of "
             f"{config.archive_size}x{config.archive_size}x202 "
             f"({'earthlib' if data.earthlib_library() else 'synthetic'} endmember spectra)."],
      headline=Headline(
          "each self-supervised objective trains the spectral foundation model (loss falls)",
          "; ".join(f"{method} {start:.4g} -> {end:.4g}" for method, _, start, end, _ in rows)))
