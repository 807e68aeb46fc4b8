"""The demo's summary, REPORT.md and self-contained index.html (experiments stubbed by reports)."""

from __future__ import annotations

import html.parser
import re

import matplotlib
import pytest

from experiments import runner
from experiments.report import Headline, Report, Table

matplotlib.use("Agg")


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.images, self.text = [], []

  def handle_starttag(self, tag, attrs):
    if tag == "img":
      self.images.append(dict(attrs)["src"])

  def handle_data(self, data):
    self.text.append(data)


def _fake_run(name, preset, workdir, overrides=()):
  import matplotlib.pyplot as plt

  workdir.mkdir(parents=True, exist_ok=True)
  fig, ax = plt.subplots(figsize=(1, 1))
  ax.plot([0, 1])
  fig.savefig(workdir / "curve.png")
  plt.close(fig)
  if name == "broken":
    raise RuntimeError("boom")
  seed = int(overrides[0].split("=")[1]) if overrides else 0
  return Report(title=f"{name} title", tables=[Table("t", ["a"], [[1.5]])], figures=["curve.png"],
                checks={"beats bicubic": name != "failing" or seed == 0},
                headline=Headline("SR beats bicubic", "+1.2 dB", "+2.3 dB") if name == "sr" else
                None)


@pytest.fixture
def fake_demo(monkeypatch):
  monkeypatch.setattr(runner, "experiment_names", lambda: ["broken", "failing", "sr"])
  monkeypatch.setattr(runner, "run_experiment", _fake_run)
  monkeypatch.setattr(runner, "seed_overrides", lambda name, seed: [f"train.seed={seed}"])


def test_html_report_embeds_every_figure_and_lists_every_experiment(tmp_path, fake_demo, capsys):
  assert runner.demo(tmp_path, seeds=(0, 1)) == 1        # one error, one failed check at seed 1
  page = _Page()
  page.feed((tmp_path / "index.html").read_text())
  text = " ".join(page.text)
  assert len(page.images) == 4 and all(s.startswith("data:image/png;base64,iVBOR")
                                       for s in page.images)
  for expected in ("failing title", "sr title", "SR beats bicubic", "+1.2 dB", "+2.3 dB",
                   "ERROR (see the log)", "FAIL: beats bicubic"):
    assert expected in text, expected
  report = (tmp_path / "REPORT.md").read_text()
  assert "(seed1/sr/curve.png)" in report and "| sr | 0 | SR beats bicubic |" in report
  out = capsys.readouterr().out
  assert "demo: failing seed 1:" in out and "1/1 checks passed" in out and "ERROR" in out
  assert f"report: {tmp_path / 'REPORT.md'}" in out


def test_seed_overrides_shift_training_seeds_only():
  assert runner.seed_overrides("train_demo", 0) == ["train.seed=0"]
  shifted = runner.seed_overrides("pretrain_spectral_earth", 2)
  assert "seed=2" in shifted and "train.moco.seed=2" in shifted
  assert not any(key.startswith("data.") for key in shifted)


def test_quiet_overrides_turn_off_the_progress_bars_a_smoke_shows():
  assert runner.build_config("denoise_icvl", "smoke", []).train.progress
  quiet = runner.quiet_overrides("denoise_icvl")
  assert quiet == ["train.progress=False"]
  assert not runner.build_config("denoise_icvl", "smoke", quiet).train.progress


def test_demo_seeds_argument_is_checked(capsys):
  with pytest.raises(SystemExit):
    runner.main(["demo", "--seeds", "0,x"])
  assert "expected comma-separated integers" in capsys.readouterr().err


def test_parallel_jobs_run_side_by_side_and_report_in_experiment_order(tmp_path, monkeypatch,
                                                                         capsys):
  import concurrent.futures
  import threading

  gate = threading.Event()

  def run(name, preset, workdir, overrides=()):
    if name == "sr":   # submitted first, finishes last; raises (a failed run) unless run alongside
      assert gate.wait(5)
    else:
      gate.set()
    return Report(title=f"{name} title", checks={"quiet": overrides == [f"{name}.progress=False"]})

  monkeypatch.setattr(runner, "experiment_names", lambda: ["alpha", "sr"])
  monkeypatch.setattr(runner, "SLOWEST_FIRST", ("sr",))
  monkeypatch.setattr(runner, "run_experiment", run)
  monkeypatch.setattr(runner, "seed_overrides", lambda name, seed: [])
  monkeypatch.setattr(runner, "quiet_overrides", lambda name: [f"{name}.progress=False"])
  monkeypatch.setattr(runner, "_executor",
                      lambda jobs: concurrent.futures.ThreadPoolExecutor(max_workers=jobs))
  assert runner.demo(tmp_path, jobs=2) == 0
  out = capsys.readouterr().out
  assert "demo: alpha seed 0" in out and "demo: sr seed 0" in out   # a line per finished run
  assert re.search(r"demo: sr seed 0: \d+ s \(CPU \d+ s\), 1/1 checks passed", out)
  report = (tmp_path / "REPORT.md").read_text()
  assert report.index("| alpha |") < report.index("| sr |")     # reported in name order
  with pytest.raises(ValueError, match="jobs"):
    runner.demo(tmp_path, jobs=0)


def test_demo_order_names_every_experiment_once():
  assert sorted(runner.SLOWEST_FIRST) == sorted(runner.experiment_names())
