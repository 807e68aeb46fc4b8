"""Wall time and memory of one augmentation call as the graph grows (the paper's cost argument).

Edge perturbation is O(E) per call; SPAN needs an O(N^2)-memory precomputation with ``T``
gradient steps (each O(N^2) in the Frobenius form used here, O(N^3) with the official ``eigvalsh``)
and O(N^2) Bernoulli sampling per epoch. :func:`augmentation_costs` measures compiled calls
(compilation excluded, median of ``repeats``) and XLA's buffer estimate of each program.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jspectral.data import graphs as G
from jspectral.graph import augment


def random_graph(n: int, mean_degree: float = 8.0, seed: int = 0):
  """An Erdos-Renyi-like undirected graph with ``n`` nodes, both directions stored.

  Args:
    n: number of nodes.
    mean_degree: expected degree; ``n * mean_degree / 2`` pairs are drawn (self-loops and
      duplicates dropped).
    seed: NumPy seed.

  Returns:
    A ``jraph.GraphsTuple`` with ``(n, 1)`` zero node features.
  """
  rng = np.random.default_rng(seed)
  m = int(n * mean_degree / 2)
  pairs = rng.integers(0, n, (m, 2))
  pairs = pairs[pairs[:, 0] != pairs[:, 1]]
  pairs = np.unique(np.sort(pairs, 1), axis=0)
  edge_index = np.concatenate([pairs, pairs[:, ::-1]]).T
  return G.make_graph(np.zeros((n, 1), np.float32), edge_index)


def _measure(fn, args, repeats):
  compiled = jax.jit(fn).lower(*args).compile()
  jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - start)
  memory = compiled.memory_analysis()
  mem = None if memory is None else int(memory.temp_size_in_bytes + memory.argument_size_in_bytes
                                        + memory.output_size_in_bytes)
  return float(np.median(times)), mem


def augmentation_costs(n: int, *, span_iterations: int = 40, repeats: int = 3,
                       with_eigvalsh: bool = False, seed: int = 0) -> dict[str, tuple]:
  """Wall time and memory of one call of each augmentation on an ``n``-node graph.

  Methods: ``drop_edges``, ``add_edges`` (mirrored, ratio 0.2), ``span_precompute`` (node-level
  defaults, Frobenius form), ``span_sample`` (one Bernoulli view + edge list), and
  ``span_precompute_eigvalsh`` (the official per-step eigendecomposition) and
  ``span_l2_precompute`` (SPAN's spectrum-distance objective, eigvalsh) if ``with_eigvalsh``.

  Args:
    n: number of nodes of the :func:`random_graph`.
    span_iterations: SPAN gradient steps ``T``.
    repeats: timed calls per method (median taken; precomputations are timed once).
    with_eigvalsh: also time the eigvalsh variants.
    seed: graph and key seed.

  Returns:
    ``{method: (seconds, bytes)}``; ``bytes`` is XLA's argument + output + temp estimate, or
    ``None`` where the backend gives no memory analysis.
  """
  graph = random_graph(n, seed=seed)
  key = jax.random.key(seed)
  slotted = G.reserve_edge_slots(graph, 0.2)
  adj = augment.symmetric_adjacency(graph)
  out = {
      "drop_edges": _measure(lambda k, g: augment.drop_edges(k, g, 0.2), (key, graph), repeats),
      "add_edges": _measure(augment.add_edges, (key, slotted), repeats),
  }

  def span(a, k, eig=False, kind="max"):
    return augment.span_probabilities(a, kind=kind, ratio=0.3, lr=100.0,
                                      iterations=span_iterations, threshold=0.8, key=k,
                                      use_eigvalsh=eig)

  out["span_precompute"] = _measure(span, (adj, key), 1)
  prob = jax.jit(span)(adj, key)
  out["span_sample"] = _measure(
      lambda k, a, p: augment.dense_to_graph(augment.span_sample(k, a, p), graph.nodes,
                                             int(2 * graph.senders.shape[0] + 4 * n)),
      (key, adj, prob), repeats)
  if with_eigvalsh:
    out["span_precompute_eigvalsh"] = _measure(lambda a, k: span(a, k, True), (adj, key), 1)
    out["span_l2_precompute"] = _measure(lambda a, k: span(a, k, kind="max-l2"), (adj, key), 1)
  return out
