"""TU graph-classification collections (MUTAG, PROTEINS, NCI1, IMDB-BINARY, ...) in TU text format.

Morris et al., "TUDataset: A collection of benchmark datasets for learning with graphs" (2020),
chrsmrrs.github.io/datasets. Files ``<DS>_A.txt`` ("i, j" 1-based node ids per line, both
directions), ``<DS>_graph_indicator.txt`` (1-based graph id per node), ``<DS>_graph_labels.txt``,
optional ``<DS>_node_labels.txt`` (ints). As PyG's ``TUDataset``: node labels one-hot (offset by
their minimum), self loops removed and duplicate edges merged; graph labels remapped to
``0 .. C-1`` in sorted order (MUTAG's -1/1 -> 0/1); graphs without node labels get one constant
feature (GraphCL's choice for IMDB/REDDIT/COLLAB). One record per graph, node ids local.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import graph_files
from jspectral.data import graphs as G
from jspectral.data import tfds as tfds_lib

NAMES = ("MUTAG", "PROTEINS", "NCI1", "PTC_MR", "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY",
         "COLLAB", "DD")


class TU(tfds_lib.ManualBuilder):
  """TU graph collections, one record per graph."""

  BUILDER_CONFIGS = [tfds_lib.ManualConfig(name=n, files=(f"{n}_A.txt", f"{n}_graph_indicator.txt",
                                                          f"{n}_graph_labels.txt"))
                     for n in NAMES]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Unzip <DS>.zip from https://www.chrsmrrs.com/graphkerneldatasets/ and copy its text files
  (<DS>_A.txt, <DS>_graph_indicator.txt, <DS>_graph_labels.txt and, if present,
  <DS>_node_labels.txt) into the manual directory ($JSPECTRAL_MANUAL_DIR/tu).
  """

  def _features(self):
    return tfds.features.FeaturesDict({
        "index": tfds.features.Scalar(np.int64),
        "x": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
        "edge_index": tfds.features.Tensor(shape=(2, None), dtype=np.int64),
        "label": tfds.features.Scalar(np.int64),
    })

  def _split_names(self):
    return ("train",)

  def _generate_examples(self, split: str, manual_dir: pathlib.Path):
    yield from enumerate(read_tu(manual_dir, self.builder_config.name))


def _ints(path: pathlib.Path) -> np.ndarray:
  return np.loadtxt(path, dtype=np.int64, delimiter=",", ndmin=2)


def read_tu(manual_dir, name: str) -> list[dict]:
  """Every graph of ``name`` as a record dict (see module docstring).

  Args:
    manual_dir: the directory holding the ``<name>_*.txt`` files.
    name: the collection (e.g. ``"MUTAG"``).

  Returns:
    Records ``{"index", "x": (n, F) float32, "edge_index": (2, e) int64, "label": int}``, node ids
    local to each graph.
  """
  manual_dir = pathlib.Path(manual_dir)
  edges = _ints(manual_dir / f"{name}_A.txt") - 1
  if edges.shape[1] != 2:
    raise ValueError(f"{name}_A.txt: expected 'i, j' per line, got {edges.shape[1]} columns")
  indicator = _ints(manual_dir / f"{name}_graph_indicator.txt")[:, 0] - 1
  graph_labels = _ints(manual_dir / f"{name}_graph_labels.txt")[:, 0]
  _, graph_labels = np.unique(graph_labels, return_inverse=True)
  node_label_path = manual_dir / f"{name}_node_labels.txt"
  if node_label_path.is_file():
    node_labels = _ints(node_label_path)[:, 0]
    node_labels = node_labels - node_labels.min()
    x = np.eye(node_labels.max() + 1, dtype=np.float32)[node_labels]
  else:
    x = np.ones((indicator.size, 1), np.float32)
  num_graphs = graph_labels.size
  if indicator.max() + 1 != num_graphs:
    raise ValueError(f"{name}_graph_indicator.txt: {indicator.max() + 1} graphs but "
                     f"{num_graphs} graph labels")
  start = np.searchsorted(indicator, np.arange(num_graphs))
  edge_graph = indicator[edges[:, 0]]
  records = []
  for g in range(num_graphs):
    nodes = np.flatnonzero(indicator == g)
    local = edges[edge_graph == g] - start[g]
    edge_index = graph_files.coalesce(local.T, nodes.size, undirected=False)
    records.append({"index": g, "x": x[nodes], "edge_index": edge_index,
                    "label": int(graph_labels[g])})
  return records


def load(name: str, data_dir=None, manual_dir=None):
  """Every graph of a TU collection, in file order.

  Args:
    name: the collection (e.g. ``"MUTAG"``).
    data_dir: TFDS data directory for the prepared records.
    manual_dir: where the publisher's files are (default ``manual_root()/<builder>``).

  Returns:
    ``(graphs, labels)``: single-graph ``GraphsTuple`` s and ``(G,)`` labels.
  """
  builder = tfds_lib.prepare(TU, config=name, manual_dir=manual_dir, data_dir=data_dir)
  recs = graph_files.records(builder)
  graphs = [G.make_graph(np.asarray(r["x"]), np.asarray(r["edge_index"])) for r in recs]
  return graphs, np.array([int(r["label"]) for r in recs])
