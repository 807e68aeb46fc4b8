"""Training engine: ``fit(task, config, workdir)`` and the pieces it is made of.

A family supplies a :class:`Task` (``train_source``, ``init``, ``loss``, ``evaluate``); ``fit``
owns the mesh, sharding, jit, optimizer, checkpoints, resume, logging and progress bar.

* ``loop``: ``fit``, ``Task``, ``TrainState``, ``FitResult``, ``default_config``, ``make_mesh``,
  ``global_batch`` and the donated ``train_step``;
* ``optim``: optax optimizers, learning-rate schedules and trainable-parameter masks from a config;
* ``checkpoint``: orbax save every K steps, keep N, resume from the newest readable step;
* ``distributed``: multi-host start-up (``distributed.initialize()`` before any other JAX call).
"""

from jspectral.train import distributed
from jspectral.train.loop import (
    CONFIG_FIELDS,
    FitResult,
    NonFiniteError,
    Task,
    TrainState,
    WorkdirConflictError,
    allow_config_changes,
    config_differences,
    default_config,
    fit,
    global_batch,
    guard_saved_config,
    make_mesh,
    release_freed_memory,
    train_step,
)
from jspectral.train.optim import cyclic_schedule, make_optimizer, make_schedule, trainable_labels

__all__ = [
    "CONFIG_FIELDS", "FitResult", "NonFiniteError", "Task", "TrainState", "WorkdirConflictError",
    "allow_config_changes", "config_differences", "cyclic_schedule", "default_config",
    "guard_saved_config",
    "fit", "global_batch", "make_mesh", "make_optimizer", "make_schedule",
    "release_freed_memory", "train_step", "trainable_labels",
    # submodules
    "checkpoint", "distributed", "loop", "optim",
]
