"""Synthetic hyperspectral cubes that look like real ones: smooth endmember spectra mixed by
spatially structured, sum-to-one abundance maps (the linear mixing model).

Smoke runs and tests train on these, so models learn spatial and spectral correlations rather than
white noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def endmember_spectra(key: jax.Array, num_endmembers: int, bands: int) -> jax.Array:
  """Smooth reflectance-like spectra in [0.05, 0.95], shape ``(num_endmembers, bands)``.

  Each spectrum is a baseline plus a slope plus three Gaussian absorption/reflection features.
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
  """Sum-to-one abundances ``(height, width, num_endmembers)`` from smoothed Gaussian fields.

  ``correlation_length`` (pixels) sets the size of the regions, ``sharpness`` how pure they are.
  """
  noise = jax.random.normal(key, (num_endmembers, height, width))
  fy = jnp.fft.fftfreq(height)[:, None]
  fx = jnp.fft.fftfreq(width)[None, :]
  kernel = jnp.exp(-2.0 * (jnp.pi * correlation_length) ** 2 * (fx**2 + fy**2))
  field = jnp.fft.ifft2(jnp.fft.fft2(noise) * kernel).real
  field = field / (field.std(axis=(1, 2), keepdims=True) + 1e-12)
  return jax.nn.softmax(sharpness * field, axis=0).transpose(1, 2, 0)


def hyperspectral_cube(key: jax.Array, height: int, width: int, bands: int,
                       num_endmembers: int = 6, correlation_length: float = 8.0) -> jax.Array:
  """A ``(height, width, bands)`` cube in [0, 1], deterministic from ``key``.

  >>> cube = hyperspectral_cube(jax.random.key(0), 32, 32, 31)
  >>> cube.shape
  (32, 32, 31)
  """
  for name, value in (("height", height), ("width", width), ("bands", bands)):
    if value < 1:
      raise ValueError(f"{name}: expected a positive integer, got {value}")
  k_spec, k_abund = jax.random.split(key)
  spectra = endmember_spectra(k_spec, num_endmembers, bands)
  abundances = abundance_maps(k_abund, height, width, num_endmembers, correlation_length)
  return abundances @ spectra
