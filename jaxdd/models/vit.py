"""A small Vision Transformer for low-resolution cross-architecture evaluation.

Defaults (documented choice; no reference model in MTT): patch 4x4, dim 128, depth 4,
4 heads, MLP 256 (GELU), pre-LayerNorm (eps 1e-5), learned position embedding, class token,
no dropout.  ~0.55M parameters at 32x32.  The patch embedding is a Linear on flattened
non-overlapping patches (== Conv(k=4, stride=4)); H and W must be multiples of ``patch``.
The number of position embeddings is fixed at init by the input resolution.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import flax.linen as nn

from jaxdd.models.conv import Linear
from jaxdd.models.layers import rank_mismatch


class _Block(nn.Module):
    dim: int
    heads: int
    mlp_dim: int
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x):
        n, t, d = x.shape
        cd = self.compute_dtype
        h = nn.LayerNorm(epsilon=1e-5, name="ln1")(x)
        qkv = Linear(3 * d, compute_dtype=cd, name="qkv")(h).reshape(n, t, 3, self.heads, d // self.heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]          # (N, T, heads, hd)
        logits = jnp.einsum("nqhd,nkhd->nhqk", q, k) / jnp.sqrt(d // self.heads)
        attn = nn.softmax(logits, axis=-1)
        h = jnp.einsum("nhqk,nkhd->nqhd", attn, v).reshape(n, t, d)
        x = x + Linear(d, compute_dtype=cd, name="proj")(h)
        h = nn.LayerNorm(epsilon=1e-5, name="ln2")(x)
        h = Linear(self.mlp_dim, compute_dtype=cd, name="fc1")(h)
        h = nn.gelu(h, approximate=False)
        return x + Linear(d, compute_dtype=cd, name="fc2")(h)


class ViT(nn.Module):
    """x (N, H, W, C), H % patch == W % patch == 0 -> logits (N, num_classes)."""
    num_classes: int
    patch: int = 4
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 256
    conv_impl: str = "auto"   # accepted for a uniform interface; ViT has no convolution
    compute_dtype: Any = None  # the Linear layers' (attention products stay float32)

    layout = "NHWC"  # the input layout (a class constant, not a field)

    @nn.compact
    def __call__(self, x, train: bool = False):
        msg = rank_mismatch(type(self).__name__, self.layout, x.shape)
        if msg:
            raise ValueError(msg)
        n, hgt, wid, c = x.shape
        p = self.patch
        if hgt % p or wid % p:
            raise ValueError(f"ViT: input {hgt}x{wid} is not a multiple of patch {p}")
        if self.dim % self.heads:
            raise ValueError("ViT: dim must be divisible by heads")
        gh, gw = hgt // p, wid // p
        x = x.reshape(n, gh, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, gh * gw, p * p * c)
        x = Linear(self.dim, compute_dtype=self.compute_dtype, name="patch_embed")(x)
        cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.dim))
        x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, self.dim)), x], axis=1)
        pos = self.param("pos_embed", nn.initializers.normal(0.02), (1, gh * gw + 1, self.dim))
        x = x + pos
        for i in range(self.depth):
            x = _Block(self.dim, self.heads, self.mlp_dim, self.compute_dtype,
                       name=f"block_{i}")(x)
        x = nn.LayerNorm(epsilon=1e-5, name="ln_f")(x[:, 0])
        return Linear(self.num_classes, compute_dtype=self.compute_dtype, name="head")(x)
