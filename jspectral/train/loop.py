"""``fit``: the one training loop every jspectral system goes through.

A :class:`Task` says what to learn; ``fit`` owns how: the device mesh and sharding, one jitted
update step with donated buffers, optax, orbax checkpoints and resume, NaN/Inf detection, the
metrics log and the progress bar. The structure follows big_vision's ``train.py`` (mesh, input,
init, update step, checkpoint, evals, loop) split into named functions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from jspectral.data import pipeline
from jspectral.train import checkpoint, optim

PyTree = Any


class Task(Protocol):
  """What a system supplies to :func:`fit`.

  ``train_source()`` returns the training examples: a ``grain.MapDataset`` or a random-access
  sequence of dicts of NumPy arrays. ``fit`` shuffles, repeats, shards per process and batches it.
  ``augment(example, np_rng)`` (optional attribute) applies per-example host-side randomness.

  ``init(rng, batch) -> (params, state)``: ``state`` holds the non-trainable collections
  (BatchNorm statistics, EMA teachers, queues); ``{}`` if none.

  ``loss(params, state, batch, rng) -> (loss, aux)``: a pure, jit-able scalar loss. ``aux`` is a
  dict of scalars to log; its optional entry ``"state"`` is the updated ``state``. ``batch`` is the
  global batch (sharded over the ``data`` axis), so batch statistics are global.

  ``evaluate(params, state) -> dict[str, float]``: host-side evaluation, run every
  ``config.eval_every`` steps and at the end.

  ``schedule(config) -> optax.Schedule`` (optional attribute) replaces the config's named
  learning-rate schedule.
  """

  def train_source(self):
    """The training examples.

    Returns:
      A ``grain.MapDataset`` or a random-access sequence of dicts of NumPy arrays.
    """
    ...

  def init(self, rng: jax.Array, batch: PyTree) -> tuple[PyTree, PyTree]:
    """Initial parameters and non-trainable state.

    Args:
      rng: PRNG key.
      batch: the first global batch (pytree of arrays ``(B, ...)``), for shapes.

    Returns:
      ``(params, state)``; ``state`` is ``{}`` when the model has no non-trainable collections.
    """
    ...

  def loss(self, params, state, batch, rng) -> tuple[jax.Array, dict]:
    """The pure, jit-able training loss of one global batch.

    Args:
      params: trainable parameters.
      state: non-trainable collections.
      batch: the global batch (pytree of arrays ``(B, ...)``, sharded over ``data``).
      rng: this step's key, ``fold_in(base_key, step)``.

    Returns:
      ``(loss, aux)``: a scalar and a dict of scalars to log; ``aux["state"]`` (optional) is the
      updated ``state``.
    """
    ...

  def evaluate(self, params, state) -> dict[str, float]:
    """Host-side evaluation (every ``config.eval_every`` steps and at the end).

    Args:
      params: trainable parameters (host NumPy arrays).
      state: non-trainable collections (host NumPy arrays).

    Returns:
      Named scalar results; ``fit`` logs them with an ``eval/`` prefix.
    """
    ...


@flax.struct.dataclass
class TrainState:
  """The pytree ``fit`` carries between steps (replicated over the mesh; donated to each update).

  Attributes:
    step: int32 scalar, the number of updates applied so far.
    params: the trainable parameters, as returned by ``Task.init``.
    opt_state: the optax optimizer state of ``params``.
    model_state: the non-trainable collections (BatchNorm statistics, EMA teachers, queues).
    rng: the run's base PRNG key; step ``s`` uses ``fold_in(rng, s)``, so a resumed run replays the
      same randomness.
  """
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  model_state: PyTree
  rng: jax.Array


@dataclasses.dataclass
class FitResult:
  """What :func:`fit` returns: host copies of the final parameters and state, plus the log.

  Attributes:
    params: final trainable parameters (NumPy arrays on the host).
    model_state: final non-trainable collections (NumPy arrays on the host).
    step: the last completed step (``config.total_steps``).
    history: the records written to ``metrics.jsonl`` (training logs and evaluations), in order.
    evals: the final ``task.evaluate`` results, keys prefixed ``eval/``.
  """

  params: PyTree
  model_state: PyTree
  step: int
  history: list[dict]
  evals: dict[str, float]


def default_config() -> ml_collections.ConfigDict:
  """The training fields ``fit`` reads, with neutral defaults; experiment configs override them.

  Returns:
    An ``ml_collections.ConfigDict`` with ``seed``, ``total_steps``, ``batch_size``, ``optimizer``
    and ``schedule`` (see :mod:`jspectral.train.optim`), ``grad_clip_norm``, ``trainable``,
    ``checkpoint_every``, ``keep_checkpoints``, ``eval_every``, ``log_every`` and ``progress``.
  """
  return ml_collections.ConfigDict(dict(
      seed=0, total_steps=100, batch_size=8,
      optimizer=dict(name="adam", learning_rate=1e-3, momentum=0.9, nesterov=False,
                     weight_decay=0.0, decay_1d=True, b1=0.9, b2=0.999, eps=1e-8),
      schedule=dict(name="constant", warmup_steps=0, min_lr_ratio=0.0, boundaries=[],
                    decay_factor=0.1, cycle_steps=100),
      grad_clip_norm=0.0, trainable="",
      checkpoint_every=50, keep_checkpoints=2, eval_every=0, log_every=10, progress=True))


class NonFiniteError(FloatingPointError):
  """The loss or the gradient became NaN/Inf; the last good checkpoint is kept."""


def make_mesh() -> Mesh:
  """A 1-D mesh with axis ``data`` over every device of every process.

  Returns:
    A ``jax.sharding.Mesh`` of shape ``(jax.device_count(),)`` named ``("data",)``.
  """
  return Mesh(np.asarray(jax.devices()), ("data",))


def global_batch(mesh: Mesh, local_batch: PyTree) -> PyTree:
  """Assembles the global, ``data``-sharded batch from each process's local rows.

  Args:
    mesh: the mesh of :func:`make_mesh`.
    local_batch: pytree of host arrays ``(B_local, ...)``, this process's rows of the batch.

  Returns:
    The same pytree of global ``jax.Array`` s ``(B_local * process_count, ...)``, sharded along
    axis 0 over the mesh's ``data`` axis.
  """
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def train_step(ts: TrainState, batch: PyTree, *, loss_fn: Callable,
               tx: optax.GradientTransformation):
  """One update. A non-finite loss or gradient leaves ``ts`` unchanged and reports ``ok=False``.

  Args:
    ts: the current :class:`TrainState`.
    batch: the global batch (pytree of arrays with a leading batch axis).
    loss_fn: ``(params, model_state, batch, rng) -> (loss, aux)`` (a :class:`Task`'s ``loss``);
      ``aux["state"]``, if present, becomes the new ``model_state``.
    tx: the optax transformation.

  Returns:
    ``(new_ts, metrics, ok)``: the updated state (``ts`` itself if not ``ok``), a dict with scalar
    ``loss``, ``grad_norm`` and the other ``aux`` entries, and a boolean scalar.
  """
  rng = jax.random.fold_in(ts.rng, ts.step)
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      ts.params, ts.model_state, batch, rng)
  aux = dict(aux)
  model_state = aux.pop("state", ts.model_state)
  updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
  grad_norm = optax.tree.norm(grads)
  ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  candidate = TrainState(ts.step + 1, optax.apply_updates(ts.params, updates), opt_state,
                         model_state, ts.rng)
  new_ts = jax.tree.map(lambda new, old: jnp.where(ok, new, old), candidate, ts)
  return new_ts, {"loss": loss, "grad_norm": grad_norm, **aux}, ok


def fit(task: Task, config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> FitResult:
  """Trains ``task`` for ``config.total_steps`` steps, resuming from ``workdir`` if it holds a run.

  Writes ``config.json``, ``metrics.jsonl`` and ``checkpoints/`` under ``workdir``. A run killed at
  any point and restarted on the same workdir ends with the same parameters as an uninterrupted one.

  Args:
    task: what to learn (:class:`Task`).
    config: the training fields of :func:`default_config` (experiment configs extend them);
      ``config.batch_size`` is the global batch and must be divisible by the number of devices.
    workdir: the run directory (created if missing).

  Returns:
    A :class:`FitResult` with host copies of the final parameters and state and the log.

  Raises:
    NonFiniteError: the loss or gradient was NaN/Inf; the message names the step.
    ValueError: ``config.batch_size`` is not divisible by the number of devices.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

  # Mesh and input.
  mesh = make_mesh()
  if config.batch_size % mesh.size:
    raise ValueError(f"config.batch_size: {config.batch_size} is not divisible by the "
                     f"{mesh.size} devices of the mesh")
  batches = pipeline.train_batches(task.train_source(), batch_size=config.batch_size,
                                   seed=config.seed, augment=getattr(task, "augment", None))
  data_iter = iter(batches.to_iter_dataset())

  # Optimizer and state, born replicated.
  custom_schedule = getattr(task, "schedule", None)
  tx, schedule = optim.make_optimizer(
      config, config.total_steps, custom_schedule(config) if custom_schedule else None)
  replicated = NamedSharding(mesh, PartitionSpec())
  first_batch = global_batch(mesh, batches[0])

  # The batch is an argument, not a closed-over constant: XLA would otherwise constant-fold
  # everything the model computes from it while compiling (minutes for a 3-D conv network).
  def init_state(rng, batch):
    params, model_state = task.init(rng, batch)
    return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), model_state, rng)

  init_fn = functools.partial(jax.jit(init_state, out_shardings=replicated), batch=first_batch)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init_fn, rng)
  abstract = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), abstract)

  # Checkpoint: resume or start.
  mngr, ts, data_state = checkpoint.restore_latest(
      workdir / "checkpoints", config.keep_checkpoints, abstract)
  if ts is None:
    ts = init_fn(rng)
  else:
    data_iter.set_state(data_state)
  start = int(ts.step)
  history = _MetricsLog(workdir / "metrics.jsonl", start, enabled=is_main)

  loss_fn = _freeze(task.loss, config.trainable) if config.trainable else task.loss
  step_fn = jax.jit(functools.partial(train_step, loss_fn=loss_fn, tx=tx), donate_argnums=0)
  evals: dict[str, float] = {}
  bar = tqdm(total=config.total_steps, initial=start, disable=not (is_main and config.progress),
             desc=workdir.name, dynamic_ncols=True)
  last_time, last_step = time.perf_counter(), start
  try:
    for step in range(start + 1, config.total_steps + 1):
      ts, metrics, ok = step_fn(ts, global_batch(mesh, next(data_iter)))
      if not bool(ok):
        mngr.wait_until_finished()
        raise NonFiniteError(
            f"non-finite loss or gradient at step {step} (loss={float(metrics['loss'])}, "
            f"grad_norm={float(metrics['grad_norm'])}); last good checkpoint: step "
            f"{mngr.latest_step()} in {workdir / 'checkpoints'}")
      if step % config.log_every == 0 or step == config.total_steps:
        now = time.perf_counter()
        record = {k: float(v) for k, v in metrics.items()}
        record.update(step=step, learning_rate=float(schedule(step - 1)),
                      examples_per_sec=config.batch_size * (step - last_step) / (now - last_time))
        last_time, last_step = now, step
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", ex_s=f"{record['examples_per_sec']:.1f}")
      if config.eval_every and step % config.eval_every == 0 and step != config.total_steps:
        history.append({"step": step, **_evaluate(task, ts)})
      if step % config.checkpoint_every == 0 or step == config.total_steps:
        checkpoint.save(mngr, step, ts, data_iter.get_state())
      bar.update(1)
    evals = _evaluate(task, ts)
    history.append({"step": int(ts.step), **evals})
  finally:
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
  host = jax.tree.map(_host, (ts.params, ts.model_state))
  return FitResult(host[0], host[1], int(ts.step), history.records, evals)


def _freeze(loss_fn: Callable, pattern: str) -> Callable:
  """``loss_fn`` with ``stop_gradient`` on parameters outside ``pattern``, so no backward pass is
  spent on frozen layers (e.g. the random front end under LoRA-only training)."""
  labels_fn = optim.trainable_labels(pattern)

  def frozen_loss(params, *args):
    params = jax.tree.map(lambda p, label: p if label == "train" else jax.lax.stop_gradient(p),
                          params, labels_fn(params))
    return loss_fn(params, *args)

  return frozen_loss


def _host(x):
  return np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x


def _evaluate(task: Task, ts: TrainState) -> dict[str, float]:
  params, model_state = jax.tree.map(_host, (ts.params, ts.model_state))
  return {f"eval/{k}": float(v) for k, v in task.evaluate(params, model_state).items()}


class _MetricsLog:
  """``metrics.jsonl``: one JSON object per line; on resume, lines past the restored step go."""

  def __init__(self, path: pathlib.Path, start: int, enabled: bool):
    self.path, self.enabled = path, enabled
    self.records = [r for r in _read_jsonl(path) if r["step"] <= start] if enabled else []
    if enabled:
      tmp = path.with_suffix(".jsonl.tmp")
      tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
      tmp.replace(path)

  def append(self, record: Mapping[str, Any]) -> None:
    if self.enabled:
      self.records.append(dict(record))
      with self.path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _read_jsonl(path: pathlib.Path) -> list[dict]:
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:  # a line cut short by a kill
      break
  return records
