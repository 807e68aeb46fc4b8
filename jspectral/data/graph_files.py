"""What the graph TFDS builders (Planetoid, Amazon/Coauthor, TU) share beyond
:mod:`jspectral.data.tfds`: PyG-style edge coalescing, ``NormalizeFeatures``, and reading records
back in file order."""

from __future__ import annotations

import numpy as np


def records(builder, split: str = "train") -> list[dict]:
  """Every record of ``split`` (``as_data_source``), sorted by its ``index`` field."""
  source = builder.as_data_source(split)
  items = [source[i] for i in range(len(source))]
  return sorted(items, key=lambda r: int(r["index"]))


def normalize_features(x: np.ndarray) -> np.ndarray:
  """PyG ``NormalizeFeatures``: rows divided by their sum; all-zero rows stay zero."""
  total = x.sum(1, keepdims=True)
  return (x / np.where(total == 0, 1.0, total)).astype(np.float32)


def coalesce(edge_index: np.ndarray, num_nodes: int, *, undirected: bool = True,
             remove_self_loops: bool = True) -> np.ndarray:
  """Sorted unique ``(2, E)`` edges, both directions stored if ``undirected``."""
  edge_index = np.asarray(edge_index, np.int64).reshape(2, -1)
  if undirected:
    edge_index = np.concatenate([edge_index, edge_index[::-1]], axis=1)
  if remove_self_loops:
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
  keys = np.unique(edge_index[0] * num_nodes + edge_index[1])
  return np.stack([keys // num_nodes, keys % num_nodes])
