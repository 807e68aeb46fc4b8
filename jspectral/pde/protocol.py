"""The Neural Spectral Methods evaluation protocol: errors of predicted solution fields.

Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225); official code
github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/train.py`` ``metric``, the ``solution``
properties of ``src/pde/*/__init__.py``). For each test sample, with ``u`` the reference on a
uniform grid that includes both ends and ``v`` the prediction on the same grid:

* ``errr`` = ``||u - v||_2 / ||u||_2`` (the paper's relative L2 error, reported in percent);
* ``erra`` = ``mean |u - v|``;
* ``residual`` = ``mean |R(v)|``, ``R`` the problem's finite-difference (PINN) residual on the test
  grid with ``phi`` evaluated on it.

The paper's tables average each over the 128 test samples, then give mean +- std over seeds 0..3.

Official test sets: ``python -m src.pde.<problem>.generate`` in the official repository writes the
``.npy`` files next to the problem's module (``src/pde/poisson/``, ``src/pde/reaction/``,
``src/pde/navierstokes/``); :func:`official_test_files` names them and
:func:`load_official_test_set` reads them from any directory holding copies.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jspectral.pde import bases, problems


def relative_l2(pred: jax.Array, target: jax.Array) -> jax.Array:
  """``||pred - target||_2 / ||target||_2`` per sample over all but the leading axis.

  Args:
    pred: predicted fields ``(N, ...)``, e.g. ``(N, *grid, 1)``.
    target: reference fields, same shape as ``pred``.

  Returns:
    Relative L2 errors ``(N,)`` (fractions; the paper reports their mean in percent).
  """
  axes = tuple(range(1, target.ndim))
  return jnp.sqrt(jnp.sum((pred - target) ** 2, axes) / jnp.sum(target ** 2, axes))


def field_metrics(problem, phi: jax.Array, target: jax.Array, pred: jax.Array) -> dict:
  """The official ``metric`` of one test sample: ``erra``, ``errr`` and ``residual``.

  Args:
    problem: a ``jspectral.pde.problems`` instance (basis kinds and finite-difference residual).
    phi: the sample's parameter coefficients, ``(*phi_modes, 1)``.
    target: the reference solution on the uniform grid, ``(*S, 1)`` (both ends included).
    pred: the predicted solution on the same grid, ``(*S, 1)``.

  Returns:
    ``{"erra": mean |target - pred|, "errr": relative L2 error (fraction), "residual": mean
    |finite-difference residual of pred|}``, scalars.

  Raises:
    ValueError: if ``target`` and ``pred`` differ in shape.
  """
  if target.shape != pred.shape:
    raise ValueError(f"pred: expected the reference's shape {target.shape}, got {pred.shape}")
  sizes = tuple(target.shape[:-1])
  x = jnp.asarray(problems.uniform_grid(sizes), pred.dtype)
  phi_values = bases.uniform(phi, problem.kinds, sizes)
  diff = (target - pred).ravel()
  return {"erra": jnp.mean(jnp.abs(diff)),
          "errr": jnp.linalg.norm(diff) / jnp.linalg.norm(target.ravel()),
          "residual": jnp.mean(jnp.abs(problem.grid_residual(x, phi_values, pred)))}


def official_test_files(problem) -> tuple[str, str]:
  """File names of the official test set of ``problem``: ``(phi coefficients, solutions)``.

  The names are those the official generators save (their ``__str__`` of the PDE instance):
  Poisson ``s.periodic.npy`` / ``u.periodic.npy`` and ``s.dirichlet.npy`` / ``u.dirichlet.npy``;
  reaction ``h.npy`` / ``u.rho=5:nu=0.010.npy``; Navier-Stokes ``w.0.8x1.0.npy`` /
  ``u.Re=800:T=3:None.npy`` (forced: ``u.Re=400:T=50:transient.npy``).

  Args:
    problem: a ``jspectral.pde.problems`` instance.

  Returns:
    Two file names.

  Raises:
    ValueError: for a problem without an official test set.
  """
  if isinstance(problem, problems.PoissonPeriodic):
    return "s.periodic.npy", "u.periodic.npy"
  if isinstance(problem, problems.PoissonDirichlet):
    return "s.dirichlet.npy", "u.dirichlet.npy"
  if isinstance(problem, problems.ReactionDiffusion):
    return "h.npy", f"u.rho={problem.rho:g}:nu={problem.nu:.3f}.npy"
  if isinstance(problem, problems.NavierStokes):
    reynolds = int(problem.length / problem.nu)   # official Re = length / nu * scaling (1.0)
    forcing = "transient" if problem.forced else "None"
    return f"w.{problem.length}x1.0.npy", f"u.Re={reynolds}:T={problem.T:g}:{forcing}.npy"
  raise ValueError(f"problem: no official test set for {problem!r}")


def load_official_test_set(problem, directory, n: int | None = None):
  """Reads the official ``.npy`` test set of ``problem`` from ``directory``.

  Args:
    problem: a ``jspectral.pde.problems`` instance.
    directory: folder holding the files named by :func:`official_test_files`.
    n: keep the first ``n`` samples (all when ``None``).

  Returns:
    ``(phi, u)``: coefficients ``(N, *phi_modes, 1)`` and solutions ``(N, *grid, 1)`` on a
    uniform grid with both ends included (the grid is the file's).

  Raises:
    FileNotFoundError: naming the missing path.
    ValueError: naming the file whose shape does not fit the problem.
  """
  directory = pathlib.Path(directory).expanduser()
  arrays = []
  for name in official_test_files(problem):
    path = directory / name
    if not path.is_file():
      raise FileNotFoundError(
          f"{path}: official {problem.name} test set file missing; generate it with the official "
          f"repository (python -m src.pde.<problem>.generate) and copy it there "
          f"(or set data.source='synthetic')")
    arrays.append(np.load(path, mmap_mode="r"))
  phi, u = arrays
  names = official_test_files(problem)
  if phi.shape[1:] != (*problem.phi_modes, 1):
    raise ValueError(f"{directory / names[0]}: expected coefficients (N, "
                     f"{(*problem.phi_modes, 1)}), got {phi.shape}")
  if u.ndim != problem.ndim + 2 or u.shape[-1] != 1 or len(u) != len(phi):
    raise ValueError(f"{directory / names[1]}: expected {len(phi)} solutions (N, *grid, 1) with "
                     f"{problem.ndim} grid axes, got {u.shape}")
  n = len(phi) if n is None else min(int(n), len(phi))
  return np.asarray(phi[:n]), np.asarray(u[:n])
