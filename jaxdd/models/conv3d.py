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

from jaxdd.models.convnet import ConvNet


class Conv3DNet(ConvNet):
    """x (N, D, H, W, C) -> logits (N, num_classes): ``ConvNet`` on volumes (its fields;
    width 64 by default)."""
    width: int = 64

    layout = "NDHWC"
