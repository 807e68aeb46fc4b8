"""Supervised blind-denoising training task for :func:`jspectral.train.fit` (HSDT, MAN, ...).

Clean patches come from the data source; the noise is drawn on device inside the jitted loss from
the step key (``noise(key, clean) -> noisy``), as the official loaders draw fresh noise for every
sample. Loss: mean squared error between the network output and the clean patch (official).
Evaluation follows HSIR's ``hsirun.test``: whole cubes, output clamped to [0, 1], the official
MPSNR / MSSIM / SAM averaged over the images.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jspectral.data import patches
from jspectral.denoising import protocol

NoiseFn = Callable[[jax.Array, jax.Array], jax.Array]
AUGMENTATIONS = ("none", "fixed", "fresh")


def takes_train_flag(model: nn.Module) -> bool:
  """Whether ``model.__call__`` has a ``train`` argument (BatchNorm / stochastic branches).

  Args:
    model: a Flax module.

  Returns:
    ``True`` if ``__call__`` takes ``train``.
  """
  return "train" in inspect.signature(type(model).__call__).parameters


@dataclasses.dataclass
class DenoisingTask:
  """Trains ``model`` to map ``noise(key, clean)`` back to ``clean``.

  Attributes:
    model: a bands-last denoiser ``(N, H, W, C) -> (N, H, W, C)``.
    clean: training patches, an array ``(num, H, W, C)`` float32 in [0, 1] or a random-access
      source of ``{"clean": (H, W, C)}`` examples (e.g. a TFDS builder's ``grain.MapDataset``).
    noise: ``(key, clean batch) -> noisy batch``, pure JAX.
    eval_noisy, eval_clean: evaluation cubes ``(num, H, W, C)`` (e.g. a fixed noisy test set).
    initial: ``(params, state)`` to start from (a previous training stage) instead of ``init``.
    curriculum: ``((first_step, noise), ...)`` from step 0 on, increasing: from each first step
      the training noise is that function (the official Gaussian -> blind -> complex curriculum
      in one run); empty: ``noise`` throughout.
    learning_rate: an ``optax.Schedule`` that replaces the config's named schedule (the official
      per-epoch learning rates of a multi-phase recipe); ``None``: the config's.
    augmentation: QRNN3D's patch augmentation (:func:`jspectral.data.patches.qrnn3d_augment`: a
      uniform dihedral symmetry, the bands reversed with probability 1/2). ``"fixed"``: one draw
      per training patch, the same every epoch, as the official LMDB stores it; ``"fresh"``: a new
      draw every time a patch is read; ``"none"``.
    augmentation_seed: seed of the ``"fixed"`` draws (patch ``i`` uses
      ``np.random.default_rng([seed, i])``).
  """

  model: nn.Module
  clean: np.ndarray | Sequence[dict]
  noise: NoiseFn
  eval_noisy: np.ndarray | None = None
  eval_clean: np.ndarray | None = None
  initial: tuple | None = None
  curriculum: tuple = ()
  learning_rate: optax.Schedule | None = None
  augmentation: str = "none"
  augmentation_seed: int = 0

  def __post_init__(self):
    if self.augmentation not in AUGMENTATIONS:
      raise ValueError(f"augmentation: expected one of {AUGMENTATIONS}, got {self.augmentation!r}")
    if isinstance(self.clean, np.ndarray) and self.clean.ndim != 4:
      raise ValueError(f"clean: expected (num, H, W, bands) patches, got shape {self.clean.shape}")
    if (self.eval_noisy is None) != (self.eval_clean is None):
      raise ValueError("eval_noisy, eval_clean: give both or neither")
    starts = [start for start, _ in self.curriculum]
    if starts and (starts[0] != 0 or starts != sorted(set(starts))):
      raise ValueError(f"curriculum: expected strictly increasing first steps from 0, got {starts}")
    self._train_flag = takes_train_flag(self.model)

  def train_source(self) -> Sequence[dict]:
    """The training examples.

    Returns:
      ``clean`` as ``{"clean": (H, W, C)}`` float32 dicts, or the given source as it is; with
      ``augmentation="fixed"`` a ``grain.MapDataset`` whose patch ``i`` carries its own draw.
    """
    source = self.clean
    if isinstance(source, np.ndarray):
      source = [{"clean": patch} for patch in source.astype(np.float32)]
    if self.augmentation != "fixed":
      return source
    dataset = source if isinstance(source, grain.MapDataset) else grain.MapDataset.source(source)
    size, seed = len(dataset), self.augmentation_seed
    # After repeat() the index runs over epochs: index % size is the patch.
    return dataset.map_with_index(lambda index, example: patches.qrnn3d_augment(
        example, np.random.default_rng([seed, index % size])))

  @property
  def augment(self):
    """The per-read augmentation ``fit`` applies (``augmentation="fresh"``), else ``None``."""
    return patches.qrnn3d_augment if self.augmentation == "fresh" else None

  def init(self, rng, batch):
    """Initial parameters and non-trainable collections (or ``initial`` when given).

    Args:
      rng: PRNG key of the ``params`` stream.
      batch: ``{"clean": (B, H, W, C)}``, for shapes.

    Returns:
      ``(params, state)``, ``state`` the model's other collections (e.g. ``batch_stats``).
    """
    if self.initial is not None:
      return self.initial
    variables = dict(self.model.init({"params": rng}, batch["clean"]))
    params = variables.pop("params")
    return params, variables

  def predict(self, params, state, x, train: bool = False, rng=None):
    """Network output (not clamped); with ``train`` also returns the updated state.

    Args:
      params: trainable parameters.
      state: non-trainable collections.
      x: noisy cubes ``(N, H, W, C)``.
      train: training mode (BatchNorm updates, HSDT's random GSSA branch from the ``"gssa"`` key).
      rng: key of the ``"gssa"`` stream in training mode.

    Returns:
      The output ``(N, H, W, C)``; with ``train``, ``(output, new_state)``.
    """
    variables = {"params": params, **state}
    if not self._train_flag:
      out = self.model.apply(variables, x)
      return (out, state) if train else out
    if not train:
      return self.model.apply(variables, x, train=False)
    out, new_state = self.model.apply(variables, x, train=True, rngs={"gssa": rng},
                                      mutable=list(state))
    return out, dict(new_state)

  def schedule(self, config):
    """The learning-rate schedule for :func:`jspectral.train.fit` (``None``: the config's).

    Args:
      config: the training config (unused; the recipe's schedule is in ``learning_rate``).

    Returns:
      ``learning_rate``.
    """
    del config
    return self.learning_rate

  def training_noise(self, key: jax.Array, clean: jax.Array, step) -> jax.Array:
    """The noisy batch of ``step``: ``noise``, or the curriculum's noise of that step.

    Args:
      key: noise key.
      clean: clean batch ``(B, H, W, C)``.
      step: int32 scalar, the global step.

    Returns:
      The noisy batch ``(B, H, W, C)``.
    """
    if not self.curriculum:
      return self.noise(key, clean)
    starts = jnp.asarray([start for start, _ in self.curriculum])
    index = jnp.sum(step >= starts) - 1
    return jax.lax.switch(index, [fn for _, fn in self.curriculum], key, clean)

  def loss(self, params, state, batch, rng, step=0):
    """Mean squared error between the denoised noisy batch and the clean batch (official).

    The noise is drawn on device from the step key, fresh for every sample.

    Args:
      params: trainable parameters.
      state: non-trainable collections.
      batch: ``{"clean": (B, H, W, C)}``.
      rng: step key, split into the noise key and the model key.
      step: int32 scalar, the global step (picks the curriculum's noise).

    Returns:
      ``(mse, {"state": new_state, "noisy_mse": MSE of the noisy input})``.
    """
    k_noise, k_model = jax.random.split(rng)
    clean = batch["clean"]
    noisy = self.training_noise(k_noise, clean, step)
    out, new_state = self.predict(params, state, noisy, train=True, rng=k_model)
    mse = jnp.mean(jnp.square(out - clean))
    return mse, {"state": new_state, "noisy_mse": jnp.mean(jnp.square(noisy - clean))}

  @functools.cached_property
  def _eval_fn(self):
    return jax.jit(lambda params, state, x: jnp.clip(self.predict(params, state, x), 0.0, 1.0))

  def denoise(self, params, state, noisy: np.ndarray) -> np.ndarray:
    """Clamped outputs for ``noisy``, one cube per forward pass.

    Args:
      params: trainable parameters.
      state: non-trainable collections.
      noisy: noisy cubes ``(num, H, W, C)``.

    Returns:
      Denoised cubes ``(num, H, W, C)`` clamped to [0, 1], NumPy.
    """
    return np.stack([np.asarray(self._eval_fn(params, state, cube[None]))[0] for cube in noisy])

  def evaluate(self, params, state) -> dict[str, float]:
    """Official scores of the denoised evaluation cubes (HSIR ``hsirun.test``).

    Args:
      params: trainable parameters.
      state: non-trainable collections.

    Returns:
      :func:`score`'s ``{"psnr", "ssim", "sam"}``, or ``{}`` without evaluation cubes.
    """
    if self.eval_noisy is None:
      return {}
    return score(self.eval_clean, self.denoise(params, state, self.eval_noisy))


def score(clean: np.ndarray, pred: np.ndarray) -> dict[str, float]:
  """Official MPSNR / MSSIM / SAM of ``pred`` against ``clean``, averaged over the cubes.

  Args:
    clean: clean cubes ``(num, H, W, C)``.
    pred: denoised cubes, same shape.

  Returns:
    ``{"psnr": dB, "ssim": ..., "sam": radians}`` Python floats (see
    :mod:`jspectral.denoising.protocol` for the official conventions).
  """
  clean, pred = jnp.asarray(clean), jnp.asarray(pred)
  return {"psnr": float(jnp.mean(protocol.mpsnr(pred, clean))),
          "ssim": float(jnp.mean(protocol.mssim(pred, clean))),
          "sam": float(jnp.mean(protocol.sam(pred, clean)))}


def phase_schedule(phases, steps_per_epoch: int) -> optax.Schedule:
  """The official per-epoch learning rates of a multi-phase recipe as one schedule of the step.

  Each phase holds its rate, after a linear warm-up from 0 over its first epoch where flagged (the
  original HSDT/MAN ``train.py``: the rate is set at the start of each epoch; warm-up
  ``lr * k / len(loader)``).

  Args:
    phases: ``(first_epoch, end_epoch, learning_rate, warmup, noise_kind)`` per phase, in order
      from epoch 0.
    steps_per_epoch: optimizer steps per epoch.

  Returns:
    An ``optax.Schedule`` ``step -> learning rate``.
  """
  pieces, boundaries = [], []
  for start, _, lr, warmup, _ in phases:
    if start:
      boundaries.append(start * steps_per_epoch)
    if warmup:
      pieces.append(optax.join_schedules(
          [optax.linear_schedule(0.0, lr, steps_per_epoch), optax.constant_schedule(lr)],
          [steps_per_epoch]))
    else:
      pieces.append(optax.constant_schedule(lr))
  return optax.join_schedules(pieces, boundaries)
