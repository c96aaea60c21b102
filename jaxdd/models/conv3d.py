"""Conv3DNet: the 3-D analogue of ConvNet for voxels / video clips (NDHWC).

    depth x [Conv 3x3x3 (padding 1; 3 on the first conv of 1-channel input; bias)
             -> instance norm (per-channel over D, H, W, affine, eps 1e-5,
                == PyTorch InstanceNorm3d(affine=True)) -> ReLU
             -> AvgPool 2x2x2 stride 2]
    flatten -> Linear(num_classes)

Layout follows the DDiF voxel code's Conv3DNet; width 64 and depth 3 are our defaults
(documented choice).  Like the authors (DDiF ``3D_Voxel/networks.py`` line 27, FreD
``3D-MNIST/networks.py`` line 27), the first conv is padded by 3 for 1-channel volumes
(16^3 -> 20^3); on by default (``gray_padding=True``), off gives padding 1.
Note: with conv_impl='im2col' (the CPU default) the patch tensor is 27x the layer input;
pass conv_impl='native' for large volumes on CPU if memory is tight.
"""
from __future__ import annotations

import flax.linen as nn

from jaxdd.models.conv import Conv, Linear
from jaxdd.models.layers import activation, apply_norm, canonical_norm, pool


class Conv3DNet(nn.Module):
    """x (N, D, H, W, C) -> logits (N, num_classes)."""
    num_classes: int
    depth: int = 3
    width: int = 64
    norm: str = "instance"
    act: str = "relu"
    pooling: str = "avg"
    conv_impl: str = "auto"
    gray_padding: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim != 5:
            raise ValueError(f"Conv3DNet expects NDHWC input, got shape {x.shape}")
        norm = canonical_norm(self.norm)
        act = activation(self.act)
        for d in range(self.depth):
            pad = 3 if (self.gray_padding and d == 0 and x.shape[-1] == 1) else 1
            x = Conv(self.width, (3, 3, 3), padding=pad, conv_impl=self.conv_impl,
                     name=f"conv_{d}")(x)
            x = apply_norm(norm, x, train, name=f"norm_{d}")
            x = act(x)
            x = pool(x, self.pooling)
        x = x.reshape(x.shape[0], -1)
        return Linear(self.num_classes, name="classifier")(x)
