# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Graph augmentations: edge perturbation vs SPAN
#
# Jian et al. (arXiv 2405.19600) argue that random edge dropping / adding is as good as spectral
# augmentation for contrastive graph SSL, at a fraction of the cost. Here: build a GraphsTuple,
# apply every augmentation of `jspectral.graph.augment`, look at the normalised-adjacency spectrum
# before and after, and run a few GRACE steps.

# %%
import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from jspectral.data import graphs as G
from jspectral.data import synthetic_graphs
from jspectral.graph import augment, encoders, losses

graph, labels = synthetic_graphs.karate_club()
print(graph.nodes.shape, graph.senders.shape, "directed edge entries")

# %% [markdown]
# ## Augmentations (keyed pure functions, static shapes)
# Removed edges keep their slot with weight 0; added edges fill slots reserved beforehand.

# %%
key = jax.random.key(0)
slotted = G.reserve_edge_slots(graph, 0.2)
adj = augment.symmetric_adjacency(graph)
span = jax.jit(functools.partial(augment.span_probabilities, ratio=0.3, iterations=40,
                                 threshold=0.8), static_argnames="kind")
prob_max = span(adj, kind="max", lr=100.0, key=key)
prob_min = span(adj, kind="min", lr=0.1, key=key)
views = {
    "original": graph,
    "drop edges 0.2": augment.drop_edges(key, graph, 0.2),
    "add edges 0.2": augment.add_edges(key, slotted),
    "drop nodes 0.2": augment.drop_nodes(key, graph, 0.2),
    "subgraph (GraphCL)": augment.graphcl_subgraph(key, graph, 0.2, grow=True),
    "SPAN max": augment.dense_to_graph(augment.span_sample(key, adj, prob_max), graph.nodes),
    "SPAN min": augment.dense_to_graph(augment.span_sample(key, adj, prob_min), graph.nodes),
}
live = {name: int(jnp.sum(view.edges["weight"] > 0)) for name, view in views.items()}
for name, count in live.items():
  print(f"{name:20s} live edges {count:4d}")
assert live["drop edges 0.2"] < live["original"] < live["add edges 0.2"]

# %% [markdown]
# ## Spectra before and after
# Eigenvalues of the symmetrised normalised adjacency `D^-1/2 (A + I) D^-1/2` of each view.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, view in views.items():
  eig = np.linalg.eigvalsh(np.asarray(augment.normalized_adjacency(augment.symmetric_adjacency(
      view))))
  ax.plot(np.sort(eig), label=name, lw=2 if name == "original" else 1)
ax.set_xlabel("index")
ax.set_ylabel("eigenvalue")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A few contrastive steps (GRACE)

# %%
model = encoders.GRACE(16, 16)
params = model.init(key, graph)
opt = optax.adam(5e-3)
opt_state = opt.init(params)


@jax.jit
def step(params, opt_state, key):
  k1, k2, k3, k4 = jax.random.split(key, 4)

  def loss_fn(p):
    v1 = augment.drop_edges(k1, graph, 0.2)
    v2 = augment.drop_edges(k2, graph, 0.4)
    v1 = v1._replace(nodes=augment.mask_features(k3, v1.nodes, 0.3))
    v2 = v2._replace(nodes=augment.mask_features(k4, v2.nodes, 0.4))
    return losses.grace_infonce(model.apply(p, v1)[1], model.apply(p, v2)[1], 0.5)

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = opt.update(grads, opt_state)
  return optax.apply_updates(params, updates), opt_state, loss


history = []
for i in range(30):
  params, opt_state, loss = step(params, opt_state, jax.random.fold_in(key, i))
  history.append(float(loss))
  if i % 10 == 0 or i == 29:
    print(f"step {i:2d} loss {history[-1]:.4f}")
assert np.mean(history[-5:]) < np.mean(history[:5]), "InfoNCE falls as the encoder trains"
