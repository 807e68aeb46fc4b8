"""Experiment code shared by several experiment configs (flax examples' ``train_and_evaluate``).

Configs import from here, never from one another. Sections: data sources, INTL (``ssl_intl``,
``ssl_spectral_transforms``), SpectralEarth pretraining (``pretrain_spectral_earth``,
``downstream_spectral_earth``), Neural Spectral Methods (the three ``pde_*`` experiments).
"""

from __future__ import annotations

import os
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.report import Headline, Report, Table
from jspectral import train
from jspectral.models import param_count
from jspectral.nn import resnet, spec_resnet, spec_vit
from jspectral.pde import figures as pde_figures
from jspectral.pde import nsm, problems, protocol, solvers
from jspectral.pde.tasks import OperatorTask
from jspectral.ssl import intl
from jspectral.ssl import tasks as ssl_tasks

# ------------------------------------------------------------------------------------------------
# Data sources: ``config.data.source`` names the data a run reads, never the preset
# ------------------------------------------------------------------------------------------------


def split_preset(preset: str, variants) -> tuple[str, str]:
  """``("smoke" | "paper", variant)`` of ``smoke``, ``paper`` or ``paper:VARIANT``.

  Args:
    preset: the preset string.
    variants: the experiment's ``PAPER_VARIANTS`` (names).

  Returns:
    The base preset and the variant (``""`` for ``smoke`` and ``paper``).

  Raises:
    ValueError: naming every valid preset, for anything else.
  """
  base, _, variant = preset.partition(":")
  if base not in ("smoke", "paper") or (variant and (base != "paper" or variant not in variants)):
    raise ValueError(f"preset: expected 'smoke', 'paper' or one of "
                     f"{[f'paper:{v}' for v in variants]}, got {preset!r}")
  return base, variant


def check_source(config, *known: str) -> str:
  """``config.data.source`` when it is one of ``known``; a ValueError naming them otherwise."""
  source = config.data.source
  if source not in known:
    raise ValueError(f"data.source: expected one of {known}, got {source!r}")
  return source


# ------------------------------------------------------------------------------------------------
# Multi-seed tables: graph_ssl_node, graph_ssl_graph
# ------------------------------------------------------------------------------------------------

def seed_cells(accuracies) -> list[str]:
  """Table cells of accuracies in [0, 1] over training seeds: one ``%`` per seed, then
  ``mean ± std`` over the seeds."""
  pct = 100 * np.asarray(accuracies, np.float64)
  return [f"{a:.1f}" for a in pct] + [f"{pct.mean():.1f} ± {pct.std():.1f}"]


# ------------------------------------------------------------------------------------------------
# Super-resolution: sr_essaformer, sr_mixup_mtl
# ------------------------------------------------------------------------------------------------

def sr_headline(model: str, evals: dict, paper: str = "") -> Headline:
  """The demo summary row of a super-resolution run: the model against bicubic, PSNR and SAM.

  Args:
    model: the model and scale in words ("ESSAformer x4").
    evals: test metrics with ``MPSNR``, ``SAM`` and their ``bicubic_`` counterparts.
    paper: published PSNRs of the same protocol, "" when the spec records none.
  """
  return Headline(f"{model} beats bicubic on PSNR and SAM",
                  f"MPSNR {evals['MPSNR']:.2f} vs {evals['bicubic_MPSNR']:.2f} dB, SAM "
                  f"{evals['SAM']:.3f} vs {evals['bicubic_SAM']:.3f} deg (bicubic)", paper)


# ------------------------------------------------------------------------------------------------
# INTL: ssl_intl, ssl_spectral_transforms
# ------------------------------------------------------------------------------------------------

_NAN = float("nan")
# Official README / paper Table 1 (linear top-1, 5-NN, linear top-5; ImageNet: top-1 only).
INTL_PAPER = {"cifar10": (92.60, 90.03, 99.80), "cifar100": (70.88, 61.90, 92.13),
              "in100": (81.68, 73.46, 95.42), "in1k": (73.1, _NAN, _NAN),
              "in1k_m": (73.5, _NAN, _NAN), "in1k_m200": (75.2, _NAN, _NAN),
              "in1k_m400": (76.1, _NAN, _NAN), "in1k_m800": (76.6, _NAN, _NAN)}
_IMAGENET = dict(train_size=1_281_167, batch=256, wd=1e-5, hidden=8192, features=8192,
                 decay_1d=False, precision="bfloat16", image_size=224, arch="resnet50",
                 ema=0.996, multi_crop=True, lr_classifier=0.4, lr_backbone=0.004)
INTL_SETTINGS = {  # variant -> the official recipe (spec section 4.2, scripts/*.sh)
    "cifar10": dict(train_size=50_000, batch=256, epochs=1000, lr=0.3, wd=1e-4, hidden=2048,
                    features=2048, decay_1d=True, precision="float32", image_size=32),
    "cifar100": dict(train_size=50_000, batch=256, epochs=1000, lr=0.3, wd=1e-4, hidden=2048,
                     features=2048, decay_1d=True, precision="float32", image_size=32),
    # main.py: fp16 autocast -> bf16 compute here; weight decay skips biases and BN (1-D) params.
    "in100": dict(train_size=126_689, batch=128, epochs=400, lr=0.5, wd=2.5e-5, hidden=4096,
                  features=8192, decay_1d=False, precision="bfloat16", image_size=224),
    # scripts/ep800.sh: 2 views, no EMA; scripts/ep{100,200,400,800}_multi-crop_ema.sh: INTL_M.
    "in1k": dict(_IMAGENET, epochs=800, lr=0.3, ema=0.0, multi_crop=False, lr_classifier=0.2,
                 lr_backbone=0.006),
    "in1k_m": dict(_IMAGENET, epochs=100, lr=0.5),
    "in1k_m200": dict(_IMAGENET, epochs=200, lr=0.4),
    "in1k_m400": dict(_IMAGENET, epochs=400, lr=0.4),
    "in1k_m800": dict(_IMAGENET, epochs=800, lr=0.3),
}
INTL_VARIANTS = {
    "cifar100": "CIFAR-100, ResNet-18 (CIFAR stem), the CIFAR-10 recipe (Table 1 row 2)",
    "in100": "ImageNet-100, ResNet-18, batch 128, 400 epochs, lr 0.5, wd 2.5e-5 off 1-D params, "
             "bf16 (Table 1 row 3)",
}
INTL_IMAGENET_VARIANTS = {
    "in1k": "ImageNet-1k, ResNet-50, 2 views, no EMA, 800 epochs, lr 0.3 (scripts/ep800.sh)",
    **{f"in1k_m{tag}": f"ImageNet-1k INTL_M: ResNet-50, 6-view multi-crop, EMA key (m0 0.996), "
                       f"{epochs} epochs, lr {INTL_SETTINGS[f'in1k_m{tag}']['lr']:g} "
                       f"(scripts/ep{epochs}_multi-crop_ema.sh)"
       for tag, epochs in (("", 100), ("200", 200), ("400", 400), ("800", 800))},
}
IMAGENET_SOURCES = ("in100", "in1k")


def intl_config(preset: str) -> ml_collections.ConfigDict:
  """INTL pre-training: smoke on scikit-learn's digits; ``paper`` the official CIFAR-10 recipe,
  ``paper:cifar100`` / ``paper:in100`` the other rows of the paper's Table 1 and ``paper:in1k*``
  the ImageNet-1k scripts (:data:`INTL_IMAGENET_VARIANTS`)."""
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.iterations = 4
  c.whiten = "samples"
  c.knn_k = 5
  c.ema_momentum = 0.0  # INTL_M key-network base momentum m0 (0 = plain INTL)
  c.multi_crop = False  # the 6 official multi-crop views (2x224, 192, 160, 128, 96)
  c.pretrained = ""  # an official checkpoint (.pth.tar): evaluate it instead of pre-training
  c.train = train.default_config()
  # The official ImageNet linear evaluation (evaluate.py) after pre-training; 0 epochs = none (the
  # CIFAR trainer's own protocol is the online kNN + Adam probe).
  c.linear_eval = ml_collections.ConfigDict(dict(
      epochs=0, batch_size=256, lr_classifier=0.2, milestones=(60, 80), crop=224, resize=256))
  # The official semi-supervised fine-tuning (evaluate.py --weights finetune) on the ImageNet-1k
  # 1 % / 10 % subsets; empty percents = none.
  c.semi = ml_collections.ConfigDict(dict(
      percents=(), epochs=20, batch_size=256, lr_classifier=0.2, lr_backbone=0.004,
      milestones=(60, 80)))
  if preset == "smoke":
    # nuisance: strength s of a fixed per-image contrast and brightness change (factors in
    # [1 - s, 1 + s], ColorJitter's law) on every digit; 0 = the raw digits
    c.data = ml_collections.ConfigDict(dict(source="digits", knn_stride=1, nuisance=0.0))
    c.image_size = 16
    c.model = dict(arch="resnet18", stage_sizes=(1, 1, 1, 1), width=16, hidden=128, features=128)
    c.linear_epochs = 100
    c.knn_margin = 0.01
    c.train.update(total_steps=120, batch_size=64, log_every=10, eval_every=40,
                   checkpoint_every=60)
    c.train.optimizer.update(name="momentum", learning_rate=0.1, weight_decay=1e-4)
    c.train.schedule.update(name="warmup_cosine", warmup_steps=10, min_lr_ratio=1e-3)
    return c
  variant = preset.partition(":")[2] or "cifar10"
  s = INTL_SETTINGS[variant]
  source = "in1k" if variant.startswith("in1k") else variant
  # knn_stride: online kNN against every k-th training image (ImageNet-1k: 128k of 1.28M).
  c.data = ml_collections.ConfigDict(dict(source=source, knn_stride=10 if source == "in1k" else 1))
  c.image_size = s["image_size"]
  arch = s.get("arch", "resnet18")
  c.model = dict(arch=arch, stage_sizes=(3, 4, 6, 3) if arch == "resnet50" else (2, 2, 2, 2),
                 width=64, hidden=s["hidden"], features=s["features"])
  c.ema_momentum = s.get("ema", 0.0)
  c.multi_crop = s.get("multi_crop", False)
  c.linear_epochs = 500
  c.knn_margin = 0.0
  steps_per_epoch = s["train_size"] // s["batch"]
  # CIFAR trainer: kNN + linear eval every 5 epochs; ImageNet every 20 (its features are 2.5x
  # as many and 49x as large; the official ImageNet trainer has no online evaluation).
  eval_epochs = 5 if source.startswith("cifar") else 20
  c.train.update(total_steps=s["epochs"] * steps_per_epoch, batch_size=s["batch"],
                 log_every=50, eval_every=eval_epochs * steps_per_epoch,
                 checkpoint_every=steps_per_epoch, precision=s["precision"])
  c.train.optimizer.update(name="momentum", learning_rate=s["lr"] * s["batch"] / 256,
                           weight_decay=s["wd"], decay_1d=s["decay_1d"])
  c.train.schedule.update(name="warmup_cosine", warmup_steps=2 * steps_per_epoch,
                          min_lr_ratio=1e-3)
  if source in IMAGENET_SOURCES:
    c.linear_eval.update(epochs=100, lr_classifier=s.get("lr_classifier", 0.2))
  if source == "in1k":
    c.semi.update(percents=(1, 10), lr_backbone=s["lr_backbone"])
  return c


def digits(size: int) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's 1,797 digits as (N, size, size, 3) RGB images in [0, 1] and labels."""
  from sklearn.datasets import load_digits

  data = load_digits()
  images = jnp.asarray(data.images / 16.0, jnp.float32)
  images = jax.image.resize(images, (len(images), size, size), "linear").clip(0, 1)
  return np.repeat(np.asarray(images)[..., None], 3, axis=-1), data.target.astype(np.int32)


def intensity_nuisance(images: np.ndarray, strength: float, seed: int = 1) -> np.ndarray:
  """``images`` under a fixed random contrast and brightness change per image, clipped to [0, 1].

  Factors ``c, b ~ U[1 - strength, 1 + strength]`` drawn once from ``seed`` (torchvision
  ``ColorJitter``'s law, the family INTL's views jitter in): ``b * (c * x + (1 - c) * mean(x))``.

  Args:
    images: ``(N, H, W, 3)`` in [0, 1].
    strength: ``s`` in [0, 1); 0 returns ``images`` unchanged.
    seed: seed of the factors (fixed data, independent of the training seed).

  Returns:
    ``(N, H, W, 3)`` float32.
  """
  if not 0.0 <= strength < 1.0:
    raise ValueError(f"strength (data.nuisance): expected a value in [0, 1), got {strength}")
  if images.ndim != 4:
    raise ValueError(f"images: expected (N, H, W, 3), got shape {images.shape}")
  rng = np.random.default_rng(seed)
  contrast, brightness = rng.uniform(1.0 - strength, 1.0 + strength, (2, len(images), 1, 1, 1))
  grey = images.mean(axis=(1, 2, 3), keepdims=True)
  return np.clip(brightness * (contrast * images + (1.0 - contrast) * grey), 0.0,
                 1.0).astype(np.float32)


def intl_views(config) -> tuple[intl.ViewAugment, ...]:
  """The official views of an ImageNet run: the 6 multi-crop views or the 2 BYOL-style ones."""
  if config.multi_crop:
    return intl.multicrop_views(config.image_size)
  return intl.imagenet_views(config.image_size)


def intl_data(config) -> tuple[ssl_tasks.EvalData, tuple[intl.ViewAugment, ...], object]:
  """(evaluation data, views, pre-training images) of ``config.data.source``.

  CIFAR and digits: arrays in memory. ImageNet-100 / -1k: the prepared splits stream at full
  resolution; the pre-training images are the train split's encoded records (cropped per
  example on the host) and the evaluation images are decoded a batch at a time
  (``Resize(linear_eval.resize)`` + ``CenterCrop(linear_eval.crop)``), the kNN training set
  every ``data.knn_stride``-th training image.
  """
  source = check_source(config, "digits", "cifar10", "cifar100", *IMAGENET_SOURCES)
  if source == "digits":
    images, labels = digits(config.image_size)
    images = intensity_nuisance(images, config.data.nuisance)
    perm = np.random.default_rng(0).permutation(len(labels))
    train_idx, test_idx = perm[:1200], perm[1200:]
    mean, std = (0.25,) * 3, (0.35,) * 3
    # Grey digits: no saturation/hue jitter, no grayscale, no flip (a flipped digit is another).
    views = tuple(intl.ViewAugment(crop_size=config.image_size, scale=(0.3, 1.0), saturation=0.0,
                                   hue=0.0, gray_prob=0.0, flip_prob=0.0, mean=mean, std=std)
                  for _ in range(2))
    data = ssl_tasks.EvalData(images[train_idx], labels[train_idx], images[test_idx],
                              labels[test_idx], mean, std)
    return data, views, images[train_idx]
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders import cifar, imagenet, imagenet100

  if source in ("cifar10", "cifar100"):
    builder = tfds_lib.prepare(cifar.Cifar10 if source == "cifar10" else cifar.Cifar100)
    arrays = {s: cifar.as_arrays(builder, s) for s in ("train", "test")}
    views = intl.cifar_views(source)
    # Official quirk: the CIFAR-100 evaluation loader normalises with the CIFAR-10 statistics.
    data = ssl_tasks.EvalData(*arrays["train"], *arrays["test"], intl.CIFAR10_MEAN,
                              intl.CIFAR10_STD)
    return data, views, arrays["train"][0]
  builder = tfds_lib.prepare(imagenet100.ImageNet100 if source == "in100" else
                             imagenet.ImageNet1k)
  train_source = tfds_lib.data_source(builder, "train")
  val_source = tfds_lib.data_source(builder, "validation")
  knn_source = train_source[::config.data.knn_stride]
  le = config.linear_eval
  data = ssl_tasks.EvalData(
      imagenet.DecodedImages(knn_source, le.resize, le.crop), imagenet.labels(knn_source),
      imagenet.DecodedImages(val_source, le.resize, le.crop), imagenet.labels(val_source),
      intl.IMAGENET_MEAN, intl.IMAGENET_STD)
  return data, intl_views(config), train_source


def intl_network(config) -> intl.INTLNet:
  """ResNet-18 / -50 backbone (CIFAR stem for the small images, ImageNet stem otherwise) +
  projector."""
  stem = "cifar" if config.data.source in ("digits", "cifar10", "cifar100") else "imagenet"
  if config.model.arch not in ("resnet18", "resnet50"):
    raise ValueError(f"model.arch: expected 'resnet18' or 'resnet50', got {config.model.arch!r}")
  bottleneck = config.model.arch == "resnet50"
  return intl.INTLNet(
      resnet.ResNet(stage_sizes=tuple(config.model.stage_sizes), width=config.model.width,
                    stem=stem, block_cls=resnet.Bottleneck if bottleneck else resnet.BasicBlock,
                    zero_init_residual=bottleneck),
      intl.Projector(config.model.hidden, config.model.features))


# ------------------------------------------------------------------------------------------------
# SpectralEarth pretraining: pretrain_spectral_earth, downstream_spectral_earth (its encoder)
# ------------------------------------------------------------------------------------------------

SPECTRAL_EARTH_LOCATIONS = 415_153
# Pretraining variants (official configs/experiment/pretrain/**; MAE's larger ViTs swap the
# backbone and keep the decoder): variant -> (backbone, ViT size, methods).
SPECTRAL_EARTH_PRETRAIN = {
    "": ("spec_vit", "s", ["moco", "dino", "mae"]),
    "rn50": ("spec_resnet50", "", ["moco", "dino"]),
    "mae_vit_b": ("spec_vit", "b", ["mae"]), "mae_vit_l": ("spec_vit", "l", ["mae"]),
    "mae_vit_h": ("spec_vit", "h", ["mae"]), "mae_vit_g": ("spec_vit", "g", ["mae"]),
}
SPECTRAL_EARTH_PRETRAIN_VARIANTS = {
    "rn50": "Spec ResNet-50 (no stem) with MoCo-v2 and DINO, the official recipes",
    "mae_vit_b": "MAE with Spec ViT-B/4 (86 M), the ViT-S recipe",
    "mae_vit_l": "MAE with Spec ViT-L/4 (304 M), the ViT-S recipe",
    "mae_vit_h": "MAE with Spec ViT-H/4 (632 M), the ViT-S recipe",
    "mae_vit_g": "MAE with Spec ViT-g/4 (1.1 B), the ViT-S recipe",
}
_VIT_WIDTHS = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16),
               "g": (1536, 40, 24)}


def spectral_earth_pretrain_config(preset: str,
                                   locations: int | None = None) -> ml_collections.ConfigDict:
  """MoCo-v2 / DINO / MAE pretraining: smoke on synthetic EnMAP-like patches, ``paper`` the
  official Spec ViT-S/4 recipes on the SpectralEarth TFDS archive, ``paper:VARIANT`` the other
  backbones (:data:`SPECTRAL_EARTH_PRETRAIN`).

  Args:
    preset: ``smoke``, ``paper`` or ``paper:VARIANT``.
    locations: archive size the epoch-based schedules are derived from (default: 48 for the
      smoke, SpectralEarth's 415,153 for the paper).
  """
  smoke = preset == "smoke"
  backbone, vit_size, methods = SPECTRAL_EARTH_PRETRAIN[preset.partition(":")[2]]
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.data = ml_collections.ConfigDict(dict(
      source="synthetic" if smoke else "spectral_earth",
      manual_dir="",  # spectral_earth: the published files ('' = <manual root>/spectral_earth)
      data_dir=""))  # spectral_earth: the TFDS data_dir of the prepared records ('' = TFDS's)
  c.methods = methods
  c.checks = smoke  # check that every loss falls (first third of the logs vs the last)
  c.backbone = backbone  # spec_vit | spec_resnet50 (MoCo / DINO only)
  c.seed = 0
  c.size = 16 if smoke else 128
  c.archive_size = 24 if smoke else 128
  c.locations = locations or (48 if smoke else SPECTRAL_EARTH_LOCATIONS)
  c.composition = 0.5  # synthetic: Dirichlet concentration of each scene's class mixture
  c.spectra = 4  # synthetic: spectral classes (earthlib LEVEL_2 groups) of the archive
  c.log_gain = 0.1  # synthetic: dates differ by a gain exp(U(-log_gain, log_gain))
  width, depth, heads = (32, 2, 4) if smoke else _VIT_WIDTHS[vit_size or "s"]
  c.vit = ml_collections.ConfigDict(dict(token_patch_size=4, embed_dim=width, depth=depth,
                                         num_heads=heads, mlp_ratio=2.0 if smoke else 4.0))
  c.head_hidden = 64 if smoke else 2048
  c.bank_size = 64 if smoke else 32768
  c.dino_out = 32 if smoke else 128
  c.decoder_dim = 32 if smoke else 512
  c.decoder_heads = 4 if smoke else 16
  c.mask_ratio = 0.75 if smoke else 0.9
  # DINO smoke hyper-parameters (the algorithm is the official one; its time constants are
  # compressed to a 60-step run): the teacher momentum is a per-step cosine from 0.99 (official:
  # per-epoch from 0.996, which leaves the teacher fixed during a smoke run), the centre momentum
  # 0.5 (official 0.9: a 10-step centre transient is a sixth of the run), a 32-wide bottleneck
  # (official 256: the tiny ViT's init features are nearly input-independent, so 256-dimensional
  # cosines spread too little for the 0.04 teacher temperature and the targets go uniform), crops
  # of scale (0.4, 1) (official (0.05, 1)) and a 10-step lr warm-up (official: 20 of 100
  # epochs). docs/ssl.md lists the settings that collapsed.
  c.dino_per_step_momentum = smoke
  c.dino_momentum_start = 0.99 if smoke else 0.996
  c.dino_center_momentum = 0.5 if smoke else 0.9
  c.dino_bottleneck = 32 if smoke else 256
  c.dino_scale = (0.4, 1.0) if smoke else (0.05, 1.0)
  # Official DINO lr: per-epoch LinearLR from lr/20 over 20 epochs, then cosine with T_max = 100
  # epochs (DINOTask.schedule); the smoke uses train.dino.schedule instead.
  c.dino_official_lr = not smoke
  # Official: the teacher head is initialised independently of the student's (the teacher
  # backbone is a copy); the smoke starts it as a copy (lightly's examples, the DINO paper) so
  # that its 60 steps are not spent pulling a random teacher head towards the student.
  c.dino_copy_teacher_head = smoke
  # Official MAE lr: CosineAnnealingLR(T_max = 200 epochs) stepped per epoch (MAETask.schedule).
  c.mae_official_lr = not smoke
  batch = 8 if smoke else 256
  steps_per_epoch = max(c.locations // batch, 1)
  c.steps_per_epoch = steps_per_epoch
  epochs = {"moco": 100, "dino": 100, "mae": 200}

  def tc(method, name, lr, wd, schedule, smoke_steps=30):
    t = train.default_config()
    # Official runs: 16-mixed precision on 4 GPUs -> bf16 compute here.
    t.update(seed=c.seed, batch_size=batch, log_every=2 if smoke else 100,
             checkpoint_every=1000 if smoke else 5000, progress=not smoke,
             precision="float32" if smoke else "bfloat16",
             total_steps=smoke_steps if smoke else epochs[method] * steps_per_epoch)
    t.optimizer.update(name=name, learning_rate=lr, weight_decay=wd, momentum=0.9)
    t.schedule.update(schedule)
    return t

  train_configs = {
      "moco": tc("moco", "adamw" if smoke else "momentum", 1e-3, 1e-4,
                 dict(name="step", boundaries=[60 * steps_per_epoch, 80 * steps_per_epoch],
                      decay_factor=0.1)),
      "dino": tc("dino", "adamw", 1e-3, 1e-5,
                 dict(name="warmup_cosine", warmup_steps=10, min_lr_ratio=0.1) if smoke else
                 dict(name="warmup_cosine", warmup_steps=20 * steps_per_epoch,
                      min_lr_ratio=0.095), smoke_steps=60),
      "mae": tc("mae", "adamw", 1e-3 if smoke else 1e-4, 0.01,
                dict(name="constant") if smoke else dict(name="warmup_cosine", warmup_steps=0)),
  }
  # torch sets the gradient of DINO's frozen last layer to None in epoch 0: AdamW then neither
  # decays it nor advances its moments and step count (per-parameter state).
  train_configs["dino"].optimizer.skip_unused = not smoke
  c.train = ml_collections.ConfigDict(train_configs)
  return c


def spectral_earth_dirs(config) -> tuple[pathlib.Path | None, pathlib.Path | None]:
  """``(manual_dir, data_dir)`` of a SpectralEarth builder: ``config.data.manual_dir`` (``None``:
  the manual root's builder folder) and ``config.data.data_dir`` or ``$TFDS_DATA_DIR`` read now
  (TFDS fixes its default at import)."""
  manual = config.data.manual_dir
  data_dir = config.data.data_dir or os.environ.get("TFDS_DATA_DIR")
  return (pathlib.Path(manual).expanduser() if manual else None,
          pathlib.Path(data_dir).expanduser() if data_dir else None)


def spectral_earth_archive(config, workdir: pathlib.Path):
  """The pretraining locations of ``config.data.source`` as a random-access ``grain.MapDataset``.

  ``spectral_earth``: the SpectralEarth archive (``spectral_earth/enmap``), prepared once from
  ``config.data.manual_dir`` (default: the manual root's ``spectral_earth`` folder) into
  ``config.data.data_dir`` (default: TFDS's). ``synthetic``: ``config.locations`` synthetic
  locations of ``config.archive_size`` px written to ``workdir / "synthetic_archive"`` in the
  published layout (``config.spectra``: the endmembers), read through the same builder. Either
  way the patches are ``config.archive_size`` px and read one location at a time.
  """
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders import spectral_earth as se_data

  builder_config = se_data.patch_config("enmap", config.archive_size)
  if check_source(config, "synthetic", "spectral_earth") == "synthetic":
    manual = pathlib.Path(workdir) / "synthetic_archive"
    if not (manual / "enmap").exists():
      rng = np.random.default_rng(config.seed + 2)
      spectra = se_data.class_endmembers(np.random.default_rng(config.seed), config.spectra)
      se_data.write_pretraining_archive(manual, rng, config.locations, config.archive_size,
                                        spectra, composition=config.composition,
                                        log_gain=config.log_gain)
    data_dir = pathlib.Path(workdir) / "tfds"
  else:
    manual, data_dir = spectral_earth_dirs(config)
  builder = tfds_lib.prepare(se_data.SpectralEarth, config=builder_config, manual_dir=manual,
                             data_dir=data_dir)
  return tfds_lib.data_source(builder, "train").map(lambda e: {"images": e["images"]})


def spectral_earth_task(method: str, config, source):
  """The ``jspectral.ssl.tasks`` pretraining task of ``method`` on ``source`` (EnMAP patches)."""
  from jspectral.data.builders import spectral_earth as se_data

  bands = se_data.enmap_bands()
  vit = spec_vit.SpecViT(**{**config.vit, "img_size": config.size})
  backbone = vit if config.backbone == "spec_vit" else spec_resnet.SpecResNet50()
  if config.backbone not in ("spec_vit", "spec_resnet50") or (
      method == "mae" and config.backbone != "spec_vit"):
    raise ValueError(f"backbone: expected spec_vit (any method) or spec_resnet50 (moco, dino), "
                     f"got {config.backbone!r} for {method}")
  common = dict(source=source, mean=bands["mu"], std=bands["sigma"], size=config.size)
  if method == "moco":
    return ssl_tasks.MoCoTask(**common, backbone=backbone, head_hidden=config.head_hidden,
                              bank_size=config.bank_size)
  if method == "dino":
    return ssl_tasks.DINOTask(**common, backbone=backbone, head_hidden=config.head_hidden,
                              out_dim=config.dino_out, steps_per_epoch=config.steps_per_epoch,
                              total_steps=config.train.dino.total_steps,
                              per_step_momentum=config.dino_per_step_momentum,
                              momentum_start=config.dino_momentum_start,
                              center_momentum=config.dino_center_momentum,
                              bottleneck=config.dino_bottleneck, scale=tuple(config.dino_scale),
                              official_lr=config.dino_official_lr,
                              copy_teacher_head=config.dino_copy_teacher_head)
  if method == "mae":
    return ssl_tasks.MAETask(**common, encoder=vit, mask_ratio=config.mask_ratio,
                             decoder_dim=config.decoder_dim, decoder_heads=config.decoder_heads,
                             official_lr=config.mae_official_lr,
                             steps_per_epoch=config.steps_per_epoch)
  raise ValueError(f"method: expected moco, dino or mae, got {method!r}")


# ------------------------------------------------------------------------------------------------
# Neural Spectral Methods: pde_poisson, pde_reaction_diffusion, pde_navier_stokes
# ------------------------------------------------------------------------------------------------

PDE_PAPER_NOTE = ("paper %: the paper's relative L2 error (%), mean ± std over seeds 0..3, as "
                  "recorded in specs/neural_spectral_methods.md; n/a: the spec holds no number "
                  "for that cell (it could not retrieve Tables 1-4 of arXiv 2312.05225).")
PDE_PROTOCOL_NOTE = ("Protocol (official src/train.py metric): per test sample errr = ||u - v|| / "
                     "||u||, erra = mean |u - v|, residual = mean |finite-difference residual of "
                     "v| on the test grid; each averaged over the test set, then mean ± std "
                     "(numpy, ddof 0) over the training seeds.")


def operator_config(preset: str) -> ml_collections.ConfigDict:
  """The fields every PDE experiment shares. Training inputs are sampled from the problem's prior
  (self-supervised, no dataset). Test sets: ``data.source="official"`` reads the official ``.npy``
  files from ``data.dir`` (default ``$JSPECTRAL_MANUAL_DIR/neural_spectral_methods``);
  ``"synthetic"`` draws ``n_test`` samples with key 0 and solves them with
  ``jspectral.pde.solvers``."""
  base = preset.partition(":")[0]
  if base not in ("smoke", "paper"):
    raise ValueError(f"preset: expected 'smoke', 'paper' or 'paper:VARIANT', got {preset!r}")
  smoke = base == "smoke"
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.data = ml_collections.ConfigDict(dict(source="synthetic" if smoke else "official", dir=""))
  c.seeds = [0] if smoke else [0, 1, 2, 3]   # official scripts: seeds 0..3 (+ train.seed)
  c.methods = []             # names of config.models to run (empty: all)
  c.problem_steps = ml_collections.ConfigDict()   # instance -> steps (else train.total_steps)
  c.eval_chunk = 16          # test samples predicted at once (memory, official --vmap)
  c.min_error_drop = 10.0
  c.checks = smoke  # check that the error falls min_error_drop x below the untrained model's
  c.label = "SMOKE: tiny models, few steps, small test grid" if smoke else ""  # table title
  c.reference = dict(refine=8, dirichlet_n=48, ns_grid=256, ns_dt=0.0)
  return c


def model_config(kind: str, hdim: int, depth: int, mode, grid: int = 0, activate: str = "relu",
                 cheb: bool = False, fourier: bool = False):
  """One model of a PDE table: ``kind`` nsm / sno / fno; ``cheb`` = CNO + PINN (official
  ``--cheb``); ``fourier`` = NSM with the Fourier basis on every axis (official ``--fourier``)."""
  return dict(kind=kind, hdim=hdim, depth=depth, mode=list(mode), grid=grid, activate=activate,
              cheb=cheb, fourier=fourier)


def paper_models(hdim: int, depth: int, mode, grids=(64, 128, 256), *, sno: bool = True,
                 cno: bool = False, nsm_fourier: bool = False, activate: str = "relu") -> dict:
  """The columns of an official run script: SNO, FNO x<grid> + PINN, CNO x256 + PINN, NSM and
  NSM-Fourier (as selected), all with the same width, depth and modes."""
  models = {"SNO": model_config("sno", hdim, depth, mode, activate=activate)} if sno else {}
  for g in grids:
    models[f"FNO x{g} + PINN"] = model_config("fno", hdim, depth, mode, grid=g, activate=activate)
  if cno:
    models["CNO x256 + PINN"] = model_config("fno", hdim, depth, mode, grid=256,
                                             activate=activate, cheb=True)
  models["NSM"] = model_config("nsm", hdim, depth, mode, activate=activate)
  if nsm_fourier:
    models["NSM (Fourier basis)"] = model_config("nsm", hdim, depth, mode, activate=activate,
                                                 fourier=True)
  return models


def train_config(preset: str, steps: int, batch_size: int = 16, learning_rate: float = 1e-3):
  config = train.default_config()
  config.total_steps = steps
  config.batch_size = batch_size
  config.optimizer.learning_rate = learning_rate
  if preset.partition(":")[0] == "paper":
    # Official schedule "exp": lr * (1e-3) ** (step / total_steps), a smooth 1000x decay.
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 1e-3
    config.eval_every = 1000
    config.checkpoint_every = 5000
    config.log_every = 100
  else:
    config.eval_every = max(steps // 5, 1)
    config.checkpoint_every = steps
    config.log_every = max(steps // 20, 1)
  return config


def train_and_evaluate(task: OperatorTask, train_config, workdir, untrained: bool = True) -> dict:
  """Trains ``task.model`` with :func:`jspectral.train.fit` and measures what the paper tables
  report (the task's compiled test functions are reused across seeds).

  Returns a dict with the untrained (``None`` unless ``untrained``) and trained per-sample
  metrics (``metrics_init``, ``metrics``:
  ``errr`` fractions, ``erra``, ``residual``; see :mod:`jspectral.pde.protocol`),
  ``train_seconds_per_step`` (wall time of the fit divided by its steps, compile included),
  ``inference_seconds`` (whole test set on its grid, ``task.chunk`` samples at a time), the
  ``history``, ``params`` and one example prediction ``pred0`` on the test grid.
  """
  metrics_init = None
  if untrained:
    # one compiled init (eagerly, every primitive of the model would compile on its own)
    key = jax.random.PRNGKey(train_config.seed)
    metrics_init = task.metrics(jax.jit(lambda k: task.init(k, None)[0])(key))
  start = time.perf_counter()
  result = train.fit(task, train_config, workdir)
  seconds = time.perf_counter() - start
  return dict(metrics_init=metrics_init, metrics=task.metrics(result.params),
              train_seconds_per_step=seconds / max(train_config.total_steps, 1),
              inference_seconds=task.inference_seconds(result.params), history=result.history,
              params=result.params,
              pred0=task.predict_test(result.params, limit=1)[0])


def build_model(spec, problem):
  kw = dict(problem=problem, hdim=spec["hdim"], depth=spec["depth"], mode=tuple(spec["mode"]),
            activate=spec["activate"])
  if spec["kind"] == "nsm":
    return nsm.NSM(fourier=spec["fourier"], **kw)
  if spec["kind"] == "sno":
    return nsm.SNO(**kw)
  return nsm.FNOPINN(grid=spec["grid"], cheb=spec["cheb"], **kw)


def nsm_data_dir(config) -> pathlib.Path:
  """``config.data.dir``, or ``<manual root>/neural_spectral_methods`` when empty."""
  if config.data.dir:
    return pathlib.Path(config.data.dir).expanduser()
  from jspectral.data.tfds import manual_root

  return manual_root() / "neural_spectral_methods"


def make_test_set(problem, config):
  """The test set of ``problem``: the official ``.npy`` files (``data.source="official"``, first
  ``n_test``) or ``n_test`` prior samples (key 0, as the official generators) solved by
  ``jspectral.pde.solvers`` on ``test_grid`` (``"synthetic"``)."""
  if check_source(config, "synthetic", "official") == "official":
    return protocol.load_official_test_set(problem, nsm_data_dir(config), config.n_test)
  phi = problems.sample(problem, jax.random.PRNGKey(0), (config.n_test,))
  ref = dict(config.reference)
  ns_dt = ref.pop("ns_dt") or None
  solve = jax.jit(lambda p: solvers.reference_solution(problem, p, tuple(config.test_grid),
                                                       ns_dt=ns_dt, **ref))
  return np.asarray(phi), np.stack([np.asarray(solve(p)) for p in phi])


def _seeds(config) -> list[int]:
  return [int(config.train.seed) + int(s) for s in config.seeds]


def _seed_runs(config, model, phi_test, u_test, workdir: pathlib.Path, steps: int) -> list[dict]:
  """One training run per seed ``train.seed + s`` for ``s`` in ``config.seeds`` (so a shifted
  ``train.seed`` shifts them all), in ``<workdir>_seed<seed>``."""
  runs = []
  task = OperatorTask(model, phi_test, u_test, chunk=config.eval_chunk)
  for seed in _seeds(config):
    tc = ml_collections.ConfigDict(config.train.to_dict())
    tc.seed, tc.total_steps = seed, int(steps)
    runs.append(train_and_evaluate(task, tc, workdir.parent / f"{workdir.name}_seed{seed}",
                                   untrained=config.checks))
  return runs


def _mean_std(values) -> str:
  values = np.asarray(values, np.float64)
  return f"{np.mean(values):.3g} ± {np.std(values):.2g}"


def _methods(config) -> list[str]:
  names = list(config.methods) or list(config.models)
  unknown = [m for m in names if m not in config.models]
  if unknown:
    raise ValueError(f"methods: {unknown} are not in config.models {list(config.models)}")
  return names


def run_operator_experiment(config, workdir: pathlib.Path, title: str, instances: dict,
                            paper: dict) -> Report:
  """Trains every configured model on every problem instance for every seed and writes the
  paper-style tables (mean ± std over seeds of the test-set means).

  ``config.problem_steps`` gives the official per-instance step counts; ``train.total_steps``
  applies to the instances it does not name. ``config.methods`` selects models by name.

  Args:
    instances: ``name -> problem`` for the instances in ``config.problems``.
    paper: ``(instance, method) -> paper number`` (relative L2 error in %), when known.
  """
  workdir = pathlib.Path(workdir)
  unknown = [i for i in config.problems if i not in instances]
  if unknown:
    raise ValueError(f"problems: {unknown} are not instances of this experiment "
                     f"{list(instances)}")
  report = Report(title=title)
  rows, seed_rows, figures, checks = [], [], [], {}
  for instance in config.problems:
    problem = instances[instance]
    phi_test, u_test = make_test_set(problem, config)
    n_steps = config.problem_steps.get(instance, config.train.total_steps)
    for method in _methods(config):
      spec = config.models[method]
      model = build_model(spec, problem)
      tag = f"{instance}_{method.split()[0].lower()}{spec['grid'] or ''}"
      tag += "_cheb" if spec["cheb"] else "_fourier" if spec["fourier"] else ""
      runs = _seed_runs(config, model, phi_test, u_test, workdir / tag, n_steps)
      per_seed = {k: [float(np.mean(r["metrics"][k])) for r in runs]
                  for k in ("errr", "erra", "residual")}
      err = 100 * np.asarray(per_seed["errr"])
      err0 = (100 * float(np.mean([np.mean(r["metrics_init"]["errr"]) for r in runs]))
              if config.checks else float("nan"))
      rows.append([instance, method, len(runs), n_steps, _mean_std(err),
                   _mean_std(per_seed["erra"]), _mean_std(per_seed["residual"]),
                   f"{err0:.3g}" if config.checks else "-",
                   paper.get((instance, method), "n/a"),
                   float(np.mean([r["train_seconds_per_step"] for r in runs])),
                   float(np.mean([r["inference_seconds"] for r in runs])),
                   param_count({"params": runs[0]["params"]})])
      seed_rows += [[instance, method, int(seed), float(e), a, r]
                    for seed, e, a, r in zip(_seeds(config), err, per_seed["erra"],
                                             per_seed["residual"], strict=True)]
      if config.checks:
        checks[f"{instance} {method} learns the solution operator: rel. L2 error falls >= "
               f"{config.min_error_drop:g}x below the untrained model ({err0:.3g}% -> "
               f"{np.mean(err):.3g}%)"] = np.mean(err) * config.min_error_drop <= err0
      figure = f"{tag}.png"
      pde_figures.plot_prediction(workdir / figure, u_test[0], runs[0]["pred0"],
                                  {method: runs[0]["history"]}, title=f"{instance} {method}")
      figures.append(figure)
  label = f" ({config.label})" if config.label else ""
  report.tables.append(Table(
      title=f"Relative L2 error (%), mean ± std over seeds, training and inference time{label}",
      header=["instance", "method", "seeds", "steps", "errr % (ours)", "erra", "residual",
              "untrained errr %", "paper errr %", "train s/step", "inference s (test set)",
              "params"],
      rows=rows, note=PDE_PAPER_NOTE))
  report.tables.append(Table(title=f"Per seed{label}",
                             header=["instance", "method", "seed", "errr %", "erra", "residual"],
                             rows=seed_rows, note=PDE_PROTOCOL_NOTE))
  report.figures = figures
  report.checks = checks
  report.headline = Headline(
      f"training lowers the relative L2 error >= {config.min_error_drop:g}x below the untrained "
      "model" if config.checks else "relative L2 error of the trained models",
      "; ".join(f"{r[0]} {r[1]} {r[4]} %" + f" (untrained {r[7]} %)" * bool(config.checks)
                for r in rows))
  grid = "x".join(map(str, u_test.shape[1:-1]))
  report.notes = [f"preset {config.preset}: {len(u_test)} test instances ({config.data.source} "
                  f"test set) on a {grid} grid incl. ends; batch {config.train.batch_size}; "
                  f"seeds {_seeds(config)}.",
                  PDE_PROTOCOL_NOTE,
                  "Training is self-supervised (spectral or PINN residual); reference solutions "
                  "are used for evaluation only."]
  return report
