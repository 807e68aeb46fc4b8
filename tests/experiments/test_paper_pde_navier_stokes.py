"""Paper dry run of ``pde_navier_stokes --preset paper:tf``: official-format ``w.0.8x1.0.npy`` /
``u.Re=400:T=50:transient.npy`` through the loader, the NSM (a few steps, tiny widths),
evaluation one sample at a time (the preset's chunk), report."""

from __future__ import annotations

from jspectral.pde import problems
from tests.experiments.pde_dry_run import run_paper, write_official_files


def test_paper_tf_runs_on_official_format_test_files(tmp_path, monkeypatch):
  write_official_files(tmp_path, monkeypatch,
                       problems.NavierStokes(T=50.0, nu=2e-3, forced=True, res=8),
                       "w.0.8x1.0.npy", "u.Re=400:T=50:transient.npy", (3, 9, 9), n=2)
  tiny = "hdim=2", "depth=1", "mode=[3, 5, 5]"
  overrides = ["phi_res=8", "n_test=2", "seeds=[0]", "train.total_steps=2", "train.batch_size=2",
               "methods=['NSM']", *(f"models.NSM.{t}" for t in tiny)]
  text = run_paper(tmp_path, "pde_navier_stokes", "paper:tf", overrides, ["NSM"], seeds=1)
  assert "| tf | NSM | 1 | 2 |" in text
