"""Multi-host start-up: one call before any other JAX call, a no-op for one process."""

from __future__ import annotations

import os

import jax

ENV_COORDINATOR = "JSPECTRAL_COORDINATOR"
ENV_NUM_PROCESSES = "JSPECTRAL_NUM_PROCESSES"
ENV_PROCESS_ID = "JSPECTRAL_PROCESS_ID"


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Joins a multi-process JAX run; returns whether one was joined.

  Arguments left as ``None`` are read from ``JSPECTRAL_COORDINATOR`` (``host:port``),
  ``JSPECTRAL_NUM_PROCESSES`` and ``JSPECTRAL_PROCESS_ID``. With one process (or none given)
  nothing happens. On TPU pods and SLURM/Kubernetes clusters JAX discovers these itself: set
  ``JSPECTRAL_NUM_PROCESSES=auto`` to call ``jax.distributed.initialize()`` with no arguments.
  On CPU the cross-process collectives go through gloo.

  Args:
    coordinator_address: ``"host:port"`` of process 0's coordinator service.
    num_processes: the number of processes of the run.
    process_id: this process's index in ``[0, num_processes)``.

  Returns:
    ``True`` if ``jax.distributed.initialize`` was called, ``False`` for a single-process run.

  Raises:
    ValueError: a multi-process run without a coordinator address or process id, or a process id
      out of range.
  """
  coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR)
  if num_processes is None and ENV_NUM_PROCESSES in os.environ:
    if os.environ[ENV_NUM_PROCESSES] == "auto":
      jax.distributed.initialize()
      return True
    num_processes = int(os.environ[ENV_NUM_PROCESSES])
  if process_id is None and ENV_PROCESS_ID in os.environ:
    process_id = int(os.environ[ENV_PROCESS_ID])
  if not num_processes or num_processes == 1:
    return False
  if coordinator_address is None or process_id is None:
    raise ValueError("initialize: a multi-process run needs coordinator_address ('host:port') and "
                     f"process_id (or {ENV_COORDINATOR} and {ENV_PROCESS_ID})")
  if not 0 <= process_id < num_processes:
    raise ValueError(f"process_id: expected 0 <= process_id < {num_processes}, got {process_id}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
  return True
