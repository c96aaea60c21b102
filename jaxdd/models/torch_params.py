"""Convert parameters between PyTorch's layout (the authors' code) and jaxdd's flax pytrees.

No torch import: the PyTorch side is a sequence of numpy arrays in ``net.parameters()``
order -- what an MTT expert buffer stores per epoch (``[p.detach().cpu() for p in
net.parameters()]``, MTT ``buffer.py``) once turned into numpy -- or the flat vector of
MTT's ``ReparamModule`` (the same arrays, each flattened in C order, concatenated).

    from jaxdd.models import get_model, from_torch, to_torch
    model = get_model('ConvNetD3', 10)
    template = jax.eval_shape(model.init, key, x[:1])['params']
    params = from_torch(template, [t.numpy() for t in buffer[i][epoch]])
    params = from_torch_flat(template, flat)                  # ReparamModule layout

Supported networks: those made of convolutions, dense layers and per-channel norms, in
which the modules are created in the order PyTorch registers them (ConvNet, AlexNet, VGG,
Conv3DNet -- the layer stacks of the authors' ``networks.py``).  The correspondence, leaf by
leaf, in module-creation order (flax keeps it in the params dict):

* conv ``kernel`` (*K, Cin, Cout)  <->  ``weight`` (Cout, Cin, *K)
* dense ``kernel`` (in, out)       <->  ``weight`` (out, in); a dense layer right after a conv
  stack (the classifier) also permutes its input axis from PyTorch's (C, *S) flatten order
  to jaxdd's (*S, C) (channels-last) order; the spatial shape is inferred as a square
  (a cube for 3-D convs) from the last conv's channel count, or given as ``feature_shape``
* norm ``scale`` / ``bias`` (C,)  <->  ``weight`` / ``bias`` (C,)  (instance/group norm)
* layer norm ``scale`` / ``bias`` (*S, C)  <->  (C, *S)
* any other ``bias`` (C,)  <->  ``bias`` (C,)

Order: modules ``conv_<i>`` / ``norm_<i>`` by index (conv first), then the unnumbered ones
(``classifier``); inside a module ``kernel`` / ``scale`` before ``bias`` -- PyTorch's
registration order for these stacks.

Batch-norm running statistics are buffers in PyTorch, not parameters, and are not handled.
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np

__all__ = ["from_torch", "from_torch_flat", "to_torch", "to_torch_flat", "torch_shapes"]


_LEAF_RANK = {"kernel": 0, "scale": 0, "bias": 1}
_MODULE_RANK = {"conv": 0, "norm": 1}


def _module_key(name: str):
    """PyTorch registration order of jaxdd's module names: ``conv_<i>``, ``norm_<i>`` by
    index (conv before its norm), then unnumbered modules (the classifier) last."""
    m = re.match(r"^(.*?)_(\d+)$", str(name))
    if m is None:
        return (1, 0, 0, str(name))
    return (0, int(m.group(2)), _MODULE_RANK.get(m.group(1), 2), m.group(1))


def _ordered_leaves(params, prefix=()):
    """[(path, leaf)] in PyTorch's ``parameters()`` order.

    The order is rebuilt from the names (a pytree that went through jax.tree / eval_shape
    has its dict keys sorted, so insertion order cannot be relied on).
    """
    out = []
    if prefix:
        keys = sorted(params.keys(), key=lambda k: (_LEAF_RANK.get(k, 2), str(k)))
    else:
        keys = sorted(params.keys(), key=_module_key)
    for k in keys:
        v = params[k]
        if hasattr(v, "items"):
            out.extend(_ordered_leaves(v, prefix + (k,)))
        else:
            out.append((prefix + (k,), v))
    return out


def _plan(template, feature_shape: Optional[Sequence[int]]):
    """Per leaf: (path, jaxdd shape, kind, extra) in PyTorch's parameter order."""
    plan = []
    last_conv_out, last_conv_nd = None, 2
    after_conv = False
    for path, leaf in _ordered_leaves(template):
        shape = tuple(int(d) for d in leaf.shape)
        name = path[-1]
        kind, extra = "same", None
        if name == "kernel" and len(shape) >= 3:
            kind = "conv"
            last_conv_out, last_conv_nd = shape[-1], len(shape) - 2
            after_conv = True
        elif name == "kernel" and len(shape) == 2:
            kind = "dense"
            if after_conv and last_conv_out is not None and shape[0] != last_conv_out:
                c = last_conv_out
                if feature_shape is not None:
                    sp = tuple(int(d) for d in feature_shape)
                    if len(sp) and sp[-1] == c and math.prod(sp) == shape[0]:
                        sp = sp[:-1]
                    if math.prod(sp) * c != shape[0]:
                        raise ValueError(f"feature_shape {tuple(feature_shape)} x {c} channels "
                                         f"does not give the classifier's {shape[0]} inputs")
                else:
                    sp = None
                    m, nd = shape[0] // c, last_conv_nd
                    side = round(m ** (1.0 / nd))
                    if shape[0] % c == 0 and side ** nd == m:
                        sp = (side,) * nd
                    if sp is None:
                        raise ValueError(
                            f"cannot infer the spatial shape before {'/'.join(path[:-1])} "
                            f"({shape[0]} inputs, {c} channels): pass feature_shape=(H, W)")
                kind, extra = "classifier", (sp, c)
            after_conv = False
        elif len(shape) >= 2:
            kind = "layernorm"
        plan.append((path, shape, kind, extra))
    return plan


def _torch_shape(shape, kind, extra):
    if kind == "conv":
        return (shape[-1], shape[-2]) + shape[:-2]
    if kind in ("dense", "classifier"):
        return (shape[1], shape[0])
    if kind == "layernorm":
        return (shape[-1],) + shape[:-1]
    return shape


def _to_jax(a, shape, kind, extra):
    a = np.asarray(a, np.float32)
    nd = len(shape)
    if kind == "conv":
        return np.ascontiguousarray(np.transpose(a, tuple(range(2, nd)) + (1, 0)))
    if kind == "dense":
        return np.ascontiguousarray(a.T)
    if kind == "classifier":
        sp, c = extra
        k = a.shape[0]
        a = a.reshape((k, c) + tuple(sp))                       # (out, C, *S)
        a = np.transpose(a, tuple(range(2, 2 + len(sp))) + (1, 0))  # (*S, C, out)
        return np.ascontiguousarray(a.reshape(-1, k))
    if kind == "layernorm":
        return np.ascontiguousarray(np.moveaxis(a, 0, -1))
    return a


def _to_torch(a, shape, kind, extra):
    a = np.asarray(a, np.float32)
    nd = len(shape)
    if kind == "conv":
        return np.ascontiguousarray(np.transpose(a, (nd - 1, nd - 2) + tuple(range(nd - 2))))
    if kind == "dense":
        return np.ascontiguousarray(a.T)
    if kind == "classifier":
        sp, c = extra
        k = a.shape[-1]
        a = a.reshape(tuple(sp) + (c, k))                        # (*S, C, out)
        ns = len(sp)
        a = np.transpose(a, (ns + 1, ns) + tuple(range(ns)))     # (out, C, *S)
        return np.ascontiguousarray(a.reshape(k, -1))
    if kind == "layernorm":
        return np.ascontiguousarray(np.moveaxis(a, -1, 0))
    return a


def _build(template, plan, values):
    out = {}
    for (path, _, _, _), v in zip(plan, values):
        d = out
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = v
    return out


def torch_shapes(template, feature_shape=None) -> list:
    """The PyTorch parameter shapes, in ``net.parameters()`` order, of a jaxdd params tree."""
    return [_torch_shape(s, k, e) for _, s, k, e in _plan(template, feature_shape)]


def from_torch(template, tensors: Sequence, feature_shape=None) -> dict:
    """PyTorch parameter arrays (``net.parameters()`` order) -> a jaxdd params dict.

    template: the jaxdd params (arrays or ``jax.ShapeDtypeStruct``), e.g.
      ``jax.eval_shape(model.init, key, x1)['params']``; it fixes names and shapes.
    tensors: numpy-convertible arrays in PyTorch's order and layout.
    Raises ValueError when the count or a shape does not match.
    """
    plan = _plan(template, feature_shape)
    tensors = list(tensors)
    if len(tensors) != len(plan):
        raise ValueError(f"{len(tensors)} PyTorch tensors for {len(plan)} jaxdd parameters")
    vals = []
    for (path, shape, kind, extra), t in zip(plan, tensors):
        t = np.asarray(t)
        want = _torch_shape(shape, kind, extra)
        if tuple(t.shape) != want:
            raise ValueError(f"PyTorch tensor for {'/'.join(path)} has shape {tuple(t.shape)}, "
                             f"expected {want} (jaxdd {shape})")
        vals.append(_to_jax(t, shape, kind, extra))
    return _build(template, plan, vals)


def from_torch_flat(template, flat, feature_shape=None) -> dict:
    """MTT ``ReparamModule`` flat parameter vector -> a jaxdd params dict."""
    flat = np.asarray(flat, np.float32).reshape(-1)
    shapes = torch_shapes(template, feature_shape)
    sizes = [math.prod(s) for s in shapes]
    if sum(sizes) != flat.size:
        raise ValueError(f"flat vector has {flat.size} values, the network {sum(sizes)}")
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return from_torch(template, [p.reshape(s) for p, s in zip(parts, shapes)], feature_shape)


def to_torch(params, feature_shape=None) -> list:
    """A jaxdd params dict -> numpy arrays in PyTorch's ``net.parameters()`` order/layout."""
    plan = _plan(params, feature_shape)
    leaves = [leaf for _, leaf in _ordered_leaves(params)]
    return [_to_torch(leaf, s, k, e) for leaf, (_, s, k, e) in zip(leaves, plan)]


def to_torch_flat(params, feature_shape=None) -> np.ndarray:
    """A jaxdd params dict -> MTT's ``ReparamModule`` flat vector."""
    return np.concatenate([a.reshape(-1) for a in to_torch(params, feature_shape)])
