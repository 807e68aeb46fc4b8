"""Engine example: a residual conv net learns to denoise synthetic hyperspectral cubes.

Shows the whole path a system takes: a registered model, a ``jspectral.train`` task, ``fit`` with
checkpoints and resume, metrics from ``jspectral.metrics`` and a report with figures.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

from experiments.common import check_source
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import metrics, models, train
from jspectral.data import synthetic

matplotlib.use("Agg")


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.preset = preset
  config.data = ml_collections.ConfigDict(dict(source="synthetic"))  # both presets: no dataset
  config.bands = 31
  config.patch = {"smoke": 32, "paper": 64}[preset]
  config.num_train = {"smoke": 64, "paper": 4096}[preset]
  config.num_test = {"smoke": 4, "paper": 64}[preset]
  config.sigma = 30.0  # on the 0-255 scale
  config.model = ml_collections.ConfigDict({"features": 32, "depth": 4})
  config.train = train.default_config()
  config.train.update(total_steps={"smoke": 300, "paper": 20000}[preset], batch_size=8,
                      log_every=10, checkpoint_every=100)
  config.train.optimizer.learning_rate = 1e-3
  return config


def make_cubes(key, count: int, patch: int, bands: int) -> np.ndarray:
  keys = jax.random.split(key, count)
  return np.asarray(jax.vmap(lambda k: synthetic.hyperspectral_cube(k, patch, patch, bands))(keys))


@dataclasses.dataclass
class DenoiseTask:
  """Additive white Gaussian noise of ``sigma`` (0-255 scale), MSE loss on the clean cube."""

  module: object
  cubes: np.ndarray
  test_cubes: np.ndarray
  sigma: float

  def train_source(self):
    return [{"clean": cube} for cube in self.cubes]

  def init(self, rng, batch):
    return self.module.init(rng, batch["clean"])["params"], {}

  def noisy(self, rng, clean):
    return clean + (self.sigma / 255.0) * jax.random.normal(rng, clean.shape, clean.dtype)

  def loss(self, params, state, batch, rng):
    clean = batch["clean"]
    denoised = self.module.apply({"params": params}, self.noisy(rng, clean))
    return jnp.mean(jnp.square(denoised - clean)), {}

  def evaluate(self, params, state):
    noisy = self.noisy(jax.random.PRNGKey(1234), jnp.asarray(self.test_cubes))
    denoised = self.module.apply({"params": params}, noisy)
    return {"psnr_noisy": float(metrics.psnr(noisy, self.test_cubes).mean()),
            "psnr": float(metrics.psnr(denoised, self.test_cubes).mean()),
            "ssim": float(metrics.ssim(denoised, self.test_cubes).mean())}


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  check_source(config, "synthetic")
  key_train, key_test = jax.random.split(jax.random.PRNGKey(config.train.seed))
  task = DenoiseTask(
      module=models.create("residual_convnet", **config.model),
      cubes=make_cubes(key_train, config.num_train, config.patch, config.bands),
      test_cubes=make_cubes(key_test, config.num_test, config.patch, config.bands),
      sigma=config.sigma)
  result = train.fit(task, config.train, workdir / "residual_convnet")
  evals = result.evals
  save_loss_curve(workdir / "loss.png", {"residual_convnet": result.history})
  _save_band_panel(workdir / "denoising.png", task, result.params)
  table = Table(f"Gaussian noise sigma={config.sigma:g}, {config.num_test} test cubes "
                f"({config.preset})", ["input", "PSNR (dB)", "SSIM"],
                [["noisy", evals["eval/psnr_noisy"], float("nan")],
                 ["residual_convnet", evals["eval/psnr"], evals["eval/ssim"]]])
  return Report(
      title="Engine example: residual conv denoiser on synthetic cubes",
      tables=[table], figures=["loss.png", "denoising.png"],
      checks={"the engine trains a denoiser: denoised PSNR > noisy PSNR + 1 dB":
              evals["eval/psnr"] > evals["eval/psnr_noisy"] + 1.0},
      notes=[f"{result.step} steps, batch {config.train.batch_size}, "
             f"{models.param_count({'params': result.params}):,} parameters."],
      headline=Headline("the engine trains a denoiser: PSNR above the noisy input + 1 dB",
                        f"{evals['eval/psnr']:.2f} vs {evals['eval/psnr_noisy']:.2f} dB noisy"))


def _save_band_panel(path, task: DenoiseTask, params) -> None:
  import matplotlib.pyplot as plt

  clean = jnp.asarray(task.test_cubes[:1])
  noisy = task.noisy(jax.random.PRNGKey(1234), clean)
  denoised = task.module.apply({"params": params}, noisy)
  band = clean.shape[-1] // 2
  fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
  for ax, image, title in zip(axes, (noisy, denoised, clean), ("noisy", "denoised", "clean"),
                              strict=True):
    ax.imshow(np.asarray(image[0, ..., band]), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{title} (band {band})")
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
