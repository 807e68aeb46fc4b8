"""Spectral Mixup (Li, Dai, Konukoglu, Van Gool, "Hyperspectral Image Super-Resolution with
Spectral Mixup and Heterogeneous Datasets", arXiv 2101.07589; official code kli8996/HSISR).

A virtual training sample is the average of a cube and a random non-negative linear re-mixing of
all its bands: ``mix(X) = (1 − w) X + w X R`` per pixel, with ``R = U / mean_j(Σ_i U_ij)`` for
``U ~ Uniform[0, 1)^{C×C}`` (columns sum to 1 on average) and ``w = ½`` (official). The same
``R`` is applied to the LR cube, its bicubic upsampling and the HR cube, for every sample of a
batch: band mixing is per-pixel linear and the degradation is spatially linear, so the mixed
LR/HR pair is still a valid degradation pair.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def normalise_mixing(u: jax.Array) -> jax.Array:
  """``U / mean_j(Σ_i U_ij)``: divide by the average column sum (columns are ≈1, not exactly 1).

  Args:
    u: square ``(C, C)`` matrix.

  Returns:
    ``(C, C)``.
  """
  if u.ndim != 2 or u.shape[0] != u.shape[1]:
    raise ValueError(f"u: expected a square (C, C) matrix, got shape {u.shape}")
  return u / jnp.mean(jnp.sum(u, axis=0))


def mixing_matrix(key: jax.Array, bands: int, dtype=jnp.float32) -> jax.Array:
  """A random Spectral Mixup matrix ``R`` (non-negative, mean column sum 1).

  Args:
    key: PRNG key.
    bands: band count ``C``.
    dtype: result dtype.

  Returns:
    ``(C, C)``.
  """
  if bands < 1:
    raise ValueError(f"bands: expected a positive integer, got {bands}")
  return normalise_mixing(jax.random.uniform(key, (bands, bands))).astype(dtype)


def mix_bands(x: jax.Array, r: jax.Array, weight: float = 0.5) -> jax.Array:
  """``(1 − weight) x + weight · x R``: band ``j`` of the result mixes every band ``i`` of ``x``.

  Args:
    x: bands-last ``(..., C)``.
    r: ``(C, C)`` mixing matrix, ``r[i, j]`` = weight of input band ``i`` in output band ``j``.
    weight: share of the re-mixed cube (official ½).

  Returns:
    ``(..., C)``.
  """
  if r.ndim != 2 or r.shape != (x.shape[-1], x.shape[-1]):
    raise ValueError(f"r: expected ({x.shape[-1]}, {x.shape[-1]}) for x with {x.shape[-1]} bands, "
                     f"got shape {r.shape}")
  return (1.0 - weight) * x + weight * jnp.einsum("...i,ij->...j", x, r)


def spectral_mixup(key: jax.Array, *cubes: jax.Array, weight: float = 0.5
                   ) -> tuple[tuple[jax.Array, ...], jax.Array]:
  """Mixes every cube of ``cubes`` (e.g. LR, bicubic, HR) with ONE random matrix.

  Args:
    key: PRNG key for ``R``.
    *cubes: bands-last arrays ``(..., C)`` with one band count (any leading shape; the whole batch
      shares R).
    weight: share of the re-mixed cube (official ½).

  Returns:
    ``(mixed cubes, R)``: a tuple of arrays shaped like ``cubes`` and the ``(C, C)`` matrix.
  """
  if not cubes:
    raise ValueError("cubes: expected at least one cube")
  bands = {c.shape[-1] for c in cubes}
  if len(bands) != 1:
    raise ValueError(f"cubes: expected one band count for all cubes, got {sorted(bands)}")
  r = mixing_matrix(key, bands.pop(), cubes[0].dtype)
  return tuple(mix_bands(c, r, weight) for c in cubes), r
