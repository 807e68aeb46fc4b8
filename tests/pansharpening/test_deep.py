"""Deep networks of the toolbox: parameter counts at B = 159 and parity on pansharpening_parity.npz.

Cases hyperpnn_b8, hspenet_b8, hyper_dsnet_b8, darn_b8, kite_b8, r_pnn, pca_z_pnn_c4, panpred_b8,
dip_b2, dhp_b2, prior_downsamplers
(matciotola/hyperspectral_pansharpening_toolbox 1b2ea9b, synthetic deterministic weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.pansharpening import deep
from tests.conftest import load_pack

PACK = "pansharpening_parity"
COUNTS = {"hyperpnn": 140_255, "hspenet": 123_199, "hyper_dsnet": 271_359, "darn": 481_971,
          "dip_hyperkite": 588_861, "r_pnn": 43_473, "pca_z_pnn": 51_396,
          "hyperkite_pan_predictor": 25_360,
          # Trainable counts (the DHP's 6,635,520 fixed Lanczos weights are not parameters).
          "dip_prior": 2_977_539, "dhp_prior": 2_448_347}


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


def nhwc(x):
  return np.transpose(np.asarray(x), (0, 2, 3, 1))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_param_counts(name):
  assert models.param_count_of(name) == COUNTS[name]


# case -> (registry name, input keys in call order, tolerance)
CASES = {
    "hyperpnn_b8": ("hyperpnn", ("pan", "hs"), 1e-5),
    "hspenet_b8": ("hspenet", ("pan", "hs"), 1e-5),
    "darn_b8": ("darn", ("pan", "prior"), 1e-5),
    "kite_b8": ("dip_hyperkite", ("pan", "prior"), 1e-5),
    "r_pnn": ("r_pnn", ("input",), 1e-5),
    "pca_z_pnn_c4": ("pca_z_pnn", ("input",), 1e-5),
    "panpred_b8": ("hyperkite_pan_predictor", ("input",), 1e-5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_official_weights(pack, case):
  name, keys, tol = CASES[case]
  module, variables = models.from_torch(name, pack.state(case))
  out = jax.jit(module.apply)(variables, *(nhwc(pack[f"{case}/{k}"]) for k in keys))
  np.testing.assert_allclose(out, nhwc(pack[f"{case}/output"]), atol=tol)


def test_hyper_dsnet(pack):
  case = "hyper_dsnet_b8"
  module, variables = models.from_torch("hyper_dsnet", pack.state(case))
  inputs = [nhwc(pack[f"{case}/{k}"]) for k in ("pan", "ms", "ms_lr")]
  out = jax.jit(module.apply)(variables, *inputs)
  err = np.abs(np.asarray(out) - nhwc(pack[f"{case}/output"]))
  # Block1 rounds and floors: a flipped quantisation step may move a few pixels (README).
  assert (err > 1e-5).mean() < 0.01 and err.max() < 0.05
  # The fixed edge taps receive no gradient.
  pan, ms, ms_lr = (jnp.asarray(nhwc(pack[f"{case}/{k}"])) for k in ("pan", "ms", "ms_lr"))
  grads = jax.jit(jax.grad(lambda p: module.apply({"params": p}, pan, ms, ms_lr).sum()))(
      variables["params"])
  assert all(float(jnp.abs(g).max()) == 0 for g in grads["block1"].values())


def test_darn_swapped_inputs_flag(pack):
  case = "darn_b8"
  _, variables = models.from_torch("darn", pack.state(case))
  pan, prior = nhwc(pack[f"{case}/pan"]), nhwc(pack[f"{case}/prior"])
  official = deep.DARN(nbands=8).apply(variables, pan, prior)
  fixed = deep.DARN(nbands=8, swapped_inputs=False).apply(variables, pan, prior)
  np.testing.assert_allclose(official, nhwc(pack[f"{case}/output"]), atol=1e-5)
  assert float(jnp.abs(fixed - official).max()) > 1e-2
  # The corrected network's residual is the prior: zero weights elsewhere leave prior + bias path.
  zero = jax.tree_util.tree_map(jnp.zeros_like, variables)
  np.testing.assert_allclose(deep.DARN(nbands=8, swapped_inputs=False).apply(zero, pan, prior),
                             prior, atol=1e-6)
  np.testing.assert_allclose(deep.DARN(nbands=8).apply(zero, pan, prior),
                             np.broadcast_to(pan, prior.shape), atol=1e-6)


def test_bad_inputs():
  module = deep.HyperPNN(nbands=4)
  with pytest.raises(ValueError, match="pan"):
    module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 2)), jnp.zeros((1, 8, 8, 4)))
  with pytest.raises(ValueError, match="hs"):
    module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 4, 4, 4)))


def test_prior_downsamplers(pack):
  x = nhwc(pack["prior_downsamplers/input"])
  np.testing.assert_allclose(jax.jit(deep.dhp_downsample)(x),
                             nhwc(pack["prior_downsamplers/dhp_mtf9"]), atol=1e-6)
  np.testing.assert_allclose(jax.jit(deep.dip_downsample)(x),
                             nhwc(pack["prior_downsamplers/dip_lanczos2"]), atol=1e-6)


@pytest.mark.parametrize("case,name", [("dip_b2", "dip_prior"), ("dhp_b2", "dhp_prior")])
def test_prior_generators(pack, case, name):
  module, variables = models.from_torch(name, pack.state(case))
  out = jax.jit(module.apply)(variables, nhwc(pack[f"{case}/input"]))
  np.testing.assert_allclose(out, nhwc(pack[f"{case}/output"]), atol=1e-4)
