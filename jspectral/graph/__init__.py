"""Graph self-supervised learning: edge perturbation against spectral augmentation (SPAN).

Jian et al., "Rethinking Spectral Augmentation for Contrast-based Graph Self-Supervised Learning"
(arXiv 2405.19600, TMLR 2025), on jraph: GRACE-style node-level and GraphCL-style graph-level
contrast, plus the MVGRL, BGRL and graph Barlow Twins frameworks it compares. Padded graph
containers and the synthetic / file datasets live in :mod:`jspectral.data`. Modules:

* ``augment``: keyed, shape-preserving augmentations (edge dropping / adding, node dropping,
  feature masking, GraphCL's subgraph, SPAN's spectral perturbation probabilities, dense or on
  a bounded pair support, MVGRL's PPR diffusion view).
* ``encoders``: GCN / GIN encoders and the framework models (GRACE, GraphCL, MVGRL node and
  graph level, BGRL, G-BT), with PyTorch weight converters.
* ``losses``: InfoNCE / NT-Xent, JSD, bootstrap and Barlow Twins losses as pure functions.
* ``tasks``: :func:`jspectral.train.fit` tasks for node- and graph-level contrast.
* ``protocol``: evaluation on frozen embeddings (logistic-regression probe, SVM cross-validation).
* ``cost``: wall time and memory of an augmentation as the graph grows.
* ``figures``: the augmentation-cost plot.

Importing this package loads none of its modules; import them by name
(``from jspectral.graph import losses``).
"""

__all__ = ["augment", "encoders", "losses", "tasks", "protocol", "cost", "figures"]
