"""LoLA-SpecViT pixel classification: PCA-15 patches, LoRA-only training, OA / AA / kappa.

Smoke: a synthetic labelled scene, the mini model, CPU; must beat a per-pixel logistic regression
on the same split. Paper: WHU-Hi LongKou, HongHu and Salinas at the code's 10 % and the README's
2 % label fractions (the TFDS builders in ``jspectral.data.builders``).
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
from experiments.report import Report, Table, save_loss_curve
from jspectral import models, train
from jspectral.classification import lola_specvit as lola
from jspectral.classification.protocol import scores
from jspectral.classification.tasks import LoLATask
from jspectral.data import patches, synthetic

matplotlib.use("Agg")


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  smoke = preset == "smoke"
  config = ml_collections.ConfigDict()
  config.preset = preset
  config.model_name = "lola_specvit_mini" if smoke else "lola_specvit"
  # synthetic: a labelled scene drawn from config.scene; tfds: the scenes' TFDS builders
  config.data = ml_collections.ConfigDict(dict(source="synthetic" if smoke else "tfds"))
  config.datasets = ["synthetic"] if smoke else ["whu_hi_longkou", "whu_hi_honghu", "salinas"]
  config.train_fraction = 0.1            # the released code; the README says 2 %
  config.val_fraction = 0.1              # of the training pixels, for model selection
  config.split_seed = 345
  config.axis_order = "official"
  config.label_smoothing = 0.1
  config.scene = dict(height=32, width=32, bands=30, num_classes=5, noise_std=0.3)
  config.train = train.default_config()
  config.train.update(
      total_steps=150 if smoke else 100 * 320, batch_size=8 if smoke else 64,
      grad_clip_norm=0.5, trainable=lola.LORA_TRAINABLE, log_every=10,
      eval_every=25 if smoke else 5 * 320,
      checkpoint_every=50 if smoke else 1000)
  config.train.select.update(metric="val_oa", mode="max")  # keep the best selection-split OA
  # validation: select on a split of the training pixels; test: the official code's protocol
  # (the checkpoint with the best test OA is reported), labelled as such in the report
  config.select_on = "validation"
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
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders import salinas, whu_hi

  builder_cls, builder_config = {"whu_hi_longkou": (whu_hi.WhuHi, "longkou"),
                                 "whu_hi_honghu": (whu_hi.WhuHi, "honghu"),
                                 "salinas": (salinas.Salinas, "corrected")}[name]
  record = tfds_lib.data_source(tfds_lib.prepare(builder_cls, config=builder_config), "scene")[0]
  return record["cube"], record["labels"]


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  rows, checks, figures, histories = [], {}, [], {}
  for name in config.datasets:
    cube, labels = load_scene(name, config)
    num_classes = int(labels.max())
    reduced = lola.pca_whiten(cube, 15)
    train_pos, test_pos = patches.stratified_split(labels, seed=config.split_seed,
                                                   train_fraction=config.train_fraction)
    train_map = np.zeros_like(labels)
    train_map[tuple(train_pos.T)] = labels[tuple(train_pos.T)]
    fit_pos, val_pos = patches.stratified_split(train_map, seed=config.split_seed + 1,
                                                train_fraction=1 - config.val_fraction)

    patch_set = functools.partial(_patch_set, reduced, labels, config.axis_order)
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = map(patch_set,
                                                           (fit_pos, val_pos, test_pos))
    module = models.create(config.model_name, num_classes=num_classes,
                           axis_order=config.axis_order)
    if config.select_on not in ("validation", "test"):
      raise ValueError(f"select_on: expected 'validation' or 'test', got {config.select_on!r}")
    x_sel, y_sel = (x_val, y_val) if config.select_on == "validation" else (x_test, y_test)
    task = LoLATask(module, x_fit, y_fit, x_sel, y_sel, config.label_smoothing,
                    config.use_official_schedule)
    result = train.fit(task, config.train, workdir / name)
    histories[name] = result.history
    params, state = result.best["params"], result.best["model_state"]
    ours = scores(task.predict(params, state, x_test), y_test, num_classes)
    baseline = scores(logistic_regression(reduced[tuple(fit_pos.T)], jnp.asarray(y_fit),
                                          reduced[tuple(test_pos.T)], num_classes),
                      y_test, num_classes)
    rows.append([name, config.model_name, f"{config.train_fraction:.0%}", ours["OA"], ours["AA"],
                 ours["kappa"], "–"])
    rows.append([name, "per-pixel logistic regression", f"{config.train_fraction:.0%}",
                 baseline["OA"], baseline["AA"], baseline["kappa"], "–"])
    if config.checks:
      checks[f"{name}: LoLA OA > logistic-regression OA"] = ours["OA"] > baseline["OA"]
      checks[f"{name}: LoLA kappa > logistic-regression kappa"] = ours["kappa"] > baseline["kappa"]
    figure = f"{name}_map.png"
    full = np.concatenate([fit_pos, val_pos, test_pos])
    pred_all = task.predict(params, state, patch_set(full)[0])
    _save_map(workdir / figure, labels, full, pred_all + 1)
    figures.append(figure)
  save_loss_curve(workdir / "loss.png", histories)
  table = Table(
      f"Test-set OA / AA / kappa (x100), model selected on the {config.select_on} split"
      + (" (the official protocol: test-set selection)" if config.select_on == "test" else ""),
      ["dataset", "method", "train labels", "OA", "AA", "kappa", "paper OA"], rows,
      note="The paper's per-dataset tables could not be retrieved (specs/lola_specvit.md §6); "
           "its abstract reports up to 99.91 % OA. Smoke numbers come from a synthetic scene.")
  return Report(title=f"LoLA-SpecViT classification ({config.preset})", tables=[table],
                figures=["loss.png", *figures], checks=checks,
                notes=[f"axis_order={config.axis_order!r}; only LoRA A/B/gate/residual are "
                       "trained (optax mask); BatchNorm statistics still update.",
                       "The official code selects its checkpoint on the test set "
                       "(select_on='test' reproduces it); "
                       + ("here the weights with the best validation OA (a split of the training "
                          "pixels) are scored." if config.select_on == "validation" else
                          "THIS RUN SELECTED ON THE TEST SET, as the official code does.")])


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
