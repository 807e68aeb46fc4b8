"""Classical methods against pansharpening_parity.npz cases methods_hr48 and methods_hr192.

Parity cases run on a batch of two scenes, the pack's and the same scene times 2, so one compile
checks the values, the batch axis and per-image statistics (every method but TV and SR-D is
scale-equivariant; TV's second scene is an identical copy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jspectral.pansharpening import classical
from tests.conftest import load_pack

PACK = "pansharpening_parity"
HR48_TOLERANCE = {"BDSD-PC": 1e-3}   # x max|ref|; 1e-4 otherwise (README)


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


def _pair(x, factor):
  return np.stack([x, factor * x])


@pytest.fixture(scope="module")
def hr192(pack):
  f = lambda k: pack[k].astype(np.float64)
  return {"pan": f("rr_degradation/pan")[:, :, None], "ms": f("rr_degradation/hs_lr_exp")[..., :1],
          "lr": f("rr_degradation/hs_lr")[..., :1], "gt": f("rr_degradation/hs")[..., :1]}


@pytest.fixture(scope="module")
def hr48(pack):
  f = lambda k: pack[k].astype(np.float64)
  return {"pan": f("methods_hr48/pan")[:, :, None], "ms": f("methods_hr48/ms"),
          "lr": f("methods_hr48/ms_lr")}


def _run_pair(method, scene, factor, **kw):
  with jax.enable_x64(True):
    out = method(_pair(scene["lr"], factor), _pair(scene["pan"], factor), 6,
                 hs_up=_pair(scene["ms"], factor), **kw)
    return np.asarray(out)


@pytest.mark.parametrize("name", ["MTF-GLP-FS", "MTF-GLP-HPM", "MTF-GLP-HPM-R"])
def test_methods_hr192(pack, hr192, name):
  out = _run_pair(classical.METHODS[name], hr192, 2.0)
  ref = pack[f"methods_hr192/out/{name}"]
  np.testing.assert_allclose(out[0, ..., 0], ref, atol=1e-4 * np.abs(ref).max())
  np.testing.assert_allclose(out[1], 2.0 * out[0], rtol=1e-9, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("name", ["EXP", "GSA", "BT-H", "PRACS", "BDSD-PC", "AWLP", "MF", "TV"])
def test_methods_hr48(pack, hr48, name):
  factor = 1.0 if name == "TV" else 2.0
  out = np.transpose(_run_pair(classical.METHODS[name], hr48, factor), (0, 3, 1, 2))
  ref = (np.transpose(hr48["ms"], (2, 0, 1)) if name == "EXP"
         else pack[f"methods_hr48/out/{name}"])
  scale = np.abs(ref).max()
  np.testing.assert_allclose(out[0], ref, atol=HR48_TOLERANCE.get(name, 1e-4) * scale)
  np.testing.assert_allclose(out[1], factor * out[0], rtol=1e-8, atol=1e-8 * scale)


def test_sr_d_tile_index_defect(pack, hr192):
  """methods_hr192 SR-D: the toolbox codes every tile with tile 0 (default) - the fix is better."""
  with jax.enable_x64(True):
    args = (hr192["lr"], hr192["pan"], 6)
    official = np.asarray(classical.sr_d(*args, hs_up=hr192["ms"]))
    fixed = np.asarray(classical.sr_d(*args, hs_up=hr192["ms"], fix_tile_index=True))
  ref = pack["methods_hr192/out/SR-D"]
  np.testing.assert_allclose(official[..., 0], ref, atol=1e-3 * np.abs(ref).max())
  rmse = lambda x: float(np.sqrt(np.mean((x - hr192["gt"]) ** 2)))
  assert rmse(fixed) < 0.8 * rmse(hr192["ms"]) < 0.8 * rmse(official)


def test_tv_channel_offset_defect(pack, hr48):
  """The exact gradient adjoint (fix_channel_offset) leaves the toolbox's TV output (spec 12)."""
  x = np.random.default_rng(0).normal(size=(1, 5, 6, 2))
  v = np.random.default_rng(1).normal(size=(1, 5, 6, 2))
  for axis in (1, 2):
    lhs = np.sum(np.asarray(classical._forward_diff(jnp.asarray(x), axis)) * v)
    rhs = np.sum(x * np.asarray(classical._forward_diff_adjoint(jnp.asarray(v), axis)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)
  with jax.enable_x64(True):
    fixed = np.asarray(classical.tv(hr48["lr"], hr48["pan"], 6, fix_channel_offset=True))
  ref = pack["methods_hr48/out/TV"]
  assert np.abs(np.transpose(fixed, (2, 0, 1)) - ref).max() > 1e-3 * np.abs(ref).max()  # 10x tol


def test_nnls_matches_scipy():
  rng = np.random.default_rng(3)
  design = rng.normal(size=(40, 6))
  target = design @ np.array([1.0, -2.0, 0.5, -0.1, 3.0, -1.0]) + 0.1 * rng.normal(size=40)
  with jax.enable_x64(True):
    ours = np.asarray(classical._nnls(jnp.asarray(design.T @ design),
                                      jnp.asarray(design.T @ target), 60))
  ref, _ = scipy.optimize.nnls(design, target)
  assert np.sum(ref == 0) >= 2                      # constraints are active
  np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_gradients(hr192, hr48):
  """Differentiable through parameters and inputs (BDSD-PC through its QP solution)."""
  with jax.enable_x64(True):
    g = jax.grad(lambda m: classical.mtf_glp_hpm(hr192["lr"], hr192["pan"], 6, hs_up=hr192["ms"],
                                                 max_ratio=m).mean())(0.5)
    assert np.isfinite(float(g)) and float(g) != 0.0   # the clip bound is active at 0.5
    noise = np.random.default_rng(0).normal(size=hr48["pan"].shape) * 100.0
    f = jax.jit(jax.value_and_grad(lambda s: classical.bdsd_pc(
        hr48["lr"], hr48["pan"] + s * noise, 6, hs_up=hr48["ms"]).std()))
    numeric = (f(1e-3)[0] - f(-1e-3)[0]) / 2e-3
    np.testing.assert_allclose(float(f(0.0)[1]), float(numeric), rtol=1e-4)


def test_bad_inputs():
  with pytest.raises(ValueError, match="pan"):
    classical.exp(jnp.zeros((8, 8, 2)), jnp.zeros((40, 48)), 6)
  with pytest.raises(ValueError, match="pan"):
    classical.exp(jnp.zeros((8, 8, 2)), jnp.zeros((48, 48, 2)), 6)
  with pytest.raises(ValueError, match="hs_lr"):
    classical.exp(jnp.zeros((8, 8)), jnp.zeros((48, 48)), 6)
  with pytest.raises(ValueError, match="weights"):
    classical.tv(jnp.zeros((8, 8, 5)), jnp.zeros((48, 48)), 6)
  with pytest.raises(ValueError, match="weights"):
    classical.tv(jnp.zeros((8, 8, 5)), jnp.zeros((48, 48)), 6, weights=jnp.ones(4))
  with pytest.raises(ValueError, match="hs_lr"):
    classical.tv(jnp.zeros((8, 8, 3)), jnp.zeros((48, 48)), 6, weights=jnp.ones(3))
  with pytest.raises(ValueError, match="hs_lr"):
    classical.sr_d(jnp.zeros((4, 4, 2)), jnp.zeros((24, 24)), 6, hs_up=jnp.zeros((24, 24, 2)))


def test_vca_finds_pure_pixels_and_reflects():
  rng = np.random.default_rng(4)
  ends = rng.uniform(0.1, 1.0, size=(6, 3))
  abundances = rng.dirichlet(np.ones(3), size=200).T
  abundances[:, :3] = np.eye(3)                      # the pure pixels
  data = ends @ abundances
  with jax.enable_x64(True):
    found = np.asarray(classical.vca(data, 3, jax.random.key(0), reflected=False))
    official = np.asarray(classical.vca(data, 3, jax.random.key(0)))
  order = [int(np.argmin(np.abs(ends - found[:, [i]]).max(axis=0))) for i in range(3)]
  assert sorted(order) == [0, 1, 2]
  np.testing.assert_allclose(found, ends[:, order], atol=1e-10)
  np.testing.assert_allclose(official, 2 * data.mean(axis=1, keepdims=True) - found, atol=1e-10)


def test_hysure_fits_the_pan():
  """HySURE has no parity data (torch RNG in VCA); the PAN here is the band mean, so the fused
  cube's band mean must reproduce it far better than bicubic interpolation's (the estimated
  response and blur, and the PAN-fidelity term of the ADMM, all enter)."""
  from jspectral.pansharpening import resample

  rng = np.random.default_rng(5)
  yy, xx = np.mgrid[0:48, 0:48] / 48.0
  maps = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) for cy, cx in
                   rng.uniform(0.1, 0.9, (6, 2))], axis=-1)
  gt = (0.2 + maps @ rng.uniform(0.0, 1.0, (6, 12))) * 1e4            # 48 x 48 x 12 mixtures
  lr = gt.reshape(8, 6, 8, 6, 12).mean(axis=(1, 3))                  # 6 x 6 block means
  pan = gt.mean(axis=-1)
  with jax.enable_x64(True):
    out = np.asarray(classical.hysure(lr, pan, 6, iterations=40, offset=3))
    exp = np.asarray(resample.imresize(lr[None], 6)[0])
  rmse = lambda x: float(np.sqrt(np.mean((x.mean(axis=-1) - pan) ** 2)))
  assert np.isfinite(out).all() and rmse(out) < 0.5 * rmse(exp)   # 0.31 measured
