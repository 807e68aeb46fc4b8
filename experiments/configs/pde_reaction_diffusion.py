"""Neural Spectral Methods on reaction-diffusion ``u_t - nu u_xx = 5 u (1 - u)``, periodic in x.

Paper: Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225), reaction-diffusion experiments;
official recipe (ASK-Berkeley/Neural-Spectral-Methods ``run/reaction.sh``): nu in {0.005, 0.01,
0.05, 0.1}, h 64, L 4, modes 32 x 64 (Chebyshev in t x Fourier in x), batch 16, lr 1e-3 with a
1000x decay, 30k/30k/100k/200k steps, seeds 0..3; columns SNO, FNO x64/x128/x256 + PINN, CNO x256 +
PINN (``--cheb``), NSM and NSM with the Fourier basis (``--fourier``); test: 128 instances on a
513 x 513 (t, x) grid from the operator-splitting solver on 4096 points (official ``.npy`` files,
or our own with ``data.source="synthetic"``). Smoke: a tiny NSM at nu = 0.01 on a 16-point IC grid.
"""

from __future__ import annotations

import pathlib

import ml_collections

from experiments.common import (
  model_config,
  operator_config,
  paper_models,
  run_operator_experiment,
  train_config,
)
from experiments.report import Report
from jspectral.pde import problems

NUS = {"nu005": 0.005, "nu01": 0.01, "nu05": 0.05, "nu1": 0.1}
PAPER_STEPS = {"nu005": 30_000, "nu01": 30_000, "nu05": 100_000, "nu1": 200_000}
PAPER_VARIANTS = {name: f"nu = {nu:g} only ({PAPER_STEPS[name] // 1000}k steps), every method"
                  for name, nu in NUS.items()}


def get_config(preset: str) -> ml_collections.ConfigDict:
  c = operator_config(preset)
  c.rho = 5.0
  if preset == "smoke":
    c.problems = ["nu01"]
    c.phi_res = 16
    c.n_test = 8
    c.test_grid = [17, 17]
    c.models = {"NSM": model_config("nsm", 16, 2, (8, 16))}
    c.train = train_config(preset, steps=400, batch_size=8, learning_rate=5e-3)
    return c
  variant = preset.partition(":")[2]
  c.problems = [variant] if variant else list(NUS)
  c.phi_res = 64
  c.n_test = 128
  c.test_grid = [513, 513]       # synthetic test sets; official files carry their own grid
  c.models = paper_models(64, 4, (32, 64), cno=True, nsm_fourier=True)
  c.train = train_config(preset, steps=PAPER_STEPS["nu01"])
  c.problem_steps = {name: PAPER_STEPS[name] for name in c.problems}
  return c


def run(config, workdir: pathlib.Path) -> Report:
  instances = {name: problems.ReactionDiffusion(nu=nu, rho=config.rho, res=config.phi_res)
               for name, nu in NUS.items()}
  return run_operator_experiment(config, workdir, "NSM on reaction-diffusion", instances, {})
