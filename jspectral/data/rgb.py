"""RGB rendering of hyperspectral cubes from spectral response curves.

The default curves are the CIE 1931 2-degree colour-matching functions in the multi-lobe Gaussian
fit of Wyman, Sloan & Shirley ("Simple Analytic Approximations to the CIE XYZ Color Matching
Functions", JCGT 2013), followed by the XYZ -> linear sRGB (D65) matrix. Each channel is scaled so
that a flat unit spectrum renders as white (1, 1, 1). Any camera's curves can be passed instead as
a ``(C, 3)`` ``response`` (e.g. the 31 x 3 camera curves of the Spectral Mixup SR code, or HSIR's
3 x 31 projection transposed). Rendering is one linear map over bands, so it is differentiable and
usable inside a loss (the RGB branch of the multi-task SR).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# (weight, centre nm, sigma below centre, sigma above centre) per lobe.
_CIE_LOBES = {
    "x": ((1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)),
    "y": ((0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)),
    "z": ((1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)),
}
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986],
                        [-0.9689, 1.8758, 0.0415],
                        [0.0557, -0.2040, 1.0570]])


def default_wavelengths(bands: int) -> np.ndarray:
  """400-700 nm evenly spaced (10 nm steps for the 31-band ICVL/CAVE/Harvard cubes).

  Args:
    bands: band count ``C``.

  Returns:
    ``(C,)`` float64 wavelengths in nm.
  """
  return np.linspace(400.0, 700.0, bands)


def cie_xyz(wavelengths: np.ndarray) -> np.ndarray:
  """CIE 1931 colour-matching functions (Wyman-Sloan-Shirley multi-lobe fit).

  Args:
    wavelengths: ``(C,)`` in nm.

  Returns:
    ``(C, 3)`` float64 ``x, y, z`` values.
  """
  lam = np.asarray(wavelengths, np.float64)[:, None]

  def lobe(weight, centre, below, above):
    sigma = np.where(lam < centre, below, above)
    return weight * np.exp(-0.5 * ((lam - centre) / sigma) ** 2)

  return np.concatenate([sum(lobe(*p) for p in _CIE_LOBES[c]) for c in "xyz"], axis=1)


def srgb_response(wavelengths: np.ndarray) -> np.ndarray:
  """Linear-sRGB response, white-balanced so that ``ones(C) @ response = (1, 1, 1)``.

  Bands outside the visible range get (near) zero weight.

  Args:
    wavelengths: ``(C,)`` in nm.

  Returns:
    ``(C, 3)`` float64.
  """
  response = cie_xyz(wavelengths) @ XYZ_TO_SRGB.T
  return response / response.sum(axis=0, keepdims=True)


def render_rgb(cube: jax.Array, wavelengths=None, response=None, gamma: bool = False) -> jax.Array:
  """Renders a bands-last cube as RGB (one linear map over bands; differentiable).

  Args:
    cube: bands-last reflectance/radiance ``(..., H, W, C)`` in [0, 1].
    wavelengths: ``(C,)`` band centres in nm (default :func:`default_wavelengths`).
    response: optional ``(C, 3)`` camera response replacing the CIE/sRGB curves.
    gamma: apply the sRGB transfer curve (for display) after clipping to [0, 1].

  Returns:
    ``(..., H, W, 3)``.
  """
  if cube.ndim < 3:
    raise ValueError(f"cube: expected bands-last (..., H, W, C), got shape {cube.shape}")
  bands = cube.shape[-1]
  if response is None:
    wavelengths = default_wavelengths(bands) if wavelengths is None else np.asarray(wavelengths)
    if wavelengths.shape != (bands,):
      raise ValueError(f"wavelengths: expected {bands} values, got shape {wavelengths.shape}")
    response = srgb_response(wavelengths)
  response = jnp.asarray(response, cube.dtype)
  if response.shape != (bands, 3):
    raise ValueError(f"response: expected shape ({bands}, 3), got {response.shape}")
  rgb = jnp.einsum("...c,cr->...r", cube, response, precision=jax.lax.Precision.HIGHEST)
  if gamma:
    rgb = jnp.clip(rgb, 0.0, 1.0)
    curve = 1.055 * jnp.maximum(rgb, 0.0031308) ** (1 / 2.4) - 0.055
    rgb = jnp.where(rgb <= 0.0031308, 12.92 * rgb, curve)
  return rgb
