"""What an experiment returns and how it becomes ``report.md``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass
class Table:
  """One results table: ``rows`` are lists aligned with ``header``."""

  title: str
  header: Sequence[str]
  rows: Sequence[Sequence[Any]]
  note: str = ""

  def markdown(self) -> str:
    lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
             "|" + "---|" * len(self.header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
    if self.note:
      lines += ["", self.note]
    return "\n".join(lines)


@dataclasses.dataclass
class Report:
  """An experiment's results.

  Attributes:
    title: one line.
    tables: results tables (the paper's layout, with the paper's numbers beside ours).
    figures: PNG paths relative to the run's workdir.
    checks: acceptance thresholds of the preset, ``description -> passed``; a failed check fails
      the run.
    notes: free text lines (protocol, deviations, what a smoke run does and does not show).
  """

  title: str
  tables: list[Table] = dataclasses.field(default_factory=list)
  figures: list[str] = dataclasses.field(default_factory=list)
  checks: dict[str, bool] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)

  def markdown(self, heading: str = "#", figure_prefix: str = "") -> str:
    parts = [f"{heading} {self.title}", ""]
    parts += [f"- {note}" for note in self.notes]
    if self.checks:
      parts += ["", "Checks:", ""]
      parts += [f"- [{'x' if ok else ' '}] {name}" for name, ok in self.checks.items()]
    for table in self.tables:
      parts += ["", table.markdown()]
    for figure in self.figures:
      parts += ["", f"![{figure}]({figure_prefix}{figure})"]
    return "\n".join(parts) + "\n"

  @property
  def passed(self) -> bool:
    return all(self.checks.values())


def _cell(value: Any) -> str:
  if isinstance(value, float):
    if math.isnan(value):
      return "–"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
  return str(value)


def save_loss_curve(path, histories: dict[str, list[dict]], key: str = "loss") -> None:
  """Plots ``key`` against ``step`` for each named run history (``FitResult.history``) to PNG."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 3.2))
  for name, records in histories.items():
    points = [(r["step"], r[key]) for r in records if key in r]
    if points:
      ax.plot(*zip(*points, strict=True), label=name)
  ax.set_xlabel("step")
  ax.set_ylabel(key)
  ax.set_yscale("log")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
