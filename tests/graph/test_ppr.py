"""MVGRL's PPR diffusion view: closed form (scipy), spectral properties, PyGCL parity, GCNConv on
weighted views (tests/graph/parity/mvgrl_ppr.npz, generated from PyGCL ``compute_ppr`` and PyG
``GCNConv``; docs/parity.md)."""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest
import scipy.linalg

from jspectral.data import graphs as G
from jspectral.data import synthetic_graphs
from jspectral.graph import augment, encoders, tasks

PACK = np.load(pathlib.Path(__file__).parent / "parity" / "mvgrl_ppr.npz")


def _random_undirected(rng, n, p=0.3):
  upper = np.triu(rng.random((n, n)) < p, 1)
  return (upper | upper.T).astype(np.float64)


def _closed_form(adj, alpha):
  looped = adj + np.eye(len(adj))
  d = looped.sum(1)
  t = looped / np.sqrt(d[:, None] * d[None])
  return alpha * scipy.linalg.solve(np.eye(len(adj)) - (1 - alpha) * t, np.eye(len(adj))), d


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.9])
def test_ppr_equals_scipy_solve_and_its_spectral_properties(alpha):
  adj = _random_undirected(np.random.default_rng(1), 12)
  s = np.asarray(augment.ppr_diffusion(jax.numpy.asarray(adj, jax.numpy.float32), alpha))
  ref, d = _closed_form(adj, alpha)
  np.testing.assert_allclose(s, ref, atol=2e-6)
  np.testing.assert_allclose(s, s.T, atol=2e-6)  # symmetric for an undirected graph
  # D^1/2 1 is T's eigenvector of eigenvalue 1, hence S's of eigenvalue 1
  np.testing.assert_allclose(s @ np.sqrt(d), np.sqrt(d), rtol=1e-5)
  # spectrum of S = alpha / (1 - (1 - alpha) lambda_T), lambda_T in (-1, 1]
  eig = np.linalg.eigvalsh(ref)
  assert eig.min() > alpha / (2 - alpha) - 1e-9 and abs(eig.max() - 1) < 1e-9
  # S = alpha sum_k (1 - alpha)^k T^k: entrywise non-negative
  assert s.min() > -1e-7


def test_ppr_alpha_one_is_identity_and_padding_is_inert():
  adj = _random_undirected(np.random.default_rng(2), 6)
  np.testing.assert_allclose(augment.ppr_diffusion(jax.numpy.asarray(adj), 1.0), np.eye(6),
                             atol=1e-6)
  padded = np.zeros((9, 9))
  padded[:6, :6] = adj
  mask = np.arange(9) < 6
  s = np.asarray(augment.ppr_diffusion(jax.numpy.asarray(padded), 0.2, node_mask=mask))
  np.testing.assert_allclose(s[:6, :6], augment.ppr_diffusion(jax.numpy.asarray(adj), 0.2),
                             atol=1e-6)
  assert not s[6:].any() and not s[:, 6:].any()


@pytest.mark.parametrize("alpha,eps", [(0.2, 1e-4), (0.15, 0.05)])
def test_ppr_graph_matches_pygcl_compute_ppr(alpha, eps):
  edge_index = PACK["edge_index"]
  graph = G.make_graph(PACK["x"], edge_index)
  view = augment.ppr_graph(graph, alpha, eps)
  ours = np.zeros((9, 9))
  ours[view.senders, view.receivers] = view.edges["weight"]
  ref = np.zeros((9, 9))
  ref_index = PACK[f"a{alpha}_e{eps}/edge_index"]
  ref[ref_index[0], ref_index[1]] = PACK[f"a{alpha}_e{eps}/edge_weight"]
  # PyGCL sizes the graph by max(edge_index) + 1 and never sees the isolated last node; ours
  # gives it its own diffusion loop (weight 1), which GCNConv treats as PyG's added loop
  np.testing.assert_allclose(ours[:8, :8], ref[:8, :8], atol=1e-6)
  assert ours[8, 8] == pytest.approx(1.0) and np.count_nonzero(ours[8]) == 1
  assert view.senders.shape[0] == ref_index.shape[1] + 1


def test_gcnconv_on_the_diffusion_view_matches_pyg():
  graph = G.make_graph(PACK["x"], PACK["edge_index"])
  view = augment.ppr_graph(graph, 0.2, 1e-4)
  params = {"params": {"lin": {"kernel": PACK["gcn/lin_weight"].T}, "bias": PACK["gcn/bias"]}}
  out = encoders.GCNConv(3).apply(params, view.nodes, view)
  np.testing.assert_allclose(out, PACK["gcn/out"], rtol=1e-5, atol=1e-5)


def test_top_k_keeps_k_entries_per_receiver_and_renormalises():
  adj = _random_undirected(np.random.default_rng(3), 10, 0.4)
  s = augment.ppr_diffusion(jax.numpy.asarray(adj, jax.numpy.float32), 0.2)
  w = np.asarray(augment.sparsify_diffusion(s, top_k=3))
  assert (np.count_nonzero(w, axis=1) == 3).all()
  kept = np.where(w > 0, np.asarray(s), 0.0)
  d = kept.sum(1)
  np.testing.assert_allclose(w, kept / np.sqrt(d[:, None] * d[None]), rtol=1e-5)


@pytest.mark.parametrize("call,match", [
    (lambda: augment.ppr_diffusion(jax.numpy.ones((3, 4))), "adj"),
    (lambda: augment.ppr_diffusion(jax.numpy.ones((3, 3)), 0.0), "alpha"),
    (lambda: augment.ppr_diffusion(jax.numpy.ones((3, 3)), 1.5), "alpha"),
    (lambda: augment.sparsify_diffusion(jax.numpy.ones((3, 3)), top_k=4), "top_k"),
    (lambda: augment.sparsify_diffusion(jax.numpy.ones((3, 3)), eps=None), "eps"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_mvgrl_node_task_uses_the_diffusion_view_in_training_and_evaluation():
  graph, labels = synthetic_graphs.karate_club()
  task = tasks.MVGRLNodeTask(graph, labels, encoders.MVGRLNode(hidden=8),
                             (tasks.View("identity"), tasks.View("ppr", 0.2)))
  view = task.view(jax.random.key(0), task.views[1])
  expected = augment.ppr_graph(graph, 0.2, tasks.PPR_EPS)
  np.testing.assert_array_equal(view.senders, expected.senders)
  np.testing.assert_allclose(view.edges["weight"], expected.edges["weight"])
  params, _ = task.init(jax.random.key(0), None)
  loss, _ = jax.jit(task.loss)(params, {}, None, jax.random.key(1))
  z1, z2, _, _ = encoders.MVGRLNode(hidden=8).apply({"params": params}, graph, expected)
  np.testing.assert_allclose(task.embed(params), np.concatenate([z1, z2], 1), rtol=1e-5,
                             atol=1e-6)
  assert np.isfinite(float(loss))
