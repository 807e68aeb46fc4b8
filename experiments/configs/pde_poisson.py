"""Neural Spectral Methods on the Poisson equation (periodic and Dirichlet), NSM vs SNO vs FNO+PINN.

Paper: Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225), Poisson experiments; official
recipe from ASK-Berkeley/Neural-Spectral-Methods ``run/poisson.*.sh``: h 64, L 4, modes 31 x 31,
batch 16 fresh GP samples per step, Adam lr 1e-3 with a 1000x exponential decay, 30k (periodic) /
100k (Dirichlet) steps, 128 test instances on a 256 x 256 grid. The smoke preset trains a tiny NSM
on CPU and checks that the relative L2 error falls 10x below the untrained model's.

The three PDE experiments share :func:`experiments.common.run_operator_experiment`.
"""

from __future__ import annotations

import pathlib

import ml_collections

from experiments.common import model_config, operator_config, run_operator_experiment, train_config
from experiments.report import Report
from jspectral.pde import problems


def get_config(preset: str) -> ml_collections.ConfigDict:
  c = operator_config(preset)
  if preset == "smoke":
    c.problems = ["poisson_periodic"]
    c.phi_res = 8
    c.n_test = 8
    c.test_grid = [33, 33]
    c.models = {"NSM": model_config("nsm", 16, 2, (15, 15))}
    c.train = train_config(preset, steps=150, batch_size=8, learning_rate=3e-3)
  else:
    c.problems = ["poisson_periodic", "poisson_dirichlet"]
    c.phi_res = 16
    c.n_test = 128
    c.test_grid = [256, 256]
    c.models = {
        "SNO": model_config("sno", 64, 4, (31, 31)),
        "FNO x64 + PINN": model_config("fno", 64, 4, (31, 31), grid=64),
        "FNO x128 + PINN": model_config("fno", 64, 4, (31, 31), grid=128),
        "FNO x256 + PINN": model_config("fno", 64, 4, (31, 31), grid=256),
        "NSM": model_config("nsm", 64, 4, (31, 31)),
    }
    c.train = train_config(preset, steps=30_000)
  c.reference = dict(refine=8, dirichlet_n=48, ns_grid=256, ns_dt=0.0)
  return c


def run(config, workdir: pathlib.Path) -> Report:
  instances = {"poisson_periodic": problems.PoissonPeriodic(res=config.phi_res),
               "poisson_dirichlet": problems.PoissonDirichlet(res=config.phi_res)}
  return run_operator_experiment(config, workdir, "NSM on the Poisson equation", instances, {})
