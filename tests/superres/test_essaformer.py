"""ESSAformer: parity with the official ESSA.py (essaformer_parity pack), parameter counts, the
ESSA maths (quadratic form, invariances, 1/sqrt(N)), weight sharing and input validation."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.superres import essaformer as E
from jspectral.superres.layers import params_from_torch, pixel_shuffle, pixel_unshuffle
from tests.conftest import load_pack

PACK = "essaformer_parity"


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


def _nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


def _nchw(x):
  return np.asarray(x).transpose(0, 3, 1, 2)


def _rel(a, b):
  return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def test_essattn_parity_float32(pack):
  variables = {"params": params_from_torch(pack.state("essattn"))}
  out = E.ESSAttn().apply(variables, pack["essattn/input"])
  assert _rel(out, pack["essattn/output"]) < 1e-5


def test_essattn_parity_float64_and_gradient(pack):
  with jax.enable_x64(True):
    params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64),
                          params_from_torch(pack.state("essattn")))
    x = jnp.asarray(pack["essattn/input_f64"])
    fn = lambda x: E.ESSAttn().apply({"params": params}, x)
    np.testing.assert_allclose(fn(x), pack["essattn/output_f64"], rtol=0, atol=1e-10)
    cot = jnp.asarray(pack["essattn/cotangent_f64"])
    grad = jax.grad(lambda x: jnp.sum(fn(x) * cot))(x)
    np.testing.assert_allclose(grad, pack["essattn/grad_input_f64"], rtol=0, atol=1e-10)


def test_encoder_block_parity(pack):
  variables = {"params": params_from_torch(pack.state("encoder_block"))}
  out = E.EncoderBlock("convu").apply(variables, _nhwc(pack["encoder_block/input"]))
  assert _rel(_nchw(out), pack["encoder_block/output"]) < 1e-5


@pytest.mark.parametrize("case, scale", [("model_x2", 2), ("model_x4", 4)])
def test_full_model_parity_via_registry(pack, case, scale):
  module, variables = models.from_torch("essaformer", pack.state(case))
  config = pack.config(case)
  assert (module.bands, module.dim, module.scale) == (config["inch"], config["dim"], scale)
  out = module.apply(variables, _nhwc(pack[f"{case}/input"]))
  assert _rel(_nchw(out), pack[f"{case}/output"]) < 1e-5
  assert _rel(_nchw(out), pack[f"{case}/output_f64"]) < 1e-5


@pytest.mark.parametrize("name, bands, scale, count", [
    ("essaformer", 128, 4, 11_640_832), ("essaformer_x8", 128, 8, 14_148_672),
    ("essaformer_pavia", 102, 4, 11_520_998), ("essaformer_cave", 31, 4, 11_193_759)])
def test_param_counts(name, bands, scale, count):
  assert models.param_count_of(name) == count
  assert E.param_count_closed_form(bands, 256, scale) == count
  module = models.create(name)
  assert (module.bands, module.dim, module.scale) == (bands, 256, scale)


def test_param_counts_other_configs():
  assert models.param_count_of("essaformer", scale=2) == 9_132_992
  assert models.param_count_of("essaformer", scale=3, dim=252) == 11_638_524
  assert models.param_count_of("essaformer", dim=128) == 3_059_776


def test_weight_sharing_one_module_each():
  shapes = jax.eval_shape(lambda: models.init("essaformer_cave", jax.random.key(0))[1])
  blockup = shapes["params"]["blockup"]
  assert sorted(blockup) == ["convdown", "convdownsample", "convup", "convupsample"]
  assert sorted(blockup["convupsample"]) == ["0", "2"]
  assert sorted(blockup["convdownsample"]) == ["0", "2"]


def test_output_shapes():
  for bands, scale, shape in ((128, 4, (1, 16, 16, 128)), (31, 8, (2, 8, 8, 31))):
    module = E.ESSAformer(bands=bands, scale=scale, dim=16)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    out = jax.eval_shape(lambda x, m=module: m.init_with_output(jax.random.key(0), x)[0], x)
    assert out.shape == (shape[0], scale * shape[1], scale * shape[2], bands)


def _qkv(key, shape):
  return jax.random.normal(key, (3, *shape))


def test_essa_equals_explicit_quadratic_kernel():
  with jax.enable_x64(True):
    q, k, v = _qkv(jax.random.key(1), (2, 37, 12)).astype(jnp.float64)
    linear = E.essa_attention(q, k, v)
    quadratic = E.essa_attention_quadratic(q, k, v)
    # the same kernel written out entry by entry from the spec's formula
    def phi(x):
      c = x - x.mean(-1, keepdims=True)
      return c**2 / ((c**2).sum(-1, keepdims=True) + 1e-7)
    qh = phi(q) / jnp.linalg.norm(phi(q), axis=-1, keepdims=True)
    kh = phi(k) / jnp.linalg.norm(phi(k), axis=-2, keepdims=True)
    kernel = np.einsum("bic,bjc->bij", qh, kh) / math.sqrt(37)
    explicit = v + np.einsum("bij,bjd->bid", kernel, v)
    np.testing.assert_allclose(linear, explicit, rtol=0, atol=1e-12)
    np.testing.assert_allclose(quadratic, explicit, rtol=0, atol=1e-12)


def test_essa_is_token_permutation_equivariant():
  q, k, v = _qkv(jax.random.key(2), (29, 8))
  perm = jax.random.permutation(jax.random.key(3), 29)
  out = E.essa_attention(q, k, v)
  np.testing.assert_allclose(E.essa_attention(q[perm], k[perm], v[perm]), out[perm], atol=1e-5)


def test_scc_features_invariant_to_per_token_scale_and_offset():
  with jax.enable_x64(True):
    q = jax.random.normal(jax.random.key(4), (16, 10), jnp.float64)
    a = jax.random.uniform(jax.random.key(5), (16, 1), jnp.float64, 0.5, 3.0)
    a = a * jnp.where(jnp.arange(16)[:, None] % 2, -1.0, 1.0)
    b = jax.random.normal(jax.random.key(6), (16, 1), jnp.float64)
    np.testing.assert_allclose(E.scc_features(a * q + b), E.scc_features(q), atol=1e-6)


def test_essa_scales_by_one_over_sqrt_tokens():
  # duplicating every token keeps K̂ᵀV/‖·‖ structure: column norms grow by √2, K̂ᵀV by √2,
  # and the 1/√N factor by 1/√2, so the output per token is unchanged.
  q, k, v = _qkv(jax.random.key(7), (11, 6))
  out = E.essa_attention(q, k, v)
  doubled = E.essa_attention(*(jnp.concatenate([t, t]) for t in (q, k, v)))
  np.testing.assert_allclose(doubled[:11], out, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(doubled[11:], out, rtol=1e-5, atol=1e-6)


def test_attention_variants_run_and_differ():
  q, k, v = _qkv(jax.random.key(8), (2, 9, 4))
  outs = {name: fn(q, k, v) for name, fn in E.ATTENTIONS.items()}
  assert all(o.shape == (2, 9, 4) for o in outs.values())
  np.testing.assert_allclose(outs["essa"], outs["essa_quadratic"], atol=1e-5)
  assert not np.allclose(outs["essa"], outs["scc"], atol=1e-3)
  # the SCC softmax weights are invariant to per-token affine maps of the queries
  np.testing.assert_allclose(E.scc_attention(3.0 * q + 1.0, k, v), outs["scc"], atol=1e-5)


def test_pixel_shuffle_uses_pytorch_channel_order():
  x = jnp.arange(2 * 3 * 5 * 12, dtype=jnp.float32).reshape(2, 3, 5, 12)
  y = pixel_shuffle(x, 2)
  # out[c, 2i + a, 2j + b] = in[4c + 2a + b, i, j]
  for c, a, b, i, j in ((0, 0, 1, 1, 2), (2, 1, 0, 2, 4), (1, 1, 1, 0, 0)):
    assert y[1, 2 * i + a, 2 * j + b, c] == x[1, i, j, 4 * c + 2 * a + b]
  np.testing.assert_array_equal(pixel_unshuffle(y, 2), x)


def test_dropout_active_only_in_training():
  module = E.ESSAformer(bands=2, dim=4, scale=2, hr_passes=1)
  x = jax.random.uniform(jax.random.key(0), (1, 3, 3, 2))
  # host-drawn weights on init's tree: no random initialisation to compile (~20 s of CPU)
  rng = np.random.default_rng(1)
  variables = jax.tree.map(lambda s: rng.normal(0.0, 0.5, s.shape).astype(s.dtype),
                           jax.eval_shape(module.init, jax.random.key(1), x))
  apply = lambda x, key, train: module.apply(variables, x, train=train, rngs={"dropout": key})
  eval_a, eval_b = apply(x, jax.random.key(2), False), apply(x, jax.random.key(3), False)
  np.testing.assert_array_equal(eval_a, eval_b)
  assert not np.allclose(apply(x, jax.random.key(2), True), eval_a)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="scale"):
    E.ESSAformer(bands=4, dim=8, scale=6).init(jax.random.key(0), jnp.zeros((1, 4, 4, 4)))
  with pytest.raises(ValueError, match="dim"):
    E.ESSAformer(bands=4, dim=10, scale=2).init(jax.random.key(0), jnp.zeros((1, 4, 4, 4)))
  with pytest.raises(ValueError, match="x: expected"):
    E.ESSAformer(bands=4, dim=8, scale=2).init(jax.random.key(0), jnp.zeros((1, 4, 4, 5)))
  with pytest.raises(ValueError, match="attention"):
    E.ESSAttn("linear").init(jax.random.key(0), jnp.zeros((1, 4, 8)))
  with pytest.raises(ValueError, match="q, k, v"):
    E.essa_attention(jnp.zeros((4, 3)), jnp.zeros((4, 3)), jnp.zeros((5, 3)))
  with pytest.raises(ValueError, match="state_dict"):
    E.from_torch({"conv.weight": np.zeros((2, 2, 3, 3))})


def test_band_count_mismatching_weights_raises(pack):
  module, variables = models.from_torch("essaformer", pack.state("model_x4"))
  with pytest.raises(ValueError, match="x: expected"):
    module.apply(variables, jnp.zeros((1, 4, 4, module.bands + 1)))
