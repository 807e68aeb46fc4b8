"""Hyperspectral pansharpening: the toolbox's classical and deep methods, and rho-PNN.

Ciotola et al.'s toolbox ("Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355) and rho-PNN (Guarino et al., "Zero-Shot Hyperspectral
Pansharpening Using Hysteresis-Based Tuning for Spectral Quality Control", IEEE TGRS 2025).
Inputs are bands-last: ``pan (N, H, W, 1)``, cubes ``(N, H, W, B)``. Wald's degradation lives in
:mod:`jspectral.data.wald`, the quality indices in :mod:`jspectral.metrics.pansharpening`. Modules:

* ``classical``: EXP, GSA, BT-H, BDSD-PC, PRACS, AWLP, MTF-GLP variants, MF, TV, SR-D, HySURE.
* ``deep``: HyperPNN, HSpeNet, Hyper-DSNet, DHP-DARN, DIP-HyperKite, R-PNN and PCA-Z-PNN
  networks, with official initialisation and weight conversion.
* ``per_image``: per-image priors (DHP, DIP) and zero-shot adaptation (R-PNN, PCA-Z-PNN).
* ``rho_pnn``: rho-PNN's network, losses, hysteresis switch, pre-training and band-wise fusion.
* ``resample``: MATLAB bicubic, PyTorch bilinear and the undecimated wavelet low-pass.
* ``tasks``: supervised reduced-resolution :func:`jspectral.train.fit` tasks, recipes and data.
* ``protocol``: the toolbox's reduced- and full-resolution evaluation protocols.

Importing this package loads none of its modules; import them by name
(``from jspectral.pansharpening import classical``).
"""

__all__ = ["classical", "deep", "per_image", "rho_pnn", "resample", "tasks", "protocol"]
