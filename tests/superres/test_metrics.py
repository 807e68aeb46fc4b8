"""SSPSR ``quality_assessment`` conventions against the official values (essaformer_parity pack,
case ``metrics_sspsr``), and the SAM cosine-clip switch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.superres.protocol import quality_assessment
from tests.conftest import load_pack


def test_metrics_sspsr_parity():
  pack = load_pack("essaformer_parity")
  config = pack.config("metrics_sspsr")
  values = quality_assessment(pack["metrics_sspsr/pred"], pack["metrics_sspsr/gt"],
                              data_range=config["data_range"], ratio=config["ratio"])
  assert sorted(values) == sorted(["MPSNR", "MSSIM", "ERGAS", "SAM", "CrossCorrelation", "RMSE"])
  # SAM is an arccos near 0 (about 3 degrees here): it magnifies the float32 rounding of the
  # cosine ~20x, so summation order alone moves it by 1.1e-5 on a GPU (2.1e-6 on CPU; the
  # official float32 value is itself 2.6e-6 from the float64 one).
  for name, value in values.items():
    rtol = 3e-5 if name == "SAM" else 1e-5
    np.testing.assert_allclose(value, pack[f"metrics_sspsr/{name}"], rtol=rtol, err_msg=name)


def test_sam_clip_switch_and_batching():
  rng = np.random.default_rng(0)
  target = jnp.asarray(rng.random((2, 8, 8, 5)), jnp.float32)
  values = quality_assessment(target, target, clip_cosine=True)
  assert values["SAM"].shape == (2,)
  np.testing.assert_allclose(values["SAM"], 0.0, atol=0.05)
  assert np.all(np.isinf(values["MPSNR"]))
  pred = target * 1.7            # per-pixel scaling: zero spectral angle, lower PSNR
  scaled = quality_assessment(pred, target, clip_cosine=True)
  np.testing.assert_allclose(scaled["SAM"], 0.0, atol=0.05)
  np.testing.assert_allclose(scaled["CrossCorrelation"], 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match="pred, target"):
    quality_assessment(target[..., :4], target)
