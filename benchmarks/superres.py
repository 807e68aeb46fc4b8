"""ESSAformer's efficiency claim: ESSA attention (linear in tokens) vs softmax (quadratic).

For growing LR images, times one jitted training step (forward + backward + Adam) of ESSAformer
with ``attention="essa"`` and with ``attention="softmax"`` (same network otherwise), reports the
compile time separately, and the step's temporary device memory from XLA's memory analysis
(per compiled step, unlike the allocator's process-wide peak), through ``benchmarks.harness``.
Writes ``benchmarks/results/superres.json``. Run ``python -m benchmarks.superres`` (never in tests).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import optax

from benchmarks.harness import time_jitted, write_results
from jspectral.superres.essaformer import ESSAformer


def time_step(attention: str, lr_size: int, *, bands: int = 31, dim: int = 32, scale: int = 4,
              batch: int = 1, repeats: int = 3) -> dict:
  """Compile and step times (s) and temp memory of one training step at LR size ``lr_size``."""
  model = ESSAformer(bands=bands, dim=dim, scale=scale, attention=attention, drop_rate=0.0)
  lr = jax.random.uniform(jax.random.key(0), (batch, lr_size, lr_size, bands))
  hr = jax.random.uniform(jax.random.key(1), (batch, scale * lr_size, scale * lr_size, bands))
  params = jax.jit(model.init)(jax.random.key(2), lr)["params"]
  tx = optax.adam(1e-4)

  def step(params, opt_state, lr, hr):
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, lr) - hr)))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  record = time_jitted(step, params, tx.init(params), lr, hr, iters=repeats, warmup=1)
  record.update(attention=attention, lr_size=lr_size, hr_tokens=(scale * lr_size) ** 2)
  return record


def main(sizes: tuple[int, ...] = (4, 8, 16, 24)) -> list[dict]:
  """Times both attentions at every LR size and writes ``benchmarks/results/superres.json``.

  A size that exhausts device memory is recorded with its error instead of a time (the softmax
  attention's N×N matrices are what the paper's efficiency claim is about).
  """
  rows = []
  for size in sizes:
    for attention in ("essa", "softmax"):
      try:
        rows.append(time_step(attention, size))
      except jax.errors.JaxRuntimeError as error:
        if "RESOURCE_EXHAUSTED" not in str(error):
          raise
        rows.append({"attention": attention, "lr_size": size, "error": "out of device memory"})
      print(json.dumps(rows[-1]))
  print(write_results("superres", rows))
  return rows


if __name__ == "__main__":
  main()
