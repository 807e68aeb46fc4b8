"""Denoising test fixtures: cheap XLA compilation of the (large-graph, tiny-input) models."""

from __future__ import annotations

import jax
import numpy as np
import pytest

# The parity inputs are tiny, so XLA's backend optimisations cost far more than they save.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _fast_compile(fn, *args, **jit_kwargs):
  return jax.jit(fn, **jit_kwargs).lower(*args).compile(_FAST_COMPILE)


@pytest.fixture(scope="session")
def fast_compile():
  """``fast_compile(fn, *args, **jit_kwargs)``: the executable of ``jit(fn)`` for ``args``,
  compiled with cheap settings."""
  return _fast_compile


@pytest.fixture(scope="session")
def fast_jit():
  """``fast_jit(fn)(*args)``: compile ``fn`` for ``args`` with cheap settings and run it once."""
  return lambda fn: lambda *args: _fast_compile(fn, *args)(*args)


@pytest.fixture(scope="session")
def bands_last():
  """Official ``(N, 1, B, H, W)`` -> jspectral ``(N, H, W, B)``."""
  return lambda x: np.asarray(x)[:, 0].transpose(0, 2, 3, 1)
