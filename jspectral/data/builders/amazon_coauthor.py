"""Amazon (Computers, Photo), Coauthor (CS, Physics) and CitationFull DBLP graphs (``.npz``).

Shchur et al., "Pitfalls of Graph Neural Network Evaluation" (2018),
github.com/shchur/gnn-benchmark: one ``.npz`` per graph with CSR arrays ``adj_data``,
``adj_indices``, ``adj_indptr``, ``adj_shape``, ``attr_*`` and ``labels``. DBLP (Bojchevski and
Günnemann, "Deep Gaussian Embedding of Graphs", ICLR 2018; github.com/abojchevski/graph2gauss
``data/dblp.npz``, PyG's ``CitationFull('dblp')``, GRACE's DBLP) uses the same layout. Read as
PyG's ``Amazon``/``Coauthor``/``CitationFull`` read them (one ``read_npz``): features binarised
(``x > 0 -> 1``), self loops removed, edges made undirected (both directions stored, duplicates
merged). One record per graph.
"""

from __future__ import annotations

import pathlib

import numpy as np
import scipy.sparse as sp
import tensorflow_datasets as tfds

from jspectral.data import graph_files
from jspectral.data import graphs as G
from jspectral.data import tfds as tfds_lib

FILES = {"computers": "amazon_electronics_computers.npz", "photo": "amazon_electronics_photo.npz",
         "cs": "ms_academic_cs.npz", "physics": "ms_academic_phy.npz", "dblp": "dblp.npz"}


class AmazonCoauthor(tfds_lib.ManualBuilder):
  """Amazon-Computers/Photo, Coauthor-CS/Physics and DBLP, one record per graph."""

  BUILDER_CONFIGS = [tfds_lib.ManualConfig(name=n, files=(f,)) for n, f in FILES.items()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Copy amazon_electronics_computers.npz, amazon_electronics_photo.npz, ms_academic_cs.npz or
  ms_academic_phy.npz (github.com/shchur/gnn-benchmark/tree/master/data/npz), or dblp.npz
  (github.com/abojchevski/graph2gauss/tree/master/data) into the manual directory
  ($JSPECTRAL_MANUAL_DIR/amazon_coauthor).
  """

  def _features(self):
    return tfds.features.FeaturesDict({
        "index": tfds.features.Scalar(np.int64),
        "x": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
        "edge_index": tfds.features.Tensor(shape=(2, None), dtype=np.int64),
        "y": tfds.features.Tensor(shape=(None,), dtype=np.int64),
    })

  def _split_names(self):
    return ("train",)

  def _generate_examples(self, split: str, manual_dir: pathlib.Path):
    yield 0, read_npz(manual_dir / FILES[self.builder_config.name])


def read_npz(path) -> dict:
  """One gnn-benchmark ``.npz`` -> record dict.

  Features are binarised; edges are coalesced (undirected, no self loops).

  Args:
    path: the ``.npz`` file.

  Returns:
    ``{"index": 0, "x": (N, F) float32, "edge_index": (2, E) int64, "y": (N,) int64}``.
  """
  with np.load(path, allow_pickle=True) as f:
    for key in ("adj_data", "adj_indices", "adj_indptr", "adj_shape", "attr_data",
                "attr_indices", "attr_indptr", "attr_shape", "labels"):
      if key not in f:
        raise ValueError(f"{path}: missing array {key!r}")
    x = sp.csr_matrix((f["attr_data"], f["attr_indices"], f["attr_indptr"]),
                      shape=tuple(f["attr_shape"])).toarray().astype(np.float32)
    adj = sp.csr_matrix((f["adj_data"], f["adj_indices"], f["adj_indptr"]),
                        shape=tuple(f["adj_shape"])).tocoo()
    labels = np.asarray(f["labels"], np.int64)
  x[x > 0] = 1.0
  edge_index = graph_files.coalesce(np.stack([adj.row, adj.col]), x.shape[0])
  return {"index": 0, "x": x, "edge_index": edge_index, "y": labels}


def load(name: str, data_dir=None, manual_dir=None):
  """``(graph, labels)`` with row-normalised features (the SSL scripts use NormalizeFeatures).

  Args:
    name: configuration name (``"computers"``, ``"photo"``, ``"cs"``, ``"physics"``, ``"dblp"``).
    data_dir: TFDS data directory for the prepared records.
    manual_dir: where the publisher's files are (default ``manual_root()/<builder>``).

  Returns:
    ``(graph, labels)``: a ``GraphsTuple`` with ``(N, F)`` features and ``(N,)`` labels.
  """
  builder = tfds_lib.prepare(AmazonCoauthor, config=name, manual_dir=manual_dir, data_dir=data_dir)
  record = graph_files.records(builder)[0]
  graph = G.make_graph(graph_files.normalize_features(np.asarray(record["x"])),
                       record["edge_index"])
  return graph, np.asarray(record["y"])
