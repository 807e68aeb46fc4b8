"""SpectralEarth downstream: segmentation, multi-label classification and Hyperview regression,
pretrained vs random init.

Smoke: synthetic EnMAP-CDL-style patches (16 px, 202 bands; linear mixtures of earthlib spectra
with a per-scene land-cover composition and a per-scene illumination gain; label = dominant class,
raw CDL codes, code 0 and an unlisted code -> background, ignored) written in the published layout
and read through the TFDS builder (``data_seed`` draws them and the archive, so that ``seed``
changes only the training, as on a published dataset). As in the paper, the encoder is
pretrained on a separate, unlabelled multi-date archive (a synthetic SpectralEarth: same
spectra, 1-3 dates per location that differ by illumination gain and offset) with
``pretrain_method``; then encoder + ConvHead are fine-tuned with few labelled scenes
(``counts``; the paper's full fine-tuning protocol: a frozen encoder's probe does not separate
the two encoders at this scale, docs/ssl.md), the same fine-tuning from a random-init encoder is
the baseline, and the pretrained one must beat it.

Paper (``paper`` = EnMAP-CDL; ``paper:<dataset>`` for the others, :data:`PAPER_VARIANTS`): the
official recipe per dataset (segmentation: Spec ViT-S/4 + ConvHead or, with
``backbone=spec_resnet50``, the all-dilated Spec ResNet-50 + FCNHead, CE with ignore index, AdamW
lr 1e-3 wd 1e-4; ``paper:corine``: multi-label classification with the encoder's own linear head,
BCE-with-logits, AdamW lr 1e-3 wd 1e-5; ``paper:hyperview``: soil P, K, Mg, pH regression with
the official MLP head on the encoder's pooled feature and the challenge's baseline-normalised MSE
as loss, AdamW lr 1e-3 wd 1e-4; cosine over 100 epochs, Hyperview 400 with early stopping after
15 epochs without a better validation loss; the dataset's batch and RandomResizedCrop scale,
validation every epoch, the parameters of the best validation loss scored on the test split, or
on the validation split for Hyperview, which has no published test split: the official run's
number is its best ``val_loss``) on the SpectralEarth downstream TFDS builder, standardised with
the sensor's official statistics. The official freezing flags are config fields
(``model.freeze_backbone``: the default "linear" protocol; ``False``: full fine-tuning;
``model.finetune_adapter``, ``model.finetune_first_n_layers``: the partial ones). ``pretrained``
must name the encoder: a path to an ``.npz`` of the official ``backbone`` state dict (read by
``models.from_torch``), or ``synthetic`` to pretrain one here on a synthetic archive
(``pretrain.*``: a plumbing check, not the paper's encoder).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

from experiments.common import (
  check_source,
  spectral_earth_archive,
  spectral_earth_dirs,
  spectral_earth_pretrain_config,
  spectral_earth_task,
  split_preset,
)
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import models, train
from jspectral.data import tfds as tfds_lib
from jspectral.data.builders import spectral_earth as data
from jspectral.nn.spec_vit import SpecViT
from jspectral.ssl import spectral_earth as se
from jspectral.ssl import tasks

matplotlib.use("Agg")

# Builder config -> (RandomResizedCrop scale, global batch = batch per GPU x GPUs), official
# configs/experiment/downstream/<task>/* (Hyperview: 32 per GPU on its trainer `ddp_2`, 2 GPUs).
PAPER_DATASETS = {
    "enmap_cdl": ((0.2, 1.0), 32), "enmap_nlcd": ((0.2, 1.0), 64),
    "enmap_bdforet": ((0.4, 1.0), 32), "enmap_bnetd": ((0.4, 1.0), 64),
    "enmap_eurocrops": ((0.4, 1.0), 32), "enmap_treemap": ((0.4, 1.0), 64),
    "desis_cdl": ((0.4, 1.0), 32), "eo1_cdl": ((0.4, 1.0), 16),
    "enmap_corine": ((0.6, 1.0), 128), "hyperview": ((0.4, 1.0), 64)}
PAPER_SIZES = {"enmap_cdl": 1200, "enmap_nlcd": 10125, "enmap_bdforet": 1912, "enmap_bnetd": 1575,
               "enmap_eurocrops": 1260, "enmap_treemap": 7500, "desis_cdl": 750, "eo1_cdl": 357,
               "enmap_corine": 8250,
               "hyperview": 1385}  # training patches (Hyperview: rows of train.csv)
# Weight decay of the official model configs: segmentation.yaml / multilabel_classif.yaml /
# regression.yaml.
WEIGHT_DECAY = {"segmentation": 1e-4, "multilabel": 1e-5, "regression": 1e-4}
PAPER_EPOCHS = 100
# Datasets whose official base.yaml trains longer and stops early: (max_epochs = cosine T_max,
# EarlyStopping patience in epochs on val_loss; callbacks/early_stopping.yaml, min_delta 0).
PAPER_STOPPING = {"hyperview": (400, 15)}
PAPER_VARIANTS = {
    "enmap_nlcd": "EnMAP-NLCD land cover (USA), 15 classes, batch 64",
    "enmap_bdforet": "EnMAP-BDForet tree species (France), 12 classes, batch 32",
    "enmap_bnetd": "EnMAP-BNETD land cover (Cote d'Ivoire), 10 classes, batch 64",
    "enmap_eurocrops": "EnMAP-EuroCrops crop types (Europe, HCAT codes), 15 classes, batch 32",
    "enmap_treemap": "EnMAP-TreeMap forest type groups (USA), 24 classes, batch 64",
    "desis_cdl": "DESIS-CDL crop types, 235 bands (cross-sensor), batch 32",
    "eo1_cdl": "EO-1 Hyperion-CDL crop types, 198 bands (cross-sensor), batch 16",
    "corine": "EnMAP-CORINE multi-label land cover (Europe), 19 labels, the encoder's linear "
              "head, batch 128",
    "hyperview": "Hyperview soil P, K, Mg, pH regression (150 bands), the official MLP head on "
                 "the pooled feature, batch 64, 400 epochs with early stopping, scored on val "
                 "(no published test split)",
}
VARIANT_DATASET = {"corine": "enmap_corine"}  # variant -> builder configuration, where they differ
CORINE_LABELS = 19  # BigEarthNet nomenclature of the CORINE multi-hot labels
THIRD_PARTY = {"enmap_cdl": 0.774, "enmap_bnetd": 0.495, "enmap_bdforet": 0.766}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  base, variant = split_preset(preset, PAPER_VARIANTS)
  smoke = base == "smoke"
  dataset = "smoke_cdl" if smoke else VARIANT_DATASET.get(variant, variant or "enmap_cdl")
  kind = _kind(data.downstream_config(dataset))
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.seed = 0  # seeds both encoders' pretraining and every probe
  # synthetic: draws the endmembers, the labelled scenes and the pretraining archive; fixed
  # across training seeds, as a published dataset is
  c.data_seed = 0
  c.dataset = dataset  # a SpectralEarthDownstream configuration
  c.data = ml_collections.ConfigDict(dict(
      source="synthetic" if smoke else "spectral_earth_downstream",
      manual_dir="",  # the published files ('' = <manual root>/spectral_earth_downstream)
      data_dir="",  # TFDS data_dir of the prepared records ('' = TFDS's)
      patch_size=16 if smoke else 128))  # patch side of the files (a dry run may cut it)
  c.counts = {"train": 4, "val": 8, "test": 24}  # synthetic: patches per split (few labels)
  # The encoder: spec_vit (segmentation: ConvHead on its tokens) or spec_resnet50 (segmentation:
  # all strides dilated + FCNHead); CORINE: the encoder's own linear head on its pooled feature.
  c.backbone = "spec_vit"
  # pretrained: a path to an .npz of the official `backbone` state dict, or "synthetic" (pretrain
  # it here on a synthetic archive, pretrain.*). The paper preset refuses to guess.
  c.pretrained = "synthetic" if smoke else ""
  # The official freezing flags (configs/experiment/downstream/*/spec_*.yaml): freeze_backbone
  # is the "linear" protocol (head only); False fine-tunes everything; finetune_adapter and
  # finetune_first_n_layers (ViT blocks / ResNet stages 0..n-1) unfreeze parts of a frozen one.
  # The smoke fine-tunes everything (measured in docs/ssl.md); the paper presets default to the
  # official "linear" protocol.
  c.model = ml_collections.ConfigDict(dict(freeze_backbone=not smoke, finetune_adapter=False,
                                           finetune_first_n_layers=0))
  c.pretrain = spectral_earth_pretrain_config("smoke" if smoke else "paper",
                                              locations=48 if smoke else 256)
  c.pretrain.data.source = "synthetic"
  c.pretrain.archive_size = 24 if smoke else 32  # synthetic archive patches (cropped to size)
  c.pretrain.spectra = 6
  c.pretrain.log_gain = 0.3  # dates differ by an illumination gain exp(U(-0.3, 0.3))
  c.pretrain_method = "moco"  # "moco" | "dino" | "mae": the objective of pretrained=synthetic
  c.pretrain.train.moco.total_steps = 150 if smoke else c.pretrain.train.moco.total_steps
  c.composition = 0.5  # synthetic: Dirichlet concentration of each scene's class mixture
  # Smoke: a BatchNorm without affine standardises the frozen tokens before the ConvHead (the
  # MAE / DINO / MoCo-v3 linear-probe practice; the paper's protocol has none and keeps it off).
  c.probe_standardise = smoke
  c.probe_head = "conv"  # Spec ViT segmentation head: "conv" (official ConvHead) | "linear"
  c.crop_scale = PAPER_DATASETS.get(dataset, ((0.2, 1.0), 0))[0]  # RandomResizedCrop area range
  c.log_gain = 0.3  # synthetic: per-scene gain exp(U(-0.3, 0.3)) of the labelled scenes
  c.checks = smoke  # check that the pretrained probe beats the random-init one
  batch = 8 if smoke else PAPER_DATASETS[dataset][1]
  steps_per_epoch = 25 if smoke else PAPER_SIZES[dataset] // batch
  epochs, patience = (6, 0) if smoke else PAPER_STOPPING.get(dataset, (PAPER_EPOCHS, 0))
  c.train = train.default_config()
  # train.trainable stays empty: run() derives it from model.* (a regex set here is refused).
  c.train.update(seed=c.seed, batch_size=batch, log_every=5 if smoke else 50,
                 checkpoint_every=1000 if smoke else steps_per_epoch, progress=not smoke,
                 total_steps=epochs * steps_per_epoch, eval_every=steps_per_epoch,
                 select=dict(metric="loss", mode="min", patience=patience))
  c.train.optimizer.update(name="adamw", learning_rate=3e-3 if smoke else 1e-3,
                           weight_decay=WEIGHT_DECAY[kind])
  c.train.schedule.update(name="warmup_cosine", warmup_steps=0)
  return c


def _kind(builder_config) -> str:
  """``"segmentation"``, ``"multilabel"`` or ``"regression"``."""
  if builder_config.regression:
    return "regression"
  return "multilabel" if builder_config.multilabel else "segmentation"


def _sources(config, workdir: pathlib.Path):
  """The prepared builder configuration and its splits (train, val and, except Hyperview, test)
  as ``grain.MapDataset``s of raw ``{"image", "mask"}`` (segmentation) or ``{"image", "label"}``
  (multi-label, regression), read one example at a time."""
  builder_config = data.downstream_config(config.dataset, config.data.patch_size)
  names = data.SPLITS[:2] if builder_config.regression else data.SPLITS
  if check_source(config, "synthetic", "spectral_earth_downstream") == "synthetic":
    manual = workdir / "synthetic_downstream"
    if not (manual / "splits").exists():
      spectra = data.class_endmembers(np.random.default_rng(config.data_seed),
                                      config.pretrain.spectra, bands=builder_config.bands)
      rng = np.random.default_rng(config.data_seed + 1)
      if builder_config.regression:
        counts = {s: config.counts[s] for s in names}
        data.write_hyperview_dataset(manual, rng, counts, spectra)
      else:
        data.write_downstream_dataset(manual, rng, builder_config, dict(config.counts), spectra,
                                      composition=config.composition, log_gain=config.log_gain)
    data_dir = workdir / "tfds"
  else:
    manual, data_dir = spectral_earth_dirs(config)
  builder = tfds_lib.prepare(data.SpectralEarthDownstream, config=builder_config,
                             manual_dir=manual, data_dir=data_dir)
  target = "mask" if _kind(builder_config) == "segmentation" else "label"
  keep = lambda e: {"image": e["image"], target: e[target]}
  return builder_config, {s: tfds_lib.data_source(builder, s).map(keep) for s in names}


def _pretrained_backbone(config, workdir: pathlib.Path):
  """The encoder and its pretrained variables: the official ``config.backbone`` weights at
  ``config.pretrained`` or, for ``pretrained=synthetic``, ``pretrain_method`` trained here on a
  synthetic archive."""
  if config.pretrained != "synthetic":
    return models.from_torch(config.backbone, dict(np.load(config.pretrained)))
  method = config.pretrain_method
  p = config.pretrain.copy_and_resolve_references()
  p.seed, p.train[method].seed, p.backbone = config.data_seed, config.seed, config.backbone
  source = spectral_earth_archive(p, workdir)
  task = spectral_earth_task(method, p, source)
  result = train.fit(task, p.train[method], workdir / f"pretrain_{method}")
  if method == "mae":  # the encoder's fixed position embedding is put back
    return task.encoder, {"params": task.encoder_params(result.params),
                          "batch_stats": result.model_state["batch_stats"]["encoder"]}
  return task.backbone, {"params": result.params["backbone"],
                         "batch_stats": result.model_state["batch_stats"]["backbone"]}


def downstream_model(config, backbone, builder_config):
  """The downstream network on ``backbone`` and the paths of its encoder and head parameters.

  Segmentation: :class:`ViTSegmentor` (``probe_head``) on a Spec ViT, or the all-dilated Spec
  ResNet-50 + FCNHead; multi-label: the encoder with its own ``num_classes`` linear head;
  regression: :class:`Regressor`, the official MLP head on the pooled feature.

  Args:
    config: the experiment config (``probe_standardise``, ``probe_head``).
    backbone: a :class:`SpecViT` or a Spec ResNet-50 (as pretrained: strided, pooled).
    builder_config: the dataset's ``DownstreamConfig`` (classes; ``multilabel``,
      ``regression``).

  Returns:
    ``(model, encoder_prefix, head_prefix)``: the parameter paths ``trainable_pattern`` needs.
  """
  if builder_config.multilabel:
    return (backbone.clone(num_classes=CORINE_LABELS), "",
            "vit_core/head/" if isinstance(backbone, SpecViT) else "fc/")
  if builder_config.regression:
    return (se.Regressor(backbone.clone(num_classes=0), len(data.HYPERVIEW_TARGETS)),
            "backbone/", "head/")
  num_classes = len(builder_config.codes)
  if isinstance(backbone, SpecViT):
    model = se.ViTSegmentor(backbone, num_classes, standardise=config.probe_standardise,
                            head=config.probe_head)
  else:
    model = se.FCNSegmenter(backbone.clone(replace_stride_with_dilation=(True,) * 4,
                                           return_features=True), num_classes)
  return model, "backbone/", "head/"


def _probe(config, backbone, init_variables, splits, builder_config, workdir):
  """Trains the head (and what ``model.*`` unfreezes) on the encoder; returns the task, the fit
  result, the selected parameters, the scores of the parameters selected on the validation split
  on the scored split (:func:`scored_split`) and that split, standardised."""
  stats = data.sensor_statistics(builder_config.sensor)
  aug = lambda e, rng, train=True: se.downstream_augment(
      e, rng, scale=tuple(config.crop_scale), mean=stats["mu"], std=stats["sigma"], train=train)
  plain = lambda e: aug(e, None, train=False)
  model, prefix, head = downstream_model(config, backbone, builder_config)
  common = dict(model=model, source=splits["train"], eval_source=splits["val"].map(plain),
                init_variables=init_variables, augment_fn=aug)
  if builder_config.multilabel:
    task = tasks.MultiLabelTask(**common)
  elif builder_config.regression:
    task = tasks.RegressionTask(**common)
  else:
    num_classes = len(builder_config.codes)
    task = tasks.SegmentationTask(**common, num_classes=num_classes, ignore_index=num_classes)
  train_config = config.train.copy_and_resolve_references()
  train_config.seed = config.seed
  train_config.trainable = se.trainable_pattern(backbone, prefix=prefix, head=head, **config.model)
  result = train.fit(task, train_config, workdir)
  best = result.best or {"params": result.params, "model_state": result.model_state, "step": 0}
  test = splits[scored_split(splits)].map(plain)
  scores = task.scores(best["params"], best["model_state"], test)
  return task, result, best, scores, test


def scored_split(splits) -> str:
  """``"test"``, or ``"val"`` for a dataset without a test split (Hyperview: the official run's
  test stage has no ``test.csv``; its number is the best ``val_loss``)."""
  return "test" if "test" in splits else "val"


def check_settings(config) -> None:
  """Refuses, before anything is written, a run whose encoder is not named (``pretrained``: a
  file or ``synthetic``), whose ``backbone`` or ``pretrain_method`` is unknown, whose
  ``data_seed`` is negative, or which sets ``train.trainable`` (derived from ``model.*``)."""
  if config.train.trainable:
    raise ValueError("train.trainable: derived from model.freeze_backbone / finetune_adapter / "
                     "finetune_first_n_layers; set those instead of a regex")
  if config.backbone not in BACKBONES:
    raise ValueError(f"backbone: expected one of {BACKBONES}, got {config.backbone!r}")
  methods = tuple(config.pretrain.train)
  if config.pretrained == "synthetic" and config.pretrain_method not in methods:
    raise ValueError(f"pretrain_method: expected one of {methods}, got "
                     f"{config.pretrain_method!r}")
  if config.data_seed < 0:
    raise ValueError(f"data_seed: expected a non-negative integer (it seeds NumPy's generator "
                     f"of the synthetic data), got {config.data_seed}")
  if not config.pretrained:
    raise ValueError(f"pretrained: name the encoder: a path to an .npz of the official "
                     f"{config.backbone} state dict, or 'synthetic' to pretrain one here on a "
                     "synthetic archive (--set pretrained=PATH or --set pretrained=synthetic)")
  if config.pretrained != "synthetic" and not pathlib.Path(config.pretrained).is_file():
    raise ValueError(f"pretrained: {config.pretrained!r} is not a file (expected an .npz of "
                     f"the official {config.backbone} state dict, or 'synthetic')")


PROTOCOL_NOTE = ("Encoder: {protocol}; BatchNorm of a frozen encoder in training mode as in the "
                 "official code.")


def _protocol(config) -> str:
  m = config.model
  if not m.freeze_backbone:
    return "fully fine-tuned"
  parts = ["frozen (linear protocol)"]
  if m.finetune_adapter:
    parts.append("spectral adapter fine-tuned")
  if m.finetune_first_n_layers:
    parts.append(f"first {m.finetune_first_n_layers} layers fine-tuned")
  return ", ".join(parts)


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  check_settings(config)
  name = config.dataset
  builder_config, splits = _sources(config, workdir)
  backbone, pretrained = _pretrained_backbone(config, workdir / name)
  label = "pretrained (official)" if config.pretrained != "synthetic" else \
      f"pretrained ({config.pretrain_method}, synthetic archive)"
  kind = _kind(builder_config)
  columns = COLUMNS[kind]
  rows, results, histories = [], {}, {}
  for key, text, init in (("pretrained", label, pretrained), ("random", "random init", None)):
    task, result, best, scores, test = _probe(config, backbone, init, splits, builder_config,
                                              workdir / name / f"probe_{key}")
    results[key] = (task, best)
    histories[f"{name} {key}"] = result.history
    rows.append([name, text, int(best["step"]), *(scores[k] for k in columns.values()),
                 THIRD_PARTY.get(name, "n/a")])
  checks = _checks(config, name, rows, kind)
  save_loss_curve(workdir / "probe_loss.png", histories)
  figures = ["probe_loss.png"]
  if kind == "segmentation":
    figures += _figures(workdir, name, results, test)
  elif kind == "regression":
    figures.append(_regression_figure(workdir, name, results, test))
  smoke = " (smoke, synthetic)" if config.data.source == "synthetic" else ""
  scored = scored_split(splits)
  return Report(
      title=f"SpectralEarth downstream: {TITLES[kind]}, pretrained vs random-init encoder" + smoke,
      tables=[Table(f"{SPLIT_TITLES[scored]} metrics{smoke}",
                    ["dataset", "encoder", "selected step", *columns, "paper"], rows,
                    note=SCORED_NOTE[scored] + NOTES.get(kind, "") + " Paper tables were not "
                         "retrievable; the 'paper' column is a third-party study's SpectralEarth "
                         "full-HSI reference (unverified).")],
      figures=figures, checks=checks, headline=_headline(config, rows, kind, scored),
      notes=[f"{name}: {' / '.join(str(len(v)) for v in splits.values())} "
             f"{' / '.join(splits)} patches, {builder_config.bands} bands, standardised with the "
             f"{builder_config.sensor} statistics. {config.backbone}; "
             + PROTOCOL_NOTE.format(protocol=_protocol(config))
             + (" Smoke deviation: the encoder's tokens are standardised (BatchNorm without "
                "affine) before the head, as MAE/DINO/MoCo-v3 linear probes do." if
                config.probe_standardise else "")])


SEGMENTATION_COLUMNS = {"micro accuracy": "accuracy", "micro Jaccard (official)": "jaccard_micro",
                        "mean IoU": "miou"}
MULTILABEL_COLUMNS = {"micro AP": "ap_micro", "macro AP": "ap_macro", "micro F1": "f1_micro",
                      "macro F1": "f1_macro", "micro accuracy": "accuracy_micro",
                      "macro accuracy": "accuracy_macro"}
REGRESSION_COLUMNS = {"score (MSE / baseline MSE)": "score",
                      **{t: f"score_{i}" for i, t in enumerate(data.HYPERVIEW_TARGETS)},
                      "val_loss (official per-batch mean)": "batch_mean", "RMSE": "rmse"}
COLUMNS = {"segmentation": SEGMENTATION_COLUMNS, "multilabel": MULTILABEL_COLUMNS,
           "regression": REGRESSION_COLUMNS}
TITLES = {"segmentation": "segmentation", "multilabel": "multi-label classification",
          "regression": "Hyperview regression"}
SPLIT_TITLES = {"test": "Test", "val": "Validation"}
SCORED_NOTE = {"test": "Test scores of the parameters with the best validation loss.",
               "val": "Validation scores of the parameters with the best validation loss (no "
                      "published test split; the official run's number is its best val_loss)."}
NOTES = {"regression": " Score: the HyperView challenge's mean over P, K, Mg, pH of MSE / MSE of "
                       "the zero baseline on the standardised targets, over the whole split "
                       "(lower is better; the baseline scores 1); P, K, Mg, pH: the per-target "
                       "ratios; val_loss: the official epoch value, the mean of per-batch "
                       "scores over batches of 32 (selects the parameters)."}
BACKBONES = ("spec_vit", "spec_resnet50")


# Metric of the smoke check per task kind, and +1 where higher is better.
CHECK_METRIC = {"segmentation": ("micro Jaccard (official)", 1), "multilabel": ("micro AP", 1),
                "regression": ("score (MSE / baseline MSE)", -1)}


def _check_values(rows, kind: str) -> tuple[str, float, float]:
  """The check's metric (:data:`CHECK_METRIC`) and its pretrained / random-init values."""
  metric = CHECK_METRIC[kind][0]
  i = 3 + list(COLUMNS[kind]).index(metric)
  return metric, rows[0][i], rows[1][i]


def _headline(config, rows, kind: str, scored: str) -> Headline:
  """The pretrained encoder against the random-init one on the check's metric."""
  metric, pretrained, random_init = _check_values(rows, kind)
  return Headline("a SpectralEarth-pretrained encoder beats a random-init one, "
                  f"{_protocol(config)}",
                  f"{SPLIT_TITLES[scored].lower()} {metric} {pretrained:.3f} vs "
                  f"{random_init:.3f} (random init)")


def _checks(config, name: str, rows, kind: str) -> dict[str, bool]:
  """The paper's claim at smoke scale: a pretrained encoder beats a random-init one under the
  same protocol on the scored split (:data:`CHECK_METRIC`)."""
  if not config.checks:
    return {}
  metric, pretrained, random_init = _check_values(rows, kind)
  gain = CHECK_METRIC[kind][1] * (pretrained - random_init)
  line = (f"{name}: a pretrained encoder beats a random-init one under the same protocol "
          f"({_protocol(config)}; test {metric} {pretrained:.3f} vs {random_init:.3f}, "
          f"{gain:+.3f})")
  return {line: gain > 0}


def _figures(workdir: pathlib.Path, name: str, results, test) -> list[str]:
  import matplotlib.pyplot as plt

  shown = [test[i] for i in range(min(3, len(test)))]
  images = np.stack([e["image"] for e in shown])
  masks = np.stack([e["mask"] for e in shown])
  preds = {k: task.predict(best["params"], best["model_state"], images)
           for k, (task, best) in results.items()}
  rgb = images[..., list(data.RGB_BANDS)]
  rgb = np.clip((rgb - rgb.min()) / (np.ptp(rgb) + 1e-6), 0, 1)
  fig, axes = plt.subplots(len(shown), 4, figsize=(8, 2 * len(shown)), squeeze=False)
  vmax = masks.max()
  for i in range(len(shown)):
    for ax, img, title in zip(axes[i], (rgb[i], masks[i], preds["pretrained"][i],
                                        preds["random"][i]),
                              ("RGB (bands 43/28/10)", "label (bg = max)", "pretrained probe",
                               "random-init probe"), strict=True):
      ax.imshow(img, vmin=0, vmax=vmax, cmap=None if img.ndim == 3 else "tab20",
                interpolation="nearest")
      ax.set_title(title, fontsize=8)
      ax.axis("off")
  fig.tight_layout()
  seg_png = f"{name}_segmentation.png"
  fig.savefig(workdir / seg_png, dpi=100)
  plt.close(fig)
  if not isinstance(results["pretrained"][0].model.backbone, SpecViT):
    return [seg_png]   # the token PCA is for the Spec ViT's patch tokens

  fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
  for ax, key in zip(axes, ("pretrained", "random"), strict=True):
    task, best = results[key]
    variables = {"params": best["params"]["backbone"],
                 "batch_stats": best["model_state"]["batch_stats"]["backbone"]}
    backbone = task.model.backbone
    tokens = np.asarray(jax.jit(lambda v, x, b=backbone: b.apply(
        v, x, method="patch_tokens"))(variables, jnp.asarray(images)))
    p = backbone.token_patch_size
    token_labels = masks[:, ::p, ::p].reshape(-1)
    feats = tokens.reshape(-1, tokens.shape[-1])
    feats = feats - feats.mean(0)
    pcs = feats @ np.linalg.svd(feats, full_matrices=False)[2][:2].T
    ax.scatter(pcs[:, 0], pcs[:, 1], c=token_labels, cmap="tab20", s=8)
    ax.set_title(f"PCA of patch tokens: {key} encoder", fontsize=9)
  fig.tight_layout()
  pca_png = f"{name}_embeddings_pca.png"
  fig.savefig(workdir / pca_png, dpi=100)
  plt.close(fig)
  return [seg_png, pca_png]


def _regression_figure(workdir: pathlib.Path, name: str, results, scored) -> str:
  """Predicted vs measured (standardised) P, K, Mg, pH on the scored split, both encoders."""
  import matplotlib.pyplot as plt

  targets = data.HYPERVIEW_TARGETS
  fig, axes = plt.subplots(1, len(targets), figsize=(3 * len(targets), 3), squeeze=False)
  for key, (task, best) in results.items():
    pred, target = task.predictions(best["params"], best["model_state"], scored)
    for t, ax in enumerate(axes[0]):
      ax.scatter(target[:, t], pred[:, t], s=8, alpha=0.6, label=f"{key} encoder")
  for t, ax in enumerate(axes[0]):
    low, high = ax.get_xlim()
    ax.plot([low, high], [low, high], "k--", lw=0.8)
    ax.axhline(0.0, color="grey", lw=0.6)   # the baseline's prediction
    ax.set(title=targets[t], xlabel="measured (standardised)", ylabel="predicted")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  png = f"{name}_regression.png"
  fig.savefig(workdir / png, dpi=100)
  plt.close(fig)
  return png
