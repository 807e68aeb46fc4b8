"""Graph augmentations as keyed pure functions on GraphsTuples (jit-able, vmap-able over keys).

Shapes never change: removing an edge sets its ``edges["weight"]`` to 0, adding an edge fills a
slot reserved by :func:`jspectral.data.graphs.reserve_edge_slots`, removing a node removes its
edges (the node row stays, as in the official code). Sources (spec graph_ssl.md section 3):

* :func:`drop_edges` -- GRACE ``dropout_adj`` / PyGCL ``EdgeRemoving``: one Bernoulli per directed
  entry (views become asymmetric).
* :func:`add_edges` -- PyGCL ``EdgeAdding``; fixed by default (uniform non-edges inside each graph,
  mirrored, no self-loops or duplicates), ``pyg_compat=True`` reproduces PyGCL's quirks.
* :func:`mask_features` -- GRACE ``drop_feature`` (one Bernoulli per feature column).
* :func:`drop_nodes` -- PyGCL ``NodeDropping``; :func:`graphcl_drop_nodes`,
  :func:`graphcl_subgraph`, :func:`graphcl_mask_nodes` -- GraphCL ``unsupervised_TU/aug.py``.
* :func:`span_probabilities` / :func:`span_sample` -- SPAN (Lin et al., "Spectral Augmentation for
  Self-Supervised Learning on Graphs", ICLR 2023, github.com/Louise-LuLin/GCL-SPAN
  ``Augmentor.SpectralAugmentor``): the perturbation-probability matrix maximising / minimising
  the spectral norm of the normalised adjacency, by projected gradient ascent under an edge budget,
  then Bernoulli sampling. :func:`span_support` / :func:`span_probabilities_sparse` /
  :func:`span_sample_sparse` solve the same problem on a bounded set of node pairs (every edge
  plus random non-edges), ``O(E + P)`` memory instead of ``O(N^2)``.
* :func:`ppr_diffusion` / :func:`sparsify_diffusion` / :func:`ppr_graph` -- MVGRL's personalised-
  PageRank diffusion view as PyGCL ``PPRDiffusion`` computes it (self loops added, symmetric
  normalisation, exact inverse, threshold ``eps`` or top-k, re-normalised).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from jspectral.data import graphs as G


def _check_prob(p, name="p"):
  if not isinstance(p, jax.core.Tracer) and not 0.0 <= float(p) <= 1.0:
    raise ValueError(f"{name}: expected a probability in [0, 1], got {p}")


def _with_weight(graph: jraph.GraphsTuple, weight: jax.Array) -> jraph.GraphsTuple:
  return graph._replace(edges={**graph.edges, "weight": weight})


def drop_edges(key: jax.Array, graph: jraph.GraphsTuple, p: float) -> jraph.GraphsTuple:
  """Removes each stored (directed) edge independently with probability ``p``.

  Args:
    key: PRNG key.
    graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.
    p: drop probability in ``[0, 1]``.

  Returns:
    The graph with dropped edges' weight set to 0 (shapes unchanged).

  Raises:
    ValueError: if ``p`` is outside ``[0, 1]``.
  """
  _check_prob(p)
  keep = jax.random.bernoulli(key, 1.0 - p, graph.senders.shape)
  return _with_weight(graph, graph.edges["weight"] * keep)


def mask_features(key: jax.Array, x: jax.Array, p: float) -> jax.Array:
  """Zeroes each feature column (shared by all nodes) with probability ``p``.

  Args:
    key: PRNG key.
    x: node features, ``(N, F)``.
    p: mask probability in ``[0, 1]``.

  Returns:
    Masked features, ``(N, F)``.

  Raises:
    ValueError: if ``p`` is outside ``[0, 1]`` or ``x`` is not 2-D.
  """
  _check_prob(p)
  x = jnp.asarray(x)
  if x.ndim != 2:
    raise ValueError(f"x: expected node features (N, F), got shape {x.shape}")
  return x * ~jax.random.bernoulli(key, p, (x.shape[1],))


def drop_nodes(key: jax.Array, graph: jraph.GraphsTuple, p: float) -> jraph.GraphsTuple:
  """PyGCL ``NodeDropping``: each node survives with prob ``1 - p``; edges of dropped nodes go.

  Args:
    key: PRNG key.
    graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.
    p: drop probability in ``[0, 1]``.

  Returns:
    The graph with the dropped nodes' edges at weight 0 (node rows stay).

  Raises:
    ValueError: if ``p`` is outside ``[0, 1]``.
  """
  _check_prob(p)
  keep = jax.random.bernoulli(key, 1.0 - p, (graph.nodes.shape[0],))
  return _with_weight(graph, graph.edges["weight"] * keep[graph.senders] * keep[graph.receivers])


def _rank_within_graph(key, graph):
  """A uniformly random rank ``0..n_g-1`` of each node inside its graph."""
  segments = G.node_graph_index(graph)
  order = jnp.argsort(segments + jax.random.uniform(key, segments.shape, maxval=0.999))
  position = jnp.zeros_like(segments).at[order].set(jnp.arange(segments.shape[0]))
  return position - G.node_offsets(graph)[segments], segments


def graphcl_drop_nodes(key: jax.Array, graph: jraph.GraphsTuple,
                       ratio: float = 0.1) -> jraph.GraphsTuple:
  """GraphCL ``dnodes``: ``int(n_g * ratio)`` nodes per graph lose their edges.

  Nodes are drawn without replacement; they themselves stay
  (and still enter the sum-pool readout, as officially).

  Args:
    key: PRNG key.
    graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``; may batch graphs.
    ratio: fraction of each graph's nodes to drop.

  Returns:
    The graph with the dropped nodes' edges at weight 0.
  """
  _check_prob(ratio, "ratio")
  rank, segments = _rank_within_graph(key, graph)
  dropped = rank < jnp.floor(graph.n_node[segments] * ratio)
  keep = ~dropped
  return _with_weight(graph, graph.edges["weight"] * keep[graph.senders] * keep[graph.receivers])


def graphcl_mask_nodes(key: jax.Array, graph: jraph.GraphsTuple,
                       ratio: float = 0.1) -> jraph.GraphsTuple:
  """GraphCL ``mask_nodes``: ``int(n_g * ratio)`` nodes per graph get N(0.5, 0.5^2) features.

  Args:
    key: PRNG key.
    graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``; may batch graphs.
    ratio: fraction of each graph's nodes to mask.

  Returns:
    The graph with the chosen node rows replaced by noise, nodes ``(N, F)``.
  """
  _check_prob(ratio, "ratio")
  k_rank, k_noise = jax.random.split(key)
  rank, segments = _rank_within_graph(k_rank, graph)
  chosen = rank < jnp.floor(graph.n_node[segments] * ratio)
  noise = 0.5 + 0.5 * jax.random.normal(k_noise, graph.nodes.shape, graph.nodes.dtype)
  return graph._replace(nodes=jnp.where(chosen[:, None], noise, graph.nodes))


def graphcl_subgraph(key: jax.Array, graph: jraph.GraphsTuple, ratio: float = 0.2,
                     grow: bool = False) -> jraph.GraphsTuple:
  """GraphCL ``subgraph``: keep edges inside a sampled node set of about ``ratio * n_g`` nodes.

  Official behaviour (``grow=False``): the neighbour set is never updated (GraphCL issue #24), so
  the set is a random seed plus up to ``int(ratio * n_g)`` of its direct neighbours. ``grow=True``
  expands from the whole current set (a random-walk-like BFS), the intended algorithm.

  Args:
    key: PRNG key.
    graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``; may batch graphs.
    ratio: nodes added per graph, ``floor(ratio * n_g)``.
    grow: expand from the whole current set instead of the seed only.

  Returns:
    The graph with edges leaving the kept set at weight 0.
  """
  _check_prob(ratio, "ratio")
  segments = G.node_graph_index(graph)
  n = graph.nodes.shape[0]
  num_graphs = graph.n_node.shape[0]
  live = graph.edges["weight"] > 0
  target = jnp.floor(graph.n_node * ratio)  # additions per graph
  k_seed, k_walk = jax.random.split(key)
  seed_score = jax.random.uniform(k_seed, (n,))
  kept = seed_score >= jax.ops.segment_max(seed_score, segments, num_graphs)[segments]
  seed = kept

  def frontier_of(kept, added):
    source = kept if grow else seed
    reach = jax.ops.segment_max((source[graph.senders] & live).astype(jnp.int32),
                                graph.receivers, n) > 0
    return reach & ~kept & (added < target)[segments]

  def cond(state):
    kept, added, _ = state
    return jnp.any(frontier_of(kept, added))

  def add_one(state):
    kept, added, i = state
    frontier = frontier_of(kept, added)
    score = jnp.where(frontier, jax.random.uniform(jax.random.fold_in(k_walk, i), (n,)), -1.0)
    best = jax.ops.segment_max(score, segments, num_graphs)[segments]
    pick = frontier & (score >= best)
    added = added + jax.ops.segment_sum(pick.astype(added.dtype), segments, num_graphs)
    return kept | pick, added, i + 1

  kept, _, _ = jax.lax.while_loop(cond, add_one, (kept, jnp.zeros(num_graphs), 0))
  return _with_weight(graph, graph.edges["weight"] * kept[graph.senders] * kept[graph.receivers])


def add_edges(key: jax.Array, graph: jraph.GraphsTuple, *,
              pyg_compat: bool = False) -> jraph.GraphsTuple:
  """Fills the reserved edge slots with sampled edges.

  Fixed (default): each forward slot of graph ``g`` gets a uniform pair ``u != v`` inside ``g``'s
  node range, its mirror slot gets ``v -> u``; pairs that already are live edges or repeat an
  earlier sampled pair stay dead (the accepted ones are uniform over non-edges).

  ``pyg_compat=True`` reproduces PyGCL ``add_edge``: every slot is an independent directed pair
  drawn from ``{0, ..., N - 2}`` over the whole batch (``N = max live index + 1``, so the last
  node never gets one and pairs cross graph boundaries), self-loops possible, then coalesced
  (duplicates of live edges or of each other removed).

  Slots come from :func:`~jspectral.data.graphs.reserve_edge_slots`; their number
  (``int(E_g * ratio)``, doubled when mirrored) is the count before de-duplication.

  Args:
    key: PRNG key.
    graph: a ``jraph.GraphsTuple`` with ``edges["slot"]`` ``(E,)`` (0 real, 1 forward slot,
      2 mirror slot) from ``reserve_edge_slots``.
    pyg_compat: reproduce PyGCL's quirks.

  Returns:
    The graph with slot senders/receivers set and accepted slots at weight 1 (shapes unchanged).
  """
  slot = graph.edges["slot"]
  is_slot = slot > 0
  n = graph.nodes.shape[0]
  k_u, k_v = jax.random.split(key)
  u01, v01 = jax.random.uniform(k_u, slot.shape), jax.random.uniform(k_v, slot.shape)
  live = (graph.edges["weight"] > 0) & ~is_slot
  if pyg_compat:
    live_max = jnp.max(jnp.where(live, jnp.maximum(graph.senders, graph.receivers), 0))
    span = jnp.maximum(live_max, 1)  # randint(0, num_nodes - 1): upper bound exclusive
    src = jnp.floor(u01 * span).astype(jnp.int32)
    dst = jnp.floor(v01 * span).astype(jnp.int32)
    forward = is_slot
    existing = graph.senders * n + graph.receivers
    new_key = src * n + dst
  else:
    segments = G.edge_graph_index(graph)
    n_g = graph.n_node[segments]
    offset = G.node_offsets(graph)[segments]
    a = jnp.floor(u01 * n_g).astype(jnp.int32)
    b = (a + 1 + jnp.floor(v01 * jnp.maximum(n_g - 1, 1)).astype(jnp.int32)) % jnp.maximum(n_g, 1)
    forward = slot == 1
    mirror = slot == 2
    a_prev, b_prev = jnp.roll(a, 1), jnp.roll(b, 1)
    src = offset + jnp.where(mirror, b_prev, a)
    dst = offset + jnp.where(mirror, a_prev, b)
    forward = forward & (n_g > 1)
    lo_e, hi_e = (jnp.minimum(graph.senders, graph.receivers),
                  jnp.maximum(graph.senders, graph.receivers))
    existing = lo_e * n + hi_e
    new_key = jnp.minimum(src, dst) * n + jnp.maximum(src, dst)
  sentinel = jnp.iinfo(jnp.int32).max
  existing = jnp.sort(jnp.where(live, existing, sentinel))
  position = jnp.clip(jnp.searchsorted(existing, new_key), 0, existing.shape[0] - 1)
  is_new = existing[position] != new_key
  if pyg_compat:
    is_new = is_new & forward
  else:
    is_new = is_new & forward & (src != dst)
  # First occurrence among the sampled pairs wins.
  keys = jnp.where(is_new, new_key, sentinel)
  order = jnp.argsort(keys, stable=True)
  sorted_keys = keys[order]
  repeat = jnp.concatenate([jnp.array([False]), sorted_keys[1:] == sorted_keys[:-1]])
  accepted = is_new & ~jnp.zeros_like(is_new).at[order].set(repeat)
  if not pyg_compat:
    accepted = accepted | (mirror & jnp.roll(accepted, 1))
  senders = jnp.where(is_slot, src, graph.senders)
  receivers = jnp.where(is_slot, dst, graph.receivers)
  weight = jnp.where(is_slot, accepted.astype(graph.edges["weight"].dtype), graph.edges["weight"])
  return graph._replace(senders=senders.astype(graph.senders.dtype),
                        receivers=receivers.astype(graph.receivers.dtype),
                        edges={**graph.edges, "weight": weight})


# ---------------------------------------------------------------------------------------------
# SPAN


def symmetric_adjacency(graph: jraph.GraphsTuple) -> jax.Array:
  """GCL-SPAN ``get_adj_tensor``: dense 0/1 ``A + A^T`` clipped to 1, zero diagonal.

  Args:
    graph: a ``jraph.GraphsTuple`` with ``N`` nodes.

  Returns:
    Dense adjacency, ``(N, N)``.
  """
  a = G.dense_adjacency(graph)
  a = jnp.minimum(a + a.T, 1.0)
  return a * (1.0 - jnp.eye(a.shape[0], dtype=a.dtype))


def normalized_adjacency(adj: jax.Array) -> jax.Array:
  """``D^-1/2 (A + I) D^-1/2`` with ``D = rowsum(A + I)`` (``inf -> 0`` guard).

  Args:
    adj: adjacency, ``(..., N, N)``.

  Returns:
    Normalised adjacency, ``(..., N, N)``.
  """
  mx = adj + jnp.eye(adj.shape[-1], dtype=adj.dtype)
  rowsum = mx.sum(-1)
  r_inv = jnp.where(rowsum > 0, jax.lax.rsqrt(jnp.where(rowsum > 0, rowsum, 1.0)), 0.0)
  return r_inv[..., :, None] * mx * r_inv[..., None, :]


def _spectral_norm(adj, mask2d, use_eigvalsh):
  norm_adj = normalized_adjacency(adj) * mask2d
  if use_eigvalsh:
    return jnp.linalg.norm(jnp.linalg.eigvalsh(norm_adj))
  return jnp.sqrt(jnp.sum(norm_adj**2))  # ||eig||_2 == ||.||_F for symmetric matrices


def _project(delta, valid, budget, threshold, eps=1e-4):
  """GCL-SPAN ``projection``: bisection for ``mu`` with sum(clip(delta - mu, 0, thr)) = budget."""

  def excess(mu):
    return jnp.sum(jnp.where(valid, jnp.clip(delta - mu, 0.0, threshold), 0.0)) - budget

  def cond(state):
    a, b, _, done = state
    return (b - a >= eps) & ~done

  def body(state):
    a, b, _, _ = state
    mid = (a + b) / 2
    f_mid = excess(mid)
    root = f_mid == 0.0
    go_left = root | (f_mid * excess(a) < 0)
    return jnp.where(go_left, a, mid), jnp.where(go_left, mid, b), mid, root

  low = jnp.min(jnp.where(valid, delta, jnp.inf))
  high = jnp.max(jnp.where(valid, delta, -jnp.inf))
  _, _, mu, _ = jax.lax.while_loop(cond, body, (low, high, low, jnp.array(False)))
  over = excess(0.0) > 0
  projected = jnp.where(over, jnp.clip(delta - mu, 0.0, 1.0), jnp.clip(delta, 0.0, 1.0))
  return jnp.where(valid, projected, 0.0)


SPAN_KINDS = ("max", "min", "max-l2", "min-l2", "max-low", "min-low", "max-high", "min-high")


def _spectrum_objective(kind, norm_a, e0, num_eigs):
  """The non-default SPAN objectives, on the eigenvalues ``e`` of ``norm(A')`` (ascending)."""
  e = jnp.linalg.eigvalsh(norm_a)
  if kind.endswith("-l2"):
    return jnp.linalg.norm(e - e0)  # distance of the spectra
  chosen = slice(None, num_eigs) if kind.endswith("-low") else slice(-num_eigs, None)
  return jnp.linalg.norm(e[chosen]) / jnp.linalg.norm(e0[chosen])


def span_probabilities(adj: jax.Array, *, kind: str = "max", ratio: float = 0.3, lr: float = 100.0,
                       iterations: int = 40, threshold: float = 0.8, key: jax.Array | None = None,
                       init: jax.Array | None = None, node_mask: jax.Array | None = None,
                       use_eigvalsh: bool = False, num_eigs: int = 1) -> jax.Array:
  """SPAN perturbation probabilities ``P`` (symmetric, zero diagonal).

  Parameters ``delta`` on the strict lower triangle (``np.tril_indices(N, -1)`` order) start at
  ``init`` or U(1e-5, 1/N); ``A' = A + sym(delta) * (1 - I - 2A)``; each of ``iterations`` steps
  ascends ``+-||eig(norm(A'))||_2 / ||eig(norm(A))||_2`` (``kind`` ``"max"`` / ``"min"``) with
  step ``lr / sqrt(t + 1)`` and projects onto the budget ``int(ratio * #edges)``.

  The spectral norm is computed as the Frobenius norm of ``norm(A')`` (identical for symmetric
  matrices, no eigendecomposition, stable gradients); ``use_eigvalsh=True`` uses ``eigvalsh`` as the
  official code does. The non-default kinds of GCL-SPAN (spec section 3.6) always need
  ``eigvalsh``: ``"max-l2"`` / ``"min-l2"`` ascend / descend ``||e - e0||_2`` (distance between the
  perturbed and the original spectrum), ``"max-low"`` / ``"min-low"`` / ``"max-high"`` /
  ``"min-high"`` the norm ratio of the ``num_eigs`` smallest / largest eigenvalues only. With a
  ``node_mask`` the padded rows add zero eigenvalues to both spectra (same count), so the l2 kinds
  stay well defined; the low/high kinds then count those zeros and are meant for unpadded graphs.
  Defaults: the node-level 'max' view (ratio 0.3, T 40, lr 100, threshold 0.8);
  graph level uses ratio 0.2, T 20, lr 0.5, threshold 0.5.

  Args:
    adj: dense symmetric 0/1 adjacency, zero diagonal, ``(N, N)``.
    kind: objective, one of ``SPAN_KINDS``.
    ratio: edge budget as a fraction of the number of edges.
    lr: base step size.
    iterations: gradient steps ``T``.
    threshold: upper clip of each probability in the projection.
    key: PRNG key for the random start; required when ``init`` is not given.
    init: optional start, ``(N * (N - 1) / 2,)`` on the strict lower triangle.
    node_mask: optional ``(N,)`` bool; pairs touching a False node (padding) stay at 0, so padded
      ``(B, Nmax, Nmax)`` batches can be processed with ``vmap``.
    use_eigvalsh: spectral norm through ``eigvalsh`` (official) instead of the Frobenius norm.
    num_eigs: eigenvalues used by the ``-low`` / ``-high`` kinds.

  Returns:
    Perturbation probabilities ``P``, ``(N, N)``.

  Raises:
    ValueError: if ``adj`` is not square (or, when concrete, not symmetric), ``ratio`` is outside
      ``[0, 1]``, ``kind`` is unknown, ``num_eigs`` is outside ``1 .. N``, ``init`` has the wrong
      shape, or neither ``key`` nor ``init`` is given.
  """
  if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
    raise ValueError(f"adj: expected a square (N, N) matrix, got shape {adj.shape}")
  if not isinstance(adj, jax.core.Tracer) and not np.array_equal(np.asarray(adj),
                                                                  np.asarray(adj).T):
    raise ValueError("adj: expected a symmetric adjacency (SPAN perturbs undirected graphs)")
  if not 0.0 <= ratio <= 1.0:
    raise ValueError(f"ratio: expected an edge budget fraction in [0, 1], got {ratio}")
  if kind not in SPAN_KINDS:
    raise ValueError(f"kind: expected one of {SPAN_KINDS}, got {kind!r}")
  if not 1 <= num_eigs <= adj.shape[0]:
    raise ValueError(f"num_eigs: expected 1 .. {adj.shape[0]}, got {num_eigs}")
  n = adj.shape[0]
  rows, cols = np.tril_indices(n, -1)
  mask = jnp.ones(n, bool) if node_mask is None else jnp.asarray(node_mask, bool)
  mask2d = mask[:, None] & mask[None]
  # delta lives on the strict lower triangle of an (N, N) matrix: no scatter/gather in the loop.
  valid = jnp.tril(mask2d, -1)
  mask2d = mask2d.astype(adj.dtype)
  if init is None:
    if key is None:
      raise ValueError("key: required when init is not given")
    delta = jax.random.uniform(key, (n, n), adj.dtype, 1e-5, 1.0 / jnp.sum(mask))
  elif init.shape != rows.shape:
    raise ValueError(f"init: expected shape {rows.shape} (strict lower triangle), got {init.shape}")
  else:
    delta = jnp.zeros((n, n), adj.dtype).at[rows, cols].set(init.astype(adj.dtype))
  delta = jnp.where(valid, delta, 0.0)
  budget = jnp.floor(ratio * jnp.sum(adj * mask2d) / 2)
  sign = 1.0 if kind.startswith("max") else -1.0
  flip = 1.0 - jnp.eye(n, dtype=adj.dtype) - 2.0 * adj
  if kind in ("max", "min"):
    base = _spectral_norm(adj, mask2d, use_eigvalsh)
  else:
    e0 = jnp.linalg.eigvalsh(normalized_adjacency(adj) * mask2d)

  def objective(d):
    lower = jnp.where(valid, d, 0.0)
    modified = adj + (lower + lower.T) * flip
    if kind in ("max", "min"):
      return sign * _spectral_norm(modified, mask2d, use_eigvalsh) / base
    return sign * _spectrum_objective(kind, normalized_adjacency(modified) * mask2d, e0, num_eigs)

  def step(t, d):
    d = d + lr / jnp.sqrt(t + 1.0) * jax.grad(objective)(d)
    return _project(d, valid, budget, threshold)

  delta = jax.lax.fori_loop(1, iterations + 1, step, delta)
  return delta + delta.T


def span_sample(key: jax.Array, adj: jax.Array, prob: jax.Array,
                symmetric: bool = False) -> jax.Array:
  """One SPAN view ``A + S * (1 - I - 2A)``, ``S ~ Bernoulli(P)``.

  Official: ``S`` is drawn over the full matrix, so the two directions flip independently and the
  view is asymmetric; ``symmetric=True`` draws the upper triangle and mirrors it.

  Args:
    key: PRNG key.
    adj: dense 0/1 adjacency, ``(N, N)``.
    prob: flip probabilities from :func:`span_probabilities`, ``(N, N)``.
    symmetric: mirror the upper-triangle draw.

  Returns:
    Perturbed adjacency, ``(N, N)``.

  Raises:
    ValueError: if ``prob`` and ``adj`` differ in shape.
  """
  if adj.shape != prob.shape:
    raise ValueError(f"prob: expected shape {adj.shape} like adj, got {prob.shape}")
  flips = jax.random.bernoulli(key, prob).astype(adj.dtype)
  if symmetric:
    upper = jnp.triu(flips, 1)
    flips = upper + upper.T
  n = adj.shape[-1]
  return adj + flips * (1.0 - jnp.eye(n, dtype=adj.dtype) - 2.0 * adj)


def dense_to_graph(adj: jax.Array, x: jax.Array, max_edges: int | None = None) -> jraph.GraphsTuple:
  """A single-graph GraphsTuple from a dense ``A[i, j]`` (edge ``i -> j`` stored as sender ``i``).

  The edge list has a static length ``max_edges`` (default ``N * (N - 1)``, never truncating);
  unused entries are dead edges. Entries beyond ``max_edges`` are dropped, so pick it with slack.

  Args:
    adj: dense adjacency, ``(N, N)`` (diagonal ignored).
    x: node features, ``(N, F)``.
    max_edges: static edge-list length.

  Returns:
    A ``jraph.GraphsTuple`` with ``max_edges`` edge slots and ``edges["weight"]`` 1 on live ones.

  Raises:
    ValueError: if ``adj`` is not square or ``x`` does not have one row per node.
  """
  if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
    raise ValueError(f"adj: expected a square (N, N) matrix, got shape {adj.shape}")
  if x.ndim != 2 or x.shape[0] != adj.shape[0]:
    raise ValueError(f"x: expected ({adj.shape[0]}, F) node features for the {adj.shape[0]} "
                     f"nodes of adj, got shape {x.shape}")
  n = adj.shape[0]
  size = n * (n - 1) if max_edges is None else max_edges
  nonzero = adj * (1.0 - jnp.eye(n, dtype=adj.dtype)) > 0
  senders, receivers = jnp.nonzero(nonzero, size=size, fill_value=0)
  weight = (jnp.arange(size) < jnp.sum(nonzero)).astype(jnp.float32)
  return jraph.GraphsTuple(
      nodes=x, edges={"weight": weight, "slot": jnp.zeros(size, jnp.float32)},
      senders=senders.astype(jnp.int32), receivers=receivers.astype(jnp.int32),
      n_node=jnp.array([n], jnp.int32), n_edge=jnp.array([size], jnp.int32), globals=None)


# ---------------------------------------------------------------------------------------------
# SPAN on a bounded support (O(E + P) memory)


def span_support(graph: jraph.GraphsTuple, random_per_edge: float | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """The node pairs SPAN may perturb: every undirected edge plus random non-edges (host NumPy).

  ``random_per_edge=None`` gives every pair ``i > j`` in ``np.tril_indices(N, -1)`` order, i.e.
  the dense problem of :func:`span_probabilities`. Otherwise the support is the ``|U|``
  undirected edges of ``symmetric_adjacency(graph)`` plus ``int(random_per_edge * |U|)`` uniform
  pairs drawn as candidate additions (self pairs, duplicates and edges removed), ``O(E)`` memory.

  Args:
    graph: a single unpadded ``GraphsTuple`` with ``N`` nodes.
    random_per_edge: random candidate pairs per undirected edge, or None for all pairs.
    seed: seed of the candidate draw.

  Returns:
    ``(pairs, is_edge)``: ``(P, 2)`` int32 pairs ``(i, j)`` with ``i > j``, and ``(P,)`` bool.
  """
  n = int(graph.nodes.shape[0])
  live = np.asarray(graph.edges["weight"]) > 0
  s, r = np.asarray(graph.senders)[live], np.asarray(graph.receivers)[live]
  off = s != r
  edge_keys = np.unique(np.maximum(s, r)[off].astype(np.int64) * n + np.minimum(s, r)[off])
  if random_per_edge is None:
    rows, cols = np.tril_indices(n, -1)
    keys = rows.astype(np.int64) * n + cols
  else:
    if random_per_edge < 0:
      raise ValueError(f"random_per_edge: expected a non-negative ratio or None, got "
                       f"{random_per_edge}")
    num_random = int(random_per_edge * edge_keys.size)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, num_random), rng.integers(0, n, num_random)
    cand = np.unique(np.maximum(a, b)[a != b].astype(np.int64) * n + np.minimum(a, b)[a != b])
    keys = np.concatenate([edge_keys, np.setdiff1d(cand, edge_keys, assume_unique=True)])
  pairs = np.stack([keys // n, keys % n], axis=1).astype(np.int32)
  return pairs, np.isin(keys, edge_keys)


def _support_norm(delta, pairs, is_edge, num_nodes):
  """``||D^-1/2 (A' + I) D^-1/2||_F`` with ``A'`` supported on ``pairs`` (symmetric)."""
  a = jnp.where(is_edge, 1.0 - delta, delta)
  degree = 1.0 + jax.ops.segment_sum(a, pairs[:, 0], num_nodes) + jax.ops.segment_sum(
      a, pairs[:, 1], num_nodes)
  return jnp.sqrt(jnp.sum(1.0 / degree**2)
                  + 2.0 * jnp.sum(a**2 / (degree[pairs[:, 0]] * degree[pairs[:, 1]])))


def span_probabilities_sparse(num_nodes: int, pairs: jax.Array, is_edge: jax.Array, *,
                              kind: str = "max", ratio: float = 0.3, lr: float = 100.0,
                              iterations: int = 40, threshold: float = 0.8,
                              key: jax.Array | None = None,
                              init: jax.Array | None = None) -> jax.Array:
  """:func:`span_probabilities` with the perturbation restricted to ``pairs``.

  Same objective (``+-||norm(A')||_F / ||norm(A)||_F``, equal to SPAN's eigenvalue norm), steps,
  start U(1e-5, 1/N) and budget projection, on one value per pair: memory ``O(N + P)`` instead of
  ``O(N^2)``. With every pair in the support (``span_support(graph)``) it is the dense problem;
  on a bounded support it is that problem with every other pair's probability held at 0.

  Args:
    num_nodes: ``N``.
    pairs: ``(P, 2)`` int pairs ``(i, j)``, ``i != j``, each unordered pair once
      (:func:`span_support`); must contain every edge of the graph.
    is_edge: ``(P,)`` bool, True where the pair is an edge.
    kind: ``"max"`` or ``"min"`` (the spectrum kinds need ``eigvalsh``: dense only).
    ratio, lr, iterations, threshold: as :func:`span_probabilities`.
    key: PRNG key of the random start; required when ``init`` is not given.
    init: optional start, ``(P,)``.

  Returns:
    Perturbation probability of each pair, ``(P,)``.

  Raises:
    ValueError: if ``kind`` is not ``"max"`` / ``"min"``, ``ratio`` is outside ``[0, 1]``,
      ``pairs`` is not ``(P, 2)``, ``is_edge`` or ``init`` is not ``(P,)``, or neither ``key`` nor
      ``init`` is given.
  """
  if kind not in ("max", "min"):
    raise ValueError(f"kind: the bounded-support SPAN supports 'max' and 'min' (the spectrum "
                     f"kinds need eigvalsh: use span_probabilities), got {kind!r}")
  if not 0.0 <= ratio <= 1.0:
    raise ValueError(f"ratio: expected an edge budget fraction in [0, 1], got {ratio}")
  pairs, is_edge = jnp.asarray(pairs), jnp.asarray(is_edge, bool)
  if pairs.ndim != 2 or pairs.shape[1] != 2:
    raise ValueError(f"pairs: expected (P, 2) node pairs, got shape {pairs.shape}")
  if is_edge.shape != pairs.shape[:1]:
    raise ValueError(f"is_edge: expected shape {pairs.shape[:1]}, got {is_edge.shape}")
  if init is None:
    if key is None:
      raise ValueError("key: required when init is not given")
    delta = jax.random.uniform(key, pairs.shape[:1], jnp.float32, 1e-5, 1.0 / num_nodes)
  elif init.shape != pairs.shape[:1]:
    raise ValueError(f"init: expected shape {pairs.shape[:1]} (one value per pair), got "
                     f"{init.shape}")
  else:
    delta = jnp.asarray(init, jnp.float32)
  budget = jnp.floor(ratio * jnp.sum(is_edge))
  sign = 1.0 if kind == "max" else -1.0
  base = _support_norm(jnp.zeros_like(delta), pairs, is_edge, num_nodes)
  valid = jnp.ones(delta.shape, bool)

  def step(t, d):
    grad = jax.grad(lambda v: sign * _support_norm(v, pairs, is_edge, num_nodes) / base)(d)
    return _project(d + lr / jnp.sqrt(t + 1.0) * grad, valid, budget, threshold)

  return jax.lax.fori_loop(1, iterations + 1, step, delta)


def span_sample_sparse(key: jax.Array, graph: jraph.GraphsTuple, pairs: jax.Array,
                       is_edge: jax.Array, prob: jax.Array) -> jraph.GraphsTuple:
  """One SPAN view on a bounded support: each direction of each pair flips with its probability.

  As :func:`span_sample` (official: the two directions are drawn independently) restricted to
  the support; the view has ``2 P`` edge slots (``i -> j`` then ``j -> i`` per pair), live where
  ``is_edge XOR flip``. The support holds every edge, so the view lists all surviving edges.

  Args:
    key: PRNG key.
    graph: the graph (its ``nodes`` are kept), ``N`` nodes.
    pairs: ``(P, 2)`` pairs from :func:`span_support`.
    is_edge: ``(P,)`` bool.
    prob: ``(P,)`` probabilities from :func:`span_probabilities_sparse`.

  Returns:
    A single-graph ``GraphsTuple`` with ``2 P`` edges.

  Raises:
    ValueError: if ``prob`` is not ``(P,)``.
  """
  if prob.shape != pairs.shape[:1]:
    raise ValueError(f"prob: expected shape {pairs.shape[:1]} (one per pair), got {prob.shape}")
  flips = jax.random.bernoulli(key, jnp.concatenate([prob, prob]))
  weight = (jnp.concatenate([is_edge, is_edge]) != flips).astype(jnp.float32)
  senders = jnp.concatenate([pairs[:, 0], pairs[:, 1]]).astype(jnp.int32)
  receivers = jnp.concatenate([pairs[:, 1], pairs[:, 0]]).astype(jnp.int32)
  size = senders.shape[0]
  return jraph.GraphsTuple(
      nodes=graph.nodes, edges={"weight": weight, "slot": jnp.zeros(size, jnp.float32)},
      senders=senders, receivers=receivers, n_node=jnp.asarray([graph.nodes.shape[0]], jnp.int32),
      n_edge=jnp.asarray([size], jnp.int32), globals=None)


# ---------------------------------------------------------------------------------------------
# PPR diffusion (MVGRL's second view)


def ppr_diffusion(adj: jax.Array, alpha: float = 0.2, node_mask: jax.Array | None = None
                  ) -> jax.Array:
  """Personalised-PageRank diffusion ``S = alpha (I - (1 - alpha) T)^-1``.

  ``T = D^-1/2 (A + I) D^-1/2`` with ``D = rowsum(A + I)``: the self loop is added to whatever is
  stored (a stored loop counts twice), as PyGCL ``compute_ppr`` (``add_self_loops`` then
  ``coalesce`` summing duplicates, ``GDC.transition_matrix(normalization="sym")``,
  ``GDC.diffusion_matrix_exact(method="ppr")``). Hassani & Khasahmadi, "Contrastive Multi-View
  Representation Learning on Graphs", ICML 2020 (github.com/kavehhassani/mvgrl); PyGCL
  ``augmentors/functional.py``.

  Args:
    adj: ``A[i, j]`` = weight of edge ``j -> i`` (:func:`~jspectral.data.graphs.dense_adjacency`),
      ``(N, N)``.
    alpha: teleport probability in ``(0, 1]``.
    node_mask: optional ``(N,)`` bool; rows and columns of False (padding) nodes come out 0.

  Returns:
    ``S``, ``(N, N)``, ``S[i, j]`` the diffusion weight of ``j -> i``.

  Raises:
    ValueError: if ``adj`` is not square or ``alpha`` is outside ``(0, 1]``.
  """
  if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
    raise ValueError(f"adj: expected a square (N, N) matrix, got shape {adj.shape}")
  if not isinstance(alpha, jax.core.Tracer) and not 0.0 < float(alpha) <= 1.0:
    raise ValueError(f"alpha: expected a teleport probability in (0, 1], got {alpha}")
  n = adj.shape[0]
  mask = jnp.ones(n, bool) if node_mask is None else jnp.asarray(node_mask, bool)
  eye = jnp.eye(n, dtype=adj.dtype)
  looped = jnp.where(mask[:, None] & mask[None], adj, 0.0) + eye
  inv_sqrt = jax.lax.rsqrt(looped.sum(-1))
  transition = inv_sqrt[:, None] * looped * inv_sqrt[None]
  diffusion = alpha * jnp.linalg.solve(eye - (1.0 - alpha) * transition, eye)
  return jnp.where(mask[:, None] & mask[None], diffusion, 0.0)


def sparsify_diffusion(diffusion: jax.Array, eps: float | None = 1e-4,
                       top_k: int | None = None) -> jax.Array:
  """PyG ``GDC.sparsify_dense`` then the symmetric re-normalisation PyGCL applies after it.

  ``eps`` keeps entries ``>= eps`` (PyGCL ``PPRDiffusion``'s default, 1e-4); ``top_k`` keeps the
  ``k`` largest entries of each receiver row (GDC ``"topk"``, bounding the edge count at ``N k``).
  The kept matrix ``S'`` becomes ``D^-1/2 S' D^-1/2`` with ``D = rowsum(S')`` (in-weight).

  Args:
    diffusion: ``S`` from :func:`ppr_diffusion`, ``(N, N)``.
    eps: threshold (used when ``top_k`` is None).
    top_k: entries kept per receiver, or None.

  Returns:
    Edge weights ``W[i, j]`` of ``j -> i``, zero where dropped, ``(N, N)``.

  Raises:
    ValueError: if neither ``eps`` nor ``top_k`` is given, or ``top_k`` is not in ``1 .. N``.
  """
  n = diffusion.shape[-1]
  if top_k is not None:
    if not 1 <= top_k <= n:
      raise ValueError(f"top_k: expected 1 .. {n}, got {top_k}")
    kth = jax.lax.top_k(diffusion, top_k)[0][:, -1:]
    kept = jnp.where(diffusion >= kth, diffusion, 0.0)
  elif eps is None:
    raise ValueError("eps, top_k: give a threshold eps or a per-node top_k")
  else:
    kept = jnp.where(diffusion >= eps, diffusion, 0.0)
  degree = kept.sum(-1)
  inv_sqrt = jnp.where(degree > 0, jax.lax.rsqrt(jnp.where(degree > 0, degree, 1.0)), 0.0)
  return inv_sqrt[:, None] * kept * inv_sqrt[None]


def ppr_graph(graph: jraph.GraphsTuple, alpha: float = 0.2, eps: float | None = 1e-4,
              top_k: int | None = None) -> jraph.GraphsTuple:
  """PyGCL ``PPRDiffusion(alpha, eps)`` on a single unpadded graph: the weighted diffusion view.

  Dense ``O(N^2)`` memory and ``O(N^3)`` time, like the official code; the view is deterministic,
  so tasks compute it once. Edges are every kept entry (self loops included), receivers major.

  Args:
    graph: a single-graph ``GraphsTuple``, nodes ``(N, F)``.
    alpha: teleport probability.
    eps: sparsification threshold (see :func:`sparsify_diffusion`).
    top_k: entries kept per receiver instead of the threshold.

  Returns:
    A ``GraphsTuple`` with the same nodes and ``edges["weight"]`` the normalised diffusion.
  """
  weights = sparsify_diffusion(ppr_diffusion(G.dense_adjacency(graph), alpha), eps, top_k)
  weights = np.asarray(weights)
  receivers, senders = np.nonzero(weights)
  return G.make_graph(graph.nodes, np.stack([senders, receivers]),
                      edge_weight=weights[receivers, senders])
