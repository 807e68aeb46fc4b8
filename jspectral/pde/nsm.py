"""Neural Spectral Methods (NSM), the Spectral Neural Operator (SNO) and FNO/CNO + PINN baselines.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods: Self-supervised learning in the spectral
domain", ICLR 2024 (arXiv 2312.05225); official JAX/Flax code
github.com/ASK-Berkeley/Neural-Spectral-Methods (``src/model``). Parameter names, shapes, call order
and the numerics of the official models are reproduced, so official ``params`` trees load directly:

* :class:`NSM` acts on coefficients. Linear maps (``Dense`` on channels, the per-mode
  ``SpectralConv``) act on coefficients; activations are applied on the collocation grid of the
  current mode count (inverse transform -> sigma -> transform, no oversampling: aliased, as
  official). The ``Dense`` bias is added to every coefficient (official quirk).
* :class:`SNO` applies sigma directly to coefficients and mixes modes with a full ``DenseGeneral``.
* :class:`FNOPINN` acts on values on a uniform grid (ends included) and is trained with the
  finite-difference PINN loss; ``cheb=True`` is the CNO + PINN ablation (Chebyshev transform).

Every model maps ONE parameter function ``phi`` (coefficients ``(*phi_modes, 1)``) to ``u``; batches
go through ``jax.vmap`` (:func:`spectral_loss` and :func:`pinn_loss` are per sample; the
:class:`~jspectral.pde.tasks.OperatorTask` averages them over the batch, as official). Deliberate
differences: the ``weighted=True`` flag of :func:`spectral_loss` gives the exact Parseval L2 norm
(official: unweighted sum). ``NSM(fourier=True)`` is the official NSM-Fourier ablation
(``--fourier``, run for reaction-diffusion only): every layer transforms with the Fourier basis,
the first activation still inverts with the problem's basis, and mollifier, residual and
evaluation treat the output as a Fourier series (periodic in time).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jspectral.nn.model_spec import ModelSpec
from jspectral.pde import bases, problems


def _activation(name: str):
  fn = getattr(nn, name, None)
  if not callable(fn):
    raise ValueError(f"activate: expected a flax.linen activation name, got {name!r}")
  return fn


class SpectralConv(nn.Module):
  """Per-mode channel mixing ``out[m] = u[m] @ W[m]``; ``modes`` truncates (FNO) then pads back.

  ``W`` has shape ``(*modes, C_in, features)``, init ``N(0, 1) / (C_in * features)`` (official).
  """

  features: int
  kinds: str
  modes: tuple[int, ...] | None = None

  @nn.compact
  def __call__(self, coef: jax.Array) -> jax.Array:
    d = len(self.kinds)
    own = coef.shape[:d]
    modes = tuple(self.modes) if self.modes is not None else own
    a = bases.resize(coef, self.kinds, modes)

    def init(key, shape):
      return jax.random.normal(key, shape) / (shape[-2] * shape[-1])

    w = self.param("W", init, (*modes, coef.shape[-1], self.features))
    batch = tuple(range(d))
    out = jax.lax.dot_general(a, w.astype(a.dtype), ((((d,), (d,))), (batch, batch)))
    return bases.resize(out, self.kinds, own)


class NSM(nn.Module):
  """Neural Spectral Method: coefficients of ``phi`` -> coefficients of ``u`` (after the mollifier).

  Attributes:
    problem: a ``jspectral.pde.problems`` instance (basis, mollifier).
    hdim: hidden width h (paper default 64). depth: number of spectral layers L (4).
    mode: modes M per axis of the hidden series ((31, 31) for Poisson).
    activate: flax activation name ("relu").
    fourier: the NSM-Fourier ablation (official ``--fourier``; reaction-diffusion only).
  """

  problem: Any = problems.PoissonPeriodic()
  hdim: int = 64
  depth: int = 4
  mode: tuple[int, ...] = (31, 31)
  activate: str = "relu"
  fourier: bool = False

  @nn.compact
  def __call__(self, phi: jax.Array) -> jax.Array:
    kinds, out_kinds = self.problem.kinds, output_kinds(self)
    phi = _check_phi(phi, self.problem)
    sigma = _activation(self.activate)

    def act(u, inverse_kinds=out_kinds):
      return bases.transform(sigma(bases.inverse(u, inverse_kinds)), out_kinds)

    u = bases.resize(phi, kinds, self.mode)
    coords = bases.transform(jnp.asarray(bases.grid(kinds, self.mode), u.dtype), out_kinds)
    u = jnp.concatenate([u, coords], axis=-1)
    u = act(nn.Dense(self.hdim * 4)(u), kinds)     # official: still the problem's series here
    u = act(nn.Dense(self.hdim)(u))
    for _ in range(self.depth):
      conv = SpectralConv(self.hdim, out_kinds)(u)
      fc = nn.Dense(self.hdim)(u)
      u = act(bases.add(out_kinds, conv, fc))
    u = act(nn.Dense(self.hdim)(u))
    u = act(nn.Dense(self.hdim * 4)(u))
    u = nn.Dense(1)(u)
    if self.fourier:
      return self.problem.mollify(phi, u, kinds=out_kinds)
    return self.problem.mollify(phi, u)


def output_kinds(model: nn.Module) -> str:
  """The basis letters of a spectral model's output: the problem's, or all Fourier for
  ``NSM(fourier=True)``.

  Args:
    model: an :class:`NSM` or :class:`SNO`.

  Returns:
    One letter per mode axis.

  Raises:
    ValueError: for ``fourier=True`` on a problem other than reaction-diffusion (the only one
      the official ablation runs, and the only one whose residual takes a basis override).
  """
  if not getattr(model, "fourier", False):
    return model.problem.kinds
  if not isinstance(model.problem, problems.ReactionDiffusion):
    raise ValueError(f"fourier: the NSM-Fourier ablation is defined for reaction-diffusion only, "
                     f"got problem {model.problem.name}")
  return "F" * model.problem.ndim


class SNO(nn.Module):
  """Spectral Neural Operator: sigma on coefficients, full ``DenseGeneral`` mode mixing."""

  problem: Any = problems.PoissonPeriodic()
  hdim: int = 64
  depth: int = 4
  mode: tuple[int, ...] = (31, 31)
  activate: str = "relu"

  @nn.compact
  def __call__(self, phi: jax.Array) -> jax.Array:
    kinds = self.problem.kinds
    d = len(kinds)
    phi = _check_phi(phi, self.problem)
    sigma = _activation(self.activate)
    u = bases.resize(phi, kinds, self.mode)
    coords = bases.transform(jnp.asarray(bases.grid(kinds, self.mode), u.dtype), kinds)
    u = jnp.concatenate([u, coords], axis=-1)
    u = sigma(nn.Dense(self.hdim * 4)(u))
    u = sigma(nn.Dense(self.hdim)(u))
    for _ in range(self.depth):
      mix = nn.DenseGeneral(tuple(self.mode), axis=tuple(range(-d, 0)))
      u = jnp.moveaxis(mix(jnp.moveaxis(u, -1, 0)), 0, -1)
      u = sigma(nn.Dense(self.hdim)(u))
    u = sigma(nn.Dense(self.hdim)(u))
    u = sigma(nn.Dense(self.hdim * 4)(u))
    u = nn.Dense(1)(u)
    return self.problem.mollify(phi, u)


class FNOPINN(nn.Module):
  """FNO (``cheb=False``) or CNO (``cheb=True``) on a uniform grid; trained with the PINN loss.

  ``__call__(phi, sizes)`` returns ``u`` on ``linspace(0, 1, s_i)`` per axis, shape ``(*sizes, 1)``.
  ``grid`` is the training grid size per axis (64/96/128/256 in the paper).
  """

  problem: Any = problems.PoissonPeriodic()
  hdim: int = 64
  depth: int = 4
  mode: tuple[int, ...] = (31, 31)
  activate: str = "relu"
  grid: int = 64
  cheb: bool = False

  @nn.compact
  def __call__(self, phi: jax.Array, sizes: tuple[int, ...] | None = None) -> jax.Array:
    problem = self.problem
    phi = _check_phi(phi, problem)
    sizes = (self.grid,) * problem.ndim if sizes is None else tuple(sizes)
    kinds = problem.kinds if self.cheb else "F" * problem.ndim
    sigma = _activation(self.activate)
    x = jnp.asarray(problems.uniform_grid(sizes), phi.dtype)
    y = bases.uniform(phi, problem.kinds, sizes)
    z = jnp.concatenate([x, y], axis=-1)
    z = sigma(nn.Dense(self.hdim * 4)(z))
    z = sigma(nn.Dense(self.hdim)(z))
    for _ in range(self.depth):
      conv = SpectralConv(self.hdim, kinds, tuple(self.mode))(bases.transform(z, kinds))
      z = sigma(bases.inverse(conv, kinds) + nn.Dense(self.hdim)(z))
    z = sigma(nn.Dense(self.hdim)(z))
    z = sigma(nn.Dense(self.hdim * 4)(z))
    z = nn.Dense(1)(z)
    return problem.mollify_grid(x, y, z)


def _check_phi(phi, problem) -> jax.Array:
  phi = jnp.asarray(phi)
  expected = (*problem.phi_modes, 1)
  if phi.shape != expected:
    raise ValueError(f"phi: expected one sample of coefficients {expected} for {problem.name} "
                     f"(vmap over a batch), got shape {phi.shape}")
  return phi


# ----------------------------------------------------------------------------- losses

def spectral_loss(model: nn.Module, params, phi, weighted: bool = False) -> dict[str, jax.Array]:
  """NSM's spectral loss for one ``phi`` (NSM, SNO): the squared spectral residual.

  ``weighted=True`` replaces the official unweighted sum by the exact L2 norm of the residual
  (Parseval weights on Fourier axes, the Chebyshev Gram matrix on Chebyshev axes).

  Args:
    model: an :class:`NSM` or :class:`SNO` (its ``problem`` gives the residual).
    params: the model's parameters.
    phi: one parameter function, coefficients ``(*phi_modes, 1)``.
    weighted: exact Parseval L2 norm instead of the official unweighted sum.

  Returns:
    ``{"residual": scalar}``, the sum of squared spectral-residual coefficients.
  """
  kinds = output_kinds(model)
  out = model.apply({"params": params}, phi)
  if kinds == model.problem.kinds:
    residual = model.problem.spectral_residual(phi, out)
  else:
    residual = model.problem.spectral_residual(phi, out, kinds=kinds)
  if weighted:
    return {"residual": jnp.sum(bases.inner(residual, residual, kinds, weighted=True))}
  return {"residual": jnp.sum(jnp.square(residual))}


def pinn_loss(model: nn.Module, params, phi) -> dict[str, jax.Array]:
  """Official PINN loss for one ``phi``: mean squared FD residual + one term per periodic axis.

  Args:
    model: an :class:`FNOPINN` (its ``grid`` sets the uniform grid, ends included).
    params: the model's parameters.
    phi: one parameter function, coefficients ``(*phi_modes, 1)``.

  Returns:
    ``{"residual": scalar, "boundary0": scalar, ...}``: mean squared residuals.
  """
  problem = model.problem
  sizes = (model.grid,) * problem.ndim
  u = model.apply({"params": params}, phi, sizes)
  x = jnp.asarray(problems.uniform_grid(sizes), u.dtype)
  y = bases.uniform(phi, problem.kinds, sizes)
  out = {"residual": jnp.mean(problem.grid_residual(x, y, u) ** 2)}
  for i, b in enumerate(problem.boundary(u)):
    out[f"boundary{i}"] = jnp.mean(b ** 2)
  return out


def loss_terms(model: nn.Module, params, phi, weighted: bool = False) -> dict[str, jax.Array]:
  """The model's training loss terms for one ``phi`` (spectral for NSM/SNO, PINN for FNO).

  Args:
    model: an :class:`NSM`, :class:`SNO` or :class:`FNOPINN`.
    params: the model's parameters.
    phi: one parameter function, coefficients ``(*phi_modes, 1)``.
    weighted: passed to :func:`spectral_loss`.

  Returns:
    Scalar loss terms by name; the training loss is their sum.
  """
  if isinstance(model, FNOPINN):
    return pinn_loss(model, params, phi)
  return spectral_loss(model, params, phi, weighted)


def predict(model: nn.Module, params, phi, sizes: tuple[int, ...]) -> jax.Array:
  """The solution ``u`` for one ``phi`` on a uniform grid (both ends included).

  NSM/SNO evaluate the predicted series (cost of the network independent of ``sizes``); FNO runs
  the network on that grid.

  Args:
    model: an :class:`NSM`, :class:`SNO` or :class:`FNOPINN`.
    params: the model's parameters.
    phi: one parameter function, coefficients ``(*phi_modes, 1)``.
    sizes: grid points per axis.

  Returns:
    ``u`` of shape ``(*sizes, 1)``.
  """
  if isinstance(model, FNOPINN):
    return model.apply({"params": params}, phi, tuple(sizes))
  coef = model.apply({"params": params}, phi)
  return bases.uniform(coef, output_kinds(model), tuple(sizes))


# ----------------------------------------------------------------------------- registry

def _example(model):
  phi = jax.ShapeDtypeStruct((*model.problem.phi_modes, 1), jnp.float32)
  if isinstance(model, FNOPINN):
    return {"phi": phi, "sizes": (2,) * model.problem.ndim}
  return {"phi": phi}


def _builder(cls, **defaults):
  return lambda **overrides: cls(**{**defaults, **overrides})


_NS = problems.PROBLEMS["navier_stokes_re3"]
_NS_TF = problems.PROBLEMS["navier_stokes_tf"]
_REACTION = problems.PROBLEMS["reaction_nu01"]

MODELS = {
    "nsm_poisson": ModelSpec(build=_builder(NSM), example_inputs=_example),
    "sno_poisson": ModelSpec(build=_builder(SNO), example_inputs=_example),
    "fno_pinn_poisson": ModelSpec(build=_builder(FNOPINN), example_inputs=_example),
    "nsm_reaction": ModelSpec(build=_builder(NSM, problem=_REACTION, mode=(32, 64)),
                              example_inputs=_example),
    "sno_reaction": ModelSpec(build=_builder(SNO, problem=_REACTION, mode=(32, 64)),
                              example_inputs=_example),
    "nsm_navier_stokes": ModelSpec(
        build=_builder(NSM, problem=_NS, hdim=32, depth=10, mode=(12, 31, 31)),
        example_inputs=_example),
    "nsm_navier_stokes_forced": ModelSpec(
        build=_builder(NSM, problem=_NS_TF, hdim=32, depth=5, mode=(18, 31, 31)),
        example_inputs=_example),
}
