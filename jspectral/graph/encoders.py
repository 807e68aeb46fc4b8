"""Graph encoders of the contrastive frameworks compared by Jian et al. (2024), on jraph.

Paper: Jian, Zhao, Pang, Ying, Wang, Xu, Yu, "Rethinking Spectral Augmentation for Contrast-based
Graph Self-Supervised Learning", arXiv 2405.19600 (TMLR 2025). Its own code was not found; the
encoders follow the official code of the frameworks it runs:

* :class:`GRACE` -- Zhu et al., "Deep Graph Contrastive Representation Learning" (2020),
  github.com/CRIPAC-DIG/GRACE (``model.py``): GCN encoder with the activation after every layer and
  an ELU projection head.
* :class:`GraphCL` -- You et al., "Graph Contrastive Learning with Augmentations" (NeurIPS 2020),
  github.com/Shen-Lab/GraphCL (``unsupervised_TU/gin.py``, ``gsimclr.py``): GIN layers
  (MLP, then ReLU, then BatchNorm), per-layer sum-pool readout concatenated, two-layer head.
* :class:`MVGRLNode` -- the two-view GCN encoder pair + projector the GCL-SPAN node script runs
  (github.com/Louise-LuLin/GCL-SPAN ``unsupervised_node.py``, = PyGCL's MVGRL example).
* :class:`MVGRLGraph` -- MVGRL at graph level (Hassani & Khasahmadi, ICML 2020,
  github.com/kavehhassani/mvgrl) as GCL-SPAN ``unsupervised_graph.py`` and PyGCL
  ``examples/MVGRL_graph.py`` run it: per-view GCN stacks, layer-wise sum-pool readout
  concatenated, node and graph ``FC`` projectors.
* :class:`BGRL` -- PyGCL's BGRL example (github.com/PyGCL/PyGCL ``examples/BGRL_L2L.py``): online
  GCN encoder + BatchNorm + projector, and the predictor; the target is an EMA copy kept as state.

:class:`GCNConv` reproduces PyG ``GCNConv`` exactly, including on the asymmetric edge sets that edge
dropping produces (``jraph.GraphConvolution`` does not: it normalises senders by out-degree and adds
its bias before aggregation). Every layer reads edge liveness from ``graph.edges["weight"]``, so
dropped and padding edges cost nothing and shapes stay static. BatchNorm statistics are taken over
real nodes only (padding masked), which PyTorch parity needs.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np

from jspectral.data import graphs as G
from jspectral.nn.model_spec import ModelSpec

_xavier = nn.initializers.xavier_uniform()
_torch_kernel = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias(fan_in: int):
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class TorchDense(nn.Module):
  """``torch.nn.Linear`` with PyTorch's default init (kernel and bias U(+-1/sqrt(fan_in))).

  Attributes:
    features: output width.
  """

  features: int

  @nn.compact
  def __call__(self, x):
    """Applies the linear map.

    Args:
      x: inputs, ``(..., F_in)``.

    Returns:
      Outputs, ``(..., features)``.
    """
    return nn.Dense(self.features, kernel_init=_torch_kernel,
                    bias_init=_torch_bias(x.shape[-1]))(x)


class GCNConv(nn.Module):
  """PyG ``GCNConv``: ``D^-1/2 (A + I) D^-1/2 X W + b`` with ``D`` from in-degree + 1.

  ``A[i, j]`` sums the live weights of edges ``j -> i``; as PyG's ``add_remaining_self_loops``, a
  node's live stored self loop keeps its weight (one per node expected, e.g. a diffusion view),
  every other node gets a weight-1 loop.
  Kernel glorot-uniform without bias in the linear map; bias (zero init) added after aggregation.

  Attributes:
    features: output channels.
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array, graph: jraph.GraphsTuple) -> jax.Array:
    """One graph convolution.

    Args:
      x: node features, ``(N, F)``.
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.

    Returns:
      Node features, ``(N, features)``.
    """
    n = x.shape[0]
    is_loop = graph.senders == graph.receivers
    weight = jnp.where(is_loop, 0.0, graph.edges["weight"])
    # add_remaining_self_loops: a live stored loop keeps its weight, other nodes get weight 1
    live_loop = is_loop & (graph.edges["weight"] > 0)
    loop = 1.0 + jax.ops.segment_sum(jnp.where(live_loop, graph.edges["weight"] - 1.0, 0.0),
                                     graph.receivers, n)
    inv_sqrt = jax.lax.rsqrt(loop + jax.ops.segment_sum(weight, graph.receivers, n))
    h = nn.Dense(self.features, use_bias=False, kernel_init=_xavier, name="lin")(x)
    coef = weight * inv_sqrt[graph.senders] * inv_sqrt[graph.receivers]
    out = jax.ops.segment_sum(h[graph.senders] * coef[:, None], graph.receivers, n)
    out = out + h * (loop * inv_sqrt**2)[:, None]
    return out + self.param("bias", nn.initializers.zeros, (self.features,))


class PReLU(nn.Module):
  """``torch.nn.PReLU(num_parameters)``: slope(s) initialised to 0.25.

  Attributes:
    num_parameters: number of slopes (1 shared, or one per channel).
  """

  num_parameters: int = 1

  @nn.compact
  def __call__(self, x):
    """Applies the PReLU.

    Args:
      x: inputs, ``(..., C)`` (``C == num_parameters`` unless it is 1).

    Returns:
      Activations, same shape.
    """
    slope = self.param("weight", nn.initializers.constant(0.25), (self.num_parameters,))
    return jnp.where(x >= 0, x, slope * x)


class MaskedBatchNorm(nn.Module):
  """``torch.nn.BatchNorm1d`` over node rows, statistics from rows where ``mask`` is True.

  Train mode normalises with the biased batch variance and updates the running statistics
  ``(1 - momentum) * running + momentum * batch`` (unbiased variance), as PyTorch does.

  Attributes:
    momentum: PyTorch-style running-statistics momentum.
    epsilon: variance epsilon.
  """

  momentum: float = 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, mask, train: bool):
    """Normalises node features.

    Args:
      x: node features, ``(N, C)``.
      mask: ``(N,)`` bool, True on real nodes.
      train: use (and update) batch statistics instead of the running ones.

    Returns:
      Normalised features, ``(N, C)``.
    """
    feat = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (feat,))
    bias = self.param("bias", nn.initializers.zeros, (feat,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (feat,))
    running_var = self.variable("batch_stats", "var", jnp.ones, (feat,))
    if train:
      m = mask.astype(x.dtype)[:, None]
      count = jnp.maximum(jnp.sum(m), 1.0)
      mean = jnp.sum(x * m, axis=0) / count
      var = jnp.sum(((x - mean) ** 2) * m, axis=0) / count
      if not self.is_initializing():
        unbiased = var * count / jnp.maximum(count - 1.0, 1.0)
        running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
        running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    else:
      mean, var = running_mean.value, running_var.value
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


RRELU_SLOPE = (1.0 / 8.0 + 1.0 / 3.0) / 2.0  # torch F.rrelu's evaluation slope


class GRACEEncoder(nn.Module):
  """GRACE ``Encoder``: ``num_layers`` GCNConv, activation after every layer (last included).

  Widths: ``F -> m*H``, ``(num_layers - 2) x (m*H -> m*H)``, ``m*H -> H`` with ``m =
  hidden_multiplier`` (GRACE: 2; PyGCL's GRACE example: 1). ``activation`` is ``"relu"`` or
  ``"prelu"`` (one slope shared by every layer, init 0.25).

  Attributes:
    out_features: output width ``H``.
    num_layers: number of GCNConv layers (>= 2).
    activation: ``"relu"``, ``"prelu"`` or ``"rrelu"``.
    hidden_multiplier: ``m``.
  """

  out_features: int = 128
  num_layers: int = 2
  activation: str = "relu"
  hidden_multiplier: int = 2

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple) -> jax.Array:
    """Encodes the nodes.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.

    Returns:
      Node embeddings, ``(N, out_features)``.

    Raises:
      ValueError: if ``num_layers < 2``, ``activation`` is unknown or the graph is malformed.
    """
    if self.num_layers < 2:
      raise ValueError(f"num_layers: expected >= 2, got {self.num_layers}")
    if self.activation not in ("relu", "prelu", "rrelu"):
      raise ValueError(f"activation: expected 'relu', 'prelu' or 'rrelu', got {self.activation!r}")
    G.check_graph(graph)
    if self.activation == "prelu":
      act = PReLU(1, name="activation")
    elif self.activation == "rrelu":  # F.rrelu called as a function: training=False
      act = functools.partial(nn.leaky_relu, negative_slope=RRELU_SLOPE)
    else:
      act = nn.relu
    widths = [self.hidden_multiplier * self.out_features] * (self.num_layers - 1)
    h = graph.nodes
    for i, width in enumerate([*widths, self.out_features]):
      h = act(GCNConv(width, name=f"conv_{i}")(h, graph))
    return h


class GRACE(nn.Module):
  """GRACE encoder + projection head (``fc1`` -> ELU -> ``fc2``, PyTorch-default init).

  ``__call__`` returns ``(z, projection(z))``; the embedding for evaluation is ``z``.
  Defaults: the Cora configuration of GRACE's ``config.yaml`` (H = P = 128, ReLU, 2 layers).

  Attributes:
    num_hidden: embedding width ``H``.
    num_proj_hidden: projection-head hidden width ``P``.
    num_layers: GCNConv layers.
    activation: ``"relu"``, ``"prelu"`` or ``"rrelu"``.
    hidden_multiplier: see :class:`GRACEEncoder`.
  """

  num_hidden: int = 128
  num_proj_hidden: int = 128
  num_layers: int = 2
  activation: str = "relu"
  hidden_multiplier: int = 2

  def setup(self):
    self.encoder = GRACEEncoder(self.num_hidden, self.num_layers, self.activation,
                                self.hidden_multiplier)
    self.fc1 = TorchDense(self.num_proj_hidden)
    self.fc2 = TorchDense(self.num_hidden)

  def project(self, z: jax.Array) -> jax.Array:
    """The projection head ``fc2(elu(fc1(z)))``.

    Args:
      z: node embeddings, ``(N, num_hidden)``.

    Returns:
      Projections, ``(N, num_hidden)``.
    """
    return self.fc2(nn.elu(self.fc1(z)))

  def __call__(self, graph: jraph.GraphsTuple) -> tuple[jax.Array, jax.Array]:
    """Encodes and projects the nodes.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.

    Returns:
      ``(z, h)``: embeddings and projections, both ``(N, num_hidden)``.
    """
    z = self.encoder(graph)
    return z, self.project(z)


class GINEncoder(nn.Module):
  """GraphCL ``Encoder``: GIN (eps 0, MLP Lin-ReLU-Lin) -> ReLU -> BatchNorm per layer.

  Returns ``(graph_emb (G, L*hidden), node_emb (N, L*hidden))``: per-layer sum-pool readouts and
  node states, concatenated. Linear layers are xavier-uniform with zero bias (GraphCL's init).

  Attributes:
    hidden: width of each GIN layer.
    num_layers: number of GIN layers ``L``.
  """

  hidden: int = 32
  num_layers: int = 3

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple, train: bool = True):
    """Encodes a batch of graphs.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``, ``G`` graphs.
      train: BatchNorm in train mode.

    Returns:
      ``(graph_emb, node_emb)``, ``(G, L*hidden)`` and ``(N, L*hidden)``.
    """
    G.check_graph(graph)
    mask = G.node_mask(graph)
    segments = G.node_graph_index(graph)
    num_graphs = graph.n_node.shape[0]
    weight = graph.edges["weight"]
    h, layers = graph.nodes, []
    for i in range(self.num_layers):
      agg = h + jax.ops.segment_sum(h[graph.senders] * weight[:, None], graph.receivers,
                                    h.shape[0])
      agg = nn.Dense(self.hidden, kernel_init=_xavier, name=f"conv_{i}_0")(agg)
      agg = nn.Dense(self.hidden, kernel_init=_xavier, name=f"conv_{i}_2")(nn.relu(agg))
      h = MaskedBatchNorm(name=f"bn_{i}")(nn.relu(agg), mask, train)
      layers.append(h)
    node_emb = jnp.concatenate(layers, axis=-1)
    pooled = jax.ops.segment_sum(node_emb * mask[:, None], segments, num_graphs)
    return pooled, node_emb


class GraphCL(nn.Module):
  """GraphCL ``simclr``: GIN encoder + projection head Lin(32L, 32L) -> ReLU -> Lin(32L, 32L).

  ``__call__(graph, train)`` returns ``(graph_emb, node_emb, projection)``. Defaults: the MUTAG
  configuration of ``go.sh`` (hidden 32, 3 layers).

  Attributes:
    hidden: width of each GIN layer.
    num_layers: number of GIN layers ``L``.
  """

  hidden: int = 32
  num_layers: int = 3

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple, train: bool = True):
    """Encodes and projects a batch of graphs.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``, ``G`` graphs.
      train: BatchNorm in train mode.

    Returns:
      ``(graph_emb, node_emb, projection)``, ``(G, L*hidden)``, ``(N, L*hidden)`` and
      ``(G, L*hidden)``.
    """
    graph_emb, node_emb = GINEncoder(self.hidden, self.num_layers, name="encoder")(graph, train)
    width = self.hidden * self.num_layers
    p = nn.relu(nn.Dense(width, kernel_init=_xavier, name="proj_0")(graph_emb))
    return graph_emb, node_emb, nn.Dense(width, kernel_init=_xavier, name="proj_2")(p)


class GCNStack(nn.Module):
  """``num_layers`` GCNConv of ``hidden`` channels, one per-channel PReLU shared by the layers.

  Attributes:
    hidden: channels of every layer.
    num_layers: number of GCNConv layers.
  """

  hidden: int = 512
  num_layers: int = 2

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple) -> tuple[jax.Array, ...]:
    """Encodes the nodes.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.

    Returns:
      Every layer's (activated) node states, ``num_layers`` arrays ``(N, hidden)``; the last is
      the node embedding.
    """
    G.check_graph(graph)
    act = PReLU(self.hidden, name="activation")
    h, layers = graph.nodes, []
    for i in range(self.num_layers):
      h = act(GCNConv(self.hidden, name=f"conv_{i}")(h, graph))
      layers.append(h)
    return tuple(layers)


class MVGRLNode(nn.Module):
  """MVGRL node-level model as run by GCL-SPAN: one :class:`GCNStack` per view + a projector.

  ``__call__(graph1, graph2)`` returns ``(z1, z2, s1, s2)`` with summaries ``s = projector(
  sigmoid(mean of real-node z))``; the evaluation embedding is ``concat(z1, z2)``.

  Attributes:
    hidden: channels of every layer and of the summaries.
    num_layers: GCNConv layers per view.
  """

  hidden: int = 512
  num_layers: int = 2

  @nn.compact
  def __call__(self, graph1: jraph.GraphsTuple, graph2: jraph.GraphsTuple):
    """Encodes both views and their summaries.

    Args:
      graph1: first view, node features ``(N, F)``.
      graph2: second view, node features ``(N, F)``.

    Returns:
      ``(z1, z2, s1, s2)``: node embeddings ``(N, hidden)`` and summaries ``(hidden,)``.
    """
    bound = 1.0 / math.sqrt(self.hidden)
    projector = nn.Dense(
        self.hidden, name="projector",
        kernel_init=lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound),
        bias_init=lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound))
    outputs = []
    for i, graph in enumerate((graph1, graph2)):
      z = GCNStack(self.hidden, self.num_layers, name=f"encoder_{i}")(graph)[-1]
      mask = G.node_mask(graph).astype(z.dtype)[:, None]
      outputs.append((z, projector(nn.sigmoid(jnp.sum(z * mask, 0) / jnp.sum(mask)))))
    (z1, s1), (z2, s2) = outputs
    return z1, z2, s1, s2


class FC(nn.Module):
  """MVGRL's projection ``FC``: three (Linear, ReLU) plus a linear shortcut (PyTorch init).

  Attributes:
    features: output width.
  """

  features: int = 512

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Projects.

    Args:
      x: inputs, ``(..., F_in)``.

    Returns:
      ``mlp(x) + linear(x)``, ``(..., features)``.
    """
    h = x
    for i in range(3):
      h = nn.relu(TorchDense(self.features, name=f"fc_{i}")(h))
    return h + TorchDense(self.features, name="linear")(x)


class MVGRLGraph(nn.Module):
  """MVGRL graph level as GCL-SPAN ``unsupervised_graph.py`` / PyGCL ``MVGRL_graph.py`` run it.

  Per view a :class:`GCNStack` (GCNConv layers, one per-channel PReLU shared by the layers) whose
  layer outputs are sum-pooled per graph and concatenated, ``(G, L*hidden)``; node states go
  through the node projector ``FC(hidden)``, graph readouts through the graph projector
  ``FC(hidden)`` (both projectors shared by the views). ``__call__(graph1, graph2)`` returns
  ``(h1, h2, g1, g2)``; the evaluation embedding is ``g1 + g2``.

  Attributes:
    hidden: channels of every layer and of both projectors.
    num_layers: GCNConv layers per view.
  """

  hidden: int = 512
  num_layers: int = 2

  @nn.compact
  def __call__(self, graph1: jraph.GraphsTuple, graph2: jraph.GraphsTuple):
    """Encodes both views.

    Args:
      graph1: first view (may batch and pad graphs), node features ``(N, F)``.
      graph2: second view, same nodes and graph partition as ``graph1``.

    Returns:
      ``(h1, h2, g1, g2)``: projected node states ``(N, hidden)`` and projected graph readouts
      ``(G, hidden)``.
    """
    node_fc, graph_fc = FC(self.hidden, name="mlp_node"), FC(self.hidden, name="mlp_graph")
    out = []
    for i, graph in enumerate((graph1, graph2)):
      layers = GCNStack(self.hidden, self.num_layers, name=f"encoder_{i}")(graph)
      mask = G.node_mask(graph)[:, None]
      pooled = jax.ops.segment_sum(jnp.concatenate(layers, -1) * mask,
                                   G.node_graph_index(graph), graph.n_node.shape[0])
      out.append((node_fc(layers[-1]), graph_fc(pooled)))
    (h1, g1), (h2, g2) = out
    return h1, h2, g1, g2


class BGRL(nn.Module):
  """BGRL online network (PyGCL example).

  GCN layers with PReLU and dropout, BatchNorm, a projector (Linear, BatchNorm, PReLU, dropout)
  and the predictor (Linear, BatchNorm, PReLU). ``__call__(graph, train)`` returns
  ``(z, projection, prediction)``; defaults hidden 256, 2 layers. BatchNorm momentum 0.01 for the
  predictor (PyGCL), 0.1 elsewhere.

  Attributes:
    hidden: width of every layer.
    num_layers: GCNConv layers.
    dropout: dropout rate.
  """

  hidden: int = 256
  num_layers: int = 2
  dropout: float = 0.2

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple, train: bool = True):
    """Runs the online network.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.
      train: BatchNorm in train mode and dropout on (needs a ``"dropout"`` RNG).

    Returns:
      ``(z, projection, prediction)``, each ``(N, hidden)``.
    """
    G.check_graph(graph)
    mask = G.node_mask(graph)
    act = PReLU(1, name="activation")
    z = graph.nodes
    for i in range(self.num_layers):
      z = act(GCNConv(self.hidden, name=f"conv_{i}")(z, graph))
      z = nn.Dropout(self.dropout, deterministic=not train)(z)
    z = MaskedBatchNorm(name="bn")(z, mask, train)
    p = TorchDense(self.hidden, name="proj_lin")(z)
    p = PReLU(1, name="proj_act")(MaskedBatchNorm(name="proj_bn")(p, mask, train))
    p = nn.Dropout(self.dropout, deterministic=not train)(p)
    q = TorchDense(self.hidden, name="pred_lin")(p)
    q = PReLU(1, name="pred_act")(MaskedBatchNorm(0.01, name="pred_bn")(q, mask, train))
    return z, p, q


class GBTEncoder(nn.Module):
  """Graph Barlow Twins encoder (PyGCL G-BT example).

  GCNConv(F -> 2h), BatchNorm (momentum 0.01), PReLU (one slope), GCNConv(2h -> h); no projector.
  Returns the node embeddings ``(N, h)``.

  Layout recalled from PyGCL's example; the spec's parameter counts (Cora 866,561, CiteSeer
  2,028,801) pin it.

  Attributes:
    hidden: output width ``h``.
  """

  hidden: int = 256

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple, train: bool = True) -> jax.Array:
    """Encodes the nodes.

    Args:
      graph: ``GraphsTuple``, nodes ``(N, F)``, ``edges["weight"]`` ``(E,)``.
      train: BatchNorm in train mode.

    Returns:
      Node embeddings, ``(N, hidden)``.
    """
    G.check_graph(graph)
    z = GCNConv(2 * self.hidden, name="conv_0")(graph.nodes, graph)
    z = PReLU(1, name="activation")(MaskedBatchNorm(0.01, name="bn")(z, G.node_mask(graph), train))
    return GCNConv(self.hidden, name="conv_1")(z, graph)


# ---------------------------------------------------------------------------------------------
# PyTorch state_dict converters (configuration read off the tensor shapes).


def grace_from_torch(state: dict) -> tuple[GRACE, dict]:
  """Converts a GRACE ``Model`` state_dict (``encoder.conv.<i>.lin.weight`` ...).

  The configuration is read off the tensor shapes; a bare ``Encoder`` state_dict (no ``encoder.``
  prefix) gives a :class:`GRACEEncoder`.

  Args:
    state: ``{name: array}`` PyTorch state_dict (NumPy arrays).

  Returns:
    ``(module, variables)``: a :class:`GRACE` (or :class:`GRACEEncoder`) and
    ``{"params": ...}``.
  """
  prefix = "encoder." if any(k.startswith("encoder.") for k in state) else ""
  num_layers = len({k for k in state if k.startswith(prefix + "conv.") and k.endswith(".bias")})
  first = state[f"{prefix}conv.0.lin.weight"]
  last = state[f"{prefix}conv.{num_layers - 1}.lin.weight"]
  hidden = last.shape[0]
  activation = "prelu" if f"{prefix}activation.weight" in state else "relu"
  encoder = {f"conv_{i}": {"lin": {"kernel": state[f"{prefix}conv.{i}.lin.weight"].T},
                           "bias": state[f"{prefix}conv.{i}.bias"]} for i in range(num_layers)}
  if activation == "prelu":
    encoder["activation"] = {"weight": state[f"{prefix}activation.weight"]}
  module_args = dict(num_hidden=hidden, num_layers=num_layers, activation=activation,
                     hidden_multiplier=first.shape[0] // hidden)
  if not prefix:  # the state_dict of a bare GRACE Encoder
    return GRACEEncoder(hidden, num_layers, activation, first.shape[0] // hidden), {
        "params": jax.tree.map(jnp.asarray, encoder)}
  params = {"encoder": encoder}
  for name in ("fc1", "fc2"):
    params[name] = {"Dense_0": {"kernel": state[f"{name}.weight"].T, "bias": state[f"{name}.bias"]}}
  module = GRACE(num_proj_hidden=state["fc1.weight"].shape[0], **module_args)
  return module, {"params": jax.tree.map(jnp.asarray, params)}


def graphcl_from_torch(state: dict) -> tuple[GraphCL, dict]:
  """Converts a GraphCL ``simclr`` state_dict.

  Args:
    state: ``{name: array}`` PyTorch state_dict (NumPy arrays).

  Returns:
    ``(module, variables)``: a :class:`GraphCL` and ``{"params", "batch_stats"}`` (BatchNorm
    running statistics included).
  """
  num_layers = len({k for k in state if k.startswith("encoder.convs.") and k.endswith("nn.0.bias")})
  hidden = state["encoder.convs.0.nn.0.weight"].shape[0]
  encoder, stats = {}, {}
  for i in range(num_layers):
    for j in (0, 2):
      encoder[f"conv_{i}_{j}"] = {"kernel": state[f"encoder.convs.{i}.nn.{j}.weight"].T,
                                  "bias": state[f"encoder.convs.{i}.nn.{j}.bias"]}
    encoder[f"bn_{i}"] = {"scale": state[f"encoder.bns.{i}.weight"],
                          "bias": state[f"encoder.bns.{i}.bias"]}
    stats[f"bn_{i}"] = {"mean": state[f"encoder.bns.{i}.running_mean"],
                        "var": state[f"encoder.bns.{i}.running_var"]}
  params = {"encoder": encoder}
  for j in (0, 2):
    params[f"proj_{j}"] = {"kernel": state[f"proj_head.{j}.weight"].T,
                           "bias": state[f"proj_head.{j}.bias"]}
  variables = {"params": params, "batch_stats": {"encoder": stats}}
  return GraphCL(hidden, num_layers), jax.tree.map(jnp.asarray, variables)


# ---------------------------------------------------------------------------------------------
# Registry: official default configurations (spec graph_ssl.md section 2).


def example_graph(num_features: int, num_nodes: int = 4) -> jraph.GraphsTuple:
  """A tiny path graph with ``num_features`` zero features (for ``init`` and parameter counts).

  Args:
    num_features: node feature width ``F``.
    num_nodes: path length.

  Returns:
    A ``jraph.GraphsTuple`` with nodes ``(num_nodes, F)`` and both edge directions.
  """
  src = np.arange(num_nodes - 1)
  edge_index = np.stack([np.r_[src, src + 1], np.r_[src + 1, src]])
  return G.make_graph(np.zeros((num_nodes, num_features), np.float32), edge_index)


def _grace(features, hidden, activation, multiplier=2):
  return ModelSpec(
      build=lambda **kw: GRACE(**{**dict(num_hidden=hidden, num_proj_hidden=hidden,
                                         activation=activation, hidden_multiplier=multiplier),
                                  **kw}),
      example_inputs=lambda m: {"graph": example_graph(features)},
      from_torch=grace_from_torch)


def _graphcl(features, layers):
  return ModelSpec(
      build=lambda **kw: GraphCL(**{**dict(hidden=32, num_layers=layers), **kw}),
      example_inputs=lambda m: {"graph": example_graph(features), "train": False},
      from_torch=graphcl_from_torch)


def _two_views(features):
  return lambda m: {"graph1": example_graph(features), "graph2": example_graph(features)}


MODELS = {
    "grace_cora": _grace(1433, 128, "relu"),
    "grace_citeseer": _grace(3703, 256, "prelu"),
    "grace_pubmed": _grace(500, 256, "relu"),
    "grace_dblp": _grace(1639, 256, "relu"),
    "pygcl_grace_cora": _grace(1433, 32, "relu", multiplier=1),
    "graphcl_mutag": _graphcl(7, 3),
    "graphcl_mutag_l5": _graphcl(7, 5),
    "graphcl_proteins": _graphcl(3, 3),
    "graphcl_nci1": _graphcl(37, 3),
    "graphcl_imdb_binary": _graphcl(1, 3),
    "pygcl_graphcl_mutag": _graphcl(7, 2),
    "mvgrl_node_cora": ModelSpec(build=MVGRLNode, example_inputs=_two_views(1433)),
    "mvgrl_graph_mutag": ModelSpec(build=MVGRLGraph, example_inputs=_two_views(7)),
    "mvgrl_graph_imdb_binary": ModelSpec(build=MVGRLGraph, example_inputs=_two_views(1)),
    "bgrl_cora": ModelSpec(build=BGRL, example_inputs=lambda m: {"graph": example_graph(1433),
                                                                 "train": False}),
    "gbt_cora": ModelSpec(build=GBTEncoder,
                          example_inputs=lambda m: {"graph": example_graph(1433), "train": False}),
}
