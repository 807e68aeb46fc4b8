"""What an experiment returns and how it becomes ``report.md`` and a self-contained HTML page."""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import pathlib
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

  def html(self) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in self.rows)
    note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
    return (f"<h3>{html.escape(self.title)}</h3><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


@dataclasses.dataclass
class Headline:
  """The one result a reader wants first: the paper's claim, our number, the paper's number.

  Attributes:
    claim: the claim the run demonstrates, in words ("HSDT denoises: PSNR above the noisy input").
    ours: our number with its unit ("31.2 dB vs 15.1 dB noisy").
    paper: the paper's number for the same quantity where the spec records it ("" otherwise).
  """

  claim: str
  ours: str
  paper: str = ""

  def sentence(self) -> str:
    """``Claim: ... Ours: ... Paper: ...`` on one line (the paper part only when recorded)."""
    return f"Claim: {self.claim}. Ours: {self.ours}." + (
        f" Paper: {self.paper}." if self.paper else "")


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
    headline: the summary row of the demo report (defaults to the checks as claims).
  """

  title: str
  tables: list[Table] = dataclasses.field(default_factory=list)
  figures: list[str] = dataclasses.field(default_factory=list)
  checks: dict[str, bool] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)
  headline: Headline | None = None

  def markdown(self, heading: str = "#", figure_prefix: str = "") -> str:
    parts = [f"{heading} {self.title}", ""]
    if self.headline:
      parts += [self.headline.sentence(), ""]
    parts += [f"- {note}" for note in self.notes]
    if self.checks:
      parts += ["", "Checks:", ""]
      parts += [f"- [{'x' if ok else ' '}] {name}" for name, ok in self.checks.items()]
    for table in self.tables:
      parts += ["", table.markdown()]
    for figure in self.figures:
      parts += ["", f"![{figure}]({figure_prefix}{figure})"]
    return "\n".join(parts) + "\n"

  def html(self, figure_dir: pathlib.Path, heading: str = "h2") -> str:
    """An HTML section with every figure embedded as a base64 PNG (no file references).

    Args:
      figure_dir: the run's workdir, against which ``figures`` are resolved.
      heading: the tag of the title.
    """
    parts = [f"<{heading}>{html.escape(self.title)}</{heading}>"]
    if self.headline:
      parts.append(f"<p class='headline'>{html.escape(self.headline.sentence())}</p>")
    if self.notes:
      parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>")
    if self.checks:
      parts.append("<ul class='checks'>" + "".join(
          f"<li class='{'pass' if ok else 'fail'}'>{'&#10003;' if ok else '&#10007;'} "
          f"{html.escape(name)}</li>" for name, ok in self.checks.items()) + "</ul>")
    parts += [table.html() for table in self.tables]
    for figure in self.figures:
      data = base64.b64encode((pathlib.Path(figure_dir) / figure).read_bytes()).decode()
      parts.append(f"<figure><img alt='{html.escape(figure)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{html.escape(figure)}</figcaption></figure>")
    return "\n".join(parts)

  @property
  def passed(self) -> bool:
    return all(self.checks.values())


HTML_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}.pass{color:#18794e}.fail{color:#c62828;font-weight:bold}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}.note{color:#555}"""


def html_page(title: str, body: str) -> str:
  """A complete, self-contained HTML document."""
  return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
          f"<style>{HTML_STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n"
          "</body></html>\n")


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
