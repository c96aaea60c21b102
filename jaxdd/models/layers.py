"""Small shared layers: instance norm, norm/activation factories, reshape-based pooling,
and the conv block / classifier head that ConvNet, Conv3DNet, AlexNet and VGG are built from.

All layers are channels-last and dimension-generic (NWC, NHWC, NDHWC).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxdd.models.conv import Conv, Linear

NORMS = ("instance", "batch", "layer", "group", "none")
ACTS = ("relu", "sigmoid", "leakyrelu", "gelu")
POOLS = ("avg", "max", "none")

_NORM_ALIASES = {
    "instance": "instance", "instancenorm": "instance", "in": "instance",
    "batch": "batch", "batchnorm": "batch", "bn": "batch",
    "layer": "layer", "layernorm": "layer", "ln": "layer",
    "group": "group", "groupnorm": "group", "gn": "group",
    "none": "none", "nn": "none", None: "none",
}
_POOL_ALIASES = {
    "avg": "avg", "avgpooling": "avg", "ap": "avg",
    "max": "max", "maxpooling": "max", "mp": "max",
    "none": "none", "np": "none", None: "none",
}


_DATA_KINDS = {4: "images / spectrograms (N, H, W, C)",
               5: "video (N, T, H, W, C) or voxels (N, D, H, W, C)"}


def rank_mismatch(name: str, layout: str, shape, example: bool = False) -> str | None:
    """None when a batch of ``shape`` has the rank of ``layout``, else a message naming the
    model, the data shape and the networks that take data of that rank. ``example``: shape
    is one example's (no batch axis)."""
    full = tuple(int(s) for s in shape)
    shape = (0,) + full if example else full
    if len(shape) == len(layout):
        return None
    have = _DATA_KINDS.get(len(shape), f"{len(shape)}-D arrays")
    if len(shape) == 5:
        todo = "use model='ConvNet3D' for video or model='Conv3DNet' for voxels"
    elif len(shape) == 4:
        todo = "use a 2-D network such as model='ConvNetD3' (ConvNetD4 at 64x64)"
    else:
        todo = "give the data as (N, *grid, C) with a 2-D or 3-D grid"
    return (f"model {name} takes {layout} batches ({_DATA_KINDS.get(len(layout), layout)}) "
            f"but the data are {have}{' with examples' if example else ''} of shape {full}: {todo}")


def canonical_norm(norm) -> str:
    key = norm.lower() if isinstance(norm, str) else norm
    if key not in _NORM_ALIASES:
        raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
    return _NORM_ALIASES[key]


def canonical_pool(pool) -> str:
    key = pool.lower() if isinstance(pool, str) else pool
    if key not in _POOL_ALIASES:
        raise ValueError(f"unknown pooling {pool!r}; expected one of {POOLS}")
    return _POOL_ALIASES[key]


class InstanceNorm(nn.Module):
    """Instance norm == PyTorch ``nn.GroupNorm(C, C, affine=True)`` (groups = channels).

    For x (N, *S, C): per sample and channel, normalize over the spatial axes with the
    biased variance (two-pass, like PyTorch), then ``* scale + bias`` (params of shape (C,),
    init ones / zeros).  eps = 1e-5 (PyTorch default).
    """
    epsilon: float = 1e-5
    use_affine: bool = True

    @nn.compact
    def __call__(self, x):
        axes = tuple(range(1, x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        var = jnp.mean(jnp.square(xc), axis=axes, keepdims=True)
        y = xc * jax.lax.rsqrt(var + self.epsilon)
        if self.use_affine:
            c = x.shape[-1]
            y = y * self.param("scale", nn.initializers.ones, (c,), jnp.float32)
            y = y + self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        return y


def apply_norm(norm: str, x, train: bool, name: str):
    """Apply the canonical norm ``norm`` to x (N, *S, C). Must be called inside nn.compact.

    'instance': InstanceNorm (GroupNorm groups=C); 'batch': nn.BatchNorm (PyTorch momentum 0.1
    == flax momentum 0.9, eps 1e-5, batch statistics when ``train``); 'layer': LayerNorm over
    (*S, C) with elementwise affine of shape (*S, C) (PyTorch ``nn.LayerNorm(shape_feat)``);
    'group': GroupNorm with 4 groups; 'none': identity.
    """
    norm = canonical_norm(norm)
    if norm == "none":
        return x
    if norm == "instance":
        return InstanceNorm(name=name)(x)
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                            name=name)(x)
    if norm == "layer":
        axes = tuple(range(1, x.ndim))
        return nn.LayerNorm(epsilon=1e-5, reduction_axes=axes, feature_axes=axes,
                            use_fast_variance=False, name=name)(x)
    return nn.GroupNorm(num_groups=4, epsilon=1e-5, use_fast_variance=False, name=name)(x)


def activation(act: str):
    act = act.lower()
    if act == "relu":
        return nn.relu
    if act == "sigmoid":
        return nn.sigmoid
    if act == "leakyrelu":
        return lambda x: nn.leaky_relu(x, negative_slope=0.01)
    if act == "gelu":
        return lambda x: nn.gelu(x, approximate=False)
    raise ValueError(f"unknown activation {act!r}; expected one of {ACTS}")


def pool(x, kind: str, window=2):
    """Non-overlapping pooling with kernel = stride = ``window`` on the spatial axes.

    x (N, *S, C) -> (N, *(S // window), C); ``window`` is an int (every spatial axis) or one
    int per spatial axis (1 = that axis is not pooled, e.g. (1, 2, 2) pools the frames of a
    video clip but not its time axis); trailing rows that do not fill a window are dropped
    (PyTorch floor mode).  Implemented as reshape + mean/max, which is exact and cheap to
    differentiate (also to second order).  ``kind``: 'avg' | 'max' | 'none'.
    """
    kind = canonical_pool(kind)
    if kind == "none":
        return x
    n, c = x.shape[0], x.shape[-1]
    spatial = x.shape[1:-1]
    win = (int(window),) * len(spatial) if isinstance(window, int) else tuple(
        int(w) for w in window)
    if len(win) != len(spatial):
        raise ValueError(f"pooling window {window} has {len(win)} entries for "
                         f"{len(spatial)} spatial axes (input {tuple(x.shape)})")
    out = tuple(s // w for s, w in zip(spatial, win))
    if any(o == 0 for o in out):
        raise ValueError(f"cannot pool spatial size {spatial} with window {window}")
    x = x[(slice(None),) + tuple(slice(0, o * w) for o, w in zip(out, win))]
    shape = (n,)
    for o, w in zip(out, win):
        shape += (o, w)
    x = x.reshape(shape + (c,))
    axes = tuple(2 + 2 * i for i in range(len(out)))
    return jnp.mean(x, axis=axes) if kind == "avg" else jnp.max(x, axis=axes)


# ----------------------------------------------------------------------------------------
# The plain conv networks' pieces (call inside the network's nn.compact __call__: the
# submodules belong to the calling network, under the names given)
# ----------------------------------------------------------------------------------------

def first_padding(x, index: int, gray_padding: bool, padding: int, gray: int) -> int:
    """The padding of conv `index`: the authors pad the FIRST conv wider (`gray`) when the
    input has one channel (MNIST 28x28 -> 32x32), if `gray_padding`; else `padding`."""
    return gray if (gray_padding and index == 0 and x.shape[-1] == 1) else padding


def conv_block(x, features: int, kernel: int, *, padding, norm: str, act: str, train: bool,
               conv_impl: str, index: int, compute_dtype=None):
    """Conv (kernel in every spatial dim, stride 1, bias) -> norm -> act (names of
    `NORMS` / `ACTS`), as the submodules 'conv_{index}' and 'norm_{index}' of the calling
    network. ``compute_dtype``: the conv's (``Conv``); norm and act stay float32."""
    x = Conv(features, (kernel,) * (x.ndim - 2), padding=padding, conv_impl=conv_impl,
             compute_dtype=compute_dtype, name=f"conv_{index}")(x)
    return activation(act)(apply_norm(norm, x, train, name=f"norm_{index}"))


def classifier(x, num_classes: int, compute_dtype=None):
    """flatten -> Linear(num_classes), the submodule 'classifier' of the calling network."""
    return Linear(num_classes, compute_dtype=compute_dtype, name="classifier")(
        x.reshape(x.shape[0], -1))
