"""denoise_icvl's data path: QRNN3D's patch augmentation, official validation restarts, and test
sets read from the authors' folders or built from the raw images."""

from __future__ import annotations

import collections

import jax
import numpy as np
import pytest
import scipy.io

from experiments.configs import denoise_icvl
from jspectral.data import noise, patches
from jspectral.denoising import man
from jspectral.denoising.tasks import DenoisingTask
from tests.data.real_format import write_v73


def _qrnn3d_modes(x):
  """QRNN3D ``data_augmentation``'s 8 spatial modes, restated on a bands-last cube: identity,
  flip rows, then 1, 2, 3 quarter turns each without and with a row flip afterwards."""
  flip = lambda v: v[::-1]
  rot = lambda v, k: np.rot90(v, k, axes=(0, 1))
  return [x, flip(x), rot(x, 1), flip(rot(x, 1)), rot(x, 2), flip(rot(x, 2)), rot(x, 3),
          flip(rot(x, 3))]


def test_qrnn3d_augmentation_is_the_dihedral_group_times_band_reversal_uniformly():
  x = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
  official = {v.tobytes() for m in _qrnn3d_modes(x) for v in (m, m[..., ::-1])}
  assert len(official) == 16
  rng = np.random.default_rng(0)
  draws = collections.Counter(
      patches.qrnn3d_augment({"clean": x}, rng)["clean"].tobytes() for _ in range(1600))
  assert set(draws) == official
  assert all(60 <= n <= 140 for n in draws.values()), draws      # 100 expected each


def test_fixed_augmentation_is_one_draw_per_patch_fresh_redraws():
  cubes = np.random.default_rng(1).uniform(size=(6, 4, 4, 3)).astype(np.float32)
  model = man.MAN(channels=2, num_half_layer=1, sample_idx=())
  fixed = DenoisingTask(model, cubes, lambda k, x: x, augmentation="fixed", augmentation_seed=3)
  source = fixed.train_source().repeat()
  outputs = [source[i]["clean"] for i in range(12)]
  for i in range(6):        # the same transform of patch i in every epoch
    np.testing.assert_array_equal(outputs[i], outputs[i + 6])
    assert any(np.array_equal(outputs[i], v) for v in _qrnn3d_modes(cubes[i]) + [
        m[..., ::-1] for m in _qrnn3d_modes(cubes[i])])
  assert not all(np.array_equal(outputs[i], cubes[i]) for i in range(6))
  assert fixed.augment is None
  fresh = DenoisingTask(model, cubes, lambda k, x: x, augmentation="fresh")
  assert fresh.augment is patches.qrnn3d_augment
  assert isinstance(fresh.train_source(), list)
  with pytest.raises(ValueError, match="augmentation"):
    DenoisingTask(model, cubes, lambda k, x: x, augmentation="flip")


def test_selection_restarts_follow_each_official_script():
  phases = [tuple(p) for p in denoise_icvl.get_config("paper").phases["hsdt"]]
  # HSDT train/train.py: the sigma=50 stage's last validation (step 30 E) competes with the blind
  # stage; the complex stage (a new process) starts afresh after its first epoch's update.
  assert denoise_icvl.restart_steps(phases, 10, stage_end_competes=True) == [300, 801]
  assert denoise_icvl.restart_steps(phases, 10, stage_end_competes=False) == [301, 801]


def _icvl_manual(tmp_path, size=12):
  manual = tmp_path / "icvl"
  manual.mkdir()
  rng = np.random.default_rng(2)
  for name in ("b_scene", "a_scene"):
    write_v73(manual / f"{name}.mat", rad=rng.uniform(0, 4000, size=(size, size, 31)))
  (manual / "ICVL_train.txt").write_text("a_scene.mat\n")
  (manual / "ICVL_test_gauss.txt").write_text("b_scene.mat\na_scene.mat\n")
  (manual / "ICVL_test_complex.txt").write_text("b_scene\n")
  return manual


def test_test_sets_read_the_authors_folders_or_are_built_from_the_raw_images(tmp_path,
                                                                             monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  manual = _icvl_manual(tmp_path)
  config = denoise_icvl.get_config("paper")
  config.data.update(manual_dir=str(manual), data_dir=str(tmp_path / "tfds"), train_crop=8,
                     test_crop=8, patch_strides=(8, 4, 4))
  config.patch = 8
  _, built = denoise_icvl._real(config, ["50", "mixture"])
  assert built["50"].names == ("a_scene", "b_scene") and "built from the test_gauss" in (
      built["50"].origin)
  noisy, clean = built["50"].load(0)
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), noise.TEST_CASES.index("50")), 0)
  np.testing.assert_allclose(noisy, noise.noisy_test_example(key, clean, "50")["input"], atol=1e-6)
  assert clean.shape == (8, 8, 31) and clean.min() == 0.0 and clean.max() == 1.0
  np.testing.assert_array_equal(built["50"].load(0)[0], noisy)           # fixed per file
  assert built["mixture"].names == ("b_scene",)
  # The authors' folder, when present, is read as it is (in file-name order).
  folder = manual / "icvl_512_50"
  folder.mkdir()
  gt = np.random.default_rng(3).uniform(size=(8, 8, 31))
  for name, offset in (("z_file", 0.5), ("y_file", 0.25)):
    scipy.io.savemat(folder / f"{name}.mat", {"input": gt + offset, "gt": gt, "sigma": 50.0})
  _, sets = denoise_icvl._real(config, ["50", "mixture"])
  assert sets["50"].names == ("y_file", "z_file") and "authors' folder" in sets["50"].origin
  noisy, clean = sets["50"].load(0)
  np.testing.assert_allclose(noisy - clean, 0.25, atol=1e-6)
  assert "built" in sets["mixture"].origin                    # no icvl_512_mixture folder
