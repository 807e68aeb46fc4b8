"""HSDT: parameter counts, component maths, parity with the official PyTorch outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jspectral import models
from jspectral.denoising import hsdt, layers
from tests.conftest import load_pack

KEY = jax.random.key(0)


def _count(module, *shapes):
  args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
  return models.param_count(jax.eval_shape(module.init, KEY, *args))


@pytest.mark.parametrize("name, expected", [
    ("hsdt_s", 134_350), ("hsdt", 521_158), ("hsdt_l", 2_094_786)])
def test_registry_param_counts(name, expected):
  assert models.param_count_of(name) == expected


@pytest.mark.parametrize("channels, expected", [(4, 35_746), (24, 1_160_766), (32, 2_053_174)])
def test_other_widths_param_counts(channels, expected):
  assert models.param_count_of("hsdt", channels=channels) == expected


def test_hsdt_m_per_layer_breakdown():
  shapes = jax.eval_shape(hsdt.HSDT().init, KEY, jax.ShapeDtypeStruct((1, 16, 16, 31), jnp.float32))
  per_layer = {k: models.param_count({"params": v}) for k, v in shapes["params"].items()}
  assert per_layer == {
      "head": 5_183, "encoder_0": 8_063, "encoder_1": 23_263, "encoder_2": 30_943,
      "encoder_3": 90_527, "encoder_4": 121_247, "decoder_0": 121_247, "decoder_1": 64_735,
      "decoder_2": 30_943, "decoder_3": 16_511, "decoder_4": 8_063, "tail": 433}


@pytest.mark.parametrize("c_in, c_out", [(1, 16), (16, 16), (8, 4)])
def test_s3conv_formula(c_in, c_out):
  assert _count(hsdt.S3Conv(c_out), (1, 5, 4, 4, c_in)) == 12 * c_in * c_out + 9 * c_out**2


@pytest.mark.parametrize("c", [4, 16])
def test_block_formulas(c):
  shape = (1, 31, 4, 4, c)
  assert _count(hsdt.GSSA(), shape) == 2 * c * c + 31 * c + 31
  assert _count(hsdt.SMFFN(), shape) == 6 * c * c + 5 * c
  assert _count(hsdt.TransformerBlock(), shape) == 8 * c * c + 36 * c + 31


@pytest.fixture(scope="module")
def gssa():
  v = jnp.asarray(np.random.default_rng(1).normal(size=(2, 31, 3, 5, 6)), jnp.float32)
  module = hsdt.GSSA(flex=True)
  params = jax.jit(module.init)(KEY, v)
  params = jax.tree.map(lambda p: p * 300.0, params)  # undo the 1e-3 init: non-trivial attention
  return module, params, v


def test_gssa_attention_rows_sum_to_one(gssa):
  module, params, v = gssa
  for flex in (True, False):
    _, inter = jax.jit(module.clone(flex=flex).apply, static_argnames="mutable")(
        params, v, mutable="intermediates")
    attn = inter["intermediates"]["attention"][0]
    assert attn.shape == (2, 31, 31)
    np.testing.assert_allclose(attn.sum(-1), 1.0, atol=1e-6)
    assert float(attn.std()) > 1e-3


def test_gssa_zero_fc_is_identity(gssa):
  module, params, v = gssa
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: jnp.zeros_like(p) if "fc" in jax.tree_util.keystr(path) else p, params)
  np.testing.assert_array_equal(jax.jit(module.apply)(params, v), v)


def test_gssa_self_branch_band_permutation_equivariant(gssa):
  module, params, v = gssa
  perm = np.random.default_rng(0).permutation(31)
  apply = jax.jit(module.apply)
  np.testing.assert_allclose(apply(params, v[:, perm]), apply(params, v)[:, perm], atol=1e-6)


def test_gssa_train_switch_is_keyed_and_jittable(gssa):
  module, params, v = gssa
  self_out = jax.jit(module.apply)(params, v)
  guided_out = jax.jit(module.clone(flex=False).apply)(params, v)
  train = jax.jit(lambda key: module.apply(params, v, train=True, rngs={"gssa": key}))
  picks = []
  for seed in range(12):
    out = train(jax.random.key(seed))
    np.testing.assert_array_equal(out, train(jax.random.key(seed)))
    is_self = bool(jnp.allclose(out, self_out, atol=1e-6))
    assert is_self or bool(jnp.allclose(out, guided_out, atol=1e-6))
    picks.append(is_self)
  assert 0 < sum(picks) < len(picks)


def test_smffn_closed_form():
  v = jnp.asarray(np.random.default_rng(2).normal(size=(2, 3, 4, 5, 4)), jnp.float32)
  module = hsdt.SMFFN()
  params = jax.tree.map(lambda p: p * 500.0, jax.jit(module.init)(KEY, v))["params"]

  @jax.jit
  def expected(x):
    dense = lambda name, t: t @ params[name]["kernel"] + params[name]["bias"]
    gelu = lambda t: 0.5 * t * (1.0 + jax.scipy.special.erf(t / np.sqrt(2.0)))
    a, g = jnp.split(dense("w_3", x), 2, axis=-1)
    return dense("w_2", gelu(dense("w_1", x))) + a * jax.nn.sigmoid(g)

  np.testing.assert_allclose(jax.jit(module.apply)({"params": params}, v), expected(v), atol=1e-5)


@pytest.mark.parametrize("h, w", [(3, 5), (1, 4)])
def test_upsample_matches_align_corners_interpolation(h, w):
  v = np.random.default_rng(0).normal(size=(2, 3, h, w, 2)).astype(np.float32)
  rows = np.arange(2 * h) * ((h - 1) / (2 * h - 1))
  cols = np.arange(2 * w) * ((w - 1) / (2 * w - 1))
  grid = np.stack(np.meshgrid(rows, cols, indexing="ij"))
  expected = np.empty((2, 3, 2 * h, 2 * w, 2), np.float32)
  for n, d, f in np.ndindex(2, 3, 2):
    expected[n, d, :, :, f] = scipy.ndimage.map_coordinates(v[n, d, :, :, f], grid, order=1)
  out = np.asarray(layers.upsample_hw(jnp.asarray(v)))
  np.testing.assert_allclose(out, expected, atol=1e-6)
  corners = np.ix_(range(2), range(3), [0, -1], [0, -1], range(2))
  np.testing.assert_array_equal(out[corners], v[corners])


def test_shapes_and_input_errors():
  model = hsdt.HSDT(channels=4)
  variables = jax.eval_shape(model.init, KEY, jax.ShapeDtypeStruct((1, 4, 4, 31), jnp.float32))
  apply = lambda m, shape: jax.eval_shape(
      m.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
  assert apply(model, (2, 32, 48, 31)).shape == (2, 32, 48, 31)
  with pytest.raises(ValueError, match="divisible by 4"):
    apply(model, (1, 30, 30, 31))
  with pytest.raises(ValueError, match="num_bands=31"):
    apply(model, (1, 32, 32, 34))
  assert apply(model.clone(flex=True), (1, 32, 32, 34)).shape == (1, 32, 32, 34)
  with pytest.raises(ValueError, match="divisible by 8"):
    jax.eval_shape(hsdt.HSDT(channels=4, num_half_layer=7, sample_idx=(1, 3, 5)).init, KEY,
                   jax.ShapeDtypeStruct((1, 12, 16, 31), jnp.float32))
  with pytest.raises(ValueError, match="bands-last"):
    apply(model, (32, 32, 31))


def test_from_torch_rejects_foreign_state_dict():
  with pytest.raises(ValueError, match="not an HSDT"):
    models.from_torch("hsdt", {"head.conv.weight": np.zeros((4, 1, 3, 3, 3))})
  state = load_pack("denoising_parity").state("hsdt_c4")
  del state["tail.bias"]
  with pytest.raises(ValueError, match="missing"):
    hsdt.from_torch(state)


@pytest.mark.parametrize("pack, case", [
    ("denoising_parity", "hsdt_c4"), ("denoising_parity", "hsdt_deep_c4"),
    ("denoising_parity_hsdt", "hsdt_s"), ("denoising_parity_hsdt", "hsdt")])
def test_parity_with_official_eval_output(pack, case, fast_jit, bands_last):
  ref = load_pack(pack)
  module, variables = models.from_torch("hsdt", ref.state(case))
  out = fast_jit(module.apply)(variables, bands_last(ref[f"{case}/input"]))
  np.testing.assert_allclose(out, bands_last(ref[f"{case}/output"]), rtol=0, atol=1e-5)
  if case == "hsdt":
    assert models.param_count(variables) == 521_158 == ref.config(case)["_info"]["params"]


def test_parity_float64_deep(fast_jit, bands_last):
  ref = load_pack("denoising_parity")
  with jax.enable_x64(True):
    state = {k: v.astype(np.float64) for k, v in ref.state("hsdt_deep_c4").items()}
    module, variables = hsdt.from_torch(state)
    x = bands_last(ref["hsdt_deep_c4/input"]).astype(np.float64)
    out = fast_jit(module.apply)(variables, x)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, bands_last(ref["hsdt_deep_c4/output_float64"]), atol=1e-9)
