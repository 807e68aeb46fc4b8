"""Graph TFDS builders on tiny files written in the real on-disk formats."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from jspectral.data.builders import amazon_coauthor, planetoid, tu


def test_planetoid_raw_pickles(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  f, c = 5, 3
  rng = np.random.default_rng(0)
  allx = sp.csr_matrix(rng.integers(0, 2, (6, f)).astype(np.float32))  # nodes 0..5
  ally = np.eye(c)[[0, 1, 2, 0, 1, 2]]
  tx = sp.csr_matrix(rng.integers(0, 2, (2, f)).astype(np.float32))  # test nodes 7, 6 (unsorted)
  ty = np.eye(c)[[1, 2]]
  graph = {0: [1, 2], 1: [0], 2: [0, 2], 3: [4], 4: [3, 3], 5: [6], 6: [5, 7], 7: [6]}
  parts = {"x": allx[:2], "y": ally[:2], "tx": tx, "ty": ty, "allx": allx, "ally": ally,
           "graph": graph}
  for key, value in parts.items():
    with open(manual / f"ind.cora.{key}", "wb") as fh:
      pickle.dump(value, fh)
  (manual / "ind.cora.test.index").write_text("7\n6\n")
  g, labels = planetoid.load("cora", data_dir=tmp_path / "data", manual_dir=manual)
  record = planetoid.read_planetoid(manual, "cora")
  assert g.nodes.shape == (8, f)
  # tx row k belongs to node test.index[k] (PyG's sorted-index reordering)
  np.testing.assert_array_equal(record["x"][7], tx.toarray()[0])
  np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2, 2, 1])
  pairs = set(zip(*record["edge_index"].tolist(), strict=True))
  assert (2, 2) not in pairs and sum(1 for p in pairs if p == (4, 3)) == 1  # loops, duplicates
  assert record["train_mask"].sum() == 2 and record["test_mask"][[6, 7]].all()
  np.testing.assert_allclose(np.asarray(g.nodes).sum(1)[np.asarray(record["x"]).sum(1) > 0], 1.0)
  with pytest.raises(FileNotFoundError, match="ind.citeseer"):
    planetoid.load("citeseer", data_dir=tmp_path / "data", manual_dir=manual)


def test_amazon_npz(tmp_path):
  adj = sp.csr_matrix(np.array([[0, 1, 0], [0, 1, 1], [0, 0, 0]], np.float32))
  attr = sp.csr_matrix(np.array([[2, 0], [0, 0], [1, 3]], np.float32))
  np.savez(tmp_path / "amazon_electronics_photo.npz", adj_data=adj.data, adj_indices=adj.indices,
           adj_indptr=adj.indptr, adj_shape=adj.shape, attr_data=attr.data,
           attr_indices=attr.indices, attr_indptr=attr.indptr, attr_shape=attr.shape,
           labels=np.array([0, 1, 1]))
  g, labels = amazon_coauthor.load("photo", data_dir=tmp_path / "data", manual_dir=tmp_path)
  record = amazon_coauthor.read_npz(tmp_path / "amazon_electronics_photo.npz")
  np.testing.assert_array_equal(record["x"], [[1, 0], [0, 0], [1, 1]])
  np.testing.assert_array_equal(record["edge_index"], [[0, 1, 1, 2], [1, 0, 2, 1]])
  np.testing.assert_allclose(np.asarray(g.nodes), [[1, 0], [0, 0], [0.5, 0.5]])
  np.testing.assert_array_equal(labels, [0, 1, 1])
  shutil.copy(tmp_path / "amazon_electronics_photo.npz", tmp_path / "dblp.npz")  # graph2gauss
  g_dblp, _ = amazon_coauthor.load("dblp", data_dir=tmp_path / "data", manual_dir=tmp_path)
  np.testing.assert_array_equal(np.asarray(g_dblp.senders), np.asarray(g.senders))


def test_tu_text_format(tmp_path):
  # two graphs: a triangle (nodes 1-3) and an edge with a self loop (nodes 4-5), MUTAG-style labels
  (tmp_path / "MUTAG_A.txt").write_text(
      "1, 2\n2, 1\n2, 3\n3, 2\n1, 3\n3, 1\n4, 5\n5, 4\n5, 5\n")
  (tmp_path / "MUTAG_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n")
  (tmp_path / "MUTAG_graph_labels.txt").write_text("1\n-1\n")
  (tmp_path / "MUTAG_node_labels.txt").write_text("0\n2\n0\n1\n1\n")
  graphs, labels = tu.load("MUTAG", data_dir=tmp_path / "data", manual_dir=tmp_path)
  np.testing.assert_array_equal(labels, [1, 0])
  assert [int(g.n_node[0]) for g in graphs] == [3, 2]
  assert [int(g.n_edge[0]) for g in graphs] == [6, 2]  # self loop removed
  np.testing.assert_array_equal(np.asarray(graphs[0].nodes), np.eye(3)[[0, 2, 0]])
  np.testing.assert_array_equal(np.asarray(graphs[1].senders), [0, 1])
