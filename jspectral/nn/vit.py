"""A timm-style Vision Transformer core (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words",
ICLR), laid out like ``timm.models.vision_transformer.VisionTransformer``: a strided-conv patch
embedding, a class token, a learned position embedding, pre-norm blocks (LayerNorm eps 1e-6,
multi-head attention with a biased qkv projection, exact-GELU MLP), a final LayerNorm and
class-token pooling.

Inputs are bands-last ``(N, H, W, C)``; tokens are ordered row-major over the ``(H/p, W/p)``
grid, as in timm. Besides ``__call__`` the module exposes ``embed`` (tokens with class token and
position embedding), ``blocks_forward`` (the transformer blocks on any token subset) and
``final_norm``, so masked-autoencoder encoders and segmentation heads can be composed from it.

Variants follow the timm names: ``vit_tiny`` .. ``vit_giant`` (the giant variant here is the
``1536 / 40 / 24`` configuration used by SpectralEarth's Spec ViT-g, MLP ratio 4).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

_dense_init = nn.initializers.truncated_normal(0.02)


class Attention(nn.Module):
  """Multi-head self-attention with a fused, biased ``qkv`` projection and an output ``proj``.

  Attributes:
    num_heads: number of heads; must divide the token width.
    qkv_bias: bias on the ``qkv`` projection.
  """

  num_heads: int
  qkv_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies attention over the tokens.

    Args:
      x: tokens ``(N, T, D)``.

    Returns:
      ``(N, T, D)``.
    """
    n, t, d = x.shape
    if d % self.num_heads:
      raise ValueError(f"embed_dim: {d} is not divisible by num_heads={self.num_heads}")
    head_dim = d // self.num_heads
    qkv = nn.Dense(3 * d, use_bias=self.qkv_bias, kernel_init=_dense_init, name="qkv")(x)
    qkv = qkv.reshape(n, t, 3, self.num_heads, head_dim).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    weights = jax.nn.softmax(jnp.einsum("nhqd,nhkd->nhqk", q, k) * head_dim**-0.5, axis=-1)
    out = jnp.einsum("nhqk,nhkd->nqhd", weights, v).reshape(n, t, d)
    return nn.Dense(d, kernel_init=_dense_init, name="proj")(out)


class Mlp(nn.Module):
  """``fc1 -> GELU (exact) -> fc2``.

  Attributes:
    hidden: width of ``fc1``.
  """

  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the MLP.

    Args:
      x: ``(..., D)``.

    Returns:
      ``(..., D)``.
    """
    h = nn.gelu(nn.Dense(self.hidden, kernel_init=_dense_init, name="fc1")(x), approximate=False)
    return nn.Dense(x.shape[-1], kernel_init=_dense_init, name="fc2")(h)


class Block(nn.Module):
  """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

  Attributes:
    num_heads: attention heads.
    mlp_ratio: MLP hidden width over the token width.
    qkv_bias: bias on the ``qkv`` projection.
  """

  num_heads: int
  mlp_ratio: float = 4.0
  qkv_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: tokens ``(N, T, D)``.

    Returns:
      ``(N, T, D)``.
    """
    x = x + Attention(self.num_heads, self.qkv_bias, name="attn")(
        nn.LayerNorm(epsilon=1e-6, name="norm1")(x))
    hidden = int(x.shape[-1] * self.mlp_ratio)
    return x + Mlp(hidden, name="mlp")(nn.LayerNorm(epsilon=1e-6, name="norm2")(x))


class VisionTransformer(nn.Module):
  """timm ``VisionTransformer`` with class token, learned position embedding and token pooling.

  Attributes:
    img_size: input height = width the position embedding is sized for.
    patch_size: token size ``p`` (conv kernel = stride = ``p``).
    embed_dim: transformer width ``D``.
    depth: number of blocks.
    num_heads: attention heads.
    mlp_ratio: MLP hidden width over ``D``.
    qkv_bias: bias on the ``qkv`` projections.
    num_classes: size of the linear ``head`` on the pooled feature; 0 means no head.
  """

  img_size: int = 224
  patch_size: int = 16
  embed_dim: int = 768
  depth: int = 12
  num_heads: int = 12
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  num_classes: int = 0

  def setup(self):
    if self.img_size % self.patch_size:
      raise ValueError(f"img_size: {self.img_size} is not a multiple of patch_size="
                       f"{self.patch_size}")
    grid = self.img_size // self.patch_size
    p = self.patch_size
    self.patch_embed = nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID",
                               name="patch_embed")
    self.cls_token = self.param("cls_token", nn.initializers.normal(1e-6),
                                (1, 1, self.embed_dim))
    self.pos_embed = self.param("pos_embed", nn.initializers.truncated_normal(0.02),
                                (1, 1 + grid * grid, self.embed_dim))
    self.blocks = [Block(self.num_heads, self.mlp_ratio, self.qkv_bias, name=f"blocks_{i}")
                   for i in range(self.depth)]
    self.norm = nn.LayerNorm(epsilon=1e-6, name="norm")
    self.head = (nn.Dense(self.num_classes, kernel_init=_dense_init, name="head")
                 if self.num_classes else None)

  def embed(self, x: jax.Array) -> jax.Array:
    """Patch tokens with the class token first, plus the position embedding.

    Args:
      x: ``(N, img_size, img_size, C)``.

    Returns:
      ``(N, 1 + (H/p)(W/p), D)``.
    """
    if x.ndim != 4 or x.shape[1] != self.img_size or x.shape[2] != self.img_size:
      raise ValueError(f"x: expected (N, {self.img_size}, {self.img_size}, C), got {x.shape}")
    tokens = self.patch_embed(x)
    tokens = tokens.reshape(x.shape[0], -1, self.embed_dim)
    cls = jnp.broadcast_to(self.cls_token, (x.shape[0], 1, self.embed_dim)).astype(tokens.dtype)
    return jnp.concatenate([cls, tokens], axis=1) + self.pos_embed

  def blocks_forward(self, tokens: jax.Array) -> jax.Array:
    """Runs every block on any subset of tokens; no final norm.

    Args:
      tokens: ``(N, T, D)``.

    Returns:
      ``(N, T, D)``.
    """
    for block in self.blocks:
      tokens = block(tokens)
    return tokens

  def final_norm(self, tokens: jax.Array) -> jax.Array:
    """The final LayerNorm.

    Args:
      tokens: ``(N, T, D)``.

    Returns:
      ``(N, T, D)``.
    """
    return self.norm(tokens)

  def forward_features(self, x: jax.Array) -> jax.Array:
    """Normalised tokens of the last block.

    Args:
      x: ``(N, img_size, img_size, C)``.

    Returns:
      ``(N, 1 + T, D)``.
    """
    return self.norm(self.blocks_forward(self.embed(x)))

  def __call__(self, x: jax.Array) -> jax.Array:
    """Class-token feature (or head logits).

    Args:
      x: ``(N, img_size, img_size, C)``.

    Returns:
      ``(N, D)``, or ``(N, num_classes)`` with a head.
    """
    pooled = self.forward_features(x)[:, 0]
    return self.head(pooled) if self.head is not None else pooled


vit_tiny = functools.partial(VisionTransformer, embed_dim=192, depth=12, num_heads=3)
vit_small = functools.partial(VisionTransformer, embed_dim=384, depth=12, num_heads=6)
vit_base = functools.partial(VisionTransformer, embed_dim=768, depth=12, num_heads=12)
vit_large = functools.partial(VisionTransformer, embed_dim=1024, depth=24, num_heads=16)
vit_huge = functools.partial(VisionTransformer, embed_dim=1280, depth=32, num_heads=16)
vit_giant = functools.partial(VisionTransformer, embed_dim=1536, depth=40, num_heads=24)

VARIANTS = {"t": vit_tiny, "s": vit_small, "b": vit_base, "l": vit_large, "h": vit_huge,
            "g": vit_giant}


def convert_torch_vit(state_dict, prefix: str = "") -> dict:
  """timm ``VisionTransformer`` state-dict entries under ``prefix`` -> flax ``params`` tree.

  Args:
    state_dict: name -> NumPy array.
    prefix: the ViT's key prefix (e.g. ``"vit_core."``).

  Returns:
    The ``params`` tree of :class:`VisionTransformer` (``head`` only if the state dict has one).
  """
  sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
  params = {
      "cls_token": sd["cls_token"], "pos_embed": sd["pos_embed"],
      "patch_embed": {"kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
                      "bias": sd["patch_embed.proj.bias"]},
      "norm": {"scale": sd["norm.weight"], "bias": sd["norm.bias"]},
  }
  depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
  for i in range(depth):
    b = f"blocks.{i}."
    dense = lambda name, b=b: {"kernel": sd[f"{b}{name}.weight"].T, "bias": sd[f"{b}{name}.bias"]}
    ln = lambda name, b=b: {"scale": sd[f"{b}{name}.weight"], "bias": sd[f"{b}{name}.bias"]}
    params[f"blocks_{i}"] = {
        "norm1": ln("norm1"), "norm2": ln("norm2"),
        "attn": {"qkv": dense("attn.qkv"), "proj": dense("attn.proj")},
        "mlp": {"fc1": dense("mlp.fc1"), "fc2": dense("mlp.fc2")},
    }
  if "head.weight" in sd:
    params["head"] = {"kernel": sd["head.weight"].T, "bias": sd["head.bias"]}
  return params


def torch_vit_config(state_dict, prefix: str = "") -> dict:
  """Reads the :class:`VisionTransformer` configuration off timm tensor shapes.

  ``num_heads`` is not recoverable from shapes and is left out.

  Args:
    state_dict: name -> NumPy array.
    prefix: the ViT's key prefix.

  Returns:
    ``dict(img_size, patch_size, embed_dim, depth, mlp_ratio, num_classes)``.
  """
  sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
  d, _, p, _ = sd["patch_embed.proj.weight"].shape
  grid = int(round((sd["pos_embed"].shape[1] - 1) ** 0.5))
  depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
  mlp_ratio = sd["blocks.0.mlp.fc1.weight"].shape[0] / d
  num_classes = sd["head.weight"].shape[0] if "head.weight" in sd else 0
  return dict(img_size=grid * p, patch_size=p, embed_dim=d, depth=depth, mlp_ratio=mlp_ratio,
              num_classes=num_classes)
