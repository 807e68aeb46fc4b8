"""Tasks for :func:`jspectral.train.fit` of the classification family (LoLA-SpecViT).

Zidi et al., "LoLA-SpecViT: Local Attention SwiGLU Vision Transformer with LoRA for Hyperspectral
Imaging", arXiv 2506.17759; official code FadiZidiDz/LoLA-SpecViT-Model (``enhanced_training.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import numpy as np
import optax

from jspectral.classification import lola_specvit as lola


@dataclasses.dataclass
class LoLATask:
  """Supervised LoLA-SpecViT training for :func:`jspectral.train.fit`.

  Cross-entropy with label smoothing; BatchNorm statistics update in training; LoRA-only
  optimisation (only LoRA A/B/gate/residual train, through the config's optax mask).
  ``evaluate`` scores the selection split (``val_oa``); with ``config.select.metric="val_oa"``
  the engine keeps the best weights in the checkpointed state and, with ``select.patience``,
  stops early. The selection split is a validation split carved from the training pixels, or
  the test pixels for the official protocol (``classify_lola``'s ``select_on="test"``); the
  official ``>`` keeps the earlier of equal scores (``select.ties="earlier"``).

  Attributes:
    module: the :class:`~jspectral.classification.lola_specvit.LoLASpecViT` to train.
    train_patches: training patches ``(N, H, W, C)``.
    train_labels: integer training labels ``(N,)``.
    val_patches: selection patches ``(M, H, W, C)``.
    val_labels: integer selection labels ``(M,)``.
    label_smoothing: optax label-smoothing factor (official 0.1).
    official_schedule: use :func:`~jspectral.classification.lola_specvit.official_lr_schedule`
      instead of the config's named schedule.
  """

  module: lola.LoLASpecViT
  train_patches: np.ndarray
  train_labels: np.ndarray
  val_patches: np.ndarray
  val_labels: np.ndarray
  label_smoothing: float = 0.1
  official_schedule: bool = False

  def train_source(self):
    """The training examples.

    Returns:
      A list of ``{"x": (H, W, C), "y": ()}`` dicts, one per training patch.
    """
    return [{"x": x, "y": y} for x, y in zip(self.train_patches, self.train_labels, strict=True)]

  def init(self, rng, batch):
    """Initial parameters and BatchNorm statistics.

    Args:
      rng: PRNG key (used for both ``params`` and ``dropout``).
      batch: a batch with ``"x"`` of shape ``(B, H, W, C)``.

    Returns:
      ``(params, {"batch_stats": ...})``.
    """
    variables = self.module.init({"params": rng, "dropout": rng}, batch["x"])
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    """Label-smoothed cross-entropy of one batch in training mode.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      batch: ``{"x": (B, H, W, C), "y": (B,)}``.
      rng: dropout key.

    Returns:
      ``(loss, {"state": updated batch_stats})``, ``loss`` a scalar.
    """
    logits, updates = self.module.apply({"params": params, **state}, batch["x"], train=True,
                                        rngs={"dropout": rng}, mutable=["batch_stats"])
    targets = optax.smooth_labels(jax.nn.one_hot(batch["y"], logits.shape[-1]),
                                  self.label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean(), {"state": updates}

  def schedule(self, config):
    """The official learning-rate schedule when ``official_schedule`` is set.

    The official loader's batches per epoch are ``ceil(N / micro-batch)``, the micro-batch being
    ``batch_size / grad_accum_steps`` (official 64 / 2).

    Args:
      config: the training config (``optimizer.learning_rate``, ``batch_size``,
        ``grad_accum_steps``).

    Returns:
      An optax schedule, or ``None`` to use the config's named schedule.
    """
    if not self.official_schedule:
      return None
    accumulation = config.get("grad_accum_steps", 1)
    micro_batches = math.ceil(len(self.train_labels) / (config.batch_size // accumulation))
    return lola.official_lr_schedule(config.optimizer.learning_rate,
                                     max(micro_batches, accumulation), accumulation=accumulation)

  @functools.cached_property
  def _classify(self):
    return jax.jit(lambda p, s, x: self.module.apply({"params": p, **s}, x).argmax(-1))

  def predict(self, params, state, x, chunk: int = 128):
    """Class indices for ``x``, in fixed-size chunks (the last one padded): one compilation per
    chunk size. Fewer than ``chunk`` patches (a small validation split) run as one call of their
    own size rather than padded to ``chunk``.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      x: patches ``(M, H, W, C)``.
      chunk: patches per compiled call.

    Returns:
      Predicted class indices, NumPy array ``(M,)``.
    """
    chunk = max(min(chunk, len(x)), 1)
    padded = np.concatenate([x, np.zeros((-len(x) % chunk,) + x.shape[1:], x.dtype)])
    return np.concatenate([self._classify(params, state, padded[i:i + chunk])
                           for i in range(0, len(padded), chunk)])[:len(x)]

  def evaluate(self, params, state):
    """Validation OA, the model-selection score.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.

    Returns:
      ``{"val_oa": ...}``, the overall accuracy on the validation split as a fraction.
    """
    return {"val_oa": float(np.mean(self.predict(params, state, self.val_patches)
                                    == self.val_labels))}
