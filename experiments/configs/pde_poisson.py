"""Neural Spectral Methods on the Poisson equation (periodic and Dirichlet), NSM vs SNO vs FNO+PINN.

Paper: Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225), Poisson experiments; official
recipe from ASK-Berkeley/Neural-Spectral-Methods ``run/poisson.*.sh``: h 64, L 4, modes 31 x 31,
batch 16 fresh GP samples per step, Adam lr 1e-3 with a 1000x exponential decay, 30k (periodic) /
100k (Dirichlet) steps, 128 test instances on a 256 x 256 grid. The smoke preset trains a tiny NSM
on CPU and checks that the relative L2 error falls 10x below the untrained model's.

This module also holds :func:`run_operator_experiment`, the shared driver of the three PDE
experiments (``pde_reaction_diffusion`` and ``pde_navier_stokes`` call it).
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections
import numpy as np

from experiments.report import Report, Table
from jspectral import train
from jspectral.models import param_count
from jspectral.pde import nsm, problems, solvers

PAPER_NOTE = ("Paper numbers: the spec could not retrieve the paper's tables (only the abstract); "
              "fill the 'paper' column from Tables 1-4 of arXiv 2312.05225 - n/a means not copied.")


def model_config(kind: str, hdim: int, depth: int, mode, grid: int = 0, activate: str = "relu"):
  return dict(kind=kind, hdim=hdim, depth=depth, mode=list(mode), grid=grid, activate=activate)


def train_config(preset: str, steps: int, batch_size: int = 16, learning_rate: float = 1e-3):
  config = train.default_config()
  config.total_steps = steps
  config.batch_size = batch_size
  config.optimizer.learning_rate = learning_rate
  if preset == "paper":
    # Official schedule "exp": lr * (1e-3) ** (step / total_steps), a smooth 1000x decay.
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 1e-3
    config.eval_every = 1000
    config.checkpoint_every = 5000
    config.log_every = 100
  else:
    config.eval_every = max(steps // 5, 1)
    config.checkpoint_every = steps
    config.log_every = max(steps // 20, 1)
    config.progress = False
  return config


def get_config(preset: str) -> ml_collections.ConfigDict:
  if preset not in ("smoke", "paper"):
    raise ValueError(f"preset: expected 'smoke' or 'paper', got {preset!r}")
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.seed = 0
  c.min_error_drop = 10.0
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


def build_model(spec, problem):
  kw = dict(problem=problem, hdim=spec["hdim"], depth=spec["depth"], mode=tuple(spec["mode"]),
            activate=spec["activate"])
  if spec["kind"] == "nsm":
    return nsm.NSM(**kw)
  if spec["kind"] == "sno":
    return nsm.SNO(**kw)
  return nsm.FNOPINN(grid=spec["grid"], **kw)


def make_test_set(problem, config):
  """``n_test`` prior samples (key 0, as the official test sets) and their reference solutions."""
  phi = problems.sample(problem, jax.random.PRNGKey(0), (config.n_test,))
  ref = dict(config.reference)
  ns_dt = ref.pop("ns_dt") or None
  solve = jax.jit(lambda p: solvers.reference_solution(problem, p, tuple(config.test_grid),
                                                       ns_dt=ns_dt, **ref))
  return np.asarray(phi), np.stack([np.asarray(solve(p)) for p in phi])


def run_operator_experiment(config, workdir: pathlib.Path, title: str, instances: dict,
                            paper: dict) -> Report:
  """Trains every configured model on every problem instance and writes the paper-style table.

  Args:
    instances: ``name -> problem`` for the instances in ``config.problems``.
    paper: ``(instance, method) -> paper number`` (relative L2 error in %), when known.
  """
  workdir = pathlib.Path(workdir)
  report = Report(title=title)
  rows, figures, checks = [], [], {}
  for instance in config.problems:
    problem = instances[instance]
    phi_test, u_test = make_test_set(problem, config)
    results = {}
    for method, spec in config.models.items():
      model = build_model(spec, problem)
      tag = f"{instance}_{method.split()[0].lower()}{spec['grid'] or ''}"
      out = nsm.train_and_evaluate(model, phi_test, u_test, config.train, workdir / tag)
      results[method] = out
      err, err0 = 100 * float(np.mean(out["errors"])), 100 * float(np.mean(out["errors_init"]))
      std = 100 * float(np.std(out["errors"]))
      rows.append([instance, method, f"{err:.3g} ± {std:.2g}", f"{err0:.3g}",
                   paper.get((instance, method), "n/a"), out["train_seconds_per_step"],
                   out["inference_seconds"], param_count({"params": out["params"]})])
      if config.preset == "smoke":
        checks[f"{instance} {method}: rel. L2 error falls >= {config.min_error_drop:g}x below "
               f"the untrained model ({err0:.3g}% -> {err:.3g}%)"] = (
                   err * config.min_error_drop <= err0)
      figure = f"{tag}.png"
      nsm.plot_prediction(workdir / figure, u_test[0], out["pred0"],
                          {method: out["history"]}, title=f"{instance} {method}")
      figures.append(figure)
  smoke = " (SMOKE: tiny models, few steps, small test grid)" if config.preset == "smoke" else ""
  report.tables.append(Table(
      title=f"Relative L2 error (%), training and inference time{smoke}",
      header=["instance", "method", "rel. L2 % (ours)", "untrained %", "paper %",
              "train s/step", "inference s (test set)", "params"],
      rows=rows, note=PAPER_NOTE))
  report.figures = figures
  report.checks = checks
  report.notes = [f"preset {config.preset}: {config.n_test} test instances on a "
                  f"{'x'.join(map(str, config.test_grid))} grid incl. ends; "
                  f"{config.train.total_steps} steps of batch {config.train.batch_size}.",
                  "Training is self-supervised (spectral or PINN residual); reference solutions "
                  "come from jspectral.pde.solvers and are used for evaluation only."]
  return report


def run(config, workdir: pathlib.Path) -> Report:
  instances = {"poisson_periodic": problems.PoissonPeriodic(res=config.phi_res),
               "poisson_dirichlet": problems.PoissonDirichlet(res=config.phi_res)}
  return run_operator_experiment(config, workdir, "NSM on the Poisson equation", instances, {})
