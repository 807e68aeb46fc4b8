# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Differentiable spectral PDE solvers and a Neural Spectral Method in a few lines
#
# `jspectral.pde` holds Fourier/Chebyshev bases as pure functions, the PDEs of Neural Spectral
# Methods (Du et al., ICLR 2024), reference solvers that are `jit`-, `vmap`- and `grad`-able, and
# the NSM model with its spectral (Parseval) loss. Sizes here are tiny so that this runs in seconds.

# %%
import tempfile

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jspectral import train
from jspectral.pde import bases, nsm, problems, solvers
from jspectral.pde import tasks as pde_tasks

# %% [markdown]
# ## 1. Bases: coefficients in, exact derivatives out
# A series is a coefficient array plus one letter per axis (`"F"` Fourier, `"C"` Chebyshev).

# %%
x = bases.grid_1d("F", 9)
coef = bases.transform(np.sin(2 * np.pi * x)[:, None], "F")
dcoef = bases.grad(coef, "F")[..., 0]
slope = float(bases.evaluate(dcoef, "F", jnp.zeros((1, 1)))[0, 0])
print("d/dx sin(2 pi x) at 0:", slope, "(exact", 2 * np.pi, ")")
assert abs(slope - 2 * np.pi) < 1e-4, "spectral differentiation is exact for a resolved mode"

# %% [markdown]
# ## 2. Solve a batch of reaction-diffusion problems with `vmap`

# %%
pde = problems.ReactionDiffusion(nu=0.01, res=16)
phi = problems.sample(pde, jax.random.PRNGKey(0), (4,))
u = jax.vmap(lambda p: solvers.reference_solution(pde, p, (17, 17), refine=4))(phi)
print("solutions:", u.shape, "range", float(u.min()), float(u.max()))

# %% [markdown]
# ## 3. Differentiate through the solver: recover the diffusivity of an observation

# %%
xs = jnp.arange(32) / 32
h = 0.5 + 0.3 * jnp.sin(2 * jnp.pi * xs)
observed = solvers.reaction_diffusion(h, 0.02, 5.0, 17)
nu, losses = solvers.recover_diffusivity(h, observed, 0.005, steps=60, learning_rate=0.1)
print(f"recovered nu = {float(nu):.5f} (true 0.02); misfit {float(losses[0]):.2e} -> "
      f"{float(losses[-1]):.2e}")
assert abs(float(nu) - 0.02) < 0.002, "gradient descent through the solver finds nu"

fig, ax = plt.subplots(figsize=(4.5, 3))
ax.semilogy(np.asarray(losses))
ax.set(xlabel="gradient step", ylabel="misfit", title="recovering nu through the solver")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Fit an NSM with the spectral loss (no solution data), evaluate against the solver

# %%
poisson = problems.PoissonPeriodic(res=8)
model = nsm.NSM(problem=poisson, hdim=8, depth=1, mode=(9, 9))
phi_test = problems.sample(poisson, jax.random.PRNGKey(1), (4,))
u_test = jax.vmap(lambda p: solvers.reference_solution(poisson, p, (17, 17)))(phi_test)
task = pde_tasks.OperatorTask(model, np.asarray(phi_test), np.asarray(u_test), pool=64)
config = train.default_config()
config.update(total_steps=30, batch_size=8, log_every=10, checkpoint_every=1000, progress=False)
config.optimizer.learning_rate = 1e-2
with tempfile.TemporaryDirectory() as workdir:
  result = train.fit(task, config, workdir)
train_loss = [r["loss"] for r in result.history if "loss" in r]
print("training loss:", [round(v, 3) for v in train_loss])
print("relative L2 error (%):", result.evals["eval/rel_l2_percent"])
assert train_loss[-1] < train_loss[0], "the spectral (Parseval) residual loss falls"

prediction = task.predict_test(result.params)[0]
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, (name, field) in zip(axes, (("NSM", prediction), ("reference solver", u_test[0]),
                                    ("difference", prediction - u_test[0])), strict=True):
  im = ax.imshow(np.asarray(field).squeeze(), cmap="RdBu_r")
  ax.set(title=name, xticks=[], yticks=[])
  fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()
plt.show()
