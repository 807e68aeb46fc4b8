"""Synthetic hyperspectral cubes that look like real ones: smooth endmember spectra mixed by
spatially structured, sum-to-one abundance maps (the linear mixing model).

Smoke runs and tests train on these, so models learn spatial and spectral correlations rather than
white noise.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jspectral.data import noise


def endmember_spectra(key: jax.Array, num_endmembers: int, bands: int) -> jax.Array:
  """Smooth reflectance-like spectra in [0.05, 0.95].

  Each spectrum is a baseline plus a slope plus three Gaussian absorption/reflection features.

  Args:
    key: PRNG key.
    num_endmembers: number of spectra ``E``.
    bands: band count ``C``.

  Returns:
    ``(E, C)``.
  """
  if num_endmembers < 1 or bands < 1:
    raise ValueError(f"num_endmembers, bands: expected positive integers, got {num_endmembers}, "
                     f"{bands}")
  k_base, k_slope, k_centre, k_width, k_depth = jax.random.split(key, 5)
  wavelength = jnp.linspace(0.0, 1.0, bands)
  base = jax.random.uniform(k_base, (num_endmembers, 1), minval=0.2, maxval=0.6)
  slope = jax.random.uniform(k_slope, (num_endmembers, 1), minval=-0.3, maxval=0.3)
  centre = jax.random.uniform(k_centre, (num_endmembers, 3, 1))
  width = jax.random.uniform(k_width, (num_endmembers, 3, 1), minval=0.05, maxval=0.2)
  depth = jax.random.uniform(k_depth, (num_endmembers, 3, 1), minval=-0.3, maxval=0.3)
  bumps = (depth * jnp.exp(-0.5 * ((wavelength - centre) / width) ** 2)).sum(axis=1)
  return jnp.clip(base + slope * (wavelength - 0.5) + bumps, 0.05, 0.95)


def abundance_maps(key: jax.Array, height: int, width: int, num_endmembers: int,
                   correlation_length: float = 8.0, sharpness: float = 4.0) -> jax.Array:
  """Sum-to-one abundances from smoothed Gaussian fields.

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    num_endmembers: ``E``.
    correlation_length: size of the regions, in pixels.
    sharpness: how pure the regions are (softmax temperature).

  Returns:
    ``(H, W, E)``, non-negative, summing to 1 over ``E``.
  """
  noise = jax.random.normal(key, (num_endmembers, height, width))
  fy = jnp.fft.fftfreq(height)[:, None]
  fx = jnp.fft.fftfreq(width)[None, :]
  kernel = jnp.exp(-2.0 * (jnp.pi * correlation_length) ** 2 * (fx**2 + fy**2))
  field = jnp.fft.ifft2(jnp.fft.fft2(noise) * kernel).real
  field = field / (field.std(axis=(1, 2), keepdims=True) + 1e-12)
  return jax.nn.softmax(sharpness * field, axis=0).transpose(1, 2, 0)


@functools.partial(jax.jit, static_argnames=("height", "width", "bands", "num_endmembers"))
def hyperspectral_cube(key: jax.Array, height: int, width: int, bands: int,
                       num_endmembers: int = 6, correlation_length: float = 8.0) -> jax.Array:
  """A linear-mixing cube in [0, 1], deterministic from ``key`` (one compiled program per shape).

  >>> cube = hyperspectral_cube(jax.random.key(0), 32, 32, 31)
  >>> cube.shape
  (32, 32, 31)

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C``.
    num_endmembers: number of endmember spectra.
    correlation_length: size of the abundance regions, in pixels.

  Returns:
    ``(H, W, C)``.
  """
  for name, value in (("height", height), ("width", width), ("bands", bands)):
    if value < 1:
      raise ValueError(f"{name}: expected a positive integer, got {value}")
  k_spec, k_abund = jax.random.split(key)
  spectra = endmember_spectra(k_spec, num_endmembers, bands)
  abundances = abundance_maps(k_abund, height, width, num_endmembers, correlation_length)
  return abundances @ spectra


# ------------------------------------------------------------------------------------------------
# Stand-ins for the real datasets: same band counts and value ranges as the builders produce.

def _minmax(cube: jax.Array) -> jax.Array:
  return (cube - cube.min()) / (cube.max() - cube.min())


@functools.partial(jax.jit, static_argnames=("height", "width", "bands"))
def icvl_like(key: jax.Array, height: int, width: int, bands: int = 31) -> jax.Array:
  """A natural-scene cube like ICVL/CAVE/Harvard, min-max normalised to [0, 1].

  Exact 0 and 1 occur, as in the papers' normalisation. ``bands=34`` mimics RealHSI.

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C`` (31).

  Returns:
    ``(H, W, C)``.
  """
  return _minmax(hyperspectral_cube(key, height, width, bands))


cave_like = icvl_like
harvard_like = icvl_like


@functools.partial(jax.jit, static_argnames=("height", "width", "bands"))
def chikusei_like(key: jax.Array, height: int, width: int, bands: int = 128) -> jax.Array:
  """An airborne-scene cube like Chikusei: 128 bands, divided by its maximum (values in (0, 1]).

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C`` (128).

  Returns:
    ``(H, W, C)``.
  """
  cube = hyperspectral_cube(key, height, width, bands, num_endmembers=8, correlation_length=4.0)
  return cube / cube.max()


@functools.partial(jax.jit, static_argnames=("height", "width", "bands"))
def pavia_like(key: jax.Array, height: int, width: int, bands: int = 102) -> jax.Array:
  """An urban ROSIS-like cube: 102 bands (Pavia Centre; 103 for University), max-normalised.

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C`` (102).

  Returns:
    ``(H, W, C)``.
  """
  cube = hyperspectral_cube(key, height, width, bands, num_endmembers=6, correlation_length=3.0)
  return cube / cube.max()


@functools.partial(jax.jit, static_argnames=("height", "width", "bands"))
def urban_like(key: jax.Array, height: int, width: int, bands: int = 162) -> jax.Array:
  """A really-noisy scene like HYDICE Urban (no clean reference).

  A min-max normalised cube with the QRNN3D ``mixture`` noise (non-i.i.d. Gaussian, stripes, dead
  lines, impulse).

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C`` (162).

  Returns:
    ``(H, W, C)``.
  """
  k_cube, k_noise = jax.random.split(key)
  return noise.complex_noise(k_noise, _minmax(hyperspectral_cube(k_cube, height, width, bands)),
                             "mixture")


@functools.partial(jax.jit, static_argnames=("height", "width", "bands", "num_classes",
                                             "labelled_fraction", "noise_std"))
def classification_scene(key: jax.Array, height: int = 32, width: int = 32, bands: int = 30,
                         num_classes: int = 5, labelled_fraction: float = 0.8,
                         noise_std: float = 0.02) -> tuple[jax.Array, jax.Array]:
  """A labelled scene for classification smoke runs.

  Classes own contiguous regions (Voronoi cells of a jittered seed grid, with wavy borders); each
  class has its own smooth spectrum, modulated by a smooth brightness field plus white noise, so
  spectra are class-structured but not trivially separable. About ``1 - labelled_fraction`` of the
  pixels are unlabelled (0). Every class keeps a labelled neighbourhood around its seed.

  Args:
    key: PRNG key.
    height: ``H``.
    width: ``W``.
    bands: ``C``.
    num_classes: ``K`` (at least 4 pixels each).
    labelled_fraction: share of labelled pixels.
    noise_std: white-noise level.

  Returns:
    ``(cube (H, W, C) in [0, 1], labels (H, W) int32 in 0..K)``.
  """
  if num_classes < 1 or height * width < 4 * num_classes:
    raise ValueError(f"num_classes: {num_classes} classes need at least 4 pixels each, got a "
                     f"{height}x{width} scene")
  k_spec, k_seed, k_warp, k_bright, k_noise, k_mask = jax.random.split(key, 6)
  spectra = endmember_spectra(k_spec, num_classes, bands)
  grid = math.ceil(math.sqrt(num_classes))
  cells = jnp.stack(jnp.meshgrid(jnp.arange(grid), jnp.arange(grid), indexing="ij"), -1)
  cells = cells.reshape(-1, 2)[:num_classes]
  seeds = (cells + 0.5 + 0.3 * jax.random.uniform(k_seed, cells.shape, minval=-1, maxval=1))
  seeds = seeds * jnp.array([height / grid, width / grid])
  rows, cols = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
  warp = abundance_maps(k_warp, height, width, 2, correlation_length=height / 6, sharpness=1.0)
  pos = jnp.stack([rows, cols], -1) + (warp - 0.5) * (height / grid)
  distance = jnp.linalg.norm(pos[:, :, None, :] - seeds[None, None], axis=-1)
  classes = distance.argmin(axis=-1)
  brightness = abundance_maps(k_bright, height, width, 2, correlation_length=4.0)[..., :1]
  cube = spectra[classes] * (0.85 + 0.3 * brightness)
  cube = cube + noise_std * jax.random.normal(k_noise, (height, width, bands))
  near_seed = distance.min(axis=-1) < 1.5
  keep = (jax.random.uniform(k_mask, (height, width)) < labelled_fraction) | near_seed
  labels = jnp.where(keep, classes + 1, 0).astype(jnp.int32)
  return jnp.clip(cube, 0.0, 1.0), labels
