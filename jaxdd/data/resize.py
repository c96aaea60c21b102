"""Resizing: the bilinear resize of fixed-size images (`resolution=R`; video frames too;
audio and voxels refuse it), the authors' torchvision Resize of variable-size images while
reading ('squash' or 'crop'), and the rank check of each modality.
Part of :mod:`jaxdd.data.datasets`.
"""
from __future__ import annotations

import numpy as np

from jaxdd.data.catalog import MODALITIES, MODALITY_RANK


_RESIZE_MODES = ("squash", "crop")


def _resolve_resize(resize) -> str:
    mode = "squash" if resize in (None, "") else str(resize).lower()
    if mode not in _RESIZE_MODES:
        raise ValueError(f"resize must be one of {_RESIZE_MODES} (or None = 'squash'), "
                         f"got {resize!r}")
    return mode


def _resize_batch(images: np.ndarray, side: int, chunk: int = 2048) -> np.ndarray:
    """Bilinear resize of float images (N, H, W, C) to (N, side, side, C).

    jax.image.resize ('bilinear', half-pixel centers, antialiased when downsampling),
    chunk by chunk to bound memory.
    """
    import jax

    n, h, w, c = images.shape
    if (h, w) == (side, side):
        return images
    out = np.empty((n, side, side, c), np.float32)
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk], np.float32)
        out[start:start + len(block)] = np.asarray(
            jax.image.resize(block, (len(block), side, side, c), method="bilinear")
        )
    return out


def _bilinear_taps(n_in: int, n_out: int):
    """1-D taps of bilinear resampling n_in -> n_out, half-pixel centres, no antialiasing.

    Follows torch.nn.functional.interpolate(mode='bilinear', align_corners=False,
    antialias=False), which is what torchvision's transforms.Resize does to a tensor in the
    authors' versions (torchvision 0.12 for MTT / FreD, 0.16 for DDiF: antialias defaults to
    False for tensors): source = max((i + 0.5) * n_in / n_out - 0.5, 0), the two neighbours
    (the upper one clamped to the edge), linear weights.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = np.clip(src - i0.astype(np.float32), 0.0, 1.0).astype(np.float32)
    return i0, i1, lam


def _resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """One float image (H, W, C) -> (out_h, out_w, C), torch bilinear (see _bilinear_taps)."""
    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    if (h, w) == (out_h, out_w):
        return img
    r0, r1, lr = _bilinear_taps(h, out_h)
    c0, c1, lc = _bilinear_taps(w, out_w)
    rows = img[r0] * (1.0 - lr)[:, None, None] + img[r1] * lr[:, None, None]
    return rows[:, c0] * (1.0 - lc)[None, :, None] + rows[:, c1] * lc[None, :, None]


def _resize_variable(img: np.ndarray, side: int, mode: str) -> np.ndarray:
    """One float [0, 1] image (H, W, C) of any size -> (side, side, C).

    'squash': torchvision Resize((side, side)) -- both sides to `side`, aspect ratio not
      kept (the authors' ImageNet-subset transform: mtt-distillation utils.py:86, 94-101;
      FreD TM/utils.py:145-163; DDiF TM/utils.py:184-202; their CenterCrop after it is a
      no-op).
    'crop': torchvision Resize(side) + CenterCrop(side) -- shorter side to `side`, the longer
      to int(side * long / short), then the centre crop with offsets round((n - side) / 2)
      (FreD ImageNet-abcde/utils.py:180-183, ImageNet-A..E).
    Both resample like the authors' tensor Resize (bilinear, no antialiasing, on float
    pixels; the authors normalize before resizing, which commutes with it).
    """
    h, w = img.shape[:2]
    if mode == "squash":
        return _resize_bilinear(img, side, side)
    if h <= w:
        new_h, new_w = side, int(side * w / h)
    else:
        new_h, new_w = int(side * h / w), side
    out = _resize_bilinear(img, new_h, new_w)
    top = int(round((new_h - side) / 2.0))
    left = int(round((new_w - side) / 2.0))
    return out[top:top + side, left:left + side]


def _check_modality(name, modality, x):
    if modality not in MODALITIES:
        raise ValueError(f"{name}: modality must be one of {MODALITIES}, got {modality!r}")
    if x.ndim != MODALITY_RANK[modality]:
        layout = {"image": "(N, H, W, C)", "audio": "(N, F, T, 1)",
                  "video": "(N, T, H, W, C)", "voxel": "(N, D, H, W, 1)"}[modality]
        raise ValueError(f"{name}: {modality} data must be {layout}, got shape {x.shape}")


def _resize_spatial(name, modality, x, side):
    """`resolution=side` for fixed-size data: images are resized (bilinear, antialiased);
    video frames too (H, W only; T kept); audio and voxels are not resampled: a side other
    than theirs is refused."""
    if modality == "image":
        return _resize_batch(x, side)
    if modality == "video":
        n, t, h, w, c = x.shape
        if (h, w) == (side, side):
            return x
        return _resize_batch(x.reshape(n * t, h, w, c), side).reshape(n, t, side, side, c)
    grid = tuple(x.shape[1:-1])
    if all(g == side for g in grid):
        return x
    raise ValueError(
        f"{name}: resolution={side} asks to resample {modality} data of grid {grid}; jaxdd "
        f"resizes only images and video frames. Leave resolution unset (None) for {modality} "
        f"data, or prepare the data at the size you want.")
