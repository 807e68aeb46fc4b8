"""One training step of each restoration model at its paper preset's batch and patch size.

    python -m benchmarks.paper_steps [--models hsdt,man,essaformer,mixup_mtl] [--iters 2]

Shapes of the paper presets (experiments/configs):
* HSDT-M and MAN-M (`denoise_icvl`): batch 16 of 64x64x31 ICVL patches, sigma 50, Adam + MSE,
  the ``DenoisingTask`` step of ``benchmarks.denoising``;
* ESSAformer (`sr_essaformer`, Chikusei x4, d = 256): batch 32, 16x16x128 LR -> 64x64x128 HR,
  Adam + L1;
* Spectral-Mixup (`sr_mixup_mtl`, CAVE x4): batch 8, the labeled HSI update (16x16x31 ->
  64x64x31) and the RGB update (128x128x8 -> 512x512x8), Adam + L1.

Compile time apart from the step time (``benchmarks.harness.time_jitted``,
``block_until_ready``); writes ``benchmarks/results/paper_steps.json``. Never run in tests.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import optax

from benchmarks import denoising
from benchmarks.harness import time_jitted, write_results
from jspectral import models


def _adam_step(loss_fn):
  tx = optax.adam(1e-4)

  def step(params, opt_state, *batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return tx, step


def _record(name, workload, loss_fn, params, batch, iters):
  """The step's times, or the allocation error when the step does not fit in memory."""
  tx, step = _adam_step(loss_fn)
  try:
    record = time_jitted(step, params, tx.init(params), *batch, iters=iters, warmup=1)
  except jax.errors.JaxRuntimeError as error:
    if "RESOURCE_EXHAUSTED" not in str(error):
      raise
    record = {"error": str(error).splitlines()[0]}
  record.update(model=name, workload=workload)
  print(json.dumps(record), flush=True)
  return record


def denoiser(name: str, iters: int) -> list[dict]:
  """The engine's step of ``DenoisingTask`` (``benchmarks.denoising``) at the ICVL shapes."""
  record = denoising.bench_model(name, batch=16, size=64, steps=iters, repeats=1)
  record.update(model=name, workload="batch 16 of 64x64x31, sigma 50, Adam + MSE")
  print(json.dumps(record), flush=True)
  return [record]


def essaformer(iters: int) -> list[dict]:
  module = models.create("essaformer")
  lr = jax.random.uniform(jax.random.key(0), (32, 16, 16, 128))
  hr = jax.random.uniform(jax.random.key(1), (32, 64, 64, 128))
  params = jax.jit(module.init)(jax.random.key(2), lr[:1])["params"]
  loss = lambda p, x, y: jnp.mean(jnp.abs(module.apply({"params": p}, x) - y))
  return [_record("essaformer", "batch 32, 16x16x128 -> 64x64x128, Adam + L1", loss, params,
                  (lr, hr), iters)]


def mixup_mtl(iters: int) -> list[dict]:
  module = models.create("mixup_mtl")
  params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 16, 16, 31)),
                                jnp.zeros((1, 64, 64, 31)))["params"]
  records = []
  for modality, (h, c) in (("spectral", (16, 31)), ("rgb", (128, 8))):
    x = jax.random.uniform(jax.random.key(1), (8, h, h, c))
    y = jax.random.uniform(jax.random.key(2), (8, 4 * h, 4 * h, c))
    lms = jax.image.resize(x, y.shape, "bicubic")
    loss = lambda p, x, lms, y, m=modality: jnp.mean(jnp.abs(module.apply({"params": p}, x, lms,
                                                                          m) - y))
    records.append(_record("mixup_mtl", f"{modality} update, batch 8, {h}x{h}x{c} -> "
                           f"{4 * h}x{4 * h}x{c}, Adam + L1", loss, params, (x, lms, y), iters))
  return records


def main() -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="hsdt,man,essaformer,mixup_mtl")
  parser.add_argument("--iters", type=int, default=2)
  args = parser.parse_args()
  rows = []
  for name in args.models.split(","):
    if name in ("hsdt", "man"):
      rows += denoiser(name, args.iters)
    elif name == "essaformer":
      rows += essaformer(args.iters)
    elif name == "mixup_mtl":
      rows += mixup_mtl(args.iters)
    else:
      raise SystemExit(f"--models: unknown model {name!r}")
  print(write_results("paper_steps", rows))
  return rows


if __name__ == "__main__":
  main()
