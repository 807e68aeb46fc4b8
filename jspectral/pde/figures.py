"""Figures of the PDE family: reference vs predicted fields, error maps and learning curves."""

from __future__ import annotations

import numpy as np


def plot_prediction(path, reference: np.ndarray, prediction: np.ndarray, histories: dict,
                    title: str = "") -> None:
  """Reference field, prediction, error map, and the evaluation error (or loss) per run.

  The fields show the last time slice for time-dependent fields; the curves are the evaluation
  error (or loss) against the training step per run.

  Args:
    path: output image path.
    reference: reference field, ``(*S, 1)`` (``(S_t, S_x, S_y, 1)`` for Navier-Stokes).
    prediction: predicted field, same shape.
    histories: ``{run: [record, ...]}`` metric records with ``"step"`` and
      ``"eval/rel_l2_percent"`` (or ``"loss"``).
    title: figure title.

  Returns:
    None; writes the figure to ``path``.
  """
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  ref = np.asarray(reference)[..., 0]
  pred = np.asarray(prediction)[..., 0]
  while ref.ndim > 2:                       # NS: last time frame
    ref, pred = ref[-1], pred[-1]
  fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
  lim = np.abs(ref).max()
  for ax, field, name in ((axes[0], ref, "reference"), (axes[1], pred, "prediction")):
    im = ax.imshow(field, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower")
    ax.set_title(name)
    fig.colorbar(im, ax=ax)
  im = axes[2].imshow(np.abs(pred - ref), cmap="magma", origin="lower")
  axes[2].set_title("|error|")
  fig.colorbar(im, ax=axes[2])
  for name, records in histories.items():
    pts = [(r["step"], r["eval/rel_l2_percent"]) for r in records if "eval/rel_l2_percent" in r]
    if len(pts) < 2:
      pts = [(r["step"], r["loss"]) for r in records if "loss" in r]
      axes[3].set_ylabel("training loss")
    else:
      axes[3].set_ylabel("relative L2 error (%)")
    axes[3].plot(*zip(*pts, strict=True), label=name)
  axes[3].set_yscale("log")
  axes[3].set_xlabel("step")
  axes[3].legend()
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
