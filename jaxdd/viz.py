"""PNG grids of image sets (synthetic sets, real samples)."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image


def make_grid(images, nrow=None, pad=1, upscale=None):
    """(N, H, W, C) floats in [0, 1] -> uint8 (rows*(H+pad), cols*(W+pad), 3) mosaic."""
    x = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if x.ndim != 4:
        raise ValueError(f"make_grid expects (N, H, W, C), got shape {x.shape}")
    n, h, w, c = x.shape
    if c == 1:
        x = np.repeat(x, 3, axis=-1)
    elif c != 3:
        x = x[..., :3]
    ncol = nrow or int(math.ceil(math.sqrt(n)))
    nr = int(math.ceil(n / ncol))
    grid = np.ones((nr * (h + pad) + pad, ncol * (w + pad) + pad, 3), np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h,
             pad + q * (w + pad): pad + q * (w + pad) + w] = x[i]
    if upscale is None:  # small images (digits 16x16) are shown at >= 64 px
        upscale = max(1, 64 // max(h, w))
    if upscale > 1:
        grid = grid.repeat(upscale, 0).repeat(upscale, 1)
    return (grid * 255).round().astype(np.uint8)


def save_grid(path, images, nrow=None, **kwargs):
    """Write a PNG grid of (N, H, W, C) images in [0, 1]; one row per class if nrow given."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(make_grid(images, nrow=nrow, **kwargs)).save(path)
    return path
