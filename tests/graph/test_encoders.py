"""Encoders: parameter counts, GCN = dense formula, padding invariance, static shapes, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from jspectral import models
from jspectral.data import graphs as G
from jspectral.data import synthetic_graphs
from jspectral.graph import encoders, losses

COUNTS = {  # spec graph_ssl.md section 2 (official PyTorch modules)
    "grace_cora": 433_024, "grace_citeseer": 2_159_361, "grace_pubmed": 519_424,
    "grace_dblp": 1_102_592, "pygcl_grace_cora": 49_056, "graphcl_mutag": 24_352,
    "graphcl_mutag_l5": 61_600, "graphcl_proteins": 24_224, "graphcl_nci1": 25_312,
    "graphcl_imdb_binary": 24_160, "pygcl_graphcl_mutag": 11_872, "mvgrl_node_cora": 2_257_408,
    "bgrl_cora": 566_019, "gbt_cora": 866_561,
    # GCL-SPAN unsupervised_graph.py Encoder(GConv x2, FC(512), FC(1024 -> 512)), counted in torch
    "mvgrl_graph_mutag": 3_160_064, "mvgrl_graph_imdb_binary": 3_153_920,
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(name):
  assert models.param_count_of(name) == COUNTS[name]


def _random_graph(rng, n, e, f=5):
  edge_index = rng.integers(0, n, (2, e))
  return G.make_graph(rng.normal(size=(n, f)).astype(np.float32), edge_index)


def test_gcn_equals_dense_formula_on_asymmetric_edges():
  rng = np.random.default_rng(0)
  graph = _random_graph(rng, 12, 40)  # random directed multigraph with self loops
  weight = (rng.random(40) > 0.3).astype(np.float32)  # some edges dropped
  graph = graph._replace(edges={**graph.edges, "weight": weight})
  conv = encoders.GCNConv(3)
  variables = conv.init(jax.random.key(0), graph.nodes, graph)
  variables = jax.tree.map(lambda v: v + 0.1, variables)  # non-zero bias
  out = conv.apply(variables, graph.nodes, graph)
  a = np.zeros((12, 12))
  for s, r, w in zip(graph.senders, graph.receivers, weight, strict=True):
    if s != r:
      a[r, s] += w
  a_hat = a + np.eye(12)
  d = a_hat.sum(1)  # in-degree + 1
  dense = np.diag(d**-0.5) @ a_hat @ np.diag(d**-0.5) @ (
      graph.nodes @ np.asarray(variables["params"]["lin"]["kernel"]))
  dense += np.asarray(variables["params"]["bias"])
  np.testing.assert_allclose(out, dense, rtol=1e-5, atol=1e-6)
  # jraph.GraphConvolution normalises senders by out-degree: different on this graph.
  assert not np.allclose(a.sum(0), a.sum(1))


@pytest.fixture(scope="module")
def grace_setup():
  graph, _ = synthetic_graphs.karate_club()
  model = encoders.GRACE(8, 8)
  params = jax.jit(model.init)(jax.random.key(0), graph)
  return graph, model, params


def test_padding_invariance_node_level(grace_setup):
  graph, model, params = grace_setup
  apply = jax.jit(model.apply)  # one compilation per shape, not one per operation
  z, h = apply(params, graph)
  padded = G.pad_graph(graph, 40, 200, 3)
  zp, hp = apply(params, padded)
  mask = np.asarray(G.node_mask(padded))
  np.testing.assert_allclose(zp[mask], z, rtol=1e-5, atol=1e-6)
  loss = losses.grace_infonce(h, 2 * h[::-1], 0.5)
  loss_p = losses.grace_infonce(hp, 2 * jnp.concatenate([h[::-1], hp[34:]]), 0.5, mask=mask)
  np.testing.assert_allclose(loss_p, loss, rtol=1e-5)


def test_no_recompilation_and_padding_invariance_graph_level():
  graphs, _ = synthetic_graphs.graph_families(1, num_graphs=12)
  model = encoders.GraphCL(8, 2)
  batches = [G.batch_and_pad(graphs[i:j], 256, 512, 8) for i, j in ((0, 3), (3, 10), (10, 12))]
  variables = model.init(jax.random.key(0), batches[0], train=False)
  traces = []

  @jax.jit
  def embed(graph):
    traces.append(1)
    return model.apply(variables, graph, False)[0]

  outs = [embed(b) for b in batches]
  assert len(traces) == 1  # one compilation for batches of 3, 7 and 2 graphs
  # Real graphs' embeddings equal their unpadded values; padding graphs contribute nothing.
  single = model.apply(variables, jraph.batch(graphs[3:10])._replace(globals=None), False)[0]
  np.testing.assert_allclose(outs[1][:7], single, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(outs[1][7:], 0.0)
  # Train-mode BatchNorm statistics exclude padding nodes.
  _, upd = model.apply(variables, batches[1], True, mutable=["batch_stats"])
  _, ref = model.apply(variables, jraph.batch(graphs[3:10])._replace(globals=None), True,
                       mutable=["batch_stats"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), upd, ref)


def test_collate_padded_matches_batch_and_pad():
  graphs, _ = synthetic_graphs.graph_families(2, num_graphs=4)
  examples = [G.to_padded_example(g, 30, 120) for g in graphs]
  stacked = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  collated = jax.jit(G.collate_padded)(stacked)
  model = encoders.GraphCL(8, 2)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), collated)
  embed = jax.jit(lambda g: model.apply(variables, g, False)[0])
  ref = embed(jraph.batch(graphs)._replace(globals=None))
  np.testing.assert_allclose(embed(collated)[:4], ref, rtol=1e-5, atol=1e-5)
  assert collated.nodes.shape[0] == 120 and collated.n_node.shape == (5,)
  # a batch without any padding row keeps every index in range
  full = [G.to_padded_example(g, int(g.n_node[0]), int(g.n_edge[0]) + 3) for g in graphs[:1]]
  tight = G.collate_padded({k: np.stack([e[k] for e in full]) for k in full[0]})
  G.check_graph(tight)


@pytest.mark.parametrize("field, mutate", [
    ("senders", lambda g: g._replace(senders=g.senders + 100)),
    ("receivers", lambda g: g._replace(receivers=-g.receivers - 1)),
    ("nodes", lambda g: g._replace(nodes=g.nodes[:-1])),
    ("n_node", lambda g: g._replace(n_node=np.array([0]), nodes=g.nodes[:0])),
    ("n_edge", lambda g: g._replace(n_edge=g.n_edge + 1)),
    ("edges", lambda g: g._replace(edges={"weight": g.edges["weight"][:-1]})),
])
def test_malformed_graphs_raise_naming_the_field(field, mutate):
  graph, _ = synthetic_graphs.karate_club()
  with pytest.raises(ValueError, match=field):
    G.check_graph(mutate(graph))


def test_encoders_validate_their_input(grace_setup):
  graph, model, params = grace_setup
  with pytest.raises(ValueError, match="receivers"):
    model.apply(params, graph._replace(receivers=graph.receivers + 34))


def test_make_graph_rejects_bad_edge_index():
  with pytest.raises(ValueError, match="edge_index"):
    G.make_graph(np.zeros((3, 2)), np.zeros((3, 4), int))
  with pytest.raises(ValueError, match="senders"):
    G.make_graph(np.zeros((3, 2)), np.array([[0, 5], [1, 2]]))


def test_rrelu_activation_is_torch_functional_rrelu_in_eval_mode():
  # GCA's 'rrelu' is F.rrelu called as a function (training=False): leaky ReLU of slope 11/48.
  graph, _ = synthetic_graphs.karate_club()
  enc = encoders.GRACEEncoder(4, activation="rrelu")
  params = enc.init(jax.random.key(0), graph)["params"]
  z = enc.apply({"params": params}, graph)
  act = functools.partial(jax.nn.leaky_relu, negative_slope=(1 / 8 + 1 / 3) / 2)
  h = act(encoders.GCNConv(8).apply({"params": params["conv_0"]}, graph.nodes, graph))
  expected = act(encoders.GCNConv(4).apply({"params": params["conv_1"]}, h, graph))
  np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-7)
  assert np.any(np.asarray(z) < 0)
