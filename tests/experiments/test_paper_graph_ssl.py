"""Paper dry runs of ``graph_ssl_node`` (Planetoid raw pickles) and ``graph_ssl_graph`` (TU text
files): the real builders, the training views, fit, the probes / SVM protocol and the report, with
steps, widths and epochs cut to a few."""

from __future__ import annotations

import math

import numpy as np

from tests.data.graph_formats import planetoid_like, write_planetoid, write_tu
from tests.experiments.cli import run_preset


def _run(tmp_path, monkeypatch, name: str, preset: str, overrides: list[str]) -> str:
  monkeypatch.setenv("JSPECTRAL_MANUAL_DIR", str(tmp_path / "manual"))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  config = run_preset(workdir, name, preset, overrides)
  assert config["preset"] == preset and config["data"]["source"] != "synthetic"
  return (workdir / "report.md").read_text()


def _rows(text: str, title: str) -> list[list[str]]:
  table = text.split(f"### {title}")[1].split("###")[0]
  return [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()
          if line.startswith("| ")][1:]


def _assert_seed_cells(row: list[str], seeds: int):
  for cell in row[-2 - seeds:-2]:
    assert 0.0 <= float(cell) <= 100.0
  mean, std = (float(v) for v in row[-2].split("±"))
  assert math.isfinite(mean) and math.isfinite(std) and std >= 0.0


def test_paper_node_runs_on_planetoid_raw_files(tmp_path, monkeypatch):
  x, labels, edges = planetoid_like(80, 21, 3, seed=1)
  write_planetoid(tmp_path / "manual" / "planetoid", "cora", x, labels, edges, num_train=9,
                  num_test=30)
  text = _run(tmp_path, monkeypatch, "graph_ssl_node", "paper", [
      "train.total_steps=2", "seeds=[0, 1]", "frameworks=['grace']", "checks=False",
      "augmentations=['edge_drop', 'span']", "span.support=sparse", "grace.hidden=8",
      "grace.proj_hidden=8",
      "probe.epochs=40", "cost_sizes=[20]", "cost_eigvalsh_max_n=20"])
  assert "PyGCL LREvaluator" in text and "per seed [0, 1]" in text
  rows = _rows(text, "Linear-probe accuracy")
  assert [(r[0], r[1], r[2]) for r in rows] == [
      ("cora", "grace", "random-init encoder"), ("cora", "grace", "edge_drop"),
      ("cora", "grace", "span")]
  for row in rows:
    _assert_seed_cells(row, seeds=2)
  assert rows[1][-1] == "83.3" and rows[2][-1] == "n/a"  # GRACE's published Cora micro-F1
  assert (f"Ours: grace edge_drop {rows[1][-2]}; grace span {rows[2][-2]}; random init "
          f"{rows[0][-2]}. Paper: GRACE 83.3 (cora).") in text


def test_paper_graph_runs_on_tu_text_files(tmp_path, monkeypatch, cheap_compiles):
  rng = np.random.default_rng(0)
  graphs, graph_labels = [], []
  for g in range(20):
    n = int(rng.integers(5, 9))
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n])
    path = np.stack([np.arange(n - 1), np.arange(1, n)])
    graphs.append((ring if g % 2 else path, rng.integers(0, 7, n)))
    graph_labels.append(1 if g % 2 else -1)
  write_tu(tmp_path / "manual" / "tu", "MUTAG", graphs, np.array(graph_labels))
  text = _run(tmp_path, monkeypatch, "graph_ssl_graph", "paper", [
      "train.total_steps=2", "train.batch_size=8", "seeds=[0, 1]", "hidden=8",
      "augmentations=['add_edges', 'span']", "svm.folds=2", "svm.c_grid=[1.0]", "checks=False",
      "mvgrl.hidden=8", "mvgrl.batch_size=8", "mvgrl.augmentations=['ppr']"])
  rows = _rows(text, "SVM accuracy")
  assert [r[1] for r in rows] == ["random-init encoder, initial BN statistics",
                                  "random-init encoder, BN calibrated on data", "add_edges",
                                  "span", "mvgrl: random-init encoders", "mvgrl: ppr"]
  for row in rows:
    assert row[0] == "MUTAG"
    _assert_seed_cells(row, seeds=2)
  assert rows[2][-1] == "86.8" and "'max' view against its 'min' view" in text
  assert rows[5][-1] == "89.7" and "PyGCL's PPR diffusion (alpha 0.2)" in text
  assert (f"Ours: add_edges {rows[2][-2]}; span {rows[3][-2]}; mvgrl: ppr {rows[5][-2]}; random "
          f"init {rows[1][-2]}. Paper: GraphCL 86.8 (MUTAG).") in text
