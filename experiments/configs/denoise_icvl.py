"""HSDT and MAN blind hyperspectral denoising on the ICVL protocol (QRNN3D / HSIR).

Papers: Lai et al., "Hybrid Spectral Denoising Transformer with Guided Attention", ICCV 2023
(Zeqiang-Lai/HSDT); Lai & Fu, "Mixed Attention Network for Hyperspectral Image Denoising",
arXiv:2301.11525 (Zeqiang-Lai/MAN). Facts: specs/hsdt.md, specs/man.md, specs/hsi_denoising_data.md.

* ``smoke``: C=4 models trained 80 steps on synthetic 31-band 16x16 patches (Gaussian sigma=50),
  evaluated on two 32x32 cubes; checks that both denoisers beat the noisy input's PSNR.
* ``paper``: the official recipes. Training on the ICVL 64x64x31 patches (TFDS builder
  ``jspectral.data.builders.icvl``, config ``train_patches``; 53,000 patches = 3,312 steps of 16
  per epoch): 30 epochs at sigma=50, then 50 epochs of blind Gaussian noise (sigma cycled through
  10/30/50/70 per sample), with each paper's epoch-wise learning rates (linear warm-up over the
  first epoch of the blind stage); then the complex-noise stage. Evaluation on the authors'
  ``icvl_512_<case>`` test sets (config ``noisy_test``), whole 512x512x31 cubes, output clamped to
  [0, 1], official MPSNR / MSSIM (data_range 2) / SAM (radians).

Deviation: every learning-rate phase is one ``fit`` call started from the previous phase's
parameters, so Adam's moments restart at each phase boundary (the official loops keep them).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from experiments.common import check_source
from experiments.report import Report, Table, save_loss_curve
from jspectral import models, train
from jspectral.data import noise, synthetic
from jspectral.denoising import protocol
from jspectral.denoising.tasks import DenoisingTask, phase_schedule, score

matplotlib.use("Agg")

GAUSSIAN_CASES = ("30", "50", "70", "blind")
COMPLEX_CASES = ("noniid", "stripe", "deadline", "impulse", "mixture")

# Paper tables (PSNR dB / SSIM / SAM rad), ICVL; "Noisy" rows as published (QRNN3D era).
PAPER = {
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
            "impulse": (41.97, 0.979, 0.095), "mixture": (41.18, 0.979, 0.097)},
}
PAPER_NAMES = {"hsdt": "HSDT-M", "man": "MAN-M (v2)"}

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


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  if preset not in ("smoke", "paper"):
    raise ValueError(f"preset: expected 'smoke' or 'paper', got {preset!r}")
  smoke = preset == "smoke"
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.bands = 31
  c.models = ml_collections.ConfigDict({
      "hsdt": {"channels": 4} if smoke else {},
      "man": {"channels": 4} if smoke else {}})
  c.phases = ml_collections.ConfigDict({
      "hsdt": [(0, 1, 2e-3, False, "50")] if smoke else [list(p) for p in HSDT_PHASES],
      "man": [(0, 1, 1e-2, False, "50")] if smoke else [list(p) for p in MAN_PHASES]})
  # synthetic: ICVL-like cubes; icvl: the TFDS builder (train_patches / noisy_test) with its
  # manual directory ("" the default, jspectral.data.tfds.manual_root())
  c.data = ml_collections.ConfigDict(dict(source="synthetic" if smoke else "icvl",
                                          manual_dir=""))
  c.patch = 16 if smoke else 64
  c.num_train = 64 if smoke else 53_000
  c.steps_per_epoch = 80 if smoke else 53_000 // 16
  c.test_size = 32 if smoke else 512
  c.num_test = 2 if smoke else 0  # paper: every file of each icvl_512_<case> folder
  c.test_cases = ("50",) if smoke else GAUSSIAN_CASES + COMPLEX_CASES
  c.checks = smoke  # both denoisers must beat the noisy input's PSNR
  c.label = "smoke: synthetic cubes, C=4 models" if smoke else ""  # table titles
  c.train = train.default_config()
  c.train.update(batch_size=8 if smoke else 16, log_every=20 if smoke else 200,
                 checkpoint_every=1000 if smoke else 3312, progress=not smoke)
  # torch Adam: per-parameter state, the GSSA branch not drawn in a step is not updated
  c.train.optimizer.update(name="adam", b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                           skip_unused=True)
  return c


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


def _test_noise(key, clean: np.ndarray, case: str) -> np.ndarray:
  """Synthetic test sets with the QRNN3D test laws (the synthetic source)."""
  keys = jax.random.split(key, clean.shape[0])
  if case == "blind":
    fn = noise.blind_gaussian
  elif case in COMPLEX_CASES:
    fn = lambda k, x: noise.complex_noise(k, x, case)
  else:
    fn = lambda k, x: noise.gaussian(k, x, float(case))
  return np.stack([np.asarray(fn(k, x)) for k, x in zip(keys, clean, strict=True)])


def _data(config):
  """Training source and ``{case: (noisy, clean)}`` test sets of ``config.data.source``."""
  if check_source(config, "synthetic", "icvl") == "synthetic":
    k_train, k_test, k_noise = jax.random.split(jax.random.key(config.train.seed), 3)
    cubes = lambda key, n, size: np.asarray(jax.vmap(
        lambda k: synthetic.icvl_like(k, size, size, config.bands))(
            jax.random.split(key, n)))
    clean = cubes(k_test, config.num_test, config.test_size)
    tests = {case: (_test_noise(jax.random.fold_in(k_noise, i), clean, case), clean)
             for i, case in enumerate(config.test_cases)}
    return cubes(k_train, config.num_train, config.patch), tests
  from jspectral.data import tfds as tfds_lib
  from jspectral.data.builders.icvl import Icvl

  manual = config.data.manual_dir or None
  source = tfds_lib.data_source(
      tfds_lib.prepare(Icvl, config="train_patches", manual_dir=manual), "train")
  noisy_builder = tfds_lib.prepare(Icvl, config="noisy_test", manual_dir=manual)
  tests = {}
  for case in config.test_cases:
    split = f"icvl_512_{case}"
    if split in noisy_builder.info.splits:
      items = list(tfds_lib.data_source(noisy_builder, split))
      tests[case] = (np.stack([e["input"] for e in items]), np.stack([e["gt"] for e in items]))
  return source, tests


def _train(name: str, config, source, workdir: pathlib.Path):
  """Trains ``name`` through its whole recipe in ONE run (one optimizer state, the noise
  curriculum and the learning rates keyed by the step), as the official complex stage resumes the
  Gaussian run with its optimizer. The run stops once at the end of the Gaussian stage, whose
  parameters score the Gaussian test cases (the official Gaussian checkpoint), and continues.

  Returns:
    ``(model, {"gaussian" | "complex": (params, state)}, history)``.
  """
  model = models.create(name, **config.models[name].to_dict())
  phases = [tuple(p) for p in config.phases[name]]
  per_epoch = config.steps_per_epoch
  task = DenoisingTask(model, source, _stage_noise(phases[0][4]),
                       curriculum=tuple((start * per_epoch, _stage_noise(kind))
                                        for start, _, _, _, kind in phases),
                       learning_rate=phase_schedule(phases, per_epoch))
  complex_start = next((start for start, *_, kind in phases if kind == "complex"), None)
  run_dir = workdir / name
  stages = {}
  if complex_start:
    stages["gaussian"] = _gaussian_stage(task, config, complex_start * per_epoch, run_dir)
  run_config = config.train.copy_and_resolve_references()
  run_config.total_steps = phases[-1][1] * per_epoch
  with train.allow_config_changes(bool(complex_start)):    # the same run, continued
    result = train.fit(task, run_config, run_dir)
  stages["complex" if complex_start else "gaussian"] = (result.params, result.model_state)
  history = result.history
  return model, stages, history


def _gaussian_stage(task, config, steps: int, run_dir: pathlib.Path) -> tuple:
  """``(params, state)`` after ``steps`` of the run: trained up to there (or restored), and kept
  in ``run_dir/gaussian_stage`` (orbax) so that a rerun after the run went on finds them."""
  snapshot = (run_dir / "gaussian_stage").absolute()
  checkpointer = ocp.StandardCheckpointer()
  if snapshot.exists():
    kept = checkpointer.restore(snapshot)
    return kept["params"], kept["state"]
  stage_config = config.train.copy_and_resolve_references()
  stage_config.total_steps = steps
  result = train.fit(task, stage_config, run_dir)
  checkpointer.save(snapshot, {"params": result.params, "state": result.model_state})
  checkpointer.wait_until_finished()
  return result.params, result.model_state


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  workdir = pathlib.Path(workdir)
  source, tests = _data(config)
  rows = {case: {} for case in tests}
  per_band, histories, example = {}, {}, {}
  for name in ("hsdt", "man"):
    model, stages, histories[name] = _train(name, config, source, workdir)
    task = DenoisingTask(model, np.zeros((1, 4, 4, config.bands), np.float32), _stage_noise("50"))
    for case, (noisy, clean) in tests.items():
      stage = "complex" if case in COMPLEX_CASES and "complex" in stages else "gaussian"
      params, state = stages[stage]
      pred = task.denoise(params, state, noisy)
      rows[case][name] = score(clean, pred)
      rows[case].setdefault("Noisy", score(clean, np.clip(noisy, 0.0, 1.0)))
      if case == config.test_cases[0]:
        per_band[name] = np.asarray(_band_psnr(pred, clean))
        per_band.setdefault("Noisy", np.asarray(_band_psnr(np.clip(noisy, 0, 1), clean)))
        example[name] = pred[0]
        example.setdefault("noisy", noisy[0])
        example.setdefault("clean", clean[0])
  save_loss_curve(workdir / "loss.png", histories)
  _save_panels(workdir / "panels.png", example)
  _save_band_curves(workdir / "band_psnr.png", per_band, config.test_cases[0])
  tag = f" ({config.label})" if config.label else ""
  tables = [_table(f"ICVL {title}{tag}", [c for c in cases if c in rows], rows)
            for title, cases in (("Gaussian noise", GAUSSIAN_CASES),
                                 ("complex noise", COMPLEX_CASES))
            if any(c in rows for c in cases)]
  checks = {}
  if config.checks:
    for name in ("hsdt", "man"):
      checks[f"{name}: denoised PSNR > noisy PSNR"] = all(
          r[name]["psnr"] > r["Noisy"]["psnr"] for r in rows.values())
  notes = [f"{PAPER_NAMES[n]} here: {config.models[n].to_dict() or 'paper default'} "
            f"({models.param_count_of(n, **config.models[n].to_dict()):,} parameters); "
            f"{sum(e - s for s, e, *_ in config.phases[n])} epochs of "
            f"{config.steps_per_epoch} steps, batch {config.train.batch_size}."
            for n in ("hsdt", "man")]
  notes.append("Metrics: official HSIR/torchlight conventions (per-band PSNR, SSIM with a 7x7 "
               "uniform window and data_range 2, SAM in radians with eps 1e-8), outputs clamped "
               "to [0, 1]; the paper's Noisy rows are the QRNN3D-era values.")
  return Report(title="HSDT and MAN hyperspectral denoising (ICVL protocol)", tables=tables,
                figures=["panels.png", "band_psnr.png", "loss.png"], checks=checks, notes=notes)


def _table(title: str, cases, rows) -> Table:
  header = ["method"] + [f"{c} ours" for c in cases] + [f"{c} paper" for c in cases]
  body = []
  for method in ("Noisy", "hsdt", "man"):
    label = PAPER_NAMES.get(method, method)
    ours = [f"{rows[c][method]['psnr']:.2f} / {rows[c][method]['ssim']:.3f} / "
            f"{rows[c][method]['sam']:.3f}" for c in cases]
    paper = ["{:.2f} / {:.3f} / {:.3f}".format(*PAPER[method][c]) if c in PAPER[method] else "–"
             for c in cases]
    body.append([label, *ours, *paper])
  return Table(title, header, body, note="PSNR (dB) / SSIM / SAM (rad), mean over test cubes.")


def _band_psnr(pred: np.ndarray, clean: np.ndarray) -> jax.Array:
  mse = jnp.mean(jnp.square(jnp.asarray(pred) - jnp.asarray(clean)), axis=(1, 2))
  return jnp.mean(10.0 * jnp.log10(1.0 / mse), axis=0)


def _false_colour(cube: np.ndarray) -> np.ndarray:
  bands = cube.shape[-1]
  rgb = cube[..., [int(0.8 * bands), bands // 2, int(0.2 * bands)]]
  return np.clip(rgb, 0.0, 1.0)


def _save_panels(path: pathlib.Path, example: dict) -> None:
  import matplotlib.pyplot as plt

  names = ["noisy", "hsdt", "man", "clean"]
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
