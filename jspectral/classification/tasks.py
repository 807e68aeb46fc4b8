"""Tasks for :func:`jspectral.train.fit` of the classification family (LoLA-SpecViT).

Zhang et al., "LoLA-SpecViT: Local Attention SwiGLU Vision Transformer with LoRA for Hyperspectral
Imaging", arXiv 2506.17759; official code github.com/FadiZidiDev/LoLA-SpecViT.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import optax

from jspectral.classification import lola_specvit as lola


@dataclasses.dataclass
class LoLATask:
  """Cross-entropy with label smoothing; BatchNorm statistics update; LoRA-only optimisation."""

  module: lola.LoLASpecViT
  train_patches: np.ndarray
  train_labels: np.ndarray
  val_patches: np.ndarray
  val_labels: np.ndarray
  label_smoothing: float = 0.1
  official_schedule: bool = False
  best: dict = dataclasses.field(default_factory=dict)

  def train_source(self):
    return [{"x": x, "y": y} for x, y in zip(self.train_patches, self.train_labels, strict=True)]

  def init(self, rng, batch):
    variables = self.module.init({"params": rng, "dropout": rng}, batch["x"])
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    logits, updates = self.module.apply({"params": params, **state}, batch["x"], train=True,
                                        rngs={"dropout": rng}, mutable=["batch_stats"])
    targets = optax.smooth_labels(jax.nn.one_hot(batch["y"], logits.shape[-1]),
                                  self.label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean(), {"state": updates}

  def schedule(self, config):
    if not self.official_schedule:
      return None
    return lola.official_lr_schedule(config.optimizer.learning_rate,
                                     max(len(self.train_labels) // config.batch_size, 1))

  @functools.cached_property
  def _classify(self):
    return jax.jit(lambda p, s, x: self.module.apply({"params": p, **s}, x).argmax(-1))

  def predict(self, params, state, x, chunk: int = 128):
    """Class indices for ``x``, in fixed-size chunks (the last one padded): one compilation."""
    padded = np.concatenate([x, np.zeros((-len(x) % chunk,) + x.shape[1:], x.dtype)])
    return np.concatenate([self._classify(params, state, padded[i:i + chunk])
                           for i in range(0, len(padded), chunk)])[:len(x)]

  def evaluate(self, params, state):
    """Validation OA; remembers the best-on-validation weights (model selection, never test)."""
    oa = float(np.mean(self.predict(params, state, self.val_patches) == self.val_labels))
    if oa >= self.best.get("val_oa", -1.0):
      self.best.update(val_oa=oa, params=params, state=state)
    return {"val_oa": oa}
