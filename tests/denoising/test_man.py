"""MAN v2 / v1: parameter counts, recurrent-scan and block maths, parity with official outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.denoising import man
from tests.conftest import load_pack

KEY = jax.random.key(0)


def _count(module, *shapes):
  args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
  return models.param_count(jax.eval_shape(module.init, KEY, *args))


@pytest.mark.parametrize("name, expected", [
    ("man_s", 502_513), ("man", 892_417), ("man_l", 1_393_521), ("man_v1", 823_727),
    ("man_v1_s", 206_751), ("man_v1_m", 463_959), ("man_v1_b", 3_370_095)])
def test_registry_param_counts(name, expected):
  assert models.param_count_of(name) == expected


def test_unused_fusion_flag_and_breakdown():
  assert models.param_count_of("man", count_unused_fusion=False) == 892_417 - 118_912
  shapes = jax.eval_shape(man.MAN().init, KEY, jax.ShapeDtypeStruct((1, 8, 8, 31), jnp.float32))
  per_layer = {k: models.param_count({"params": v}) for k, v in shapes["params"].items()}
  assert per_layer == {
      "head": 2_800, "encoder_0": 9_280, "encoder_1": 23_168, "encoder_2": 36_992,
      "encoder_3": 92_416, "encoder_4": 147_712, "decoder_0": 147_712, "decoder_1": 64_640,
      "decoder_2": 36_992, "decoder_3": 16_192, "decoder_4": 9_280, "fusion_0": 118_912,
      "fusion_1": 118_912, "fusion_2": 29_760, "fusion_3": 29_760, "fusion_4": 7_456,
      "tail": 433}


@pytest.mark.parametrize("c", [4, 16])
def test_unit_formulas(c):
  shape = (1, 5, 4, 4, c)
  assert _count(man.MLP(), shape) == 2 * c * c + 2 * c
  assert _count(man.MHRSA(), shape) == 4 * c * c + 4 * c
  assert _count(man.PSCA(), shape) == 5 * c * c
  assert _count(man.ASC(), shape, shape) == 29 * c * c + 2 * c
  assert _count(man.RecurrentAttention(), shape) == 5 * c * c + 5 * c
  assert _count(man.RecurrentAttention(bidirectional=True), shape) == 7 * c * c + 7 * c


def _loop(z, f, reverse):
  """The official band loop, written out."""
  order = range(z.shape[1] - 1, -1, -1) if reverse else range(z.shape[1])
  h, out = None, np.zeros_like(z)
  for t in order:
    h = (1 - f[:, t]) * z[:, t] if h is None else f[:, t] * h + (1 - f[:, t]) * z[:, t]
    out[:, t] = h
  return out


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_equals_loop(reverse):
  rng = np.random.default_rng(0)
  z = np.tanh(rng.normal(size=(2, 31, 3, 4, 6)))
  f = 1 / (1 + np.exp(-rng.normal(size=z.shape)))
  scan = jax.jit(man.recurrent_scan, static_argnums=2)
  out = scan(jnp.asarray(z, jnp.float32), jnp.asarray(f, jnp.float32), reverse)
  np.testing.assert_allclose(out, _loop(z, f, reverse), atol=1e-6)


def test_scan_constant_gate_closed_form():
  z, f = 0.7, 0.8
  out = jax.jit(man.recurrent_scan)(jnp.full((1, 31, 1, 1, 1), z), jnp.full((1, 31, 1, 1, 1), f))
  t = np.arange(31)
  np.testing.assert_allclose(out[0, :, 0, 0, 0], z * (1 - f ** (t + 1)), atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_gradient_equals_loop_gradient(reverse):
  """The custom adjoint recurrence equals autodiff through a plain loop (float64)."""
  rng = np.random.default_rng(1)
  z, f, w = (rng.normal(size=(2, 7, 3, 2, 4)) for _ in range(3))
  f = 1 / (1 + np.exp(-f))

  def loop(z, f):
    h, out = jnp.zeros_like(z[:, 0]), [None] * z.shape[1]
    for t in (reversed(range(z.shape[1])) if reverse else range(z.shape[1])):
      h = f[:, t] * h + (1 - f[:, t]) * z[:, t]
      out[t] = h
    return jnp.stack(out, 1)

  with jax.enable_x64(True):
    grads = [jax.grad(lambda z, f, fn=fn: jnp.sum(fn(z, f) * w), argnums=(0, 1))(
        jnp.asarray(z), jnp.asarray(f)) for fn in (loop, lambda z, f: man.recurrent_scan(
            z, f, reverse))]
  for ours, want in zip(grads[1], grads[0], strict=True):
    np.testing.assert_allclose(ours, want, rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def features():
  return jnp.asarray(np.random.default_rng(3).normal(size=(2, 9, 3, 4, 6)), jnp.float32)


def test_mhrsa_flip_identity_and_heads(features):
  module = man.MHRSA()
  params = jax.jit(module.init)(KEY, features)
  apply = jax.jit(module.apply, static_argnums=2)
  flip = lambda t: jnp.flip(t, axis=1)
  np.testing.assert_allclose(apply(params, features, True),
                             flip(apply(params, flip(features), False)), atol=1e-6)
  # The first half of the channels scans forwards: the output at band 0 only sees band 0.
  changed = features.at[:, 1:].add(1.0)
  np.testing.assert_allclose(apply(params, changed, False)[:, 0, ..., :3],
                             apply(params, features, False)[:, 0, ..., :3], atol=1e-6)


def test_psca_zero_w3_and_asc(features):
  psca = man.PSCA(zero_init_w3=True)
  params = jax.jit(psca.init)(KEY, features)["params"]
  gelu = lambda t: 0.5 * t * (1.0 + jax.scipy.special.erf(t / np.sqrt(2.0)))
  expected = jax.jit(lambda x: gelu(x @ params["w_1"]["kernel"]) @ params["w_2"]["kernel"])
  np.testing.assert_allclose(jax.jit(psca.apply)({"params": params}, features),
                             expected(features), atol=1e-5)
  asc = man.ASC()
  other = features + 1.0
  variables = jax.jit(asc.init)(KEY, features, other)
  apply = jax.jit(asc.apply)
  np.testing.assert_allclose(apply(variables, features, features), features, atol=1e-6)
  out = apply(variables, features, other)
  lo, hi = jnp.minimum(features, other), jnp.maximum(features, other)
  assert bool(jnp.all((out >= lo - 1e-6) & (out <= hi + 1e-6)))


def test_shapes_and_input_errors():
  model = man.MAN(channels=4)
  variables = jax.eval_shape(model.init, KEY, jax.ShapeDtypeStruct((1, 4, 4, 31), jnp.float32))
  apply = lambda m, shape: jax.eval_shape(
      m.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
  assert apply(model, (2, 32, 48, 31)).shape == (2, 32, 48, 31)
  assert apply(model, (1, 32, 32, 34)).shape == (1, 32, 32, 34)
  with pytest.raises(ValueError, match="divisible by 4"):
    apply(model, (1, 30, 32, 31))
  with pytest.raises(ValueError, match="even width"):
    jax.eval_shape(man.MAN(channels=5).init, KEY, jax.ShapeDtypeStruct((1, 8, 8, 31), jnp.float32))
  with pytest.raises(ValueError, match="not a MAN"):
    models.from_torch("man", load_pack("denoising_parity").state("man_v1_c4"))


@pytest.mark.parametrize("pack, case, name", [
    ("denoising_parity", "man_v2_c4", "man"), ("denoising_parity", "man_v1_c4", "man_v1"),
    ("denoising_parity_man", "man", "man"), ("denoising_parity_man_s", "man_s", "man"),
    ("denoising_parity_man_v1", "man_v1", "man_v1")])
def test_parity_with_official_eval_output(pack, case, name, fast_jit, bands_last):
  ref = load_pack(pack)
  module, variables = models.from_torch(name, ref.state(case))
  assert models.param_count(variables) == {
      "man_v2_c4": 56_305, "man_v1_c4": 52_103, "man": 892_417, "man_s": 502_513,
      "man_v1": 823_727}[case]
  out = fast_jit(module.apply)(variables, bands_last(ref[f"{case}/input"]))
  np.testing.assert_allclose(out, bands_last(ref[f"{case}/output"]), rtol=0, atol=1e-5)
