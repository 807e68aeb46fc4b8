"""Figures of the graph family: augmentation cost against graph size."""

from __future__ import annotations


def save_cost_plot(path, sizes, costs: list[dict], title: str) -> None:
  """Log-log wall time per augmentation call against the number of nodes.

  Args:
    path: output image path.
    sizes: node counts, one per entry of ``costs``.
    costs: :func:`jspectral.graph.cost.augmentation_costs` results, ``{method: (seconds, bytes)}``.
    title: figure title.

  Returns:
    None; writes the figure to ``path``.
  """
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7.0, 3.8))
  methods = sorted({m for c in costs for m in c})
  for method in methods:
    points = [(n, c[method][0]) for n, c in zip(sizes, costs, strict=True) if method in c]
    ax.loglog(*zip(*points, strict=True), marker="o", label=method)
  ax.set_xlabel("nodes N")
  ax.set_ylabel("seconds per call")
  ax.set_title(title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
