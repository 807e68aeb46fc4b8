"""Noise models: bit-exact replay of the official HSIR transforms, laws of the JAX versions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.data import noise
from tests.conftest import load_pack

SIGMAS = np.array(noise.GAUSSIAN_SIGMAS) / 255.0


@pytest.fixture(scope="module")
def pack():
  return load_pack("denoising_parity")


def _clean(height, width, bands, seed=0):
  """Values strictly inside (0.2, 0.8), so impulse, deadline and stripe changes are detectable."""
  return jnp.asarray(np.random.default_rng(seed).uniform(0.2, 0.8, (height, width, bands)),
                     jnp.float32)


def _replay(pack, case):
  seed = pack.config("noise")["seeds"][case]
  rng = np.random.RandomState(seed)
  clean = pack["noise/clean"]
  if case == "gauss70":
    return noise.hsir_replay(rng, clean, "gaussian", sigma=70)
  out = noise.hsir_replay(rng, clean, "noniid")
  extra = {"noniid": None, "noniid+stripe": "stripe", "noniid+complex": "complex"}[case]
  return out if extra is None else noise.hsir_replay(rng, out, extra)


@pytest.mark.parametrize("case", ["gauss70", "noniid", "noniid+stripe", "noniid+complex"])
def test_noise_parity_replay_is_bit_exact(pack, case):
  """Parity pack "denoising_parity", case "noise": the NumPy replay equals the official outputs."""
  expected = pack[f"noise/{case}"]
  got = _replay(pack, case)
  assert got.dtype == expected.dtype
  np.testing.assert_array_equal(got, expected)


def _stripe_columns(diff_bhw):
  """Per band (bands first), the number of columns shifted by a non-zero row-constant."""
  constant = np.ptp(diff_bhw, axis=1) < 1e-6
  return (constant & (np.abs(diff_bhw[:, 0]) > 1e-6)).sum(axis=1)


def test_noise_parity_official_laws_match_jax_laws(pack):
  """Case "noise": the official stripe counts lie in the range the JAX training law draws from."""
  clean = pack["noise/clean"].astype(np.float64)
  width = clean.shape[2]
  low, high = noise._count_range("stripe", "train", width, 0.05, 0.15)
  rng = np.random.RandomState(pack.config("noise")["seeds"]["noniid+stripe"])
  stripe_diff = pack["noise/noniid+stripe"] - noise.hsir_replay(rng, pack["noise/clean"], "noniid")
  counts = _stripe_columns(stripe_diff)
  touched = counts > 0
  assert touched.sum() == clean.shape[0] // 3
  assert counts[touched].min() >= low and counts[touched].max() <= high
  clean32 = jnp.asarray(clean.transpose(1, 2, 0), jnp.float32)
  jax_out = np.asarray(noise.stripes(jax.random.key(0), clean32))
  jax_counts = _stripe_columns((jax_out - np.asarray(clean32)).transpose(2, 0, 1))
  assert (jax_counts > 0).sum() == clean.shape[0] // 3
  assert jax_counts[jax_counts > 0].min() >= low and jax_counts.max() <= high
  # the official per-band noise levels come from the same set as noniid_gaussian's
  band_std = (pack["noise/noniid"] - clean).std(axis=(1, 2))
  nearest = np.abs(band_std[:, None] - SIGMAS[None]).min(axis=1)
  assert np.all(nearest < 0.15 * band_std)


def test_gaussian_std_within_two_percent_and_vmaps():
  # threefry: rbg (the suite's default, tests/conftest.py) draws differently under vmap
  keys = jax.random.split(jax.random.key(1, impl="threefry2x32"), 3)
  clean = jnp.zeros((32, 32, 31))
  batched = jax.vmap(noise.gaussian, in_axes=(0, None, None))(keys, clean, 50.0)
  batched = np.asarray(batched)
  np.testing.assert_allclose(batched.std(axis=(1, 2, 3)) * 255 / 50, 1.0, atol=0.02)
  assert np.abs(batched.mean(axis=(1, 2, 3))).max() < 0.01
  np.testing.assert_allclose(batched[1], noise.gaussian(keys[1], clean, 50.0), atol=1e-6)


def test_blind_sigma_uniform_in_range():
  keys = jax.random.split(jax.random.key(3), 64)
  out = jax.vmap(noise.blind_gaussian, in_axes=(0, None))(keys, jnp.zeros((32, 32, 31)))
  sigma = np.asarray(out).std(axis=(1, 2, 3)) * 255
  assert sigma.min() > 10 * 0.95 and sigma.max() < 70 * 1.05
  assert sigma.min() < 20 and sigma.max() > 60        # spread over the whole range


def test_cyclic_sigma_cycles():
  np.testing.assert_array_equal(noise.cyclic_sigma(jnp.arange(6)), [10, 30, 50, 70, 10, 30])


def test_noniid_band_sigmas_from_the_set():
  out = noise.noniid_gaussian(jax.random.key(4), jnp.zeros((64, 64, 31)))
  band_std = np.asarray(out).std(axis=(0, 1))
  nearest = SIGMAS[np.abs(band_std[:, None] - SIGMAS[None]).argmin(axis=1)]
  np.testing.assert_allclose(band_std, nearest, rtol=0.06)
  assert len(set(nearest.tolist())) >= 3


@pytest.mark.parametrize("width,protocol,expected", [
    (64, "train", {"stripe": (3, 8), "deadline": (4, 9)}),
    (44, "train", {"stripe": (2, 5), "deadline": (3, 6)}),
    (512, "test", {"stripe": (26, 77), "deadline": (26, 77)}),
    (64, "test", {"stripe": (4, 10), "deadline": (4, 10)}),
])
def test_count_laws(width, protocol, expected):
  for kind, count_range in expected.items():
    assert noise._count_range(kind, protocol, width, 0.05, 0.15) == count_range


def _classify_bands(clean, out):
  """Per band: 'stripe', 'deadline', 'impulse' or 'clean' (Gaussian switched off)."""
  clean, out = np.asarray(clean), np.asarray(out)
  kinds = []
  for b in range(clean.shape[-1]):
    diff = out[..., b] - clean[..., b]
    if not np.any(diff):
      kinds.append("clean")
    elif np.any((out[..., b] == 0).all(axis=0)):
      kinds.append("deadline")
    elif np.all(np.ptp(diff, axis=0) < 1e-6):
      kinds.append("stripe")
    else:
      kinds.append("impulse")
  return kinds


@pytest.fixture(scope="module", params=["train", "test"])
def mixtures(request):
  """24 mixture samples (Gaussian off) of one (16, 64, 31) cube under one protocol."""
  clean = _clean(16, 64, 31)
  keys = jax.random.split(jax.random.key(5), 24)
  outs = [noise.complex_noise(k, clean, "mixture", request.param, sigmas=(0.0,)) for k in keys]
  return request.param, np.asarray(clean), np.stack(outs)


def test_mixture_touches_disjoint_thirds(mixtures):
  _, clean, outs = mixtures
  for out in outs:
    kinds = _classify_bands(clean, out)
    assert [kinds.count(k) for k in ("stripe", "deadline", "impulse", "clean")] == [10, 10, 10, 1]


def test_mixture_stripe_and_deadline_laws(mixtures):
  protocol, clean, outs = mixtures
  diff = (outs - clean).transpose(0, 3, 1, 2)                          # (N, C, H, W)
  counts = np.stack([_stripe_columns(d) for d in diff])
  low, high = noise._count_range("stripe", protocol, 64, 0.05, 0.15)
  assert counts[counts > 0].min() == low and counts.max() == high
  shifted = np.abs(diff[:, :, 0]) > 1e-6
  shifted &= (np.ptp(diff, axis=2) < 1e-6) & (counts[..., None] > 0)
  shifts = -diff[:, :, 0][shifted]
  assert shifts.min() >= -0.25 and shifts.max() < 0.25 and np.ptp(shifts) > 0.45
  dead = (outs == 0).all(axis=1).sum(axis=1)                            # (N, C)
  low, high = noise._count_range("deadline", protocol, 64, 0.05, 0.15)
  assert dead[dead > 0].min() == low and dead.max() == high
  zero_rows = (outs == 0).sum(axis=1).transpose(0, 2, 1)[dead > 0]      # (dead bands, W)
  assert np.all((zero_rows == 0) | (zero_rows == outs.shape[1]))         # whole columns only


def test_mixture_impulse_law(mixtures):
  _, clean, outs = mixtures
  hit = outs != clean
  per_band = hit.mean(axis=(1, 2))                                      # (N, C)
  impulse_bands = ~(outs == 0).all(axis=1).any(axis=1) & (np.ptp(outs - clean, axis=1) > 1e-6).any(
      axis=1)
  assert set(np.unique(outs[hit & impulse_bands[:, None, None]]).tolist()) == {0.0, 1.0}
  amounts = np.array(noise.IMPULSE_AMOUNTS)
  fractions = per_band[impulse_bands]
  nearest = amounts[np.abs(fractions[:, None] - amounts).argmin(axis=1)]
  np.testing.assert_allclose(fractions, nearest, atol=0.05)
  assert len(set(nearest.tolist())) == 4
  salt = outs[hit & impulse_bands[:, None, None]] == 1
  assert abs(salt.mean() - 0.5) < 0.02


@pytest.mark.parametrize("name", ["stripes", "deadlines", "impulse"])
def test_single_components_touch_a_third(name):
  clean = _clean(8, 40, 31)
  out = getattr(noise, name)(jax.random.key(7), clean)
  kind = {"stripes": "stripe", "deadlines": "deadline", "impulse": "impulse"}[name]
  kinds = _classify_bands(clean, out)
  assert kinds.count(kind) == 10 and kinds.count("clean") == 21


def test_complex_single_component_case():
  clean = _clean(8, 40, 31)
  kinds = _classify_bands(clean, noise.complex_noise(jax.random.key(7), clean, "deadline",
                                                     sigmas=(0.0,)))
  assert kinds.count("deadline") == 10 and kinds.count("clean") == 21


def test_complex_noise_adds_noniid_gaussian():
  clean = _clean(64, 64, 31)
  key = jax.random.key(8)
  out = noise.complex_noise(key, clean, "noniid")
  np.testing.assert_array_equal(out, noise.noniid_gaussian(jax.random.split(key, 3)[0], clean))


@pytest.mark.parametrize("case", ["50", "blind", "noniid"])
def test_noisy_test_example_reports_its_sigma(case):
  gt = jnp.zeros((32, 32, 31))
  example = noise.noisy_test_example(jax.random.key(10), gt, case)
  band_std = np.asarray(example["input"]).std(axis=(0, 1)) * 255
  np.testing.assert_allclose(band_std, example["sigma"], rtol=0.08)
  if case == "blind":
    np.testing.assert_array_equal(example["input"], noise.blind_gaussian(jax.random.key(10), gt))


def test_complex_training_noise_cycles():
  clean = _clean(4, 64, 31)
  key = jax.random.key(9)
  outs = [noise.complex_training_noise(key, clean, index) for index in range(4)]
  base = noise.noniid_gaussian(jax.random.split(key)[0], clean)
  np.testing.assert_array_equal(outs[0], base)
  assert np.any(np.asarray(outs[1]) == 1.0)                               # impulse salt
  assert np.any((np.asarray(outs[3]) == 0).all(axis=0))                   # dead columns
  assert not np.any(np.asarray(outs[2]) == 1.0) and np.any(outs[2] != base)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="clean"):
    noise.gaussian(jax.random.key(0), jnp.zeros((2, 4, 4, 3)), 30)
  with pytest.raises(ValueError, match="case"):
    noise.complex_noise(jax.random.key(0), jnp.zeros((4, 4, 3)), "gauss")
  with pytest.raises(ValueError, match="protocol"):
    noise.stripes(jax.random.key(0), jnp.zeros((4, 4, 3)), protocol="qrnn")
  with pytest.raises(ValueError, match="width 6"):
    noise.stripes(jax.random.key(0), jnp.zeros((4, 6, 3)))
  with pytest.raises(ValueError, match="num_bands"):
    noise.deadlines(jax.random.key(0), jnp.zeros((4, 4, 3)), num_bands=5)
  with pytest.raises(ValueError, match="sigma_range"):
    noise.blind_gaussian(jax.random.key(0), jnp.zeros((4, 4, 3)), (50, 10))
  with pytest.raises(ValueError, match="case"):
    noise.noisy_test_example(jax.random.key(0), jnp.zeros((4, 4, 3)), "90")
  with pytest.raises(ValueError, match="transform"):
    noise.hsir_replay(np.random.RandomState(0), np.zeros((3, 4, 4)), "blind")
