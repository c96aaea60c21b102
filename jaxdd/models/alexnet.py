"""AlexNet as in MTT / DC ``networks.AlexNet`` (the 32x32 CIFAR variant, not ImageNet's).

    Conv5x5(128, pad 2) -> act -> MaxPool2
    Conv5x5(192, pad 2) -> act -> MaxPool2
    Conv3x3(256) -> act -> Conv3x3(192) -> act -> Conv3x3(192) -> act -> MaxPool2
    flatten -> Linear(num_classes)          (192*4*4 features at 32x32)

MTT's AlexNet has NO normalization layer; that is the default here (norm='none').
'AlexNetBN' (DC) puts a BatchNorm after every conv; any norm of ``layers.NORMS`` can be chosen.
Like the authors (MTT ``networks.py`` AlexNet, line 206 at 50dccea: ``padding=4 if
channel==1 else 2``), the first conv is padded by 4 for 1-channel inputs (28x28 -> 32x32,
192*4*4 features); on by default (``gray_padding=True``), off gives padding 2.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn

from jaxdd.models.layers import rank_mismatch, classifier, conv_block, first_padding, pool


class AlexNet(nn.Module):
    """x (N, H, W, C) with H, W >= 8 -> logits (N, num_classes)."""
    num_classes: int
    widths: Sequence[int] = (128, 192, 256, 192, 192)
    norm: str = "none"
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
        w = tuple(self.widths)
        if len(w) != 5:
            raise ValueError("AlexNet needs 5 widths")
        ks = (5, 5, 3, 3, 3)
        pool_after = (True, True, False, False, True)
        for i in range(5):
            pad = first_padding(x, i, self.gray_padding, ks[i] // 2, 4)
            x = conv_block(x, w[i], ks[i], padding=pad, norm=self.norm, act=self.act,
                           train=train, conv_impl=self.conv_impl,
                           compute_dtype=self.compute_dtype, index=i)
            if pool_after[i]:
                x = pool(x, "max")
        return classifier(x, self.num_classes, self.compute_dtype)
