"""Spectral transformations, IterNorm, trace loss and the INTL objective (intl_parity pack)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.ssl import spectral_transform as st
from tests.conftest import load_pack

PACK = load_pack("intl_parity")


def _gaussian(seed, n, d, spread=1.0):
  """Embeddings with a spread-out spectrum (columns scaled geometrically)."""
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)) * np.geomspace(1.0, spread, d)


@pytest.mark.parametrize("case, whiten, iterations", [
    ("iternorm_axis0_T4", "samples", 4), ("iternorm_axis1_T6", "features", 6)])
def test_iternorm_parity(case, whiten, iterations):
  x = PACK[f"{case}/input"]
  assert PACK.config(case)["iterations"] == iterations
  with jax.enable_x64(True):
    out = st.iternorm(jnp.asarray(x), iterations, whiten)
    np.testing.assert_allclose(out, PACK[f"{case}/output"], atol=1e-10)
  out32 = st.iternorm(jnp.asarray(x, jnp.float32), iterations, whiten)
  assert out32.dtype == jnp.float32
  np.testing.assert_allclose(out32, PACK[f"{case}/output"], atol=5e-6)
  # Two float32 round-off paths (official and ours) against each other: the 1e-5.
  np.testing.assert_allclose(out32, PACK[f"{case}/output_float32"], atol=1e-5)


@pytest.mark.parametrize("case, whiten, views", [
    ("loss_axis0_views2", "samples", 2), ("loss_axis1_views3", "features", 3)])
def test_intl_loss_parity(case, whiten, views):
  config = PACK.config(case)
  inputs = [PACK[f"{case}/input_view{i}"] for i in range(views)]
  # beta = None must reproduce the official trade-off of this shape.
  assert st.trade_off(config["bs"], config["emb"], whiten) == pytest.approx(config["beta"])

  def loss(*v):
    return st.intl_loss(v, None, config["iters"], whiten)

  with jax.enable_x64(True):
    (value, aux), grads = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(views)),
                                                  has_aux=True))(
        *map(jnp.asarray, inputs))
    np.testing.assert_allclose(value, PACK[f"{case}/loss"], rtol=1e-9)
    np.testing.assert_allclose(aux["trace_losses"], PACK[f"{case}/trace_losses"], rtol=1e-9)
    np.testing.assert_allclose(aux["norm_mse"], PACK[f"{case}/norm_mse"], rtol=1e-9)
    for i in range(views):
      ref = PACK[f"{case}/grad_view{i}"]
      np.testing.assert_allclose(grads[i], ref, atol=1e-9 * np.abs(ref).max())
  value32, _ = loss(*(jnp.asarray(v, jnp.float32) for v in inputs))
  np.testing.assert_allclose(value32, PACK[f"{case}/loss"], rtol=1e-5)


def test_intl_momentum_loss_parity():
  case = "loss_momentum_axis0"
  with jax.enable_x64(True):
    key = jnp.asarray(PACK[f"{case}/input_key"])
    queries = [jnp.asarray(PACK[f"{case}/input_query{i}"]) for i in range(2)]
    def loss(k, q0, q1):
      return st.intl_momentum_loss(k, [q0, q1], 0.02)[0]

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(key, *queries)
    np.testing.assert_allclose(value, PACK[f"{case}/loss"], rtol=1e-9)
    assert float(jnp.abs(grads[0]).max()) == 0.0  # the key is a stop-gradient branch
    for i in range(2):
      ref = PACK[f"{case}/grad_query{i}"]
      np.testing.assert_allclose(grads[i + 1], ref, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("whiten, shape", [("samples", (12, 40)), ("features", (40, 12))])
@pytest.mark.parametrize("iterations", [1, 4, 7])
def test_iternorm_output_spectrum_is_closed_form_map(whiten, shape, iterations):
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(0, *shape, spread=0.2))
    lam = st.covariance_spectrum(z, whiten)
    out = st.covariance_spectrum(st.iternorm(z, iterations, whiten), whiten)
    expected = np.sort(np.asarray(st.iternorm_spectrum_map(lam / lam.sum(), iterations)))[::-1]
    np.testing.assert_allclose(out, expected, atol=1e-10)
    # Incomplete whitening: every output eigenvalue is at most 1, small ones stay small.
    assert np.all(np.asarray(out) <= 1 + 1e-12) and float(out[-1]) < 0.99


def test_spectrum_map_properties():
  x = np.linspace(0.0, 1.0, 101)
  for t in (1, 2, 4, 10):
    y = np.asarray(st.iternorm_spectrum_map(x, t))  # NumPy float64 in, float64 out
    assert np.all(np.diff(y) >= -1e-12) and y[-1] == pytest.approx(1.0) and y[0] == 0.0
  np.testing.assert_allclose(st.iternorm_spectrum_map(x, 1), x * (1.5 - 0.5 * x) ** 2, atol=1e-12)
  # T -> infinity whitens: x f_T(x)^2 -> 1 for every x > 0.
  np.testing.assert_allclose(st.iternorm_spectrum_map(np.asarray([0.05, 0.3, 0.9]), 60), 1.0,
                             atol=1e-10)


@pytest.mark.parametrize("whiten", ["samples", "features"])
def test_iternorm_invariances(whiten):
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(1, 10, 16))
    out = st.iternorm(z, 4, whiten)
    np.testing.assert_allclose(st.iternorm(3.7 * z, 4, whiten), out, atol=1e-10)  # scale
    shift = (jnp.arange(10.0)[:, None] if whiten == "samples" else jnp.arange(16.0)[None, :])
    np.testing.assert_allclose(st.iternorm(z + shift, 4, whiten), out, atol=1e-10)  # shift
    # Centred output along the observation axis.
    np.testing.assert_allclose(jnp.mean(out, axis=1 if whiten == "samples" else 0), 0, atol=1e-12)
    if whiten == "samples":  # permutation equivariance over samples
      perm = np.random.default_rng(2).permutation(10)
      np.testing.assert_allclose(st.iternorm(z[perm], 4, whiten), out[perm], atol=1e-10)
    else:  # rotation equivariance over features
      r, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(16, 16)))
      np.testing.assert_allclose(st.iternorm(z @ r, 4, whiten), out @ r, atol=1e-10)


def test_iternorm_many_iterations_whitens_full_rank():
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(4, 8, 64))  # N <= D - 1: full-rank N x N Gram
    out = st.iternorm(z, 40, "samples")
    mc = out - out.mean(1, keepdims=True)
    np.testing.assert_allclose(mc @ mc.T / 63, np.eye(8), atol=1e-8)
    assert float(st.trace_loss(out, "samples")) < 1e-12


def test_iternorm_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(5, 6, 9))
    w = jnp.asarray(np.random.default_rng(6).normal(size=(6, 9)))

    def f(v):
      t = st.iternorm(v, 4, "samples")
      return jnp.sum(w * t) + st.trace_loss(t)

    grad = np.asarray(jax.jit(jax.grad(f))(z))
    eps = 1e-6
    steps = eps * np.eye(z.size).reshape(-1, *z.shape)
    numeric = (jax.jit(jax.vmap(f))(z + steps) - jax.jit(jax.vmap(f))(z - steps)) / (2 * eps)
    numeric = np.asarray(numeric).reshape(z.shape)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("whiten", ["samples", "features"])
def test_power_transform_spectrum_and_whitening(whiten):
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(7, 8, 20) if whiten == "samples" else _gaussian(7, 20, 8, 0.1))
    lam = np.asarray(st.covariance_spectrum(z, whiten))
    for p in (0.0, 0.25, 0.5):
      out = st.power_transform(z, p, whiten, eps=1e-12)
      np.testing.assert_allclose(st.covariance_spectrum(out, whiten), lam ** (1 - 2 * p),
                                 rtol=1e-8)
    white = st.zca_whitening(z, whiten, eps=1e-12)
    np.testing.assert_allclose(st.covariance_spectrum(white, whiten), 1.0, atol=1e-8)
    # ZCA is the symmetric whitening: closest to the input among whitenings (Phi symmetric).
    np.testing.assert_allclose(white, st.spectral_transform(z, lambda v: v ** -0.5, whiten),
                               atol=1e-10)


def test_group_wise_iternorm_whitens_each_group_separately():
  with jax.enable_x64(True):
    z = jnp.asarray(_gaussian(8, 30, 12))
    out = st.iternorm(z, 5, "features", group_size=4)
    for g in range(3):
      np.testing.assert_allclose(out[:, 4 * g:4 * g + 4],
                                 st.iternorm(z[:, 4 * g:4 * g + 4], 5, "features"), atol=1e-12)
    out = st.iternorm(z, 5, "samples", group_size=6)
    np.testing.assert_allclose(out[:, 6:], st.iternorm(z[:, 6:], 5, "samples"), atol=1e-12)


def test_trade_off_table():
  assert [round(st.trade_off(bs, 2048), 6) for bs in (64, 128, 256, 512, 1024)] == [
      0.03, 0.04, 0.05, 0.06, 0.07]
  assert [round(st.trade_off(256, emb, "features"), 6) for emb in (512, 2048, 8192)] == [
      0.06, 0.08, 0.1]


def test_effective_rank():
  assert float(st.effective_rank(jnp.ones(7))) == pytest.approx(7.0, rel=1e-6)
  assert float(st.effective_rank(jnp.asarray([3.0, 0.0, 0.0]))) == pytest.approx(1.0)


@pytest.mark.parametrize("z, message", [
    (np.ones((1, 8)), "N >= 2"),
    (np.ones((8,)), r"\(N, D\)"),
    (np.full((4, 8), np.nan), "NaN or Inf"),
    (np.ones((4, 8), np.int32), "float"),
])
def test_bad_embeddings_raise(z, message):
  with pytest.raises(ValueError, match=f"z: .*{message}"):
    st.iternorm(z)


def test_bad_options_raise():
  z = np.ones((4, 8), np.float32) + np.arange(8)
  with pytest.raises(ValueError, match="group_size"):
    st.iternorm(z, group_size=3)
  with pytest.raises(ValueError, match="whiten"):
    st.iternorm(z, whiten="channels")
  with pytest.raises(ValueError, match="views"):
    st.intl_loss([z])
  with pytest.raises(ValueError, match="same"):
    st.intl_loss([z, z[:3]])
  with pytest.raises(ValueError, match=r"views\[1\]"):
    st.intl_loss([z, z[:1]])
  with pytest.raises(ValueError, match="a, b"):
    st.normalized_mse(z, z[:2])


def test_normalized_mse_range_and_power_st_loss():
  with jax.enable_x64(True):
    a = jnp.asarray(_gaussian(9, 6, 10))
    assert float(st.normalized_mse(a, a)) == pytest.approx(0.0, abs=1e-12)
    assert float(st.normalized_mse(a, -a)) == pytest.approx(4.0)
    b = jnp.asarray(_gaussian(10, 6, 10))
    # p = 0: plain alignment of the per-sample-centred embeddings.
    centred = [v - v.mean(1, keepdims=True) for v in (a, b)]
    loss, aux = st.power_st_loss([a, b], power=0.0)
    assert float(loss) == pytest.approx(float(st.normalized_mse(centred[1], centred[0])))
    grads = jax.grad(lambda v: st.power_st_loss([v, b], power=0.5)[0])(a)
    assert np.all(np.isfinite(grads)) and aux["trace_losses"].shape == (2,)
