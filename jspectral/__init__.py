"""jspectral: eleven published spectral learning systems as pure JAX functions and Flax modules."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import MutableMapping

__version__ = "0.1.0"

YNN_CONVOLUTIONS_OFF = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_FLAG_RELEASES = ((0, 9, 2), (0, 11, 0))  # jaxlib releases that know the flag, [from, to)


def prefer_eigen_convolutions(environ: MutableMapping[str, str] = os.environ,
                              jaxlib_version: str | None = None) -> bool:
  """Append :data:`YNN_CONVOLUTIONS_OFF` to ``XLA_FLAGS``: XLA:CPU convolutions run by Eigen.

  Since jaxlib 0.9, XLA:CPU hands every large convolution to its YNNPACK fusion, whose weight
  gradients are slow. On the 2-core machine here (jaxlib 0.10.2, idle, wall seconds,
  docs/benchmarks.md) Eigen's convolutions run the train steps of MAN-M 8.4 -> 6.5 s, HSDT-M
  5.6 -> 4.8 s, INTL's ResNet-18 1.12 -> 0.89 s and rho-PNN 0.093 -> 0.063 s; which forward
  3x3 convolution is faster varies with the day (32 x 32x32, 64 -> 64: Eigen 0.015 vs YNNPACK
  0.011 s once, 0.014 vs 0.026 s another time), and the rho-PNN smoke, mostly compilation,
  costs 26 instead of 22 CPU seconds. XLA reads ``XLA_FLAGS`` once,
  when the first backend starts, so this runs on ``import jspectral`` and has no effect on a
  process that already computed with JAX. An ``XLA_FLAGS`` that already names the YNN fusion
  types is the user's choice and is left alone; so is a jaxlib outside the releases known to
  have the flag (XLA aborts on an unknown flag).

  Args:
    environ: the environment to edit.
    jaxlib_version: the installed jaxlib's version by default.

  Returns:
    Whether the flag was added.
  """
  flags = environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" in flags:
    return False
  if jaxlib_version is None:
    try:
      jaxlib_version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
      return False
  release = tuple(int(part) for part in jaxlib_version.split(".")[:3] if part.isdigit())
  if not _FLAG_RELEASES[0] <= release < _FLAG_RELEASES[1]:
    return False
  environ["XLA_FLAGS"] = f"{flags} {YNN_CONVOLUTIONS_OFF}".strip()
  return True


prefer_eigen_convolutions()
# Whether XLA:CPU's convolutions run in Eigen (the flag set here or by the user): layers that
# reshape a convolution for YNNPACK's sake skip that where Eigen runs it (canonical_conv._valid).
EIGEN_CONVOLUTIONS = YNN_CONVOLUTIONS_OFF in os.environ.get("XLA_FLAGS", "")
