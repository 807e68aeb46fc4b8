"""Throughput of the pansharpening indices and methods (jit), and rho-PNN time per band.

``python -m benchmarks.pansharpening`` writes ``benchmarks/results/pansharpening.json``.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from jspectral.data import wald
from jspectral.metrics import pansharpening as indices
from jspectral.pansharpening import classical, rho_pnn

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "pansharpening.json"


def _time(fn, *args, repeats: int = 5) -> dict[str, float]:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return {"first_call_s": compile_s, "steady_s": (time.perf_counter() - start) / repeats}


def main(lr_size: int = 32, bands: int = 32) -> dict:
  scene = wald.synthetic_rr_scene(jax.random.key(0), lr_size, bands)
  gt, pan, hs_lr, hs_up = scene["gt"], scene["pan"], scene["hs_lr"], scene["hs_up"]
  out = {"device": str(jax.devices()[0]), "scene": {"lr": lr_size, "ratio": 6, "bands": bands}}
  out["indices"] = {
      "ERGAS": _time(indices.ergas, hs_up, gt, 6), "SAM": _time(indices.sam, hs_up, gt),
      "Q2n": _time(indices.q2n, hs_up, gt),
      "D_lambda": _time(indices.d_lambda_khan, hs_up, hs_lr, 6),
      "D_sR": _time(indices.d_sr, hs_up, pan), "D_rho": _time(indices.d_rho, hs_up, pan)}
  # The toolbox defines TV's PAN weights for 8 and 159 bands only; the synthetic PAN is a band mean.
  extra = {"TV": {"weights": np.full(bands, 1.0 / bands)}}
  out["methods"] = {name: _time(lambda m=method, n=name: m(hs_lr, pan, 6, hs_up=hs_up,
                                                           **extra.get(n, {})))
                    for name, method in classical.METHODS.items()}
  # 96-px pre-training tiles: the official 90 does not divide the 192-px synthetic scene.
  config = rho_pnn.RhoPNNConfig(pretrain_epochs=1, pretrain_tile=96, eta=0.5, ns=3)
  start = time.perf_counter()
  result = rho_pnn.fuse(np.asarray(hs_lr), np.asarray(hs_up), np.asarray(pan[..., 0]), config)
  seconds = time.perf_counter() - start
  out["rho_pnn"] = {"seconds": seconds, "seconds_per_band": seconds / bands,
                    "iterations": int(result.iterations.sum())}
  RESULTS.parent.mkdir(parents=True, exist_ok=True)
  RESULTS.write_text(json.dumps(out, indent=2))
  return out


if __name__ == "__main__":
  print(json.dumps(main(), indent=2))
