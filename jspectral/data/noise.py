"""Noise models of the hyperspectral denoising papers (HSDT, MAN, QRNN3D protocol).

Two implementations of the same laws:

* Pure JAX functions (explicit keys, bands-last ``(H, W, C)``, jit- and vmap-safe) for training and
  for generating test sets: :func:`gaussian`, :func:`blind_gaussian`, :func:`noniid_gaussian`,
  :func:`stripes`, :func:`deadlines`, :func:`impulse`, :func:`complex_noise` and
  :func:`complex_training_noise`. Column counts that vary per band are realised with masks, so
  shapes stay static.
* :func:`hsir_replay`, a NumPy path that replays the draw order of the authors' toolbox
  (bit-isp/HSIR ``hsir/data/transform/noise.py``, identical in Zeqiang-Lai/HSDT
  ``train/utility``) on a ``numpy.random.RandomState``, reproducing its outputs bit for bit.

Sigmas are quoted on the 0-255 scale and divided by 255 (data in [0, 1]). Noisy outputs are never
clipped; impulse noise writes exact 0/1 and deadlines exact 0.

``protocol`` selects between the two count laws of stripes and deadlines
(specs/hsi_denoising_data.md section 2): ``"train"`` is HSIR's training law (stripe counts
``randint(floor(.05 W), floor(.15 W))``, deadline counts ``randint(ceil(.05 W), ceil(.15 W))``,
upper bounds exclusive) and ``"test"`` is QRNN3D's MATLAB test-set law (both
``randi([ceil(.05 W), ceil(.15 W)])``, inclusive).

References: Wei et al., "3-D Quasi-Recurrent Neural Network for Hyperspectral Image Denoising"
(Vandermode/QRNN3D); Lai et al., "Hybrid Spectral Denoising Transformer with Guided Attention"
(Zeqiang-Lai/HSDT, bit-isp/HSIR).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

GAUSSIAN_SIGMAS = (10, 30, 50, 70)
IMPULSE_AMOUNTS = (0.1, 0.3, 0.5, 0.7)
COMPLEX_CASES = ("noniid", "stripe", "deadline", "impulse", "mixture")
PROTOCOLS = ("train", "test")


def _check_cube(clean: jax.Array) -> None:
  if clean.ndim != 3:
    raise ValueError(f"clean: expected one bands-last cube (H, W, C), got shape {clean.shape}; "
                     "use jax.vmap for a batch")


def _check_protocol(protocol: str) -> None:
  if protocol not in PROTOCOLS:
    raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")


@jax.jit
def gaussian(key: jax.Array, clean: jax.Array, sigma) -> jax.Array:
  """``clean + sigma / 255 * N(0, 1)`` (HSIR ``AddNoise``; test cases 30/50/70).

  Args:
    key: PRNG key.
    clean: cube ``(H, W, C)`` in [0, 1].
    sigma: noise level on the 0-255 scale, a Python number or a traced scalar.

  Returns:
    The noisy ``(H, W, C)`` cube (not clipped).
  """
  _check_cube(clean)
  noise = jax.random.normal(key, clean.shape, clean.dtype)
  return clean + noise * (jnp.asarray(sigma, clean.dtype) / 255.0)


def cyclic_sigma(index, sigmas: Sequence[float] = GAUSSIAN_SIGMAS) -> jax.Array:
  """HSIR's training "blind" law: sample ``index`` gets ``sigmas[index % len(sigmas)]``.

  Args:
    index: sample index (int or traced int scalar).
    sigmas: the cycle of levels on the 0-255 scale.

  Returns:
    float32 scalar sigma.
  """
  return jnp.asarray(sigmas, jnp.float32)[jnp.asarray(index) % len(sigmas)]


@functools.partial(jax.jit, static_argnames=("sigma_range",))
def blind_gaussian(key: jax.Array, clean: jax.Array,
                   sigma_range: tuple[float, float] = (10.0, 70.0)) -> jax.Array:
  """Gaussian noise with one sigma per cube drawn from ``U[sigma_range]`` (QRNN3D ``blind`` test).

  For HSIR's cyclic training law use ``gaussian(key, x, cyclic_sigma(sample_index))``.

  Args:
    key: PRNG key.
    clean: cube ``(H, W, C)`` in [0, 1].
    sigma_range: ``(low, high)`` on the 0-255 scale.

  Returns:
    The noisy ``(H, W, C)`` cube.
  """
  _check_cube(clean)
  low, high = sigma_range
  if not 0 <= low <= high:
    raise ValueError(f"sigma_range: expected 0 <= low <= high, got {sigma_range}")
  k_sigma, k_noise = jax.random.split(key)
  return gaussian(k_noise, clean, _blind_sigma(k_sigma, clean.dtype, sigma_range))


def _blind_sigma(key, dtype, sigma_range):
  return jax.random.uniform(key, (), dtype, sigma_range[0], sigma_range[1])


def _band_sigmas(key, bands, dtype, sigmas):
  """Per-band sigma on the 0-255 scale, uniform over the set ``sigmas``."""
  return jnp.asarray(sigmas, dtype)[jax.random.randint(key, (bands,), 0, len(sigmas))]


@functools.partial(jax.jit, static_argnames=("sigmas",))
def noniid_gaussian(key: jax.Array, clean: jax.Array,
                    sigmas: Sequence[float] = GAUSSIAN_SIGMAS) -> jax.Array:
  """Per-band sigma drawn uniformly from ``sigmas`` (HSIR ``AddNoiseNoniid``, test ``noniid``).

  Args:
    key: PRNG key.
    clean: cube ``(H, W, C)`` in [0, 1].
    sigmas: the set of levels on the 0-255 scale.

  Returns:
    The noisy ``(H, W, C)`` cube.
  """
  _check_cube(clean)
  k_sigma, k_noise = jax.random.split(key)
  band_sigma = _band_sigmas(k_sigma, clean.shape[-1], clean.dtype, sigmas) / 255.0
  return clean + jax.random.normal(k_noise, clean.shape, clean.dtype) * band_sigma


def _count_range(kind: str, protocol: str, width: int, low: float, high: float) -> tuple[int, int]:
  """Inclusive ``(min, max)`` number of corrupted columns per band."""
  if kind == "stripe" and protocol == "train":
    count_range = math.floor(low * width), math.floor(high * width) - 1
  elif protocol == "train":
    count_range = math.ceil(low * width), math.ceil(high * width) - 1
  else:
    count_range = math.ceil(low * width), math.ceil(high * width)
  if count_range[1] < count_range[0]:
    raise ValueError(f"x: width {width} is too narrow for the {protocol} {kind} law "
                     f"({low}..{high} of the columns)")
  return count_range


def _column_masks(key: jax.Array, bands: int, width: int, count_range: tuple[int, int]):
  """Per band, a uniformly random set of ``n ~ U{count_range}`` columns: ``(bands, width)`` bool."""
  k_count, k_pick = jax.random.split(key)
  counts = jax.random.randint(k_count, (bands, 1), count_range[0], count_range[1] + 1)
  scores = jax.random.uniform(k_pick, (bands, width))
  threshold = jnp.take_along_axis(jnp.sort(scores, axis=1), jnp.maximum(counts - 1, 0), axis=1)
  return (scores <= threshold) & (counts > 0)


def _band_ranks(key: jax.Array, bands: int) -> jax.Array:
  """Rank of each band in a random permutation; bands with ranks in ``[a, b)`` form a group."""
  return jax.random.permutation(key, bands).argsort()


def _stripes_on(key, x, band_mask, protocol, min_amount, max_amount):
  _, width, bands = x.shape
  k_cols, k_value = jax.random.split(key)
  count_range = _count_range("stripe", protocol, width, min_amount, max_amount)
  columns = _column_masks(k_cols, bands, width, count_range).T          # (W, C)
  shift = jax.random.uniform(k_value, (width, bands), x.dtype) * 0.5 - 0.25
  return x - jnp.where(columns & band_mask, shift, 0.0)[None]


def _deadlines_on(key, x, band_mask, protocol, min_amount, max_amount):
  _, width, bands = x.shape
  count_range = _count_range("deadline", protocol, width, min_amount, max_amount)
  columns = _column_masks(key, bands, width, count_range).T
  return jnp.where((columns & band_mask)[None], jnp.zeros((), x.dtype), x)


def _impulse_on(key, x, band_mask, amounts, salt_vs_pepper):
  k_amount, k_flip, k_salt = jax.random.split(key, 3)
  amount = jnp.asarray(amounts, x.dtype)[jax.random.randint(k_amount, (x.shape[-1],), 0,
                                                            len(amounts))]
  flipped = (jax.random.uniform(k_flip, x.shape, x.dtype) < amount) & band_mask
  salted = jax.random.bernoulli(k_salt, salt_vs_pepper, x.shape)
  return jnp.where(flipped, salted.astype(x.dtype), x)


def _bands_mask(key, bands: int, num_bands: int | None) -> jax.Array:
  num = bands // 3 if num_bands is None else num_bands
  if not 0 <= num <= bands:
    raise ValueError(f"num_bands: expected 0..{bands}, got {num_bands}")
  return _band_ranks(key, bands) < num


@functools.partial(jax.jit,
                   static_argnames=("num_bands", "min_amount", "max_amount", "protocol"))
def stripes(key: jax.Array, x: jax.Array, num_bands: int | None = None, *,
            min_amount: float = 0.05, max_amount: float = 0.15,
            protocol: str = "train") -> jax.Array:
  """Subtracts a per-column constant ``U[-0.25, 0.25)`` from random whole columns.

  ``num_bands`` random bands (default ``floor(C / 3)``) each get ``n`` corrupted columns with ``n``
  drawn from the ``protocol``'s count law (module docstring).

  Args:
    key: PRNG key.
    x: cube ``(H, W, C)``.
    num_bands: how many bands are hit.
    min_amount: lower fraction of the columns for the count law.
    max_amount: upper fraction of the columns for the count law.
    protocol: ``"train"`` (HSIR) or ``"test"`` (QRNN3D MATLAB).

  Returns:
    ``(H, W, C)``.
  """
  _check_cube(x)
  _check_protocol(protocol)
  k_bands, k_noise = jax.random.split(key)
  band_mask = _bands_mask(k_bands, x.shape[-1], num_bands)
  return _stripes_on(k_noise, x, band_mask, protocol, min_amount, max_amount)


@functools.partial(jax.jit,
                   static_argnames=("num_bands", "min_amount", "max_amount", "protocol"))
def deadlines(key: jax.Array, x: jax.Array, num_bands: int | None = None, *,
              min_amount: float = 0.05, max_amount: float = 0.15,
              protocol: str = "train") -> jax.Array:
  """Sets random whole columns of ``num_bands`` random bands (default ``floor(C / 3)``) to 0.

  Args:
    key: PRNG key.
    x: cube ``(H, W, C)``.
    num_bands: how many bands are hit.
    min_amount: lower fraction of the columns for the count law.
    max_amount: upper fraction of the columns for the count law.
    protocol: ``"train"`` (HSIR) or ``"test"`` (QRNN3D MATLAB).

  Returns:
    ``(H, W, C)``.
  """
  _check_cube(x)
  _check_protocol(protocol)
  k_bands, k_noise = jax.random.split(key)
  band_mask = _bands_mask(k_bands, x.shape[-1], num_bands)
  return _deadlines_on(k_noise, x, band_mask, protocol, min_amount, max_amount)


@functools.partial(jax.jit, static_argnames=("num_bands", "amounts", "salt_vs_pepper"))
def impulse(key: jax.Array, x: jax.Array, num_bands: int | None = None, *,
            amounts: Sequence[float] = IMPULSE_AMOUNTS, salt_vs_pepper: float = 0.5) -> jax.Array:
  """Salt-and-pepper noise on ``num_bands`` random bands (default ``floor(C / 3)``).

  Each band draws a density ``d`` from ``amounts``; each of its pixels is hit with probability
  ``d`` and then set to 1 with probability ``salt_vs_pepper``, else to 0 (HSIR
  ``_AddNoiseImpulse``; the same law as MATLAB ``imnoise(., 'salt & pepper', d)``).

  Args:
    key: PRNG key.
    x: cube ``(H, W, C)``.
    num_bands: how many bands are hit.
    amounts: the set of densities.
    salt_vs_pepper: probability that a hit pixel becomes 1.

  Returns:
    ``(H, W, C)``.
  """
  _check_cube(x)
  k_bands, k_noise = jax.random.split(key)
  band_mask = _bands_mask(k_bands, x.shape[-1], num_bands)
  return _impulse_on(k_noise, x, band_mask, amounts, salt_vs_pepper)


@functools.partial(jax.jit, static_argnames=("case", "protocol", "sigmas"))
def complex_noise(key: jax.Array, clean: jax.Array, case: str, protocol: str = "test",
                  sigmas: Sequence[float] = GAUSSIAN_SIGMAS) -> jax.Array:
  """One of the papers' complex-noise cases: non-i.i.d. Gaussian plus structured noise.

  Args:
    key: PRNG key.
    clean: cube ``(H, W, C)`` in [0, 1].
    case: ``"noniid"`` (Gaussian only), ``"stripe"``, ``"deadline"``, ``"impulse"`` (the component
      on ``floor(C / 3)`` random bands) or ``"mixture"`` (stripes, deadlines and impulse on three
      disjoint groups of ``floor(C / 3)`` bands of one permutation).
    protocol: count law of stripes and deadlines; defaults to the test-set law of the
      ``icvl_512_<case>`` folders.
    sigmas: the Gaussian levels on the 0-255 scale.

  Returns:
    The noisy ``(H, W, C)`` cube.
  """
  _check_cube(clean)
  _check_protocol(protocol)
  if case not in COMPLEX_CASES:
    raise ValueError(f"case: expected one of {COMPLEX_CASES}, got {case!r}")
  k_gauss, k_bands, k_structured = jax.random.split(key, 3)
  x = noniid_gaussian(k_gauss, clean, sigmas)
  bands = clean.shape[-1]
  third = bands // 3
  ranks = _band_ranks(k_bands, bands)
  components = {"noniid": (), "mixture": ("stripe", "deadline", "impulse")}.get(case, (case,))
  for i, name in enumerate(components):
    band_mask = (ranks >= i * third) & (ranks < (i + 1) * third)
    k_component = jax.random.fold_in(k_structured, i)
    if name == "impulse":
      x = _impulse_on(k_component, x, band_mask, IMPULSE_AMOUNTS, 0.5)
    else:
      apply = _stripes_on if name == "stripe" else _deadlines_on
      x = apply(k_component, x, band_mask, protocol, 0.05, 0.15)
  return x


TEST_CASES = ("30", "50", "70", "blind") + COMPLEX_CASES


@functools.partial(jax.jit, static_argnames=("case",))
def noisy_test_example(key: jax.Array, gt: jax.Array, case: str) -> dict[str, jax.Array]:
  """One element of a QRNN3D-style test set ``icvl_512_<case>`` made from a clean crop.

  The same laws as the MATLAB generator, with a JAX key instead of MATLAB's ``rng(0)`` stream;
  ``input`` equals :func:`gaussian`, :func:`blind_gaussian` or :func:`complex_noise` called with
  the same key.

  Args:
    key: PRNG key.
    gt: clean cube ``(H, W, C)`` in [0, 1].
    case: one of ``TEST_CASES`` (``"30"``, ``"50"``, ``"70"``, ``"blind"`` or a complex case).

  Returns:
    ``{"input" (H, W, C), "gt" (H, W, C), "sigma" (C,)}`` with ``sigma`` the per-band Gaussian
    level on the 0-255 scale (constant for ``30``/``50``/``70``/``blind``).
  """
  _check_cube(gt)
  if case not in TEST_CASES:
    raise ValueError(f"case: expected one of {TEST_CASES}, got {case!r}")
  bands = gt.shape[-1]
  if case == "blind":
    noisy = blind_gaussian(key, gt)
    sigma = jnp.full((bands,), _blind_sigma(jax.random.split(key)[0], gt.dtype, (10.0, 70.0)))
  elif case in COMPLEX_CASES:
    noisy = complex_noise(key, gt, case)
    k_gauss = jax.random.split(key, 3)[0]
    sigma = _band_sigmas(jax.random.split(k_gauss)[0], bands, gt.dtype, GAUSSIAN_SIGMAS)
  else:
    noisy = gaussian(key, gt, float(case))
    sigma = jnp.full((bands,), float(case), gt.dtype)
  return {"input": noisy, "gt": gt, "sigma": sigma}


@jax.jit
def complex_training_noise(key: jax.Array, clean: jax.Array, index) -> jax.Array:
  """HSDT/MAN complex-noise training law for sample ``index``.

  Non-i.i.d. Gaussian on every band, then, cycling with ``index % 4``: nothing, impulse, stripes,
  deadlines (HSIR ``SequentialSelect``), each on ``floor(C / 3)`` random bands, training count laws.

  Args:
    key: PRNG key.
    clean: cube ``(H, W, C)`` in [0, 1].
    index: sample index (int or traced int scalar).

  Returns:
    The noisy ``(H, W, C)`` cube.
  """
  _check_cube(clean)
  k_gauss, k_extra = jax.random.split(key)
  x = noniid_gaussian(k_gauss, clean, GAUSSIAN_SIGMAS)
  branches = (lambda k, v: v, impulse,
              lambda k, v: stripes(k, v, protocol="train"),
              lambda k, v: deadlines(k, v, protocol="train"))
  return jax.lax.switch(jnp.asarray(index) % 4, branches, k_extra, x)


# ---------------------------------------------------------------------------------------------
# NumPy replay of the HSIR training transforms (bands-first, float64, RandomState draw order).

HSIR_TRANSFORMS = ("gaussian", "noniid", "stripe", "deadline", "impulse", "complex")


def _replay_stripe(rng: np.random.RandomState, img: np.ndarray, bands: np.ndarray) -> None:
  width = img.shape[2]
  counts = rng.randint(math.floor(0.05 * width), math.floor(0.15 * width), len(bands))
  for band, count in zip(bands, counts, strict=True):
    columns = rng.permutation(width)[:count]
    img[band][:, columns] -= rng.uniform(0, 1, size=count) * 0.5 - 0.25


def _replay_deadline(rng: np.random.RandomState, img: np.ndarray, bands: np.ndarray) -> None:
  width = img.shape[2]
  counts = rng.randint(math.ceil(0.05 * width), math.ceil(0.15 * width), len(bands))
  for band, count in zip(bands, counts, strict=True):
    img[band][:, rng.permutation(width)[:count]] = 0.0


def _replay_impulse(rng: np.random.RandomState, img: np.ndarray, bands: np.ndarray) -> None:
  amounts = np.asarray(IMPULSE_AMOUNTS)[rng.randint(0, len(IMPULSE_AMOUNTS), len(bands))]
  for band, amount in zip(bands, amounts, strict=True):
    hit = rng.choice([True, False], size=img.shape[1:], p=[amount, 1 - amount])
    salt = rng.choice([True, False], size=img.shape[1:], p=[0.5, 0.5])
    img[band][hit & salt] = 1.0
    img[band][hit & ~salt] = 0.0


_REPLAY_COMPONENTS = {"stripe": _replay_stripe, "deadline": _replay_deadline,
                      "impulse": _replay_impulse}


def hsir_replay(rng: np.random.RandomState, img: np.ndarray, transform: str,
                sigma: float = 50.0, sigmas: Sequence[float] = GAUSSIAN_SIGMAS) -> np.ndarray:
  """Applies one HSIR training transform with HSIR's exact draw order (bands-first layout).

  Args:
    rng: the generator HSIR would use (``np.random.seed(s)`` equals ``RandomState(s)``).
    img: ``(B, H, W)`` cube, bands first as in HSIR; it is not modified.
    transform: ``"gaussian"`` (``AddNoise(sigma)``), ``"noniid"`` (``AddNoiseNoniid(sigmas)``),
      ``"stripe"`` / ``"deadline"`` / ``"impulse"`` (one component on ``floor(B / 3)`` bands) or
      ``"complex"`` (stripe, deadline, impulse on three disjoint thirds).
    sigma: level of ``"gaussian"`` on the 0-255 scale.
    sigmas: levels of ``"noniid"`` on the 0-255 scale.

  Returns:
    The noisy ``(B, H, W)`` cube: float64 for the Gaussian transforms (HSIR adds float64 noise),
    the input dtype for the structured ones (HSIR modifies its input in place; here a copy).
  """
  if img.ndim != 3:
    raise ValueError(f"img: expected a bands-first cube (B, H, W), got shape {img.shape}")
  if transform not in HSIR_TRANSFORMS:
    raise ValueError(f"transform: expected one of {HSIR_TRANSFORMS}, got {transform!r}")
  if transform == "gaussian":
    return img + rng.randn(*img.shape) * (sigma / 255.0)
  if transform == "noniid":
    band_sigma = (np.asarray(sigmas) / 255.0)[rng.randint(0, len(sigmas), img.shape[0])]
    return img + rng.randn(*img.shape) * band_sigma[:, None, None]
  out = np.array(img)
  order = rng.permutation(out.shape[0])
  third = out.shape[0] // 3
  names = ("stripe", "deadline", "impulse") if transform == "complex" else (transform,)
  for i, name in enumerate(names):
    _REPLAY_COMPONENTS[name](rng, out, order[i * third:(i + 1) * third])
  return out
