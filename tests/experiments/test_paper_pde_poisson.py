"""Paper dry run of ``pde_poisson --preset paper:dirichlet``: official-format ``s.dirichlet.npy``
/ ``u.dirichlet.npy`` through the loader, two seeds of NSM and CNO + PINN (cut to a few steps and
tiny widths), the chunked evaluation and the report."""

from __future__ import annotations

from jspectral.pde import problems
from tests.experiments.pde_dry_run import run_paper, write_official_files


def test_paper_dirichlet_runs_on_official_format_test_files(tmp_path, monkeypatch):
  write_official_files(tmp_path, monkeypatch, problems.PoissonDirichlet(res=16),
                       "s.dirichlet.npy", "u.dirichlet.npy", (9, 9))
  tiny = "hdim=4", "depth=1", "mode=[5, 5]"
  overrides = ["n_test=3", "eval_chunk=2", "seeds=[0, 1]", "methods=['NSM', 'CNO x256 + PINN']",
               "train.total_steps=2", "train.batch_size=2",
               *(f"models.NSM.{t}" for t in tiny), *(f"models.CNO x256 + PINN.{t}" for t in tiny),
               "models.CNO x256 + PINN.grid=8"]
  text = run_paper(tmp_path, "pde_poisson", "paper:dirichlet", overrides,
                   ["NSM", "CNO x256 + PINN"], seeds=2)
  assert "poisson_dirichlet" in text and "3 test instances" in text
