"""Orbax checkpoints of a training run: save every K steps, keep the last N, resume from the newest
readable one.

A checkpoint directory holds two items: ``state`` (the :class:`TrainState` pytree) and ``data`` (the
input iterator's state as JSON). Orbax writes each step to a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoint intact. A newest checkpoint that
still fails to restore is moved to ``checkpoints/unreadable/`` with a warning (never deleted, never
trained over) and the next older one is used.
"""

from __future__ import annotations

import pathlib
import shutil
import time
import warnings

import jax
import numpy as np
import orbax.checkpoint as ocp

# Orbax writes a replicated array "replica-parallel" by default: one slice per device, each cut by
# its own compiled ``lax.slice``. For small arrays the compilations cost far more than the parallel
# write saves (a tiny ViT's first save on 8 CPU devices: 700 slices, 11 s). Only arrays whose
# per-device slice reaches this size are split.
MIN_REPLICA_SLICE_BYTES = 1 << 20


def _state_handler() -> ocp.PyTreeCheckpointHandler:
  """Orbax's pytree handler (the ``StandardSave`` format) with the replica-slice threshold."""
  scalar = ocp.type_handlers.ScalarHandler()
  registry = ocp.type_handlers.create_type_handler_registry(
      (jax.Array, ocp.type_handlers.ArrayHandler(
          min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES)),
      (np.ndarray, ocp.type_handlers.NumpyHandler()),
      (int, scalar), (float, scalar), (np.number, scalar))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


def manager(directory: pathlib.Path, keep: int) -> ocp.CheckpointManager:
  """An orbax ``CheckpointManager`` over ``directory`` keeping the ``keep`` newest steps.

  Args:
    directory: the checkpoint directory (created if missing).
    keep: how many of the newest steps to keep.

  Returns:
    A manager with two items per step: ``state`` (pytree) and ``data`` (JSON).
  """
  return ocp.CheckpointManager(
      directory.absolute(),
      item_handlers={"state": _state_handler(), "data": ocp.JsonCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           cleanup_tmp_directories=True))


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict) -> None:
  """Saves ``state`` and the data-iterator state at ``step`` (asynchronously).

  Args:
    mngr: the manager of :func:`manager`.
    step: the step number the checkpoint is filed under.
    state: the :class:`~jspectral.train.TrainState` pytree.
    data_state: the input iterator's ``get_state()`` (JSON-serialisable).
  """
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state),
                                          data=ocp.args.JsonSave(data_state)), force=True)


def restore_latest(directory: pathlib.Path, keep: int, abstract_state):
  """Restores the newest readable checkpoint onto ``abstract_state`` (shapes and shardings).

  A checkpoint that fails to restore is moved to ``<directory>/unreadable/`` with a warning and the
  next older one is tried.

  Args:
    directory: the checkpoint directory.
    keep: how many of the newest steps the returned manager keeps.
    abstract_state: pytree of ``jax.ShapeDtypeStruct`` (with shardings) of the state to restore.

  Returns:
    ``(manager, state, data_state)``; ``state`` and ``data_state`` are ``None`` when there is no
    checkpoint to resume from.
  """
  mngr = manager(directory, keep)
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.PyTreeRestore(
              abstract_state,
              restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state)),
          data=ocp.args.JsonRestore()))
      return mngr, restored.state, restored.data
    except Exception as error:  # noqa: BLE001  (any read failure means the step is unusable)
      mngr.close()
      moved = _quarantine(directory, step)
      warnings.warn(f"checkpoint at step {step} could not be restored ({error!r}); moved it to "
                    f"{moved} and trying an older one", stacklevel=2)
      mngr = manager(directory, keep)
  return mngr, None, None


def _quarantine(directory: pathlib.Path, step: int) -> pathlib.Path:
  target = directory / "unreadable" / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.move(str(directory / str(step)), target)
  return target
