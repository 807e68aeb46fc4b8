"""Writers of graph datasets in their real on-disk formats (Planetoid pickles, TU text files).

Shared by the graph builder tests and the graph-SSL paper dry runs; each writes what the
publisher ships, so the TFDS builders read it through their real code path.
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import scipy.sparse as sp


def write_planetoid(manual_dir: pathlib.Path, name: str, x: np.ndarray, labels: np.ndarray,
                    edges: np.ndarray, *, num_train: int, num_test: int, seed: int = 0) -> None:
  """Planetoid's ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}`` (kimiyoung/planetoid).

  The last ``num_test`` nodes are the test nodes, listed in ``test.index`` in a shuffled order
  (``tx`` / ``ty`` rows follow that order, as in the real files); ``allx`` / ``ally`` hold the
  other nodes, ``x`` / ``y`` their first ``num_train``; ``graph`` is an adjacency-list dict.

  Args:
    manual_dir: the directory to write to (created).
    name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.
    x: ``(N, F)`` features (stored as scipy CSR matrices).
    labels: ``(N,)`` int labels (stored one-hot).
    edges: ``(2, E)`` node pairs (both directions are written into the adjacency lists).
    num_train: labelled training nodes at the front.
    num_test: test nodes at the end.
    seed: seed of the ``test.index`` order.
  """
  manual_dir = pathlib.Path(manual_dir)
  manual_dir.mkdir(parents=True, exist_ok=True)
  n = x.shape[0]
  onehot = np.eye(int(labels.max()) + 1)[labels]
  test_index = np.random.default_rng(seed).permutation(np.arange(n - num_test, n))
  graph = {i: [] for i in range(n)}
  for a, b in edges.T.tolist():
    graph[a].append(b)
    graph[b].append(a)
  parts = {"x": sp.csr_matrix(x[:num_train]), "y": onehot[:num_train],
           "tx": sp.csr_matrix(x[test_index]), "ty": onehot[test_index],
           "allx": sp.csr_matrix(x[:n - num_test]), "ally": onehot[:n - num_test],
           "graph": graph}
  for key, value in parts.items():
    with open(manual_dir / f"ind.{name}.{key}", "wb") as fh:
      pickle.dump(value, fh)
  (manual_dir / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in test_index))


def write_tu(manual_dir: pathlib.Path, name: str, graphs: list[tuple[np.ndarray, np.ndarray]],
             graph_labels: np.ndarray) -> None:
  """TU benchmark text files: ``<name>_A.txt`` (1-based ``i, j``, both directions),
  ``_graph_indicator.txt``, ``_graph_labels.txt`` and ``_node_labels.txt``.

  Args:
    manual_dir: the directory to write to (created).
    name: the dataset name (file prefix), e.g. ``"MUTAG"``.
    graphs: per graph ``(edges (2, e) undirected pairs, node_labels (n,))`` in local ids.
    graph_labels: ``(G,)`` labels as the file stores them (MUTAG: -1 / 1).
  """
  manual_dir = pathlib.Path(manual_dir)
  manual_dir.mkdir(parents=True, exist_ok=True)
  lines, indicator, node_labels, offset = [], [], [], 0
  for g, (edges, labels) in enumerate(graphs):
    for a, b in edges.T.tolist():
      lines += [f"{a + offset + 1}, {b + offset + 1}", f"{b + offset + 1}, {a + offset + 1}"]
    indicator += [str(g + 1)] * len(labels)
    node_labels += [str(int(v)) for v in labels]
    offset += len(labels)
  files = {"A": lines, "graph_indicator": indicator, "node_labels": node_labels,
           "graph_labels": [str(int(v)) for v in graph_labels]}
  for key, rows in files.items():
    (manual_dir / f"{name}_{key}.txt").write_text("\n".join(rows) + "\n")


def planetoid_like(num_nodes: int, num_features: int, num_classes: int, *, degree: float = 4.0,
                   homophily: float = 0.8, words: int = 18, seed: int = 0):
  """A citation-like graph: homophilous edges, class-correlated sparse binary bag-of-words.

  Args:
    num_nodes: ``N``.
    num_features: vocabulary size ``F``.
    num_classes: ``C``.
    degree: mean undirected degree.
    homophily: probability that an edge joins two nodes of one class.
    words: words per node (half from its class's slice of the vocabulary).
    seed: NumPy seed.

  Returns:
    ``(x (N, F) float32 0/1, labels (N,), edges (2, E) undirected pairs)``.
  """
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, num_nodes)
  by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
  num_edges = int(degree * num_nodes / 2)
  src = rng.integers(0, num_nodes, num_edges)
  same = rng.random(num_edges) < homophily
  dst = np.where(same, [rng.choice(by_class[labels[s]]) for s in src],
                 rng.integers(0, num_nodes, num_edges))
  keep = src != dst
  edges = np.stack([src[keep], dst[keep]])
  x = np.zeros((num_nodes, num_features), np.float32)
  width = num_features // num_classes
  for i, c in enumerate(labels):
    own = rng.integers(c * width, (c + 1) * width, words // 2)
    x[i, np.r_[own, rng.integers(0, num_features, words - words // 2)]] = 1.0
  return x, labels, edges
