"""Timing helpers: compile time apart from step time, ``block_until_ready`` on every result."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import time
from collections.abc import Callable

import jax

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def time_jitted(fn: Callable, *args, iters: int = 10, warmup: int = 2) -> dict:
  """Times ``jax.jit(fn)(*args)``: ``compile_s`` (lower + compile) and per-call seconds after it."""
  jitted = jax.jit(fn)
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  compile_s = time.perf_counter() - start
  for _ in range(warmup):
    jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - start)
  memory = compiled.memory_analysis()
  return {"compile_s": compile_s, "mean_s": statistics.mean(times),
          "stdev_s": statistics.stdev(times) if iters > 1 else 0.0, "min_s": min(times),
          "iters": iters,
          "temp_bytes": getattr(memory, "temp_size_in_bytes", None) if memory else None}


def write_results(name: str, records: list[dict]) -> pathlib.Path:
  """Writes ``benchmarks/results/<name>.json`` with the device and software it ran on."""
  RESULTS_DIR.mkdir(exist_ok=True)
  path = RESULTS_DIR / f"{name}.json"
  device = jax.devices()[0]
  path.write_text(json.dumps({
      "benchmark": name, "device": f"{device.platform}:{device.device_kind}",
      "device_count": jax.device_count(), "jax": jax.__version__,
      "python": platform.python_version(), "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
      "records": records}, indent=2) + "\n")
  return path
