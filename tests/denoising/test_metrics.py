"""Official HSI-denoising metrics (torchlight/HSIR) against the reference values."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jspectral.denoising import protocol
from tests.conftest import load_pack


@pytest.fixture(scope="module")
def cubes():
  ref = load_pack("denoising_parity")
  chw_to_hwc = lambda a: np.asarray(a).transpose(1, 2, 0)
  return (ref.json("metrics/values"), chw_to_hwc(ref["metrics/gt"]),
          {"noisy30": chw_to_hwc(ref["metrics/pred_noisy30"]),
           "denoised": chw_to_hwc(ref["metrics/pred_denoised"])})


@pytest.mark.parametrize("case", ["noisy30", "denoised"])
def test_metrics_match_official_values(cubes, case):
  values, gt, preds = cubes
  pred, expected = preds[case], values[case]
  assert float(protocol.mpsnr(pred, gt)) == pytest.approx(expected["MPSNR"], rel=1e-5)
  assert float(protocol.mssim(pred, gt)) == pytest.approx(expected["MSSIM"], rel=1e-5)
  assert float(protocol.mssim(pred, gt, data_range=1.0)) == pytest.approx(
      expected["MSSIM_data_range_1"], rel=1e-5)
  assert float(protocol.sam(pred, gt)) == pytest.approx(expected["SAM"], rel=1e-5)
  assert float(protocol.mpsnr(pred, gt)) != pytest.approx(
      expected["PSNR_whole_cube_not_official"], rel=1e-5)


def test_against_scikit_image_and_batched(cubes):
  _, gt, preds = cubes
  pred = preds["noisy30"]
  psnr = np.mean([peak_signal_noise_ratio(gt[..., b], pred[..., b], data_range=1.0)
                  for b in range(gt.shape[-1])])
  ssim = np.mean([structural_similarity(gt[..., b], pred[..., b], data_range=2.0)
                  for b in range(gt.shape[-1])])
  batched = jax.jit(protocol.mssim)(np.stack([pred, gt]), np.stack([gt, gt]))
  np.testing.assert_allclose(batched, [ssim, 1.0], rtol=1e-5)
  assert float(protocol.mpsnr(pred, gt)) == pytest.approx(psnr, rel=1e-6)
  assert float(protocol.mpsnr(gt, gt)) == np.inf


def test_sam_epsilon_quirk(cubes):
  values, gt, preds = cubes
  gt0 = gt.copy()
  gt0[1, 2] = 0.0
  for fill, key in ((0.04, "pixel=0.04"), (0.6, "pixel=0.6")):
    pred = preds["denoised"].copy()
    pred[1, 2] = fill
    assert float(protocol.sam(pred, gt0)) == pytest.approx(
        values["sam_quirk"][f"SAM(gt0, pred_denoised with {key})"], rel=1e-5)
  self_angle = float(protocol.sam(gt, gt))
  assert 0.0 < self_angle < 1e-3  # official float32 value 8.7e-5; arccos near 1 amplifies rounding


def test_metric_input_errors(cubes):
  _, gt, _ = cubes
  with pytest.raises(ValueError, match="band counts differ"):
    protocol.mpsnr(gt, gt[..., :-1])
  with pytest.raises(ValueError, match="7x7"):
    protocol.mssim(gt[:5], gt[:5])
