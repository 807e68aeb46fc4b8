"""Planetoid citation graphs (Cora, CiteSeer, PubMed) from their raw ``ind.<name>.*`` files.

Yang, Cohen, Salakhutdinov, "Revisiting Semi-Supervised Learning with Graph Embeddings" (ICML
2016), github.com/kimiyoung/planetoid. The files are read as PyG's ``Planetoid`` reads them:
``x``/``tx``/``allx`` scipy sparse feature matrices, ``y``/``ty``/``ally`` one-hot labels,
``graph`` an adjacency-list dict, ``test.index`` the test node ids; features = ``allx`` then ``tx``
with the test rows put back at their sorted index (CiteSeer's isolated test nodes get zero rows);
self loops removed and duplicate edges merged; masks: the first ``len(y)`` nodes train, the next
500 validation, ``test.index`` test. One record holds the whole graph (PyG edge_index layout).
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import graph_files
from jspectral.data import graphs as G
from jspectral.data import tfds as tfds_lib

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


class Planetoid(tfds_lib.ManualBuilder):
  """Planetoid citation graphs (Cora, CiteSeer, PubMed), one record per graph."""

  BUILDER_CONFIGS = [tfds_lib.ManualConfig(name=n, files=tuple(f"ind.{n}.{p}" for p in PARTS))
                     for n in ("cora", "citeseer", "pubmed")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Copy the raw Planetoid files ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index} (from
  github.com/kimiyoung/planetoid/tree/master/data) into the manual directory
  ($JSPECTRAL_MANUAL_DIR/planetoid or ~/tensorflow_datasets/downloads/manual/planetoid).
  """

  def _features(self):
    return tfds.features.FeaturesDict({
        "index": tfds.features.Scalar(np.int64),
        "x": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
        "edge_index": tfds.features.Tensor(shape=(2, None), dtype=np.int64),
        "y": tfds.features.Tensor(shape=(None,), dtype=np.int64),
        "train_mask": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
        "val_mask": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
        "test_mask": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
    })

  def _split_names(self):
    return ("train",)

  def _generate_examples(self, split: str, manual_dir: pathlib.Path):
    yield 0, read_planetoid(manual_dir, self.builder_config.name)


def _unpickle(path: pathlib.Path):
  with open(path, "rb") as f:
    return pickle.load(f, encoding="latin1")


def _dense(m) -> np.ndarray:
  return np.asarray(m.todense() if hasattr(m, "todense") else m, np.float32)


def read_planetoid(manual_dir, name: str) -> dict:
  """The raw files of ``name`` -> one record dict (see module docstring).

  Args:
    manual_dir: the directory holding ``ind.<name>.*``.
    name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.

  Returns:
    ``{"index": 0, "x": (N, F) float32, "edge_index": (2, E) int64, "y": (N,) int64,
    "train_mask"/"val_mask"/"test_mask": (N,) bool}``.
  """
  manual_dir = pathlib.Path(manual_dir)
  raw = {p: _unpickle(manual_dir / f"ind.{name}.{p}") for p in PARTS if p != "test.index"}
  test_index = np.loadtxt(manual_dir / f"ind.{name}.test.index", dtype=np.int64).reshape(-1)
  sorted_test = np.sort(test_index)
  tx, ty = _dense(raw["tx"]), np.asarray(raw["ty"])
  if name == "citeseer":  # isolated test nodes missing from tx/ty: zero rows
    span = sorted_test.max() - sorted_test.min() + 1
    tx_ext = np.zeros((span, tx.shape[1]), np.float32)
    ty_ext = np.zeros((span, ty.shape[1]), ty.dtype)
    tx_ext[sorted_test - sorted_test.min()], ty_ext[sorted_test - sorted_test.min()] = tx, ty
    tx, ty = tx_ext, ty_ext
  x = np.concatenate([_dense(raw["allx"]), tx])
  y = np.concatenate([np.asarray(raw["ally"]), ty]).argmax(1)
  x[test_index], y[test_index] = x[sorted_test], y[sorted_test]
  n = x.shape[0]
  rows = [k for k, v in raw["graph"].items() for _ in v]
  cols = [c for v in raw["graph"].values() for c in v]
  edge_index = graph_files.coalesce(np.array([rows, cols]), n, undirected=False)
  n_train = np.asarray(raw["y"]).shape[0]
  masks = {k: np.zeros(n, bool) for k in ("train_mask", "val_mask", "test_mask")}
  masks["train_mask"][:n_train] = True
  masks["val_mask"][n_train:n_train + 500] = True
  masks["test_mask"][test_index] = True
  return {"index": 0, "x": x, "edge_index": edge_index, "y": y.astype(np.int64), **masks}


def load(name: str, data_dir=None, manual_dir=None):
  """``(graph, labels)`` for the experiments: features row-normalised (NormalizeFeatures).

  Args:
    name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.
    data_dir: TFDS data directory for the prepared records.
    manual_dir: where the publisher's files are (default ``manual_root()/<builder>``).

  Returns:
    ``(graph, labels)``: a ``GraphsTuple`` with ``(N, F)`` features and ``(N,)`` labels.
  """
  builder = tfds_lib.prepare(Planetoid, config=name, manual_dir=manual_dir, data_dir=data_dir)
  record = graph_files.records(builder)[0]
  graph = G.make_graph(graph_files.normalize_features(np.asarray(record["x"])),
                       record["edge_index"])
  return graph, np.asarray(record["y"])
