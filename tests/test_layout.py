"""The package's import rules (DESIGN.md, Layout) and every experiment config, checked statically.

Imports run one way: experiments -> families -> {nn, metrics, data, train}. No shared package
imports a family, no family imports another, nothing below the registry imports it, a model file
never reaches into the engine, and experiment configs never import one another.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = {"nn", "metrics", "data", "train"}
FAMILIES = {"ssl", "graph", "pde", "denoising", "superres", "pansharpening", "classification"}


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: pathlib.Path) -> set[str]:
  """Every module ``path`` imports, at any depth of its code (function bodies included)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      found.add(node.module)
      found.update(f"{node.module}.{alias.name}" for alias in node.names)
  return found


def defines_models(path: pathlib.Path) -> bool:
  tree = ast.parse(path.read_text())
  return any(isinstance(n, ast.Assign)
             and any(getattr(t, "id", None) == "MODELS" for t in n.targets) for n in tree.body)


def violations(importer: str, imported: str, *, model_file: bool = False) -> list[str]:
  """The layout rules that the import ``importer -> imported`` breaks (empty when it is allowed)."""
  src, dst = importer.split("."), imported.split(".")
  out = []
  if src[0] == "jspectral" and dst[0] == "experiments":
    out.append("the library imports an experiment")
  if src[0] == "experiments" and src[1:2] == ["configs"] and dst[:2] == ["experiments", "configs"] \
      and len(dst) > 2 and dst[:3] != src[:3]:
    out.append("an experiment config imports another config (shared code: experiments/common.py)")
  if src[0] != "jspectral" or dst[0] != "jspectral" or len(src) < 2 or len(dst) < 2:
    return out
  if dst[1] == "models" and src[1] != "models":
    out.append("only the registry's users import jspectral.models, never a model module")
  if src[1] in SHARED and dst[1] in FAMILIES:
    out.append(f"shared package {src[1]} imports family {dst[1]}")
  if src[1] in FAMILIES and dst[1] in FAMILIES and src[1] != dst[1]:
    out.append(f"family {src[1]} imports family {dst[1]}")
  if model_file and dst[1] == "train":
    out.append("a model file imports the training engine (tasks go in tasks.py)")
  return out


def all_edges():
  for top in ("jspectral", "experiments"):
    for path in sorted((ROOT / top).rglob("*.py")):
      model_file = defines_models(path)
      for imported in sorted(imports_of(path)):
        yield module_name(path), imported, model_file


def test_import_graph_follows_the_layout():
  broken = [f"{src} -> {dst}: {rule}" for src, dst, model_file in all_edges()
            for rule in violations(src, dst, model_file=model_file)]
  assert not broken, "\n".join(broken)


@pytest.mark.parametrize("importer, imported, model_file", [
    ("jspectral.data.builders.planetoid", "jspectral.graph.graphs", False),
    ("jspectral.classification.spectral_earth_downstream", "jspectral.ssl.spectral_earth", False),
    ("jspectral.pde.nsm", "jspectral.train", True),
    ("jspectral.nn.convnet", "jspectral.models", False),
    ("experiments.configs.pde_navier_stokes", "experiments.configs.pde_poisson", False),
])
def test_the_rules_catch_the_imports_they_replaced(importer, imported, model_file):
  assert violations(importer, imported, model_file=model_file)


@pytest.mark.parametrize("importer, imported", [
    ("jspectral.ssl.tasks", "jspectral.nn.spec_vit"),
    ("jspectral.pansharpening.tasks", "jspectral.train"),
    ("jspectral.metrics.pansharpening", "jspectral.data.wald"),
    ("experiments.configs.pde_poisson", "experiments.common"),
    ("jspectral.models", "jspectral.nn.model_spec"),
])
def test_the_rules_allow_the_intended_direction(importer, imported):
  assert not violations(importer, imported)


def test_every_family_has_the_same_rooms():
  for family in sorted(FAMILIES):
    folder = ROOT / "jspectral" / family
    present = {p.name for p in folder.glob("*.py")}
    assert {"__init__.py", "tasks.py", "protocol.py"} <= present, (family, sorted(present))


def test_families_name_their_public_api():
  for package in sorted(FAMILIES | SHARED):
    module = importlib.import_module(f"jspectral.{package}")
    assert module.__doc__ and len(module.__doc__.split()) > 15, package
    assert getattr(module, "__all__", None), f"jspectral.{package} has no __all__"
    for name in module.__all__:
      assert hasattr(module, name) or importlib.util.find_spec(f"jspectral.{package}.{name}"), (
          package, name)


def experiment_configs():
  from experiments.runner import experiment_names, presets

  return [(name, preset) for name in experiment_names() for preset in presets(name)]


@pytest.mark.parametrize("name, preset", experiment_configs())
def test_every_experiment_config_builds_and_names_its_data(name, preset):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(preset)
  assert config.preset == preset
  assert "data" in config and isinstance(config.data.source, str) and config.data.source, name
