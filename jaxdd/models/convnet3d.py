"""ConvNet3D: the video network of DDiF's video experiments, channels last (NTHWC).

The authors' network (aailab-kaist/DDiF @ b628e7b, Video/networks.py:767-853, built by
Video/utils.py:678-679 with net_norm='none', net_pooling='maxpooling' and
get_default_convnet_setting's width 128, depth 3, ReLU)::

    input (N, T, C, H, W), permuted to (N, C, T, H, W)
    depth x [Conv3d(kernel (3, 7, 7), padding (1, 3, 3), stride (1, 2, 2), bias;
                    64 channels in the first block, ``width`` in the others)
             -> norm ('none' in the published runs) -> ReLU
             -> MaxPool3d: (1, 2, 2) stride (1, 2, 2) in the first block (time kept),
                           2 stride 2 in the others (time halved)]
    embed  = these features flattened                      (DM's embedding)
    logits = AvgPool3d(kernel (2, 2, 2) if H > 64 else (2, 1, 1), stride 1)
             -> Dropout(p=0.5) -> Conv3d(width -> classes, 1x1x1, bias)
             -> the (now size-1) H and W axes squeezed -> max over time

Each block halves H and W twice (the stride-2 conv: (H - 1) // 2 + 1, then the pool), so
the logits exist only where the spatial map ends 1x1 after the head's pooling: depth 2 on
16x16 frames, depth 3 on 64x64, or depth 3 on 112x112 / 128x128 (2x2 maps averaged to 1x1
by the (2, 2, 2) head pool).  The time axis must keep >= 2 frames before the head (T >=
2 ** depth).  Other sizes raise a ValueError naming the sizes that work (the authors'
``squeeze`` would silently return a wrong-shaped tensor there).

Differences from the PyTorch code, on purpose:
* Channels last: x is (N, T, H, W, C); the embedding is flattened in (T, H, W, C) order
  instead of (C, T, H, W) (a permutation: DM's loss, a sum over features, is unchanged).
* Dropout (the authors' ``nn.Dropout(dropout_keep_prob)`` with 0.5, i.e. a drop
  probability of 0.5, active in ``net.train()``) is applied when ``train=True`` AND the
  call supplies a 'dropout' rng (``model.apply(v, x, train=True, rngs={'dropout': key})``;
  ``jaxdd.train`` does that for this model, see ``needs_dropout_rng``).  Without the rng
  (DM's embedding, which never reaches the head anyway) the head is deterministic.
* The 'hybrid' conv (the CPU default of ``conv_impl='auto'``) falls back to im2col for
  these stride-2 convs: its patch tensor is 147 x Cin x the output grid (3 x 7 x 7
  kernel), e.g. ~88 MB per 16 x 112 x 112 RGB clip in the first layer.  Fine for the
  embedded 8 x 16 x 16 clips; at MiniUCF size on CPU pass ``conv_impl='native'``
  (accelerators resolve 'auto' to 'native').

``from_torch`` / ``to_torch`` (jaxdd.models.torch_params) convert the authors' parameters
(``net.parameters()`` order: the convs' weight/bias, then ``logit``) to these params and back;
tests/test_parity_modal_nets.py checks logits, embeddings and gradients against the authors'
module.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxdd.models.conv import Conv
from jaxdd.models.layers import (activation, apply_norm, canonical_pool, pool,
                                 rank_mismatch)


def _avg_stride1(x, window):
    """AvgPool with kernel ``window`` (per spatial axis) and stride 1, no padding."""
    out = tuple(s - w + 1 for s, w in zip(x.shape[1:-1], window))
    acc = 0.0
    for offs in itertools.product(*(range(w) for w in window)):
        acc = acc + x[(slice(None),) + tuple(slice(o, o + m) for o, m in zip(offs, out))]
    return acc / float(math.prod(window))


def _conv_out(s: int) -> int:
    """Size after the (7, stride 2, padding 3) conv of a block."""
    return (s - 1) // 2 + 1


def feature_grid(depth: int, frames: int, height: int, width: int, pooling: str = "max"):
    """(T, H, W) of the features after ``depth`` blocks (the embedding's grid)."""
    t, h, w = int(frames), int(height), int(width)
    kind = canonical_pool(pooling)
    for d in range(int(depth)):
        h, w = _conv_out(h), _conv_out(w)
        if kind == "none":
            continue
        if d != 0 or kind == "avg":   # 'avg': AvgPool3d(2, 2) in every block (time too)
            t //= 2
        h, w = h // 2, w // 2
    return t, h, w


class _Head(nn.Module):
    """avg pool (stride 1) -> dropout -> 1x1x1 conv -> max over time: (N, T, H, W, C) ->
    (N, classes). The model's 'classifier' (DM's embedding is its input)."""
    num_classes: int
    big: bool
    dropout: float
    conv_impl: str = "auto"
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = _avg_stride1(x, (2, 2, 2) if self.big else (2, 1, 1))
        if train and self.dropout > 0 and self.has_rng("dropout"):
            x = nn.Dropout(rate=self.dropout, deterministic=False)(x)
        x = Conv(self.num_classes, (1, 1, 1), padding=0, conv_impl=self.conv_impl,
                 compute_dtype=self.compute_dtype, name="logit")(x)   # (N, T', 1, 1, K)
        return jnp.max(x[:, :, 0, 0, :], axis=1)


class ConvNet3D(nn.Module):
    """The authors' ConvNet3D (module docstring), input (N, T, H, W, C).

    Attributes:
      num_classes: logits dimension.
      depth: number of blocks (published: 3; 2 for 16x16 frames).
      width: channels of the blocks after the first (published 128).
      first_width: channels of the first block (the authors fix 64).
      norm: 'none' (published) | 'instance' | 'batch' | 'layer' | 'group'.
      act: 'relu' | 'sigmoid' | 'leakyrelu' | 'gelu'.
      pooling: 'max' (published: (1, 2, 2) then 2x2x2) | 'avg' (2x2x2 in every block,
        as the authors' 'avgpooling') | 'none'.
      dropout: drop probability before the 1x1x1 logit conv (0.5 as the authors).
      conv_impl / compute_dtype: as ``ConvNet``.

    ``__call__(x, train=False)`` -> logits (N, num_classes).
    """
    num_classes: int
    depth: int = 3
    width: int = 128
    first_width: int = 64
    norm: str = "none"
    act: str = "relu"
    pooling: str = "max"
    dropout: float = 0.5
    conv_impl: str = "auto"
    compute_dtype: Any = None

    layout = "NDHWC"  # (N, T, H, W, C): the input layout (a class constant, not a field)

    def _check(self, shape):
        n, t, h, w, c = shape
        big = h > 64
        ft, fh, fw = feature_grid(self.depth, t, h, w, self.pooling)
        k = 2 if big else 1
        if min(ft, fh, fw) < 1 or ft - 1 < 1 or fh - k + 1 != 1 or fw - k + 1 != 1:
            raise ValueError(
                f"ConvNet3D (depth {self.depth}) cannot classify clips of {t} frames of "
                f"{h}x{w} (features {ft}x{fh}x{fw} after the blocks; the head needs >= 2 "
                f"frames and a {k}x{k} map): it runs at depth 2 on 16x16 frames, depth 3 on "
                f"64x64 or 112x112..128x128, with >= 2**depth frames; pass model overrides "
                f"depth=... or resize the clips")
        return big

    @nn.compact
    def __call__(self, x, train: bool = False):
        msg = rank_mismatch("ConvNet3D", self.layout, x.shape)
        if msg:
            raise ValueError(msg)
        big = self._check(x.shape)
        kind = canonical_pool(self.pooling)
        for d in range(self.depth):
            x = Conv(self.first_width if d == 0 else self.width, (3, 7, 7), strides=(1, 2, 2),
                     padding=((1, 1), (3, 3), (3, 3)), conv_impl=self.conv_impl,
                     compute_dtype=self.compute_dtype, name=f"conv_{d}")(x)
            x = activation(self.act)(apply_norm(self.norm, x, train, name=f"norm_{d}"))
            if kind != "none":
                x = pool(x, kind, (1, 2, 2) if (d == 0 and kind == "max") else 2)
        return _Head(self.num_classes, big, float(self.dropout), self.conv_impl,
                     self.compute_dtype, name="classifier")(x, train)
