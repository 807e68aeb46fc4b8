"""Augmentations: rates, validity, static shapes, quirks vs fixed modes, SPAN properties."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.data import graphs as G
from jspectral.data import synthetic_graphs
from jspectral.graph import augment


@pytest.fixture(scope="module")
def karate():
  return synthetic_graphs.karate_club()[0]


def test_drop_edges_rate_and_static_shape(karate):
  keys = jax.random.split(jax.random.key(0), 10_000)
  for p in (0.2, 0.4):
    views = jax.jit(jax.vmap(functools.partial(augment.drop_edges, graph=karate, p=p)))(keys)
    assert views.edges["weight"].shape == (10_000, 156)
    kept = float(jnp.mean(views.edges["weight"]))
    assert abs(kept - (1 - p)) < 0.01
    # asymmetric: some (i, j) kept while (j, i) dropped
    assert np.any(views.edges["weight"][0] != views.edges["weight"][0][_reverse_index(karate)])
  with pytest.raises(ValueError, match="p"):
    augment.drop_edges(keys[0], karate, 1.5)


def _reverse_index(graph):
  pairs = {(int(s), int(r)): k for k, (s, r) in enumerate(zip(graph.senders, graph.receivers,
                                                              strict=True))}
  return np.array([pairs[(int(r), int(s))] for s, r in zip(graph.senders, graph.receivers,
                                                            strict=True)])


def test_mask_features_is_per_column():
  x = jnp.ones((50, 2000))
  out = augment.mask_features(jax.random.key(1), x, 0.3)
  column_zero = np.all(np.asarray(out) == 0, axis=0)
  assert np.all((np.asarray(out) == 0) == column_zero[None])
  assert abs(column_zero.mean() - 0.3) < 0.04


def test_add_edges_fixed_mode_stays_inside_graphs():
  graphs, _ = synthetic_graphs.graph_families(3, num_graphs=6)
  slotted = [G.reserve_edge_slots(g, 0.5) for g in graphs]
  for g, s in zip(graphs, slotted, strict=True):
    assert int(s.n_edge[0]) - int(g.n_edge[0]) == 2 * int(int(g.n_edge[0]) * 0.5)
  batch = G.batch_and_pad(slotted, 256, 1024, 8)
  out = jax.jit(augment.add_edges)(jax.random.key(2), batch)
  w, slot = np.asarray(out.edges["weight"]), np.asarray(out.edges["slot"])
  s, r = np.asarray(out.senders), np.asarray(out.receivers)
  node_graph = np.asarray(G.node_graph_index(out))
  added = (slot > 0) & (w > 0)
  assert added.sum() > 0
  assert np.all(node_graph[s[added]] == node_graph[r[added]])  # no cross-graph edge
  assert np.all(s[added] != r[added])  # no self loop
  live = [(a, b) for a, b, ww in zip(s, r, w, strict=True) if ww > 0]
  assert len(live) == len(set(live))  # no duplicates
  assert set(live) == {(b, a) for a, b in live}  # still symmetric
  np.testing.assert_array_equal(w[slot == 0], np.asarray(batch.edges["weight"])[slot == 0])


def test_add_edges_pyg_compat_quirks():
  graphs, _ = synthetic_graphs.graph_families(4, num_graphs=4)
  batch = G.batch_and_pad([G.reserve_edge_slots(g, 1.0, mirrored=False) for g in graphs],
                          128, 1024, 8)
  outs = jax.jit(jax.vmap(functools.partial(augment.add_edges, graph=batch, pyg_compat=True)))(
      jax.random.split(jax.random.key(3), 50))
  slot = np.asarray(batch.edges["slot"]) > 0
  s, r = np.asarray(outs.senders)[:, slot], np.asarray(outs.receivers)[:, slot]
  last = int(np.sum(batch.n_node[:-1])) - 1
  node_graph = np.asarray(G.node_graph_index(batch))
  assert s.max() < last and r.max() < last  # the last node never gets a new edge
  assert np.any(node_graph[s] != node_graph[r])  # edges cross graph boundaries
  assert np.any(s == r)  # self loops possible
  assert slot.sum() == sum(int(g.n_edge[0]) for g in graphs)  # int(E * ratio) before dedup


def test_node_dropping_variants(karate):
  out = augment.drop_nodes(jax.random.key(4), karate, 0.5)
  w = np.asarray(out.edges["weight"])
  assert 0 < w.sum() < 156
  graphs, _ = synthetic_graphs.graph_families(5, num_graphs=5)
  batch = G.batch_and_pad(graphs, 256, 512, 8)
  out = augment.graphcl_drop_nodes(jax.random.key(5), batch, 0.25)
  removed = (np.asarray(batch.edges["weight"]) > 0) & (np.asarray(out.edges["weight"]) == 0)
  touched = np.zeros(256, bool)
  touched[np.asarray(batch.senders)[removed]] = True
  touched[np.asarray(batch.receivers)[removed]] = True
  # every dropped node lost all its edges: nodes adjacent to a removed edge include the dropped
  # ones; at most int(n_g / 4) dropped per graph, so per graph the touched set is bounded below.
  node_graph = np.asarray(G.node_graph_index(batch))
  for g, n in enumerate(np.asarray(batch.n_node[:5])):
    assert touched[node_graph == g].sum() >= int(n * 0.25)
  masked = augment.graphcl_mask_nodes(jax.random.key(6), batch, 0.2)
  changed = np.any(np.asarray(masked.nodes) != np.asarray(batch.nodes), axis=1)
  for g, n in enumerate(np.asarray(batch.n_node[:5])):
    assert changed[node_graph == g].sum() == int(n * 0.2)


def test_subgraph_official_quirk_vs_grow():
  # a path 0-1-2-...-19: the official quirk keeps at most the seed and its direct neighbours.
  src = np.arange(19)
  path = G.make_graph(np.ones((20, 1)), np.stack([np.r_[src, src + 1], np.r_[src + 1, src]]))
  run = jax.jit(jax.vmap(lambda k, grow: augment.graphcl_subgraph(k, path, 0.4, grow=grow),
                         in_axes=(0, None)), static_argnums=1)
  keys = jax.random.split(jax.random.key(9), 5)
  quirks, grown_all = run(keys, False), run(keys, True)
  for seed in range(5):
    quirk = jax.tree.map(lambda a, s=seed: a[s], quirks)
    grown = jax.tree.map(lambda a, s=seed: a[s], grown_all)
    assert np.asarray(quirk.edges["weight"]).sum() <= 4  # <= 3 nodes on a path
    assert np.asarray(grown.edges["weight"]).sum() == 2 * 8  # 9 connected nodes


def test_span_frobenius_equals_eigvalsh_and_gradients(karate):
  adj = augment.symmetric_adjacency(karate)
  assert np.allclose(adj, adj.T) and np.all(np.diag(adj) == 0) and float(adj.sum()) == 156
  norm = augment.normalized_adjacency(adj)
  e = jnp.linalg.eigvalsh(norm)
  np.testing.assert_allclose(jnp.linalg.norm(e), jnp.linalg.norm(norm), rtol=1e-5)


@pytest.fixture(scope="module")
def karate_span(karate):
  adj = augment.symmetric_adjacency(karate)
  run = jax.jit(lambda a, k: {kind: augment.span_probabilities(
      a, kind=kind, ratio=0.3, lr=100.0 if kind == "max" else 0.1, iterations=40,
      threshold=0.8, key=k) for kind in ("max", "min")})
  return adj, run(adj, jax.random.key(0))


def test_span_karate_behaviour(karate_span):
  """Spec 3.6: 'max' becomes removal of ~29 existing edges; 'min' spreads ~13 mostly additions."""
  adj, probs = karate_span
  adj = np.asarray(adj)
  upper = np.triu(np.ones_like(adj), 1) > 0
  p_max, p_min = np.asarray(probs["max"]), np.asarray(probs["min"])
  for p in (p_max, p_min):
    np.testing.assert_allclose(p, p.T)
    assert np.all(np.diag(p) == 0) and p.min() >= 0 and p.max() <= 1
  on_edges = p_max[upper & (adj > 0)].sum()
  assert 25 < on_edges < 31 and p_max[upper & (adj == 0)].sum() < 0.5
  additions = p_min[upper & (adj == 0)].sum()
  total = p_min[upper].sum()
  assert 11 < total < 15 and additions > 0.8 * total
  assert np.count_nonzero(p_min[upper]) > 300


def test_span_sample_validity(karate_span):
  adj, probs = karate_span
  views = jax.vmap(lambda k: augment.span_sample(k, adj, probs["min"]))(
      jax.random.split(jax.random.key(7), 200))
  v = np.asarray(views)
  assert set(np.unique(v)) <= {0.0, 1.0} and np.all(np.diagonal(v, axis1=1, axis2=2) == 0)
  flips = np.abs(v - np.asarray(adj)).sum((1, 2))
  assert abs(flips.mean() - 2 * np.triu(np.asarray(probs["min"]), 1).sum()) < 2.0
  assert np.any(v != np.swapaxes(v, 1, 2))  # official: asymmetric
  sym = np.asarray(augment.span_sample(jax.random.key(8), adj, probs["min"], symmetric=True))
  np.testing.assert_array_equal(sym, sym.T)
  graph = augment.dense_to_graph(v[0], jnp.ones((34, 1)))
  live = np.asarray(graph.edges["weight"]) > 0
  assert live.sum() == v[0].sum()
  assert np.all(v[0][np.asarray(graph.senders)[live], np.asarray(graph.receivers)[live]] == 1)


def test_span_rejects_bad_inputs():
  with pytest.raises(ValueError, match="adj"):
    augment.span_probabilities(jnp.zeros((3, 4)), key=jax.random.key(0))
  with pytest.raises(ValueError, match="kind"):
    augment.span_probabilities(jnp.zeros((3, 3)), kind="median", key=jax.random.key(0))
  with pytest.raises(ValueError, match="num_eigs"):
    augment.span_probabilities(jnp.zeros((3, 3)), kind="max-low", num_eigs=4,
                               key=jax.random.key(0))
  with pytest.raises(ValueError, match="key"):
    augment.span_probabilities(jnp.zeros((3, 3)))
  with pytest.raises(ValueError, match="symmetric"):
    augment.span_probabilities(jnp.triu(jnp.ones((3, 3)), 1), key=jax.random.key(0))
  with pytest.raises(ValueError, match="ratio"):
    augment.span_probabilities(jnp.zeros((3, 3)), ratio=1.5, key=jax.random.key(0))


def test_dense_to_graph_names_mismatched_features():
  with pytest.raises(ValueError, match=r"x: expected \(4, F\)"):
    augment.dense_to_graph(jnp.zeros((4, 4)), jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="adj"):
    augment.dense_to_graph(jnp.zeros((4, 3)), jnp.zeros((4, 2)))


def test_span_spectrum_distance_and_subset_kinds(karate):
  """The non-default SPAN objectives: valid budgeted probabilities; 'max-l2' moves the expected
  spectrum further than 'min-l2'; 'max-high' with one eigenvalue has no signal (the top eigenvalue
  of D^-1/2 (A+I) D^-1/2 is exactly 1), so its probabilities stay at the initial vector."""
  adj = augment.symmetric_adjacency(karate)
  n = adj.shape[0]
  init = jax.random.uniform(jax.random.key(3), (n * (n - 1) // 2,), minval=1e-5, maxval=1.0 / n)
  run = jax.jit(lambda a: {kind: augment.span_probabilities(
      a, kind=kind, ratio=0.3, lr=1.0, iterations=10, threshold=0.8, init=init, num_eigs=1)
      for kind in ("max-l2", "min-l2", "max-high")})
  probs = run(adj)
  e0 = jnp.linalg.eigvalsh(augment.normalized_adjacency(adj))
  flip = 1.0 - jnp.eye(n) - 2.0 * adj
  distance = {}
  for kind in ("max-l2", "min-l2"):
    p = np.asarray(probs[kind])
    np.testing.assert_array_equal(p, p.T)
    assert np.all(np.diag(p) == 0) and p.min() >= 0 and p.max() <= 1
    assert np.triu(p, 1).sum() <= int(0.3 * 78) + 0.05
    mean_field = augment.normalized_adjacency(adj + jnp.asarray(p) * flip)
    distance[kind] = float(jnp.linalg.norm(jnp.linalg.eigvalsh(mean_field) - e0))
  assert distance["max-l2"] > 2 * distance["min-l2"]
  rows, cols = np.tril_indices(n, -1)
  np.testing.assert_allclose(np.asarray(probs["max-high"])[rows, cols], init, atol=1e-4)
