"""Small real and synthetic graphs for smoke runs and tests (no downloads).

* :func:`karate_club` -- Zachary's karate club from networkx (34 nodes, 78 edges = 156 directed
  entries, identity features and the four community labels of PyG's ``KarateClub``).
* :func:`sbm_graph` -- a stochastic block model with class-correlated sparse bag-of-words features
  row-normalised to sum 1 (the stand-in for Planetoid data, spec graph_ssl.md section 5).
* :func:`graph_families` -- a graph-classification stand-in: two-community graphs (class 0) vs
  Erdos-Renyi graphs of the same mean degree (class 1), one-hot degree labels as node features.
* :func:`cycles_vs_trees` -- the graph-level smoke task (spec section 5's suggestion): cycles with
  random chords (class 0) vs preferential-attachment trees with the same number of extra random
  edges (class 1), constant node features (as TU sets without labels, e.g. IMDB-BINARY).

Real datasets are the TFDS builders in ``jspectral/data/builders`` (planetoid, amazon_coauthor, tu).
"""

from __future__ import annotations

import jraph
import numpy as np

from jspectral.data import graphs as G


def _undirected_edge_index(pairs: np.ndarray) -> np.ndarray:
  pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
  both = np.concatenate([pairs, pairs[:, ::-1]])
  both = np.unique(both[both[:, 0] != both[:, 1]], axis=0)
  return both.T


# PyG ``KarateClub``'s four communities (modularity-based, class sizes 13 / 12 / 4 / 5).
KARATE_COMMUNITIES = (1, 1, 1, 1, 3, 3, 3, 1, 0, 1, 3, 1, 1, 1, 0, 0, 3, 1, 0, 1, 0, 1, 0, 0, 2, 2,
                      0, 0, 2, 0, 0, 2, 0, 0)


def karate_club(labels: str = "communities") -> tuple[jraph.GraphsTuple, np.ndarray]:
  """Zachary's karate club (34 nodes, 78 edges = 156 directed entries), from networkx.

  Args:
    labels: ``"communities"`` (PyG ``KarateClub``'s four classes, the default) or ``"club"``
      (networkx's two clubs after the split, Mr. Hi = 0).

  Returns:
    ``(graph, labels)``: identity features ``(34, 34)`` and ``(34,)`` int labels.
  """
  import networkx as nx

  if labels not in ("communities", "club"):
    raise ValueError(f"labels: expected 'communities' or 'club', got {labels!r}")
  g = nx.karate_club_graph()
  edge_index = _undirected_edge_index(np.array(g.edges()))
  if labels == "club":
    y = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(34)])
  else:
    y = np.array(KARATE_COMMUNITIES)
  return G.make_graph(np.eye(34, dtype=np.float32), edge_index), y


def sbm_graph(seed: int = 0, *, num_classes: int = 4, nodes_per_class: int = 75,
              p_in: float = 0.08, p_out: float = 0.01, num_features: int = 100,
              words_per_node: int = 8, signal: float = 0.3) -> tuple[jraph.GraphsTuple, np.ndarray]:
  """A stochastic block model with weakly class-correlated bag-of-words features.

  Each node draws ``words_per_node`` words; a word comes from its class's vocabulary slice with
  probability ``signal`` and uniformly otherwise. Rows are normalised to sum 1 (NormalizeFeatures).

  Args:
    seed: NumPy seed.
    num_classes: ``K`` blocks.
    nodes_per_class: nodes per block.
    p_in: edge probability within a block.
    p_out: edge probability between blocks.
    num_features: vocabulary size ``F``.
    words_per_node: words drawn per node.
    signal: probability that a word comes from the node's class vocabulary.

  Returns:
    ``(graph, labels)``: features ``(N, F)``, ``N = K * nodes_per_class``, and ``(N,)`` labels.
  """
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(num_classes), nodes_per_class)
  n = labels.size
  prob = np.where(labels[:, None] == labels[None], p_in, p_out)
  upper = np.triu(rng.random((n, n)) < prob, 1)
  edge_index = _undirected_edge_index(np.argwhere(upper))
  vocab = np.array_split(np.arange(num_features), num_classes)
  x = np.zeros((n, num_features), np.float32)
  for i, c in enumerate(labels):
    own = rng.random(words_per_node) < signal
    words = np.where(own, rng.choice(vocab[c], words_per_node),
                     rng.integers(0, num_features, words_per_node))
    np.add.at(x[i], words, 1.0)
  x /= np.maximum(x.sum(1, keepdims=True), 1.0)
  return G.make_graph(x, edge_index), labels


def graph_families(seed: int = 0, *, num_graphs: int = 200, min_nodes: int = 12,
                   max_nodes: int = 24, mean_degree: float = 3.0, max_degree_label: int = 6
                   ) -> tuple[list[jraph.GraphsTuple], np.ndarray]:
  """Two-community graphs (label 0) vs Erdos-Renyi graphs (label 1) of equal mean degree.

  The classes differ in structure (clustering, bottleneck), not in size or degree statistics, so
  edge perturbations change the class signal.

  Args:
    seed: NumPy seed.
    num_graphs: number of graphs (alternating labels).
    min_nodes: smallest graph size.
    max_nodes: largest graph size.
    mean_degree: expected degree of both classes.
    max_degree_label: node features are one-hot ``min(degree, max_degree_label)``.

  Returns:
    ``(graphs, labels)``; every graph is a separate single-graph GraphsTuple with features
    ``(n, max_degree_label + 1)``; labels ``(num_graphs,)``.
  """
  rng = np.random.default_rng(seed)
  graphs, labels = [], []
  for k in range(num_graphs):
    n = int(rng.integers(min_nodes, max_nodes + 1))
    label = k % 2
    p = mean_degree / (n - 1)
    if label == 0:
      block = np.arange(n) < n // 2
      same = block[:, None] == block[None]
      p_in = mean_degree / (n / 2 - 1) * 0.9
      prob = np.where(same, p_in, (mean_degree - p_in * (n / 2 - 1)) / (n / 2))
    else:
      prob = np.full((n, n), p)
    upper = np.triu(rng.random((n, n)) < prob, 1)
    pairs = np.argwhere(upper)
    if pairs.size == 0:
      pairs = np.array([[0, 1]])
    edge_index = _undirected_edge_index(pairs)
    degree = np.bincount(edge_index[1], minlength=n)
    x = np.eye(max_degree_label + 1, dtype=np.float32)[np.minimum(degree, max_degree_label)]
    graphs.append(G.make_graph(x, edge_index))
    labels.append(label)
  return graphs, np.array(labels)


def cycles_vs_trees(seed: int = 0, *, num_graphs: int = 160, min_nodes: int = 12,
                    max_nodes: int = 24, extra_edge_fraction: float = 0.25
                    ) -> tuple[list[jraph.GraphsTuple], np.ndarray]:
  """Cycles with chords (label 0) vs preferential-attachment trees plus random edges (label 1).

  Both classes get ``int(extra_edge_fraction * n)`` extra random edges (chords of the cycle, or
  random pairs added to the tree), so edge counts overlap; the classes differ in degree
  distribution (hubs and leaves vs near-regular) and cycle structure. Node features are a
  constant ``(n, 1)`` one, so the class signal lives in the structure only.

  Args:
    seed: NumPy seed.
    num_graphs: number of graphs (alternating labels).
    min_nodes: smallest graph size.
    max_nodes: largest graph size.
    extra_edge_fraction: extra random edges per node.

  Returns:
    ``(graphs, labels)``; every graph is a separate single-graph GraphsTuple; labels
    ``(num_graphs,)``.
  """
  rng = np.random.default_rng(seed)
  graphs, labels = [], []
  for k in range(num_graphs):
    n = int(rng.integers(min_nodes, max_nodes + 1))
    label = k % 2
    extra = int(extra_edge_fraction * n)
    if label == 0:
      ring = np.arange(n)
      pairs = [np.stack([ring, (ring + 1) % n], 1)]
      start = rng.integers(0, n, extra)
      pairs.append(np.stack([start, (start + rng.integers(2, n - 1, extra)) % n], 1))
    else:
      degree, tree = np.zeros(n), []
      degree[0] = 1.0
      for v in range(1, n):  # attach v to an existing node with probability ~ degree
        u = int(rng.choice(v, p=degree[:v] / degree[:v].sum()))
        tree.append((u, v))
        degree[u] += 1.0
        degree[v] += 1.0
      pairs = [np.array(tree), rng.integers(0, n, (extra, 2))]
    edge_index = _undirected_edge_index(np.concatenate(pairs))
    graphs.append(G.make_graph(np.ones((n, 1), np.float32), edge_index))
    labels.append(label)
  return graphs, np.array(labels)


def graphcl_self_loops(graph: jraph.GraphsTuple) -> jraph.GraphsTuple:
  """GraphCL's off-by-one self loops: loops for nodes ``0 .. max(edge_index) - 1`` of one graph.

  (``unsupervised_TU/aug.py`` appends them before every augmentation; the highest-index node gets
  none.) For a single unpadded graph on the host.

  Args:
    graph: a single unpadded ``GraphsTuple``.

  Returns:
    The graph with the loops appended (weight 1).
  """
  senders, receivers = np.asarray(graph.senders), np.asarray(graph.receivers)
  top = int(max(senders.max(initial=0), receivers.max(initial=0)))
  loops = np.arange(top, dtype=np.int32)
  edge_index = np.stack([np.r_[senders, loops], np.r_[receivers, loops]])
  weight = np.r_[np.asarray(graph.edges["weight"]), np.ones(top, np.float32)]
  return G.make_graph(graph.nodes, edge_index, edge_weight=weight)
