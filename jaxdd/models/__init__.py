"""Student / evaluation networks (flax.linen) and a name registry.

    from jaxdd.models import get_model, count_params
    model = get_model('ConvNetD3', num_classes=10)          # a flax.linen Module
    variables = model.init(key, x)        # {'params': ...} (+ 'batch_stats' for BN models)
    logits = model.apply(variables, x, train=False)         # (N, num_classes)

Names (case-insensitive):
  ConvNet[D<depth>][W<width>][BN|IN|LN|GN|NN][AP|MP|NP]
      e.g. 'ConvNet' (= D3), 'ConvNetD1'..'ConvNetD7', 'ConvNetD3W32', 'ConvNetD3BN',
      'ConvNetMP'.  Width 128, instance norm, ReLU, avg pooling unless the name says
      otherwise.  D3 for 32x32, D4 64x64, D5 128, D6 256, D7 512 (the papers' convention).
  AlexNet, AlexNetBN, VGG11, VGG11BN, ResNet18, ResNet18BN, ViT, Conv3DNet.

``overrides`` are module fields (e.g. ``width=32, conv_impl='native', norm='batch'``) and
take precedence over what the name implies.  ConvNet, AlexNet, VGG and Conv3DNet pad their
first conv like the authors' ``networks.py`` for 1-channel inputs (``gray_padding=True`` by
default; pass ``gray_padding=False`` for plain padding).

``from_torch`` / ``to_torch`` (module ``torch_params``) convert parameters between PyTorch's
layout (e.g. an MTT expert buffer) and these modules' params, without importing torch.
"""
from __future__ import annotations

import math
import re

import jax

from jaxdd.models.alexnet import AlexNet
from jaxdd.models.conv import (CONV_IMPLS, Conv, Conv3x3, Linear, conv_im2col, conv_native,
                               convolve, resolve_conv_impl)
from jaxdd.models.conv3d import Conv3DNet
from jaxdd.models.convnet import ConvNet
from jaxdd.models.layers import InstanceNorm
from jaxdd.models.resnet import ResNet
from jaxdd.models.torch_params import (from_torch, from_torch_flat, to_torch, to_torch_flat,
                                       torch_shapes)
from jaxdd.models.vgg import VGG, VGG_CFGS
from jaxdd.models.vit import ViT

__all__ = [
    "get_model", "count_params", "available_models", "ConvNet", "AlexNet", "VGG", "ResNet",
    "ViT", "Conv3DNet", "Conv", "Conv3x3", "Linear", "InstanceNorm", "convolve", "conv_native",
    "conv_im2col", "resolve_conv_impl", "CONV_IMPLS", "from_torch", "from_torch_flat",
    "to_torch", "to_torch_flat", "torch_shapes",
]

_CONVNET_RE = re.compile(r"^convnet(?:d(\d+))?(?:w(\d+))?(bn|in|ln|gn|nn)?(ap|mp|np)?$")
_NORM_SUFFIX = {"bn": "batch", "in": "instance", "ln": "layer", "gn": "group", "nn": "none"}
_POOL_SUFFIX = {"ap": "avg", "mp": "max", "np": "none"}

_FIXED = {
    "alexnet": (AlexNet, {}),
    "alexnetbn": (AlexNet, {"norm": "batch"}),
    "vgg11": (VGG, {"cfg": VGG_CFGS["VGG11"]}),
    "vgg11bn": (VGG, {"cfg": VGG_CFGS["VGG11"], "norm": "batch"}),
    "resnet18": (ResNet, {"stage_sizes": (2, 2, 2, 2)}),
    "resnet18bn": (ResNet, {"stage_sizes": (2, 2, 2, 2), "norm": "batch"}),
    "vit": (ViT, {}),
    "conv3dnet": (Conv3DNet, {}),
}
_FIXED_DISPLAY = ("AlexNet", "AlexNetBN", "VGG11", "VGG11BN", "ResNet18", "ResNet18BN", "ViT",
                  "Conv3DNet")


def available_models() -> tuple:
    """Representative registry names (ConvNet accepts the grammar in the module docstring)."""
    return tuple(f"ConvNetD{d}" for d in range(1, 8)) + (
        "ConvNet", "ConvNetD<n>W<w> (e.g. ConvNetD3W32)", "ConvNet...BN/IN/LN/GN/NN",
        "ConvNet...AP/MP/NP") + _FIXED_DISPLAY


def get_model(name: str, num_classes: int, **overrides):
    """Build a network by name. Returns an (unbound) flax.linen Module.

    Raises ValueError for unknown names (the message lists the names).
    """
    key = name.strip().lower()
    m = _CONVNET_RE.match(key)
    if m is not None:
        depth, width, norm, pooling = m.groups()
        kw = {}
        if depth is not None:
            kw["depth"] = int(depth)
        if width is not None:
            kw["width"] = int(width)
        if norm is not None:
            kw["norm"] = _NORM_SUFFIX[norm]
        if pooling is not None:
            kw["pooling"] = _POOL_SUFFIX[pooling]
        kw.update(overrides)
        if kw.get("depth", 3) < 1 or kw.get("width", 128) < 1:
            raise ValueError(f"bad ConvNet depth/width in {name!r}")
        return ConvNet(num_classes=num_classes, **kw)
    if key in _FIXED:
        cls, kw = _FIXED[key]
        return cls(num_classes=num_classes, **{**kw, **overrides})
    raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")


def count_params(params) -> int:
    """Number of scalars in a pytree (arrays or jax.ShapeDtypeStruct leaves).

    Pass ``variables['params']`` to count learnable parameters only (not 'batch_stats').
    """
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))
