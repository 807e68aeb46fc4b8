"""Parity with the official GRACE / GraphCL / GCL-SPAN code (pack ``graph_ssl_parity``)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.data import graphs as G
from jspectral.graph import augment, encoders, losses
from tests.conftest import load_pack

PACK = "graph_ssl_parity"


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


def _graph(x, edge_index, batch=None):
  n_node = None if batch is None else np.bincount(batch)
  return G.make_graph(x, edge_index, n_node=n_node)


def test_gcn_grace_encoder_projection_and_loss(pack):
  """Case gcn_grace: encoder on clean and asymmetric edge-dropped views, projection and loss."""
  c = "gcn_grace"
  module, variables = models.from_torch("grace_cora", pack.state(c))
  assert isinstance(module, encoders.GRACE)
  for x_key, e_key, z_key, h_key in (("x", "edge_index", "z", None),
                                     ("x_1", "edge_index_1", "z1", "h1"),
                                     ("x_2", "edge_index_2", "z2", "h2")):
    z, h = module.apply(variables, _graph(pack[f"{c}/{x_key}"], pack[f"{c}/{e_key}"]))
    np.testing.assert_allclose(z, pack[f"{c}/{z_key}"], rtol=1e-5, atol=1e-6)
    if h_key:
      np.testing.assert_allclose(h, pack[f"{c}/{h_key}"], rtol=1e-5, atol=1e-6)
  h1, h2 = pack[f"{c}/h1"], pack[f"{c}/h2"]
  np.testing.assert_allclose(losses.grace_semi_loss(h1, h2, 0.5), pack[f"{c}/semi_loss_12"],
                             rtol=1e-5)
  np.testing.assert_allclose(losses.grace_semi_loss(h2, h1, 0.5), pack[f"{c}/semi_loss_21"],
                             rtol=1e-5)
  np.testing.assert_allclose(losses.grace_infonce(h1, h2, 0.5), pack[f"{c}/loss"], rtol=1e-5)


def test_gcn_grace_prelu_k3(pack):
  """Case gcn_grace_prelu_k3: bare 3-layer encoder with one shared PReLU slope (0.1)."""
  module, variables = encoders.grace_from_torch(pack.state("gcn_grace_prelu_k3"))
  assert module.num_layers == 3 and module.activation == "prelu"
  out = module.apply(variables, _graph(pack["gcn_grace/x_1"], pack["gcn_grace/edge_index_1"]))
  np.testing.assert_allclose(out, pack["gcn_grace_prelu_k3/output"], rtol=1e-5, atol=1e-6)


def test_grace_loss_float64_and_float32(pack):
  """Case grace_loss: tau 0.4 on fixed embeddings, 1e-10 in float64, 1e-5 in float32."""
  c = "grace_loss"
  with jax.enable_x64(True):
    h1, h2 = jnp.asarray(pack[f"{c}/h1"]), jnp.asarray(pack[f"{c}/h2"])
    np.testing.assert_allclose(losses.grace_semi_loss(h1, h2, 0.4), pack[f"{c}/semi_loss_12"],
                               rtol=1e-10)
    np.testing.assert_allclose(losses.grace_semi_loss(h2, h1, 0.4), pack[f"{c}/semi_loss_21"],
                               rtol=1e-10)
    loss = losses.grace_infonce(h1, h2, 0.4)
    np.testing.assert_allclose(loss, pack[f"{c}/loss"], rtol=1e-10)
    np.testing.assert_allclose(losses.grace_infonce(h2, h1, 0.4), loss, rtol=1e-12)
    np.testing.assert_allclose(losses.grace_infonce(3.0 * h1, 0.5 * h2, 0.4), loss, rtol=1e-12)
    # PyGCL's L2L InfoNCE adds exp(1/tau) to each denominator.
    self_sim = np.exp(1 / 0.4)
    un = h1 / jnp.linalg.norm(h1, axis=1, keepdims=True)
    vn = h2 / jnp.linalg.norm(h2, axis=1, keepdims=True)

    def with_self(u, v):
      den = np.exp(u @ v.T / 0.4).sum(1) + np.exp(u @ u.T / 0.4).sum(1)
      return -np.log(np.exp(np.sum(u * v, 1) / 0.4) / den)

    expected = 0.5 * (with_self(un, vn) + with_self(vn, un)).mean()
    assert not np.isclose(expected, float(loss))
    assert np.exp(1 / 0.4) == pytest.approx(self_sim)
    np.testing.assert_allclose(losses.pygcl_infonce(h1, h2, 0.4), expected, rtol=1e-10)
  np.testing.assert_allclose(
      losses.grace_infonce(pack[f"{c}/h1"].astype(np.float32), pack[f"{c}/h2"].astype(np.float32),
                           0.4), pack[f"{c}/loss"], rtol=1e-5)


def test_graphcl_ntxent_is_one_directional(pack):
  """Case graphcl_ntxent: both argument orders, float64 and float32."""
  c = "graphcl_ntxent"
  with jax.enable_x64(True):
    x, xa = jnp.asarray(pack[f"{c}/x"]), jnp.asarray(pack[f"{c}/x_aug"])
    np.testing.assert_allclose(losses.graphcl_ntxent(x, xa), pack[f"{c}/loss"], rtol=1e-10)
    np.testing.assert_allclose(losses.graphcl_ntxent(xa, x), pack[f"{c}/loss_swapped"],
                               rtol=1e-10)
  np.testing.assert_allclose(losses.graphcl_ntxent(pack[f"{c}/x"].astype(np.float32),
                                                   pack[f"{c}/x_aug"].astype(np.float32)),
                             pack[f"{c}/loss"], rtol=1e-5)


def test_gin_graphcl_train_and_eval_modes(pack):
  """Case gin_graphcl: train-mode BN outputs, projections, negative loss; eval after 2 updates."""
  c = "gin_graphcl"
  state = pack.state(c)
  module, variables = models.from_torch("graphcl_mutag", state)
  assert (module.hidden, module.num_layers) == (16, 2)
  batch = pack[f"{c}/batch"]
  view1 = _graph(pack[f"{c}/x"], pack[f"{c}/edge_index"], batch)
  view2 = _graph(pack[f"{c}/x"], pack[f"{c}/edge_index_view2"], batch)
  fresh = {"params": variables["params"],
           "batch_stats": {"encoder": {k: {"mean": jnp.zeros(16), "var": jnp.ones(16)}
                                       for k in variables["batch_stats"]["encoder"]}}}
  (g1, n1, p1), upd = module.apply(fresh, view1, True, mutable=["batch_stats"])
  (g2, _, p2), upd = module.apply({**fresh, **upd}, view2, True, mutable=["batch_stats"])
  np.testing.assert_allclose(g1, pack[f"{c}/graph_emb_view1"], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(g2, pack[f"{c}/graph_emb_view2"], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(n1, pack[f"{c}/node_emb_view1"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(p1, pack[f"{c}/proj_view1"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(p2, pack[f"{c}/proj_view2"], rtol=1e-5, atol=1e-5)
  loss = losses.graphcl_ntxent(p1, p2)
  np.testing.assert_allclose(loss, pack[f"{c}/loss"], rtol=1e-5)
  assert float(loss) < 0
  # Running statistics after the two train passes equal the stored official buffers.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               upd["batch_stats"], variables["batch_stats"])
  g_eval, _, _ = module.apply(variables, view1, False)
  np.testing.assert_allclose(g_eval, pack[f"{c}/graph_emb_eval"], rtol=1e-5, atol=1e-4)


def test_span_mutag5_probabilities(pack):
  """Case span_mutag5: SPAN max/min probability matrices from the injected initial delta."""
  c = "span_mutag5"
  adj = jnp.asarray(pack[f"{c}/adj"])
  np.testing.assert_allclose(augment.normalized_adjacency(adj), pack[f"{c}/norm_adj"], atol=1e-6)
  e = pack[f"{c}/eig_norm_adj"]
  np.testing.assert_allclose(np.linalg.norm(e), np.linalg.norm(pack[f"{c}/norm_adj"]), rtol=1e-5)
  init = jnp.asarray(pack[f"{c}/init_lower_tri"])
  span = jax.jit(functools.partial(augment.span_probabilities, ratio=0.2, lr=0.5, iterations=20,
                                   threshold=0.5), static_argnames=("kind", "use_eigvalsh"))
  for kind in ("max", "min"):
    prob = span(adj, kind=kind, init=init)
    expected = pack[f"{c}/prob_{kind}"]
    np.testing.assert_allclose(np.triu(prob).sum(), np.triu(expected).sum(), atol=1e-3)
    assert np.array_equal(np.asarray(prob) > 1e-6, expected > 1e-6)
    np.testing.assert_allclose(prob, expected, atol=1e-4)
    np.testing.assert_allclose(prob, prob.T)
    assert np.triu(expected).sum() <= 6 + 1e-3
  prob_eig = span(adj, kind="max", init=init, use_eigvalsh=True)
  np.testing.assert_allclose(prob_eig, pack[f"{c}/prob_max"], atol=1e-4)
