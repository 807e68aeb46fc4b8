# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Spectral transformation of embeddings: whitening, power laws and IterNorm
#
# Weng et al., "Modulate Your Spectrum in Self-Supervised Learning" (ICLR 2024). A spectral
# transformation (ST) maps the covariance eigenvalues of a batch of embeddings `lam -> lam g(lam)^2`
# and keeps the eigenvectors. Whitening flattens the spectrum; IterNorm (T Newton steps) only
# partly flattens it, and INTL's trace loss pushes the *input* spectrum towards equal eigenvalues.

# %%
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from jspectral.ssl import spectral_transform as st

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# A batch of N=256 embeddings of width D=32 with a decaying (nearly collapsed) spectrum.
key = jax.random.key(0)
z = jax.random.normal(key, (256, 32)) * jnp.geomspace(1.0, 0.01, 32)
whiten = "features"  # D x D covariance, as in the paper's figures
lam = st.covariance_spectrum(z, whiten)
print("input effective rank:", float(st.effective_rank(lam)))

# %% [markdown]
# ## The ST family applied to one batch
# Output spectra: power-law `g = lam^-p` gives `lam^(1-2p)`; IterNorm gives `x f_T(x)^2` of the
# trace-normalised eigenvalues `x`, known in closed form.

# %%
transforms = {
    "none (p=0)": st.power_transform(z, 0.0, whiten),
    "power p=0.25": st.power_transform(z, 0.25, whiten),
    "ZCA whitening (p=0.5)": st.zca_whitening(z, whiten),
    "IterNorm T=4": st.iternorm(z, 4, whiten),
    "IterNorm T=10": st.iternorm(z, 10, whiten),
}
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, out in transforms.items():
  spectrum = st.covariance_spectrum(out, whiten)
  rank = float(st.effective_rank(spectrum))
  ax.semilogy(np.asarray(spectrum), label=f"{name} (eff. rank {rank:.1f})")
ax.set(xlabel="eigenvalue index", ylabel="eigenvalue", title="output spectra")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig("st_spectra.png", dpi=100)

# The closed form: IterNorm's output spectrum is x f_T(x)^2 of the normalised input spectrum.
closed = np.sort(np.asarray(st.iternorm_spectrum_map(lam / lam.sum(), 4)))[::-1]
measured = np.asarray(st.covariance_spectrum(transforms["IterNorm T=4"], whiten))
print("closed-form max error:", float(np.abs(closed - measured).max()))
assert np.abs(closed - measured).max() < 1e-4 * measured.max(), "IterNorm's closed form"
zca_rank = float(st.effective_rank(st.covariance_spectrum(transforms["ZCA whitening (p=0.5)"],
                                                          whiten)))
assert zca_rank > 0.99 * z.shape[1], "ZCA whitening equalises every eigenvalue"

# %% [markdown]
# ## The eigenvalue maps
# Small eigenvalues are amplified only by about `1.5^(2T)` per IterNorm: an incomplete whitening.

# %%
x = jnp.geomspace(1e-5, 1.0, 200)
fig, ax = plt.subplots(figsize=(5, 3.2))
for t in (1, 2, 4, 8):
  ax.loglog(x, st.iternorm_spectrum_map(x, t), label=f"T={t}")
ax.loglog(x, x, "k--", label="identity")
ax.set(xlabel="x = lam / tr", ylabel="output eigenvalue", title="IterNorm map x f_T(x)^2")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig("iternorm_map.png", dpi=100)

# %% [markdown]
# ## Gradients flow through the Newton iterations
# The INTL objective on two noisy views; one gradient step on the embeddings themselves raises
# their effective rank (the trace loss modulates the spectrum towards equal eigenvalues).

# %%
views = [z + 0.05 * jax.random.normal(k, z.shape) for k in jax.random.split(key, 2)]
loss_and_grad = jax.jit(jax.value_and_grad(
    lambda v: st.intl_loss(v, beta=0.05, iterations=4, whiten="samples")[0]))
rank = [float(st.effective_rank(st.covariance_spectrum(views[0], whiten)))]
for _ in range(30):
  loss, grads = loss_and_grad(views)
  views = [v - 2.0 * g for v, g in zip(views, grads, strict=True)]
  rank.append(float(st.effective_rank(st.covariance_spectrum(views[0], whiten))))
print(f"INTL loss {float(loss):.3f}; effective rank {rank[0]:.2f} -> {rank[-1]:.2f}")
assert rank[-1] > rank[0] + 1, "the trace loss raises the effective rank"
