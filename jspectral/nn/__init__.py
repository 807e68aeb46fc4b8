"""Layers and backbones that more than one family builds on (flax.linen, bands-last inputs).

Each module is imported on use (``from jspectral.nn import resnet``); model modules register their
default configurations in a module-level ``MODELS`` dict that :mod:`jspectral.models` collects.

* ``model_spec``: ``ModelSpec``, the record of how to build, initialise and load one model;
* ``batchnorm``: ``TorchBatchNorm``, BatchNorm with PyTorch's unbiased running-variance update;
* ``canonical_conv``: a ``conv_general_dilated`` whose gradients stay fast inside ``lax`` loops;
* ``conv3d``: PyTorch's zero-padded ``Conv3d`` as 2-D convolutions (HSDT, MAN, LoLA-SpecViT);
* ``dense``: ``Dense`` whose weight gradient XLA:CPU runs without a transposed copy;
* ``convnet``: ``ResidualConvNet``, a small DnCNN-shaped residual network (the engine's example);
* ``resnet``: ResNet-18/50 backbones in the INTL / solo-learn layout, with torch weight conversion;
* ``vit``: a timm-style Vision Transformer core and its variants, with torch weight conversion;
* ``spectral_adapter``: SpectralEarth's per-pixel spectral 1-D convolution front end;
* ``spec_resnet``: SpectralEarth's Spec ResNet-50 (adapter + stem-less ResNet-50);
* ``spec_vit``: SpectralEarth's Spec ViT-T..g (adapter + timm ViT);
* ``torch_init``: PyTorch's default Linear/Conv initialisation redrawn over any Flax tree.
"""

__all__ = [
    "batchnorm", "canonical_conv", "conv3d", "convnet", "dense", "model_spec", "resnet",
    "spec_resnet", "spec_vit", "spectral_adapter", "torch_init", "vit",
]
