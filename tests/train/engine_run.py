"""A small task for the engine tests, runnable as a script in a subprocess.

    python tests/train/engine_run.py WORKDIR OUT.npz [--steps N] [--checkpoint-every K]
        [--sleep S] [--eval-every E --eval-marker PATH] [--accum K] [--precision P]

An MLP with BatchNorm and dropout regresses a fixed linear target. Batch statistics, dropout keys
and the data order all matter for the final parameters, so equal parameters across device counts,
process counts and restarts mean the engine got each of them right. Environment variables
``JSPECTRAL_*`` make it one process of a multi-process run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Dense(16, use_bias=False)(x)  # BatchNorm follows
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.Dropout(0.05, deterministic=not train)(nn.relu(x))
    return nn.Dense(1)(x)[..., 0]


@dataclasses.dataclass
class RegressionTask:
  sleep: float = 0.0
  num_examples: int = 64
  eval_marker: str = ""     # evaluate() touches this file, then sleeps (a kill lands mid-eval)

  def data(self):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(self.num_examples, 4)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) + 0.1).astype(np.float32)

  def train_source(self):
    x, y = self.data()
    return [{"x": x[i], "y": y[i]} for i in range(len(x))]

  def init(self, rng, batch):
    variables = MLP().init({"params": rng, "dropout": rng}, batch["x"], train=False)
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    pred, updates = MLP().apply({"params": params, **state}, batch["x"], train=True,
                                rngs={"dropout": rng}, mutable=["batch_stats"])
    if self.sleep:
      jax.debug.callback(lambda: time.sleep(self.sleep))
    return jnp.mean((pred - batch["y"]) ** 2), {"state": updates}

  def evaluate(self, params, state):
    if self.eval_marker:
      open(self.eval_marker, "w").close()
      time.sleep(30)
    x, y = self.data()
    pred = MLP().apply({"params": params, **state}, x, train=False)
    return {"mse": float(np.mean((np.asarray(pred) - y) ** 2))}


def config(steps: int = 30, checkpoint_every: int = 5, eval_every: int = 0, accum: int = 1,
           precision: str = "float32"):
  from jspectral import train

  c = train.default_config()
  c.update(total_steps=steps, batch_size=16, checkpoint_every=checkpoint_every, log_every=5,
           progress=False, keep_checkpoints=3, eval_every=eval_every, grad_accum_steps=accum,
           precision=precision)
  c.optimizer.update(name="momentum", learning_rate=0.02)
  return c


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("workdir")
  parser.add_argument("out")
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--checkpoint-every", type=int, default=5)
  parser.add_argument("--sleep", type=float, default=0.0)
  parser.add_argument("--eval-every", type=int, default=0)
  parser.add_argument("--eval-marker", default="")
  parser.add_argument("--accum", type=int, default=1)
  parser.add_argument("--precision", default="float32")
  args = parser.parse_args()
  from jspectral import train

  train.distributed.initialize()
  task = RegressionTask(sleep=args.sleep, eval_marker=args.eval_marker)
  result = train.fit(task, config(args.steps, args.checkpoint_every, args.eval_every, args.accum,
                                  args.precision), args.workdir)
  if jax.process_index() == 0:
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in
            jax.tree_util.tree_leaves_with_path((result.params, result.model_state))}
    np.savez(args.out, step=result.step, devices=jax.device_count(), **flat)


if __name__ == "__main__":
  main()
