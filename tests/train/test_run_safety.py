"""Run safety and the engine's newer levers: config guards, checkpoint integrity, append-only logs,
model selection, step-aware losses, gradient accumulation and bf16 compute."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.train import checkpoint

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import engine_run  # noqa: E402

from tests.conftest import file_snapshot as snapshot  # noqa: E402


def test_changed_config_is_refused_and_leaves_every_file_identical(tmp_path):
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)
  before = snapshot(tmp_path)
  changed = engine_run.config(steps=10)
  changed.optimizer.learning_rate = 0.5
  with pytest.raises(train.WorkdirConflictError, match="optimizer.learning_rate: 0.02 -> 0.5"):
    train.fit(engine_run.RegressionTask(), changed, tmp_path)
  assert snapshot(tmp_path) == before


def test_resume_with_changes_extends_a_run_and_logs_the_restart(tmp_path):
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)
  lines_before = (tmp_path / "metrics.jsonl").read_text().splitlines()
  with train.allow_config_changes():
    result = train.fit(engine_run.RegressionTask(), engine_run.config(steps=20), tmp_path)
  assert result.step == 20
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert lines[:len(lines_before)] == lines_before                 # appended, never rewritten
  assert json.loads(lines[len(lines_before)]) == {"step": 10, "event": "resumed",
                                                   "total_steps": 20}
  assert list(tmp_path.glob("train_config.*.json"))               # the old config is kept


def test_model_of_other_shapes_is_a_mismatch_not_corruption(tmp_path):
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=5), tmp_path)
  before = snapshot(tmp_path / "checkpoints")

  @dataclasses.dataclass
  class Wider(engine_run.RegressionTask):
    def init(self, rng, batch):
      params, state = super().init(rng, batch)
      return {**params, "extra": jnp.zeros(3)}, state

  with train.allow_config_changes(), pytest.raises(checkpoint.CheckpointMismatchError,
                                                    match="other shapes"):
    train.fit(Wider(), engine_run.config(steps=5), tmp_path)
  assert snapshot(tmp_path / "checkpoints") == before
  assert not (tmp_path / "checkpoints" / "unreadable").exists()


def flip_one_byte(step_dir: pathlib.Path) -> None:
  """Changes one byte of the largest array file of a checkpoint, keeping its size."""
  target = max((p for p in (step_dir / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
  data = bytearray(target.read_bytes())
  data[len(data) // 2] ^= 0xFF
  target.write_bytes(bytes(data))


def test_checkpoint_changed_in_place_is_detected_and_an_older_one_used(tmp_path):
  reference = train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path / "a")
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path / "b")
  flip_one_byte(tmp_path / "b" / "checkpoints" / "10")
  with pytest.warns(UserWarning, match="step 10 could not be restored"):
    result = train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path / "b")
  assert result.step == 10
  for a, b in zip(jax.tree.leaves(reference.params), jax.tree.leaves(result.params), strict=True):
    np.testing.assert_array_equal(a, b)          # steps 6..10 replayed from the step-5 checkpoint


def test_no_usable_checkpoint_stops_instead_of_training_from_scratch(tmp_path):
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)
  for step in (5, 10):
    flip_one_byte(tmp_path / "checkpoints" / str(step))
  with pytest.warns(UserWarning), pytest.raises(checkpoint.NoUsableCheckpointError):
    train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)


def test_out_of_range_fields_are_named(tmp_path):
  for field, value, match in [("total_steps", 0, "total_steps"), ("precision", "fp8", "precision"),
                              ("grad_accum_steps", 3, "batch_size")]:
    config = engine_run.config()
    config[field] = value
    with pytest.raises(ValueError, match=match):
      train.fit(engine_run.RegressionTask(), config, tmp_path / field)


@dataclasses.dataclass
class Linear:
  """Deterministic least squares on a fixed batch order; ``evaluate`` replays a scripted score."""

  scores: tuple = ()
  calls: list = dataclasses.field(default_factory=list)

  def train_source(self):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    return [{"x": x[i], "y": np.float32(x[i].sum())} for i in range(32)]

  def init(self, rng, batch):
    return {"w": jnp.zeros(3), "b": jnp.zeros(())}, {}

  def loss(self, params, state, batch, rng, step):
    err = batch["x"] @ params["w"] + params["b"] - batch["y"]
    return jnp.mean(err ** 2), {"step_seen": step.astype(jnp.float32)}

  def evaluate(self, params, state):
    self.calls.append(float(params["b"]))
    return {"score": self.scores[len(self.calls) - 1] if self.scores else 0.0}


def linear_config(steps=8, **kw):
  config = train.default_config()
  config.update(total_steps=steps, batch_size=8, log_every=1, checkpoint_every=4, progress=False,
                **kw)
  config.optimizer.update(name="sgd", learning_rate=0.05)
  return config


def test_loss_with_a_step_argument_gets_the_global_step(tmp_path):
  result = train.fit(Linear(), linear_config(), tmp_path)
  logged = [(r["step"], r["step_seen"]) for r in result.history if "step_seen" in r]
  assert logged == [(s, s - 1.0) for s in range(1, 9)]


def test_gradient_accumulation_equals_the_full_batch_step(tmp_path):
  full = train.fit(Linear(), linear_config(), tmp_path / "full")
  accum = train.fit(Linear(), linear_config(grad_accum_steps=4), tmp_path / "accum")
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(accum.params), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_bfloat16_compute_keeps_float32_weights_and_learns(tmp_path):
  f32 = train.fit(Linear(), linear_config(steps=40), tmp_path / "f32")
  bf16 = train.fit(Linear(), linear_config(steps=40, precision="bfloat16"), tmp_path / "bf16")
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(bf16.params))
  losses = [r["loss"] for r in bf16.history if "loss" in r]
  assert losses[-1] < 0.1 * losses[0]
  np.testing.assert_allclose(bf16.params["w"], f32.params["w"], atol=0.05)


def test_model_selection_keeps_the_best_evaluation_across_a_resume(tmp_path):
  scores = (0.3, 0.9, 0.5, 0.4)            # evaluations at steps 2, 4, 6 and the end (8)
  config = linear_config(eval_every=2)
  config.select.update(metric="score", mode="max")
  task = Linear(scores)
  result = train.fit(task, config, tmp_path / "run")
  assert int(result.best["step"]) == 4 and float(result.best["score"]) == pytest.approx(0.9)
  assert float(result.best["params"]["b"]) == pytest.approx(task.calls[1])
  assert float(result.params["b"]) != pytest.approx(task.calls[1])
  # Lose the last checkpoint: the resumed run restores step 4 with its best and replays the rest.
  import shutil

  shutil.rmtree(tmp_path / "run" / "checkpoints" / "8")
  resumed = train.fit(Linear((0.5, 0.4)), config, tmp_path / "run")
  assert int(resumed.best["step"]) == 4
  np.testing.assert_array_equal(resumed.best["params"]["b"], result.best["params"]["b"])


def test_selection_restarts_at_a_stage_boundary(tmp_path):
  scores = (0.9, 0.2, 0.5, 0.4)            # evaluations at steps 2, 4, 6 and the end (8)
  config = linear_config(eval_every=2)
  config.select.update(metric="score", mode="max", restart_at=[4])
  result = train.fit(Linear(scores), config, tmp_path)
  # 0.9 (step 2) belongs to the first stage; from step 4 on, 0.5 (step 6) is the best.
  assert int(result.best["step"]) == 6 and float(result.best["score"]) == pytest.approx(0.5)
  assert [r["best/score"] for r in result.history if "best/score" in r] == pytest.approx(
      [0.9, 0.2, 0.5, 0.5])


def test_early_stopping_after_patience_evaluations_without_strict_improvement(tmp_path):
  scores = (0.5, 0.7, 0.7, 0.6, 0.1)       # steps 2, 4, 6 (a tie), 8; then the final evaluation
  config = linear_config(steps=16, eval_every=2)
  config.select.update(metric="score", mode="max", patience=2, ties="earlier")
  result = train.fit(Linear(scores), config, tmp_path)
  assert result.step == 8                  # 6 and 8 did not improve on 0.7: stopped
  assert int(result.best["step"]) == 4     # the tie at 6 keeps the earlier evaluation
  assert {"step": 8, "event": "early_stop", "patience": 2} in result.history
  assert max(r["step"] for r in result.history if "loss" in r) == 8
  resumed = train.fit(Linear((0.2,)), config, tmp_path)   # a stopped run stays stopped
  assert resumed.step == 8 and int(resumed.best["step"]) == 4
  with pytest.raises(ValueError, match="select.ties"):
    config.select.ties = "first"
    train.fit(Linear(scores), config, tmp_path / "other")


def test_selection_on_an_unknown_metric_names_it(tmp_path):
  config = linear_config(eval_every=4)
  config.select.metric = "val_oa"
  with pytest.raises(ValueError, match="select.metric: 'val_oa'"):
    train.fit(Linear((0.1, 0.2)), config, tmp_path)
