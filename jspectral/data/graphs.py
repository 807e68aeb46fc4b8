"""GraphsTuple conventions of the graph-SSL family: construction, validation, static padding.

Every graph in :mod:`jspectral.graph` is a ``jraph.GraphsTuple`` whose

* ``nodes`` is the float node-feature matrix ``(N, F)``;
* ``senders`` / ``receivers`` are PyG's ``edge_index[0]`` / ``edge_index[1]`` (messages flow
  sender -> receiver; undirected graphs store both directions);
* ``edges`` is a dict ``{"weight": (E,) float, "slot": (E,) float}``: ``weight`` is 1 for a live
  edge and 0 for an edge removed by an augmentation or added as padding (static shapes: nothing is
  ever deleted), ``slot`` is 1 for an edge slot reserved for edge adding (see
  :func:`reserve_edge_slots`);
* padding follows ``jraph.pad_with_graphs``: the last graph holds every padding node and edge, so
  ``jraph.get_node_padding_mask`` / ``get_graph_padding_mask`` give the real rows, and padding
  edges carry weight 0.

Two ways to static shapes: :func:`batch_and_pad` (``jraph.batch`` + ``pad_with_graphs`` to
power-of-two budgets, on the host) and :func:`collate_padded` (inside ``jit``: per-graph padded
arrays as stacked by a grain pipeline -> one canonical padded GraphsTuple).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import jraph
import numpy as np


def make_graph(x, edge_index, *, n_node=None, edge_weight=None) -> jraph.GraphsTuple:
  """A GraphsTuple from PyG-layout arrays.

  Args:
    x: node features ``(N, F)``.
    edge_index: ``(2, E)`` int, row 0 sources, row 1 targets.
    n_node: nodes per graph ``(G,)`` (default: one graph of ``N`` nodes); edges must be grouped by
      graph in the same order (as ``jraph.batch`` leaves them).
    edge_weight: optional ``(E,)`` edge weights, 0 = dead edge (default all ones).

  Returns:
    A validated ``GraphsTuple``.
  """
  x = np.asarray(x, np.float32)
  edge_index = np.asarray(edge_index)
  if edge_index.ndim != 2 or edge_index.shape[0] != 2:
    raise ValueError(f"edge_index: expected shape (2, E), got {edge_index.shape}")
  if x.ndim != 2:
    raise ValueError(f"x: expected node features (N, F), got shape {x.shape}")
  num_edges = edge_index.shape[1]
  if n_node is None:
    n_node = np.array([x.shape[0]])
    n_edge = np.array([num_edges])
  else:
    n_node = np.asarray(n_node)
    graph_of_sender = np.repeat(np.arange(len(n_node)), n_node)[edge_index[0]] if num_edges else []
    n_edge = np.bincount(np.asarray(graph_of_sender, np.int64), minlength=len(n_node))
  weight = np.ones(num_edges, np.float32) if edge_weight is None else np.asarray(edge_weight,
                                                                                 np.float32)
  graph = jraph.GraphsTuple(
      nodes=x, edges={"weight": weight, "slot": np.zeros(num_edges, np.float32)},
      senders=edge_index[0].astype(np.int32), receivers=edge_index[1].astype(np.int32),
      n_node=n_node.astype(np.int32), n_edge=n_edge.astype(np.int32), globals=None)
  check_graph(graph)
  return graph


def check_graph(graph: jraph.GraphsTuple) -> None:
  """Raises a ``ValueError`` naming the malformed field; does nothing on traced arrays.

  Args:
    graph: a ``GraphsTuple`` in this module's conventions.
  """
  leaves = (graph.nodes, graph.senders, graph.receivers, graph.n_node, graph.n_edge)
  if any(isinstance(a, jax.core.Tracer) for a in leaves):
    return
  nodes = np.asarray(graph.nodes)
  n_node, n_edge = np.asarray(graph.n_node), np.asarray(graph.n_edge)
  senders, receivers = np.asarray(graph.senders), np.asarray(graph.receivers)
  if nodes.ndim != 2:
    raise ValueError(f"nodes: expected node features (N, F), got shape {nodes.shape}")
  if n_node.ndim != 1 or n_node.size == 0 or np.any(n_node < 0):
    raise ValueError(f"n_node: expected a non-empty vector of non-negative counts, got {n_node}")
  total = int(n_node.sum())
  if total == 0:
    raise ValueError("n_node: the graph is empty (no nodes)")
  if nodes.shape[0] != total:
    raise ValueError(f"nodes: {nodes.shape[0]} feature rows but n_node sums to {total}")
  if senders.shape != receivers.shape or senders.ndim != 1:
    raise ValueError(f"senders/receivers: expected equal (E,) vectors, got {senders.shape} and "
                     f"{receivers.shape}")
  if int(n_edge.sum()) != senders.shape[0]:
    raise ValueError(f"n_edge: sums to {int(n_edge.sum())} but there are {senders.shape[0]} edges")
  for name, index in (("senders", senders), ("receivers", receivers)):
    if index.size and (index.min() < 0 or index.max() >= total):
      raise ValueError(f"{name}: indices must lie in [0, {total}), got range "
                       f"[{index.min()}, {index.max()}]")
  if not isinstance(graph.edges, dict) or "weight" not in graph.edges:
    raise ValueError("edges: expected a dict with 'weight' (and 'slot') arrays; use make_graph")
  for key, value in graph.edges.items():
    if np.shape(value) != senders.shape:
      raise ValueError(f"edges[{key!r}]: expected shape {senders.shape}, got {np.shape(value)}")


def node_graph_index(graph: jraph.GraphsTuple) -> jax.Array:
  """Graph id of every node, jit-safe (static total from the feature rows).

  Args:
    graph: a ``GraphsTuple`` with ``N`` nodes.

  Returns:
    ``(N,)`` int.
  """
  num_nodes = graph.nodes.shape[0]
  return jnp.repeat(jnp.arange(graph.n_node.shape[0]), graph.n_node,
                    total_repeat_length=num_nodes)


def edge_graph_index(graph: jraph.GraphsTuple) -> jax.Array:
  """Graph id of every edge.

  Args:
    graph: a ``GraphsTuple`` with ``E`` edges.

  Returns:
    ``(E,)`` int.
  """
  return jnp.repeat(jnp.arange(graph.n_edge.shape[0]), graph.n_edge,
                    total_repeat_length=graph.senders.shape[0])


def node_offsets(graph: jraph.GraphsTuple) -> jax.Array:
  """Index of each graph's first node.

  Args:
    graph: a ``GraphsTuple`` with ``G`` graphs.

  Returns:
    ``(G,)`` int.
  """
  return jnp.cumsum(graph.n_node) - graph.n_node


def is_padded(graph: jraph.GraphsTuple) -> bool:
  """Whether ``graph`` carries a trailing padding graph (``pad_graph`` marks it in ``globals``).

  Args:
    graph: a ``GraphsTuple``.

  Returns:
    A Python bool.
  """
  return isinstance(graph.globals, dict) and "padded" in graph.globals


def node_mask(graph: jraph.GraphsTuple) -> jax.Array:
  """True on real nodes (all True for an unpadded graph).

  Args:
    graph: a ``GraphsTuple`` with ``N`` nodes.

  Returns:
    ``(N,)`` bool.
  """
  if is_padded(graph):
    return jraph.get_node_padding_mask(graph)
  return jnp.ones(graph.nodes.shape[0], bool)


def graph_mask(graph: jraph.GraphsTuple) -> jax.Array:
  """True on real graphs.

  Args:
    graph: a ``GraphsTuple`` with ``G`` graphs.

  Returns:
    ``(G,)`` bool.
  """
  if is_padded(graph):
    return jraph.get_graph_padding_mask(graph)
  return jnp.ones(graph.n_node.shape[0], bool)


def pad_graph(graph: jraph.GraphsTuple, n_node: int, n_edge: int,
              n_graph: int) -> jraph.GraphsTuple:
  """``jraph.pad_with_graphs`` that also marks the result as padded (padding edges get weight 0).

  Args:
    graph: an unpadded ``GraphsTuple``.
    n_node: static node budget, > real nodes.
    n_edge: static edge budget, >= real edges.
    n_graph: static graph budget, > real graphs.

  Returns:
    A ``GraphsTuple`` with exactly ``n_node`` nodes, ``n_edge`` edges and ``n_graph`` graphs;
    ``globals = {"padded": (n_graph,)}``.
  """
  real_nodes, real_graphs = int(np.sum(graph.n_node)), int(np.shape(graph.n_node)[0])
  if n_node <= real_nodes or n_graph <= real_graphs or n_edge < int(np.sum(graph.n_edge)):
    raise ValueError(f"n_node/n_edge/n_graph: budgets ({n_node}, {n_edge}, {n_graph}) must exceed "
                     f"the real sizes ({real_nodes}, {int(np.sum(graph.n_edge))}, {real_graphs})")
  padded = jraph.pad_with_graphs(graph._replace(globals=None), n_node, n_edge, n_graph)
  return padded._replace(globals={"padded": np.ones(n_graph, np.float32)})


def next_power_of_two(n: int) -> int:
  """The smallest power of two ``>= n``.

  Args:
    n: a positive integer.

  Returns:
    A Python int.
  """
  return 1 << max(0, int(n - 1).bit_length())


def batch_and_pad(graphs: Sequence[jraph.GraphsTuple], n_node: int | None = None,
                  n_edge: int | None = None, n_graph: int | None = None) -> jraph.GraphsTuple:
  """``jraph.batch`` then :func:`pad_graph`; budgets default to the next powers of two.

  Args:
    graphs: unpadded ``GraphsTuple`` s.
    n_node: node budget (default: next power of two above the total + 1).
    n_edge: edge budget (default: next power of two of the total).
    n_graph: graph budget (default: ``len(graphs) + 1``).

  Returns:
    One padded ``GraphsTuple``.
  """
  if not graphs:
    raise ValueError("graphs: expected at least one graph")
  batch = jraph.batch([g._replace(globals=None) for g in graphs])
  total_n, total_e = int(np.sum(batch.n_node)), int(np.sum(batch.n_edge))
  return pad_graph(batch, n_node or next_power_of_two(total_n + 1),
                   n_edge or next_power_of_two(total_e), n_graph or len(graphs) + 1)


def reserve_edge_slots(graph: jraph.GraphsTuple, ratio: float, *,
                       mirrored: bool = True) -> jraph.GraphsTuple:
  """Appends ``int(E_g * ratio)`` dead edge slots to each graph ``g`` (``2x`` if ``mirrored``).

  :func:`jspectral.graph.augment.add_edges` fills the slots with sampled pairs; until then they are
  self-loops on the graph's first node with weight 0 and ``slot`` 1 (``2`` marks the mirror slot
  of the slot before it). Call before padding.

  Args:
    graph: an unpadded ``GraphsTuple``.
    ratio: slots per existing edge, >= 0.
    mirrored: reserve a mirror slot for each slot (undirected graphs).

  Returns:
    The ``GraphsTuple`` with the extra edges appended graph by graph.
  """
  if not 0.0 <= ratio:
    raise ValueError(f"ratio: expected >= 0, got {ratio}")
  n_node, n_edge = np.asarray(graph.n_node), np.asarray(graph.n_edge)
  first = np.cumsum(n_node) - n_node
  per_graph = (n_edge * ratio).astype(np.int64) * (2 if mirrored else 1)
  edge_start = np.cumsum(n_edge) - n_edge
  pieces = {k: [] for k in ("senders", "receivers", "weight", "slot")}
  for g in range(len(n_node)):
    sl = slice(edge_start[g], edge_start[g] + n_edge[g])
    extra = int(per_graph[g])
    pieces["senders"] += [np.asarray(graph.senders)[sl], np.full(extra, first[g], np.int32)]
    pieces["receivers"] += [np.asarray(graph.receivers)[sl], np.full(extra, first[g], np.int32)]
    pieces["weight"] += [np.asarray(graph.edges["weight"])[sl], np.zeros(extra, np.float32)]
    pattern = np.tile([1.0, 2.0], extra // 2) if mirrored else np.ones(extra)
    pieces["slot"] += [np.asarray(graph.edges["slot"])[sl], pattern.astype(np.float32)]
  cat = {k: np.concatenate(v) for k, v in pieces.items()}
  return graph._replace(senders=cat["senders"].astype(np.int32),
                        receivers=cat["receivers"].astype(np.int32),
                        edges={"weight": cat["weight"], "slot": cat["slot"]},
                        n_edge=(n_edge + per_graph).astype(np.int32))


def to_padded_example(graph: jraph.GraphsTuple, max_nodes: int, max_edges: int) -> dict:
  """One graph as fixed-size arrays, so a grain pipeline can stack a batch of them.

  :func:`collate_padded` turns a stacked batch back into a graph.

  Args:
    graph: a single unpadded ``GraphsTuple`` with ``F`` features.
    max_nodes: node budget.
    max_edges: edge budget.

  Returns:
    ``{"x": (max_nodes, F), "senders"/"receivers"/"weight"/"slot": (max_edges,), "n_node": (),
    "n_edge": ()}``.
  """
  n, e = int(np.sum(graph.n_node)), int(np.sum(graph.n_edge))
  if n > max_nodes or e > max_edges:
    raise ValueError(f"max_nodes/max_edges: graph has {n} nodes, {e} edges; budgets are "
                     f"{max_nodes}, {max_edges}")
  x = np.zeros((max_nodes, graph.nodes.shape[1]), np.float32)
  x[:n] = graph.nodes

  def pad_edges(a, dtype):
    out = np.zeros(max_edges, dtype)
    out[:e] = a
    return out

  return {"x": x, "senders": pad_edges(graph.senders, np.int32),
          "receivers": pad_edges(graph.receivers, np.int32),
          "weight": pad_edges(graph.edges["weight"], np.float32),
          "slot": pad_edges(graph.edges["slot"], np.float32),
          "n_node": np.int32(n), "n_edge": np.int32(e)}


def collate_padded(batch: dict) -> jraph.GraphsTuple:
  """Stacked :func:`to_padded_example` arrays -> one padded GraphsTuple, in ``jit``.

  Real nodes and edges are moved to the front (graph by graph) and every padding row goes to a
  trailing padding graph, exactly the layout ``jraph.pad_with_graphs`` produces: ``B * max_nodes``
  nodes, ``B * max_edges`` edges and ``B + 1`` graphs for every batch: one compilation serves all.

  Args:
    batch: :func:`to_padded_example` dicts stacked along a leading axis ``(B, ...)``.

  Returns:
    A padded ``GraphsTuple``.
  """
  x = batch["x"]
  b, max_nodes, feat = x.shape
  max_edges = batch["senders"].shape[1]
  n_node, n_edge = batch["n_node"].astype(jnp.int32), batch["n_edge"].astype(jnp.int32)
  node_valid = (jnp.arange(max_nodes)[None] < n_node[:, None]).reshape(-1)
  edge_valid = (jnp.arange(max_edges)[None] < n_edge[:, None]).reshape(-1)
  node_order = jnp.argsort(~node_valid, stable=True)
  edge_order = jnp.argsort(~edge_valid, stable=True)
  new_position = jnp.zeros(b * max_nodes, jnp.int32).at[node_order].set(
      jnp.arange(b * max_nodes, dtype=jnp.int32))
  offsets = (jnp.arange(b, dtype=jnp.int32) * max_nodes)[:, None]
  senders = new_position[(batch["senders"] + offsets).reshape(-1)][edge_order]
  receivers = new_position[(batch["receivers"] + offsets).reshape(-1)][edge_order]
  # dead edges point at the first padding node (or the last node if no row is padding): weight 0
  pad_node = jnp.minimum(jnp.sum(n_node), b * max_nodes - 1)
  valid_sorted = edge_valid[edge_order]
  senders = jnp.where(valid_sorted, senders, pad_node)
  receivers = jnp.where(valid_sorted, receivers, pad_node)
  weight = jnp.where(valid_sorted, batch["weight"].reshape(-1)[edge_order], 0.0)
  slot = jnp.where(valid_sorted, batch["slot"].reshape(-1)[edge_order], 0.0)
  nodes = x.reshape(b * max_nodes, feat)[node_order]
  return jraph.GraphsTuple(
      nodes=nodes, edges={"weight": weight, "slot": slot}, senders=senders, receivers=receivers,
      n_node=jnp.concatenate([n_node, (b * max_nodes - jnp.sum(n_node))[None]]),
      n_edge=jnp.concatenate([n_edge, (b * max_edges - jnp.sum(n_edge))[None]]),
      globals={"padded": jnp.ones(b + 1, jnp.float32)})


def dense_adjacency(graph: jraph.GraphsTuple) -> jax.Array:
  """``A[i, j]`` = summed live weight of edges ``j -> i`` (PyG target rows).

  Args:
    graph: a ``GraphsTuple`` with ``N`` nodes.

  Returns:
    ``(N, N)`` float32.
  """
  n = graph.nodes.shape[0]
  return jnp.zeros((n, n), jnp.float32).at[graph.receivers, graph.senders].add(
      graph.edges["weight"])
