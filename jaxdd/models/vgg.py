"""VGG as in MTT / DC ``networks.VGG`` (CIFAR variant: one Linear classifier).

Each number in ``cfg`` is Conv3x3(c, pad 1, bias) -> norm -> ReLU; 'M' is MaxPool 2x2 stride
2.  VGG11: 64 M 128 M 256 256 M 512 512 M 512 512 M; at 32x32 the features are 1x1x512.
Default norm is instance norm (MTT's VGG11); 'VGG11BN' uses batch norm.  Needs inputs of at
least 32x32 (five 2x pools); the classifier's input size is inferred at init.
Like the authors (MTT ``networks.py`` VGG._make_layers, line 257 at 50dccea), the first conv
is padded by 3 for 1-channel inputs (28x28 -> 32x32); on by default (``gray_padding=True``).
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import flax.linen as nn

from jaxdd.models.layers import rank_mismatch, classifier, conv_block, first_padding, pool

VGG_CFGS = {
    "VGG11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "VGG13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "VGG16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}


class VGG(nn.Module):
    """x (N, H, W, C), H, W >= 2**(number of 'M') -> logits (N, num_classes)."""
    num_classes: int
    cfg: Sequence[Union[int, str]] = VGG_CFGS["VGG11"]
    norm: str = "instance"
    act: str = "relu"
    conv_impl: str = "auto"
    compute_dtype: Any = None
    gray_padding: bool = True

    layout = "NHWC"  # the input layout (a class constant, not a field)

    @nn.compact
    def __call__(self, x, train: bool = False):
        msg = rank_mismatch(type(self).__name__, self.layout, x.shape)
        if msg:
            raise ValueError(msg)
        for i, c in enumerate(self.cfg):
            if c == "M":
                x = pool(x, "max")
                continue
            pad = first_padding(x, i, self.gray_padding, 1, 3)
            x = conv_block(x, int(c), 3, padding=pad, norm=self.norm, act=self.act,
                           train=train, conv_impl=self.conv_impl,
                           compute_dtype=self.compute_dtype, index=i)
        return classifier(x, self.num_classes, self.compute_dtype)
