"""Training-step parity with the official GRACE and GraphCL code (float64, 3 optimizer steps).

Cases in ``tests/graph/parity/`` (how they were made: docs/parity.md, "Graph SSL training
steps"): the official modules from their initial weights, the same batch, and the augmentation
masks drawn once and fed to both implementations; the losses of steps 1-3 and the parameters
(and GraphCL's BatchNorm running statistics) after each step must match.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.data import graphs as G
from jspectral.graph import encoders, losses

PARITY = pathlib.Path(__file__).parent / "parity"


def _load(case: str) -> dict:
  with np.load(PARITY / f"{case}.npz") as f:
    return dict(f)


def _state(pack: dict, prefix: str) -> dict:
  return {k.removeprefix(prefix): v for k, v in pack.items() if k.startswith(prefix)}


def _graph64(x, edge_index, keep=None, batch=None):
  """``make_graph`` in float64; dropped edges are masked (weight 0), shapes stay static."""
  n_node = None if batch is None else np.bincount(batch)
  graph = G.make_graph(x, edge_index, n_node=n_node)
  weight = np.ones(edge_index.shape[1]) if keep is None else np.asarray(keep, np.float64)
  return graph._replace(nodes=jnp.asarray(x, jnp.float64),
                        edges={"weight": jnp.asarray(weight), "slot": jnp.zeros_like(weight)})


def _optimizer(name: str, lr: float, weight_decay: float = 0.0):
  config = train.default_config()
  config.optimizer.update(name=name, learning_rate=lr, weight_decay=weight_decay)
  return train.make_optimizer(config, 3)[0]


def _assert_tree_close(actual, expected, rtol):
  flat_a, flat_e = jax.tree.leaves_with_path(actual), jax.tree.leaves_with_path(expected)
  assert [p for p, _ in flat_a] == [p for p, _ in flat_e]
  for (path, a), (_, e) in zip(flat_a, flat_e, strict=True):
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * np.abs(e).max(), err_msg=str(path))


def _grace_loss(module, tau: float):
  def loss_fn(params, view1, view2):
    _, h1 = module.apply({"params": params}, view1)
    _, h2 = module.apply({"params": params}, view2)
    return losses.grace_infonce(h1, h2, tau)

  return loss_fn


def test_grace_train_steps():
  """Case grace_train_steps: GRACE model.py + torch Adam(weight_decay) on a Cora-like graph."""
  pack = _load("grace_train_steps")
  with jax.enable_x64(True):
    module, variables = encoders.grace_from_torch(_state(pack, "init/"))
    params = variables["params"]
    tx = _optimizer("adam_l2", float(pack["lr"]), float(pack["weight_decay"]))
    opt_state = tx.init(params)
    x, edge_index, tau = pack["x"], pack["edge_index"], float(pack["tau"])
    grad_fn = jax.jit(jax.value_and_grad(_grace_loss(module, tau)))
    for step in range(3):
      views = [_graph64(x * pack[f"step{step}/feature_keep_{v}"], edge_index,
                        pack[f"step{step}/edge_keep_{v}"]) for v in (1, 2)]
      loss, grads = grad_fn(params, *views)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = jax.tree.map(lambda p, u: p + u, params, updates)
      np.testing.assert_allclose(loss, pack[f"step{step}/loss"], rtol=1e-10)
      _, expected = encoders.grace_from_torch(_state(pack, f"step{step}/params/"))
      _assert_tree_close(params, expected["params"], rtol=1e-8)
      if step == 0:
        first = (grads, expected["params"])
    # weight decay dropped (adam) or decoupled (adamw) misses the official first step
    initial = encoders.grace_from_torch(_state(pack, "init/"))[1]["params"]
    for name in ("adam", "adamw"):
      other = _optimizer(name, float(pack["lr"]), float(pack["weight_decay"]))
      updates, _ = other.update(first[0], other.init(initial), initial)
      with pytest.raises(AssertionError):
        _assert_tree_close(jax.tree.map(lambda p, u: p + u, initial, updates), first[1], 1e-8)


def test_graphcl_train_steps():
  """Case graphcl_train_steps: gsimclr.simclr + gin.Encoder, Adam 0.01, BN in train mode."""
  pack = _load("graphcl_train_steps")
  with jax.enable_x64(True):
    module, variables = encoders.graphcl_from_torch(_state(pack, "init/"))
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    tx = _optimizer("adam", 0.01)
    opt_state = tx.init(params)
    x, edge_index, batch = pack["x"], pack["edge_index"], pack["batch"]

    def loss_fn(p, state, view1, view2):
      (_, _, p1), upd = module.apply({"params": p, **state}, view1, True,
                                     mutable=["batch_stats"])
      (_, _, p2), upd = module.apply({"params": p, **upd}, view2, True, mutable=["batch_stats"])
      return losses.graphcl_ntxent(p1, p2), upd

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    view1 = _graph64(x, edge_index, batch=batch)
    for step in range(3):
      view2 = _graph64(x, edge_index, pack[f"step{step}/edge_keep"], batch=batch)
      (loss, state), grads = grad_fn(params, state, view1, view2)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = jax.tree.map(lambda p, u: p + u, params, updates)
      np.testing.assert_allclose(loss, pack[f"step{step}/loss"], rtol=1e-10)
      _, expected = encoders.graphcl_from_torch(_state(pack, f"step{step}/params/"))
      _assert_tree_close(params, expected["params"], rtol=1e-8)
      _assert_tree_close(state["batch_stats"], expected["batch_stats"], rtol=1e-8)
