"""Bases: closed forms, identities, NumPy cross-checks and the nsm_parity ``basis/*`` cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.pde import bases
from tests.conftest import load_pack

PACK = "nsm_parity"


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def test_fourier_closed_form_n8():
  x = np.arange(8) / 8
  v = 1 + 2 * np.cos(2 * np.pi * x) + 3 * np.sin(4 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x)
  with jax.enable_x64(True):
    coef = bases.transform(v[:, None], "F")[:, 0]
  np.testing.assert_allclose(coef, [1, 2, 0, 0.5, 0, 0, -3, 0], atol=1e-12)


def test_chebyshev_closed_form_x_squared():
  with jax.enable_x64(True):
    x = bases.grid_1d("C", 9)
    coef = bases.transform((x ** 2)[:, None], "C")[:, 0]
  np.testing.assert_allclose(coef, [3 / 8, 1 / 2, 1 / 8, 0, 0, 0, 0, 0, 0], atol=1e-14)


@pytest.mark.parametrize("kinds,modes", [("F", (9,)), ("F", (8,)), ("C", (7,)), ("CF", (5, 6)),
                                         ("CFF", (4, 5, 7))])
def test_inverse_of_transform_is_identity(kinds, modes):
  with jax.enable_x64(True):
    v = np.random.default_rng(0).normal(size=(*modes, 2))
    np.testing.assert_allclose(bases.inverse(bases.transform(v, kinds), kinds), v, atol=1e-12)


def test_fourier_matches_numpy_fft():
  v = np.random.default_rng(1).normal(size=11)
  with jax.enable_x64(True):
    coef = np.asarray(bases.transform(v[:, None], "F")[:, 0])
  c = np.fft.rfft(v) / 11
  np.testing.assert_allclose(coef[:6], np.r_[c[0].real, 2 * c[1:].real], atol=1e-13)
  np.testing.assert_allclose(coef[6:][::-1], 2 * c[1:].imag, atol=1e-13)


def test_chebyshev_matches_numpy_chebfit():
  with jax.enable_x64(True):
    x = bases.grid_1d("C", 10)
    v = np.exp(x) * np.sin(3 * x)
    coef = np.asarray(bases.transform(v[:, None], "C")[:, 0])
  ref = np.polynomial.chebyshev.chebfit(2 * x - 1, v, 9)   # interpolation through 10 points
  np.testing.assert_allclose(coef, ref, atol=1e-12)


def test_grow_then_shrink_is_identity():
  c = np.random.default_rng(2).normal(size=(6, 9, 1))
  with jax.enable_x64(True):
    back = bases.resize(bases.resize(c, "CF", (10, 15)), "CF", (6, 9))
  np.testing.assert_array_equal(back, c)


def test_fourier_derivative_of_sin_cos_odd_n():
  with jax.enable_x64(True):
    x = bases.grid_1d("F", 9)
    f = np.sin(2 * np.pi * 3 * x) + np.cos(2 * np.pi * x)
    df = 6 * np.pi * np.cos(2 * np.pi * 3 * x) - 2 * np.pi * np.sin(2 * np.pi * x)
    d2f = -(6 * np.pi) ** 2 * np.sin(6 * np.pi * x) - (2 * np.pi) ** 2 * np.cos(2 * np.pi * x)
    c = bases.transform(f[:, None], "F")
    np.testing.assert_allclose(bases.inverse(bases.grad(c, "F")[..., 0], "F")[:, 0], df,
                               atol=1e-10)
    np.testing.assert_allclose(bases.inverse(bases.grad(c, "F", 2)[..., 0], "F")[:, 0], d2f,
                               atol=1e-9)
    back = bases.integrate(bases.grad(c, "F")[..., 0], "F")[..., 0]
    np.testing.assert_allclose(back, c.at[0].set(0), atol=1e-12)


def test_fourier_first_derivative_drops_even_nyquist():
  c = np.zeros((8, 1)).astype(np.float32)
  c[4] = 1.0                                    # a_4 cos(8 pi x), the Nyquist cosine of n = 8
  assert float(jnp.abs(bases.grad(c, "F")).max()) == 0.0
  assert float(jnp.abs(bases.grad(c, "F", 2)).max()) > 0.0


def test_chebyshev_derivative_of_T_k_is_2k_U_km1():
  rng = np.random.default_rng(3)
  pts = rng.uniform(0.05, 0.95, size=(7, 1))
  with jax.enable_x64(True):
    for k in (1, 4, 7):
      c = np.zeros((9, 1))
      c[k] = 1.0
      d = bases.evaluate(bases.grad(c, "C")[..., 0], "C", pts)[:, 0]
      y = 2 * pts[:, 0] - 1
      u = np.sin(k * np.arccos(y)) / np.sqrt(1 - y ** 2)      # U_{k-1}(y)
      np.testing.assert_allclose(d, 2 * k * u, rtol=1e-10)


def test_chebyshev_gradient_integrate_pseudo_inverse():
  for n in (3, 8, 13):
    np.testing.assert_allclose(bases.chebyshev_gradient_matrix(n + 1)
                               @ bases.chebyshev_integrate_matrix(n), np.eye(n), atol=1e-13)


def test_band_limited_recovery_and_point_evaluation():
  with jax.enable_x64(True):
    rng = np.random.default_rng(4)
    c = rng.normal(size=(5, 7, 1))
    pts = rng.uniform(size=(11, 2))
    t, x = pts[:, 0], pts[:, 1]
    # direct sum of the CF series at arbitrary points
    cheb = np.cos(np.arange(5) * np.arccos(2 * t[:, None] - 1))
    four = np.asarray(bases._fourier_fn(7, jnp.asarray(x)))
    direct = np.einsum("pi,pj,ij->p", cheb, four, c[..., 0])
    np.testing.assert_allclose(bases.evaluate(c, "CF", pts)[:, 0], direct, atol=1e-12)
    # exact recovery from the samples on a finer grid
    v = bases.inverse(bases.resize(c, "CF", (9, 13)), "CF")
    np.testing.assert_allclose(bases.resize(bases.transform(v, "CF"), "CF", (5, 7)), c, atol=1e-12)


def test_mul_is_exact_pointwise_product():
  with jax.enable_x64(True):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(4, 5, 1)), rng.normal(size=(3, 7, 1))
    pts = rng.uniform(size=(9, 2))
    prod = bases.mul("CF", a, b)
    assert prod.shape == (7, 12, 1)
    np.testing.assert_allclose(bases.evaluate(prod, "CF", pts),
                               bases.evaluate(a, "CF", pts) * bases.evaluate(b, "CF", pts),
                               atol=1e-12)


def test_parseval_fourier_and_chebyshev():
  with jax.enable_x64(True):
    rng = np.random.default_rng(6)
    c = rng.normal(size=(9, 1))
    fine = bases.uniform(c, "F", (4097,))[:-1]
    grid_mean = np.mean(np.asarray(bases.inverse(c, "F")) ** 2)
    exact = c[0, 0] ** 2 + 0.5 * np.sum(c[1:, 0] ** 2)
    np.testing.assert_allclose(np.mean(np.asarray(fine) ** 2), exact, rtol=1e-12)
    np.testing.assert_allclose(grid_mean, exact, rtol=1e-12)
    np.testing.assert_allclose(bases.inner(c, c, "F", weighted=True)[0], exact, rtol=1e-12)
    # Chebyshev: the unweighted sum is NOT the L2 norm; the Gram-weighted one is.
    cc = rng.normal(size=(9, 1))
    x = (np.arange(200000) + 0.5) / 200000
    f = bases.evaluate(cc, "C", x[:, None])[:, 0]
    integral = float(np.mean(np.asarray(f) ** 2))
    np.testing.assert_allclose(bases.inner(cc, cc, "C", weighted=True)[0], integral, rtol=1e-8)
    assert abs(float(bases.inner(cc, cc, "C")[0]) - integral) > 0.1


def test_jit_vmap_grad():
  c = np.random.default_rng(7).normal(size=(3, 6, 5, 1)).astype(np.float32)
  f = jax.jit(jax.vmap(lambda a: bases.inverse(bases.grad(a, "CF")[..., 1], "CF")))
  assert f(c).shape == (3, 6, 5, 1)
  g = jax.grad(lambda a: jnp.sum(bases.inner(a, a, "CF", weighted=True)))(c[0])
  assert g.shape == c[0].shape and bool(jnp.all(jnp.isfinite(g)))


def test_bad_inputs_raise_value_error():
  with pytest.raises(ValueError, match="values"):
    bases.transform(np.zeros((1, 3)), "C")                 # Chebyshev needs >= 2 points
  with pytest.raises(ValueError, match="coef"):
    bases.inverse(np.array([[np.nan], [1.0]]), "F")
  with pytest.raises(ValueError, match="kinds"):
    bases.inverse(np.zeros((4, 1)), "X")
  with pytest.raises(ValueError, match="coefs"):
    bases.add("F", np.zeros((4, 1)), np.zeros((4, 2)))     # mismatched channel/batch shapes
  with pytest.raises(ValueError, match="points"):
    bases.evaluate(np.zeros((4, 4, 1)), "FF", np.zeros((3, 1)))
  with pytest.raises(ValueError, match="b"):
    bases.inner(np.zeros((4, 1)), np.zeros((5, 1)), "F")


@pytest.mark.parametrize("name,kind", [("fourier8", "F"), ("fourier9", "F"), ("chebyshev8", "C"),
                                       ("chebyshev9", "C")])
def test_parity_1d(name, kind):
  pack = load_pack(PACK)
  p = f"basis/{name}/"
  with jax.enable_x64(True):
    v = pack[p + "values"]
    n = v.shape[0]
    c = bases.transform(v, kind)
    got = {"grid": bases.grid(kind, (n,)), "coef": c, "inv": bases.inverse(c, kind),
           "grad1": bases.grad(c, kind), "grad2": bases.grad(c, kind, 2),
           "to_up4": bases.resize(c, kind, (n + 4,)), "to_down3": bases.resize(c, kind, (n - 3,)),
           "uniform10": bases.uniform(c, kind, (10,)),
           "call": bases.evaluate(c, kind, pack[p + "points"])}
    if kind == "C":
      got.update(int1=bases.integrate(c, kind),
                 gradient_matrix=bases.chebyshev_gradient_matrix(n),
                 integrate_matrix=bases.chebyshev_integrate_matrix(n))
    for key, value in got.items():
      ref = pack[p + key]
      if np.linalg.norm(ref) == 0:
        np.testing.assert_allclose(value, ref, atol=1e-14)
      else:
        assert _rel(value, ref) < 1e-10, key


@pytest.mark.parametrize("kinds", ["FF", "CC", "CF", "CFF"])
def test_parity_product(kinds):
  pack = load_pack(PACK)
  p = f"basis/{kinds}/"
  with jax.enable_x64(True):
    v = pack[p + "values"]
    c = bases.transform(v, kinds)
    assert _rel(bases.grid(kinds, v.shape[:len(kinds)]), pack[p + "grid"]) < 1e-12
    assert _rel(c, pack[p + "coef"]) < 1e-10
    assert _rel(bases.inverse(c, kinds), pack[p + "inv"]) < 1e-10
    assert _rel(bases.grad(c, kinds), pack[p + "grad1"]) < 1e-10
    assert _rel(bases.grad(bases.grad(c, kinds), kinds), pack[p + "hessian"]) < 1e-10
    assert _rel(bases.evaluate(c, kinds, pack[p + "points"]), pack[p + "call"]) < 1e-10


def test_parity_cf_ops():
  pack = load_pack(PACK)
  with jax.enable_x64(True):
    a, b = pack["basis/CF_ops/a"], pack["basis/CF_ops/b"]
    assert _rel(bases.mul("CF", a, b), pack["basis/CF_ops/mul"]) < 1e-10
    assert _rel(bases.add("CF", a, b), pack["basis/CF_ops/add"]) < 1e-10
