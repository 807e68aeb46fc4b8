"""Experiment configs of the graph-SSL family: presets and the paper recipes they encode."""

from __future__ import annotations

import pytest

from experiments.configs import graph_ssl_graph, graph_ssl_node


@pytest.mark.parametrize("module", [graph_ssl_node, graph_ssl_graph])
def test_presets(module):
  smoke, paper = module.get_config("smoke"), module.get_config("paper")
  assert smoke.train.total_steps > 0 and smoke.train.batch_size >= 1
  assert "sbm" in smoke.datasets or "cycles_trees" in smoke.datasets
  assert not set(paper.datasets) & {"sbm", "cycles_trees"}
  with pytest.raises(ValueError, match="preset"):
    module.get_config("large")


def test_paper_recipes():
  node = graph_ssl_node.get_config("paper")
  assert node.cost_sizes[0] == 100 and node.cost_sizes[-1] == 10_000
  assert graph_ssl_node.GRACE_CONFIGS["cora"] == (5e-4, 128, "relu", 0.2, 0.4, 0.3, 0.4, 0.4, 200)
  assert list(node.frameworks) == ["grace", "mvgrl", "bgrl", "gbt"]
  assert "span_l2" in node.augmentations
  assert graph_ssl_node.FRAMEWORKS["mvgrl"][1:] == (1e-4, 200)  # GCL-SPAN unsupervised_node.py
  graph = graph_ssl_graph.get_config("paper")
  assert graph.train.batch_size == 128 and graph.train.optimizer.learning_rate == 1e-2
  assert "span_max_l2" in graph.augmentations
  assert graph.svm.folds == 10 and list(graph.svm.c_grid) == [1e-3, 1e-2, 1e-1, 1, 10, 100, 1000]
