"""Training engine: ``fit(task, config, workdir)`` and the pieces it is made of."""

from jspectral.train import distributed
from jspectral.train.loop import (
    FitResult,
    NonFiniteError,
    Task,
    TrainState,
    default_config,
    fit,
    global_batch,
    make_mesh,
    train_step,
)
from jspectral.train.optim import cyclic_schedule, make_optimizer, make_schedule, trainable_labels

__all__ = [
    "FitResult", "NonFiniteError", "Task", "TrainState", "cyclic_schedule", "default_config",
    "distributed", "fit", "global_batch", "make_mesh", "make_optimizer", "make_schedule",
    "train_step", "trainable_labels",
]
