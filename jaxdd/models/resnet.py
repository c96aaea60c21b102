"""ResNet (CIFAR-style) as in MTT / DC ``networks.ResNet`` with BasicBlocks.

    Conv3x3(64, stride 1, no bias) -> norm -> ReLU
    4 stages of BasicBlocks, widths width*(1, 2, 4, 8), strides (1, 2, 2, 2)
    global average pool -> Linear(num_classes)

BasicBlock: conv3x3(stride s, no bias) -> norm -> ReLU -> conv3x3 -> norm, plus shortcut
(identity, or conv1x1(stride s, no bias) -> norm when the shape changes), then ReLU.
Default norm is instance norm (MTT's ResNet18); 'ResNet18BN' uses batch norm.
MTT ends with ``avg_pool2d(out, 4)`` + Linear(512), which is a global average pool at 32x32
(4x4 final maps); a global average pool is used here so any resolution works.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax.numpy as jnp
import flax.linen as nn

from jaxdd.models.conv import Conv, Linear
from jaxdd.models.layers import rank_mismatch, apply_norm, canonical_norm


class BasicBlock(nn.Module):
    """x (N, H, W, Cin) -> (N, ceil(H/stride), ceil(W/stride), planes)."""
    planes: int
    stride: int = 1
    norm: str = "instance"
    conv_impl: str = "auto"
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        out = Conv(self.planes, (3, 3), strides=self.stride, padding=1, use_bias=False,
                   conv_impl=self.conv_impl, compute_dtype=self.compute_dtype,
                   name="conv1")(x)
        out = nn.relu(apply_norm(self.norm, out, train, name="norm1"))
        out = Conv(self.planes, (3, 3), padding=1, use_bias=False,
                   conv_impl=self.conv_impl, compute_dtype=self.compute_dtype,
                   name="conv2")(out)
        out = apply_norm(self.norm, out, train, name="norm2")
        if self.stride != 1 or x.shape[-1] != self.planes:
            x = Conv(self.planes, (1, 1), strides=self.stride, padding=0, use_bias=False,
                     conv_impl=self.conv_impl, compute_dtype=self.compute_dtype,
                     name="shortcut_conv")(x)
            x = apply_norm(self.norm, x, train, name="shortcut_norm")
        return nn.relu(out + x)


class ResNet(nn.Module):
    """x (N, H, W, C) -> logits (N, num_classes). ResNet18: stage_sizes (2, 2, 2, 2)."""
    num_classes: int
    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    width: int = 64
    norm: str = "instance"
    conv_impl: str = "auto"
    compute_dtype: Any = None

    layout = "NHWC"  # the input layout (a class constant, not a field)

    @nn.compact
    def __call__(self, x, train: bool = False):
        msg = rank_mismatch(type(self).__name__, self.layout, x.shape)
        if msg:
            raise ValueError(msg)
        norm = canonical_norm(self.norm)
        x = Conv(self.width, (3, 3), padding=1, use_bias=False, conv_impl=self.conv_impl,
                 compute_dtype=self.compute_dtype, name="conv1")(x)
        x = nn.relu(apply_norm(norm, x, train, name="norm1"))
        for s, n_blocks in enumerate(self.stage_sizes):
            for b in range(n_blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                x = BasicBlock(self.width * 2 ** s, stride, norm, self.conv_impl,
                               self.compute_dtype,
                               name=f"layer{s + 1}_{b}")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return Linear(self.num_classes, compute_dtype=self.compute_dtype,
                      name="classifier")(x)
