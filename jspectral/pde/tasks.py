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
from jspectral.pde.protocol import field_metrics


@dataclasses.dataclass
class OperatorTask:
  """A :func:`jspectral.train.fit` task: self-supervised operator learning on fresh prior samples.

  Every step draws ``batch_size`` new ``phi`` from the problem's GP prior (key = the step's rng, as
  the official "sample" stream); per-sample losses are averaged over the batch. The data source
  only carries indices. ``evaluate`` reports the official metrics against reference solutions
  ``u_test`` on the uniform grid ``u_test.shape[1:-1]``, predicting ``chunk`` test samples at a
  time (the official ``--vmap n`` chunked map; never the whole test set in one ``vmap``).

  Attributes:
    model: an :class:`~jspectral.pde.nsm.NSM`, :class:`~jspectral.pde.nsm.SNO` or
      :class:`~jspectral.pde.nsm.FNOPINN` whose ``problem`` field names the PDE.
    phi_test: test parameter functions ``(N, *phi_modes, 1)`` (coefficients).
    u_test: reference solutions ``(N, *grid, 1)`` on a uniform grid with both ends included.
    weighted: exact Parseval weighting of :func:`~jspectral.pde.nsm.spectral_loss` (official:
      unweighted sum).
    pool: length of the index-only training source.
    chunk: test samples predicted at once (memory: FNO on a 64 x 257 x 257 grid needs 1-2).
  """

  model: nn.Module
  phi_test: np.ndarray
  u_test: np.ndarray
  weighted: bool = False
  pool: int = 4096
  chunk: int = 16

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
      batch: ``{"index": (B,)}``, only its size is used; or ``{"phi": (B, *phi_modes, 1)}``, a
        given batch of parameter functions (no draw: parity with a fixed official batch).
      rng: key of the ``phi`` draw.

    Returns:
      ``(loss, terms)``: the scalar sum of the batch-mean terms and the terms by name.
    """
    if "phi" in batch:
      phi = batch["phi"]
    else:
      phi = self.model.problem.draw(rng, (batch["index"].shape[0],))
    terms = jax.vmap(lambda p: loss_terms(self.model, params, p, self.weighted))(phi)
    terms = {k: jnp.mean(v) for k, v in terms.items()}
    return sum(terms.values()), terms

  def evaluate(self, params, state):
    """The official test metrics (means over the test set).

    Args:
      params: trainable parameters.
      state: unused.

    Returns:
      ``{"rel_l2_percent", "erra", "residual"}``: the mean relative L2 error in percent, the mean
      absolute error and the mean absolute finite-difference residual.
    """
    m = self.metrics(params)
    return {"rel_l2_percent": float(100 * np.mean(m["errr"])), "erra": float(np.mean(m["erra"])),
            "residual": float(np.mean(m["residual"]))}

  @functools.cached_property
  def _chunk_metrics(self):
    """``(params, phi (chunk, ...), u (chunk, ...)) -> metrics (chunk,)``, compiled once; the
    parameters are an argument, never a constant XLA would fold while compiling."""
    sizes = tuple(self.u_test.shape[1:-1])
    problem = self.model.problem

    def one(params, phi, u):
      pred = predict(self.model, params, phi, sizes)
      return field_metrics(problem, phi, u.astype(pred.dtype), pred)

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))

  @functools.cached_property
  def _chunk_predict(self):
    sizes = tuple(self.u_test.shape[1:-1])
    return jax.jit(jax.vmap(lambda params, p: predict(self.model, params, p, sizes),
                            in_axes=(None, 0)))

  def _chunks(self):
    """``(start, stop, padded indices)`` of every chunk of ``chunk`` test samples; the last chunk
    repeats its final sample so that every call has one shape (one compile)."""
    n, size = len(self.phi_test), max(1, min(self.chunk, len(self.phi_test)))
    for start in range(0, n, size):
      stop = min(start + size, n)
      yield start, stop, np.minimum(np.arange(start, start + size), n - 1)

  def metrics(self, params) -> dict[str, np.ndarray]:
    """Per-sample official metrics, predicted ``chunk`` test samples at a time.

    Args:
      params: trainable parameters.

    Returns:
      NumPy arrays ``(N,)`` by name: ``errr`` (fractions), ``erra``, ``residual``.
    """
    parts = []
    for start, stop, idx in self._chunks():
      out = self._chunk_metrics(params, self.phi_test[idx], self.u_test[idx])
      parts.append({k: np.asarray(v)[:stop - start] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def errors(self, params) -> np.ndarray:
    """Relative L2 error of each test solution on its uniform grid.

    Args:
      params: trainable parameters.

    Returns:
      NumPy array ``(N,)`` of relative L2 errors (fractions, not percent).
    """
    return self.metrics(params)["errr"]

  def predict_test(self, params, limit: int | None = None) -> np.ndarray:
    """Predictions of the test samples on the test grid, ``chunk`` samples at a time.

    Args:
      params: trainable parameters.
      limit: predict only the first ``limit`` samples (all when ``None``).

    Returns:
      NumPy array ``(min(N, limit), *grid, 1)``.
    """
    n = len(self.phi_test) if limit is None else min(int(limit), len(self.phi_test))
    parts = [np.asarray(self._chunk_predict(params, self.phi_test[idx]))[:stop - start]
             for start, stop, idx in self._chunks() if start < n]
    return np.concatenate(parts)[:n]

  def inference_seconds(self, params) -> float:
    """Wall time to predict the whole test set on its grid in chunks (compiled, median of 3).

    Args:
      params: trainable parameters.

    Returns:
      Seconds, a Python float.
    """

    def run():
      for _, _, idx in self._chunks():
        self._chunk_predict(params, self.phi_test[idx]).block_until_ready()

    run()
    times = []
    for _ in range(3):
      start = time.perf_counter()
      run()
      times.append(time.perf_counter() - start)
    return float(np.median(times))
