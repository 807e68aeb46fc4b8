"""The PRISMA pansharpening dataset of the hyperspectral pansharpening toolbox, as a TFDS builder.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; github.com/matciotola/hyperspectral_pansharpening_toolbox
(``elaborate_PRISMA_images.py`` writes the files, ``Utils/load_save_tools.open_mat`` reads them).

On-disk layout (MATLAB v5 ``.mat`` written by ``scipy.io.savemat``; uint16 images):
``<root>/{Training,Validation,Test}/{Reduced_Resolution,Full_Resolution}/*.mat`` with keys
``I_PAN (H, W)``, ``I_MS_LR (h, w, B)``, ``I_MS (H, W, B)`` (the interpolated HS), ``I_GT``
``(H, W, B)`` (reduced resolution only), ``wavelengths (1, B)`` and ``overlap`` (number of bands
below ~700 nm; the toolbox turns it into ``arange(0, overlap)``). B = 159, ratio 6.

A :class:`jspectral.data.tfds.ManualBuilder` (listed in the data catalog): configs ``rr`` / ``fr``
need ``{Training,Validation,Test}/<Resolution>/*.mat`` in the manual directory. Records:
``pan (H, W, 1)``, ``hs_lr``, ``hs_up``, ``gt`` (RR; zeros of shape ``(0, 0, B)`` in FR),
``wavelengths (B,)``, ``overlap``, ``name``; images keep their uint16 values.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from jspectral.data import tfds as tfds_lib

BANDS = 159
RESOLUTIONS = {"rr": "Reduced_Resolution", "fr": "Full_Resolution"}
SPLITS = {"train": "Training", "validation": "Validation", "test": "Test"}
KEYS = ("I_PAN", "I_MS_LR", "I_MS", "wavelengths", "overlap")


def open_mat(path) -> dict[str, np.ndarray]:
  """One toolbox ``.mat`` as bands-last arrays (float64 images, as the toolbox loader casts them).

  A missing key raises a ``ValueError`` naming the file and the key
  (``jspectral.data.tfds.load_mat``).

  Args:
    path: the ``.mat`` file.

  Returns:
    ``pan (H, W, 1)``, ``hs_lr (h, w, B)``, ``hs_up (H, W, B)``, ``gt`` (or None),
    ``wavelengths (B,)`` float32 and ``overlap`` = ``arange(0, overlap)``.
  """
  data = {k: tfds_lib.load_mat(path, k) for k in KEYS}
  try:
    gt = tfds_lib.load_mat(path, "I_GT").astype(np.float64)
  except ValueError:
    gt = None
  pan = data["I_PAN"].astype(np.float64)
  if pan.ndim != 2:
    raise ValueError(f"path: I_PAN of {path} must be (H, W), got {pan.shape}")
  return {"pan": pan[..., None], "hs_lr": data["I_MS_LR"].astype(np.float64),
          "hs_up": data["I_MS"].astype(np.float64), "gt": gt,
          "wavelengths": np.squeeze(data["wavelengths"]).astype(np.float32),
          "overlap": np.arange(0, int(np.squeeze(data["overlap"])))}


@dataclasses.dataclass(eq=False)
class PrismaConfig(tfds_lib.ManualConfig):
  """One protocol of the toolbox dataset.

  Attributes:
    resolution: ``"rr"`` (reduced resolution, with GT) or ``"fr"`` (full resolution).
  """

  resolution: str = "rr"


class Prisma(tfds_lib.ManualBuilder):
  """PRISMA RR / FR pansharpening scenes of the toolbox (manual download)."""

  BUILDER_CONFIGS = [
      PrismaConfig(name=k, resolution=k, description=f"{v} scenes",
                   files=tuple(f"{folder}/{v}/*.mat" for folder in SPLITS.values()))
      for k, v in RESOLUTIONS.items()]
  HOMEPAGE = "https://github.com/matciotola/hyperspectral_pansharpening_toolbox"
  DESCRIPTION = "PRISMA hyperspectral pansharpening scenes (toolbox layout), ratio 6."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request the PRISMA L2D products listed in the toolbox's Dataset/list_images.csv from the ASI
  portal (prisma.asi.it), run the toolbox's elaborate_PRISMA_images.py, and copy its output
  folders Training/, Validation/ and Test/ (each with Reduced_Resolution/ and Full_Resolution/
  holding the .mat files) into the manual directory.
  """

  def _features(self):
    image = lambda channels: tfds_lib.cube_feature(channels, np.uint16)
    return tfds.features.FeaturesDict({
        "pan": image(1), "hs_lr": image(BANDS), "hs_up": image(BANDS), "gt": image(BANDS),
        "wavelengths": tfds.features.Tensor(shape=(BANDS,), dtype=np.float32),
        "overlap": np.int32, "name": tfds.features.Text()})

  def _split_names(self):
    return tuple(SPLITS)

  def _generate_examples(self, split, manual_dir):
    folder = manual_dir / SPLITS[split] / RESOLUTIONS[self.builder_config.resolution]
    for path in sorted(folder.glob("*.mat")):
      scene = open_mat(path)
      gt = scene["gt"] if scene["gt"] is not None else np.zeros((0, 0, BANDS))
      yield path.stem, {
          "pan": scene["pan"].astype(np.uint16), "hs_lr": scene["hs_lr"].astype(np.uint16),
          "hs_up": scene["hs_up"].astype(np.uint16), "gt": gt.astype(np.uint16),
          "wavelengths": scene["wavelengths"], "overlap": np.int32(len(scene["overlap"])),
          "name": path.stem}


def make_builder(resolution: str, *, manual_dir: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None) -> Prisma:
  """The prepared builder for ``"rr"`` / ``"fr"``.

  Built once from ``manual_dir`` by ``jspectral.data.tfds.prepare``.

  Args:
    resolution: ``"rr"`` or ``"fr"``.
    manual_dir: the toolbox files (default ``manual_root()/prisma``).
    data_dir: TFDS data directory for the prepared records.

  Returns:
    A prepared :class:`Prisma` builder.
  """
  if resolution.lower() not in RESOLUTIONS:
    raise ValueError(f"resolution: expected 'rr' or 'fr', got {resolution!r}")
  return tfds_lib.prepare(Prisma, config=resolution.lower(), manual_dir=manual_dir,
                          data_dir=data_dir)


def load_scenes(resolution: str, split: str = "test", *,
                manual_dir: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None,
                bands: int | None = None) -> list[dict[str, np.ndarray]]:
  """Every scene of ``split``, sorted by name.

  Args:
    resolution: ``"rr"`` or ``"fr"``.
    split: split name.
    manual_dir: the toolbox files (default ``manual_root()/prisma``).
    data_dir: TFDS data directory for the prepared records.
    bands: keep the first ``bands`` bands (``None`` or 159: all; fewer cuts a dry run).

  Returns:
    Dicts with float64 ``pan (H, W, 1)``, ``hs_lr (h, w, B)``, ``hs_up (H, W, B)``, ``gt (H, W,
    B)`` (RR only), float64 ``wavelengths (B,)`` and the ``name``.
  """
  if split not in SPLITS:
    raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
  if bands is not None and not 1 <= bands <= BANDS:
    raise ValueError(f"bands: expected 1 ... {BANDS}, got {bands}")
  source = make_builder(resolution, manual_dir=manual_dir, data_dir=data_dir).as_data_source(
      split)
  text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
  records = sorted((source[i] for i in range(len(source))), key=lambda r: text(r["name"]))
  scenes = []
  for record in records:
    scene = {k: np.asarray(record[k], np.float64)
             for k in ("pan", "hs_lr", "hs_up", "gt", "wavelengths")}
    for k in ("hs_lr", "hs_up", "gt", "wavelengths"):
      scene[k] = scene[k][..., :bands]
    scene["name"] = text(record["name"])
    if scene["gt"].size == 0:
      scene.pop("gt")
    scenes.append(scene)
  return scenes


def load_test_scene(resolution: str, index: int = 0, *,
                    manual_dir: str | os.PathLike | None = None,
                    data_dir: str | os.PathLike | None = None,
                    bands: int | None = None) -> dict[str, np.ndarray]:
  """Test scene ``index`` of :func:`load_scenes` (sorted by name).

  Args:
    resolution: ``"rr"`` or ``"fr"``.
    index: position in the name-sorted test split.
    manual_dir: the toolbox files (default ``manual_root()/prisma``).
    data_dir: TFDS data directory for the prepared records.
    bands: keep the first ``bands`` bands (see :func:`load_scenes`).

  Returns:
    One scene dict (see :func:`load_scenes`).
  """
  return load_scenes(resolution, "test", manual_dir=manual_dir, data_dir=data_dir,
                     bands=bands)[index]
