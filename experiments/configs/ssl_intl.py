"""INTL self-supervised pre-training (Weng et al., ICLR 2024) with online kNN and a linear probe.

Presets:
  smoke: 2-view INTL on scikit-learn's bundled ``load_digits`` (8x8 digits upsampled to 16x16 RGB)
    with a one-block-per-stage CIFAR-stem ResNet; CPU, no download. Checks: the 5-NN accuracy of
    the trained backbone beats a randomly initialised one by ``knn_margin``, and the embedding's
    effective rank does not collapse.
  paper: the official CIFAR-10 recipe (``scripts/cifar10.sh``): ResNet-18 (CIFAR stem), projector
    2048-2048-2048, batch 256, 1000 epochs, SGD momentum 0.9, lr 0.3, weight decay 1e-4, 2 warm-up
    epochs then cosine to 1e-3 lr, IterNorm axis 0 T 4, beta 0.05, kNN every 5 epochs.
  paper:cifar100, paper:in100: the paper's other Table 1 rows, each with its own recipe (batch,
    lr, weight-decay groups, precision, image size) chosen before any ``--set``.

Config, data and network are shared with ``ssl_spectral_transforms`` (``experiments.common``).
"""

from __future__ import annotations

import pathlib

import jax
import matplotlib
import ml_collections
import numpy as np

from experiments.common import INTL_PAPER, INTL_VARIANTS, intl_config, intl_data, intl_network
from experiments.report import Report, Table, save_loss_curve
from jspectral import train
from jspectral.ssl import tasks

matplotlib.use("Agg")

PAPER_VARIANTS = INTL_VARIANTS


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  return intl_config(preset)


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  data, views, images = intl_data(config)
  task = tasks.INTLTask(intl_network(config), images, views, iterations=config.iterations,
                        whiten=config.whiten, total_steps=config.train.total_steps, eval_data=data,
                        knn_k=config.knn_k, linear_epochs=config.linear_epochs,
                        seed=config.train.seed)
  params, state = jax.jit(task.init)(jax.random.PRNGKey(config.train.seed), None)
  random_eval = task.evaluate(*jax.tree.map(np.asarray, (params, state)))
  init_spectrum = task.spectra.pop()
  result = train.fit(task, config.train, workdir / "intl")
  final = {k.removeprefix("eval/"): v for k, v in result.evals.items()}
  linear = linear_evaluation(config, task, result, data, workdir) if config.linear_eval.epochs \
      else None
  save_loss_curve(workdir / "loss.png", {"INTL": result.history})
  save_spectrum_figure(workdir / "spectrum.png", init_spectrum[0], task.spectra, result.history)
  source = config.data.source
  digits = source == "digits"  # a CPU sanity run, not comparable with the paper
  paper = INTL_PAPER.get(source, INTL_PAPER["cifar10"])
  label = " (smoke, digits)" if digits else ""
  table = Table(
      f"INTL on {source}: backbone features, {result.step} steps{label}",
      ["encoder", "5-NN top-1 (%)", "linear top-1 (%)", "linear top-5 (%)",
       "embedding eff. rank", "feature eff. rank"],
      [["random init", 100 * random_eval["knn_top1"],
        100 * random_eval.get("linear_top1", float("nan")),
        100 * random_eval.get("linear_top5", float("nan")),
        random_eval["embedding_effective_rank"], random_eval["feature_effective_rank"]],
       ["INTL (ours)", 100 * final["knn_top1"], 100 * final.get("linear_top1", float("nan")),
        100 * final.get("linear_top5", float("nan")), final["embedding_effective_rank"],
        final["feature_effective_rank"]],
       ["INTL (paper)" if source in INTL_PAPER else "INTL (paper, CIFAR-10 R18 1000 ep)",
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
  dim = config.model.features
  checks = {
      f"5-NN beats the random encoder by {100 * config.knn_margin:g} points":
          final["knn_top1"] > random_eval["knn_top1"] + config.knn_margin,
      f"embedding effective rank > D/16 = {dim / 16:g} (no collapse)":
          final["embedding_effective_rank"] > dim / 16,
  }
  return Report(
      title=f"INTL self-supervised pre-training ({source}, {config.preset})",
      tables=tables, figures=["loss.png", "spectrum.png"], checks=checks,
      notes=[f"{result.step} steps, global batch {config.train.batch_size}, IterNorm "
             f"T={config.iterations} whitening {config.whiten}, beta = official trade-off "
             f"{evaluation_beta(config):.3f}.",
             "Evaluation: frozen backbone, eval-mode BatchNorm, 5-NN (Euclidean, majority vote, "
             "ties to the smallest label) and the official Adam linear probe."])


def linear_evaluation(config, task, result, data, workdir: pathlib.Path) -> dict[str, float]:
  """The official ImageNet linear evaluation of the pre-trained backbone (``evaluate.py``): SGD
  momentum 0.9, no weight decay, ``lr_classifier * batch / 256`` decayed x0.1 at the milestone
  epochs, evaluated every epoch; returns the last epoch's and the best epoch's top-1 / top-5."""
  le = config.linear_eval
  variables = {"params": result.params["backbone"],
               "batch_stats": result.model_state["batch_stats"]["backbone"]}
  probe = tasks.LinearEvalTask(
      task.model.backbone, variables, data.x_train, data.y_train, data.x_test, data.y_test,
      num_classes=int(max(data.y_train.max(), data.y_test.max())) + 1, crop=le.crop,
      resize=le.resize, mean=data.mean, std=data.std)
  steps_per_epoch = max(len(data.x_train) // le.batch_size, 1)
  probe_config = train.default_config()
  probe_config.update(total_steps=le.epochs * steps_per_epoch, batch_size=le.batch_size,
                      log_every=min(50, steps_per_epoch), eval_every=steps_per_epoch,
                      checkpoint_every=steps_per_epoch, progress=config.train.progress,
                      seed=config.train.seed)
  probe_config.optimizer.update(name="momentum", weight_decay=0.0,
                                learning_rate=le.lr_classifier * le.batch_size / 256)
  probe_config.schedule.update(name="step", decay_factor=0.1,
                               boundaries=[m * steps_per_epoch for m in le.milestones])
  probe_config.select.update(metric="top1", mode="max")
  fit = train.fit(probe, probe_config, workdir / "linear_eval")
  evals = [r for r in fit.history if "eval/top1" in r] + [
      {**fit.evals, "step": fit.step}]
  best = max(evals, key=lambda r: r["eval/top1"])
  return {"top1": fit.evals["eval/top1"], "top5": fit.evals["eval/top5"],
          "best_top1": best["eval/top1"], "best_top5": best["eval/top5"]}


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
