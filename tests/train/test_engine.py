"""The training engine: data parallelism, multi-host, kill-and-resume, corrupt checkpoints, NaN."""

from __future__ import annotations

import ctypes
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("engine_run.py")
sys.path.insert(0, str(SCRIPT.parent))
import engine_run  # noqa: E402

from tests.conftest import subprocess_env  # noqa: E402


def launch(workdir, out, *args, devices=None, **env):
  return subprocess.Popen([sys.executable, str(SCRIPT), str(workdir), str(out), *args],
                          env=subprocess_env(devices, **env), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)


def finish(proc, timeout=300):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out.decode()[-3000:]


def load(path):
  data = np.load(path)
  return {k: data[k] for k in data.files if k not in ("step", "devices")}, int(data["step"])


def assert_matches(path, reference_run, devices):
  """The run saved at ``path`` used ``devices`` devices and ends where the reference run does."""
  params, step = load(path)
  assert int(np.load(path)["devices"]) == devices
  expected, expected_step = reference_run
  assert step == expected_step
  for key, value in expected.items():
    np.testing.assert_allclose(params[key], value, rtol=2e-5, atol=2e-6, err_msg=key)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
  """One uninterrupted single-device, single-process run."""
  tmp = tmp_path_factory.mktemp("reference")
  finish(launch(tmp / "work", tmp / "out.npz"))
  return load(tmp / "out.npz")


def test_fit_learns_and_writes_its_files(tmp_path, monkeypatch):
  releases = []
  monkeypatch.setattr(train.loop, "release_freed_memory", lambda: releases.append(1))
  result = train.fit(engine_run.RegressionTask(), engine_run.config(steps=60), tmp_path)
  assert len(releases) == 1   # once, after the call that compiled the step
  assert result.evals["eval/mse"] < 0.05 * np.var(engine_run.RegressionTask().data()[1])
  assert (tmp_path / "train_config.json").exists() and (tmp_path / "metrics.jsonl").exists()
  assert {"loss", "learning_rate", "examples_per_sec", "grad_norm"} <= set(result.history[0])
  # A finished run restarted on the same workdir restores and trains no further.
  again = train.fit(engine_run.RegressionTask(), engine_run.config(steps=60), tmp_path)
  assert again.step == 60 and len(releases) == 1
  for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(again.params), strict=True):
    np.testing.assert_array_equal(a, b)


def resident_bytes() -> int:
  fields = pathlib.Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
  return int(fields[0]) * 1024  # kB


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim")
def test_release_freed_memory_hands_back_the_heaps_free_pages():
  """The heap as an XLA compilation leaves it: many small blocks written and freed below one
  still in use, so glibc can neither unmap them nor shrink the heap's top."""
  libc = ctypes.CDLL(None)
  libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
  libc.free.argtypes = [ctypes.c_void_p]
  blocks = [libc.malloc(4096) for _ in range(16384)]   # 64 MiB, below the mmap threshold
  for block in blocks:
    ctypes.memset(block, 1, 4096)
  pinned = libc.malloc(64)
  for block in blocks:
    libc.free(block)
  before = resident_bytes()
  assert train.loop.release_freed_memory()
  assert resident_bytes() < before - 32 * 2**20
  libc.free(pinned)


def test_eight_devices_equal_one_device(tmp_path, reference_run):
  finish(launch(tmp_path / "work", tmp_path / "out.npz", devices=8))
  assert_matches(tmp_path / "out.npz", reference_run, devices=8)


@pytest.mark.slow  # a subprocess on 8 devices
@pytest.mark.parametrize("precision, rtol, atol", [("float32", 2e-5, 2e-6),
                                                   ("bfloat16", 0.0, 2e-2)])
def test_accumulation_on_eight_devices_equals_one_device(tmp_path, precision, rtol, atol):
  """k = 2 micro-batches on the 8-device mesh follow the single-device run: to float32 rounding,
  and in bf16 compute to bf16 rounding of reductions taken in another order (30 steps)."""
  finish(launch(tmp_path / "work", tmp_path / "out.npz", "--accum", "2", "--precision",
                precision, devices=8))
  single = train.fit(engine_run.RegressionTask(), engine_run.config(accum=2, precision=precision),
                     tmp_path / "single")
  params, step = load(tmp_path / "out.npz")
  assert int(np.load(tmp_path / "out.npz")["devices"]) == 8 and step == single.step
  flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in
          jax.tree_util.tree_leaves_with_path((single.params, single.model_state))}
  for key, value in flat.items():
    assert value.dtype == np.float32, key
    np.testing.assert_allclose(params[key], value, rtol=rtol, atol=atol, err_msg=key)


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path, reference_run):
  address = f"127.0.0.1:{free_port()}"
  procs = [launch(tmp_path / "work", tmp_path / "out.npz", JSPECTRAL_COORDINATOR=address,
                  JSPECTRAL_NUM_PROCESSES="2", JSPECTRAL_PROCESS_ID=str(i)) for i in range(2)]
  for proc in procs:
    finish(proc)
  assert_matches(tmp_path / "out.npz", reference_run, devices=2)


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, reference_run):
  workdir = tmp_path / "work"
  proc = launch(workdir, tmp_path / "killed.npz", "--sleep", "0.1")
  deadline = time.time() + 240
  while not (workdir / "checkpoints" / "10").exists():
    assert proc.poll() is None and time.time() < deadline, "run ended before the kill"
    time.sleep(0.05)
  time.sleep(0.25)  # land somewhere between checkpoints, possibly mid-save
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (tmp_path / "killed.npz").exists()
  finish(launch(workdir, tmp_path / "resumed.npz"))  # a fresh process restores the checkpoint
  params, step = load(tmp_path / "resumed.npz")
  expected, expected_step = reference_run
  assert step == expected_step
  for key, value in expected.items():
    np.testing.assert_array_equal(params[key], value, err_msg=key)


def test_sigkill_during_evaluation_then_resume_is_bitwise_identical(tmp_path, reference_run):
  workdir, marker = tmp_path / "work", tmp_path / "evaluating"
  proc = launch(workdir, tmp_path / "killed.npz", "--eval-every", "10",
                "--eval-marker", str(marker))
  deadline = time.time() + 240
  while not marker.exists():
    assert proc.poll() is None and time.time() < deadline, "run ended before the evaluation"
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)       # inside the step-10 evaluation, before its checkpoint
  proc.wait()
  finish(launch(workdir, tmp_path / "resumed.npz", "--eval-every", "10"))
  params, step = load(tmp_path / "resumed.npz")
  expected, expected_step = reference_run
  assert step == expected_step
  for key, value in expected.items():
    np.testing.assert_array_equal(params[key], value, err_msg=key)


def test_unreadable_newest_checkpoint_is_set_aside(tmp_path):
  train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)
  newest = tmp_path / "checkpoints" / "10" / "state"
  for f in newest.rglob("*"):
    if f.is_file():
      f.write_bytes(b"garbage")
  with pytest.warns(UserWarning, match="step 10 could not be restored"):
    result = train.fit(engine_run.RegressionTask(), engine_run.config(steps=10), tmp_path)
  assert result.step == 10
  assert any((tmp_path / "checkpoints" / "unreadable").iterdir())


class DivergingTask:
  """``loss = sqrt(w)``, SGD with learning rate 1: w = 1, 0.5, then negative: NaN at step 3."""

  def train_source(self):
    return [{"x": np.zeros(1, np.float32)}] * 4

  def init(self, rng, batch):
    return {"w": jnp.ones(())}, {}

  def loss(self, params, state, batch, rng):
    return jnp.sqrt(params["w"]), {}

  def evaluate(self, params, state):
    return {}


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  config = engine_run.config(steps=10, checkpoint_every=1)
  config.optimizer.update(name="sgd", learning_rate=1.0)
  config.batch_size = 2
  with pytest.raises(train.NonFiniteError, match="at step 3.*last good checkpoint: step 2"):
    train.fit(DivergingTask(), config, tmp_path)
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()
                if p.name.isdigit()) == [1, 2]


def test_nan_read_every_k_steps_still_names_the_first_bad_step(tmp_path):
  """Flags read every 8 steps: the error names step 3, and no checkpoint holds the bad update."""
  config = engine_run.config(steps=10, checkpoint_every=5)
  config.optimizer.update(name="sgd", learning_rate=1.0)
  config.update(batch_size=2, log_every=100, finite_check_every=8)
  with pytest.raises(train.NonFiniteError, match="at step 3 .*last good checkpoint: none yet"):
    train.fit(DivergingTask(), config, tmp_path)
  assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]


@pytest.mark.parametrize("every", [0, -2])
def test_finite_check_every_must_be_a_positive_integer(tmp_path, every):
  config = engine_run.config()
  config.finite_check_every = every
  with pytest.raises(ValueError, match="finite_check_every"):
    train.fit(engine_run.RegressionTask(), config, tmp_path)


def test_batch_size_must_divide_over_devices_and_processes(tmp_path):
  config = engine_run.config()
  config.batch_size = 0
  with pytest.raises(ValueError, match="batch_size"):
    train.fit(engine_run.RegressionTask(), config, tmp_path)
