# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Hyperspectral pansharpening with jspectral
#
# Degrade a scene with the toolbox's Wald protocol, fuse it with three classical methods, score
# the results with the toolbox's indices, and tune a method by gradient descent through a
# differentiable index.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jspectral.data import wald
from jspectral.metrics import pansharpening as indices
from jspectral.pansharpening import classical
from jspectral.pansharpening import protocol as ps_protocol

# %% [markdown]
# ## A reduced-resolution scene
# A synthetic linear-mixing cube plays the ground truth; its band mean is the PAN; the HS is
# MTF-filtered (gain 0.3 at Nyquist) and decimated by 6; `hs_up` is the toolbox's interpolation.

# %%
scene = wald.synthetic_rr_scene(jax.random.key(0), lr_size=32, bands=4)
gt, pan, hs_lr, hs_up = scene["gt"], scene["pan"], scene["hs_lr"], scene["hs_up"]
print({k: v.shape for k, v in scene.items()})

# %% [markdown]
# ## Fuse with three methods and score (ERGAS, SAM in degrees, Q2n)

# %%
scores = {}
for name in ("EXP", "MTF-GLP-FS", "MTF-GLP-HPM"):
  fused = classical.METHODS[name](hs_lr, pan, 6, hs_up=hs_up)
  scores[name] = {k: round(float(v), 4) for k, v in ps_protocol.evaluation_rr(fused, gt, 6).items()}
print(scores)
assert scores["MTF-GLP-FS"]["ERGAS"] < scores["EXP"]["ERGAS"], "injecting PAN details helps"

# %% [markdown]
# ## Tune a method through a differentiable index
# Blend the interpolated cube with the MTF-GLP-FS details, `fused = exp + a (glp - exp)`, and
# minimise ERGAS over `a` with plain gradient descent: every index is a pure JAX function.

# %%
glp = classical.mtf_glp_fs(hs_lr, pan, 6, hs_up=hs_up)
loss = jax.jit(lambda a: indices.ergas(hs_up + a * (glp - hs_up), gt, 6))
a = jnp.float32(0.0)
for _ in range(30):
  a = a - 0.05 * jax.grad(loss)(a)
print(f"a = {float(a):.3f}: ERGAS {float(loss(0.0)):.3f} (EXP) -> {float(loss(a)):.3f}")
assert loss(a) < loss(0.0), "gradient descent through ERGAS improves on the interpolation"

# %% [markdown]
# ## Look at it
# Three bands of the ground truth, the interpolation and the tuned fusion, and the per-pixel
# absolute error (band mean) of the two estimates on one scale.

# %%
tuned = hs_up + a * (glp - hs_up)
errors = {name: np.abs(np.asarray(est - gt)).mean(-1) for name, est in (("EXP", hs_up),
                                                                        ("tuned", tuned))}
vmax = max(e.max() for e in errors.values())
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, (name, cube) in zip(axes, (("ground truth", gt), ("EXP", hs_up), ("tuned", tuned)),
                            strict=False):
  ax.imshow(np.clip(np.asarray(cube)[..., :3], 0, 1))
  ax.set(title=name, xticks=[], yticks=[])
for ax, (name, error) in zip(axes[3:], errors.items(), strict=True):
  im = ax.imshow(error, cmap="magma", vmin=0, vmax=vmax)
  ax.set(title=f"|error| {name}", xticks=[], yticks=[])
fig.colorbar(im, ax=list(axes[3:]), shrink=0.8)
plt.show()
