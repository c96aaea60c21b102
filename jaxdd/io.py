"""Serialization: the one place jaxdd writes and reads msgpack files.

    save_tree(path, tree) / load_tree(path)       dicts / lists / tuples / arrays / scalars
    save_synthetic(path, ...) / load_synthetic    the final artifact of a run
    decode_synthetic(path_or_dict)                -> (images, labels, syn_lr)
    save_state(path, target) / load_state(path, template)   any flax-serializable pytree
                                                  (optax states, NamedTuples, dataclasses)
                                                  restored into the template's structure

On-disk format (flax msgpack; unchanged from jaxdd.distill's original helpers, so every
synthetic.msgpack written before this module loads): dict keys are strings, a list is
``{"__list__": {"0": ..., "1": ...}}``, a tuple ``{"__tuple__": [...]}``, arrays are numpy.
`load_tree` also reads ``{"__seq__": {...}}`` (as a list): the encoding of the CFM pipeline's
caches (teacher, statistics, recovered batches) before they moved here.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization


def _encode(tree):
    if isinstance(tree, dict):
        return {str(k): _encode(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return {"__list__": {str(i): _encode(v) for i, v in enumerate(tree)}}
    if isinstance(tree, tuple):
        return {"__tuple__": [_encode(v) for v in tree]}
    if isinstance(tree, (jax.Array, np.ndarray)):
        return np.asarray(tree)
    return tree


def _decode(tree):
    if isinstance(tree, dict):
        if "__tuple__" in tree and len(tree) == 1:
            return tuple(_decode(v) for v in tree["__tuple__"])
        for marker in ("__list__", "__seq__"):
            if marker in tree and len(tree) == 1:
                items = tree[marker]
                return [_decode(items[str(i)]) for i in range(len(items))]
        return {k: _decode(v) for k, v in tree.items()}
    return tree


def to_bytes(tree) -> bytes:
    """msgpack bytes of a tree of dicts / lists / tuples / arrays / scalars."""
    return serialization.msgpack_serialize(_encode(tree))


def from_bytes(data: bytes):
    return _decode(serialization.msgpack_restore(data))


def save_tree(path, tree):
    """Write a pytree of dicts/lists/tuples/arrays/scalars as msgpack (atomic rename;
    creates the parent directory)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(to_bytes(tree))
    os.replace(tmp, path)


def load_tree(path):
    """The tree written by `save_tree` (numpy arrays; lists and tuples restored)."""
    with open(path, "rb") as f:
        return from_bytes(f.read())


def save_state(path, target):
    """Write any pytree flax can serialize (optax states, NamedTuples, flax structs) as its
    state dict (`flax.serialization.to_state_dict`), atomically; `load_state` restores it."""
    save_tree(path, serialization.to_state_dict(jax.device_get(target)))


def load_state(path, template):
    """The pytree written by `save_state`, restored into the structure of `template`."""
    return serialization.from_state_dict(template, load_tree(path))


def save_synthetic(path, *, param_name, params, aux, syn_lr, meta=None):
    """The final artifact: enough to decode the set without the training state."""
    save_tree(path, {"param": param_name, "params": jax.device_get(params), "aux": aux,
                     "syn_lr": float(syn_lr), "meta": meta or {}})


def load_synthetic(path):
    """-> dict(param, params, aux, syn_lr, meta); `decode_synthetic` decodes it."""
    d = load_tree(path)
    if d.get("param") == "vanilla":  # sets saved before the pixel parameterization's rename
        d["param"] = "pixel"
    d["params"] = jax.tree.map(jnp.asarray, d["params"])
    return d


def decode_synthetic(path_or_dict, resolution=None):
    """-> (images (N, H, W, C), labels, syn_lr) of a saved synthetic set (a path, or the
    dict of `load_synthetic`). resolution: None (the training grid) or another side: the
    parameterization's own decode there (FreD, DDiF, pixels), else the native images
    resized bilinearly (NSD)."""
    from jaxdd import param as param_lib  # the decoder of the stored parameterization

    d = load_synthetic(path_or_dict) if isinstance(path_or_dict, (str, os.PathLike)) \
        else path_or_dict
    pm = param_lib.get(d["param"])
    try:
        images = pm.decode(d["params"], d["aux"], resolution=resolution)
    except NotImplementedError:
        # a parameterization with no continuous form (NSD's learned kernels): decode at the
        # training resolution and resize the images bilinearly, as pixels are
        images = pm.decode(d["params"], d["aux"])
        n, c = images.shape[0], images.shape[-1]
        side = (int(resolution),) * 2 if np.ndim(resolution) == 0 else tuple(resolution)
        images = jax.image.resize(images, (n, *side, c), method="bilinear")
    return images, np.asarray(d["aux"]["labels"]), d["syn_lr"]
