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
  AlexNet, AlexNetBN, VGG11, VGG11BN, ResNet18, ResNet18BN, ViT.
  Conv3DNet[D<depth>][W<width>]   voxels (N, D, H, W, C); width 64 (FreD 3D-MNIST), the
      DDiF voxel runs use Conv3DNetW128 (e.g. 'Conv3DNetW128').
  ConvNet3D[D<depth>][W<width>]   video clips (N, T, H, W, C): DDiF's video network, depth
      3 width 128 (64x64 / 112x112 frames); 'ConvNet3DD2' for 16x16 frames.

Every model class has a class attribute ``layout`` ('NHWC' or 'NDHWC'); ``input_rank`` /
``spatial_dims`` give the data rank a model takes (validate.py checks it against the data).

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
from jaxdd.models.convnet3d import ConvNet3D
from jaxdd.models.layers import InstanceNorm
from jaxdd.models.resnet import ResNet
from jaxdd.models.torch_params import (from_torch, from_torch_flat, to_torch, to_torch_flat,
                                       torch_shapes)
from jaxdd.models.vgg import VGG, VGG_CFGS
from jaxdd.models.vit import ViT

__all__ = [
    "get_model", "count_params", "available_models", "ConvNet", "AlexNet", "VGG", "ResNet",
    "ViT", "Conv3DNet", "ConvNet3D", "input_rank", "spatial_dims", "needs_dropout_rng",
    "model_layout", "Conv", "Conv3x3", "Linear", "InstanceNorm", "convolve", "conv_native",
    "conv_im2col", "resolve_conv_impl", "CONV_IMPLS", "from_torch", "from_torch_flat",
    "to_torch", "to_torch_flat", "torch_shapes",
]

_CONVNET_RE = re.compile(r"^convnet(?:d(\d+))?(?:w(\d+))?(bn|in|ln|gn|nn)?(ap|mp|np)?$")
_SIZED_RE = re.compile(r"^(conv3dnet|convnet3d)(?:d(\d+))?(?:w(\d+))?$")
_SIZED = {"conv3dnet": Conv3DNet, "convnet3d": ConvNet3D}
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
}
_FIXED_DISPLAY = ("AlexNet", "AlexNetBN", "VGG11", "VGG11BN", "ResNet18", "ResNet18BN", "ViT",
                  "Conv3DNet", "Conv3DNetW128", "ConvNet3D", "ConvNet3DD2")


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
    m = _SIZED_RE.match(key)
    if m is not None:
        base, depth, width = m.groups()
        kw = {}
        if depth is not None:
            kw["depth"] = int(depth)
        if width is not None:
            kw["width"] = int(width)
        kw.update(overrides)
        if kw.get("depth", 3) < 1 or kw.get("width", 1) < 1:
            raise ValueError(f"bad {_SIZED[base].__name__} depth/width in {name!r}")
        return _SIZED[base](num_classes=num_classes, **kw)
    if key in _FIXED:
        cls, kw = _FIXED[key]
        return cls(num_classes=num_classes, **{**kw, **overrides})
    raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")


def count_params(params) -> int:
    """Number of scalars in a pytree (arrays or jax.ShapeDtypeStruct leaves).

    Pass ``variables['params']`` to count learnable parameters only (not 'batch_stats').
    """
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


def model_layout(model) -> str:
    """The input layout of a model (instance or class): 'NHWC' (images, spectrograms) or
    'NDHWC' (voxels (N, D, H, W, C), video (N, T, H, W, C))."""
    layout = getattr(model, "layout", None)
    if not isinstance(layout, str):
        raise TypeError(f"{getattr(model, '__name__', type(model).__name__)} has no 'layout' "
                        f"class attribute ('NHWC' or 'NDHWC')")
    return layout


def input_rank(model) -> int:
    """Rank of the batches a model takes: 4 for NHWC, 5 for NDHWC."""
    return len(model_layout(model))


def spatial_dims(model) -> int:
    """Number of grid axes of one example: 2 (H, W) or 3 (D/T, H, W)."""
    return input_rank(model) - 2


def needs_dropout_rng(model) -> bool:
    """True when the model applies dropout in train mode and expects a 'dropout' rng
    (ConvNet3D with dropout > 0); the training core (jaxdd.train) then supplies one."""
    return float(getattr(model, "dropout", 0.0) or 0.0) > 0.0 and isinstance(model, ConvNet3D)
