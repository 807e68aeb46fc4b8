"""Hyperspectral image classification: LoLA-SpecViT, its LoRA schedule and evaluation protocol.

Zidi et al., "LoLA-SpecViT: Local Attention SwiGLU Vision Transformer with LoRA for Hyperspectral
Imaging" (arXiv 2506.17759, 2025): a 3-D convolution front end, local-window attention, SwiGLU
feed-forwards and gated LoRA with a cyclic LoRA schedule, classifying bands-last PCA patches
``(N, H, W, C)``. SpectralEarth's downstream heads live in :mod:`jspectral.ssl.spectral_earth`.
Modules:

* ``lola_specvit``: the model, LoRA merging, window helpers, the official learning-rate and
  cyclic LoRA schedules, PCA whitening and the PyTorch converter.
* ``tasks``: the :func:`jspectral.train.fit` task that trains LoLA-SpecViT.
* ``protocol``: OA, AA and kappa in percent, with the official AA rule.

Importing this package loads none of its modules; import them by name
(``from jspectral.classification import lola_specvit``).
"""

__all__ = ["lola_specvit", "tasks", "protocol"]
