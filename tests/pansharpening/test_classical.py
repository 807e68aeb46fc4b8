"""Classical methods against pansharpening_parity.npz cases methods_hr48 and methods_hr192."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.pansharpening import classical
from tests.conftest import load_pack

PACK = "pansharpening_parity"


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


@pytest.mark.parametrize("name", ["MTF-GLP-FS", "MTF-GLP-HPM", "MTF-GLP-HPM-R"])
def test_methods_hr192(pack, name):
  f = lambda k: pack[k].astype(np.float64)
  pan, ms = f("rr_degradation/pan"), f("rr_degradation/hs_lr_exp")[:, :, :1]
  lr = f("rr_degradation/hs_lr")[:, :, :1]
  ref = pack[f"methods_hr192/out/{name}"]
  with jax.enable_x64(True):
    out = np.asarray(classical.METHODS[name](lr, pan, 6, hs_up=ms))[..., 0]
  np.testing.assert_allclose(out, ref, atol=1e-4 * np.abs(ref).max())


def test_methods_hr48(pack):
  f = lambda k: pack[k].astype(np.float64)
  pan, ms, lr = f("methods_hr48/pan"), f("methods_hr48/ms"), f("methods_hr48/ms_lr")
  with jax.enable_x64(True):
    for name in ("BT-H", "EXP"):
      out = np.transpose(np.asarray(classical.METHODS[name](lr, pan, 6, hs_up=ms)), (2, 0, 1))
      ref = pack["methods_hr48/out/BT-H"] if name == "BT-H" else np.transpose(ms, (2, 0, 1))
      np.testing.assert_allclose(out, ref, atol=1e-4 * np.abs(ref).max())


def test_batched_vmap_and_gradient():
  rng = np.random.default_rng(0)
  lr = jnp.asarray(rng.uniform(0.2, 1.0, (2, 32, 32, 1)), jnp.float32)
  pan = jnp.asarray(rng.uniform(0.2, 1.0, (2, 192, 192, 1)), jnp.float32)
  batched = classical.mtf_glp_hpm(lr, pan, 6)
  single = classical.mtf_glp_hpm(lr[1], pan[1], 6)
  np.testing.assert_allclose(batched[1], single, rtol=1e-5, atol=1e-6)
  g = jax.grad(lambda m: classical.mtf_glp_hpm(lr, pan, 6, max_ratio=m).mean())(0.5)
  assert np.isfinite(float(g)) and float(g) != 0.0   # the clip bound is active at 0.5


def test_bad_inputs():
  with pytest.raises(ValueError, match="pan"):
    classical.exp(jnp.zeros((8, 8, 2)), jnp.zeros((40, 48)), 6)
  with pytest.raises(ValueError, match="pan"):
    classical.exp(jnp.zeros((8, 8, 2)), jnp.zeros((48, 48, 2)), 6)
  with pytest.raises(ValueError, match="hs_lr"):
    classical.exp(jnp.zeros((8, 8)), jnp.zeros((48, 48)), 6)
