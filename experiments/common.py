"""Experiment drivers shared by several experiment configs (flax examples' ``train_and_evaluate``).

Configs import from here, never from one another.
"""

from __future__ import annotations

import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments.report import Report, Table
from jspectral import train
from jspectral.models import param_count
from jspectral.pde import figures as pde_figures
from jspectral.pde import nsm, problems, solvers
from jspectral.pde.tasks import OperatorTask

# ------------------------------------------------------------------------------------------------
# Neural Spectral Methods: pde_poisson, pde_reaction_diffusion, pde_navier_stokes
# ------------------------------------------------------------------------------------------------

PDE_PAPER_NOTE = ("Paper numbers: the spec could not retrieve the paper's tables (only the "
                  "abstract); fill the 'paper' column from Tables 1-4 of arXiv 2312.05225 - n/a "
                  "means not copied.")


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


def train_and_evaluate(model: nn.Module, phi_test, u_test, train_config, workdir) -> dict:
  """Trains ``model`` with :func:`jspectral.train.fit` and measures what the paper tables report.

  Returns a dict with the untrained and trained relative L2 errors (``errors_init``, ``errors``;
  per test sample, fractions), ``train_seconds_per_step`` (wall time of the fit divided by its
  steps, compile included), ``inference_seconds`` (whole test set on its grid), the ``history``,
  ``params`` and one example prediction ``pred0`` on the test grid.
  """
  task = OperatorTask(model, np.asarray(phi_test), np.asarray(u_test))
  params0, _ = task.init(jax.random.PRNGKey(train_config.seed), None)
  errors_init = task.errors(params0)
  start = time.perf_counter()
  result = train.fit(task, train_config, workdir)
  seconds = time.perf_counter() - start
  sizes = tuple(np.shape(u_test)[1:-1])
  return dict(errors_init=errors_init, errors=task.errors(result.params),
              train_seconds_per_step=seconds / max(train_config.total_steps, 1),
              inference_seconds=task.inference_seconds(result.params), history=result.history,
              params=result.params,
              pred0=np.asarray(nsm.predict(model, result.params, jnp.asarray(phi_test[0]), sizes)))



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
      out = train_and_evaluate(model, phi_test, u_test, config.train, workdir / tag)
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
      pde_figures.plot_prediction(workdir / figure, u_test[0], out["pred0"],
                          {method: out["history"]}, title=f"{instance} {method}")
      figures.append(figure)
  smoke = " (SMOKE: tiny models, few steps, small test grid)" if config.preset == "smoke" else ""
  report.tables.append(Table(
      title=f"Relative L2 error (%), training and inference time{smoke}",
      header=["instance", "method", "rel. L2 % (ours)", "untrained %", "paper %",
              "train s/step", "inference s (test set)", "params"],
      rows=rows, note=PDE_PAPER_NOTE))
  report.figures = figures
  report.checks = checks
  report.notes = [f"preset {config.preset}: {config.n_test} test instances on a "
                  f"{'x'.join(map(str, config.test_grid))} grid incl. ends; "
                  f"{config.train.total_steps} steps of batch {config.train.batch_size}.",
                  "Training is self-supervised (spectral or PINN residual); reference solutions "
                  "come from jspectral.pde.solvers and are used for evaluation only."]
  return report
