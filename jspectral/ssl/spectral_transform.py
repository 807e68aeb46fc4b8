"""Spectral Transformation (ST) of embeddings: whitening, power-law ST, IterNorm, trace loss, INTL.

Paper: X. Weng, Y. Ni, T. Song, J. Luo, R. M. Anwer, S. Khan, F. S. Khan, L. Huang, "Modulate Your
Spectrum in Self-Supervised Learning", ICLR 2024 (arXiv 2305.16789). Official code:
https://github.com/winci-ai/INTL (``methods/whitening.py``, ``methods/intl.py``,
``methods/base.py``).
IterNorm: L. Huang, Y. Zhou, F. Zhu, L. Liu, L. Shao, "Iterative Normalization: Beyond
Standardization towards Efficient Whitening", CVPR 2019.

Every function takes a batch of embeddings ``z`` of shape ``(N, D)`` (N samples, D features) and
whitens along one of two orientations, named by ``whiten``:

* ``"samples"`` (the official ``axis=0``, the default everywhere in INTL): each sample is centred
  over its D features and the N x N Gram matrix ``S = Z_c Z_c^T / (D - 1)`` is transformed; the
  output is ``Phi(S) Z_c``. The D features act as observations.
* ``"features"`` (the official ``axis=1``, W-MSE-style): each feature is centred over the batch,
  ``S = Z_c^T Z_c / (N - 1)`` is D x D and the output is ``Z_c Phi(S)``.

Internally both orientations are one computation on a matrix ``M`` (rows = the variables being
decorrelated, columns = observations): ``M = z`` for ``"samples"`` and ``M = z^T`` for
``"features"``.

A spectral transformation with scalar map ``g`` sends ``S = U diag(lam) U^T`` to
``Phi_g(S) = U diag(g(lam)) U^T``; the output covariance has eigenvalues ``lam g(lam)^2`` and the
same eigenvectors. Whitening is ``g(lam) = lam^(-1/2)``, the power-law ST is ``g(lam) = lam^(-p)``,
and IterNorm's ``g`` is the polynomial left by T Newton steps towards ``S^(-1/2)``, whose map is
:func:`iternorm_spectrum_map`.

Deliberate differences from the official code: the orientation is called ``whiten`` rather than
``axis`` (whose help text in the official code is misleading); the official code computes IterNorm
under fp16 autocast in its ImageNet runs, jspectral always computes in the input's float dtype
(float32 or float64); an optional ``group_size`` whitens groups of features separately (the
official group count is always 1, which is the default here). Under ``jit`` on a data-parallel mesh
the Gram matrix is formed from the global batch, as the official ``FullGatherLayer`` does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

WHITEN_AXES = {"samples": 0, "features": 1}


def _check_whiten(whiten: str) -> None:
  if whiten not in WHITEN_AXES:
    raise ValueError(f"whiten: expected 'samples' (official axis 0) or 'features' (official "
                     f"axis 1), got {whiten!r}")


def check_embeddings(z: jax.Array, name: str = "z") -> None:
  """Raises ``ValueError`` unless ``z`` is a finite ``(N, D)`` float array with N >= 2 and D >= 2.

  Finiteness is only checked on concrete arrays (inside ``jit`` the values are unknown).

  Args:
    z: embeddings to check.
    name: argument name used in the message.

  Returns:
    None.

  Raises:
    ValueError: if ``z`` is not 2-D, too small, not float, or (concretely) not finite.
  """
  shape = np.shape(z)
  if len(shape) != 2:
    raise ValueError(f"{name}: expected embeddings of shape (N, D), got shape {shape}")
  if shape[0] < 2 or shape[1] < 2:
    raise ValueError(f"{name}: expected N >= 2 samples and D >= 2 features, got shape {shape}")
  if not jnp.issubdtype(jnp.result_type(z), jnp.floating):
    raise ValueError(f"{name}: expected a float array, got dtype {jnp.result_type(z)}")
  if not isinstance(z, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(z))):
    raise ValueError(f"{name}: embeddings contain NaN or Inf")


def _oriented(z: jax.Array, whiten: str) -> jax.Array:
  """The matrix whose rows are decorrelated: ``z`` for samples, ``z^T`` for features."""
  return z if whiten == "samples" else z.T


def _centred_gram(m: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Row-centred ``m`` (r, c) and its covariance ``m_c m_c^T / (c - 1)`` (r, r)."""
  mc = m - jnp.mean(m, axis=1, keepdims=True)
  return mc, mc @ mc.T / (m.shape[1] - 1)


def _split_groups(m: jax.Array, group_size: int | None, whiten: str) -> jax.Array:
  """``(G, r, c)`` stack of feature groups of the oriented matrix ``m``."""
  if whiten == "samples":  # features are the columns
    n, d = m.shape
    g = group_size or d
    return m.reshape(n, d // g, g).transpose(1, 0, 2)
  d, n = m.shape  # features are the rows
  g = group_size or d
  return m.reshape(d // g, g, n)


def _merge_groups(groups: jax.Array, whiten: str) -> jax.Array:
  if whiten == "samples":
    num, n, g = groups.shape
    return groups.transpose(1, 0, 2).reshape(n, num * g)
  num, g, n = groups.shape
  return groups.reshape(num * g, n)


def _check_group_size(z: jax.Array, group_size: int | None) -> None:
  d = np.shape(z)[1]
  if group_size is not None and (group_size < 2 or d % group_size):
    raise ValueError(f"group_size: expected an integer >= 2 dividing the {d} features, got "
                     f"{group_size}")


def iternorm_matrix(sigma: jax.Array, iterations: int = 4) -> jax.Array:
  """IterNorm's approximation ``Phi_T`` of ``sigma^(-1/2)`` for a covariance ``sigma``.

  ``sigma_N = sigma / tr(sigma)``, ``P_0 = I``, ``P_k = 1.5 P_{k-1} - 0.5 P_{k-1}^3 sigma_N`` and
  ``Phi_T = P_T / sqrt(tr(sigma))``. Differentiable through every iteration.

  Args:
    sigma: covariance, ``(r, r)``.
    iterations: Newton iterations T.

  Returns:
    ``(r, r)``.
  """
  trace = jnp.trace(sigma)
  sigma_n = sigma / trace
  p = jnp.eye(sigma.shape[0], dtype=sigma.dtype)
  for _ in range(iterations):
    p = 1.5 * p - 0.5 * (p @ (p @ (p @ sigma_n)))  # = P^3 sigma_N; this order is more accurate
  return p / jnp.sqrt(trace)


def iternorm(z: jax.Array, iterations: int = 4, whiten: str = "samples",
             group_size: int | None = None) -> jax.Array:
  """IterNorm whitening of embeddings ``z`` (N, D) -> (N, D) (official ``Whitening2dIterNorm``).

  Args:
    z: embeddings ``(N, D)``, one row per sample.
    iterations: number T of Newton iterations (official default 4).
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).
    group_size: whiten consecutive groups of this many features separately; ``None`` = one group.

  Returns:
    The transformed embeddings ``(N, D)``; rows have zero mean over features (``"samples"``) or
    columns zero mean over the batch (``"features"``).

  Raises:
    ValueError: if ``whiten`` is unknown, ``z`` is not a finite float ``(N, D)`` array with
      ``N, D >= 2``, ``group_size`` does not divide D, or ``iterations < 0``.
  """
  _check_whiten(whiten)
  check_embeddings(z)
  _check_group_size(z, group_size)
  if iterations < 0:
    raise ValueError(f"iterations: expected an integer >= 0, got {iterations}")

  return _iternorm(z, iterations, whiten, group_size)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _iternorm(z, iterations, whiten, group_size):
  def one_group(m):
    mc, sigma = _centred_gram(m)
    return iternorm_matrix(sigma, iterations) @ mc

  groups = _split_groups(_oriented(z, whiten), group_size, whiten)
  return _oriented(_merge_groups(jax.vmap(one_group)(groups), whiten), whiten)


def iternorm_spectrum_map(x: jax.Array, iterations: int = 4) -> jax.Array:
  """Closed-form eigenvalue map of IterNorm: normalised input eigenvalue ``x`` -> output eigenvalue.

  With ``x = lam / tr(S)``, ``f_0 = 1`` and ``f_k = 1.5 f_{k-1} - 0.5 x f_{k-1}^3``, the output
  covariance of :func:`iternorm` has eigenvalue ``x f_T(x)^2`` (monotone on [0, 1], 1 -> 1).

  Args:
    x: normalised eigenvalues, any shape (NumPy or JAX).
    iterations: Newton iterations T.

  Returns:
    Output eigenvalues, same shape.
  """
  f = x * 0 + 1  # NumPy or JAX, in the dtype of x
  for _ in range(iterations):
    f = 1.5 * f - 0.5 * x * f ** 3
  return x * f ** 2


def spectral_transform(z: jax.Array, g: Callable[[jax.Array], jax.Array],
                       whiten: str = "samples") -> jax.Array:
  """The general ST ``Phi_g(S) M_c`` by eigendecomposition; ``g`` maps eigenvalues elementwise.

  Output eigenvalues are ``lam g(lam)^2``. Gradients flow through ``eigh`` (they are ill-defined
  when eigenvalues repeat; use :func:`iternorm` where that matters).

  Args:
    z: embeddings, ``(N, D)``.
    g: elementwise eigenvalue map.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).

  Returns:
    ``(N, D)``.

  Raises:
    ValueError: if ``whiten`` is unknown or ``z`` is not a finite float ``(N, D)`` array with
      ``N, D >= 2``.
  """
  _check_whiten(whiten)
  check_embeddings(z)
  mc, sigma = _centred_gram(_oriented(z, whiten))
  lam, u = jnp.linalg.eigh(sigma)
  return _oriented((u * g(lam)) @ (u.T @ mc), whiten)


def power_transform(z: jax.Array, power: float = 0.5, whiten: str = "samples",
                    eps: float = 1e-5) -> jax.Array:
  """Power-law ST ``g(lam) = max(lam, eps)^(-power)``: output spectrum ``lam^(1 - 2 power)``.

  ``power = 0`` leaves the centred embeddings unchanged, ``power = 0.5`` is ZCA whitening. ``eps``
  floors eigenvalues (those of a rank-deficient Gram matrix are 0) so that the map stays finite.

  Args:
    z: embeddings, ``(N, D)``.
    power: ``p``.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).
    eps: eigenvalue floor (> 0).

  Returns:
    ``(N, D)``.

  Raises:
    ValueError: if ``whiten`` is unknown or ``z`` is not a finite float ``(N, D)`` array with
      ``N, D >= 2``, or ``eps <= 0``.
  """
  if eps <= 0:
    raise ValueError(f"eps: expected a positive floor, got {eps}")
  return spectral_transform(z, lambda lam: jnp.maximum(lam, eps) ** (-power), whiten)


def zca_whitening(z: jax.Array, whiten: str = "samples", eps: float = 1e-5) -> jax.Array:
  """Hard ZCA whitening ``S^(-1/2) M_c`` (the power-law ST with power 1/2).

  Args:
    z: embeddings, ``(N, D)``.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).
    eps: eigenvalue floor (> 0).

  Returns:
    ``(N, D)``.

  Raises:
    ValueError: if ``whiten`` is unknown or ``z`` is not a finite float ``(N, D)`` array with
      ``N, D >= 2``, or ``eps <= 0``.
  """
  return power_transform(z, 0.5, whiten, eps)


def covariance_spectrum(z: jax.Array, whiten: str = "samples") -> jax.Array:
  """Eigenvalues, in descending order, of the covariance of ``z`` in the ``whiten`` orientation.

  Args:
    z: embeddings, ``(N, D)``.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).

  Returns:
    ``(N,)`` for ``"samples"``, ``(D,)`` for ``"features"``.

  Raises:
    ValueError: if ``whiten`` is unknown.
  """
  _check_whiten(whiten)
  _, sigma = _centred_gram(_oriented(z, whiten))
  return jnp.linalg.eigvalsh(sigma)[::-1]


def effective_rank(eigenvalues: jax.Array) -> jax.Array:
  """Roy & Vetterli's effective rank ``exp(H(p))`` with ``p = lam / sum(lam)`` (negatives -> 0).

  Args:
    eigenvalues: ``(K,)``.

  Returns:
    Scalar in ``[1, K]``.
  """
  lam = jnp.maximum(eigenvalues, 0.0)
  p = lam / jnp.sum(lam)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def trace_loss(t: jax.Array, whiten: str = "samples") -> jax.Array:
  """``sum_j (S_jj - 1)^2`` of the covariance of transformed embeddings ``t``.

  ``"samples"``: N terms, the variance of each sample over its features (divisor D - 1);
  ``"features"``: D terms, the variance of each feature over the batch (divisor N - 1).

  Args:
    t: transformed embeddings, ``(N, D)``.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).

  Returns:
    Scalar.

  Raises:
    ValueError: if ``whiten`` is unknown.
  """
  _check_whiten(whiten)
  m = _oriented(t, whiten)
  mc = m - jnp.mean(m, axis=1, keepdims=True)
  var = jnp.sum(mc ** 2, axis=1) / (m.shape[1] - 1)
  return jnp.sum((var - 1.0) ** 2)


def normalized_mse(a: jax.Array, b: jax.Array) -> jax.Array:
  """``2 - 2 mean_i cos(a_i, b_i)``: rows L2-normalised (eps 1e-12 on the norm), range [0, 4].

  Args:
    a: ``(N, D)``.
    b: ``(N, D)``.

  Returns:
    Scalar.

  Raises:
    ValueError: if ``a`` and ``b`` are not two ``(N, D)`` arrays of one shape.
  """
  if np.shape(a) != np.shape(b) or len(np.shape(a)) != 2:
    raise ValueError(f"a, b: expected two (N, D) arrays of one shape, got {np.shape(a)} and "
                     f"{np.shape(b)}")

  def unit(v):
    return v / jnp.maximum(jnp.linalg.norm(v, axis=1, keepdims=True), 1e-12)

  return 2.0 - 2.0 * jnp.mean(jnp.sum(unit(a) * unit(b), axis=1))


def trade_off(batch_size: int, embedding_dim: int, whiten: str = "samples") -> float:
  """The official trace-loss weight beta.

  ``0.01 (log2(bs) - 3)`` (samples) or ``0.01 (log2(emb) - 3)`` (features), with ``bs`` the global
  batch size.

  Args:
    batch_size: global batch size N.
    embedding_dim: embedding width D.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).

  Returns:
    beta.

  Raises:
    ValueError: if ``whiten`` is unknown or the relevant size is < 1.
  """
  _check_whiten(whiten)
  size = batch_size if whiten == "samples" else embedding_dim
  if size < 1:
    raise ValueError(f"batch_size/embedding_dim: expected a positive size, got {size}")
  return 0.01 * (math.log2(size) - 3)


def _check_views(views: Sequence[jax.Array], name: str) -> None:
  if len(views) < 1:
    raise ValueError(f"{name}: expected at least one view")
  for i, v in enumerate(views):
    check_embeddings(v, f"{name}[{i}]")
  if len({np.shape(v) for v in views}) != 1:
    raise ValueError(f"{name}: every view must have the same (N, D) shape, got "
                     f"{[np.shape(v) for v in views]}")


def intl_loss(views: Sequence[jax.Array], beta: float | None = None, iterations: int = 4,
              whiten: str = "samples") -> tuple[jax.Array, dict[str, jax.Array]]:
  """INTL objective over V >= 2 views of projector outputs (official ``INTL.forward``).

  ``t_v = IterNorm(z_v)``, ``L = 1/(V-1) sum_{v>=1} [mse_norm(t_v, t_0) + beta (tl_v + tl_0)]``.

  Args:
    views: V arrays ``(N, D)``; view 0 is the anchor of every pair.
    beta: trace-loss weight; ``None`` = :func:`trade_off` of the views' shape.
    iterations: IterNorm iterations.
    whiten: IterNorm orientation.

  Returns:
    ``(loss, aux)`` with ``aux["trace_losses"]`` (V,) and ``aux["norm_mse"]`` (V - 1,).

  Raises:
    ValueError: if there are fewer than 2 views, or a view is not a finite ``(N, D)`` array of the
      common shape.
  """
  if len(views) < 2:
    raise ValueError(f"views: expected at least 2 views, got {len(views)}")
  _check_views(views, "views")
  n, d = np.shape(views[0])
  beta = trade_off(n, d, whiten) if beta is None else beta
  t = [iternorm(v, iterations, whiten) for v in views]
  tl = jnp.stack([trace_loss(v, whiten) for v in t])
  mse = jnp.stack([normalized_mse(v, t[0]) for v in t[1:]])
  loss = jnp.mean(mse + beta * (tl[1:] + tl[0]))
  return loss, {"trace_losses": tl, "norm_mse": mse}


def intl_momentum_loss(key_view: jax.Array, query_views: Sequence[jax.Array],
                       beta: float | None = None, iterations: int = 4,
                       whiten: str = "samples") -> tuple[jax.Array, dict[str, jax.Array]]:
  """INTL_M objective (official ``INTL_M.forward``): the EMA key embedding gets no gradient.

  ``L = 1/Q sum_q [mse_norm(t_q, stop_grad(t_k)) + beta tl(t_q)]`` (no trace loss on the key).

  Args:
    key_view: EMA key embeddings, ``(N, D)``.
    query_views: Q query embeddings, each ``(N, D)``.
    beta: trace-loss weight; ``None`` = :func:`trade_off`.
    iterations: IterNorm iterations.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).

  Returns:
    ``(loss, aux)`` with ``aux["trace_losses"]`` (Q,) and ``aux["norm_mse"]`` (Q,).

  Raises:
    ValueError: if a view is not a finite ``(N, D)`` array of the common shape.
  """
  _check_views([key_view, *query_views], "key_view/query_views")
  n, d = np.shape(key_view)
  beta = trade_off(n, d, whiten) if beta is None else beta
  tk = jax.lax.stop_gradient(iternorm(key_view, iterations, whiten))
  tq = [iternorm(v, iterations, whiten) for v in query_views]
  tl = jnp.stack([trace_loss(v, whiten) for v in tq])
  mse = jnp.stack([normalized_mse(v, tk) for v in tq])
  return jnp.mean(mse + beta * tl), {"trace_losses": tl, "norm_mse": mse}


def power_st_loss(views: Sequence[jax.Array], power: float = 0.5, whiten: str = "samples",
                  eps: float = 1e-5) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The paper's ST experiments: normalised MSE between power-law-transformed views (no trace loss).

  ``L = 1/(V-1) sum_{v>=1} mse_norm(ST_p(z_v), ST_p(z_0))``; ``power = 0.5`` is hard whitening
  (W-MSE-style), ``power = 0`` plain alignment (collapses).

  Args:
    views: V >= 2 arrays ``(N, D)``.
    power: ``p``.
    whiten: ``"samples"`` (official axis 0: N x N Gram) or ``"features"`` (axis 1: D x D).
    eps: eigenvalue floor.

  Returns:
    ``(loss, aux)`` with ``aux["norm_mse"]`` (V - 1,) and zero ``aux["trace_losses"]`` (V,).

  Raises:
    ValueError: if there are fewer than 2 views, or a view is not a finite ``(N, D)`` array of the
      common shape.
  """
  if len(views) < 2:
    raise ValueError(f"views: expected at least 2 views, got {len(views)}")
  _check_views(views, "views")
  t = [power_transform(v, power, whiten, eps) for v in views]
  mse = jnp.stack([normalized_mse(v, t[0]) for v in t[1:]])
  return jnp.mean(mse), {"norm_mse": mse, "trace_losses": jnp.zeros(len(views))}
