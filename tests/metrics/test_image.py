"""Image indices against scikit-image / NumPy references, closed forms and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jspectral.metrics import image


@pytest.fixture(scope="module")
def pair():
  rng = np.random.default_rng(0)
  target = rng.uniform(0.05, 1.0, (2, 24, 20, 5)).astype(np.float32)
  pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np.float32)
  return pred, target


def test_psnr_is_mean_of_per_band_skimage_psnr(pair):
  pred, target = pair
  expected = [np.mean([peak_signal_noise_ratio(t[..., b].astype(np.float64), p[..., b],
                                               data_range=1.0) for b in range(5)])
              for p, t in zip(pred, target, strict=True)]
  assert_allclose(jax.jit(image.psnr)(pred, target), expected, rtol=1e-5)


def test_psnr_whole_cube_and_identity(pair):
  pred, target = pair
  mse = np.mean((pred[0] - target[0]) ** 2)
  assert_allclose(image.psnr(pred[0], target[0], per_band=False), 10 * np.log10(1 / mse), rtol=1e-5)
  assert np.isinf(image.psnr(target, target)).all()


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_ssim_gaussian_matches_skimage(pair, data_range):
  pred, target = pair
  expected = np.mean([structural_similarity(
      target[0, ..., b], pred[0, ..., b], gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=data_range) for b in range(5)])
  assert_allclose(image.ssim(pred[0], target[0], data_range=data_range), expected, atol=1e-5)


def test_ssim_uniform_window_matches_skimage_defaults(pair):
  pred, target = pair
  expected = [np.mean([structural_similarity(t[..., b], p[..., b], data_range=2.0)
                       for b in range(5)]) for p, t in zip(pred, target, strict=True)]
  got = jax.jit(lambda p, t: image.ssim(p, t, data_range=2.0, window="uniform"))(pred, target)
  assert_allclose(got, expected, atol=1e-5)


def test_ssim_of_identical_images_is_one_and_decreases_with_noise(pair):
  _, target = pair
  assert_allclose(image.ssim(target, target), 1.0, atol=1e-6)
  noisy = target + 0.2 * np.random.default_rng(1).normal(size=target.shape).astype(np.float32)
  assert (image.ssim(noisy, target) < image.ssim(target + 0.5 * (noisy - target), target)).all()


def sam_numpy(pred, target):
  dot = (pred * target).sum(-1)
  norms = np.linalg.norm(pred, axis=-1) * np.linalg.norm(target, axis=-1)
  valid = norms > 0
  return np.degrees(np.arccos(np.clip(dot[valid] / norms[valid], -1, 1)).mean())


def test_sam_matches_numpy_and_handles_zero_pixels(pair):
  pred, target = (np.array(a[0], np.float64) for a in pair)
  pred[0, :3] = 0.0
  with jax.enable_x64(True):
    assert_allclose(image.sam(pred, target), sam_numpy(pred, target), rtol=1e-10)


def test_sam_closed_forms():
  spectra = np.random.default_rng(2).uniform(0.1, 1, (1, 4, 6)).astype(np.float32)
  assert_allclose(image.sam(3.0 * spectra, spectra), 0.0, atol=2e-2)  # scaling keeps the angle
  a = np.zeros((1, 1, 2), np.float32)
  a[..., 0] = 1.0
  b = np.zeros((1, 1, 2), np.float32)
  b[..., 0], b[..., 1] = np.cos(0.3), np.sin(0.3)  # spectra rotated by 0.3 rad
  assert_allclose(image.sam(b, a, degrees=False), 0.3, rtol=1e-5)
  assert_allclose(image.sam(b, a), np.degrees(0.3), rtol=1e-5)


def test_sam_hsir_epsilon_formula(pair):
  pred, target = (a[0] for a in pair)
  dot, n_p, n_t = (pred * target).sum(-1), np.linalg.norm(pred, axis=-1), np.linalg.norm(
      target, axis=-1)
  expected = np.arccos(np.clip((dot + 1e-8) / (n_p + 1e-8) / (n_t + 1e-8), -1, 1)).mean()
  assert_allclose(image.sam(pred, target, degrees=False, eps=1e-8), expected, rtol=1e-6)


def test_ergas_rmse_cc_against_numpy(pair):
  pred, target = (a[0].astype(np.float64) for a in pair)
  mse_b = ((pred - target) ** 2).mean((0, 1))
  ergas = 100 / 4 * np.sqrt(np.mean(mse_b / target.mean((0, 1)) ** 2))
  cc = np.mean([np.corrcoef(pred[..., b].ravel(), target[..., b].ravel())[0, 1] for b in range(5)])
  with jax.enable_x64(True):
    assert_allclose(image.ergas(pred, target, ratio=4), ergas, rtol=1e-10)
    assert_allclose(image.rmse(pred, target), np.sqrt(((pred - target) ** 2).mean()), rtol=1e-10)
    assert_allclose(image.cc(pred, target), cc, rtol=1e-10)


def test_perfect_estimate_closed_forms(pair):
  _, target = pair
  assert_allclose(image.ergas(target, target, ratio=4), 0.0, atol=1e-7)
  assert_allclose(image.rmse(target, target), 0.0, atol=1e-7)
  assert_allclose(image.cc(target, target), 1.0, atol=1e-5)
  assert_allclose(image.cc(2 * target + 1, target), 1.0, atol=1e-5)  # affine invariance


def test_metrics_vmap_and_grad(pair):
  pred, target = pair
  assert_allclose(jax.vmap(image.psnr)(pred, target), image.psnr(pred, target), rtol=1e-6)
  grad = jax.grad(lambda p: image.ssim(p, target[0]))(pred[0])
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


@pytest.mark.parametrize("fn", [image.psnr, image.ssim, image.sam, image.rmse, image.cc,
                                lambda p, t: image.ergas(p, t, 4)])
def test_bad_input_names_the_argument(fn):
  x = jnp.ones((8, 8, 3))
  with pytest.raises(ValueError, match="pred"):
    fn(jnp.ones((8, 3)), x)
  with pytest.raises(ValueError, match="band"):
    fn(x, jnp.ones((8, 8, 4)))
  with pytest.raises(ValueError, match="shapes differ"):
    fn(x, jnp.ones((8, 9, 3)))


def test_bad_options():
  x = jnp.ones((12, 12, 2))
  with pytest.raises(ValueError, match="window"):
    image.ssim(x, x, window="box")
  with pytest.raises(ValueError, match="ratio"):
    image.ergas(x, x, ratio=0)
  with pytest.raises(ValueError, match="window"):
    image.ssim(jnp.ones((5, 5, 2)), jnp.ones((5, 5, 2)))
