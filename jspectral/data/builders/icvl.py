"""ICVL (Arad & Ben-Shahar, ECCV 2016): 201 natural scenes, 31 bands (400-700 nm), the denoising
benchmark of QRNN3D, HSDT and MAN (specs/hsi_denoising_data.md section 1).

Raw files are MATLAB v7.3 (HDF5) with the radiance in ``rad``; the splits are QRNN3D's lists
(Vandermode/QRNN3D ``ICVL_train.txt``, ``ICVL_test_gauss.txt``, ``ICVL_test_complex.txt``: 100 / 50
/ 51 images). Configurations:

* ``train_patches`` (split ``train``): QRNN3D's ``create_icvl64_31`` recipe: global min-max of the
  cube, 180-degree rotation, central 1024 x 1024 crop, three scales (1, 1/2, 1/4 by cubic
  ``scipy.ndimage.zoom``) cut into 64 x 64 patches with strides 64, 32, 32: 530 patches per image,
  element ``{"clean": (64, 64, 31)}``. QRNN3D bakes one random dihedral transform and a random band
  reversal into each stored patch; here the patches are stored as cut and the training pipeline
  applies that augmentation (``jspectral.data.patches.qrnn3d_augment``; ``denoise_icvl``'s
  ``augment``).
* ``test_crops`` (splits ``test_gauss``, ``test_complex``): QRNN3D's MATLAB test images,
  ``center_crop(rot90(rad), 512, 512)`` min-max normalised after the crop; noise is then added with
  ``jspectral.data.noise`` (the MATLAB RNG stream itself cannot be replayed).
* ``noisy_test`` (one split per ``icvl_512_<case>`` folder present): the authors' ready-made test
  sets (HSIR README link), ``.mat`` files with ``input``, ``gt`` (512, 512, 31) and ``sigma``
  (scalar or per band; stored as a 31-vector).
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import patches
from jspectral.data import tfds as tfds_lib

BANDS = 31
NOISY_CASES = ("30", "50", "70", "blind", "noniid", "stripe", "deadline", "impulse", "mixture")
LISTS = {"train": "ICVL_train.txt", "test_gauss": "ICVL_test_gauss.txt",
         "test_complex": "ICVL_test_complex.txt"}


def training_patches(cube: np.ndarray, crop: int = 1024, patch: int = 64,
                     strides: tuple[int, ...] = (64, 32, 32),
                     scales: tuple[float, ...] = (1.0, 0.5, 0.25)):
  """QRNN3D's ``create_icvl64_31`` patches of one raw cube.

  Args:
    cube: raw ``(H, W, C)`` radiance.
    crop: side of the central crop (after min-max and a 180-degree rotation).
    patch: patch side.
    strides: one stride per scale.
    scales: zoom factors (cubic ``scipy.ndimage.zoom``).

  Yields:
    ``(scale index, patch index, patch (patch, patch, C) float32)``.
  """
  image = tfds_lib.center_crop(np.rot90(tfds_lib.minmax(cube), 2, axes=(0, 1)), crop, crop)
  yield from patches.multiscale_patches(image, patch, strides, scales)


@dataclasses.dataclass(eq=False)
class IcvlConfig(tfds_lib.ImageSetConfig):
  """ICVL configuration; the patch recipe is QRNN3D's by default.

  Attributes:
    kind: ``"patches"``, ``"crops"`` or ``"noisy"``.
    crop_train: central crop of the training recipe.
    patch: training patch side.
    strides: one stride per scale.
    scales: zoom factors.
  """

  kind: str = "crops"
  crop_train: int = 1024
  patch: int = 64
  strides: tuple[int, ...] = (64, 32, 32)
  scales: tuple[float, ...] = (1.0, 0.5, 0.25)


class Icvl(tfds_lib.ImageSetBuilder):
  """ICVL training patches, clean test crops, or the authors' noisy test sets."""

  BUILDER_CONFIGS = [
      IcvlConfig(name="train_patches", kind="patches", files=(LISTS["train"], "*.mat"),
                 splits=(("train", LISTS["train"]),)),
      IcvlConfig(name="test_crops", kind="crops",
                 files=(LISTS["test_gauss"], LISTS["test_complex"], "*.mat"),
                 splits=(("test_gauss", LISTS["test_gauss"]),
                         ("test_complex", LISTS["test_complex"])),
                 crop=512, rot90=1, normalise_after_crop=True),
      IcvlConfig(name="noisy_test", kind="noisy", files=("icvl_512_*/*.mat",)),
  ]
  HOMEPAGE = "https://icvl.cs.bgu.ac.il/hyperspectral/"
  DESCRIPTION = "ICVL natural hyperspectral images (31 bands), QRNN3D denoising protocol."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the raw ICVL MATLAB files (e.g. gavyam_0823-0933.mat, variable `rad`) in the manual
  directory, together with QRNN3D's split lists ICVL_train.txt, ICVL_test_gauss.txt and
  ICVL_test_complex.txt (github.com/Vandermode/QRNN3D). For the `noisy_test` configuration, copy
  the authors' test folders icvl_512_30, icvl_512_50, icvl_512_70, icvl_512_blind,
  icvl_512_noniid, icvl_512_stripe, icvl_512_deadline, icvl_512_impulse, icvl_512_mixture (HSIR
  README data link) into the manual directory as they are.
  """

  def _features(self):
    config = self.builder_config
    if config.kind == "patches":
      return tfds.features.FeaturesDict({
          "clean": tfds.features.Tensor(shape=(config.patch, config.patch, BANDS),
                                        dtype=np.float32)})
    if config.kind == "noisy":
      return tfds.features.FeaturesDict({
          "name": tfds.features.Text(), "input": tfds_lib.cube_feature(BANDS),
          "gt": tfds_lib.cube_feature(BANDS),
          "sigma": tfds.features.Tensor(shape=(BANDS,), dtype=np.float32)})
    return super()._features()

  def _split_names(self):
    if self.builder_config.kind == "noisy":
      return tuple(f"icvl_512_{case}" for case in NOISY_CASES)
    return super()._split_names()

  def _split_generators(self, dl_manager):
    generators = super()._split_generators(dl_manager)
    if self.builder_config.kind == "noisy":
      manual_dir = pathlib.Path(dl_manager.manual_dir)
      generators = {k: v for k, v in generators.items() if (manual_dir / k).is_dir()}
    return generators

  def _read_image(self, manual_dir, name):
    return tfds_lib.load_mat(tfds_lib.mat_path(manual_dir, name), "rad")

  def _generate_examples(self, split, manual_dir):
    config = self.builder_config
    if config.kind == "crops":
      yield from super()._generate_examples(split, manual_dir)
    elif config.kind == "patches":
      for name in self.split_members(manual_dir, split):
        cube = self._read_image(manual_dir, name)
        if cube.ndim != 3 or cube.shape[-1] != BANDS:
          raise ValueError(f"{tfds_lib.mat_path(manual_dir, name)}: 'rad' must be "
                           f"(H, W, {BANDS}) in MATLAB order, got {cube.shape}")
        for s, i, patch in training_patches(cube, config.crop_train, config.patch,
                                            config.strides, config.scales):
          yield f"{name}/{s}/{i}", {"clean": patch}
    else:
      for path in sorted((manual_dir / split).glob("*.mat")):
        gt = np.asarray(tfds_lib.load_mat(path, "gt"), np.float32)
        noisy = np.asarray(tfds_lib.load_mat(path, "input"), np.float32)
        if gt.shape != noisy.shape or gt.ndim != 3 or gt.shape[-1] != BANDS:
          raise ValueError(f"{path}: 'input' and 'gt' must both be (H, W, {BANDS}), got "
                           f"{noisy.shape} and {gt.shape}")
        sigma = np.broadcast_to(np.ravel(tfds_lib.load_mat(path, "sigma")), (BANDS,))
        yield path.stem, {"name": path.stem, "input": noisy, "gt": gt,
                          "sigma": np.asarray(sigma, np.float32)}
