"""TFDS builders of the real datasets (one module each) and the catalog of their manual files.

``catalog()`` lists every dataset configuration with its manual directory, the files it expects
there and whether they are present; ``python -m experiments data list`` prints it.
"""

from __future__ import annotations

import os
import pathlib

from jspectral.data import tfds as tfds_lib
from jspectral.data.builders.amazon_coauthor import AmazonCoauthor
from jspectral.data.builders.cave import Cave
from jspectral.data.builders.chikusei import Chikusei
from jspectral.data.builders.cifar import Cifar10, Cifar100
from jspectral.data.builders.div2k import Div2k
from jspectral.data.builders.harvard import Harvard
from jspectral.data.builders.icvl import Icvl
from jspectral.data.builders.imagenet import ImageNet1k
from jspectral.data.builders.imagenet100 import ImageNet100
from jspectral.data.builders.indian_pines import IndianPines
from jspectral.data.builders.ntire2020 import Ntire2020
from jspectral.data.builders.pavia import Pavia
from jspectral.data.builders.planetoid import Planetoid
from jspectral.data.builders.prisma import Prisma
from jspectral.data.builders.salinas import Salinas
from jspectral.data.builders.spectral_earth import SpectralEarth, SpectralEarthDownstream
from jspectral.data.builders.tu import TU
from jspectral.data.builders.urban import Urban
from jspectral.data.builders.whu_hi import WhuHi

BUILDERS: tuple[type[tfds_lib.ManualBuilder], ...] = (
    Icvl, Cave, Harvard, Ntire2020, Div2k, Chikusei, Pavia, IndianPines, Salinas, WhuHi, Urban,
    Planetoid, AmazonCoauthor, TU, Cifar10, Cifar100, ImageNet100, ImageNet1k, Prisma,
    SpectralEarth, SpectralEarthDownstream)


def catalog(root: str | os.PathLike | None = None) -> list[dict]:
  """Every builder configuration, where its files go and which of them are missing.

  Args:
    root: the manual root (default :func:`jspectral.data.tfds.manual_root`); each builder reads
      ``root / <builder name>``.

  Returns:
    JSON-serialisable dicts ``{"name": "<builder>/<config>", "manual_dir", "expected_files",
    "missing_files", "present"}``.
  """
  root = pathlib.Path(root) if root is not None else tfds_lib.manual_root()
  entries = []
  for builder in BUILDERS:
    manual_dir = root / builder.name
    for config in builder.BUILDER_CONFIGS:
      missing = tfds_lib.missing_files(manual_dir, config.files)
      entries.append({"name": f"{builder.name}/{config.name}", "manual_dir": str(manual_dir),
                      "expected_files": list(config.files), "missing_files": missing,
                      "present": not missing})
  return entries


def format_catalog(entries: list[dict]) -> str:
  """A plain-text table of :func:`catalog`.

  Args:
    entries: the dicts of :func:`catalog`.

  Returns:
    One line per configuration: name, manual directory, and ``present`` or the missing files.
  """
  lines = []
  for e in entries:
    missing = e["missing_files"]
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    status = "present" if e["present"] else f"missing {len(missing)}: {shown}"
    lines.append(f"{e['name']:<24} {e['manual_dir']:<50} {status}")
  return "\n".join(lines)
