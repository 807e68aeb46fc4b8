"""Hyperspectral super-resolution: ESSAformer and multi-task Spectral Mixup SR, SSPSR protocol.

ESSAformer (Zhang et al., ICCV 2023) super-resolves one hyperspectral image with SCC-kernel
linear attention; Li et al.'s multi-task network ("Hyperspectral Image Super-Resolution with
Spectral Mixup and Heterogeneous Datasets", arXiv 2101.07589) trains on HSI, RGB and LR-only HSI
together. Both follow SSPSR's data and metric conventions, on bands-last ``(N, h, w, C)`` inputs.
Modules:

* ``essaformer``: the ESSAformer model, its attention variants and PyTorch converter.
* ``mixup_mtl``: the multi-task Spectral Mixup network, band grouping, consistency loss and
  schedule.
* ``layers``: PyTorch-ordered pixel (un)shuffle, the upsampler and the ``state_dict`` importer.
* ``losses``: SSPSR's hybrid loss (L1 + spatial and spectral total variation).
* ``tasks``: :func:`jspectral.train.fit` tasks for single-image and multi-task SR, and the
  patch-pair construction.
* ``protocol``: SSPSR's ``quality_assessment`` (MPSNR, MSSIM, SAM, CC, RMSE, ERGAS).
* ``sspsr_data``: SSPSR's patch grid, hold-out and dihedral x8 as a random-access index whose
  patches are degraded (MATLAB bicubic) on the fly.
* ``figures``: false-colour panels, per-band PSNR and spectral profiles.

Importing this package loads none of its modules; import them by name
(``from jspectral.superres import essaformer``).
"""

__all__ = ["essaformer", "mixup_mtl", "layers", "losses", "tasks", "protocol", "sspsr_data",
           "figures"]
