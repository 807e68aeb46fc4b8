"""Self-supervised learning of spectral representations: INTL and SpectralEarth pre-training.

INTL (Weng et al., "Modulate Your Spectrum in Self-Supervised Learning", ICLR 2024) whitens
embeddings by a spectral transformation (IterNorm) and trains with a trace loss; SpectralEarth
(Braham et al., arXiv 2408.08447) pre-trains hyperspectral backbones on EnMAP patches with MoCo-v2,
DINO and MAE and fine-tunes them downstream. Modules:

* ``spectral_transform``: spectral transformations of embeddings (whitening, power-law ST,
  IterNorm), the trace loss and the INTL losses, pure functions of ``(N, D)`` batches.
* ``intl``: the INTL network (ResNet + projector), its registered variants, the official view
  augmentations as keyed JAX transforms and the EMA schedules.
* ``spectral_earth``: SpectralEarth's projection heads, MAE decoder, MoCo / DINO / MAE losses,
  host-side views, and the downstream segmentation / classification / Hyperview regression heads
  and losses.
* ``tasks``: :func:`jspectral.train.fit` tasks (INTL, MoCo, DINO, MAE, downstream segmentation,
  multi-label classification and regression).
* ``protocol``: frozen-feature evaluation (kNN and linear probe) of INTL's ``evaluate.py``.

Importing this package loads none of its modules; import them by name
(``from jspectral.ssl import intl``).
"""

__all__ = ["spectral_transform", "intl", "spectral_earth", "tasks", "protocol"]
