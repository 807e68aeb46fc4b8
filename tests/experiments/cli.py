"""The experiment command line run in-process, for the paper dry runs."""

from __future__ import annotations

import json
import pathlib

from experiments import runner


def run_preset(workdir: pathlib.Path, name: str, preset: str, overrides: list[str]) -> dict:
  """``python -m experiments run NAME --preset PRESET --set ...``; asserts it exits 0 (every check
  passed) and returns the run's saved ``config.json``."""
  argv = ["run", name, "--preset", preset, "--workdir", str(workdir)]
  for item in overrides:
    argv += ["--set", item]
  assert runner.main(argv) == 0
  return json.loads((workdir / "config.json").read_text())
