"""The official NSM evaluation protocol: metrics, chunked test prediction, official test files."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.pde import bases, nsm, problems, protocol
from jspectral.pde.tasks import OperatorTask

# compiled once per shape (eagerly, every primitive would compile on its own)
field_metrics = jax.jit(protocol.field_metrics, static_argnums=0)


def test_field_metrics_are_the_official_formulas_and_the_residual_vanishes_on_a_solution():
  problem = problems.PoissonPeriodic(res=16)
  x = bases.grid("FF", (16, 16))
  source = np.sin(2 * np.pi * x[..., :1]) * np.sin(2 * np.pi * x[..., 1:])   # (16, 16, 1)
  phi = bases.transform(jnp.asarray(source), "FF")
  grid = problems.uniform_grid((65, 65))
  exact = (np.sin(2 * np.pi * grid[..., :1]) * np.sin(2 * np.pi * grid[..., 1:])
           / (8 * np.pi ** 2))
  solved = field_metrics(problem, phi, jnp.asarray(exact), jnp.asarray(exact))
  assert float(solved["errr"]) == 0 and float(solved["erra"]) == 0
  # the 5-point residual of the exact solution is O(h^2), of the zero field it is |s|
  zero = field_metrics(problem, phi, jnp.asarray(exact), jnp.zeros_like(exact))
  assert float(solved["residual"]) < 2e-3 * float(zero["residual"])
  np.testing.assert_allclose(float(zero["residual"]), 4 / np.pi ** 2, rtol=2e-2)
  rng = np.random.default_rng(0)
  u, v = rng.normal(size=(2, 9, 9, 1))
  m = field_metrics(problem, phi, jnp.asarray(u), jnp.asarray(v))
  np.testing.assert_allclose(float(m["erra"]), np.mean(np.abs(u - v)), rtol=1e-6)
  np.testing.assert_allclose(float(m["errr"]), np.linalg.norm(u - v) / np.linalg.norm(u),
                             rtol=1e-6)
  with pytest.raises(ValueError, match="pred"):
    protocol.field_metrics(problem, phi, jnp.asarray(u), jnp.asarray(v[:-1]))


def test_chunked_test_prediction_equals_one_vmap_over_the_whole_set():
  problem = problems.PoissonPeriodic(res=8)
  model = nsm.NSM(problem=problem, hdim=4, depth=1, mode=(7, 7))
  phi = np.asarray(problems.sample(problem, jax.random.PRNGKey(1), (5,)))
  u = np.random.default_rng(1).normal(size=(5, 9, 9, 1)).astype(np.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), phi[0])["params"]
  whole = OperatorTask(model, phi, u, chunk=5)
  chunked = OperatorTask(model, phi, u, chunk=2)   # chunks 2, 2, 1 (padded to 2)
  pred = chunked.predict_test(params)
  np.testing.assert_allclose(pred, whole.predict_test(params), rtol=1e-6, atol=1e-9)
  np.testing.assert_array_equal(chunked.predict_test(params, limit=3), pred[:3])
  a, b = whole.metrics(params), chunked.metrics(params)
  for key in ("errr", "erra", "residual"):
    assert a[key].shape == (5,)
    np.testing.assert_allclose(b[key], a[key], rtol=1e-6)
  assert chunked.evaluate(params, {})["rel_l2_percent"] == pytest.approx(
      100 * float(np.mean(a["errr"])), rel=1e-6)


def test_official_file_names_follow_the_official_pde_strings():
  assert protocol.official_test_files(problems.PoissonPeriodic()) == (
      "s.periodic.npy", "u.periodic.npy")
  assert protocol.official_test_files(problems.PoissonDirichlet()) == (
      "s.dirichlet.npy", "u.dirichlet.npy")
  assert protocol.official_test_files(problems.ReactionDiffusion(nu=0.05)) == (
      "h.npy", "u.rho=5:nu=0.050.npy")
  assert protocol.official_test_files(problems.NavierStokes(T=3.0, nu=1e-4)) == (
      "w.0.8x1.0.npy", "u.Re=8000:T=3:None.npy")
  assert protocol.official_test_files(problems.NavierStokes(T=50.0, nu=2e-3, forced=True)) == (
      "w.0.8x1.0.npy", "u.Re=400:T=50:transient.npy")


def test_official_test_set_loader_reads_truncates_and_names_missing_or_misshapen_files(tmp_path):
  problem = problems.ReactionDiffusion(nu=0.01, res=8)
  with pytest.raises(FileNotFoundError, match="h.npy"):
    protocol.load_official_test_set(problem, tmp_path)
  phi = np.asarray(problems.sample(problem, jax.random.PRNGKey(0), (3,)))
  np.save(tmp_path / "h.npy", phi)
  np.save(tmp_path / "u.rho=5:nu=0.010.npy", np.ones((3, 5, 9, 1)))
  got_phi, got_u = protocol.load_official_test_set(problem, tmp_path, n=2)
  np.testing.assert_array_equal(got_phi, phi[:2])
  assert got_u.shape == (2, 5, 9, 1)
  np.save(tmp_path / "h.npy", phi[:, :, :4])
  with pytest.raises(ValueError, match="h.npy"):
    protocol.load_official_test_set(problem, tmp_path)


def test_nsm_fourier_ablation_is_periodic_in_time_and_limited_to_reaction_diffusion():
  problem = problems.ReactionDiffusion(nu=0.05, res=8)
  phi = problems.sample(problem, jax.random.PRNGKey(0))
  fourier = nsm.NSM(problem=problem, hdim=4, depth=1, mode=(5, 8), fourier=True)

  @jax.jit
  def predict(key):
    return nsm.predict(fourier, fourier.init(key, phi)["params"], phi, (9, 9))

  uf = predict(jax.random.PRNGKey(0))
  np.testing.assert_allclose(uf[0], uf[-1], atol=1e-6)   # Fourier in t: u(1) = u(0)
  np.testing.assert_allclose(uf[0], bases.uniform(phi, "CF", (9, 9))[0], atol=1e-5)   # u(0) = h
  assert float(jnp.max(jnp.abs(uf[4] - uf[0]))) > 1e-5   # not constant in t (scale 1e-3)
  with pytest.raises(ValueError, match="fourier"):
    nsm.NSM(problem=problems.PoissonDirichlet(res=8), hdim=4, depth=1, mode=(5, 5),
            fourier=True).init(jax.random.PRNGKey(0), jnp.zeros((8, 8, 1)))
