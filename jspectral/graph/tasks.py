"""Training tasks for :func:`jspectral.train.fit`: GRACE (node level) and GraphCL (graph level).

Both draw two views per step from keyed augmentations inside the jitted loss, so the whole update
(augment, encode, contrast) is one compiled XLA program with static shapes.

* :class:`NodeContrastTask` -- full-batch GRACE on one graph. The training "dataset" is a single
  dummy example (``batch_size`` 1); the graph is a constant of the step. Evaluation: linear probe on
  the frozen encoder output of the clean graph (:func:`jspectral.graph.protocol.node_probe`).
* :class:`MVGRLNodeTask`, :class:`BGRLTask`, :class:`GBTTask` -- the other node-level frameworks
  the paper compares (MVGRL with JSD G2L, BGRL bootstrap with an EMA target, graph Barlow Twins),
  sharing the views and the probe of :class:`NodeContrastTask`.
* :class:`MVGRLGraphTask` -- MVGRL at graph level (GCL-SPAN ``unsupervised_graph.py``): per-view
  GCN encoders, node/graph projectors, JSD between each view's graph summaries and the other
  view's node states; view 2 defaults to the PPR diffusion.
* :class:`GraphContrastTask` -- GraphCL on a list of small graphs stored as fixed-size examples
  (:func:`jspectral.data.graphs.to_padded_example`), collated in ``jit`` by
  :func:`~jspectral.data.graphs.collate_padded`; view 1 is the graph, view 2 the augmentation;
  BatchNorm statistics are updated by both views. Evaluation: SVM CV on eval-mode embeddings.

Augmentations by name (``kind``): ``"drop_edges"`` (``p`` per directed entry), ``"add_edges"``
(fills slots reserved with ratio ``p``), ``"drop_nodes"``, ``"subgraph"``, ``"mask_nodes"``,
``"span_max"`` / ``"span_min"`` (SPAN probabilities precomputed once per graph, sampled per step),
``"span_max_l2"`` / ``"span_min_l2"`` (SPAN's spectrum-distance objectives, eigvalsh, same lr),
``"ppr"`` (MVGRL's diffusion view, PyGCL ``PPRDiffusion``, teleport probability ``p``; computed
once per graph since it is deterministic), ``"identity"``. Node level adds feature-column masking
with ``p_feature``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np

from jspectral.data import graphs as G
from jspectral.graph import augment, losses, protocol

SPAN_NODE = dict(ratio=0.3, iterations=40, threshold=0.8, lr={"max": 100.0, "min": 0.1})
SPAN_GRAPH = dict(ratio=0.2, iterations=20, threshold=0.5, lr={"max": 0.5, "min": 0.5})
TOPOLOGY_KINDS = ("identity", "drop_edges", "add_edges", "drop_nodes", "subgraph", "mask_nodes",
                  "span_max", "span_min", "span_max_l2", "span_min_l2", "ppr")
# node-level SPAN solves the dense (official) problem up to this many nodes and the bounded-support
# one (every edge plus random candidate pairs, augment.span_probabilities_sparse) above it
SPAN_DENSE_MAX_NODES = 4096
PPR_EPS = 1e-4  # PyGCL PPRDiffusion's default threshold (MVGRL_graph.py / MVGRL_node.py)


@dataclasses.dataclass(frozen=True)
class View:
  """One view's augmentation: topology ``kind`` with strength ``p``, then feature masking.

  Attributes:
    kind: one of ``TOPOLOGY_KINDS`` (``"identity"``, ``"drop_edges"``, ``"add_edges"``,
      ``"drop_nodes"``, ``"subgraph"``, ``"mask_nodes"``, ``"span_max"``, ``"span_min"``,
      ``"span_max_l2"``, ``"span_min_l2"``, ``"ppr"``).
    p: strength of the topology augmentation (``add_edges`` fills the slots reserved with ratio
      ``p``; SPAN kinds use their own budget; ``ppr``: the teleport probability alpha).
    p_feature: probability of masking each feature column (node level; 0 = off).
  """

  kind: str = "drop_edges"
  p: float = 0.2
  p_feature: float = 0.0

  def __post_init__(self):
    if self.kind not in TOPOLOGY_KINDS:
      raise ValueError(f"kind: expected one of {TOPOLOGY_KINDS}, got {self.kind!r}")


def apply_topology(key, graph: jraph.GraphsTuple, view: View, *, pyg_compat: bool = False):
  """The non-spectral augmentations on a (possibly padded) GraphsTuple.

  Args:
    key: PRNG key.
    graph: a ``jraph.GraphsTuple`` with ``edges["weight"]`` (edge slots reserved for
      ``add_edges``).
    view: the augmentation; ``"identity"`` and SPAN kinds return ``graph`` unchanged.
    pyg_compat: reproduce PyGCL's ``EdgeAdding`` quirks.

  Returns:
    The augmented graph, same static shapes as ``graph``.
  """
  if view.kind == "drop_edges":
    return augment.drop_edges(key, graph, view.p)
  if view.kind == "add_edges":
    return augment.add_edges(key, graph, pyg_compat=pyg_compat)
  if view.kind == "drop_nodes":
    return augment.graphcl_drop_nodes(key, graph, view.p)
  if view.kind == "subgraph":
    return augment.graphcl_subgraph(key, graph, view.p)
  if view.kind == "mask_nodes":
    return augment.graphcl_mask_nodes(key, graph, view.p)
  return graph


def _dense_symmetric(graph: jraph.GraphsTuple, size: int) -> np.ndarray:
  """GCL-SPAN's ``get_adj_tensor`` on the host, zero-padded to ``(size, size)``."""
  adj = np.zeros((size, size), np.float32)
  live = np.asarray(graph.edges["weight"]) > 0
  adj[np.asarray(graph.senders)[live], np.asarray(graph.receivers)[live]] = 1.0
  adj = np.minimum(adj + adj.T, 1.0)
  np.fill_diagonal(adj, 0.0)
  return adj


def span_kind(view: View) -> str | None:
  """The kind of :func:`.augment.span_probabilities` for a SPAN view.

  ``"span_max_l2"`` -> ``"max-l2"``.

  Args:
    view: a :class:`View`.

  Returns:
    The SPAN kind string, or ``None`` for a non-SPAN view.
  """
  if not view.kind.startswith("span_"):
    return None
  return view.kind.removeprefix("span_").replace("_", "-")


class NodeContrastTask:
  """GRACE-style node-level contrast on one graph (see module docstring).

  Args:
    graph: the unpadded graph (edge slots reserved if a view adds edges).
    labels: ``(N,)`` int labels for the probe.
    model: a :class:`~jspectral.graph.encoders.GRACE` module.
    views: the two :class:`View` s.
    tau: temperature.
    probe: keyword arguments of :func:`~jspectral.graph.protocol.node_probe`.
    span_seed: seed of SPAN's initial perturbation vector (and of its candidate pairs).
    span_support: ``"dense"`` (official, ``O(N^2)``), ``"sparse"`` (every edge plus
      ``span_random_per_edge`` random candidate pairs per edge, ``O(E)``) or ``"auto"`` (dense up
      to ``SPAN_DENSE_MAX_NODES`` nodes).
    span_random_per_edge: candidate additions per undirected edge of the sparse support.
  """

  def __init__(self, graph, labels, model: nn.Module, views: tuple[View, View], tau: float = 0.4,
               probe: dict | None = None, span_seed: int = 0, span_support: str = "auto",
               span_random_per_edge: float = 1.0):
    G.check_graph(graph)
    if span_support not in ("auto", "dense", "sparse"):
      raise ValueError(f"span_support: expected 'auto', 'dense' or 'sparse', got "
                       f"{span_support!r}")
    self.graph, self.labels, self.model = graph, np.asarray(labels), model
    self.views, self.tau, self.probe = views, tau, dict(probe or {})
    self.ppr = {view.p: augment.ppr_graph(graph, view.p, PPR_EPS) for view in views
                if view.kind == "ppr"}
    kinds = sorted({span_kind(view) for view in views} - {None})
    self.span_dense = span_support == "dense" or (
        span_support == "auto" and graph.nodes.shape[0] <= SPAN_DENSE_MAX_NODES)
    if kinds and self.span_dense:
      self.adj = augment.symmetric_adjacency(graph)
    elif kinds:
      self.span_pairs, self.span_is_edge = (jnp.asarray(a) for a in augment.span_support(
          graph, span_random_per_edge, span_seed))
    self.span_prob = {kind: self._span_probabilities(kind, jax.random.key(span_seed))
                      for kind in kinds}

  def _span_probabilities(self, kind: str, key) -> jax.Array:
    """SPAN's node-level probabilities: ``(N, N)`` (dense) or one per support pair (sparse)."""
    settings = dict(kind=kind, ratio=SPAN_NODE["ratio"], lr=SPAN_NODE["lr"][kind.split("-")[0]],
                    iterations=SPAN_NODE["iterations"], threshold=SPAN_NODE["threshold"])
    if self.span_dense:
      return jax.jit(lambda a, k: augment.span_probabilities(a, key=k, **settings))(self.adj, key)
    n = self.graph.nodes.shape[0]
    return jax.jit(lambda p, e, k: augment.span_probabilities_sparse(n, p, e, key=k, **settings))(
        self.span_pairs, self.span_is_edge, key)

  def train_source(self):
    return [{"step": np.zeros((), np.int32)}]

  def view(self, key, view: View) -> jraph.GraphsTuple:
    k_topo, k_feat = jax.random.split(key)
    kind = span_kind(view)
    if kind and self.span_dense:
      sampled = augment.span_sample(k_topo, self.adj, self.span_prob[kind])
      graph = augment.dense_to_graph(sampled, self.graph.nodes)
    elif kind:
      graph = augment.span_sample_sparse(k_topo, self.graph, self.span_pairs, self.span_is_edge,
                                         self.span_prob[kind])
    elif view.kind == "ppr":
      graph = self.ppr[view.p]
    else:
      graph = apply_topology(k_topo, self.graph, view)
    if view.p_feature:
      graph = graph._replace(nodes=augment.mask_features(k_feat, graph.nodes, view.p_feature))
    return graph

  def init(self, rng, batch):
    return self.model.init(rng, self.graph)["params"], {}

  def loss(self, params, state, batch, rng):
    """GRACE's symmetric InfoNCE between two fresh augmentations of the graph.

    Args:
      params: trainable parameters.
      state: unused (``{}``).
      batch: the dummy example (the graph is a constant of the step).
      rng: key of the two views.

    Returns:
      ``(loss, {})``, ``loss`` a scalar.
    """
    k1, k2 = jax.random.split(rng)
    _, h1 = self.model.apply({"params": params}, self.view(k1, self.views[0]))
    _, h2 = self.model.apply({"params": params}, self.view(k2, self.views[1]))
    return losses.grace_infonce(h1, h2, self.tau), {}

  def embed(self, params, state=None) -> np.ndarray:
    """Frozen embeddings of the clean graph (encoder output, no projection head).

    Args:
      params: trainable parameters.
      state: unused here (subclasses read BatchNorm statistics from it).

    Returns:
      Node embeddings ``(N, D)``, NumPy.
    """
    return np.asarray(jax.jit(self.model.apply)({"params": params}, self.graph)[0])

  def evaluate(self, params, state):
    """Linear probe on the frozen embeddings (:func:`~jspectral.graph.protocol.node_probe`).

    Args:
      params: trainable parameters.
      state: non-trainable state.

    Returns:
      ``{"accuracy", "accuracy_std", "macro_f1", "macro_f1_std"}`` Python floats.
    """
    return protocol.node_probe(self.embed(params, state), self.labels, **self.probe)


class MVGRLNodeTask(NodeContrastTask):
  """MVGRL node level as GCL-SPAN / PyGCL run it.

  One GCN encoder per view, graph summaries ``s = projector(sigmoid(mean z))``, DGI negatives from
  row-shuffled features, JSD in G2L mode
  (``0.5 * (jsd(z2 . s1, z2~ . s1) + jsd(z1 . s2, z1~ . s2))``). Evaluation embedding
  ``concat(z1, z2)`` of the clean graph (both encoders; a ``"ppr"`` view's encoder sees the
  diffusion, as in PyGCL ``MVGRL_node.py``).

  Args:
    *args, **kwargs: as :class:`NodeContrastTask`; ``model`` a
      :class:`~jspectral.graph.encoders.MVGRLNode`.
  """

  def init(self, rng, batch):
    return self.model.init(rng, self.graph, self.graph)["params"], {}

  def loss(self, params, state, batch, rng):
    k1, k2, k_perm = jax.random.split(rng, 3)
    g1, g2 = self.view(k1, self.views[0]), self.view(k2, self.views[1])
    z1, z2, s1, s2 = self.model.apply({"params": params}, g1, g2)
    perm = jax.random.permutation(k_perm, g1.nodes.shape[0])
    # the DGI corruption; jnp.asarray: an unaugmented view still holds the host (NumPy) features
    n1, n2, _, _ = self.model.apply({"params": params},
                                    g1._replace(nodes=jnp.asarray(g1.nodes)[perm]),
                                    g2._replace(nodes=jnp.asarray(g2.nodes)[perm]))
    loss = 0.5 * (losses.jsd_loss(z2 @ s1, n2 @ s1) + losses.jsd_loss(z1 @ s2, n1 @ s2))
    return loss, {}

  def embed(self, params, state=None) -> np.ndarray:
    g1, g2 = (self.ppr[v.p] if v.kind == "ppr" else self.graph for v in self.views)
    z1, z2, _, _ = jax.jit(self.model.apply)({"params": params}, g1, g2)
    return np.concatenate([np.asarray(z1), np.asarray(z2)], axis=1)


class BGRLTask(NodeContrastTask):
  """BGRL (PyGCL ``BootstrapLatent``, L2L) with an EMA target network.

  The online network's predictions of each view regress the other view's projection by the target
  network, an EMA of the online parameters (``momentum``). State: online BatchNorm statistics and
  ``target`` parameters; the EMA uses the parameters before this step's update (one step behind the
  official post-step update). Evaluation: eval-mode online ``z``.

  Args:
    *args, **kwargs: as :class:`NodeContrastTask`; ``model`` a
      :class:`~jspectral.graph.encoders.BGRL`.
    momentum: EMA momentum of the target parameters.
  """

  def __init__(self, *args, momentum: float = 0.99, **kwargs):
    super().__init__(*args, **kwargs)
    self.momentum = momentum

  def init(self, rng, batch):
    variables = self.model.init({"params": rng, "dropout": rng}, self.graph, train=True)
    return variables["params"], {"batch_stats": variables["batch_stats"],
                                 "target": variables["params"]}

  def loss(self, params, state, batch, rng):
    k1, k2, k_drop = jax.random.split(rng, 3)
    g1, g2 = self.view(k1, self.views[0]), self.view(k2, self.views[1])
    stats, online, target = {"batch_stats": state["batch_stats"]}, [], []
    for i, g in enumerate((g1, g2)):
      rngs = {"dropout": jax.random.fold_in(k_drop, i)}
      out, stats = self.model.apply({"params": params, **stats}, g, True, rngs=rngs,
                                    mutable=["batch_stats"])
      online.append(out)
      t_out, _ = self.model.apply({"params": state["target"], **stats}, g, True,
                                  rngs={"dropout": jax.random.fold_in(k_drop, 2 + i)},
                                  mutable=["batch_stats"])
      target.append(t_out[1])
    loss = losses.bootstrap_loss(online[0][2], target[1], online[1][2], target[0])
    ema = jax.tree.map(lambda t, p: self.momentum * t + (1 - self.momentum) * p, state["target"],
                       jax.lax.stop_gradient(params))
    return loss, {"state": {**stats, "target": ema}}

  def embed(self, params, state=None) -> np.ndarray:
    return np.asarray(jax.jit(lambda p, s: self.model.apply(
        {"params": p, "batch_stats": s}, self.graph, False)[0])(params, state["batch_stats"]))


class GBTTask(NodeContrastTask):
  """Graph Barlow Twins (PyGCL G-BT example).

  Barlow Twins loss on the two views' encoder outputs (no projector). Evaluation: eval-mode
  embeddings of the clean graph.

  Args:
    *args, **kwargs: as :class:`NodeContrastTask`; ``model`` a
      :class:`~jspectral.graph.encoders.GBTEncoder`.
  """

  def init(self, rng, batch):
    variables = self.model.init(rng, self.graph, train=True)
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    k1, k2 = jax.random.split(rng)
    z1, stats = self.model.apply({"params": params, **state}, self.view(k1, self.views[0]), True,
                                 mutable=["batch_stats"])
    z2, stats = self.model.apply({"params": params, **stats}, self.view(k2, self.views[1]), True,
                                 mutable=["batch_stats"])
    return losses.barlow_twins_loss(z1, z2), {"state": stats}

  def embed(self, params, state=None) -> np.ndarray:
    return np.asarray(jax.jit(lambda p, s: self.model.apply(
        {"params": p, **s}, self.graph, False))(params, state))


_GRAPH_KEYS = ("x", "senders", "receivers", "weight", "slot", "n_node", "n_edge")


class GraphContrastTask:
  """GraphCL graph-level contrast (see module docstring).

  Args:
    graphs: single-graph GraphsTuples (GraphCL's self loops already added if wanted; edge slots
      reserved if a view adds edges).
    labels: ``(G,)`` graph labels for the SVM protocol.
    model: a :class:`~jspectral.graph.encoders.GraphCL` module.
    views: the augmentation of view 2 (view 1 the graph itself, as GraphCL), or the two views'
      augmentations (GCL-SPAN's graph script: ``span_max`` and ``span_min``).
    svm: keyword arguments of :func:`~jspectral.graph.protocol.graph_svm`.
    span_seed: seed of SPAN's initial perturbation vectors.
    pyg_compat: reproduce PyGCL's ``EdgeAdding`` quirks.
    ppr_top_k: sparsify the PPR view to the ``k`` largest entries per node instead of PyGCL's
      threshold ``PPR_EPS`` (bounds its edges at ``k`` per node on large graphs).
  """

  def __init__(self, graphs, labels, model: nn.Module, views: View | tuple[View, View],
               svm: dict | None = None, span_seed: int = 0, pyg_compat: bool = False,
               ppr_top_k: int | None = None):
    if not graphs:
      raise ValueError("graphs: expected a non-empty list")
    self.view_specs = (View("identity"), views) if isinstance(views, View) else tuple(views)
    self.model, self.svm = model, dict(svm or {})
    self.labels, self.pyg_compat = np.asarray(labels), pyg_compat
    self.max_nodes = max(int(np.sum(g.n_node)) for g in graphs)
    self.max_edges = max(int(np.sum(g.n_edge)) for g in graphs)
    self.examples = [G.to_padded_example(g, self.max_nodes, self.max_edges) for g in graphs]
    kinds = sorted({span_kind(v) for v in self.view_specs} - {None})
    if kinds:
      adj = np.stack([_dense_symmetric(g, self.max_nodes) for g in graphs])
      masks = np.arange(self.max_nodes)[None] < np.array([e["n_node"] for e in self.examples])[
          :, None]
      for example, a in zip(self.examples, adj, strict=True):
        example["adj"] = a
    for alpha in sorted({v.p for v in self.view_specs if v.kind == "ppr"}):
      self._add_ppr(graphs, alpha, ppr_top_k)
    for kind in kinds:
      keys = jax.random.split(jax.random.key(span_seed), len(graphs))
      prob = jax.jit(jax.vmap(lambda a, m, k, kind=kind: augment.span_probabilities(
          a, kind=kind, ratio=SPAN_GRAPH["ratio"], lr=SPAN_GRAPH["lr"][kind.split("-")[0]],
          iterations=SPAN_GRAPH["iterations"], threshold=SPAN_GRAPH["threshold"], key=k,
          node_mask=m)))(adj, masks, keys)
      for example, p in zip(self.examples, np.asarray(prob), strict=True):
        example[f"span_prob_{kind}"] = p

  def _add_ppr(self, graphs, alpha: float, top_k: int | None):
    """Each graph's PPR view as a padded weighted edge list stored in its example."""
    views = [augment.ppr_graph(g, alpha, PPR_EPS, top_k) for g in graphs]
    size = max(int(v.senders.shape[0]) for v in views)
    for example, v in zip(self.examples, views, strict=True):
      e = int(v.senders.shape[0])
      for name, value, dtype in (("senders", v.senders, np.int32),
                                 ("receivers", v.receivers, np.int32),
                                 ("weight", v.edges["weight"], np.float32)):
        example[f"ppr{alpha}_{name}"] = np.zeros(size, dtype)
        example[f"ppr{alpha}_{name}"][:e] = value
      example[f"ppr{alpha}_n_edge"] = np.int32(e)

  def _ppr_view(self, batch, alpha: float) -> jraph.GraphsTuple:
    prefix = f"ppr{alpha}_"
    weight = batch[prefix + "weight"]
    return G.collate_padded({"x": batch["x"], "n_node": batch["n_node"],
                             "senders": batch[prefix + "senders"],
                             "receivers": batch[prefix + "receivers"], "weight": weight,
                             "slot": jnp.zeros_like(weight), "n_edge": batch[prefix + "n_edge"]})

  def train_source(self):
    return self.examples

  def _span_view(self, key, batch, kind: str):
    keys = jax.random.split(key, batch["x"].shape[0])
    size = self.max_nodes * (self.max_nodes - 1)

    def one(k, adj, prob):
      sampled = augment.span_sample(k, adj, prob)
      g = augment.dense_to_graph(sampled, jnp.zeros((self.max_nodes, 1)), size)
      n_edge = jnp.sum(g.edges["weight"]).astype(jnp.int32)
      return {"senders": g.senders, "receivers": g.receivers, "weight": g.edges["weight"],
              "slot": g.edges["slot"], "n_edge": n_edge}

    edges = jax.vmap(one)(keys, batch["adj"], batch[f"span_prob_{kind}"])
    return G.collate_padded({"x": batch["x"], "n_node": batch["n_node"], **edges})

  def views(self, key, batch):
    """The two augmented views of a batch (static shapes).

    Args:
      key: PRNG key.
      batch: stacked padded examples.

    Returns:
      ``(view1, view2)`` collated ``GraphsTuple`` s.
    """
    graph = G.collate_padded({k: batch[k] for k in _GRAPH_KEYS})
    out = []
    for k, spec in zip(jax.random.split(key), self.view_specs, strict=True):
      kind = span_kind(spec)
      if kind:
        out.append(self._span_view(k, batch, kind))
      elif spec.kind == "ppr":
        out.append(self._ppr_view(batch, spec.p))
      else:
        out.append(apply_topology(k, graph, spec, pyg_compat=self.pyg_compat))
    return tuple(out)

  def eval_views(self, batch):
    """The deterministic views of evaluation: the PPR view where a view is one, else the graph.

    Args:
      batch: stacked padded examples.

    Returns:
      ``(view1, view2)`` collated ``GraphsTuple`` s.
    """
    graph = G.collate_padded({k: batch[k] for k in _GRAPH_KEYS})
    return tuple(self._ppr_view(batch, s.p) if s.kind == "ppr" else graph
                 for s in self.view_specs)

  def init(self, rng, batch):
    variables = self.model.init(rng, self.views(rng, batch)[0], train=True)
    return variables["params"], {"batch_stats": variables["batch_stats"]}

  def loss(self, params, state, batch, rng):
    """GraphCL's NT-Xent between the two views (view 1 the anchors); both update BatchNorm.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      batch: fixed-size padded examples (:func:`jspectral.data.graphs.to_padded_example`), collated
        in ``jit``.
      rng: key of the augmentation.

    Returns:
      ``(loss, {"state": updated batch_stats})``; padding graphs are masked out of the loss.
    """
    view1, view2 = self.views(rng, batch)
    (_, _, p1), upd = self.model.apply({"params": params, **state}, view1, True,
                                       mutable=["batch_stats"])
    (_, _, p2), upd = self.model.apply({"params": params, **upd}, view2, True,
                                       mutable=["batch_stats"])
    mask = G.graph_mask(view1)
    return losses.graphcl_ntxent(p1, p2, mask=mask), {"state": upd}

  def _batches(self, batch_size: int, keys=None):
    """Every example once, in order, in batches of static size (the last one padded by repeats)."""
    keys = keys or _GRAPH_KEYS
    for start in range(0, len(self.examples), batch_size):
      chunk = self.examples[start:start + batch_size]
      chunk = chunk + [chunk[-1]] * (batch_size - len(chunk))
      yield {k: np.stack([e[k] for e in chunk]) for k in keys}

  def embed(self, params, state, batch_size: int = 64) -> np.ndarray:
    """Eval-mode graph embeddings of every example, in order.

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.
      batch_size: graphs per compiled call (the last batch padded by repeats).

    Returns:
      Graph embeddings ``(G, D)``, NumPy.
    """
    apply = jax.jit(lambda p, s, b: self.model.apply(
        {"params": p, **s}, G.collate_padded(b), False)[0])
    out = [np.asarray(apply(params, state, b))[:batch_size]  # drop the padding graph's row
           for b in self._batches(batch_size)]
    return np.concatenate(out)[:len(self.examples)]

  def calibrate_batch_stats(self, params, state, *, passes: int = 8, batch_size: int = 32):
    """BatchNorm running statistics from ``passes`` train-mode passes over the clean graphs.

    No gradient step: this gives the random-init baseline the data-normalised features a trained
    encoder's BatchNorm has (without it the baseline probes un-normalised sums).

    Args:
      params: parameters (unchanged).
      state: ``{"batch_stats": ...}`` to start from.
      passes: passes over the data.
      batch_size: graphs per batch.

    Returns:
      The updated state.
    """
    update = jax.jit(lambda p, s, b: self.model.apply(
        {"params": p, **s}, G.collate_padded(b), True, mutable=["batch_stats"])[1])
    for _ in range(passes):
      for batch in self._batches(batch_size):
        state = update(params, state, batch)
    return state

  def evaluate(self, params, state):
    """GraphCL's SVM protocol on eval-mode embeddings (:func:`.protocol.graph_svm`).

    Args:
      params: trainable parameters.
      state: ``{"batch_stats": ...}``.

    Returns:
      ``{"accuracy", "accuracy_std"}`` Python floats.
    """
    return protocol.graph_svm(self.embed(params, state), self.labels, **self.svm)


class MVGRLGraphTask(GraphContrastTask):
  """MVGRL graph level (GCL-SPAN ``unsupervised_graph.py``, PyGCL ``examples/MVGRL_graph.py``).

  Two views (default: the graph and its PPR diffusion, alpha 0.2), one GCN encoder each,
  projected node states ``h`` and graph readouts ``g``; loss ``0.5 (jsd_g2l(g1, h2) +
  jsd_g2l(g2, h1))`` (PyGCL ``DualBranchContrast(JSD(), mode="G2L")``). Evaluation embedding
  ``g1 + g2`` of the deterministic views (:meth:`eval_views`; the official test pass feeds one
  more random draw of stochastic views, ours the clean graph). No BatchNorm: the state is empty.

  Args:
    graphs, labels, svm, span_seed, pyg_compat, ppr_top_k: as :class:`GraphContrastTask`.
    model: a :class:`~jspectral.graph.encoders.MVGRLGraph`.
    views: the two views' augmentations (a single :class:`View` is view 2, view 1 the graph).
  """

  def __init__(self, graphs, labels, model: nn.Module,
               views: View | tuple[View, View] = (View("identity"), View("ppr", 0.2)), **kwargs):
    super().__init__(graphs, labels, model, views, **kwargs)

  def _keys(self):
    return tuple(k for k in self.examples[0] if k in _GRAPH_KEYS or k.startswith("ppr"))

  def init(self, rng, batch):
    return self.model.init(rng, *self.views(rng, batch))["params"], {}

  def loss(self, params, state, batch, rng):
    """MVGRL's cross-view graph-node JSD; padding nodes and graphs are masked out.

    Args:
      params: trainable parameters.
      state: unused (``{}``).
      batch: fixed-size padded examples, collated in ``jit``.
      rng: key of the augmentations.

    Returns:
      ``(loss, {})``.
    """
    view1, view2 = self.views(rng, batch)
    h1, h2, g1, g2 = self.model.apply({"params": params}, view1, view2)
    args = (G.node_graph_index(view1), G.node_mask(view1), G.graph_mask(view1))
    return 0.5 * (losses.jsd_g2l(g1, h2, *args) + losses.jsd_g2l(g2, h1, *args)), {}

  def embed(self, params, state=None, batch_size: int = 64) -> np.ndarray:
    """``g1 + g2`` of every example's deterministic views, in order.

    Args:
      params: trainable parameters.
      state: unused.
      batch_size: graphs per compiled call.

    Returns:
      Graph embeddings ``(G, hidden)``, NumPy.
    """
    def one(p, b):
      _, _, g1, g2 = self.model.apply({"params": p}, *self.eval_views(b))
      return g1 + g2

    apply = jax.jit(one)
    out = [np.asarray(apply(params, b))[:batch_size] for b in self._batches(batch_size,
                                                                           self._keys())]
    return np.concatenate(out)[:len(self.examples)]
