"""The experiment command line: strict overrides, the config listing, workdir guards, exit codes."""

from __future__ import annotations

import json

import pytest

from experiments import runner
from tests.conftest import file_snapshot as snapshot


def test_a_mistyped_key_at_depth_three_is_refused_with_the_closest_keys():
  with pytest.raises(runner.CliError, match=r"train\.optimizer\.learning_rat: no such key.*"
                     r"closest: train\.optimizer\.learning_rate"):
    runner.build_config("train_demo", "smoke", ["train.optimizer.learning_rat=0.1"])


@pytest.mark.parametrize("override, match", [
    ("train.total_stepz=5", "closest: train.total_steps"),
    ("train.learning_rate=0.1", "no such key"),
    ("train.total_steps=5.5", "expected int, got float"),
    ("train.progress=3", "expected bool"),
    ("train.total_steps", "expected KEY=VALUE"),
])
def test_bad_overrides_are_refused(override, match):
  with pytest.raises(runner.CliError, match=match):
    runner.build_config("train_demo", "smoke", [override])


def test_overrides_keep_the_field_types():
  config = runner.build_config("train_demo", "smoke", [
      "train.total_steps=5", "train.optimizer.learning_rate=1", "train.select.metric=psnr"])
  assert config.train.total_steps == 5
  assert isinstance(config.train.optimizer.learning_rate, float)
  assert config.train.select.metric == "psnr"


def test_cli_mistakes_print_one_line_and_exit_2(capsys):
  assert runner.main(["run", "train_dem", "--workdir", "/nonexistent"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "did you mean train_demo" in err and "Traceback" not in err


def test_config_command_prints_every_key_with_its_meaning(capsys):
  assert runner.main(["config", "train_demo"]) == 0
  out = capsys.readouterr().out
  config = runner.build_config("train_demo", "smoke", [])
  for key, _ in runner.flat_items(config):
    assert f"\n{key} " in "\n" + out, key
  assert "# number of optimizer updates" in out


def test_run_help_documents_every_argument(capsys):
  with pytest.raises(SystemExit):
    runner.main(["run", "--help"])
  out = capsys.readouterr().out
  for flag in ("--preset", "--workdir", "--set", "--restart", "--resume-with-changes"):
    assert flag in out


def write_run(workdir, config):
  workdir.mkdir(parents=True)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
  (workdir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')


def test_a_changed_config_on_an_existing_workdir_is_refused_untouched(tmp_path, capsys):
  workdir = tmp_path / "run"
  write_run(workdir, runner.build_config("train_demo", "smoke", []))
  before = snapshot(workdir)
  code = runner.main(["run", "train_demo", "--workdir", str(workdir), "--set",
                      "train.total_steps=7"])
  assert code == 2
  assert "train.total_steps: 300 -> 7" in capsys.readouterr().err
  assert snapshot(workdir) == before


def test_restart_moves_the_old_run_aside_and_deletes_nothing(tmp_path):
  workdir = tmp_path / "run"
  old = runner.build_config("train_demo", "smoke", [])
  write_run(workdir, old)
  before = snapshot(workdir)
  new = runner.build_config("train_demo", "smoke", ["train.total_steps=7"])
  runner.prepare_workdir(workdir, new, restart=True, resume_with_changes=False)
  (previous,) = (workdir / "previous").iterdir()
  assert snapshot(previous) == before
  assert [p.name for p in workdir.iterdir()] == ["previous"]


def test_resume_with_changes_keeps_the_old_config_beside_the_new(tmp_path):
  workdir = tmp_path / "run"
  write_run(workdir, runner.build_config("train_demo", "smoke", []))
  new = runner.build_config("train_demo", "smoke", ["train.total_steps=400"])
  runner.prepare_workdir(workdir, new, restart=False, resume_with_changes=True)
  (kept,) = workdir.glob("config.*.json")
  assert json.loads(kept.read_text())["train"]["total_steps"] == 300


def test_unknown_presets_are_refused_with_the_known_ones(capsys):
  assert runner.main(["config", "pde_poisson", "--preset", "paper:nope"]) == 2
  assert "expected one of ['smoke', 'paper'" in capsys.readouterr().err
