"""Problems and reference solvers: closed forms, official parity, jit/vmap/grad, inverse problem."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.pde import bases, problems, solvers
from tests.conftest import load_pack

PACK = "nsm_parity"


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def test_parity_poisson_periodic_solution_and_losses():
  pack = load_pack(PACK)
  case = "poisson_periodic"
  with jax.enable_x64(True):
    s = pack[f"{case}/source_coef"]
    u = solvers.poisson_periodic(s)
    assert _rel(u, pack[f"{case}/u_coef16"]) < 1e-10
    assert _rel(bases.uniform(u, "FF", (64, 64)), pack[f"{case}/u_grid64"]) < 1e-10
    assert _rel(bases.uniform(s, "FF", (64, 64)), pack[f"{case}/source_grid64"]) < 1e-10
    pde = problems.PoissonPeriodic()
    exact = jnp.sum(pde.spectral_residual(s, bases.resize(u, "FF", (31, 31))) ** 2)
    assert float(exact) < 1e-28 and pack[f"{case}/spectral_loss_exact_31modes"] < 1e-28
    zero = jnp.sum(pde.spectral_residual(s, jnp.zeros((31, 31, 1))) ** 2)
    assert _rel(zero, pack[f"{case}/spectral_loss_zero_31modes"]) < 1e-10
    # kept at 16 x 16 modes the source's Nyquist terms cannot be matched (grad drops them)
    assert float(jnp.sum(pde.spectral_residual(s, u) ** 2)) > 1e-6
    fd = jnp.mean(jnp.abs(pde.grid_residual(None, pack[f"{case}/source_grid64"],
                                            bases.uniform(u, "FF", (64, 64)))))
    assert _rel(fd, pack[f"{case}/fd_residual_mean_abs_grid64"]) < 1e-10


def test_parity_spectral_residuals_dirichlet_reaction_navierstokes():
  pack = load_pack(PACK)
  with jax.enable_x64(True):
    r = problems.PoissonDirichlet().spectral_residual(pack["poisson_dirichlet/source_coef"],
                                                      pack["poisson_dirichlet/u_coef12"])
    assert _rel(r, pack["poisson_dirichlet/spectral_residual_coef"]) < 1e-10
    r = problems.ReactionDiffusion(nu=0.01).spectral_residual(pack["reaction/ic_coef"],
                                                              pack["reaction/u_coef"])
    assert r.shape == (12, 18, 1)                       # residual modes = 2 x output modes
    assert _rel(r, pack["reaction/spectral_residual_coef_nu0.01"]) < 1e-10
    r = problems.PROBLEMS["navier_stokes_tf"].spectral_residual(
        pack["navierstokes/ic_coef_small"], pack["navierstokes/u_coef"])
    assert _rel(r, pack["navierstokes/spectral_residual_coef_tf"]) < 1e-10


def test_parity_reaction_solver():
  pack = load_pack(PACK)
  with jax.enable_x64(True):
    x = jnp.arange(128) / 128
    h = bases.evaluate(pack["reaction/ic_coef"], "CF", jnp.stack([0 * x, x], -1))[:, 0]
    u = jax.jit(solvers.reaction_diffusion, static_argnums=(1, 2, 3))(h, 0.01, 5.0, 129)
    assert _rel(u, pack["reaction/solver_nu0.01_rho5_nx128_nt129"]) < 1e-10


def test_parity_navierstokes_solver():
  pack = load_pack(PACK)
  cfg = json.loads(str(pack["navierstokes/solver_config"]))
  with jax.enable_x64(True):
    w0 = bases.inverse(pack["navierstokes/ic_coef"], "FF")
    assert _rel(w0, pack["navierstokes/w0_64"]) < 1e-12
    for name in ("re3", "tf"):
      c = cfg[name]
      f = problems.transient_forcing(64, 64) if c["force"] else None
      w = solvers.navier_stokes(pack["navierstokes/w0_64"], c["T"], c["nu"], c["dt"], c["nt"], f)
      assert _rel(w, pack[f"navierstokes/solver_{name}_64_nt5"]) < 1e-10


def test_taylor_green_decays_exactly():
  with jax.enable_x64(True):
    x = np.arange(32) / 32
    w0 = np.cos(2 * np.pi * x)[:, None] + np.cos(2 * np.pi * x)[None, :]
    w = solvers.navier_stokes(w0, 1.0, 1e-2, 1e-2, 3)
    decay = np.exp(-1e-2 * (2 * np.pi) ** 2 * np.array([0.0, 0.5, 1.0]))
    assert _rel(w, decay[:, None, None] * w0) < 1e-6


def test_poisson_closed_forms():
  with jax.enable_x64(True):
    x = bases.grid_1d("F", 16)
    s = 8 * np.pi ** 2 * (np.sin(2 * np.pi * x)[:, None] * np.cos(2 * np.pi * x)[None, :])
    u = solvers.poisson_periodic(bases.transform(s[..., None], "FF"))
    xs = np.linspace(0, 1, 9)
    exact = np.sin(2 * np.pi * xs)[:, None] * np.cos(2 * np.pi * xs)[None, :]
    assert _rel(bases.uniform(u, "FF", (9, 9))[..., 0], exact) < 1e-10
    g = bases.grid_1d("C", 24)
    src = 2 * np.pi ** 2 * np.sin(np.pi * g)[:, None] * np.sin(np.pi * g)[None, :]
    u = solvers.poisson_dirichlet(bases.transform(src[..., None], "CC"), n=24)
    exact = np.sin(np.pi * xs)[:, None] * np.sin(np.pi * xs)[None, :]
    assert _rel(bases.uniform(u, "CC", (9, 9))[..., 0], exact) < 1e-6


def test_dirichlet_collocation_converges():
  with jax.enable_x64(True):
    s = problems.sample(problems.PoissonDirichlet(), jax.random.PRNGKey(3))
    a = bases.uniform(solvers.poisson_dirichlet(s, 32), "CC", (33, 33))
    b = bases.uniform(solvers.poisson_dirichlet(s, 48), "CC", (33, 33))
    assert _rel(a, b) < 1e-3


def test_reaction_closed_forms():
  with jax.enable_x64(True):
    x = np.arange(64) / 64
    h = 0.3 + 0.2 * np.sin(2 * np.pi * x)
    t = np.linspace(0, 1, 33)[:, None]
    logistic = h * np.exp(5 * t) / (h * np.exp(5 * t) + 1 - h)
    assert _rel(solvers.reaction_diffusion(h, 0.0, 5.0, 33), logistic) < 1e-12
    heat = 0.3 + 0.2 * np.exp(-0.05 * (2 * np.pi) ** 2 * t) * np.sin(2 * np.pi * x)
    assert _rel(solvers.reaction_diffusion(h, 0.05, 0.0, 33), heat) < 1e-12


def test_solvers_vmap_and_grad_match_finite_differences():
  with jax.enable_x64(True):
    x = np.arange(32) / 32
    hs = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * k * x) for k in (1, 2, 3)])
    batch = jax.jit(jax.vmap(lambda h: solvers.reaction_diffusion(h, 0.01, 5.0, 17)))(hs)
    one = solvers.reaction_diffusion(hs[1], 0.01, 5.0, 17)
    np.testing.assert_allclose(batch[1], one, atol=1e-13)

    def functional(nu):
      return jnp.sum(solvers.reaction_diffusion(hs[0], nu, 5.0, 17)[-1] ** 2)

    g = jax.grad(functional)(0.02)
    eps = 1e-6
    fd = (functional(0.02 + eps) - functional(0.02 - eps)) / (2 * eps)
    assert abs(float(g) - float(fd)) < 1e-6 * abs(float(fd))

    w0 = np.cos(2 * np.pi * x)[:, None] * np.sin(4 * np.pi * x)[None, :] + 0.3 * np.sin(
        2 * np.pi * x)[None, :]

    def vort(nu):
      return jnp.sum(solvers.navier_stokes(w0, 0.2, nu, 0.05, 2)[-1] ** 2)

    g = jax.grad(vort)(0.01)
    fd = (vort(0.01 + eps) - vort(0.01 - eps)) / (2 * eps)
    assert abs(float(g) - float(fd)) < 1e-5 * abs(float(fd))


def test_inverse_problem_recovers_diffusivity():
  with jax.enable_x64(True):
    x = np.arange(32) / 32
    h = 0.5 + 0.3 * np.sin(2 * np.pi * x) + 0.1 * np.cos(6 * np.pi * x)
    observed = solvers.reaction_diffusion(h, 0.03, 5.0, 17)
    nu, losses = solvers.recover_diffusivity(h, observed, 0.005, steps=150, learning_rate=0.1)
    assert abs(float(nu) - 0.03) < 1e-3 * 0.03
    assert float(losses[-1]) < 1e-6 * float(losses[0])


def test_gp_priors_have_the_kernel_covariance():
  pde = problems.PoissonDirichlet(res=4)
  with jax.enable_x64(True):
    x = problems.gp_sample(jax.random.PRNGKey(0), "per", "FF", (4, 4), 0.5, (20000,), jnp.float64)
  pts = bases.grid("FF", (4, 4)).reshape(-1, 2)
  cov = np.cov(np.asarray(x).reshape(20000, -1).T)
  ref = problems.periodic_kernel(0.5)(pts[:, None] - pts[None])
  assert np.abs(cov - ref).max() < 0.05
  phi = problems.sample(pde, jax.random.PRNGKey(1), (3,))
  assert phi.shape == (3, 4, 4, 1)
  rd = problems.sample(problems.ReactionDiffusion(res=16), jax.random.PRNGKey(2), (2,))
  values = jax.vmap(lambda c: bases.inverse(c, "CF"))(rd)
  assert rd.shape == (2, 2, 16, 1)
  np.testing.assert_allclose(values.min(axis=(1, 2, 3)), 0, atol=1e-6)
  np.testing.assert_allclose(values.max(axis=(1, 2, 3)), 1, atol=1e-6)


def test_bad_inputs_raise_value_error():
  with pytest.raises(ValueError, match="h"):
    solvers.reaction_diffusion(np.array([0.1, np.inf]), 0.01, 5.0, 3)
  with pytest.raises(ValueError, match="w0"):
    solvers.navier_stokes(np.zeros((4, 5)), 1.0, 0.01, 0.1, 2)
  with pytest.raises(ValueError, match="forcing"):
    solvers.navier_stokes(np.zeros((4, 4)), 1.0, 0.01, 0.1, 2, np.zeros((5, 5)))
  with pytest.raises(ValueError, match="phi"):
    problems.PoissonPeriodic().spectral_residual(np.zeros((8, 8, 1)), np.zeros((9, 9, 1)))
  with pytest.raises(ValueError, match="name"):
    problems.get("heat")


def test_reaction_diffusion_refuses_negative_diffusion():
  with pytest.raises(ValueError, match="nu: expected a diffusion coefficient >= 0"):
    solvers.reaction_diffusion(np.zeros(8), -0.01, 5.0, 9)


@pytest.mark.parametrize("solve, make", [
    (solvers.poisson_periodic, lambda rng: rng.integers(-3, 4, (6, 6, 1))),
    (lambda h: solvers.reaction_diffusion(h, 0.01, 5.0, 9), lambda rng: rng.integers(0, 2, 16)),
])
def test_integer_input_solves_as_its_float_copy_and_nan_is_named(solve, make):
  data = make(np.random.default_rng(0))
  np.testing.assert_allclose(solve(data), solve(data.astype(np.float32)), rtol=1e-6)
  bad = data.astype(np.float32)
  bad.flat[0] = np.nan
  with pytest.raises(ValueError, match="contains NaN or Inf"):
    solve(bad)
