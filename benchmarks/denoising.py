"""Throughput of HSDT-M and MAN-M: one training step and inference at batch 16 of 64x64x31 crops.

    python -m benchmarks.denoising [--batch 16] [--size 64] [--steps 20] [--inference-only]
                                   [--out PATH]

Reports, per model: compile time of the train step and of the inference function (separately),
then steady-state examples per second (median of ``--repeats`` timings of ``--steps`` calls), the
parameter count and the device. Writes JSON to ``benchmarks/results/denoising.json``.
The train step is the one ``jspectral.train.fit`` jits (Adam, MSE on Gaussian sigma=50 noise).
``--inference-only --batch 1 --size 512`` times the paper's runtime column (one whole 512x512x31
ICVL image) without compiling a training step at that size.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jspectral import models, train
from jspectral.data import synthetic
from jspectral.denoising.tasks import DenoisingTask

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "denoising.json"


def _noise(key, clean):
  return clean + (50.0 / 255.0) * jax.random.normal(key, clean.shape, clean.dtype)


def _timed(fn, *args):
  start = time.perf_counter()
  out = fn(*args)
  jax.block_until_ready(out)
  return out, time.perf_counter() - start


def bench_model(name: str, batch: int, size: int, steps: int, repeats: int,
                with_train: bool = True) -> dict:
  """Compile times and throughputs of model ``name`` (registry default configuration)."""
  model = models.create(name)
  clean = np.asarray(jax.vmap(lambda k: synthetic.hyperspectral_cube(k, size, size, 31))(
      jax.random.split(jax.random.key(0), batch)))
  task = DenoisingTask(model, clean, _noise)
  batch_tree = {"clean": jnp.asarray(clean)}
  params, state = jax.jit(task.init)(jax.random.key(1), batch_tree)
  report = {"params": models.param_count({"params": params})}
  if with_train:
    tx = optax.adam(1e-3)
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state,
                          jax.random.key(2))
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx),
                   donate_argnums=0)
    start = time.perf_counter()
    step_exec = step.lower(ts, batch_tree).compile()
    report["train_compile_s"] = time.perf_counter() - start

    def run_train(ts):
      for _ in range(steps):
        ts, metrics, _ = step_exec(ts, batch_tree)
      return ts, metrics

    (ts, _), _ = _timed(run_train, ts)  # warm-up; ``ts`` is donated, so read parameters from it
    train_times = []
    for _ in range(repeats):
      (ts, _), seconds = _timed(run_train, ts)
      train_times.append(seconds)
    params, state = ts.params, ts.model_state
    report.update(train_step_s=statistics.median(train_times) / steps,
                  train_examples_per_s=batch * steps / statistics.median(train_times))

  infer = jax.jit(lambda p, s, x: task.predict(p, s, x))
  start = time.perf_counter()
  infer_exec = infer.lower(params, state, batch_tree["clean"]).compile()
  report["infer_compile_s"] = time.perf_counter() - start

  def run_infer(params, state):
    for _ in range(steps):
      out = infer_exec(params, state, batch_tree["clean"])
    return out

  _timed(run_infer, params, state)
  infer_times = [_timed(run_infer, params, state)[1] for _ in range(repeats)]
  report.update(infer_batch_s=statistics.median(infer_times) / steps,
                infer_examples_per_s=batch * steps / statistics.median(infer_times))
  return report


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--models", default="hsdt,man")
  parser.add_argument("--inference-only", action="store_true",
                      help="skip the training step (e.g. whole 512x512 images)")
  parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
  args = parser.parse_args(argv)
  device = jax.devices()[0]
  report = {"device": f"{device.platform}: {device.device_kind}", "jax": jax.__version__,
            "batch": args.batch, "shape": [args.size, args.size, 31], "steps": args.steps,
            "models": {}}
  for name in args.models.split(","):
    report["models"][name] = bench_model(name, args.batch, args.size, args.steps, args.repeats,
                                           with_train=not args.inference_only)
    print(name, json.dumps(report["models"][name], indent=1))
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(report, indent=2) + "\n")
  return report


if __name__ == "__main__":
  main()
