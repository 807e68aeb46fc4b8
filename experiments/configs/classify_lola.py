"""LoLA-SpecViT pixel classification: PCA-15 patches, LoRA-only training, OA / AA / kappa.

Smoke: a synthetic labelled scene, the mini model, CPU; must beat a per-pixel logistic regression
on the same split. Paper (``paper``: WHU-Hi LongKou, HongHu and Salinas at the released code's
10 % labels; one dataset or the README's 2 % in :data:`PAPER_VARIANTS`): the official recipe,
100 epochs whose updates per epoch follow the split (``ceil(N / 32) // 2`` updates of 2 x 32),
an evaluation every 5 epochs, early stopping after 15 evaluations without a strict improvement,
scikit-learn's stratified split (``random_state=345``), and both axis orders (``official`` and
``spectral``). The TFDS builders in ``jspectral.data.builders`` read the scenes.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import optax

from experiments.common import check_source
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import models, train
from jspectral.classification import lola_specvit as lola
from jspectral.classification.protocol import scores
from jspectral.classification.tasks import LoLATask
from jspectral.data import patches, synthetic

matplotlib.use("Agg")

# config.datasets entry -> (builder module, builder class, builder config)
SCENES = {"whu_hi_longkou": ("whu_hi", "WhuHi", "longkou"),
          "whu_hi_honghu": ("whu_hi", "WhuHi", "honghu"),
          "salinas": ("salinas", "Salinas", "corrected"),
          "indian_pines": ("indian_pines", "IndianPines", "corrected")}
PAPER_VARIANTS = {
    "longkou": "WHU-Hi LongKou at the released code's 10 % labels, both axis orders",
    "honghu": "WHU-Hi HongHu at the released code's 10 % labels, both axis orders",
    "salinas": "Salinas at the released code's 10 % labels, both axis orders",
    "longkou_2pct": "WHU-Hi LongKou at the README's 2 % labels, both axis orders",
    "honghu_2pct": "WHU-Hi HongHu at the README's 2 % labels, both axis orders",
    "salinas_2pct": "Salinas at the README's 2 % labels, both axis orders",
}
_VARIANT_SCENES = {"longkou": "whu_hi_longkou", "honghu": "whu_hi_honghu", "salinas": "salinas"}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  """``smoke``, ``paper`` (three scenes, 10 %) or ``paper:<variant>`` (:data:`PAPER_VARIANTS`)."""
  base, _, variant = preset.partition(":")
  if preset not in ("smoke", "paper") and (base != "paper" or variant not in PAPER_VARIANTS):
    raise ValueError(f"preset: expected 'smoke', 'paper' or one of "
                     f"{[f'paper:{v}' for v in PAPER_VARIANTS]}, got {preset!r}")
  smoke = base == "smoke"
  scene, _, fraction = variant.partition("_")
  config = ml_collections.ConfigDict()
  config.preset = preset
  config.model_name = "lola_specvit_mini" if smoke else "lola_specvit"
  # synthetic: a labelled scene drawn from config.scene; tfds: the scenes' TFDS builders (SCENES),
  # prepared under data_dir ("" = $TFDS_DATA_DIR or TFDS's default, read when the run starts)
  config.data = ml_collections.ConfigDict(dict(source="synthetic" if smoke else "tfds",
                                               data_dir=""))
  # depths / heads of the transformer levels; empty: the model's own (a dry run cuts them)
  config.model = ml_collections.ConfigDict(dict(depths=[], heads=[]))
  config.datasets = (["synthetic"] if smoke else [_VARIANT_SCENES[scene]] if scene
                     else ["whu_hi_longkou", "whu_hi_honghu", "salinas"])
  # the released code trains on 10 % (README: 2 %); the smoke keeps enough pixels to validate on
  config.train_fraction = 0.15 if smoke else 0.02 if fraction == "2pct" else 0.1
  # sklearn: scikit-learn's train_test_split(stratify=, random_state=split_seed), as the official
  # code; rounded: round(fraction * n) pixels of each class
  config.split = "sklearn"
  config.split_seed = 345
  # validation: select (and stop early) on a split carved from the training pixels (default);
  # test: the official code's protocol (test-set selection), labelled as such in the report
  config.select_on = "validation"
  config.val_fraction = 0.35 if smoke else 0.1      # of the training pixels
  config.axis_orders = ["official"] if smoke else ["official", "spectral"]
  config.label_smoothing = 0.1
  config.scene = dict(height=32, width=32, bands=30, num_classes=5, noise_std=0.3)
  config.epochs = 10 if smoke else 100
  config.eval_epochs = 1 if smoke else 5              # evaluate every k epochs (and at the end)
  config.train = train.default_config()
  # total_steps and eval_every are derived per dataset from the epochs and the fitted split
  config.train.update(
      total_steps=0, eval_every=0, batch_size=8 if smoke else 64,
      grad_accum_steps=1 if smoke else 2, grad_clip_norm=0.5, trainable=lola.LORA_TRAINABLE,
      log_every=10, checkpoint_every=50 if smoke else 1000)
  # the official loop keeps a strictly better OA (ties: the earlier) and stops after 15
  # evaluations without one
  config.train.select.update(metric="val_oa", mode="max", patience=15, ties="earlier")
  config.train.optimizer.update(name="adamw", learning_rate=3e-3 if smoke else 2e-5,
                                weight_decay=0.01)
  config.use_official_schedule = not smoke
  config.checks = smoke  # LoLA must beat a per-pixel logistic regression on OA and kappa
  return config


def logistic_regression(x_train, y_train, x_test, num_classes: int, steps: int = 500):
  """Per-pixel multinomial logistic regression (full-batch Adam, small L2), predictions on test."""
  mean, std = x_train.mean(0), x_train.std(0) + 1e-6
  x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
  params = {"w": jnp.zeros((x_train.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
  tx = optax.adam(0.05)

  def loss(p):
    logits = x_train @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y_train).mean() + 1e-4 * (
        p["w"] ** 2).sum()

  @jax.jit
  def step(p, s):
    updates, s = tx.update(jax.grad(loss)(p), s)
    return optax.apply_updates(p, updates), s

  state = tx.init(params)
  for _ in range(steps):
    params, state = step(params, state)
  return np.asarray((x_test @ params["w"] + params["b"]).argmax(-1))


def load_scene(name: str, config):
  """``(cube (H, W, B), labels (H, W) 0..K)`` of dataset ``name`` from ``config.data.source``."""
  if check_source(config, "synthetic", "tfds") == "synthetic":
    cube, labels = synthetic.classification_scene(jax.random.PRNGKey(0), **config.scene)
    return np.asarray(cube), np.asarray(labels)
  import importlib
  import os

  from jspectral.data import tfds as tfds_lib

  if name not in SCENES:
    raise ValueError(f"config.datasets: unknown scene {name!r}; expected one of {list(SCENES)}")
  module, cls, builder_config = SCENES[name]
  builder_cls = getattr(importlib.import_module(f"jspectral.data.builders.{module}"), cls)
  data_dir = config.data.data_dir or os.environ.get("TFDS_DATA_DIR")
  builder = tfds_lib.prepare(builder_cls, config=builder_config, data_dir=data_dir)
  record = tfds_lib.data_source(builder, "scene")[0]
  return np.asarray(record["cube"]), np.asarray(record["labels"])


def split(labels: np.ndarray, fraction: float, config) -> tuple[np.ndarray, np.ndarray]:
  """``(kept, rest)`` positions: ``fraction`` of each class's labelled pixels by ``config.split``.

  Args:
    labels: ``(H, W)`` label map, 0 = unlabelled.
    fraction: share of each class in ``kept``.
    config: the experiment config (``split``, ``split_seed``).

  Returns:
    ``(kept, rest)``, ``(N, 2)`` row/column arrays.
  """
  if config.split == "sklearn":
    return patches.sklearn_label_map_split(labels, train_fraction=fraction,
                                           random_state=config.split_seed)
  if config.split == "rounded":
    return patches.stratified_split(labels, seed=config.split_seed, train_fraction=fraction)
  raise ValueError(f"config.split: expected 'sklearn' or 'rounded', got {config.split!r}")


def protocol_splits(labels: np.ndarray, config) -> dict[str, np.ndarray]:
  """The fitted, selection and test positions of one scene.

  ``select_on="validation"`` carves ``val_fraction`` of the training pixels (same split rule) for
  model selection and early stopping; ``"test"`` fits every training pixel and selects on the
  test pixels, as the official code does.

  Args:
    labels: ``(H, W)`` label map.
    config: the experiment config.

  Returns:
    ``{"fit", "select", "test"}`` position arrays ``(N, 2)``.
  """
  train_pos, test_pos = split(labels, config.train_fraction, config)
  if config.select_on == "test":
    return {"fit": train_pos, "select": test_pos, "test": test_pos}
  if config.select_on != "validation":
    raise ValueError(f"config.select_on: expected 'validation' or 'test', got "
                     f"{config.select_on!r}")
  train_map = np.zeros_like(labels)
  train_map[tuple(train_pos.T)] = labels[tuple(train_pos.T)]
  fit_pos, val_pos = split(train_map, 1 - config.val_fraction, config)
  return {"fit": fit_pos, "select": val_pos, "test": test_pos}


def train_config(config, fit_size: int) -> ml_collections.ConfigDict:
  """``config.train`` with ``total_steps`` and ``eval_every`` derived from the epochs as the
  official loop runs them: ``ceil(N / micro-batch) // accumulation`` updates per epoch."""
  per_epoch = lola.official_steps_per_epoch(fit_size, config.train.batch_size,
                                            config.train.grad_accum_steps)
  derived = ml_collections.ConfigDict(config.train.to_dict())
  derived.update(total_steps=config.epochs * per_epoch, eval_every=config.eval_epochs * per_epoch)
  return derived


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  rows, checks, figures, histories, stops = [], {}, [], {}, []
  for name in config.datasets:
    cube, labels = load_scene(name, config)
    num_classes = int(labels.max())
    reduced = lola.pca_whiten(cube, 15)
    where = protocol_splits(labels, config)
    for order in config.axis_orders:
      patch_set = functools.partial(_patch_set, reduced, labels, order)
      (x_fit, y_fit), (x_sel, y_sel) = (patch_set(where[k]) for k in ("fit", "select"))
      module = models.create(config.model_name, num_classes=num_classes, axis_order=order,
                             **{k: tuple(v) for k, v in config.model.items() if v})
      task = LoLATask(module, x_fit, y_fit, x_sel, y_sel, config.label_smoothing,
                      config.use_official_schedule)
      fit_config = train_config(config, len(y_fit))
      result = train.fit(task, fit_config, workdir / name / order)
      histories[f"{name}/{order}"] = result.history
      params, state = result.best["params"], result.best["model_state"]
      # the first axis order maps every labelled pixel, the test pixels last; the others only
      # predict the test pixels
      mapped = order == config.axis_orders[0]
      positions = (np.concatenate([where["fit"], where["select"], where["test"]]) if mapped
                   else where["test"])
      x_predict, y_predict = patch_set(positions)
      predicted = task.predict(params, state, x_predict)
      n_test = len(where["test"])
      y_test = y_predict[-n_test:]
      ours = scores(predicted[-n_test:], y_test, num_classes)
      rows.append([name, f"{config.model_name} ({order} axes)", f"{config.train_fraction:.0%}",
                   ours["OA"], ours["AA"], ours["kappa"], int(result.best["step"]),
                   result.step, "–"])
      if result.step < fit_config.total_steps:
        stops.append(f"{name}/{order}: stopped early at step {result.step} of "
                     f"{fit_config.total_steps}")
      if mapped:
        _save_map(workdir / f"{name}_map.png", labels, positions, predicted + 1)
        figures.append(f"{name}_map.png")
    baseline = scores(logistic_regression(reduced[tuple(where["fit"].T)], jnp.asarray(y_fit),
                                          reduced[tuple(where["test"].T)], num_classes),
                      y_test, num_classes)
    rows.append([name, "per-pixel logistic regression", f"{config.train_fraction:.0%}",
                 baseline["OA"], baseline["AA"], baseline["kappa"], "–", "–", "–"])
    if config.checks:
      claim = f"{name}: LoLA-SpecViT beats a per-pixel classifier"
      checks[f"{claim}: OA above logistic regression's"] = ours["OA"] > baseline["OA"]
      checks[f"{claim}: kappa above logistic regression's"] = ours["kappa"] > baseline["kappa"]
  save_loss_curve(workdir / "loss.png", histories)
  return Report(title=f"LoLA-SpecViT classification ({config.preset})",
                tables=[_table(config, rows)], figures=["loss.png", *figures], checks=checks,
                notes=_notes(config) + stops, headline=_headline(rows))


def _headline(rows) -> Headline:
  """LoLA against the per-pixel logistic regression, test OA per dataset."""
  oa = {(r[0], r[1].startswith("per-pixel")): r[3] for r in rows}
  return Headline("LoLA-SpecViT beats a per-pixel logistic regression (test OA)", "; ".join(
      f"{name} OA {oa[name, False]:.1f} vs {oa[name, True]:.1f} (logistic regression)"
      for name, baseline in oa if baseline))


def _table(config, rows) -> Table:
  test_selected = config.select_on == "test"
  return Table(
      f"Test-set OA / AA / kappa (x100), model selected on the {config.select_on} split"
      + (" (the official protocol: test-set selection)" if test_selected else ""),
      ["dataset", "method", "train labels", "OA", "AA", "kappa", "selected step", "last step",
       "paper OA"], rows,
      note="The paper's per-dataset tables could not be retrieved (specs/lola_specvit.md §6); "
           "its abstract reports up to 99.91 % OA. Smoke numbers come from a synthetic scene.")


def _notes(config) -> list[str]:
  return [
      f"axis orders {list(config.axis_orders)} ('official': the released pipeline's (H, W, C) "
      "depth order; 'spectral': 3-D convolutions along the bands, as the paper describes); only "
      "LoRA A/B/gate/residual are trained (optax mask); BatchNorm statistics still update.",
      f"split: {config.split} (seed {config.split_seed}), {config.train_fraction:.0%} of each "
      f"class for training; {config.epochs} epochs, evaluation every {config.eval_epochs}, early "
      f"stopping after {config.train.select.patience} evaluations without a strict improvement.",
      "The official code selects its checkpoint (and stops early) on the test set "
      "(select_on='test' reproduces it); "
      + ("here the weights with the best validation OA (a split of the training pixels) are "
         "scored." if config.select_on == "validation" else
         "THIS RUN SELECTED ON THE TEST SET, as the official code does: its numbers are "
         "optimistic.")]


def _patch_set(reduced, labels, axis_order, positions):
  """Zero-padded 15x15 patches at ``positions``, per-sample normalised, and their labels."""
  x, y = patches.classification_patches(reduced, labels, positions, 15, pad_mode="constant")
  return np.asarray(lola.normalise_patches(jnp.asarray(x), axis_order)), y


def _save_map(path, labels, positions, predictions) -> None:
  import matplotlib.pyplot as plt

  predicted = np.zeros_like(labels)
  predicted[tuple(positions.T)] = predictions
  fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
  for ax, image, title in zip(axes, (labels, predicted), ("ground truth", "prediction"),
                              strict=True):
    ax.imshow(image, cmap="tab20", vmin=0, vmax=20, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
