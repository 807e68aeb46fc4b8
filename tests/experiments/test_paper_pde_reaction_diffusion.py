"""Paper dry run of ``pde_reaction_diffusion --preset paper``: official-format ``h.npy`` /
``u.rho=5:nu=0.010.npy`` through the loader, NSM over two seeds (a few steps, tiny widths, the
per-problem step count cut through ``problem_steps``), chunked evaluation, the report's mean ±
std over seeds and its per-seed table."""

from __future__ import annotations

from jspectral.pde import problems
from tests.experiments.pde_dry_run import run_paper, write_official_files


def test_paper_runs_on_official_format_test_files(tmp_path, monkeypatch):
  write_official_files(tmp_path, monkeypatch, problems.ReactionDiffusion(nu=0.01, res=8),
                       "h.npy", "u.rho=5:nu=0.010.npy", (9, 9))
  tiny = "hdim=4", "depth=1", "mode=[4, 8]"
  overrides = ["phi_res=8", "n_test=3", "problems=['nu01']", "problem_steps.nu01=2",
               "methods=['NSM']", "train.batch_size=2", "seeds=[0, 1]",
               *(f"models.NSM.{t}" for t in tiny)]
  text = run_paper(tmp_path, "pde_reaction_diffusion", "paper", overrides, ["NSM"], seeds=2)
  assert "| nu01 | NSM | 2 | 2 |" in text
  assert "| nu01 | NSM | 0 |" in text and "| nu01 | NSM | 1 |" in text
