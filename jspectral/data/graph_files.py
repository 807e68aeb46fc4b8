"""What the graph TFDS builders (Planetoid, Amazon/Coauthor, TU) share beyond
:mod:`jspectral.data.tfds`: PyG-style edge coalescing, ``NormalizeFeatures``, and reading records
back in file order."""

from __future__ import annotations

import numpy as np


def records(builder, split: str = "train") -> list[dict]:
  """Every record of ``split`` (``as_data_source``), sorted by its ``index`` field.

  Args:
    builder: a prepared graph TFDS builder.
    split: split name.

  Returns:
    The records (dicts of NumPy arrays) in file order.
  """
  source = builder.as_data_source(split)
  items = [source[i] for i in range(len(source))]
  return sorted(items, key=lambda r: int(r["index"]))


def normalize_features(x: np.ndarray) -> np.ndarray:
  """PyG ``NormalizeFeatures``: rows divided by their sum; all-zero rows stay zero.

  Args:
    x: node features ``(N, F)``.

  Returns:
    ``(N, F)`` float32.
  """
  total = x.sum(1, keepdims=True)
  return (x / np.where(total == 0, 1.0, total)).astype(np.float32)


def coalesce(edge_index: np.ndarray, num_nodes: int, *, undirected: bool = True,
             remove_self_loops: bool = True) -> np.ndarray:
  """Sorted unique edges, both directions stored if ``undirected``.

  Args:
    edge_index: ``(2, E)`` int (anything reshapeable to it).
    num_nodes: ``N``.
    undirected: add the reverse of every edge.
    remove_self_loops: drop ``i -> i`` edges.

  Returns:
    ``(2, E')`` int64, sorted by source then target.
  """
  edge_index = np.asarray(edge_index, np.int64).reshape(2, -1)
  if undirected:
    edge_index = np.concatenate([edge_index, edge_index[::-1]], axis=1)
  if remove_self_loops:
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
  keys = np.unique(edge_index[0] * num_nodes + edge_index[1])
  return np.stack([keys // num_nodes, keys % num_nodes])
