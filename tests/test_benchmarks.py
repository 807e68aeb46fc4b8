"""The side-by-side harness runs a train step as ``fit`` does (no timings asserted here)."""

import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import versus


def _sgd_case() -> versus.Case:
  """Loss ``sum((w - 3)^2)``, SGD at 0.1: each step maps ``w - 3`` to ``0.8 (w - 3)``."""
  params = {"w": jnp.array([1.0, 5.0])}
  tx = optax.sgd(0.1)
  loss_fn = lambda p, target: jnp.sum((p["w"] - target) ** 2)
  return versus.Case((versus._optax_step(loss_fn, tx), (params, tx.init(params), 3.0)),
                     (lambda p: 2 * p["w"], (params,)), shapes="2 weights")


def test_train_calls_carry_the_donated_state_and_inference_reads_the_current(monkeypatch):
  monkeypatch.setitem(versus.CASES, "sgd", _sgd_case)
  built = versus.Built("sgd")  # compiles and makes one warm-up call of each
  assert "input_output_alias" in built._compiled["train"][0].as_text()  # the state is donated
  times = built.time(3)
  assert len(times["train_s"]) == len(times["infer_s"]) == 3
  params, _, target = built._args["train"]
  # four steps from [1, 5], each from the previous one's state (not four first steps)
  np.testing.assert_allclose(params["w"], 3.0 + np.array([-2.0, 2.0]) * 0.8 ** 4, rtol=1e-6)
  assert target == 3.0
  # inference reads the current parameters, the very arrays the last train call returned (as
  # the official eval() of the same module does)
  np.testing.assert_allclose(built._compiled["infer"][0](*built._args["infer"]), 2 * params["w"])
  assert built._args["infer"][0]["w"] is params["w"]
