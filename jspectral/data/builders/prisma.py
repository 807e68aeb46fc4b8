"""The PRISMA pansharpening dataset of the hyperspectral pansharpening toolbox, as a TFDS builder.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; github.com/matciotola/hyperspectral_pansharpening_toolbox
(``elaborate_PRISMA_images.py`` writes the files, ``Utils/load_save_tools.open_mat`` reads them).

On-disk layout (MATLAB v5 ``.mat`` written by ``scipy.io.savemat``; uint16 images):
``<root>/{Training,Validation,Test}/{Reduced_Resolution,Full_Resolution}/*.mat`` with keys
``I_PAN (H, W)``, ``I_MS_LR (h, w, B)``, ``I_MS (H, W, B)`` (the interpolated HS), ``I_GT``
``(H, W, B)`` (reduced resolution only), ``wavelengths (1, B)`` and ``overlap`` (number of bands
below ~700 nm; the toolbox turns it into ``arange(0, overlap)``). B = 159, ratio 6.

Written directly on ``tfds.core.GeneratorBasedBuilder`` (the shared TFDS base had not landed when
this was written). Records: ``pan (H, W, 1)``, ``hs_lr``, ``hs_up``, ``gt`` (RR; zeros of shape
``(0, 0, B)`` in FR), ``wavelengths (B,)``, ``overlap``, ``name``; images keep their uint16 values.
"""

from __future__ import annotations

import pathlib

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

BANDS = 159
RESOLUTIONS = {"rr": "Reduced_Resolution", "fr": "Full_Resolution"}
SPLITS = {"train": "Training", "validation": "Validation", "test": "Test"}


def open_mat(path) -> dict[str, np.ndarray]:
  """One toolbox ``.mat`` as bands-last arrays (float64 images, as the toolbox loader casts them).

  Returns ``pan (H, W, 1)``, ``hs_lr (h, w, B)``, ``hs_up (H, W, B)``, ``gt`` (or None),
  ``wavelengths (B,)`` float32 and ``overlap`` = ``arange(0, overlap)``.
  """
  data = scipy.io.loadmat(path)
  for key in ("I_PAN", "I_MS_LR", "I_MS", "wavelengths", "overlap"):
    if key not in data:
      raise ValueError(f"path: {path} has no key {key!r} (expected the toolbox's PRISMA layout)")
  pan = data["I_PAN"].astype(np.float64)
  if pan.ndim != 2:
    raise ValueError(f"path: I_PAN must be (H, W), got {pan.shape}")
  return {"pan": pan[..., None], "hs_lr": data["I_MS_LR"].astype(np.float64),
          "hs_up": data["I_MS"].astype(np.float64),
          "gt": data["I_GT"].astype(np.float64) if "I_GT" in data else None,
          "wavelengths": np.squeeze(data["wavelengths"]).astype(np.float32),
          "overlap": np.arange(0, int(np.squeeze(data["overlap"])))}


class PrismaConfig(tfds.core.BuilderConfig):
  def __init__(self, *, resolution: str, **kwargs):
    super().__init__(**kwargs)
    self.resolution = resolution


class Prisma(tfds.core.GeneratorBasedBuilder):
  """PRISMA RR / FR pansharpening scenes of the toolbox (manual download)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [PrismaConfig(name=k, resolution=k, description=v)
                     for k, v in RESOLUTIONS.items()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Request the PRISMA L2D products listed in the toolbox's Dataset/list_images.csv from the "
      "ASI portal (prisma.asi.it), run the toolbox's elaborate_PRISMA_images.py, and point "
      "manual_dir at its output folder (the one holding Training/, Validation/, Test/).")

  def _info(self) -> tfds.core.DatasetInfo:
    image = lambda channels: tfds.features.Tensor(shape=(None, None, channels), dtype=np.uint16,
                                                  encoding="zlib")
    return tfds.core.DatasetInfo(
        builder=self,
        description="PRISMA hyperspectral pansharpening scenes (toolbox layout), ratio 6.",
        features=tfds.features.FeaturesDict({
            "pan": image(1), "hs_lr": image(BANDS), "hs_up": image(BANDS), "gt": image(BANDS),
            "wavelengths": tfds.features.Tensor(shape=(BANDS,), dtype=np.float32),
            "overlap": np.int32, "name": tfds.features.Text()}),
        homepage="https://github.com/matciotola/hyperspectral_pansharpening_toolbox")

  def _split_generators(self, dl_manager):
    root = pathlib.Path(dl_manager.manual_dir)
    sub = RESOLUTIONS[self.builder_config.resolution]
    return {split: self._generate_examples(root / folder / sub)
            for split, folder in SPLITS.items() if (root / folder / sub).is_dir()}

  def _generate_examples(self, folder: pathlib.Path):
    for path in sorted(folder.glob("*.mat")):
      scene = open_mat(path)
      gt = scene["gt"] if scene["gt"] is not None else np.zeros((0, 0, BANDS))
      yield path.stem, {
          "pan": scene["pan"].astype(np.uint16), "hs_lr": scene["hs_lr"].astype(np.uint16),
          "hs_up": scene["hs_up"].astype(np.uint16), "gt": gt.astype(np.uint16),
          "wavelengths": scene["wavelengths"], "overlap": np.int32(len(scene["overlap"])),
          "name": path.stem}


def make_builder(resolution: str, data_dir=None) -> Prisma:
  """The builder for ``"rr"`` / ``"fr"`` writing array_record files (read back without TF)."""
  if resolution.lower() not in RESOLUTIONS:
    raise ValueError(f"resolution: expected 'rr' or 'fr', got {resolution!r}")
  return Prisma(config=resolution.lower(), data_dir=data_dir, file_format="array_record")


def load_test_scene(resolution: str, index: int = 0, data_dir=None) -> dict[str, np.ndarray]:
  """Test scene ``index`` of the prepared builder as float64 arrays (``gt`` only for RR)."""
  builder = make_builder(resolution, data_dir)
  source = builder.as_data_source("test")
  names = sorted((str(source[i]["name"]), i) for i in range(len(source)))
  record = source[names[index][1]]
  scene = {k: np.asarray(record[k], np.float64) for k in ("pan", "hs_lr", "hs_up", "gt")}
  if scene["gt"].size == 0:
    scene.pop("gt")
  return scene
