"""PDE benchmark: reference-solver throughput (vmap over instances) and NSM train-step time.

Solvers at the paper's data-generation resolutions (Poisson 16^2 -> 256^2 grid; reaction splitting
nx 4096 x 4097 steps; Navier-Stokes 256^2, dt 1e-3, 64 frames, T = 3) and the NSM / FNO+PINN train
step (batch 16, paper default configurations); compile time is reported apart from step time.
The official figures quoted in the spec are the A100 per-iteration times the official plotting code
assumes for NS FNO+PINN (0.69 s at x64, 2.33 s at x96); no other official timing is published there.
Writes ``benchmarks/results/pde.json``. Run ``python -m benchmarks pde`` (never in tests).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from benchmarks.harness import time_jitted, write_results
from jspectral.pde import nsm, problems, solvers

OFFICIAL_S_PER_STEP = {"FNO x64 + PINN, NS re*": 0.69, "FNO x96 + PINN, NS re*": 2.33}


def _solver_records(batch: int) -> list[dict]:
  key = jax.random.PRNGKey(0)
  records = []
  cases = [
      ("poisson_periodic exact -> 256^2", problems.PoissonPeriodic(), (256, 256), {}),
      ("poisson_dirichlet collocation n48 -> 256^2", problems.PoissonDirichlet(), (256, 256), {}),
      ("reaction splitting nx4096 nt4097 -> 513^2", problems.ReactionDiffusion(), (513, 513), {}),
      ("navier_stokes re3 256^2 dt1e-3 T3 -> 64x257^2", problems.PROBLEMS["navier_stokes_re3"],
       (64, 257, 257), {}),
  ]
  for name, problem, sizes, kw in cases:
    n = batch if "navier" not in name else max(batch // 8, 1)
    phi = problems.sample(problem, key, (n,))
    fn = jax.vmap(functools.partial(solvers.reference_solution, problem, sizes=sizes, **kw))
    record = time_jitted(fn, phi, iters=3, warmup=1)
    record.update(name=f"solver {name}", batch=n, instances_per_s=n / record["mean_s"])
    records.append(record)
  return records


def _train_step_records() -> list[dict]:
  records = []
  cases = [("nsm_poisson", nsm.NSM()), ("fno_pinn_poisson x64", nsm.FNOPINN(grid=64)),
           ("nsm_reaction", nsm.NSM(problem=problems.PROBLEMS["reaction_nu01"], mode=(32, 64))),
           ("nsm_navier_stokes", nsm.NSM(problem=problems.PROBLEMS["navier_stokes_re3"], hdim=32,
                                         depth=10, mode=(12, 31, 31)))]
  tx = optax.adam(1e-3)
  for name, model in cases:
    phi = problems.sample(model.problem, jax.random.PRNGKey(0), (16,))
    args = (phi[0], (2,) * model.problem.ndim) if isinstance(model, nsm.FNOPINN) else (phi[0],)
    params = model.init(jax.random.PRNGKey(1), *args)["params"]
    opt_state = tx.init(params)

    def step(params, opt_state, phi, model=model):
      def loss(p):
        return jnp.mean(jax.vmap(lambda q: sum(nsm.loss_terms(model, p, q).values()))(phi))
      value, grads = jax.value_and_grad(loss)(params)
      updates, opt_state = tx.update(grads, opt_state)
      return optax.apply_updates(params, updates), opt_state, value

    record = time_jitted(step, params, opt_state, phi, iters=5, warmup=1)
    record.update(name=f"train step {name}", batch=16, steps_per_s=1 / record["mean_s"])
    records.append(record)
  return records


def main(batch: int = 16) -> None:
  records = _solver_records(batch) + _train_step_records()
  records.append({"name": "official figures quoted in the spec (A100, s/step)",
                  **OFFICIAL_S_PER_STEP})
  print(write_results("pde", records))


if __name__ == "__main__":
  main()
