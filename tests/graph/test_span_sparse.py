"""SPAN on a bounded support: equal to the dense (official) problem when the support holds every
pair, keeps its budget and edge structure on a bounded one, and fits a PubMed-sized graph in a few
MiB of XLA buffers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.data import graphs as G
from jspectral.graph import augment, encoders, tasks


def _graph(n, p, seed):
  rng = np.random.default_rng(seed)
  und = np.array([(i, j) for i in range(n) for j in range(i) if rng.random() < p]).T
  return G.make_graph(rng.normal(size=(n, 3)).astype(np.float32),
                      np.concatenate([und, und[::-1]], axis=1))


# lr 100 amplifies float32 summation-order differences into the budget bisection, which stops at
# an interval of 1e-4 in mu: agreement within a few of those widths
@pytest.mark.parametrize("kind,lr,atol", [("max", 100.0, 5e-4), ("min", 0.1, 1e-6),
                                          ("max", 0.5, 1e-6)])
def test_full_support_equals_the_dense_problem(kind, lr, atol):
  graph = _graph(14, 0.25, 0)
  adj = augment.symmetric_adjacency(graph)
  pairs, is_edge = augment.span_support(graph)
  n = graph.nodes.shape[0]
  assert pairs.shape == (n * (n - 1) // 2, 2)
  np.testing.assert_array_equal(is_edge, np.asarray(adj)[pairs[:, 0], pairs[:, 1]] > 0)
  init = jnp.asarray(np.random.default_rng(1).uniform(1e-5, 1 / n, len(pairs)), jnp.float32)
  dense = augment.span_probabilities(adj, kind=kind, lr=lr, init=init)
  sparse = augment.span_probabilities_sparse(n, pairs, is_edge, kind=kind, lr=lr, init=init)
  np.testing.assert_allclose(np.asarray(dense)[pairs[:, 0], pairs[:, 1]], sparse, atol=atol)
  # the objective: Frobenius norm on the support == the dense normalised adjacency's norm
  delta = np.zeros((n, n), np.float32)
  delta[pairs[:, 0], pairs[:, 1]] = np.asarray(sparse)
  modified = adj + (delta + delta.T) * (1 - np.eye(n) - 2 * adj)
  expected = np.linalg.norm(np.linalg.eigvalsh(augment.normalized_adjacency(modified)))
  ours = augment._support_norm(jnp.asarray(sparse), jnp.asarray(pairs), jnp.asarray(is_edge), n)
  np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_bounded_support_keeps_edges_budget_and_view_structure():
  graph = _graph(40, 0.1, 2)
  pairs, is_edge = augment.span_support(graph, random_per_edge=2.0, seed=3)
  num_edges = int(np.sum(graph.edges["weight"])) // 2
  assert is_edge.sum() == num_edges and len(pairs) <= 3 * num_edges
  assert (pairs[:, 0] > pairs[:, 1]).all() and len(np.unique(pairs, axis=0)) == len(pairs)
  prob = augment.span_probabilities_sparse(40, pairs, is_edge, kind="min", lr=0.1, ratio=0.3,
                                           threshold=0.8, key=jax.random.key(0))
  prob = np.asarray(prob)
  assert prob.min() >= 0 and prob.max() <= 1 and prob.sum() <= np.floor(0.3 * num_edges) + 1e-3
  view = augment.span_sample_sparse(jax.random.key(1), graph, pairs, is_edge, jnp.asarray(prob))
  assert view.senders.shape == (2 * len(pairs),)
  # probability 0 everywhere: the view is the graph itself
  same = augment.span_sample_sparse(jax.random.key(1), graph, pairs, is_edge,
                                    jnp.zeros(len(pairs)))
  np.testing.assert_array_equal(augment.symmetric_adjacency(same),
                                augment.symmetric_adjacency(graph))
  # probability 1 everywhere: every support pair flips in both directions
  flipped = augment.span_sample_sparse(jax.random.key(1), graph, pairs, is_edge,
                                       jnp.ones(len(pairs)))
  assert float(jnp.sum(flipped.edges["weight"])) == 2 * (len(pairs) - num_edges)


def test_pubmed_sized_graph_fits_in_a_few_mib():
  """19,717 nodes, 44,324 undirected edges (PubMed's size): the support is the edges plus as many
  random pairs; the compiled 40-step solve needs < 16 MiB of XLA temporaries (measured 3.1 MiB;
  the dense problem extrapolates to about 14 GB, docs/graph.md)."""
  n, e = 19_717, 44_324
  rng = np.random.default_rng(0)
  a, b = rng.integers(0, n, 2 * e), rng.integers(0, n, 2 * e)
  keys = np.unique(np.maximum(a, b)[a != b].astype(np.int64) * n + np.minimum(a, b)[a != b])[:e]
  und = np.stack([keys // n, keys % n])
  graph = G.make_graph(np.zeros((n, 1), np.float32), np.concatenate([und, und[::-1]], axis=1))
  pairs, is_edge = augment.span_support(graph, random_per_edge=1.0)
  assert is_edge.sum() == e and len(pairs) > 1.9 * e
  solve = jax.jit(lambda p, m, k: augment.span_probabilities_sparse(n, p, m, key=k))
  compiled = solve.lower(pairs, is_edge, jax.random.key(0)).compile()
  assert compiled.memory_analysis().temp_size_in_bytes < 16 * 2**20
  prob = np.asarray(compiled(pairs, is_edge, jax.random.key(0)))
  assert np.isfinite(prob).all() and prob.sum() <= np.floor(0.3 * e) + 1e-2


def test_node_task_selects_the_support_and_trains_on_sparse_views():
  graph = _graph(30, 0.15, 4)
  labels = np.arange(30) % 2
  views = (tasks.View("span_max", 0.0, 0.4), tasks.View("drop_edges", 0.2, 0.4))
  model = encoders.GRACE(8, 8)
  dense = tasks.NodeContrastTask(graph, labels, model, views)
  assert dense.span_dense and dense.span_prob["max"].shape == (30, 30)
  sparse = tasks.NodeContrastTask(graph, labels, model, views, span_support="sparse")
  assert not sparse.span_dense and sparse.span_prob["max"].shape == sparse.span_pairs.shape[:1]
  params, _ = sparse.init(jax.random.key(0), None)
  loss, _ = jax.jit(sparse.loss)(params, {}, None, jax.random.key(1))
  assert np.isfinite(float(loss))
  with pytest.raises(ValueError, match="span_support"):
    tasks.NodeContrastTask(graph, labels, model, views, span_support="blocked")
  with pytest.raises(ValueError, match="kind"):
    tasks.NodeContrastTask(graph, labels, model, (tasks.View("span_max_l2"),) * 2,
                           span_support="sparse")


@pytest.mark.parametrize("call,match", [
    (lambda p, e: augment.span_probabilities_sparse(5, p[:, :1], e, key=jax.random.key(0)),
     "pairs"),
    (lambda p, e: augment.span_probabilities_sparse(5, p, e[:-1], key=jax.random.key(0)),
     "is_edge"),
    (lambda p, e: augment.span_probabilities_sparse(5, p, e), "key"),
    (lambda p, e: augment.span_probabilities_sparse(5, p, e, init=jnp.ones(2)), "init"),
    (lambda p, e: augment.span_probabilities_sparse(5, p, e, ratio=2.0, key=jax.random.key(0)),
     "ratio"),
    (lambda p, e: augment.span_sample_sparse(jax.random.key(0), None, p, e, jnp.ones(3)), "prob"),
    (lambda p, e: augment.span_support(_graph(5, 0.5, 0), random_per_edge=-1.0),
     "random_per_edge"),
])
def test_bad_input_names_the_argument(call, match):
  pairs, is_edge = augment.span_support(_graph(5, 0.5, 0))
  with pytest.raises(ValueError, match=match):
    call(jnp.asarray(pairs), jnp.asarray(is_edge))
