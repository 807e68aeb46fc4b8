"""Experiment configs of the graph-SSL family: presets, variants and their paper recipes."""

from __future__ import annotations

import pytest

from experiments.configs import graph_ssl_graph, graph_ssl_node


@pytest.mark.parametrize("module", [graph_ssl_node, graph_ssl_graph])
def test_presets_and_variants(module):
  smoke, paper = module.get_config("smoke"), module.get_config("paper")
  assert smoke.train.total_steps > 0 and smoke.data.source == "synthetic"
  assert paper.data.source != "synthetic" and len(paper.seeds) == 5
  for variant in module.PAPER_VARIANTS:
    config = module.get_config(f"paper:{variant}")
    assert config.preset == f"paper:{variant}" and config.data.source != "synthetic"
  with pytest.raises(ValueError, match="preset"):
    module.get_config("large")
  with pytest.raises(ValueError, match="preset"):
    module.get_config("paper:karate")


def test_node_recipes_follow_the_official_configs():
  cora = graph_ssl_node.get_config("paper")
  assert (cora.data.source, cora.data.name) == ("planetoid", "cora")
  assert cora.train.optimizer.name == "adam_l2" and cora.train.optimizer.weight_decay == 1e-5
  assert cora.train.optimizer.learning_rate == 5e-4 and cora.grace.epochs == 200
  assert list(cora.grace.drop_edge) == [0.2, 0.4] and list(cora.grace.drop_feature) == [0.3, 0.4]
  assert cora.probe.protocol == "pygcl" and cora.probe.epochs == 5000
  citeseer = graph_ssl_node.get_config("paper:citeseer")
  assert citeseer.grace.activation == "prelu" and citeseer.grace.tau == 0.9
  photo = graph_ssl_node.get_config("paper:photo")  # GCA param/amazon_photo.json
  assert photo.data.source == "amazon_coauthor" and photo.train.optimizer.learning_rate == 0.1
  assert (photo.grace.hidden, photo.grace.proj_hidden) == (256, 64)
  assert graph_ssl_node.get_config("paper:physics").grace.activation == "rrelu"
  assert graph_ssl_node.get_config("paper:dblp").data.source == "amazon_coauthor"
  assert cora.recipes.mvgrl.lr == 1e-4 and cora.recipes.gbt.warmup == 400
  assert list(cora.frameworks) == ["grace", "mvgrl", "bgrl", "gbt"]


def test_graph_recipes_follow_graphcl_go_sh():
  graph = graph_ssl_graph.get_config("paper")
  assert graph.data.name == "MUTAG" and list(graph.seeds) == [0, 1, 2, 3, 4]
  assert graph.train.batch_size == 128 and graph.train.optimizer.learning_rate == 1e-2
  assert graph.svm.folds == 10 and list(graph.svm.c_grid) == [1e-3, 1e-2, 1e-1, 1, 10, 100, 1000]
  assert graph_ssl_graph.get_config("paper:imdb_binary").data.name == "IMDB-BINARY"
  view1, view2 = graph_ssl_graph._views("span", 0.2)  # SPAN's max/min pair, not identity
  assert (view1.kind, view2.kind) == ("span_max", "span_min")
  assert graph_ssl_graph._views("add_edges", 0.2).kind == "add_edges"


def test_graph_mvgrl_recipe_follows_gcl_span_unsupervised_graph(tmp_path):
  graph = graph_ssl_graph.get_config("paper")
  assert list(graph.frameworks) == ["graphcl", "mvgrl"]
  assert list(graph_ssl_graph.get_config("smoke").frameworks) == ["graphcl"]
  m = graph.mvgrl
  assert (m.hidden, m.num_layers, m.learning_rate, m.batch_size, m.epochs) == (
      512, 2, 1e-5, 32, 100)
  assert m.augmentations[0] == "ppr" and m.alpha == 0.2
  view2 = graph_ssl_graph._views("ppr", 0.2, alpha=0.15)  # view 1 the graph, view 2 PPR(alpha)
  assert (view2.kind, view2.p) == ("ppr", 0.15)
  graph.frameworks = ["graphcl", "infograph"]
  with pytest.raises(ValueError, match="frameworks"):
    graph_ssl_graph.run(graph, tmp_path)


def test_node_span_l2_only_where_span_runs_dense():
  for name, expected in (("paper", True), ("paper:citeseer", True), ("paper:pubmed", False),
                         ("paper:cs", False)):
    config = graph_ssl_node.get_config(name)
    assert ("span_l2" in config.augmentations) is expected and config.span.support == "auto"
