"""Orbax checkpoints of a training run: save every K steps, keep the last N, resume from the newest
readable one.

A checkpoint directory holds two items: ``state`` (the :class:`TrainState` pytree) and ``data``
(JSON: the input iterator's state and a CRC-32 checksum of every array of ``state``). Orbax writes
each step to a temporary directory and renames it when complete, so a run killed mid-save leaves the
previous checkpoint intact. On restore, a checkpoint that cannot be read or whose arrays no longer
match their checksum (bytes changed in place) is moved to ``checkpoints/unreadable/`` with a warning
naming it (never deleted, never trained over) and the next older one is used; when checkpoints exist
but none is usable the restore raises. A checkpoint whose array shapes differ from the model's is a
different run, not a corrupt one: the restore raises :class:`CheckpointMismatchError` and moves
nothing.
"""

from __future__ import annotations

import pathlib
import shutil
import time
import warnings
import zlib

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


class CheckpointMismatchError(ValueError):
  """The checkpoints belong to a model of other array shapes (the config changed)."""


class NoUsableCheckpointError(RuntimeError):
  """Checkpoints exist but none restores and verifies; nothing was trained over them."""


def checksum(state) -> int:
  """CRC-32 over the bytes of every array of ``state`` (this process's first replica), in pytree
  order: equal states give equal checksums, a changed byte almost surely a different one."""
  crc = 0
  for leaf in jax.tree.leaves(state):
    data = leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf
    crc = zlib.crc32(np.ascontiguousarray(np.asarray(data)).tobytes(), crc)
  return crc


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict) -> None:
  """Saves ``state`` and the data-iterator state at ``step`` (asynchronously).

  Args:
    mngr: the manager of :func:`manager`.
    step: the step number the checkpoint is filed under.
    state: the :class:`~jspectral.train.TrainState` pytree.
    data_state: the input iterator's ``get_state()`` (JSON-serialisable).
  """
  record = {"iterator": data_state, "checksum": checksum(state)}
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state),
                                          data=ocp.args.JsonSave(record)), force=True)


def restore_latest(directory: pathlib.Path, keep: int, abstract_state):
  """Restores the newest usable checkpoint onto ``abstract_state`` (shapes and shardings).

  A checkpoint that fails to restore or to verify is moved to ``<directory>/unreadable/`` with a
  warning naming it, and the next older one is tried.

  Args:
    directory: the checkpoint directory.
    keep: how many of the newest steps the returned manager keeps.
    abstract_state: pytree of ``jax.ShapeDtypeStruct`` (with shardings) of the state to restore.

  Returns:
    ``(manager, state, data_state)``; ``state`` and ``data_state`` are ``None`` when the directory
    holds no checkpoint.

  Raises:
    CheckpointMismatchError: the newest checkpoint's array shapes differ from ``abstract_state``.
    NoUsableCheckpointError: checkpoints exist but none restores and verifies.
  """
  mngr = manager(directory, keep)
  steps = sorted(mngr.all_steps(), reverse=True)
  for step in steps:
    _check_shapes(mngr, step, abstract_state, directory)
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.PyTreeRestore(
              abstract_state,
              restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state)),
          data=ocp.args.JsonRestore()))
      if restored.data.get("checksum") != checksum(restored.state):
        raise ValueError("its arrays do not match the checksum saved with them")
      return mngr, restored.state, restored.data["iterator"]
    except Exception as error:  # noqa: BLE001  (any read failure means the step is unusable)
      mngr.close()
      moved = _quarantine(directory, step)
      warnings.warn(f"checkpoint at step {step} could not be restored ({error}); moved it to "
                    f"{moved} and trying an older one", stacklevel=2)
      mngr = manager(directory, keep)
  if steps:
    mngr.close()
    raise NoUsableCheckpointError(
        f"none of the checkpoints in {directory} (steps {steps}) could be restored; they are in "
        f"{directory / 'unreadable'}. Move the run directory away to start a new run.")
  return mngr, None, None


def _check_shapes(mngr, step: int, abstract_state, directory: pathlib.Path) -> None:
  """Raises :class:`CheckpointMismatchError` when the saved array shapes are not the model's."""
  try:
    saved = mngr.item_metadata(step)["state"].tree
  except Exception:  # noqa: BLE001  (unreadable metadata: the restore itself will say so)
    return
  shapes = lambda tree: sorted(tuple(x.shape) for x in jax.tree.leaves(tree)
                               if hasattr(x, "shape"))
  if shapes(saved) != shapes(abstract_state):
    mngr.close()
    raise CheckpointMismatchError(
        f"the checkpoint at step {step} in {directory} holds arrays of other shapes than this "
        "model's: the run directory belongs to another configuration (use another workdir, or "
        "--restart to move the old run aside)")


def _quarantine(directory: pathlib.Path, step: int) -> pathlib.Path:
  target = directory / "unreadable" / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.move(str(directory / str(step)), target)
  return target
