"""Spec ViT: the SpectralEarth transformer backbones (spectral adapter + timm ViT, sizes T..g).

Braham, Albrecht, Mairal, Chanussot, Wang, Zhu, "SpectralEarth: Training Hyperspectral Foundation
Models at Scale", arXiv 2408.08447 (IEEE JSTARS 2025). Official code: AABNassim/spectral_earth
(``src/backbones/spec_vit.py``).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.nn import vit as vit_lib
from jspectral.nn.model_spec import ModelSpec
from jspectral.nn.spectral_adapter import SpectralAdapter, convert_torch_adapter


class SpecViT(nn.Module):
  """Spectral adapter + timm ViT with ``token_patch_size`` tokens on the adapter's 128 channels.

  Defaults are Spec ViT-S/4 at 128 px: ``(N, 128, 128, B) -> (N, 384)`` class-token feature;
  1024 tokens on a 32x32 grid.

  Attributes:
    token_patch_size: ViT patch size on the adapter output.
    img_size: input height = width (the official ``patch_size`` argument).
    embed_dim: transformer width ``D``.
    depth: number of blocks.
    num_heads: attention heads.
    mlp_ratio: MLP hidden width over ``D``.
    num_classes: size of the linear head; 0 = class-token feature.
  """

  token_patch_size: int = 4
  img_size: int = 128
  embed_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: float = 4.0
  num_classes: int = 0

  def setup(self):
    self.spectral_adapter = SpectralAdapter()
    self.vit_core = vit_lib.VisionTransformer(
        img_size=self.img_size, patch_size=self.token_patch_size, embed_dim=self.embed_dim,
        depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
        num_classes=self.num_classes)

  @property
  def num_patches(self) -> int:
    """Number of patch tokens ``T = (img_size / token_patch_size)^2``."""
    return (self.img_size // self.token_patch_size) ** 2

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Tokens after the adapter, patch embedding and position embedding.

    Args:
      x: ``(N, img_size, img_size, B)``.
      train: BatchNorm mode of the adapter.

    Returns:
      ``(N, 1 + T, D)``, class token first.
    """
    return self.vit_core.embed(self.spectral_adapter(x, train))

  def encode_masked(self, x: jax.Array, idx_keep: jax.Array, train: bool = False) -> jax.Array:
    """MAE encoder: the adapter sees the full image; blocks run on tokens ``idx_keep`` only.

    Args:
      x: ``(N, img_size, img_size, B)``.
      idx_keep: ``(N, K)`` int indices into the ``1 + T`` tokens of :meth:`embed`.
      train: BatchNorm mode of the adapter.

    Returns:
      ``(N, K, D)`` normalised tokens.
    """
    tokens = jnp.take_along_axis(self.embed(x, train), idx_keep[..., None], axis=1)
    return self.vit_core.final_norm(self.vit_core.blocks_forward(tokens))

  def patch_tokens(self, x: jax.Array, train: bool = False, norm: bool = True) -> jax.Array:
    """Last-block patch tokens without the class token.

    timm ``get_intermediate_layers(n=1, norm=norm)``.

    Args:
      x: ``(N, img_size, img_size, B)``.
      train: BatchNorm mode of the adapter.
      norm: apply the final LayerNorm.

    Returns:
      ``(N, T, D)``.
    """
    tokens = self.vit_core.blocks_forward(self.embed(x, train))
    return (self.vit_core.final_norm(tokens) if norm else tokens)[:, 1:]

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the backbone.

    Args:
      x: ``(N, img_size, img_size, B)``, ``B >= 75``.
      train: BatchNorm mode of the adapter.

    Returns:
      ``(N, D)`` class-token feature, or ``(N, num_classes)`` logits.
    """
    return self.vit_core(self.spectral_adapter(x, train))


_VIT_SHAPES = {"t": (192, 12, 3), "s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16),
               "h": (1280, 32, 16), "g": (1536, 40, 24)}


def spec_vit(variant: str = "s", **overrides) -> SpecViT:
  """Spec ViT-T/S/B/L/H/g (timm widths; token size 4, 128 px by default).

  Args:
    variant: ``"t"``, ``"s"``, ``"b"``, ``"l"``, ``"h"`` or ``"g"``.
    **overrides: further :class:`SpecViT` fields.

  Returns:
    A :class:`SpecViT`.
  """
  if variant not in _VIT_SHAPES:
    raise ValueError(f"variant: expected one of {', '.join(_VIT_SHAPES)}, got {variant!r}")
  d, depth, heads = _VIT_SHAPES[variant]
  return SpecViT(**{"embed_dim": d, "depth": depth, "num_heads": heads, **overrides})


def spec_vit_from_torch(state_dict, num_heads: int | None = None) -> tuple[SpecViT, dict]:
  """A :class:`SpecViT` and its variables from an official ``SpecVisionTransformer`` state dict.

  The head count is not visible in the shapes: it is taken from the timm variant of the same
  width (192: 3, 384: 6, 768: 12, 1024/1280: 16, 1536: 24) unless ``num_heads`` is given.

  Args:
    state_dict: keys ``spectral_adapter.*`` and ``vit_core.*``.
    num_heads: attention heads, for a width that is not a timm variant.

  Returns:
    ``(module, variables)`` with ``params`` and ``batch_stats``.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  if "vit_core.pos_embed" not in sd or "spectral_adapter.0.weight" not in sd:
    raise ValueError("state_dict: expected SpecVisionTransformer keys 'spectral_adapter.*' and "
                     "'vit_core.*'")
  cfg = vit_lib.torch_vit_config(sd, "vit_core.")
  heads = {d: h for d, _, h in _VIT_SHAPES.values()}
  if num_heads is None:
    if cfg["embed_dim"] not in heads:
      raise ValueError(f"num_heads: width {cfg['embed_dim']} is not a timm variant; pass it")
    num_heads = heads[cfg["embed_dim"]]
  module = SpecViT(token_patch_size=cfg["patch_size"], img_size=cfg["img_size"],
                   embed_dim=cfg["embed_dim"], depth=cfg["depth"], num_heads=num_heads,
                   mlp_ratio=cfg["mlp_ratio"], num_classes=cfg["num_classes"])
  adapter = convert_torch_adapter(sd, "spectral_adapter.")
  variables = {"params": {"spectral_adapter": adapter["params"],
                          "vit_core": vit_lib.convert_torch_vit(sd, "vit_core.")},
               "batch_stats": {"spectral_adapter": adapter["batch_stats"]}}
  return module, jax.tree.map(jnp.asarray, variables)


def _example(m):
  return {"x": jax.ShapeDtypeStruct((1, m.img_size, m.img_size, 202), jnp.float32)}


MODELS = {
    "spec_vit": ModelSpec(build=spec_vit, example_inputs=_example, from_torch=spec_vit_from_torch),
    **{f"spec_vit_{v}": ModelSpec(build=functools.partial(spec_vit, v), example_inputs=_example)
       for v in _VIT_SHAPES},
}
