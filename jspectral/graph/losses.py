"""Contrastive and non-contrastive losses of graph SSL, as pure functions.

* :func:`grace_infonce` -- GRACE (Zhu et al. 2020, github.com/CRIPAC-DIG/GRACE ``Model.loss``):
  symmetric InfoNCE with inter- and intra-view negatives; the positive stays in the denominator.
* :func:`pygcl_infonce` -- PyGCL ``InfoNCE`` via ``DualBranchContrast`` (github.com/PyGCL/PyGCL):
  L2L with ``intraview_negs`` (= GRACE plus the self-similarity term ``exp(1/tau)``) or plain G2G.
* :func:`graphcl_ntxent` -- GraphCL ``simclr.loss_cal`` (github.com/Shen-Lab/GraphCL): T = 0.2,
  one direction, positive excluded from the denominator (can be negative on tiny batches).
* :func:`jsd_loss` (MVGRL / GCL-SPAN node level), :func:`jsd_g2l` (MVGRL graph level),
  :func:`bootstrap_loss` (BGRL), :func:`barlow_twins_loss` (G-BT) follow PyGCL's ``losses``.

Optional ``mask`` arguments (True on real rows) drop padding rows from numerators, every
denominator and the mean, so padded and unpadded inputs give the same value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_pair(a, b, names=("h1", "h2")):
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(f"{names[0]}, {names[1]}: expected two (N, D) arrays of equal shape, got "
                     f"{a.shape} and {b.shape}")


def _normalise(x, eps=1e-12):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def _mask(mask, n):
  return jnp.ones(n, bool) if mask is None else jnp.asarray(mask, bool)


def _masked_mean(values, mask):
  m = mask.astype(values.dtype)
  return jnp.sum(values * m) / jnp.sum(m)


def grace_semi_loss(u: jax.Array, v: jax.Array, tau: float, mask=None,
                    self_term: bool = False) -> jax.Array:
  """Per-anchor GRACE loss ``l(u_i, v_i)``.

  ``-log[e(u_i, v_i) / (sum_k e(u_i, v_k) + sum_{k != i} e(u_i, u_k))]`` with ``e = exp(cos/tau)``;
  ``self_term`` keeps ``k = i`` in the intra-view sum (PyGCL).

  Args:
    u: anchor-view embeddings, ``(N, D)``.
    v: other-view embeddings, ``(N, D)``.
    tau: temperature.
    mask: optional ``(N,)`` bool, True on real nodes; padding rows leave every denominator.
    self_term: keep the anchor's own intra-view similarity ``exp(1/tau)`` (PyGCL).

  Returns:
    Per-anchor losses, ``(N,)`` (padding rows are not zeroed).
  """
  n = u.shape[0]
  valid = _mask(mask, n)
  un, vn = _normalise(u), _normalise(v)
  between = un @ vn.T / tau
  refl = un @ un.T / tau
  if not self_term:
    refl = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, refl)
  logits = jnp.concatenate([between, refl], axis=1)
  logits = jnp.where(jnp.concatenate([valid, valid])[None], logits, -jnp.inf)
  return jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(between)


def grace_infonce(h1: jax.Array, h2: jax.Array, tau: float = 0.4, mask=None) -> jax.Array:
  """GRACE loss: ``mean_i 0.5 (l(h1_i, h2_i) + l(h2_i, h1_i))`` over real rows.

  Args:
    h1: projected node embeddings of the first view, ``(N, D)``.
    h2: projected node embeddings of the second view, ``(N, D)``.
    tau: temperature (GRACE Cora 0.4).
    mask: optional ``(N,)`` bool, True on real nodes.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``h1`` and ``h2`` are not two ``(N, D)`` arrays of equal shape.
  """
  _check_pair(h1, h2)
  valid = _mask(mask, h1.shape[0])
  per_node = 0.5 * (grace_semi_loss(h1, h2, tau, valid) + grace_semi_loss(h2, h1, tau, valid))
  return _masked_mean(per_node, valid)


def pygcl_infonce(h1: jax.Array, h2: jax.Array, tau: float = 0.2, mask=None,
                  intraview_negs: bool = True) -> jax.Array:
  """PyGCL ``DualBranchContrast(InfoNCE(tau))``: symmetric InfoNCE, positive in the denominator.

  ``intraview_negs=True`` (L2L mode as GRACE's PyGCL port uses it) adds every intra-view
  similarity, the anchor's own ``exp(1/tau)`` included; ``False`` is the plain (G2G) form.

  Args:
    h1: embeddings of the first view, ``(N, D)``.
    h2: embeddings of the second view, ``(N, D)``.
    tau: temperature.
    mask: optional ``(N,)`` bool, True on real rows.
    intraview_negs: add intra-view negatives (L2L) or not (G2G).

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``h1`` and ``h2`` are not two ``(N, D)`` arrays of equal shape.
  """
  _check_pair(h1, h2)
  valid = _mask(mask, h1.shape[0])
  if intraview_negs:
    per = 0.5 * (grace_semi_loss(h1, h2, tau, valid, self_term=True)
                 + grace_semi_loss(h2, h1, tau, valid, self_term=True))
    return _masked_mean(per, valid)

  def one_way(a, b):
    logits = jnp.where(valid[None], _normalise(a) @ _normalise(b).T / tau, -jnp.inf)
    return jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits)

  return _masked_mean(0.5 * (one_way(h1, h2) + one_way(h2, h1)), valid)


def graphcl_ntxent(x: jax.Array, x_aug: jax.Array, temperature: float = 0.2,
                   mask=None) -> jax.Array:
  """GraphCL ``loss_cal``: ``-mean_i log(S_ii / (sum_j S_ij - S_ii))``, ``S = exp(cos / T)``.

  Not symmetric in its arguments (``x`` are the anchors). Cosine through explicit norms without an
  epsilon, as the official code: an all-zero embedding gives NaN.

  Args:
    x: anchor graph embeddings, ``(N, D)``.
    x_aug: embeddings of the augmented graphs, ``(N, D)``.
    temperature: ``T`` (GraphCL 0.2).
    mask: optional ``(N,)`` bool, True on real graphs.

  Returns:
    Scalar loss (can be negative on tiny batches).

  Raises:
    ValueError: if ``x`` and ``x_aug`` are not two ``(N, D)`` arrays of equal shape.
  """
  _check_pair(x, x_aug, ("x", "x_aug"))
  valid = _mask(mask, x.shape[0])
  # Padding rows (all-zero embeddings) are replaced before the norms so no NaN reaches the grads.
  x, x_aug = jnp.where(valid[:, None], x, 1.0), jnp.where(valid[:, None], x_aug, 1.0)
  norm = jnp.linalg.norm(x, axis=1)[:, None] * jnp.linalg.norm(x_aug, axis=1)[None]
  logits = (x @ x_aug.T) / norm / temperature
  pos = jnp.diagonal(logits)
  off = jnp.where(jnp.eye(x.shape[0], dtype=bool) | ~valid[None], -jnp.inf, logits)
  return _masked_mean(jax.nn.logsumexp(off, axis=1) - pos, valid)


def jsd_loss(pos_scores: jax.Array, neg_scores: jax.Array) -> jax.Array:
  """Jensen-Shannon MI estimator (DGI/MVGRL/SPAN): ``E_neg - E_pos``.

  ``E_pos = mean(log 2 - softplus(-s+))``, ``E_neg = mean(softplus(-s-) + s- - log 2)``.

  Args:
    pos_scores: discriminator scores of positive pairs, any shape.
    neg_scores: discriminator scores of negative pairs, any shape.

  Returns:
    Scalar loss.
  """
  log2 = jnp.log(2.0)
  e_pos = jnp.mean(log2 - jax.nn.softplus(-pos_scores))
  e_neg = jnp.mean(jax.nn.softplus(-neg_scores) + neg_scores - log2)
  return e_neg - e_pos


def jsd_g2l(g: jax.Array, h: jax.Array, node_graph: jax.Array, node_mask=None,
            graph_mask=None) -> jax.Array:
  """JSD between graph summaries and node states of a batch (PyGCL ``JSD`` + ``G2L`` sampler).

  Scores ``g @ h.T``; positives are the pairs (graph, one of its nodes), negatives every other
  (graph, node) pair; :func:`jsd_loss` over the two sets. PyGCL multiplies the scores by the masks
  and divides by the mask counts, which equals these means (masked entries add exactly zero).

  Args:
    g: graph summaries, ``(G, D)``.
    h: node states, ``(N, D)``.
    node_graph: ``(N,)`` int graph index of each node.
    node_mask: optional ``(N,)`` bool, True on real nodes.
    graph_mask: optional ``(G,)`` bool, True on real graphs.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``g`` and ``h`` are not 2-D with the same width or ``node_graph`` is not
      ``(N,)``.
  """
  if g.ndim != 2 or h.ndim != 2 or g.shape[1] != h.shape[1]:
    raise ValueError(f"g, h: expected (G, D) summaries and (N, D) node states, got {g.shape} "
                     f"and {h.shape}")
  if node_graph.shape != h.shape[:1]:
    raise ValueError(f"node_graph: expected shape {h.shape[:1]}, got {node_graph.shape}")
  valid = _mask(graph_mask, g.shape[0])[:, None] & _mask(node_mask, h.shape[0])[None]
  pos = valid & (node_graph[None] == jnp.arange(g.shape[0])[:, None])
  neg = valid & ~pos
  scores = g @ h.T
  log2 = jnp.log(2.0)
  e_pos = jnp.sum(jnp.where(pos, log2 - jax.nn.softplus(-scores), 0.0)) / jnp.sum(pos)
  e_neg = jnp.sum(jnp.where(neg, jax.nn.softplus(-scores) + scores - log2, 0.0)) / jnp.sum(neg)
  return e_neg - e_pos


def bootstrap_loss(pred1, target2, pred2, target1, mask=None) -> jax.Array:
  """BGRL: ``mean(2 - 2 cos(pred, stop_gradient(target)))``, symmetrised over the two views.

  Args:
    pred1: online predictions of view 1, ``(N, D)``.
    target2: target-network embeddings of view 2, ``(N, D)``.
    pred2: online predictions of view 2, ``(N, D)``.
    target1: target-network embeddings of view 1, ``(N, D)``.
    mask: optional ``(N,)`` bool, True on real nodes.

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``pred1`` and ``target2`` are not two ``(N, D)`` arrays of equal shape.
  """
  _check_pair(pred1, target2, ("pred1", "target2"))
  valid = _mask(mask, pred1.shape[0])

  def one(p, t):
    cos = jnp.sum(_normalise(p) * _normalise(jax.lax.stop_gradient(t)), axis=-1)
    return _masked_mean(2.0 - 2.0 * cos, valid)

  return 0.5 * (one(pred1, target2) + one(pred2, target1))


def barlow_twins_loss(h1: jax.Array, h2: jax.Array, lambda_: float | None = None,
                      eps: float = 1e-5) -> jax.Array:
  """Graph Barlow Twins loss (PyGCL ``BarlowTwins``).

  Standardises columns (unbiased std), forms the cross correlation ``C = z1^T z2 / N`` and returns
  ``sum (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2``.

  Args:
    h1: embeddings of the first view, ``(N, D)``.
    h2: embeddings of the second view, ``(N, D)``.
    lambda_: off-diagonal weight; defaults to ``1 / D``.
    eps: added to the column std (PyGCL's ``BarlowTwins`` class passes 1e-5; its bare
      ``bt_loss`` function defaults to 1e-15).

  Returns:
    Scalar loss.

  Raises:
    ValueError: if ``h1`` and ``h2`` are not two ``(N, D)`` arrays of equal shape.
  """
  _check_pair(h1, h2)
  n, d = h1.shape
  lam = 1.0 / d if lambda_ is None else lambda_

  def standardise(h):
    return (h - h.mean(0)) / (h.std(0, ddof=1) + eps)

  c = standardise(h1).T @ standardise(h2) / n
  off = ~jnp.eye(d, dtype=bool)
  return jnp.sum((1.0 - jnp.diagonal(c)) ** 2) + lam * jnp.sum(jnp.where(off, c, 0.0) ** 2)
