"""ConvNet: the standard student network of dataset distillation (DC / DSA / DM / MTT).

Architecture (MTT ``networks.ConvNet``)::

    depth x [Conv 3x3 (padding 1, bias) -> norm -> act -> pool 2x2 stride 2]
    (padding 3 on the first conv of a 1-channel input, see below)
    flatten -> Linear(num_classes)

Defaults: width 128, instance norm (GroupNorm with groups = channels, affine, eps 1e-5),
ReLU, average pooling.  ConvNetD3 on 32x32x3 with 10 classes has 320,010 parameters.

Differences from the PyTorch code, on purpose:
* NHWC layout: the flatten order is (H, W, C) instead of (C, H, W); the classifier weights
  are a permutation of PyTorch's, the function class is identical.
* The classifier's input size is inferred at ``init`` from the input, so any resolution works
  (MTT computes it from ``im_size``).
* ``from_torch`` / ``to_torch`` (jaxdd.models.torch_params) convert the authors' parameters
  (e.g. an MTT expert buffer) to these params and back; tests/test_parity_convnet.py checks
  logits and gradients against the authors' ConvNet.

Gray inputs: like the authors (MTT ``networks.py`` ConvNet._make_layers, line 86
  at 50dccea; the same line in FreD, DDiF and UniDD), the first conv is padded by 3 instead
  of 1 when the input has ONE channel (MNIST / FashionMNIST 28x28 -> 32x32 after the first
  conv, 2048 features before the classifier at width 128).  This is on by default
  (``gray_padding=True``) and applies to every 1-channel input, whatever its size (the
  authors' condition is ``channel == 1``; e.g. the embedded 16x16 digits at depth 2 give
  20x20 -> 10x10 -> 5x5 feature maps).  The authors size the classifier from ``im_size``
  (28 read as 32), which only agrees with the padded feature map at 28x28 (and by chance
  at 16x16 depth 3); jaxdd infers it, so every size works.  ``gray_padding=False`` gives
  plain padding 1.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from jaxdd.models.layers import classifier, conv_block, first_padding, pool, rank_mismatch


class ConvNet(nn.Module):
    """ConvNet{depth} of width ``width``.

    Attributes:
      num_classes: logits dimension.
      depth: number of conv blocks.
      width: channels of every conv.
      norm: 'instance' | 'batch' | 'layer' | 'group' | 'none'.
      act: 'relu' | 'sigmoid' | 'leakyrelu' | 'gelu'.
      pooling: 'avg' | 'max' | 'none'.
      conv_impl: 'auto' (hybrid on CPU, native otherwise) | 'native' | 'im2col' | 'hybrid'.
      gray_padding: the authors' first-conv padding 3 for 1-channel inputs (default on).

    ``__call__(x, train=False)``: x (N, H, W, C) float32 -> logits (N, num_classes).
    ``train`` only matters for norm='batch' (batch statistics + 'batch_stats' update; call
    apply with ``mutable=['batch_stats']``). The convs have as many spatial dims as the
    input (``Conv3DNet`` is this network on NDHWC volumes).
    """
    num_classes: int
    depth: int = 3
    width: int = 128
    norm: str = "instance"
    act: str = "relu"
    pooling: str = "avg"
    conv_impl: str = "auto"
    compute_dtype: Any = None
    gray_padding: bool = True

    layout = "NHWC"  # the input layout (a class constant, not a field)

    @nn.compact
    def __call__(self, x, train: bool = False):
        msg = rank_mismatch(type(self).__name__, self.layout, x.shape)
        if msg:
            raise ValueError(msg)
        for d in range(self.depth):
            pad = first_padding(x, d, self.gray_padding, 1, 3)
            x = conv_block(x, self.width, 3, padding=pad, norm=self.norm, act=self.act,
                           train=train, conv_impl=self.conv_impl,
                           compute_dtype=self.compute_dtype, index=d)
            x = pool(x, self.pooling)
        return classifier(x, self.num_classes, self.compute_dtype)
