"""INTL self-supervised pre-training (Weng et al., ICLR 2024) with online kNN and a linear probe.

Presets:
  smoke: 2-view INTL on scikit-learn's bundled ``load_digits`` (8x8 digits upsampled to 16x16 RGB,
    each under a fixed contrast and brightness change, ``data.nuisance``) with a one-block-per-stage
    CIFAR-stem ResNet; CPU, no download. Checks: the 5-NN accuracy of the trained backbone beats a
    randomly initialised one by ``knn_margin`` (the views teach invariance to the nuisance), and
    the embedding's effective rank does not collapse.
  paper: the official CIFAR-10 recipe (``scripts/cifar10.sh``): ResNet-18 (CIFAR stem), projector
    2048-2048-2048, batch 256, 1000 epochs, SGD momentum 0.9, lr 0.3, weight decay 1e-4, 2 warm-up
    epochs then cosine to 1e-3 lr, IterNorm axis 0 T 4, beta 0.05, kNN every 5 epochs.
  paper:cifar100, paper:in100: the paper's other Table 1 rows, each with its own recipe (batch,
    lr, weight-decay groups, precision, image size) chosen before any ``--set``.
  paper:in1k, paper:in1k_m[200|400|800]: ImageNet-1k with ResNet-50 (``scripts/ep800.sh``: 2 views
    without EMA; ``scripts/ep*_multi-crop_ema.sh``: INTL_M with 6-view multi-crop and the cosine
    EMA key network), then the official linear evaluation and the 1 % / 10 % semi-supervised
    fine-tuning. ImageNet streams at full resolution (host-side decode and crop per example).

``pretrained=PATH`` (an official ``.pth.tar`` checkpoint or an ``.npz`` of its state dict)
evaluates released weights instead of pre-training.

Config, data and network are shared with ``ssl_spectral_transforms`` (``experiments.common``).
"""

from __future__ import annotations

import pathlib

import jax
import matplotlib
import ml_collections
import numpy as np

from experiments.common import (
  INTL_IMAGENET_VARIANTS,
  INTL_PAPER,
  INTL_VARIANTS,
  intl_config,
  intl_data,
  intl_network,
)
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import train
from jspectral.models import unwrap_checkpoint
from jspectral.ssl import intl, tasks

matplotlib.use("Agg")

PAPER_VARIANTS = {**INTL_VARIANTS, **INTL_IMAGENET_VARIANTS}
NUM_CLASSES = {"in100": 100, "in1k": 1000}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  config = intl_config(preset)
  if preset == "smoke":
    # Raw digits are easy for a random encoder (5-NN 93-95 %): every digit gets a fixed
    # contrast and brightness change of the views' jitter strength, a nuisance the random
    # encoder's 5-NN follows (85 %) and INTL learns to ignore (docs/ssl.md).
    config.data.nuisance = 0.4  # per-image contrast/brightness factors in [1 - s, 1 + s]
    config.knn_margin = 0.05  # the 5-NN check's margin over the random encoder (fraction)
  return config


def read_checkpoint(path: str) -> dict:
  """The state dict of an official checkpoint: ``.npz`` (arrays) or ``.pth.tar`` (needs torch)."""
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise FileNotFoundError(f"pretrained: no checkpoint at {path}")
  if path.suffix == ".npz":
    with np.load(path) as f:
      return unwrap_checkpoint({k: f[k] for k in f.files})
  import torch  # noqa: PLC0415  (optional: only the released .pth.tar files need it)

  return unwrap_checkpoint(torch.load(path, map_location="cpu", weights_only=True))


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  data, views, images = intl_data(config)
  model, loaded = (intl.from_torch(read_checkpoint(config.pretrained)) if config.pretrained
                   else (intl_network(config), None))
  task = tasks.INTLTask(model, images, views, iterations=config.iterations,
                        whiten=config.whiten, ema_momentum=config.ema_momentum or None,
                        total_steps=config.train.total_steps, eval_data=data,
                        knn_k=config.knn_k, linear_epochs=config.linear_epochs,
                        seed=config.train.seed)
  params, state = jax.jit(task.init)(jax.random.PRNGKey(config.train.seed), None)
  random_eval = task.evaluate(*jax.tree.map(np.asarray, (params, state)))
  init_spectrum = task.spectra.pop()
  if loaded is None:
    result = train.fit(task, config.train, workdir / "intl")
    params, state, history, steps = result.params, result.model_state, result.history, result.step
    final = {k.removeprefix("eval/"): v for k, v in result.evals.items()}
  else:
    params, state, history, steps = loaded["params"], {"batch_stats": loaded["batch_stats"]}, [], 0
    final = task.evaluate(params, state)
  backbone = (task.model.backbone, {"params": params["backbone"],
                                    "batch_stats": state["batch_stats"]["backbone"]})
  linear = linear_evaluation(config, backbone, data, images, workdir) \
      if config.linear_eval.epochs else None
  semi = {p: semi_supervised(config, p, backbone, data, workdir) for p in config.semi.percents}
  figures = ["spectrum.png"]
  if history:
    save_loss_curve(workdir / "loss.png", {"INTL": history})
    figures.insert(0, "loss.png")
  save_spectrum_figure(workdir / "spectrum.png", init_spectrum[0], task.spectra, history)
  source = config.data.source
  digits = source == "digits"  # a CPU sanity run, not comparable with the paper
  variant = config.preset.partition(":")[2] or source
  paper = INTL_PAPER.get(variant, INTL_PAPER["cifar10"])
  label = " (smoke, digits)" if digits else ""
  encoder = f"released weights ({pathlib.Path(config.pretrained).name})" if loaded else \
      f"{steps} steps"
  table = Table(
      f"INTL on {source}: backbone features, {encoder}{label}",
      ["encoder", "5-NN top-1 (%)", "linear top-1 (%)", "linear top-5 (%)",
       "embedding eff. rank", "feature eff. rank"],
      [["random init", 100 * random_eval["knn_top1"],
        100 * random_eval.get("linear_top1", float("nan")),
        100 * random_eval.get("linear_top5", float("nan")),
        random_eval["embedding_effective_rank"], random_eval["feature_effective_rank"]],
       ["INTL (ours)", 100 * final["knn_top1"], 100 * final.get("linear_top1", float("nan")),
        100 * final.get("linear_top5", float("nan")), final["embedding_effective_rank"],
        final["feature_effective_rank"]],
       ["INTL (paper)" if variant in INTL_PAPER else "INTL (paper, CIFAR-10 R18 1000 ep)",
        paper[1], paper[0], paper[2], float("nan"), float("nan")]],
      note="Smoke numbers are a CPU sanity run on 8x8 digits and are not comparable with the "
           "paper's row." if digits else "")
  tables = [table]
  if linear is not None:
    tables.append(Table(
        f"Official linear evaluation ({config.linear_eval.epochs} epochs, SGD, crop "
        f"{config.linear_eval.crop})", ["epoch choice", "top-1 (%)", "top-5 (%)"],
        [["best validation epoch (official: the validation set is the test set)",
          100 * linear["best_top1"], 100 * linear["best_top5"]],
         ["last epoch", 100 * linear["top1"], 100 * linear["top5"]],
         ["INTL (paper)", paper[0], paper[2]]]))
  if semi:
    tables.append(Table(
        f"Official semi-supervised fine-tuning ({config.semi.epochs} epochs, lr backbone "
        f"{config.semi.lr_backbone:g} / classifier {config.semi.lr_classifier:g})",
        ["labels", "best top-1 (%)", "best top-5 (%)", "last top-1 (%)", "last top-5 (%)"],
        [[f"{p} %", 100 * r["best_top1"], 100 * r["best_top5"], 100 * r["top1"], 100 * r["top5"]]
         for p, r in semi.items()],
        note="The paper's semi-supervised numbers were not verifiable here (specs/intl.md 7)."))
  dim = config.model.features
  checks = {
      f"INTL learns useful features without labels: its 5-NN beats the random encoder's by "
      f"{100 * config.knn_margin:g} points":
          final["knn_top1"] > random_eval["knn_top1"] + config.knn_margin,
      f"INTL avoids dimensional collapse: embedding effective rank > D/16 = {dim / 16:g}":
          final["embedding_effective_rank"] > dim / 16,
  }
  method = (f"INTL_M (EMA key m0 = {config.ema_momentum:g})" if config.ema_momentum else "INTL")
  return Report(
      title=f"INTL self-supervised pre-training ({source}, {config.preset})",
      tables=tables, figures=figures, checks=checks,
      headline=_headline(final, random_eval, None if digits else paper),
      notes=[f"{method}, {len(views)} views, {steps} steps, global batch "
             f"{config.train.batch_size}, IterNorm T={config.iterations} whitening "
             f"{config.whiten}, beta = official trade-off {evaluation_beta(config):.3f}.",
             "Evaluation: frozen backbone, eval-mode BatchNorm, 5-NN (Euclidean, majority vote, "
             "ties to the smallest label) and the official Adam linear probe."])


def _headline(final: dict, random_eval: dict, paper: tuple | None) -> Headline:
  """INTL's 5-NN (and linear top-1 where probed) against the random encoder's; the paper's
  figures of the same recipe (None: a sanity run the paper has no number for)."""
  def figures(knn, linear):
    return ", ".join(f"{name} {value:.1f} %" for name, value in
                     (("5-NN", knn), ("linear top-1", linear)) if np.isfinite(value))

  ours = figures(100 * final["knn_top1"], 100 * final.get("linear_top1", np.nan))
  return Headline("INTL learns features without labels (frozen backbone, above a random encoder)",
                  f"{ours} vs 5-NN {100 * random_eval['knn_top1']:.1f} % (random init)",
                  figures(paper[1], paper[0]) if paper else "")


def _probe_config(config, section, train_size: int) -> tuple[ml_collections.ConfigDict, int]:
  """The fit config of ``evaluate.py`` (SGD momentum 0.9, no weight decay, head lr
  ``lr_classifier * batch / 256`` decayed x0.1 at the milestone epochs, validation every epoch)
  and its steps per epoch."""
  steps_per_epoch = max(train_size // section.batch_size, 1)
  probe = train.default_config()
  probe.update(total_steps=section.epochs * steps_per_epoch, batch_size=section.batch_size,
               log_every=min(50, steps_per_epoch), eval_every=steps_per_epoch,
               checkpoint_every=steps_per_epoch, progress=config.train.progress,
               seed=config.train.seed)
  probe.optimizer.update(name="momentum", weight_decay=0.0,
                         learning_rate=section.lr_classifier * section.batch_size / 256)
  probe.schedule.update(name="step", decay_factor=0.1,
                        boundaries=[m * steps_per_epoch for m in section.milestones])
  probe.select.update(metric="top1", mode="max")
  return probe, steps_per_epoch


def _best_and_last(fit) -> dict[str, float]:
  evals = [r for r in fit.history if "eval/top1" in r] + [{**fit.evals, "step": fit.step}]
  best = max(evals, key=lambda r: r["eval/top1"])
  return {"top1": fit.evals["eval/top1"], "top5": fit.evals["eval/top5"],
          "best_top1": best["eval/top1"], "best_top5": best["eval/top5"]}


def _num_classes(config, data) -> int:
  return NUM_CLASSES.get(config.data.source, int(max(data.y_train.max(), data.y_test.max())) + 1)


def linear_evaluation(config, backbone, data, images, workdir: pathlib.Path) -> dict[str, float]:
  """The official ImageNet linear evaluation of the pre-trained backbone (``evaluate.py``):
  returns the last epoch's and the best epoch's top-1 / top-5.

  ``backbone``: ``(module, variables)``; ``images``: the pre-training images (ImageNet: the
  encoded train records, with labels)."""
  le = config.linear_eval
  streamed = not isinstance(images, np.ndarray)
  x_train, y_train = (images, None) if streamed else (data.x_train, data.y_train)
  probe = tasks.LinearEvalTask(*backbone, x_train, y_train, data.x_test, data.y_test,
                               num_classes=_num_classes(config, data), crop=le.crop,
                               resize=le.resize, mean=data.mean, std=data.std)
  probe_config, _ = _probe_config(config, le, len(x_train))
  return _best_and_last(train.fit(probe, probe_config, workdir / "linear_eval"))


def semi_supervised(config, percent: int, backbone, data, workdir: pathlib.Path) -> dict:
  """The official semi-supervised fine-tuning (``evaluate.py --weights finetune
  --train-percent P``) on ImageNet-1k's ``percent<P>`` subset; last and best epoch top-1 / 5."""
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders import imagenet

  s = config.semi
  if config.data.source != "in1k":
    raise ValueError(f"semi.percents: the 1 % / 10 % subsets are ImageNet-1k's; data.source is "
                     f"{config.data.source!r}")
  builder = tfds_lib.prepare(imagenet.ImageNet1k, config=f"percent{percent}")
  source = tfds_lib.data_source(builder, "train")
  task = tasks.FineTuneTask(*backbone, source, None, data.x_test, data.y_test,
                            num_classes=_num_classes(config, data),
                            crop=config.linear_eval.crop, resize=config.linear_eval.resize,
                            mean=data.mean, std=data.std,
                            backbone_lr_ratio=s.lr_backbone / s.lr_classifier)
  probe_config, _ = _probe_config(config, s, len(source))
  return _best_and_last(train.fit(task, probe_config, workdir / f"semi_{percent}percent"))


def evaluation_beta(config) -> float:
  from jspectral.ssl import spectral_transform as st

  return st.trade_off(config.train.batch_size, config.model.features, config.whiten)


def save_spectrum_figure(path, init_spectrum, spectra, history) -> None:
  """Eigen-spectra of the embedding (normalised by their sum) at every evaluation, and the
  effective ranks over training: the paper's headline figure (INTL flattens the spectrum)."""
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
  colours = plt.cm.viridis(np.linspace(0, 1, max(len(spectra), 1)))
  evals = [r for r in history if "eval/embedding_effective_rank" in r]
  lam = np.clip(init_spectrum, 1e-12, None)
  axes[0].semilogy(lam / lam.sum(), "k--", label="random init")
  for (spec_z, _), colour, record in zip(spectra, colours, evals, strict=False):
    lam = np.clip(spec_z, 1e-12, None)
    axes[0].semilogy(lam / lam.sum(), color=colour, label=f"step {record['step']}")
  axes[0].set(xlabel="eigenvalue index", ylabel="normalised eigenvalue",
              title="embedding covariance spectrum")
  axes[0].legend(fontsize=7)
  steps = [r["step"] for r in evals]
  axes[1].plot(steps, [r["eval/embedding_effective_rank"] for r in evals], "o-", label="embedding")
  axes[1].plot(steps, [r["eval/feature_effective_rank"] for r in evals], "s-", label="backbone")
  axes[1].set(xlabel="step", ylabel="effective rank", title="effective rank")
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
