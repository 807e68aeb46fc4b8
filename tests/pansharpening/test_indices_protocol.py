"""Wald protocol, filters, interpolators and indices against pansharpening_parity.npz.

Reference: matciotola/hyperspectral_pansharpening_toolbox 1b2ea9b (cases kernels, rr_degradation,
interp, metrics_rr, metrics_fr, losses).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.data import wald
from jspectral.metrics import pansharpening as indices
from jspectral.pansharpening import protocol as ps_protocol
from jspectral.pansharpening import rho_pnn
from tests.conftest import load_pack

PACK = "pansharpening_parity"


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


def nhwc(x):
  return np.transpose(np.asarray(x), (0, 2, 3, 1)).astype(np.float64)


def test_kernels(pack):
  k = lambda name: pack[f"kernels/{name}"]
  np.testing.assert_allclose(wald.gen_mtf(6, 41), k("gen_mtf_r6_k41"), atol=1e-12)
  np.testing.assert_allclose(wald.gen_mtf(6, 61), k("gen_mtf_r6_k61"), atol=1e-12)
  np.testing.assert_allclose(wald.gen_mtf(6, 9), k("gen_mtf_r6_k9"), atol=1e-12)
  np.testing.assert_allclose(wald.gen_mtf(4, 41), k("gen_mtf_r4_k41"), atol=1e-12)
  np.testing.assert_allclose(wald.gen_mtf_pan(6), k("gen_mtf_pan_r6_k41"), atol=1e-12)
  # LPfilterGauss filters with float32-rounded taps (the toolbox's mtf_kernel_to_torch).
  np.testing.assert_allclose(wald.toolbox_taps(wald.lp_filter_gauss_kernel(6)),
                             k("lpfiltergauss_r6_impulse"), atol=1e-12)
  np.testing.assert_allclose(wald.lanczos2_kernel(6, 0.5, 25), k("lanczos2_f6_phase05"),
                             atol=1e-12)
  np.testing.assert_allclose(wald.lanczos2_kernel(2, 0, 9), k("lanczos2_f2_phase0"), atol=1e-12)
  np.testing.assert_allclose(wald.starck_murtagh_filters(), k("starck_murtagh_filters"),
                             atol=1e-12)
  sums = [wald.gen_mtf(6, 41).sum(), wald.gen_mtf(6, 9).sum(),
          wald.gen_mtf_pan(6).sum()]
  np.testing.assert_allclose(sums, [0.997188, 0.636335, 0.996248], atol=1e-6)


def test_interp(pack):
  with jax.enable_x64(True):
    x4 = nhwc(pack["interp/x_r4"])
    np.testing.assert_allclose(wald.interp23tap(x4, 4), nhwc(pack["interp/interp23_r4"]),
                               atol=1e-12)
    np.testing.assert_allclose(wald.interp23tap(x4, 2), nhwc(pack["interp/interp23_r2"]),
                               atol=1e-12)
    np.testing.assert_allclose(wald.interp23tap(x4, 4), nhwc(pack["interp/interp23_numpy_r4"]),
                               atol=1e-12)
    x6 = nhwc(pack["interp/x_r6"])
    np.testing.assert_allclose(wald.ideal_interpolator(x6, 6), nhwc(pack["interp/ideal_r6"]),
                               atol=1e-6)
  with pytest.raises(ValueError, match="31"):
    wald.ideal_interpolator(jnp.zeros((30, 30, 1)), 6)
  with pytest.raises(ValueError, match="ratio"):
    wald.interp23tap(jnp.zeros((8, 8, 1)), 3)


def test_rr_degradation(pack):
  hs = pack["rr_degradation/hs"].astype(np.float64)
  pan = pack["rr_degradation/pan"].astype(np.float64)
  with jax.enable_x64(True):
    out = wald.rr_degradation(hs, pan, 6)
    # The official filters in float32 (1681-tap sums): its own rounding is ~1e-2 DN at 2.7e4 DN.
    ref = np.transpose(pack["rr_degradation/hs_lr_float"], (1, 2, 0))
    np.testing.assert_allclose(out["hs_lr_float"], ref, atol=2e-6 * ref.max())
    np.testing.assert_allclose(out["pan_lr_float"][..., 0], pack["rr_degradation/pan_lr_float"],
                               atol=2e-6 * ref.max())
    for key in ("hs_lr", "pan_lr"):
      diff = np.asarray(out[key]).astype(int).squeeze() - pack[f"rr_degradation/{key}"].astype(int)
      assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 0.02   # truncation, isolated +-1
    exp = np.asarray(out["hs_lr_exp"]).astype(int) - pack["rr_degradation/hs_lr_exp"].astype(int)
    assert np.abs(exp).max() <= 1 and (exp != 0).mean() < 0.01
    # From the official float HS-LR, the rounded interpolation agrees on >= 99.9% of pixels.
    again = np.asarray(wald.fr_upsample(ref.astype(np.float64), 6)).astype(int)
    diff = again - pack["rr_degradation/hs_lr_exp"].astype(int)
    assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 1e-3
    # Truncation (default) vs rounding (option) differ exactly where the fraction is >= 0.5.
    rounded = wald.rr_degradation(hs, pan, 6, quantize="round")["hs_lr"]
    frac = np.asarray(out["hs_lr_float"]) % 1
    np.testing.assert_array_equal(np.asarray(rounded) != np.asarray(out["hs_lr"]), frac > 0.5)
  with pytest.raises(ValueError, match="multiple"):
    wald.rr_degradation(hs[:100, :100], pan[:100, :100], 6)
  with pytest.raises(ValueError, match="pan"):
    wald.rr_degradation(hs, np.stack([pan, pan], -1), 6)


def test_metrics_rr(pack):
  v = pack.json("metrics_rr/values")
  with jax.enable_x64(True):
    gt, fused = nhwc(pack["metrics_rr/gt"]), nhwc(pack["metrics_rr/fused"])
    rr = ps_protocol.evaluation_rr(fused, gt, 6)
    np.testing.assert_allclose(rr["ERGAS"], v["evaluation_rr"]["ERGAS"], rtol=1e-9)
    np.testing.assert_allclose(rr["SAM"], v["evaluation_rr"]["SAM"], rtol=1e-9)
    np.testing.assert_allclose(rr["Q2n"], v["evaluation_rr"]["Q2n"], atol=1e-6)
    np.testing.assert_allclose(indices.ergas(fused, gt, 6)[0], v["nocut"]["ERGAS"], rtol=1e-9)
    np.testing.assert_allclose(indices.sam(fused, gt)[0], v["nocut"]["SAM"], rtol=1e-9)
    np.testing.assert_allclose(indices.ergas_per_band(fused, gt, 6)[0],
                               pack["metrics_rr/ergas_per_band_nocut"], rtol=1e-9)
    map32, map16 = indices.q2n_map(fused, gt)[0], indices.q2n_map(fused, gt, 16, 16)[0]
    np.testing.assert_allclose(map32, pack["metrics_rr/q2n_map_32_nocut"], atol=1e-6)
    np.testing.assert_allclose(map16, pack["metrics_rr/q2n_map_16_nocut"], atol=1e-6)
    np.testing.assert_allclose(np.mean(map32), v["nocut"]["Q2n_32"], atol=1e-6)   # q2n = map mean
    np.testing.assert_allclose(np.mean(map16), v["nocut"]["Q2n_16"], atol=1e-6)
    zeroed = fused.copy()
    for r, c in pack.config("metrics_rr")["zero_pixels"]:
      zeroed[0, r, c] = 0.0
    np.testing.assert_allclose(indices.sam(zeroed, gt)[0], v["nocut"]["SAM_zero_pixels"], rtol=1e-9)


def test_metrics_fr(pack):
  v = pack.json("metrics_fr/values")
  with jax.enable_x64(True):
    out, pan = nhwc(pack["metrics_fr/out"]), nhwc(pack["metrics_fr/pan"])
    ms_lr = nhwc(pack["metrics_fr/ms_lr"])
    ref = nhwc(pack["metrics_fr/out_lr"])
    np.testing.assert_allclose(indices.khan_degrade(out, 6), ref, rtol=1e-9, atol=1e-9 * ref.max())
    fr = ps_protocol.evaluation_fr(out, pan, ms_lr, 6)
    for key in ("D_lambda", "D_sR", "QNR"):
      np.testing.assert_allclose(fr[key], v[key], atol=1e-6)


def test_training_losses(pack):
  """The toolbox's losses case: HSpeNet SAMLoss and the R-PNN spectral/structural machinery."""
  v = pack.json("losses/values")
  a, b = nhwc(pack["losses/sam_a"]), nhwc(pack["losses/sam_b"])
  np.testing.assert_allclose(indices.sam_loss(a, b), v["SAMLoss"], rtol=1e-6)
  img = lambda key: jnp.asarray(pack[f"losses/{key}"], jnp.float32)[None, :, :, None]
  band, pan, out, band_lr = img("band"), img("pan"), img("out"), img("band_lr")
  # float32 with another summation order than torch: 5.6e-6 relative.
  np.testing.assert_allclose(rho_pnn.spectral_loss(out, band_lr), v["rpnn_spectral"], rtol=1e-5)
  with jax.enable_x64(True):
    padded = jnp.pad(jnp.concatenate([band, pan], -1), ((0, 0), (6, 6), (6, 6), (0, 0)),
                     mode="reflect")
    thr = rho_pnn.correlation_mask(padded[..., :1], padded[..., 1:])
    np.testing.assert_allclose(thr[0, ..., 0], pack["losses/threshold_padded"], atol=1e-5)
    t = thr[:, 6:-6, 6:-6]
    masked = rho_pnn.spatial_loss(out, pan, threshold=t, apply_threshold=True,
                                  absolute=False, clip="all")
    np.testing.assert_allclose(masked, v["rpnn_structural"], rtol=1e-6)
    plain = rho_pnn.spatial_loss(out, pan, absolute=False, clip="all")
    np.testing.assert_allclose(plain, v["rpnn_structural_no_threshold"], rtol=1e-6)
    o64, p64 = out.astype(jnp.float64), pan.astype(jnp.float64)
    np.testing.assert_allclose(indices.local_correlation(o64, p64, 3, clip="all")[0, ..., 0],
                               pack["losses/xcorr_loss_w3"], atol=1e-5)
    np.testing.assert_allclose(indices.local_correlation(o64, p64, 3, clip="none")[0, ..., 0],
                               pack["losses/xcorr_utils_w3"], atol=1e-5)


def test_cayley_dickson_table_matches_recursive_product():
  rng = np.random.default_rng(0)

  def conj(x):
    return np.concatenate([x[:1], -x[1:]])

  def onion(p, q):
    if p.size == 1:
      return p * q
    h = p.size // 2
    a, b, c, d = p[:h], p[h:], q[:h], q[h:]
    return np.concatenate([onion(a, c) - onion(conj(d), b),
                           onion(conj(a), conj(d)) + onion(c, conj(b))])

  for n in (1, 2, 4, 8, 16):
    p, q = rng.normal(size=n), rng.normal(size=n)
    index, weight = indices.cayley_dickson_table(n)
    fast = (weight * p[:, None] * q[index]).sum(0)
    np.testing.assert_allclose(fast, onion(p, q), atol=1e-12)


def test_perfect_fusion_and_properties():
  rng = np.random.default_rng(1)
  gt = jnp.asarray(rng.uniform(100, 4000, (2, 32, 32, 5)).round(), jnp.float32)
  assert np.allclose(indices.ergas(gt, gt, 6), 0)
  assert np.allclose(indices.sam(gt, gt), 0, atol=1e-2)
  np.testing.assert_allclose(indices.q2n(gt, gt), 1.0, atol=1e-5)
  np.testing.assert_allclose(indices.q_avg(gt, gt, 8), 1.0, atol=1e-5)
  # Scaling the fused image changes ERGAS and Q2n but not SAM.
  np.testing.assert_allclose(indices.sam(1.3 * gt, gt), indices.sam(gt, gt), atol=2e-2)
  assert float(indices.q2n(1.3 * gt, gt)[0]) < 0.99
  # Differentiable: ERGAS gradient against finite differences, Q2n without rounding.
  noisy = gt + jnp.asarray(rng.normal(0, 50, gt.shape), jnp.float32)
  with jax.enable_x64(True):
    g64, n64 = gt.astype(jnp.float64), noisy.astype(jnp.float64)
    f = lambda s: indices.ergas(s * n64, g64, 6).sum()
    grad = jax.grad(f)(1.0)
    fd = (f(1.0 + 1e-6) - f(1.0 - 1e-6)) / 2e-6
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    gq = jax.grad(lambda x: indices.q2n(x, g64, round_inputs=False).sum())(n64)
    assert np.isfinite(np.asarray(gq)).all() and np.abs(np.asarray(gq)).max() > 0


def test_bad_inputs():
  with pytest.raises(ValueError, match="fused"):
    indices.ergas(jnp.zeros((4, 4, 3)), jnp.zeros((4, 4, 2)), 6)
  with pytest.raises(ValueError, match="fused"):
    indices.sam(jnp.zeros((4, 4)), jnp.zeros((4, 4)))
  with pytest.raises(ValueError, match="pan"):
    indices.d_sr(jnp.ones((12, 12, 3)), jnp.ones((12, 12, 2)))
  with pytest.raises(ValueError, match="pan"):
    indices.d_lambda_khan(jnp.ones((12, 12, 3)), jnp.ones((3, 3, 3)), 6)
