"""Conv3DNet: the 3-D analogue of ConvNet for voxels / video clips (NDHWC).

    depth x [Conv 3x3x3 (padding 1; 3 on the first conv of 1-channel input; bias)
             -> instance norm (per-channel over D, H, W, affine, eps 1e-5,
                == PyTorch InstanceNorm3d(affine=True)) -> ReLU
             -> AvgPool 2x2x2 stride 2]
    flatten -> Linear(num_classes)

The authors' two versions are the same module (aailab-kaist/DDiF @ b628e7b
3D_Voxel/networks.py and sdh0818/FreD @ 9f35a7a 3D-MNIST/networks.py differ only in a
trailing newline): InstanceNorm3d(affine=True), ReLU, AvgPool3d(2, stride 2), the first conv
padded by 3 for 1-channel volumes (line 27; 16^3 -> 20^3), flatten -> Linear.  They differ
in the width their get_network passes: FreD 64 (3D-MNIST/utils.py:107), DDiF 128 (3D_Voxel/
utils.py:160, get_default_convnet_setting); both depth 3.  jaxdd's default is FreD's 64;
DDiF's runs use 'Conv3DNetW128' (or width=128).  The first-conv padding is on by default
(``gray_padding=True``); off gives padding 1.  Parity with both: tests/test_parity_modal_nets.py.
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
