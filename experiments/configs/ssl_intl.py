"""INTL self-supervised pre-training (Weng et al., ICLR 2024) with online kNN and a linear probe.

Presets:
  smoke: 2-view INTL on scikit-learn's bundled ``load_digits`` (8x8 digits upsampled to 16x16 RGB)
    with a one-block-per-stage CIFAR-stem ResNet; CPU, no download. Checks: the 5-NN accuracy of
    the trained backbone beats a randomly initialised one by ``knn_margin``, and the embedding's
    effective rank does not collapse.
  paper: the official CIFAR-10 recipe (``scripts/cifar10.sh``): ResNet-18 (CIFAR stem), projector
    2048-2048-2048, batch 256, 1000 epochs, SGD momentum 0.9, lr 0.3, weight decay 1e-4, 2 warm-up
    epochs then cosine to 1e-3 lr, IterNorm axis 0 T 4, beta 0.05, kNN every 5 epochs. Set
    ``dataset`` to ``cifar100`` or ``in100`` for the other settings (reads the TFDS builders).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

from experiments.report import Report, Table, save_loss_curve
from jspectral import train
from jspectral.nn import resnet
from jspectral.ssl import intl, tasks

matplotlib.use("Agg")

# Official README / paper Table 1 (linear top-1, 5-NN, linear top-5).
PAPER = {"cifar10": (92.60, 90.03, 99.80), "cifar100": (70.88, 61.90, 92.13),
         "in100": (81.68, 73.46, 95.42)}
SETTINGS = {  # dataset -> (images, batch, epochs, lr, weight decay, projector hidden/out)
    "cifar10": dict(train_size=50_000, batch=256, epochs=1000, lr=0.3, wd=1e-4, hidden=2048,
                    features=2048),
    "cifar100": dict(train_size=50_000, batch=256, epochs=1000, lr=0.3, wd=1e-4, hidden=2048,
                     features=2048),
    "in100": dict(train_size=126_689, batch=128, epochs=400, lr=0.5 * 128 / 256, wd=2.5e-5,
                  hidden=4096, features=8192),
}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.iterations = 4
  c.whiten = "samples"
  c.knn_k = 5
  c.train = train.default_config()
  if preset == "smoke":
    c.dataset = "digits"
    c.image_size = 16
    c.model = dict(stage_sizes=(1, 1, 1, 1), width=16, hidden=128, features=128)
    c.linear_epochs = 100
    c.knn_margin = 0.01
    c.train.update(total_steps=120, batch_size=64, log_every=10, eval_every=40,
                   checkpoint_every=60)
    c.train.optimizer.update(name="momentum", learning_rate=0.1, weight_decay=1e-4)
    c.train.schedule.update(name="warmup_cosine", warmup_steps=10, min_lr_ratio=1e-3)
  else:
    c.dataset = "cifar10"
    s = SETTINGS[c.dataset]
    c.image_size = 32
    c.model = dict(stage_sizes=(2, 2, 2, 2), width=64, hidden=s["hidden"], features=s["features"])
    c.linear_epochs = 500
    c.knn_margin = 0.0
    steps_per_epoch = s["train_size"] // s["batch"]
    c.train.update(total_steps=s["epochs"] * steps_per_epoch, batch_size=s["batch"],
                   log_every=50, eval_every=5 * steps_per_epoch, checkpoint_every=steps_per_epoch)
    c.train.optimizer.update(name="momentum", learning_rate=s["lr"] * s["batch"] / 256,
                             weight_decay=s["wd"])
    c.train.schedule.update(name="warmup_cosine", warmup_steps=2 * steps_per_epoch,
                            min_lr_ratio=1e-3)
  return c


def digits(size: int) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's 1,797 digits as (N, size, size, 3) RGB images in [0, 1] and labels."""
  from sklearn.datasets import load_digits

  data = load_digits()
  images = jnp.asarray(data.images / 16.0, jnp.float32)
  images = jax.image.resize(images, (len(images), size, size), "linear").clip(0, 1)
  return np.repeat(np.asarray(images)[..., None], 3, axis=-1), data.target.astype(np.int32)


def load_data(config) -> tuple[tasks.EvalData, tuple[intl.ViewAugment, ...], np.ndarray]:
  """(evaluation data, views, pre-training images) of ``config.dataset``."""
  if config.dataset == "digits":
    images, labels = digits(config.image_size)
    perm = np.random.default_rng(0).permutation(len(labels))
    train_idx, test_idx = perm[:1200], perm[1200:]
    mean, std = (0.25,) * 3, (0.35,) * 3
    # Grey digits: no saturation/hue jitter, no grayscale, no flip (a flipped digit is another).
    views = tuple(intl.ViewAugment(crop_size=config.image_size, scale=(0.3, 1.0), saturation=0.0,
                                   hue=0.0, gray_prob=0.0, flip_prob=0.0, mean=mean, std=std)
                  for _ in range(2))
    data = tasks.EvalData(images[train_idx], labels[train_idx], images[test_idx],
                         labels[test_idx], mean, std)
    return data, views, images[train_idx]
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders import cifar, imagenet100

  if config.dataset in ("cifar10", "cifar100"):
    builder = tfds_lib.prepare(cifar.Cifar10 if config.dataset == "cifar10" else cifar.Cifar100)
    arrays = {s: cifar.as_arrays(builder, s) for s in ("train", "test")}
    views = intl.cifar_views(config.dataset)
    # Official quirk: the CIFAR-100 evaluation loader normalises with the CIFAR-10 statistics.
    data = tasks.EvalData(*arrays["train"], *arrays["test"], intl.CIFAR10_MEAN, intl.CIFAR10_STD)
    return data, views, arrays["train"][0]
  builder = tfds_lib.prepare(imagenet100.ImageNet100)
  train_images, train_labels = imagenet100.as_arrays(builder, "train")
  val_images, val_labels = imagenet100.as_arrays(builder, "validation")
  data = tasks.EvalData(train_images, train_labels, val_images, val_labels, intl.IMAGENET_MEAN,
                       intl.IMAGENET_STD)
  return data, intl.imagenet_views(), train_images


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  data, views, images = load_data(config)
  stem = "cifar" if config.dataset in ("digits", "cifar10", "cifar100") else "imagenet"
  model = intl.INTLNet(
      resnet.ResNet(stage_sizes=tuple(config.model.stage_sizes), width=config.model.width,
                    stem=stem),
      intl.Projector(config.model.hidden, config.model.features))
  task = tasks.INTLTask(model, images, views, iterations=config.iterations, whiten=config.whiten,
                       total_steps=config.train.total_steps, eval_data=data, knn_k=config.knn_k,
                       linear_epochs=config.linear_epochs, seed=config.train.seed)
  params, state = jax.jit(task.init)(jax.random.PRNGKey(config.train.seed), None)
  random_eval = task.evaluate(*jax.tree.map(np.asarray, (params, state)))
  init_spectrum = task.spectra.pop()
  result = train.fit(task, config.train, workdir / "intl")
  final = {k.removeprefix("eval/"): v for k, v in result.evals.items()}
  save_loss_curve(workdir / "loss.png", {"INTL": result.history})
  save_spectrum_figure(workdir / "spectrum.png", init_spectrum[0], task.spectra, result.history)
  smoke = config.preset == "smoke"
  paper = PAPER.get(config.dataset, PAPER["cifar10"])
  label = " (smoke, digits)" if smoke else ""
  table = Table(
      f"INTL on {config.dataset}: backbone features, {result.step} steps{label}",
      ["encoder", "5-NN top-1 (%)", "linear top-1 (%)", "linear top-5 (%)",
       "embedding eff. rank", "feature eff. rank"],
      [["random init", 100 * random_eval["knn_top1"],
        100 * random_eval.get("linear_top1", float("nan")),
        100 * random_eval.get("linear_top5", float("nan")),
        random_eval["embedding_effective_rank"], random_eval["feature_effective_rank"]],
       ["INTL (ours)", 100 * final["knn_top1"], 100 * final.get("linear_top1", float("nan")),
        100 * final.get("linear_top5", float("nan")), final["embedding_effective_rank"],
        final["feature_effective_rank"]],
       ["INTL (paper, CIFAR-10 R18 1000 ep)" if smoke else "INTL (paper)", paper[1], paper[0],
        paper[2], float("nan"), float("nan")]],
      note="Smoke numbers are a CPU sanity run on 8x8 digits and are not comparable with the "
           "paper's row." if smoke else "")
  dim = config.model.features
  checks = {
      f"5-NN beats the random encoder by {100 * config.knn_margin:g} points":
          final["knn_top1"] > random_eval["knn_top1"] + config.knn_margin,
      f"embedding effective rank > D/16 = {dim / 16:g} (no collapse)":
          final["embedding_effective_rank"] > dim / 16,
  }
  return Report(
      title=f"INTL self-supervised pre-training ({config.dataset}, {config.preset})",
      tables=[table], figures=["loss.png", "spectrum.png"], checks=checks,
      notes=[f"{result.step} steps, global batch {config.train.batch_size}, IterNorm "
             f"T={config.iterations} whitening {config.whiten}, beta = official trade-off "
             f"{evaluation_beta(config):.3f}.",
             "Evaluation: frozen backbone, eval-mode BatchNorm, 5-NN (Euclidean, majority vote, "
             "ties to the smallest label) and the official Adam linear probe."])


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
