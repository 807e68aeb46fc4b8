"""Hyperspectral image denoising: the HSDT and MAN transformers and the HSIR protocol.

HSDT (Lai, Yan, Fu, "Hybrid Spectral Denoising Transformer with Guided Attention", ICCV 2023) and
MAN (Lai, Fu, "Mixed Attention Network for Hyperspectral Image Denoising", arXiv 2301.11525, v2
and v1) take bands-last cubes ``(N, H, W, bands)`` and treat the spectrum as the depth axis of 3-D
feature maps. Modules:

* ``hsdt``: the HSDT denoiser (S3Conv, guided spectral self-attention, SM-FFN) and its converter.
* ``man``: the MAN v2 and v1 denoisers and their PyTorch weight converters.
* ``layers``: the 3-D building blocks both networks share, and the PyTorch weight loader.
* ``tasks``: the supervised blind-denoising :func:`jspectral.train.fit` task.
* ``protocol``: the official MPSNR / MSSIM / SAM of HSIR's ``hsirun.test``, with their quirks.

Importing this package loads none of its modules; import them by name
(``from jspectral.denoising import hsdt``).
"""

__all__ = ["hsdt", "man", "layers", "tasks", "protocol"]
