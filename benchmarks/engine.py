"""The training engine's own overhead: ``train_step`` of the example model, batch 16 of 64x64x31."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from benchmarks.harness import time_jitted, write_results
from jspectral import models, train


def main() -> None:
  module = models.create("residual_convnet")
  batch = jnp.ones((16, 64, 64, 31))
  params = module.init(jax.random.PRNGKey(0), batch)["params"]
  tx = optax.adam(1e-3)
  state = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), {},
                           jax.random.PRNGKey(0))

  def loss_fn(params, model_state, batch, rng):
    return jnp.mean((module.apply({"params": params}, batch) - batch) ** 2), {}

  step = functools.partial(train.train_step, loss_fn=loss_fn, tx=tx)
  record = time_jitted(step, state, batch)
  record.update(name="residual_convnet train_step", batch=16,
                examples_per_s=16 / record["mean_s"])
  print(write_results("engine", [record]))


if __name__ == "__main__":
  main()
