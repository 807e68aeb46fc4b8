"""Shared plumbing of the graph TFDS builders (Planetoid, Amazon/Coauthor, TU).

Written directly on ``tfds.core.GeneratorBasedBuilder`` following DESIGN.md's known facts
(``DatasetInfo(builder=self, ...)``, ``array_record`` files read back with ``as_data_source``, no
TensorFlow), with the same manual-directory convention as the hyperspectral builders:
``<root>/<builder name>``, ``root`` = ``$JSPECTRAL_MANUAL_DIR`` or
``~/tensorflow_datasets/downloads/manual``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds


def manual_root() -> pathlib.Path:
  default = pathlib.Path("~/tensorflow_datasets/downloads/manual")
  return pathlib.Path(os.environ.get("JSPECTRAL_MANUAL_DIR", default)).expanduser()


def check_files(name: str, manual_dir: pathlib.Path, files: Sequence[str], help_text: str):
  """Raises ``FileNotFoundError`` naming the directory and every missing expected file."""
  missing = [f for f in files if not (pathlib.Path(manual_dir) / f).is_file()]
  if missing:
    raise FileNotFoundError(f"{name}: missing files in the manual directory {manual_dir}: "
                            f"{', '.join(missing)}.\n{help_text.strip()}")


class GraphBuilder(tfds.core.GeneratorBasedBuilder):
  """Base: subclasses set ``BUILDER_CONFIGS`` and implement ``_features``, ``_files`` and
  ``_generate_examples(manual_dir)`` yielding ``(key, example)`` for the single ``train`` split."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  def __init__(self, *, file_format: str = "array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=self._features(),
                                 description=self.__doc__)

  def _split_generators(self, dl_manager):
    manual_dir = pathlib.Path(dl_manager.manual_dir)
    check_files(self.name, manual_dir, self._files(), self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {"train": self._generate_examples(manual_dir)}


def prepare(builder_cls, config: str, *, manual_dir=None, data_dir=None):
  """Builds (once) and returns ``builder_cls`` for ``config``."""
  builder = builder_cls(config=config, data_dir=data_dir)
  manual_dir = pathlib.Path(manual_dir) if manual_dir else manual_root() / builder.name
  check_files(builder.name, manual_dir, builder._files(), builder.MANUAL_DOWNLOAD_INSTRUCTIONS)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


def records(builder, split: str = "train") -> list[dict]:
  """Every record of ``split`` (``as_data_source``), sorted by its ``index`` field."""
  source = builder.as_data_source(split)
  items = [source[i] for i in range(len(source))]
  return sorted(items, key=lambda r: int(r["index"]))


def normalize_features(x: np.ndarray) -> np.ndarray:
  """PyG ``NormalizeFeatures``: rows divided by their sum; all-zero rows stay zero."""
  total = x.sum(1, keepdims=True)
  return (x / np.where(total == 0, 1.0, total)).astype(np.float32)


def coalesce(edge_index: np.ndarray, num_nodes: int, *, undirected: bool = True,
             remove_self_loops: bool = True) -> np.ndarray:
  """Sorted unique ``(2, E)`` edges, both directions stored if ``undirected``."""
  edge_index = np.asarray(edge_index, np.int64).reshape(2, -1)
  if undirected:
    edge_index = np.concatenate([edge_index, edge_index[::-1]], axis=1)
  if remove_self_loops:
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
  keys = np.unique(edge_index[0] * num_nodes + edge_index[1])
  return np.stack([keys // num_nodes, keys % num_nodes])
