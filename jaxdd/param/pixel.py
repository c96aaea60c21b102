"""Pixel (vanilla) parameterization: the synthetic images are the parameters.

Budget = IPC x classes x image size (every stored float is a pixel). Any grid rank:
images (H, W, C), spectrograms (F, T, 1), video (T, H, W, C), voxels (D, H, W, 1) are stored
as they are, ipc x prod(image_shape) floats per class (``budget_line``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


def default_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.ipc = 1
    # 'real': random real images of each class; 'first': the first ipc images of each class
    # in training-set order (UniDD's get_one_ipc, the CFM configs); 'noise': N(0, 1)
    cfg.init = "real"
    return cfg


def init(key, real_images_by_class, cfg):
    """Initialize `ipc` images per class from random real images (cfg.init 'real'), the
    first ones in training-set order ('first'), or Gaussian noise ('noise').

    Returns params {'images': (classes * ipc, H, W, C)} in class-major order.
    """
    ipc = int(cfg.ipc)
    if ipc < 1:
        raise ValueError(f"pixel parameterization needs ipc >= 1, got {ipc}")
    num_classes = len(real_images_by_class)
    image_shape = tuple(int(s) for s in real_images_by_class[0].shape[1:])
    keys = jax.random.split(key, num_classes)
    images = []
    for c, (k, real) in enumerate(zip(keys, real_images_by_class)):
        mode = cfg.get("init", "real")
        if mode not in ("real", "first", "noise"):
            raise ValueError(f"pixel init must be 'real', 'first' or 'noise', got {mode!r}")
        if mode == "noise":
            images.append(np.asarray(jax.random.normal(k, (ipc,) + image_shape), np.float32))
        else:
            n = real.shape[0]
            if n == 0:
                raise ValueError(f"class {c} has no real images to initialize from")
            if mode == "first":
                if n < ipc:
                    raise ValueError(f"class {c} has {n} real images, fewer than ipc={ipc} "
                                     "(init 'first')")
                idx = np.arange(ipc)
            else:
                idx = np.asarray(jax.random.choice(k, n, (ipc,), replace=n < ipc))
            images.append(np.asarray(real[idx], np.float32))
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), ipc)
    aux = {"labels": labels, "image_shape": image_shape}
    return {"images": jnp.asarray(np.concatenate(images))}, aux


def decode(params, aux, *, indices=None, resolution=None):
    """Identity decode, (n, *grid, C); `resolution` resizes (bi/tri)linearly (pixels have no
    native continuum): an int (every grid axis) or a per-axis tuple."""
    x = params["images"]
    if indices is not None:
        x = x[indices]
    if resolution is None:
        return x
    grid = tuple(x.shape[1:-1])
    if isinstance(resolution, (tuple, list)):
        out = tuple(int(r) for r in resolution)
        if len(out) != len(grid):
            raise ValueError(f"pixel decode: resolution {out} has {len(out)} axes, the grid "
                             f"{grid} has {len(grid)}")
    elif len(grid) == 2 and resolution == x.shape[1]:
        return x
    else:
        out = (int(resolution),) * len(grid)
    if out == grid:
        return x
    return jax.image.resize(x, (x.shape[0],) + out + (x.shape[-1],), "linear")


def budget(params, aux) -> int:
    """Stored floats: every pixel (ipc x prod(image_shape) per class)."""
    return int(np.prod(params["images"].shape))


def budget_line(cfg, image_shape) -> str:
    """One human line: the pixel budget rule for cfg.ipc on data of shape (*grid, C)."""
    ipc = int(cfg.ipc)
    if ipc < 1:
        raise ValueError(f"pixel parameterization needs ipc >= 1, got {ipc}")
    shape = tuple(int(s) for s in image_shape)
    n = int(ipc) * int(np.prod(shape))
    return (f"pixel budget: {int(ipc)} ipc x {'x'.join(map(str, shape))} = {n} floats per "
            f"class, stored as {int(ipc)} instance(s) per class")
