# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # jspectral quickstart
#
# A model from the registry, a quality index, and a few training steps through `jspectral.train`.
# Everything is a pure function or a Flax module: compose them as you like.

# %%
import tempfile

import jax
import jax.numpy as jnp

from jspectral import metrics, models, train
from jspectral.data import synthetic

print(models.names())

# %% [markdown]
# ## A model from the registry
# `param_count_of` uses `jax.eval_shape`: even billion-parameter defaults are counted without
# allocating them.

# %%
module, variables = models.init("residual_convnet", jax.random.PRNGKey(0), features=16)
print(f"{models.param_count(variables):,} parameters")

# %% [markdown]
# ## A metric
# Synthetic cubes follow the linear mixing model; add noise and score it.

# %%
clean = synthetic.hyperspectral_cube(jax.random.PRNGKey(1), 32, 32, 31)
noisy = clean + 0.1 * jax.random.normal(jax.random.PRNGKey(2), clean.shape)
print(f"PSNR {metrics.psnr(noisy, clean):.2f} dB, SSIM {metrics.ssim(noisy, clean):.3f}, "
      f"SAM {metrics.sam(noisy, clean):.2f} deg")

# %% [markdown]
# ## Training: a task is four functions
# `fit` owns the mesh, jit, optimizer, checkpoints, resume and logging.

# %%
cubes = jax.vmap(lambda k: synthetic.hyperspectral_cube(k, 16, 16, 31))(
    jax.random.split(jax.random.PRNGKey(3), 16))


class Denoise:
  def train_source(self):
    return [{"clean": c} for c in jax.device_get(cubes)]

  def init(self, rng, batch):
    return module.init(rng, batch["clean"])["params"], {}

  def loss(self, params, state, batch, rng):
    clean = batch["clean"]
    noisy = clean + 0.1 * jax.random.normal(rng, clean.shape)
    return jnp.mean((module.apply({"params": params}, noisy) - clean) ** 2), {}

  def evaluate(self, params, state):
    return {"psnr": float(metrics.psnr(module.apply({"params": params}, noisy[None]),
                                       clean[None])[0])}


config = train.default_config()
config.update(total_steps=20, batch_size=4, log_every=5, progress=False)
result = train.fit(Denoise(), config, tempfile.mkdtemp())
print([round(r["loss"], 5) for r in result.history if "loss" in r], result.evals)
