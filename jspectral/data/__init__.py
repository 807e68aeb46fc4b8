"""Data: TFDS builders of the real datasets, synthetic stand-ins, transforms and grain pipelines.

Each module is imported on use (``from jspectral.data import wald``), so TFDS loads only when a
builder is needed. Arrays are bands-last ``(H, W, C)`` or ``(N, H, W, C)``.

* ``tfds``: the manual-download builder base classes, ``.mat`` readers, ``prepare``/``data_source``;
* ``builders``: one TFDS builder per real dataset (ICVL, CAVE, Chikusei, PRISMA, SpectralEarth,
  Planetoid, TU, CIFAR, ...) and ``catalog()`` of their manual files;
* ``synthetic``: linear-mixing cubes and labelled scenes that look like the real datasets;
* ``noise``: the denoising papers' noise models (JAX) and a bit-exact NumPy replay of HSIR's;
* ``degradations``: MATLAB ``imresize`` bicubic and Gaussian blur + decimation for super-resolution;
* ``wald``: the pansharpening toolbox's MTF filters, interpolators and Wald RR/FR protocols;
* ``mixup``: Spectral Mixup band re-mixing;
* ``rgb``: RGB rendering of cubes from CIE or camera response curves;
* ``patches``: training crops, dihedral augmentation, classification patches, stratified splits;
* ``crops``: host-side torchvision-style random resized crops;
* ``pipeline``: grain training pipelines (shuffle, repeat, per-process sharding, batching);
* ``figures``: false-colour composites and spectra panels;
* ``graphs``: padded ``jraph.GraphsTuple`` conventions (construction, validation, padding);
* ``graph_files``: what the graph builders share (edge coalescing, ``NormalizeFeatures``);
* ``synthetic_graphs``: karate club, stochastic block models and graph-classification stand-ins.
"""

__all__ = [
    "builders", "crops", "degradations", "figures", "graph_files", "graphs", "mixup", "noise",
    "patches", "pipeline", "rgb", "synthetic", "synthetic_graphs", "tfds", "wald",
]
