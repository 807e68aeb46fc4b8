"""Paper dry run of ``pde_poisson --preset paper:dirichlet``: official-format ``s.dirichlet.npy``
/ ``u.dirichlet.npy`` through the loader, the CNO + PINN baseline (cut to a few steps, a tiny
width and an 8^2 training grid; the NSM runs in the other two dry runs), the chunked evaluation
(chunks of 2 over 3 samples) and the report."""

from __future__ import annotations

from jspectral.pde import problems
from tests.experiments.pde_dry_run import run_paper, write_official_files


def test_paper_dirichlet_runs_on_official_format_test_files(tmp_path, monkeypatch):
  write_official_files(tmp_path, monkeypatch, problems.PoissonDirichlet(res=16),
                       "s.dirichlet.npy", "u.dirichlet.npy", (9, 9))
  tiny = "hdim=4", "depth=1", "mode=[5, 5]"
  overrides = ["n_test=3", "eval_chunk=2", "seeds=[0]", "methods=['CNO x256 + PINN']",
               "train.total_steps=2", "train.batch_size=2",
               *(f"models.CNO x256 + PINN.{t}" for t in tiny),
               "models.CNO x256 + PINN.grid=8"]
  text = run_paper(tmp_path, "pde_poisson", "paper:dirichlet", overrides,
                   ["CNO x256 + PINN"], seeds=1)
  assert "poisson_dirichlet" in text and "3 test instances" in text
