"""Command line: list experiments, run one, or run every smoke preset as the demo.

    python -m experiments list
    python -m experiments run NAME --preset smoke|paper --workdir DIR [--set key=value ...]
    python -m experiments demo --workdir runs/demo
    python -m experiments data list

Each experiment is a module ``experiments/configs/<name>.py`` with ``get_config(preset)`` and
``run(config, workdir) -> Report`` (big_vision-style configs, flax-examples-style entry point).
Multi-host runs call ``jspectral.train.distributed.initialize()`` from the environment first.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import pathlib
import pkgutil
import sys
import time
import traceback

from experiments import configs
from experiments.report import Report, Table

PRESETS = ("smoke", "paper")


def experiment_names() -> list[str]:
  """Every module under ``experiments/configs``."""
  return sorted(m.name for m in pkgutil.iter_modules(configs.__path__))


def load(name: str):
  if name not in experiment_names():
    raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(experiment_names())}")
  return importlib.import_module(f"experiments.configs.{name}")


def parse_override(text: str) -> tuple[str, object]:
  """``"train.total_steps=20"`` -> ``("train.total_steps", 20)``; values are Python literals or
  plain strings."""
  key, sep, raw = text.partition("=")
  if not sep or not key:
    raise SystemExit(f"--set: expected key=value, got {text!r}")
  try:
    return key, ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return key, raw


def build_config(name: str, preset: str, overrides: list[str]):
  if preset not in PRESETS:
    raise SystemExit(f"--preset: expected one of {PRESETS}, got {preset!r}")
  config = load(name).get_config(preset)
  for key, value in map(parse_override, overrides):
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def run_experiment(name: str, preset: str, workdir: pathlib.Path,
                   overrides: list[str] = ()) -> Report:
  """Runs one experiment and writes ``config.json`` and ``report.md`` to ``workdir``."""
  import jax

  from jspectral.train import distributed

  distributed.initialize()
  config = build_config(name, preset, list(overrides))
  workdir.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
  report = load(name).run(config, workdir)
  if jax.process_index() == 0:
    (workdir / "report.md").write_text(report.markdown())
  return report


def demo(workdir: pathlib.Path) -> int:
  """Runs every experiment's smoke preset; writes ``REPORT.md`` with one table and every report."""
  rows, sections, failed = [], [], 0
  for name in experiment_names():
    print(f"== {name} (smoke)", flush=True)
    start = time.perf_counter()
    try:
      report = run_experiment(name, "smoke", workdir / name)
      status = "passed" if report.passed else "FAILED checks"
      sections.append(report.markdown(heading="##", figure_prefix=f"{name}/"))
    except Exception:  # noqa: BLE001  (one broken experiment must not hide the others)
      traceback.print_exc()
      report, status = None, "ERROR"
    failed += status != "passed"
    checks = "; ".join(f"{'✓' if ok else '✗'} {k}" for k, ok in report.checks.items()) if report \
        else "see log"
    rows.append([name, status, f"{time.perf_counter() - start:.0f}", checks])
  summary = Table("Smoke runs", ["experiment", "status", "seconds", "checks"], rows)
  text = "# jspectral demo: every experiment's smoke preset\n\n" + summary.markdown() + "\n\n"
  (workdir / "REPORT.md").write_text(text + "\n".join(sections))
  print(f"wrote {workdir / 'REPORT.md'}")
  return 1 if failed else 0


def data_list() -> int:
  """Prints every dataset, where its files go and whether they are there."""
  from jspectral.data import builders

  for entry in builders.catalog():
    print(json.dumps(entry))
  return 0


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  sub.add_parser("list", help="list the experiments")
  run = sub.add_parser("run", help="run one experiment")
  run.add_argument("name")
  run.add_argument("--preset", default="smoke", choices=PRESETS)
  run.add_argument("--workdir", type=pathlib.Path, required=True)
  run.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a config field (repeatable)")
  demo_parser = sub.add_parser("demo", help="run every smoke preset, write REPORT.md")
  demo_parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"))
  data = sub.add_parser("data", help="datasets")
  data.add_argument("action", choices=["list"])
  args = parser.parse_args(argv)

  if args.command == "list":
    for name in experiment_names():
      doc = (load(name).__doc__ or "").strip().splitlines()
      print(f"{name:28s} {doc[0] if doc else ''}")
    return 0
  if args.command == "run":
    report = run_experiment(args.name, args.preset, args.workdir, args.overrides)
    print(report.markdown())
    return 0 if report.passed else 1
  if args.command == "demo":
    return demo(args.workdir)
  return data_list()


if __name__ == "__main__":
  sys.exit(main())
