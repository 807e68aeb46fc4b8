"""HSDT and MAN blind hyperspectral denoising on the ICVL protocol (QRNN3D / HSIR).

Papers: Lai et al., "Hybrid Spectral Denoising Transformer with Guided Attention", ICCV 2023
(Zeqiang-Lai/HSDT, original training code ``train/``); Lai & Fu, "Mixed Attention Network for
Hyperspectral Image Denoising", arXiv:2301.11525 (Zeqiang-Lai/MAN, trained with bit-isp/HSIR).
Facts: specs/hsdt.md, specs/man.md, specs/hsi_denoising_data.md.

* ``smoke``: C=4 models on synthetic 31-band 16x16 patches (Gaussian sigma=50), validated every
  epoch on two 32x32 cubes with best-PSNR selection; checks that both denoisers beat the noisy
  input's PSNR on the test cubes.
* ``paper``: the official recipes in one run per model. Training on the ICVL 64x64x31 patches
  (TFDS builder ``jspectral.data.builders.icvl``; 53,000 patches = 3,312 steps of 16 per epoch)
  with QRNN3D's augmentation (a dihedral symmetry and a band reversal with probability 1/2, one
  draw per patch as the official LMDB stores it): 30 epochs at sigma=50, 50 epochs of blind
  Gaussian noise (sigma cycled through 10/30/50/70 per sample), then the complex-noise stage, with
  each paper's epoch-wise learning rates. Validation every epoch; the best validation PSNR selects
  the parameters as the official scripts keep ``model_best.pth`` (HSDT ``train/train.py``: all of
  ``icvl_512_50``, best reset after the sigma=50 stage, the complex stage keeps its last epoch;
  HSIR for MAN: the first 5 files of ``icvl_512_50`` / ``icvl_512_mixture``, best reset at each
  stage). Test on the authors' ``icvl_512_<case>`` folders when present in the manual directory,
  otherwise on sets built from the raw ICVL test images by the same procedure (central 512 crop of
  the rotated image, min-max, the QRNN3D noise laws with a fixed key per case and file); whole
  cubes, output clamped to [0, 1], official MPSNR / MSSIM (data_range 2) / SAM (radians).
* ``paper:cave`` / ``paper:harvard`` (:data:`PAPER_VARIANTS`): the Gaussian recipe on HSIR's CAVE
  and Harvard denoising splits.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import zlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from experiments.common import check_source, split_preset
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import models, train
from jspectral.data import noise, synthetic
from jspectral.denoising import protocol
from jspectral.denoising.tasks import DenoisingTask, phase_schedule, score

matplotlib.use("Agg")

GAUSSIAN_CASES = ("30", "50", "70", "blind")
COMPLEX_CASES = ("noniid", "stripe", "deadline", "impulse", "mixture")
NAMES = ("hsdt", "man")

# Paper tables (PSNR dB / SSIM / SAM rad); "Noisy" rows as published (QRNN3D era).
PAPER = {"icvl": {
    "Noisy": {"30": (18.59, 0.110, 0.807), "50": (14.15, 0.046, 0.991),
              "70": (11.23, 0.025, 1.105), "blind": (17.34, 0.114, 0.859),
              "noniid": (18.25, 0.168, 0.898), "stripe": (17.80, 0.159, 0.910),
              "deadline": (17.61, 0.155, 0.917), "impulse": (14.80, 0.114, 0.926),
              "mixture": (14.08, 0.099, 0.944)},
    "hsdt": {"30": (44.02, 0.991, 0.041), "50": (41.82, 0.986, 0.049),
             "70": (40.33, 0.981, 0.055), "blind": (43.32, 0.989, 0.045),
             "noniid": (44.56, 0.994, 0.039), "stripe": (44.29, 0.993, 0.040),
             "deadline": (44.18, 0.993, 0.040), "impulse": (41.28, 0.977, 0.101),
             "mixture": (40.46, 0.976, 0.106)},
    "man": {"30": (44.07, 0.991, 0.042), "50": (41.84, 0.986, 0.050),
            "70": (40.32, 0.981, 0.058), "blind": (43.35, 0.989, 0.045),
            "stripe": (44.60, 0.994, 0.038), "deadline": (44.51, 0.994, 0.038),
            "impulse": (41.97, 0.979, 0.095), "mixture": (41.18, 0.979, 0.097)}}}
# HSDT's CAVE row (PSNR / SAM only; the noise setting is not stated); MAN reports no CAVE and
# neither paper reports Harvard.
PAPER_CAVE = {"Noisy": (18.99, 0.901), "hsdt": (39.80, 0.174)}
PAPER_NAMES = {"hsdt": "HSDT-M", "man": "MAN-M (v2)"}
DATASET_NAMES = {"synthetic": "synthetic", "icvl": "ICVL", "cave": "CAVE", "harvard": "Harvard"}

PAPER_VARIANTS = {
    "cave": "CAVE (HSIR split: 20 training / 12 test scenes, 512x512): 64x64 patches at scales "
            "1, 1/2, 1/4, the Gaussian recipe (80 epochs); test sigma 30/50/70/blind (HSDT's "
            "CAVE row printed beside)",
    "harvard": "Harvard (HSIR split: 30 / 20 images, central 512 crop): as cave; neither paper "
               "reports Harvard denoising",
}

# (first epoch, end epoch, learning rate, linear warm-up over the first epoch, training noise).
HSDT_PHASES = (
    (0, 20, 1e-3, False, "50"), (20, 30, 1e-4, False, "50"), (30, 45, 1e-3, True, "blind"),
    (45, 55, 1e-4, False, "blind"), (55, 60, 5e-5, False, "blind"),
    (60, 65, 1e-5, False, "blind"), (65, 75, 5e-6, False, "blind"),
    (75, 80, 1e-6, False, "blind"), (80, 90, 1e-3, True, "complex"),
    (90, 95, 5e-4, False, "complex"), (95, 100, 1e-4, False, "complex"),
    (100, 105, 5e-5, False, "complex"), (105, 120, 1e-5, False, "complex"))
MAN_PHASES = (
    (0, 1, 1e-3, False, "50"), (1, 20, 5e-4, False, "50"), (20, 30, 1e-4, False, "50"),
    (30, 45, 5e-4, True, "blind"), (45, 55, 1e-4, False, "blind"),
    (55, 60, 5e-5, False, "blind"), (60, 65, 1e-5, False, "blind"),
    (65, 75, 5e-6, False, "blind"), (75, 80, 1e-6, False, "blind"),
    (80, 85, 5e-4, True, "complex"), (85, 90, 5e-5, False, "complex"),
    (90, 95, 1e-5, False, "complex"), (95, 100, 5e-6, False, "complex"),
    (100, 110, 1e-6, False, "complex"))
# Official validation and selection: HSDT train/train.py validates on every file of icvl_512_50,
# resets its best PSNR after validating the last sigma=50 epoch (so that model competes with the
# blind stage) and train_complex.py keeps the last epoch; HSIR (MAN) validates on the first 5
# files of icvl_512_50 / icvl_512_mixture and resets its best before the first blind epoch.
VALIDATION = {
    "hsdt": dict(gaussian_files=0, complex_files=5, select_complex=False,
                 stage_end_competes=True),
    "man": dict(gaussian_files=5, complex_files=5, select_complex=True,
                stage_end_competes=False)}
# Images per split of the datasets' training lists, for the epoch length (122 patches per
# 512x512 CAVE / Harvard image: 64 + 49 + 9).
VARIANT_DATA = {"cave": dict(train_images=20, test_crop=0, train_crop=0),
                "harvard": dict(train_images=30, test_crop=512, train_crop=512)}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  base, variant = split_preset(preset, PAPER_VARIANTS)
  smoke = base == "smoke"
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.bands = 31
  # the paper's HSDT-M / MAN-M (v2) architecture fields, settable with --set
  c.models = ml_collections.ConfigDict({
      n: dict(channels=4 if smoke else 16, num_half_layer=5, sample_idx=(1, 3)) for n in NAMES})
  gaussian_only = smoke or bool(variant)
  c.phases = ml_collections.ConfigDict({
      "hsdt": [[0, 2, 2e-3, False, "50"]] if smoke else _phases(HSDT_PHASES, gaussian_only),
      # MAN starts several dB below the noisy input: its smoke trains 6 epochs (2 left it within
      # its seed spread of the input), each a few CPU seconds once compiled
      "man": [[0, 6, 1e-2, False, "50"]] if smoke else _phases(MAN_PHASES, gaussian_only)})
  c.validation = ml_collections.ConfigDict(VALIDATION)  # per model: the official selection
  # The TFDS builders of icvl / cave / harvard (synthetic: ICVL-like cubes); the geometry is the
  # publishers' full-size recipe, which a dry run cuts.
  c.data = ml_collections.ConfigDict(dict(
      source="synthetic" if smoke else (variant or "icvl"),  # synthetic | icvl | cave | harvard
      manual_dir="",  # the publisher's files ('' = <manual root>/<dataset>)
      data_dir="",  # TFDS directory of the prepared records ('' = TFDS's default)
      test_seed=0,  # key of the test sets built when the authors' folders are absent
      train_crop=1024,  # central crop cut into training patches (0: the whole image)
      test_crop=512,  # central crop of the test images (0: the whole image)
      patch_strides=(64, 32, 32)))  # patch grid strides at scales 1, 1/2, 1/4
  if variant:
    c.data.update(train_crop=VARIANT_DATA[variant]["train_crop"],
                  test_crop=VARIANT_DATA[variant]["test_crop"])
  c.patch = 16 if smoke else 64
  c.augmentation = "fixed"  # QRNN3D's: fixed (one draw per patch, official) | fresh | none
  c.num_train = 64 if smoke else 0         # synthetic cubes (the real sources: every patch)
  num_patches = (53_000 if not variant else VARIANT_DATA[variant]["train_images"] * 122)
  c.steps_per_epoch = 40 if smoke else num_patches // 16
  c.test_size = 32                         # synthetic cubes
  c.num_test = 2 if smoke else 0           # synthetic cubes; 0: every file of the real sets
  c.test_cases = ("50",) if gaussian_only else GAUSSIAN_CASES + COMPLEX_CASES
  if variant:
    c.test_cases = GAUSSIAN_CASES
  c.checks = smoke  # both denoisers must beat the noisy input's PSNR
  c.label = "smoke: synthetic cubes, C=4 models" if smoke else ""  # table titles
  c.train = train.default_config()
  c.train.update(batch_size=8 if smoke else 16, log_every=20 if smoke else 200,
                 checkpoint_every=1000 if smoke else 3312)
  # torch Adam: per-parameter state, the GSSA branch not drawn in a step is not updated
  c.train.optimizer.update(name="adam", b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                           skip_unused=True)
  return c


def _phases(phases, gaussian_only: bool) -> list[list]:
  return [list(p) for p in phases if not (gaussian_only and p[4] == "complex")]


# ------------------------------------------------------------------------------------------------
# Data: training patches and test sets


@dataclasses.dataclass(frozen=True)
class TestSet:
  """Noisy / clean cube pairs of one noise case, read one at a time in file-name order.

  Attributes:
    names: the file (image) names, sorted.
    load: ``index -> (noisy (H, W, C), clean (H, W, C))`` float32.
    origin: where the cubes come from, for the report.
  """

  names: tuple[str, ...]
  load: Callable[[int], tuple[np.ndarray, np.ndarray]]
  origin: str

  def first(self, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` pairs stacked (``0``: all), the official validation subset."""
    indices = range(len(self.names) if count <= 0 else min(count, len(self.names)))
    pairs = [self.load(i) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _text(value) -> str:
  """A record's name as the file stem (list files may name images with or without ``.mat``)."""
  return (value.decode() if isinstance(value, bytes) else str(value)).removesuffix(".mat")


def built_test_set(records, case: str, seed: int, origin: str) -> TestSet:
  """A test set made from clean cubes by the QRNN3D test laws (:func:`noise.noisy_test_example`).

  The noise of file ``i`` (in name order) uses ``fold_in(fold_in(key(seed), case index), i)``,
  ``case index`` its position in ``noise.TEST_CASES``: the same set for the same seed.

  Args:
    records: random-access ``{"name", "cube" (H, W, C)}`` records (e.g. a TFDS split).
    case: one of ``noise.TEST_CASES``.
    seed: the test-set seed.
    origin: description for the report.

  Returns:
    The :class:`TestSet`.
  """
  names = [_text(records[i]["name"]) for i in range(len(records))]
  order = sorted(range(len(names)), key=names.__getitem__)
  case_key = jax.random.fold_in(jax.random.key(seed), noise.TEST_CASES.index(case))

  def load(i):
    clean = np.asarray(records[order[i]]["cube"], np.float32)
    noisy = noise.noisy_test_example(jax.random.fold_in(case_key, i), clean, case)["input"]
    return np.asarray(noisy), clean

  return TestSet(tuple(names[i] for i in order), load, origin)


def prepared_test_set(records, origin: str) -> TestSet:
  """The authors' ``<dataset>_512_<case>`` files (``{"name", "input", "gt"}`` records)."""
  names = [_text(records[i]["name"]) for i in range(len(records))]
  order = sorted(range(len(names)), key=names.__getitem__)

  def load(i):
    record = records[order[i]]
    return np.asarray(record["input"], np.float32), np.asarray(record["gt"], np.float32)

  return TestSet(tuple(names[i] for i in order), load, origin)


def _synthetic(config, cases):
  k_train, k_test = jax.random.split(jax.random.key(config.train.seed))
  cubes = lambda key, n, size: np.asarray(jax.vmap(
      lambda k: synthetic.icvl_like(k, size, size, config.bands))(jax.random.split(key, n)))
  test = [{"name": f"synthetic_{i}", "cube": cube}
          for i, cube in enumerate(cubes(k_test, config.num_test, config.test_size))]
  sets = {case: built_test_set(test, case, config.data.test_seed,
                               f"{len(test)} synthetic cubes, seed {config.data.test_seed}")
          for case in cases}
  return cubes(k_train, config.num_train, config.patch), sets


def _variant(builder_cls, name: str, **fields):
  """Builder configuration ``name``, with ``fields`` changed under a derived name when they
  differ from the published recipe (a dry run's cut geometry gets its own prepared records)."""
  base = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == name)
  changed = {k: v for k, v in fields.items() if getattr(base, k) != v}
  if not changed:
    return name
  tag = zlib.crc32(repr(sorted(changed.items())).encode())
  return dataclasses.replace(base, name=f"{name}_{tag:08x}", **changed)


def _builders(config):
  """``(builder class, training configuration, clean test configuration, splits)`` of the real
  source: ``splits`` maps a case to the clean split its built test set reads."""
  from jspectral.data.builders import cave, harvard, icvl

  d = config.data
  source = check_source(config, "icvl", "cave", "harvard")
  crop = lambda size: size or None
  if source == "icvl":
    train_cfg = _variant(icvl.Icvl, "train_patches", crop_train=d.train_crop, patch=config.patch,
                         strides=tuple(d.patch_strides))
    test_cfg = _variant(icvl.Icvl, "test_crops", crop=crop(d.test_crop))
    splits = {c: "test_complex" if c in COMPLEX_CASES else "test_gauss" for c in noise.TEST_CASES}
    return icvl.Icvl, train_cfg, test_cfg, splits
  builder_cls = cave.Cave if source == "cave" else harvard.Harvard
  train_cfg = _variant(builder_cls, "denoising_patches", crop=crop(d.train_crop),
                       patch_size=config.patch, patch_strides=tuple(d.patch_strides))
  test_cfg = _variant(builder_cls, "denoising", crop=crop(d.test_crop))
  return builder_cls, train_cfg, test_cfg, dict.fromkeys(GAUSSIAN_CASES, "test")


def _real(config, cases):
  from jspectral.data import tfds as tfds_lib

  builder_cls, train_cfg, test_cfg, splits = _builders(config)
  name = config.data.source
  manual = pathlib.Path(config.data.manual_dir) if config.data.manual_dir else (
      tfds_lib.manual_root() / name)
  prepare = functools.partial(tfds_lib.prepare, builder_cls, manual_dir=manual,
                              data_dir=config.data.data_dir or None)
  train_source = tfds_lib.data_source(prepare(config=train_cfg), "train")
  prepared = {}
  if name == "icvl" and not tfds_lib.missing_files(manual, ("icvl_512_*/*.mat",)):
    noisy = prepare(config="noisy_test")
    prepared = {split: tfds_lib.data_source(noisy, split) for split in noisy.info.splits}
  sets, clean = {}, None
  for case in cases:
    folder = f"{name}_512_{case}"
    if folder in prepared:
      records = prepared[folder]
      sets[case] = prepared_test_set(records, f"{folder} (authors' folder, {len(records)} files)")
      continue
    if clean is None:
      clean = prepare(config=test_cfg)
    records = tfds_lib.data_source(clean, splits[case])
    sets[case] = built_test_set(records, case, config.data.test_seed,
                                f"built from the {splits[case]} images ({len(records)} files), "
                                f"seed {config.data.test_seed}")
  return train_source, sets


def _data(config):
  """Training source and ``{case: TestSet}`` for the test and validation cases."""
  val_cases = {"50"} | ({"mixture"} if _has_complex(config) else set())
  cases = list(config.test_cases) + sorted(val_cases - set(config.test_cases))
  if check_source(config, "synthetic", "icvl", "cave", "harvard") == "synthetic":
    return _synthetic(config, cases)
  return _real(config, cases)


def _has_complex(config) -> bool:
  return any(p[4] == "complex" for n in NAMES for p in config.phases[n])


# ------------------------------------------------------------------------------------------------
# Training: one run per model, validation every epoch, official selection


def _stage_noise(kind: str):
  """Batch noise ``(key, clean (N, H, W, C)) -> noisy`` of a training phase."""
  def per_sample(fn):
    return lambda key, clean: jax.vmap(fn)(jax.random.split(key, clean.shape[0]),
                                           clean, jnp.arange(clean.shape[0]))
  if kind == "blind":
    return per_sample(lambda k, x, i: noise.gaussian(k, x, noise.cyclic_sigma(i)))
  if kind == "complex":
    return per_sample(noise.complex_training_noise)
  return per_sample(lambda k, x, i: noise.gaussian(k, x, float(kind)))


def restart_steps(phases, steps_per_epoch: int, stage_end_competes: bool) -> list[int]:
  """Where model selection starts afresh: at each change of the training noise.

  Args:
    phases: the recipe's ``(first epoch, end epoch, lr, warm-up, noise)`` phases.
    steps_per_epoch: optimizer steps per epoch.
    stage_end_competes: the validation at the end of the sigma=50 stage competes with the blind
      stage (HSDT ``train/train.py`` resets its best before comparing that epoch; HSIR resets it
      before training the next one). The complex stage is a new process in both: its first
      competitor is its own first epoch.

  Returns:
    Steps for ``select.restart_at``.
  """
  steps = []
  for previous, phase in zip(phases[:-1], phases[1:], strict=True):
    if phase[4] != previous[4]:
      competes = stage_end_competes and phase[4] == "blind"
      steps.append(phase[0] * steps_per_epoch + (0 if competes else 1))
  return steps


def _train(name: str, config, source, sets, workdir: pathlib.Path):
  """Trains ``name`` through its whole recipe in ONE run (one optimizer state, the noise
  curriculum and the learning rates keyed by the step), as the official complex stage resumes the
  Gaussian run with its optimizer, validating every epoch. The run stops once at the end of the
  Gaussian stage, whose selected parameters score the Gaussian test cases (the official Gaussian
  checkpoint), and continues with the complex stage's validation set.

  Returns:
    ``(task, {"gaussian" | "complex": (params, state)}, history)``.
  """
  model = models.create(name, **config.models[name].to_dict())
  phases = [tuple(p) for p in config.phases[name]]
  per_epoch = config.steps_per_epoch
  val = config.validation[name]
  eval_noisy, eval_clean = sets["50"].first(val.gaussian_files)
  task = DenoisingTask(model, source, _stage_noise(phases[0][4]), eval_noisy, eval_clean,
                       curriculum=tuple((start * per_epoch, _stage_noise(kind))
                                        for start, _, _, _, kind in phases),
                       learning_rate=phase_schedule(phases, per_epoch),
                       augmentation=config.augmentation, augmentation_seed=config.train.seed)
  run_config = config.train.copy_and_resolve_references()
  run_config.eval_every = per_epoch
  run_config.select.update(metric="psnr", mode="max", restart_at=restart_steps(
      phases, per_epoch, val.stage_end_competes))
  complex_start = next((start for start, *_, kind in phases if kind == "complex"), None)
  run_dir = workdir / name
  if not complex_start:
    run_config.total_steps = phases[-1][1] * per_epoch
    result = train.fit(task, run_config, run_dir)
    return task, {"gaussian": _selected(result)}, result.history
  stages = {"gaussian": _gaussian_stage(task, run_config, complex_start * per_epoch, run_dir)}
  complex_task = dataclasses.replace(task, **dict(zip(
      ("eval_noisy", "eval_clean"), sets["mixture"].first(val.complex_files), strict=True)))
  run_config.total_steps = phases[-1][1] * per_epoch
  with train.allow_config_changes():    # the same run, continued
    result = train.fit(complex_task, run_config, run_dir)
  stages["complex"] = (_selected(result) if val.select_complex
                       else (result.params, result.model_state))
  return task, stages, result.history


def _selected(result) -> tuple:
  return result.best["params"], result.best["model_state"]


def _gaussian_stage(task, run_config, steps: int, run_dir: pathlib.Path) -> tuple:
  """``(params, state)`` selected over the first ``steps`` of the run: trained up to there (or
  restored), and kept in ``run_dir/gaussian_stage`` (orbax) so that a rerun after the run went on
  finds them."""
  snapshot = (run_dir / "gaussian_stage").absolute()
  checkpointer = ocp.StandardCheckpointer()
  if snapshot.exists():
    kept = checkpointer.restore(snapshot)
    return kept["params"], kept["state"]
  stage_config = run_config.copy_and_resolve_references()
  stage_config.total_steps = steps
  params, state = _selected(train.fit(task, stage_config, run_dir))
  checkpointer.save(snapshot, {"params": params, "state": state})
  checkpointer.wait_until_finished()
  return params, state


# ------------------------------------------------------------------------------------------------
# Evaluation and report


def _evaluate(task, stages, test_set: TestSet, case: str) -> tuple[dict, dict, tuple]:
  """Mean official scores of the model and of the clamped noisy input over ``test_set``, and the
  first cube's ``(noisy, denoised, clean)``."""
  stage = "complex" if case in COMPLEX_CASES and "complex" in stages else "gaussian"
  params, state = stages[stage]
  ours, noisy_scores, first = [], [], None
  for i in range(len(test_set.names)):
    noisy, clean = test_set.load(i)
    pred = task.denoise(params, state, noisy[None])
    ours.append(score(clean[None], pred))
    noisy_scores.append(score(clean[None], np.clip(noisy, 0.0, 1.0)[None]))
    first = first or (noisy, pred[0], clean)
  mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
  return mean(ours), mean(noisy_scores), first


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  workdir = pathlib.Path(workdir)
  source, sets = _data(config)
  rows = {case: {} for case in config.test_cases}
  per_band, histories, example = {}, {}, {}
  for name in NAMES:
    task, stages, histories[name] = _train(name, config, source, sets, workdir)
    for case in config.test_cases:
      rows[case][name], rows[case]["Noisy"], (noisy, pred, clean) = _evaluate(
          task, stages, sets[case], case)
      if case == config.test_cases[0]:
        per_band[name] = np.asarray(_band_psnr(pred[None], clean[None]))
        per_band["Noisy"] = np.asarray(_band_psnr(np.clip(noisy, 0, 1)[None], clean[None]))
        example.update({name: pred, "noisy": noisy, "clean": clean})
  save_loss_curve(workdir / "loss.png", histories)
  _save_panels(workdir / "panels.png", example)
  _save_band_curves(workdir / "band_psnr.png", per_band, config.test_cases[0])
  checks = {}
  if config.checks:
    for name in NAMES:
      checks[f"{name} removes the noise: denoised PSNR > noisy PSNR"] = all(
          r[name]["psnr"] > r["Noisy"]["psnr"] for r in rows.values())
  return Report(title=f"HSDT and MAN hyperspectral denoising "
                      f"({DATASET_NAMES[config.data.source]}, QRNN3D/HSIR protocol)",
                tables=_tables(config, rows), figures=["panels.png", "band_psnr.png", "loss.png"],
                checks=checks, notes=_notes(config, sets), headline=_headline(config, rows))


def _headline(config, rows) -> Headline:
  """HSDT and MAN against the noisy input on the first test case (the paper's ICVL numbers)."""
  case = config.test_cases[0]
  ours = ", ".join(f"{PAPER_NAMES[n]} {rows[case][n]['psnr']:.2f}" for n in NAMES)
  paper = PAPER["icvl"]
  published = ", ".join(f"{PAPER_NAMES[n]} {paper[n][case][0]:.2f}" for n in NAMES
                        if case in paper[n])
  return Headline(f"HSDT and MAN denoise: PSNR above the noisy input (sigma {case})",
                  f"{ours} vs {rows[case]['Noisy']['psnr']:.2f} dB noisy",
                  f"{published} dB (ICVL)" if published else "")


def _tables(config, rows) -> list[Table]:
  dataset = DATASET_NAMES[config.data.source]
  tag = f" ({config.label})" if config.label else ""
  paper = PAPER.get(config.data.source, {})
  tables = [_table(f"{dataset} {title}{tag}", [c for c in cases if c in rows], rows, paper)
            for title, cases in (("Gaussian noise", GAUSSIAN_CASES),
                                 ("complex noise", COMPLEX_CASES))
            if any(c in rows for c in cases)]
  if config.data.source == "cave":
    body = [[PAPER_NAMES.get(m, m), f"{v[0]:.2f}", f"{v[1]:.3f}"] for m, v in PAPER_CAVE.items()]
    body.append([PAPER_NAMES["man"], "–", "–"])
    tables.append(Table("CAVE, paper (HSDT; noise setting not stated)", ["method", "PSNR", "SAM"],
                        body, note="Compare with the row of our table for the same noise."))
  return tables


def _table(title: str, cases, rows, paper) -> Table:
  header = ["method"] + [f"{c} ours" for c in cases]
  header += [f"{c} paper" for c in cases] if paper else []
  body = []
  for method in ("Noisy", *NAMES):
    ours = [f"{rows[c][method]['psnr']:.2f} / {rows[c][method]['ssim']:.3f} / "
            f"{rows[c][method]['sam']:.3f}" for c in cases]
    published = ["{:.2f} / {:.3f} / {:.3f}".format(*paper[method][c])
                 if c in paper.get(method, {}) else "–" for c in cases] if paper else []
    body.append([PAPER_NAMES.get(method, method), *ours, *published])
  return Table(title, header, body, note="PSNR (dB) / SSIM / SAM (rad), mean over test cubes.")


def _notes(config, sets) -> list[str]:
  notes = [f"{PAPER_NAMES[n]} here: {config.models[n].to_dict()} "
           f"({models.param_count_of(n, **config.models[n].to_dict()):,} parameters); "
           f"{config.phases[n][-1][1]} epochs of {config.steps_per_epoch} steps, batch "
           f"{config.train.batch_size}, augmentation {config.augmentation!r}; validation every "
           f"epoch on {_files(config.validation[n].gaussian_files)} of the sigma=50 set, best "
           f"PSNR selected (reset when the training noise changes)"
           f"{'; complex stage: last epoch' if _keeps_last(config, n) else ''}."
           for n in NAMES]
  notes += [f"Test set {case}: {test_set.origin}." for case, test_set in sets.items()
            if case in config.test_cases]
  notes.append("Metrics: official HSIR/torchlight conventions (per-band PSNR, SSIM with a 7x7 "
               "uniform window and data_range 2, SAM in radians with eps 1e-8), whole cubes, "
               "outputs clamped to [0, 1]; the paper's Noisy rows are the QRNN3D-era values "
               "(unclamped input), ours score the clamped input as HSIR does.")
  return notes


def _keeps_last(config, name: str) -> bool:
  return _has_complex(config) and not config.validation[name].select_complex


def _files(count: int) -> str:
  return "every file" if count <= 0 else f"the first {count} files"


def _band_psnr(pred: np.ndarray, clean: np.ndarray) -> jax.Array:
  mse = jnp.mean(jnp.square(jnp.asarray(pred) - jnp.asarray(clean)), axis=(1, 2))
  return jnp.mean(10.0 * jnp.log10(1.0 / mse), axis=0)


def _false_colour(cube: np.ndarray) -> np.ndarray:
  bands = cube.shape[-1]
  rgb = cube[..., [int(0.8 * bands), bands // 2, int(0.2 * bands)]]
  return np.clip(rgb, 0.0, 1.0)


def _save_panels(path: pathlib.Path, example: dict) -> None:
  import matplotlib.pyplot as plt

  names = ["noisy", *NAMES, "clean"]
  fig, axes = plt.subplots(1, 4, figsize=(11, 3))
  for ax, key in zip(axes, names, strict=True):
    ax.imshow(_false_colour(np.asarray(example[key])))
    title = PAPER_NAMES.get(key, key)
    if key not in ("noisy", "clean"):
      title += f"\n{float(protocol.mpsnr(example[key], example['clean'])):.2f} dB"
    ax.set_title(title)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _save_band_curves(path: pathlib.Path, per_band: dict, case: str) -> None:
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5.5, 3.2))
  for name, values in per_band.items():
    ax.plot(np.arange(1, len(values) + 1), values, label=PAPER_NAMES.get(name, name))
  ax.set_xlabel("band")
  ax.set_ylabel("PSNR (dB)")
  ax.set_title(f"per-band PSNR, noise case {case}")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
