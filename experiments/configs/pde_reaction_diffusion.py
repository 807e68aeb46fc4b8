"""Neural Spectral Methods on reaction-diffusion ``u_t - nu u_xx = 5 u (1 - u)``, periodic in x.

Paper: Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225), reaction-diffusion experiments;
official recipe (ASK-Berkeley/Neural-Spectral-Methods ``run/reaction.sh``): nu in {0.005, 0.01,
0.05, 0.1}, h 64, L 4, modes 32 x 64 (Chebyshev in t x Fourier in x), batch 16, lr 1e-3 with a
1000x decay, 30k/30k/100k/200k steps; test: 128 instances on a 513 x 513 (t, x) grid from the
operator-splitting solver on 4096 points. Smoke: a tiny NSM at nu = 0.01 on a 16-point IC grid.
"""

from __future__ import annotations

import pathlib

import ml_collections

from experiments.common import model_config, operator_config, run_operator_experiment, train_config
from experiments.report import Report
from jspectral.pde import problems

NUS = {"nu005": 0.005, "nu01": 0.01, "nu05": 0.05, "nu1": 0.1}
PAPER_STEPS = {"nu005": 30_000, "nu01": 30_000, "nu05": 100_000, "nu1": 200_000}


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
  else:
    c.problems = list(NUS)
    c.phi_res = 64
    c.n_test = 128
    c.test_grid = [513, 513]
    c.models = {
        "SNO": model_config("sno", 64, 4, (32, 64)),
        "FNO x64 + PINN": model_config("fno", 64, 4, (32, 64), grid=64),
        "FNO x128 + PINN": model_config("fno", 64, 4, (32, 64), grid=128),
        "FNO x256 + PINN": model_config("fno", 64, 4, (32, 64), grid=256),
        "NSM": model_config("nsm", 64, 4, (32, 64)),
    }
    # nu05 and nu1 ran 100k and 200k steps officially; override train.total_steps per run.
    c.train = train_config(preset, steps=PAPER_STEPS["nu01"])
  c.reference = dict(refine=8, dirichlet_n=48, ns_grid=256, ns_dt=0.0)
  return c


def run(config, workdir: pathlib.Path) -> Report:
  instances = {name: problems.ReactionDiffusion(nu=nu, rho=config.rho, res=config.phi_res)
               for name, nu in NUS.items()}
  return run_operator_experiment(config, workdir, "NSM on reaction-diffusion", instances, {})
