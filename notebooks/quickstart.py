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

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jspectral import metrics, models, train
from jspectral.data import figures, synthetic

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
# `fit` owns the mesh, jit, optimizer, checkpoints, resume and logging. The task here: denoise
# cubes of one scene family (six shared endmember spectra, new abundances per cube). Under the
# linear mixing model every clean spectrum lies in a 6-dimensional subspace, so a per-pixel rank-8
# bottleneck learns to project the noise away: expect about +10 dB in a few hundred steps.

# %%
spectra = synthetic.endmember_spectra(jax.random.PRNGKey(7), 6, 31)
maps = jax.vmap(lambda k: synthetic.abundance_maps(k, 32, 32, 6, 8.0))(
    jax.random.split(jax.random.PRNGKey(3), 33))
train_cubes, clean = np.asarray(maps[:-1] @ spectra), maps[-1] @ spectra
noisy = clean + 0.1 * jax.random.normal(jax.random.PRNGKey(2), clean.shape)


class SpectralBottleneck(nn.Module):
  """Per-pixel ``mean + B A (x - mean)`` with ``A: C -> rank``: a learned spectral projection."""

  rank: int = 8

  @nn.compact
  def __call__(self, x):
    mean = self.param("mean", nn.initializers.constant(0.5), (x.shape[-1],))
    return mean + nn.Dense(x.shape[-1])(nn.Dense(self.rank)(x - mean))


denoiser = SpectralBottleneck()


class Denoise:
  def train_source(self):
    return [{"clean": c} for c in train_cubes]

  def init(self, rng, batch):
    return denoiser.init(rng, batch["clean"])["params"], {}

  def loss(self, params, state, batch, rng):
    clean = batch["clean"]
    noisy = clean + 0.1 * jax.random.normal(rng, clean.shape)
    return jnp.mean((denoiser.apply({"params": params}, noisy) - clean) ** 2), {}

  def evaluate(self, params, state):
    return {"psnr": float(metrics.psnr(denoiser.apply({"params": params}, noisy), clean))}


config = train.default_config()
config.update(total_steps=200, batch_size=8, log_every=10, eval_every=25, progress=False)
config.optimizer.learning_rate = 1e-2
result = train.fit(Denoise(), config, tempfile.mkdtemp())
noisy_psnr = float(metrics.psnr(noisy, clean))
denoised = denoiser.apply({"params": result.params}, noisy)
print(f"noisy {noisy_psnr:.2f} dB -> denoised {result.evals['eval/psnr']:.2f} dB")
assert result.evals["eval/psnr"] > noisy_psnr + 5, "the bottleneck should gain well over 5 dB"

# %% [markdown]
# PSNR on the held-out cube during training, and three bands of it shown on one common scale.

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
steps = [(r["step"], r["eval/psnr"]) for r in result.history if "eval/psnr" in r]
axes[0].plot(*zip(*steps, strict=True), "o-", label="denoised")
axes[0].axhline(noisy_psnr, color="grey", ls="--", label="noisy input")
axes[0].set(xlabel="step", ylabel="PSNR (dB)", title="held-out cube")
axes[0].legend()
for ax, (name, cube) in zip(axes[1:], (("noisy", noisy), ("denoised", denoised),
                                        ("clean", clean)), strict=True):
  ax.imshow(np.clip(np.asarray(cube)[..., list(figures.default_bands(31))], 0, 1))  # one scale
  ax.set(title=name, xticks=[], yticks=[])
fig.tight_layout()
fig.savefig("quickstart.png", dpi=100)
plt.show()
