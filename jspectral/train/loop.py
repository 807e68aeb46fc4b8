"""``fit``: the one training loop every jspectral system goes through.

A :class:`Task` says what to learn; ``fit`` owns how: the device mesh and sharding, one jitted
update step with donated buffers, optax, orbax checkpoints and resume, NaN/Inf detection, the
metrics log and the progress bar. The structure follows big_vision's ``train.py`` (mesh, input,
init, update step, checkpoint, evals, loop) split into named functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import dataclasses
import functools
import inspect
import json
import pathlib
import sys
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
  global batch (sharded over the ``data`` axis), so batch statistics are global. A loss that also
  takes a keyword ``step`` gets the global step (an int32 scalar: the number of updates before this
  one), so one ``fit`` can run a whole multi-phase recipe (noise curricula, per-phase losses) with
  the optimizer state kept across phases.

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
    best: with model selection (``config.select.metric``), the best-scoring evaluation so far:
      ``{"params", "model_state", "score", "step"}``; ``None`` otherwise. It is checkpointed, so a
      resumed run keeps it.
  """
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  model_state: PyTree
  rng: jax.Array
  best: PyTree = None


@dataclasses.dataclass
class FitResult:
  """What :func:`fit` returns: host copies of the final parameters and state, plus the log.

  Attributes:
    params: final trainable parameters (NumPy arrays on the host).
    model_state: final non-trainable collections (NumPy arrays on the host).
    step: the last completed step (``config.total_steps``).
    history: the records written to ``metrics.jsonl`` (training logs and evaluations), in order.
    evals: the final ``task.evaluate`` results, keys prefixed ``eval/``.
    best: with model selection, ``{"params", "model_state", "score", "step"}`` of the evaluation
      that scored best on ``config.select.metric`` (host arrays); ``None`` otherwise.
  """

  params: PyTree
  model_state: PyTree
  step: int
  history: list[dict]
  evals: dict[str, float]
  best: dict | None = None


def default_config() -> ml_collections.ConfigDict:
  """The training fields ``fit`` reads, with neutral defaults; experiment configs override them.

  Returns:
    An ``ml_collections.ConfigDict`` with ``seed``, ``total_steps``, ``batch_size``, ``optimizer``
    and ``schedule`` (see :mod:`jspectral.train.optim`), ``grad_clip_norm``, ``trainable``,
    ``checkpoint_every``, ``keep_checkpoints``, ``eval_every``, ``log_every``, ``progress``,
    ``precision``, ``grad_accum_steps``, ``finite_check_every`` and ``select`` (each explained
    in :data:`CONFIG_FIELDS`).
  """
  return ml_collections.ConfigDict(dict(
      seed=0, total_steps=100, batch_size=8,
      optimizer=dict(name="adam", learning_rate=1e-3, momentum=0.9, nesterov=False,
                     weight_decay=0.0, decay_1d=True, b1=0.9, b2=0.999, eps=1e-8,
                     skip_unused=False, skip_until_used=False),
      schedule=dict(name="constant", warmup_steps=0, min_lr_ratio=0.0, boundaries=[],
                    decay_factor=0.1, cycle_steps=100),
      grad_clip_norm=0.0, trainable="",
      checkpoint_every=50, keep_checkpoints=2, eval_every=0, log_every=10, progress=True,
      precision="float32", grad_accum_steps=1, finite_check_every=16,
      select=dict(metric="", mode="max", restart_at=[], patience=0, ties="later")))


# One line per field of :func:`default_config` (``python -m experiments config NAME`` prints them).
CONFIG_FIELDS = {
    "seed": "PRNG seed of initialisation, dropout and data order",
    "total_steps": "number of optimizer updates",
    "batch_size": "global batch (all devices and processes together)",
    "optimizer.name": "sgd | momentum | adam | adam_l2 (torch Adam's coupled L2) | adamw | lars",
    "optimizer.learning_rate": "peak learning rate",
    "optimizer.momentum": "momentum of sgd/momentum/lars",
    "optimizer.nesterov": "Nesterov momentum",
    "optimizer.weight_decay": "weight decay (decoupled: adamw/sgd/momentum/lars; L2: adam_l2)",
    "optimizer.decay_1d": "False: no weight decay on biases and norm scales",
    "optimizer.b1": "Adam beta1", "optimizer.b2": "Adam beta2", "optimizer.eps": "Adam epsilon",
    "optimizer.skip_unused": "adam, adamw: per-parameter state; unused parameters not updated "
                            "(torch)",
    "optimizer.skip_until_used": "adam, adamw: torch 1.x zero_grad: a parameter is left alone "
                                 "until its first gradient, then updated every step",
    "schedule.name": "constant | warmup_cosine | step | exponential | cyclic",
    "schedule.warmup_steps": "linear warm-up steps",
    "schedule.min_lr_ratio": "final learning rate / peak (warmup_cosine)",
    "schedule.boundaries": "steps where the step schedule decays",
    "schedule.decay_factor": "decay per boundary (step) or over the run (exponential)",
    "schedule.cycle_steps": "cycle length of the cyclic schedule",
    "grad_clip_norm": "clip gradients by global norm when > 0",
    "trainable": "regex over parameter paths; only matches are updated ('' = all)",
    "checkpoint_every": "checkpoint every K steps (and at the last step)",
    "keep_checkpoints": "how many of the newest checkpoints to keep",
    "eval_every": "run task.evaluate every K steps (0 = only at the end)",
    "log_every": "write a metrics.jsonl record every K steps",
    "progress": "show the progress bar",
    "precision": "float32 | bfloat16 (bf16 compute; float32 weights and optimizer state)",
    "grad_accum_steps": "split each batch into k micro-batches whose gradients make one update",
    "finite_check_every": "read the steps' on-device finiteness flags every K steps (and before "
                          "every log, evaluation and checkpoint); the error still names the "
                          "first bad step",
    "select.metric": "evaluate() key that selects the best parameters ('' = keep the last)",
    "select.mode": "max | min: which direction of select.metric is better",
    "select.patience": "early stopping: stop after this many evaluations in a row without a "
                       "strict improvement of select.metric (0 = never)",
    "select.ties": "later | earlier: which of two equal select.metric scores is kept",
    "select.restart_at": "steps from which selection starts afresh (a stage boundary): an "
                         "evaluation at or after one never competes with one before it",
}

# XLA options of a program that runs once, where compiling costs more than running: those that
# ``jax_disable_most_optimizations`` sets.
_RUN_ONCE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
_ALLOW_CONFIG_CHANGES = contextvars.ContextVar("allow_config_changes", default=False)


def release_freed_memory() -> bool:
  """Hands the C heap's freed pages back to the operating system (glibc's ``malloc_trim``).

  An XLA compilation frees hundreds of MB when it ends, but glibc keeps most of it in its arenas,
  so a process stays as large as its compilations' peak. INTL's ResNet-18 step on CPU
  (``benchmarks.versus``): 815 -> 542 MB resident after compiling, peak while training
  1,735 -> 1,363 MB. :func:`fit` calls this once its step has compiled. Elsewhere than Linux with
  glibc it does nothing.

  Returns:
    Whether memory was handed back.
  """
  trim = getattr(ctypes.CDLL(None), "malloc_trim", None) if sys.platform == "linux" else None
  return bool(trim(0)) if trim else False


@contextlib.contextmanager
def allow_config_changes(allow: bool = True):
  """Within this context :func:`fit` resumes a run whose training config changed (otherwise it
  refuses to touch the run directory); shapes must still match the checkpoints."""
  token = _ALLOW_CONFIG_CHANGES.set(allow)
  try:
    yield
  finally:
    _ALLOW_CONFIG_CHANGES.reset(token)


class WorkdirConflictError(ValueError):
  """The run directory holds a run with another training config; nothing was touched."""


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


def _takes_step(loss_fn: Callable) -> bool:
  try:
    return "step" in inspect.signature(loss_fn).parameters
  except (TypeError, ValueError):
    return False


def _cast_floats(tree: PyTree, dtype) -> PyTree:
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, tree)


def _as_like(tree: PyTree, like: PyTree) -> PyTree:
  """``tree`` with the dtypes of ``like`` (a bf16 forward pass hands back float32 statistics)."""
  return jax.tree.map(lambda x, ref: jnp.asarray(x, jnp.result_type(ref)), tree, like)


def _loss_and_grads(loss_fn: Callable, params, model_state, batch, rng, step, precision: str):
  """``((loss, aux), grads)`` of one (micro-)batch, float32 out whatever the compute precision."""
  call = (functools.partial(loss_fn, step=step) if _takes_step(loss_fn) else loss_fn)

  def compute(p):
    if precision == "bfloat16":
      loss, aux = call(_cast_floats(p, jnp.bfloat16), model_state,
                       _cast_floats(batch, jnp.bfloat16), rng)
      aux = dict(aux)
      if "state" in aux:
        aux["state"] = _as_like(aux["state"], model_state)
      return loss.astype(jnp.float32), _cast_floats(aux, jnp.float32)
    return call(p, model_state, batch, rng)

  (loss, aux), grads = jax.value_and_grad(compute, has_aux=True)(params)
  return (loss, dict(aux)), grads


def _accumulated(loss_fn: Callable, params, model_state, batch, rng, step, k: int,
                 precision: str):
  """Mean loss, logged scalars and gradient over ``k`` equal micro-batches of ``batch``; the
  model state threads through them in order (micro-batch ``i`` uses ``fold_in(rng, i)``)."""
  micro = jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), batch)
  first = jax.tree.map(lambda x: x[0], micro)
  (loss, aux), grads = _loss_and_grads(loss_fn, params, model_state, first,
                                       jax.random.fold_in(rng, 0), step, precision)
  state = aux.pop("state", model_state)

  def body(carry, i):
    state, loss_sum, aux_sum, grad_sum = carry
    mb = jax.tree.map(lambda x: x[i], micro)
    (part, a), g = _loss_and_grads(loss_fn, params, state, mb, jax.random.fold_in(rng, i), step,
                                   precision)
    state = a.pop("state", state)
    add = lambda u, v: jax.tree.map(jnp.add, u, v)
    return (state, loss_sum + part, add(aux_sum, a), add(grad_sum, g)), None

  (state, loss, aux, grads), _ = jax.lax.scan(body, (state, loss, aux, grads), jnp.arange(1, k))
  mean = lambda tree: jax.tree.map(lambda x: x / k, tree)
  return (loss / k, {**mean(aux), "state": state}), mean(grads)


def train_step(ts: TrainState, batch: PyTree, *, loss_fn: Callable,
               tx: optax.GradientTransformation, grad_accum_steps: int = 1,
               precision: str = "float32"):
  """One update. A non-finite loss or gradient leaves ``ts`` unchanged and reports ``ok=False``.

  Args:
    ts: the current :class:`TrainState`.
    batch: the global batch (pytree of arrays with a leading batch axis ``B``).
    loss_fn: ``(params, model_state, batch, rng[, step=]) -> (loss, aux)`` (a :class:`Task`'s
      ``loss``); ``aux["state"]``, if present, becomes the new ``model_state``.
    tx: the optax transformation.
    grad_accum_steps: ``k``: the batch is cut into ``k`` micro-batches of ``B / k`` rows whose mean
      gradient makes the one update (``B`` divisible by ``k``).
    precision: ``"float32"`` or ``"bfloat16"``: the loss runs on bf16 copies of the parameters and
      of the floating-point batch; gradients, parameters and optimizer state stay float32.

  Returns:
    ``(new_ts, metrics, ok)``: the updated state (``ts`` itself if not ``ok``), a dict with scalar
    ``loss``, ``grad_norm`` and the other ``aux`` entries, and a boolean scalar.
  """
  rng = jax.random.fold_in(ts.rng, ts.step)
  if grad_accum_steps > 1:
    (loss, aux), grads = _accumulated(loss_fn, ts.params, ts.model_state, batch, rng, ts.step,
                                      grad_accum_steps, precision)
  else:
    (loss, aux), grads = _loss_and_grads(loss_fn, ts.params, ts.model_state, batch, rng, ts.step,
                                         precision)
  model_state = aux.pop("state", ts.model_state)
  updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
  grad_norm = optax.tree.norm(grads)
  ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  candidate = ts.replace(step=ts.step + 1, params=optax.apply_updates(ts.params, updates),
                         opt_state=opt_state, model_state=model_state)
  new_ts = jax.tree.map(lambda new, old: jnp.where(ok, new, old), candidate, ts)
  return new_ts, {"loss": loss, "grad_norm": grad_norm, **aux}, ok


def fit(task: Task, config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> FitResult:
  """Trains ``task`` for ``config.total_steps`` steps, resuming from ``workdir`` if it holds a run.

  Writes ``train_config.json``, ``metrics.jsonl`` and ``checkpoints/`` under ``workdir``. A run
  killed at any point and restarted on the same workdir ends with the same parameters as an
  uninterrupted one. ``metrics.jsonl`` is only appended to; a restart adds a ``resumed`` record.
  With ``config.select.metric`` set, every evaluation that improves on it keeps a copy of the
  parameters in the checkpointed state (:attr:`FitResult.best`).

  Args:
    task: what to learn (:class:`Task`).
    config: the training fields of :func:`default_config` (experiment configs extend them);
      ``config.batch_size`` is the global batch and must be divisible by the number of devices
      times ``config.grad_accum_steps``.
    workdir: the run directory (created if missing).

  Returns:
    A :class:`FitResult` with host copies of the final parameters and state and the log.

  Raises:
    NonFiniteError: the loss or gradient was NaN/Inf; the message names the step and the newest
      verified checkpoint.
    WorkdirConflictError: ``workdir`` holds a run with another training config (nothing touched;
      see :func:`allow_config_changes`).
    checkpoint.CheckpointMismatchError: the checkpoints hold arrays of other shapes.
    checkpoint.NoUsableCheckpointError: checkpoints exist but none restores and verifies.
    ValueError: a config field is out of range (the message names it).
  """
  workdir = pathlib.Path(workdir)
  is_main = jax.process_index() == 0
  mesh = make_mesh()
  _check_config(config, mesh.size)
  if is_main:
    _claim_workdir(workdir, config)

  # Input, optimizer and the state, born replicated.
  batches = pipeline.train_batches(task.train_source(), batch_size=config.batch_size,
                                   seed=config.seed, augment=getattr(task, "augment", None))
  data_iter = pipeline.iterate(batches)
  custom_schedule = getattr(task, "schedule", None)
  tx, schedule = optim.make_optimizer(
      config, config.total_steps, custom_schedule(config) if custom_schedule else None)
  replicated = NamedSharding(mesh, PartitionSpec())
  select = _Selection.of(config)

  # The batch is an argument, not a closed-over constant: XLA would otherwise constant-fold
  # everything the model computes from it while compiling (minutes for a 3-D conv network).
  def init_state(rng, batch):
    params, model_state = task.init(rng, batch)
    return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), model_state, rng,
                      select.initial(params, model_state))

  # It runs once: compiled without XLA's backend optimisations (MAN's init compiled in 16 s with
  # them, 7 s without; its values may differ from an optimised build's in the last bit).
  first_batch = global_batch(mesh, batches[0])
  init_fn = functools.partial(jax.jit(init_state, out_shardings=replicated,
                                      compiler_options=_RUN_ONCE), batch=first_batch)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                          jax.eval_shape(init_state, rng, first_batch))

  # Checkpoint: resume or start.
  mngr, ts, data_state = checkpoint.restore_latest(
      workdir / "checkpoints", config.keep_checkpoints, abstract)
  verified = None if ts is None else int(ts.step)     # newest checkpoint known to be good
  if ts is None:
    ts = init_fn(rng)
  else:
    data_iter.set_state(data_state)
    if is_main:
      print(f"{workdir.name}: resumed from step {verified} of {config.total_steps}", flush=True)
  start = int(ts.step)
  history = _MetricsLog(workdir / "metrics.jsonl", start, config.total_steps, enabled=is_main)

  loss_fn = _freeze(task.loss, config.trainable) if config.trainable else task.loss
  step_fn = jax.jit(functools.partial(
      train_step, loss_fn=loss_fn, tx=tx, grad_accum_steps=config.get("grad_accum_steps", 1),
      precision=config.get("precision", "float32")), donate_argnums=0)
  bar = tqdm(total=config.total_steps, initial=start, disable=not (is_main and config.progress),
             desc=workdir.name, dynamic_ncols=True)
  last_time, last_step = time.perf_counter(), start
  # Finiteness flags stay on device and are read every finite_check_every steps (a read per step
  # is a host sync that stalls the dispatch of the next step), and always before anything leaves
  # the step loop: a log record, an evaluation, a checkpoint, the end.
  check_every = config.get("finite_check_every", 1)
  unchecked = []
  try:
    last = start if select.stops(ts) else config.total_steps   # a run that stopped early stays so
    for step in range(start + 1, last + 1):
      ts, metrics, ok = step_fn(ts, global_batch(mesh, next(data_iter)))
      if step == start + 1:   # the call that compiled the step
        release_freed_memory()
      unchecked.append((step, ok, metrics))
      log = step % config.log_every == 0 or step == config.total_steps
      evaluate = bool(config.eval_every) and step % config.eval_every == 0
      save = step % config.checkpoint_every == 0 or step == config.total_steps
      if log or evaluate or save or step % check_every == 0 or select.patience:
        _raise_first_non_finite(unchecked, mngr, verified, workdir / "checkpoints")
        unchecked = []
      if log:
        now = time.perf_counter()
        record = {k: float(v) for k, v in metrics.items()}
        record.update(step=step, learning_rate=float(schedule(step - 1)),
                      examples_per_sec=config.batch_size * (step - last_step) / (now - last_time))
        last_time, last_step = now, step
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", ex_s=f"{record['examples_per_sec']:.1f}")
      if evaluate and step != config.total_steps:
        ts, evals = select.evaluate(task, ts)
        history.append({"step": step, **evals})
      stop = select.stops(ts)
      if stop or save:
        checkpoint.save(mngr, step, ts, data_iter.get_state())
        verified = step
      bar.update(1)
      if stop:
        history.append({"step": step, "event": "early_stop", "patience": select.patience})
        break
    ts, evals = select.evaluate(task, ts)
    history.append({"step": int(ts.step), **evals})
  finally:
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
  params, model_state, best = jax.tree.map(_host, (ts.params, ts.model_state, ts.best))
  return FitResult(params, model_state, int(ts.step), history.records, evals, best)


def config_differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
  """``"key: old -> new"`` for every dotted key whose value differs between two nested dicts.

  Args:
    old, new: JSON-like nested dicts (e.g. ``json.loads(config.to_json())``).
    prefix: prepended to every key.

  Returns:
    The differences, sorted by key; a key missing on one side shows as ``'<absent>'``.
  """
  keys = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
    if isinstance(a, Mapping) and isinstance(b, Mapping):
      keys.extend(config_differences(a, b, f"{prefix}{key}."))
    elif a != b:
      keys.append(f"{prefix}{key}: {a!r} -> {b!r}")
  return keys


def _check_config(config: ml_collections.ConfigDict, devices: int) -> None:
  """Refuses out-of-range training fields with a message that names the field."""
  accum = config.get("grad_accum_steps", 1)
  if config.total_steps < 1:
    raise ValueError(f"config.total_steps: expected >= 1, got {config.total_steps}")
  if not isinstance(accum, int) or accum < 1:
    raise ValueError(f"config.grad_accum_steps: expected an integer >= 1, got {accum!r}")
  if config.batch_size < 1 or config.batch_size % (devices * accum):
    raise ValueError(f"config.batch_size: {config.batch_size} is not a positive multiple of the "
                     f"{devices} devices of the mesh times grad_accum_steps={accum}")
  every = config.get("finite_check_every", 1)
  if not isinstance(every, int) or every < 1:
    raise ValueError(f"config.finite_check_every: expected an integer >= 1, got {every!r}")
  if config.get("precision", "float32") not in ("float32", "bfloat16"):
    raise ValueError(f"config.precision: expected 'float32' or 'bfloat16', got "
                     f"{config.precision!r}")
  if "select" in config and config.select.mode not in ("max", "min"):
    raise ValueError(f"config.select.mode: expected 'max' or 'min', got {config.select.mode!r}")
  if "select" in config and config.select.get("ties", "later") not in ("later", "earlier"):
    raise ValueError(f"config.select.ties: expected 'later' or 'earlier', got "
                     f"{config.select.ties!r}")
  if "select" in config and config.select.get("patience", 0) < 0:
    raise ValueError(f"config.select.patience: expected >= 0, got {config.select.patience}")


def guard_saved_config(path: pathlib.Path, text: str, *, allow: bool, advice: str) -> list[str]:
  """Compares the config JSON saved at ``path`` with ``text`` before a run touches its directory.

  Args:
    path: the saved config (``config.json``, ``train_config.json``); absent means a new run.
    text: the new config as JSON.
    allow: accept a changed config: the old file is kept as ``<stem>.<time>.json``.
    advice: what the user can do instead, appended to the error.

  Returns:
    The differing keys as ``"key: old -> new"`` (empty when the configs agree).

  Raises:
    WorkdirConflictError: the configs differ and ``allow`` is false; nothing was touched.
  """
  if not path.exists() or path.read_text() == text:
    return []
  changes = config_differences(json.loads(path.read_text()), json.loads(text))
  if not allow:
    raise WorkdirConflictError(f"{path.parent} holds a run with another config "
                               f"({'; '.join(changes)}); {advice}")
  path.rename(path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"))
  return changes


def _claim_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """Writes ``train_config.json``, refusing (before touching anything) a workdir that holds a run
  with another training config unless :func:`allow_config_changes` is active."""
  path = workdir / "train_config.json"
  text = config.to_json_best_effort(indent=2) + "\n"
  guard_saved_config(path, text, allow=_ALLOW_CONFIG_CHANGES.get(),
                     advice="use another workdir, move that run away, or resume it inside "
                            "jspectral.train.allow_config_changes()")
  workdir.mkdir(parents=True, exist_ok=True)
  path.write_text(text)


@dataclasses.dataclass(frozen=True)
class _Selection:
  """Model selection on ``task.evaluate()[metric]``: the best evaluation's parameters are kept in
  :attr:`TrainState.best` (so they are checkpointed with the run); of equal scores the later
  evaluation wins (``ties="earlier"``: the earlier one). The first evaluation at or after a step of
  ``restart_at`` replaces the best whatever its score (the official HSDT/MAN recipes reset their
  best PSNR when the training noise changes). With ``patience`` the best also counts the
  evaluations since the last strict improvement (``"stale"``, checkpointed), and training stops
  when it reaches ``patience`` (the official LoLA-SpecViT loop: 15)."""

  metric: str = ""
  mode: str = "max"
  restart_at: tuple[int, ...] = ()
  patience: int = 0
  ties: str = "later"

  @classmethod
  def of(cls, config) -> _Selection:
    select = config.get("select")
    if select is None:
      return cls()
    return cls(select.metric, select.mode, tuple(select.get("restart_at", ())),
               select.get("patience", 0), select.get("ties", "later"))

  def initial(self, params, model_state):
    if not self.metric:
      return None
    worst = -jnp.inf if self.mode == "max" else jnp.inf
    best = {"params": params, "model_state": model_state,
            "score": jnp.asarray(worst, jnp.float32), "step": jnp.zeros((), jnp.int32)}
    return {**best, "stale": jnp.zeros((), jnp.int32)} if self.patience else best

  def stops(self, ts: TrainState) -> bool:
    """Whether ``patience`` evaluations in a row have not improved the best score."""
    return bool(self.patience) and int(_host(ts.best["stale"])) >= self.patience

  def evaluate(self, task: Task, ts: TrainState) -> tuple[TrainState, dict[str, float]]:
    evals = _evaluate(task, ts)
    if not self.metric:
      return ts, evals
    key = f"eval/{self.metric}"
    if key not in evals:
      raise ValueError(f"config.select.metric: {self.metric!r} is not among the task's "
                       f"evaluation results {sorted(k[5:] for k in evals)}")
    # compared as stored (float32), so an equal score is a tie and not an improvement
    score, best = float(np.float32(evals[key])), float(_host(ts.best["score"]))
    step, best_step = int(_host(ts.step)), int(_host(ts.best["step"]))
    if any(best_step < b <= step for b in self.restart_at):     # a new stage: start afresh
      best = -jnp.inf if self.mode == "max" else jnp.inf
    improved = (score > best) if self.mode == "max" else (score < best)
    if improved or (score == best and self.ties == "later"):
      ts = _keep_best(ts, jnp.float32(score))
    if self.patience:
      ts = _set_stale(ts, 0 if improved else int(_host(ts.best["stale"])) + 1)
    return ts, {**evals, f"best/{self.metric}": max(score, best) if self.mode == "max"
                else min(score, best)}


@jax.jit
def _keep_best(ts: TrainState, score: jax.Array) -> TrainState:
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  return ts.replace(best={**ts.best, "params": copy(ts.params),
                         "model_state": copy(ts.model_state), "score": score, "step": ts.step})


@jax.jit
def _set_stale(ts: TrainState, stale: jax.Array) -> TrainState:
  return ts.replace(best={**ts.best, "stale": jnp.asarray(stale, jnp.int32)})


def _freeze(loss_fn: Callable, pattern: str) -> Callable:
  """``loss_fn`` with ``stop_gradient`` on parameters outside ``pattern``, so no backward pass is
  spent on frozen layers (e.g. the random front end under LoRA-only training)."""
  labels_fn = optim.trainable_labels(pattern)

  @functools.wraps(loss_fn)
  def frozen_loss(params, *args, **kwargs):
    params = jax.tree.map(lambda p, label: p if label == "train" else jax.lax.stop_gradient(p),
                          params, labels_fn(params))
    return loss_fn(params, *args, **kwargs)

  return frozen_loss


def _host(x):
  return np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x


def _raise_first_non_finite(unchecked: list, mngr, verified: int | None,
                            checkpoints: pathlib.Path) -> None:
  """Raises :class:`NonFiniteError` for the first ``(step, ok, metrics)`` whose ``ok`` is False."""
  flags = jax.device_get([ok for _, ok, _ in unchecked])
  for (step, _, metrics), ok in zip(unchecked, flags, strict=True):
    if not ok:
      mngr.wait_until_finished()
      where = f"step {verified} in {checkpoints}" if verified is not None else "none yet"
      raise NonFiniteError(
          f"non-finite loss or gradient at step {step} (loss={float(metrics['loss'])}, "
          f"grad_norm={float(metrics['grad_norm'])}); last good checkpoint: {where}")


def _evaluate(task: Task, ts: TrainState) -> dict[str, float]:
  params, model_state = jax.tree.map(_host, (ts.params, ts.model_state))
  return {f"eval/{k}": float(v) for k, v in task.evaluate(params, model_state).items()}


class _MetricsLog:
  """``metrics.jsonl``: one JSON object per line, only ever appended to. A restart appends a
  ``resumed`` record; in memory, the records past the restored step (they are replayed) are
  dropped."""

  def __init__(self, path: pathlib.Path, start: int, total_steps: int, enabled: bool):
    self.path, self.enabled = path, enabled
    self.records = ([r for r in _read_jsonl(path) if "event" not in r and r["step"] <= start]
                    if enabled else [])
    if enabled and path.exists() and not path.read_bytes().endswith(b"\n"):
      self._write_text("\n")          # close a line cut short by a kill
    if enabled and start:
      self._write({"step": start, "event": "resumed", "total_steps": total_steps})

  def append(self, record: Mapping[str, Any]) -> None:
    if self.enabled:
      self.records.append(dict(record))
      self._write(record)

  def _write(self, record: Mapping[str, Any]) -> None:
    self._write_text(json.dumps(record) + "\n")

  def _write_text(self, text: str) -> None:
    with self.path.open("a") as f:
      f.write(text)


def _read_jsonl(path: pathlib.Path) -> list[dict]:
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:  # a line cut short by a kill
      continue
  return records
