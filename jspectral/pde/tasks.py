"""Tasks for :func:`jspectral.train.fit` of the PDE family: self-supervised operator learning.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods", ICLR 2024 (arXiv 2312.05225); official
code github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/train.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.pde import problems
from jspectral.pde.nsm import FNOPINN, loss_terms, predict
from jspectral.pde.protocol import relative_l2


@dataclasses.dataclass
class OperatorTask:
  """A :func:`jspectral.train.fit` task: self-supervised operator learning on fresh prior samples.

  Every step draws ``batch_size`` new ``phi`` from the problem's GP prior (key = the step's rng, as
  the official "sample" stream); per-sample losses are averaged over the batch. The data source
  only carries indices. ``evaluate`` reports the relative L2 error (%) against reference solutions
  ``u_test`` on the uniform grid ``u_test.shape[1:-1]``.

  Attributes:
    model: an :class:`~jspectral.pde.nsm.NSM`, :class:`~jspectral.pde.nsm.SNO` or
      :class:`~jspectral.pde.nsm.FNOPINN` whose ``problem`` field names the PDE.
    phi_test: test parameter functions ``(N, *phi_modes, 1)`` (coefficients).
    u_test: reference solutions ``(N, *grid, 1)`` on a uniform grid with both ends included.
    weighted: exact Parseval weighting of :func:`~jspectral.pde.nsm.spectral_loss` (official:
      unweighted sum).
    pool: length of the index-only training source.
  """

  model: nn.Module
  phi_test: np.ndarray
  u_test: np.ndarray
  weighted: bool = False
  pool: int = 4096

  def train_source(self):
    """The training "examples": indices only (each step samples its own ``phi``).

    Returns:
      A list of ``pool`` dicts ``{"index": int32 scalar}``.
    """
    return [{"index": np.int32(i)} for i in range(self.pool)]

  def init(self, rng, batch):
    """Initial parameters from one prior sample.

    Args:
      rng: PRNG key (for the sample and the parameters).
      batch: unused (shapes come from the problem).

    Returns:
      ``(params, {})``.
    """
    phi = problems.sample(self.model.problem, rng)
    args = (phi, (2,) * self.model.problem.ndim) if isinstance(self.model, FNOPINN) else (phi,)
    return self.model.init(rng, *args)["params"], {}

  def loss(self, params, state, batch, rng):
    """Mean over a batch of fresh prior samples of the model's loss terms.

    Args:
      params: trainable parameters.
      state: unused (``{}``).
      batch: ``{"index": (B,)}``; only its size is used.
      rng: key of the ``phi`` draw.

    Returns:
      ``(loss, terms)``: the scalar sum of the batch-mean terms and the terms by name.
    """
    phi = self.model.problem.draw(rng, (batch["index"].shape[0],))
    terms = jax.vmap(lambda p: loss_terms(self.model, params, p, self.weighted))(phi)
    terms = {k: jnp.mean(v) for k, v in terms.items()}
    return sum(terms.values()), terms

  def evaluate(self, params, state):
    """The relative L2 error on the test set.

    Args:
      params: trainable parameters.
      state: unused.

    Returns:
      ``{"rel_l2_percent": ...}``, the mean relative L2 error in percent.
    """
    errors = self.errors(params)
    return {"rel_l2_percent": float(100 * np.mean(errors))}

  @functools.cached_property
  def _predict_test(self):
    """``(params, phi (N, ...)) -> u (N, *u_test grid, 1)``, compiled once; the parameters are an
    argument, never a constant XLA would fold while compiling."""
    sizes = tuple(self.u_test.shape[1:-1])
    return jax.jit(jax.vmap(lambda params, p: predict(self.model, params, p, sizes),
                            in_axes=(None, 0)))

  def errors(self, params) -> np.ndarray:
    """Relative L2 error of each test solution on its uniform grid.

    Args:
      params: trainable parameters.

    Returns:
      NumPy array ``(N,)`` of relative L2 errors (fractions, not percent).
    """
    pred = self._predict_test(params, self.phi_test)
    return np.asarray(relative_l2(pred, jnp.asarray(self.u_test, pred.dtype)))

  def inference_seconds(self, params) -> float:
    """Wall time to predict the whole test set on its grid (compiled, median of 3).

    Args:
      params: trainable parameters.

    Returns:
      Seconds, a Python float.
    """
    self._predict_test(params, self.phi_test).block_until_ready()
    times = []
    for _ in range(3):
      start = time.perf_counter()
      self._predict_test(params, self.phi_test).block_until_ready()
      times.append(time.perf_counter() - start)
    return float(np.median(times))
