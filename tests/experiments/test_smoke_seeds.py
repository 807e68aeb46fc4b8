"""Smoke checks hold for the demo's seeds 0, 1 and 2 (issue 25: checks robust across seeds).

Only the cheapest smoke presets run here (seconds each once compiled; the seeds share one
compilation cache); ``python -m experiments demo --seeds 0,1,2`` runs every experiment.
"""

import numpy as np
import pytest

from experiments import common, runner

SEEDS = (0, 1, 2)
CHEAP = ("train_demo", "pde_reaction_diffusion")


@pytest.mark.slow  # ~30 s of CPU per experiment: one compilation, three short fits
@pytest.mark.parametrize("name", CHEAP)
def test_every_smoke_check_passes_for_seeds_0_1_2(name, tmp_path):
  runner.cache_compiled_programs(tmp_path / "jax_cache")
  failed = {}
  for seed in SEEDS:
    overrides = runner.seed_overrides(name, seed) + runner.quiet_overrides(name)
    assert overrides[0] == f"train.seed={seed}"
    report = runner.run_experiment(name, "smoke", tmp_path / f"seed{seed}", overrides)
    assert report.checks, f"{name} seed {seed}: the smoke preset has no checks"
    failed.update({(seed, check): ok for check, ok in report.checks.items() if not ok})
  assert not failed, f"{name}: checks failed for (seed, check): {sorted(failed)}"


def test_intensity_nuisance_is_a_fixed_brightness_and_contrast_change_per_image():
  rng = np.random.default_rng(0)
  images = rng.uniform(0.4, 0.6, (400, 4, 4, 3)).astype(np.float32)  # never clipped at s = 0.4
  out = common.intensity_nuisance(images, 0.4)
  # b * (c x + (1 - c) mean x): the mean scales by b, the spread about it by b * c
  brightness = out.mean(axis=(1, 2, 3)) / images.mean(axis=(1, 2, 3))
  contrast = out.std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3)) / brightness
  for factor in (brightness, contrast):
    assert factor.min() >= 0.6 - 1e-5 and factor.max() <= 1.4 + 1e-5
    assert factor.min() < 0.65 and factor.max() > 1.35  # the whole [1 - s, 1 + s] is drawn
  np.testing.assert_array_equal(out, common.intensity_nuisance(images, 0.4))
  np.testing.assert_array_equal(common.intensity_nuisance(images, 0.0), images)
  for strength in (-0.1, 1.0):
    with pytest.raises(ValueError, match=r"data.nuisance"):
      common.intensity_nuisance(images, strength)
  with pytest.raises(ValueError, match=r"images: expected \(N, H, W, 3\)"):
    common.intensity_nuisance(images[0], 0.4)
