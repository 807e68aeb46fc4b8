"""RGB rendering, figures and the dataset stand-ins."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jspectral.data import figures, patches, rgb, synthetic


def test_cie_curves_peak_where_they_should():
  lam = np.arange(380.0, 781.0)
  xyz = rgb.cie_xyz(lam)
  assert abs(lam[xyz[:, 1].argmax()] - 555) < 10              # photopic peak
  assert abs(lam[xyz[:, 2].argmax()] - 445) < 10
  assert abs(lam[xyz[:, 0].argmax()] - 600) < 10


def test_render_rgb_white_and_monochromatic():
  flat = jnp.ones((2, 3, 31))
  np.testing.assert_allclose(rgb.render_rgb(flat), 1.0, atol=1e-5)
  wavelengths = rgb.default_wavelengths(31)
  red = jnp.zeros((1, 1, 31)).at[..., np.argmin(abs(wavelengths - 650))].set(1.0)
  blue = jnp.zeros((1, 1, 31)).at[..., np.argmin(abs(wavelengths - 450))].set(1.0)
  r, b = np.asarray(rgb.render_rgb(red))[0, 0], np.asarray(rgb.render_rgb(blue))[0, 0]
  assert r.argmax() == 0 and b.argmax() == 2


def test_render_rgb_custom_response_is_linear_projection():
  cube = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 4, 4, 8)), jnp.float32)
  response = np.random.default_rng(1).uniform(size=(8, 3))
  np.testing.assert_allclose(rgb.render_rgb(cube, response=response), np.asarray(cube) @ response,
                             rtol=1e-5)
  with pytest.raises(ValueError, match="response"):
    rgb.render_rgb(cube, response=response[:7])
  with pytest.raises(ValueError, match="wavelengths"):
    rgb.render_rgb(cube, wavelengths=np.arange(5))


def test_false_colour_stretches_to_unit_range():
  cube = np.random.default_rng(2).uniform(10, 20, size=(16, 16, 31))
  image = figures.false_colour(cube)
  assert image.shape == (16, 16, 3) and image.min() == 0 and image.max() == 1
  np.testing.assert_allclose(figures.false_colour(cube * 3 + 1), image, atol=1e-6)
  with pytest.raises(ValueError, match="bands"):
    figures.false_colour(cube, bands=(0, 1, 31))


def test_save_spectra_panel_writes_png(tmp_path):
  cube = np.asarray(synthetic.icvl_like(jax.random.key(0), 16, 12))
  path = figures.save_spectra_panel(tmp_path / "spectra.png", cube, [(2, 3), (10, 11)],
                                    wavelengths=rgb.default_wavelengths(31),
                                    overlays={"noisy": cube + 0.01})
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 500
  with pytest.raises(ValueError, match="pixels"):
    figures.save_spectra_panel(tmp_path / "x.png", cube, [(16, 0)])


@pytest.mark.parametrize("make,bands,normalised", [
    (synthetic.icvl_like, 31, "minmax"), (synthetic.chikusei_like, 128, "max"),
    (synthetic.pavia_like, 102, "max")])
def test_stand_ins_band_counts_and_ranges(make, bands, normalised):
  cube = np.asarray(make(jax.random.key(1), 16, 12))
  assert cube.shape == (16, 12, bands) and cube.dtype == np.float32
  assert cube.max() == pytest.approx(1.0) and cube.min() >= 0
  if normalised == "minmax":
    assert cube.min() == 0
  spectral_corr = np.corrcoef(cube[..., :-1].ravel(), cube[..., 1:].ravel())[0, 1]
  assert spectral_corr > 0.9                                    # smooth spectra, not white noise


def test_urban_like_is_noisy():
  cube = np.asarray(synthetic.urban_like(jax.random.key(2), 16, 16))
  assert cube.shape == (16, 16, 162)
  assert np.any(cube == 0) and np.any(cube == 1) and (cube < 0).any()


def test_classification_scene_is_learnable_and_splittable():
  cube, labels = synthetic.classification_scene(jax.random.key(3), 30, 24, 40, num_classes=6)
  cube, labels = np.asarray(cube), np.asarray(labels)
  assert cube.shape == (30, 24, 40) and labels.shape == (30, 24)
  counts = np.bincount(labels.ravel(), minlength=7)
  assert counts[0] > 0 and np.all(counts[1:] >= 10)
  train, test = patches.stratified_split(labels, seed=345, train_fraction=0.1)
  # nearest class-mean classifier on raw spectra beats chance by far
  means = np.stack([cube[labels == c].mean(axis=0) for c in range(1, 7)])
  pred = np.linalg.norm(cube[test[:, 0], test[:, 1]][:, None] - means, axis=-1).argmin(1) + 1
  assert (pred == labels[test[:, 0], test[:, 1]]).mean() > 0.8
  assert len(train) >= 6
