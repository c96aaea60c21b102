"""Pictures: PNG grids of image sets (synthetic sets, real samples), readable grids of the
other modalities (`modality_grid`: audio spectrograms in a colormap, video as frame strips,
voxels as three orthogonal max-projections) and the line plots of the spectral diagnostic
(PIL only, no matplotlib)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont


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


# ----------------------------------------------------------------------------- modalities

MODALITIES = ("image", "audio", "video", "voxel")

# A viridis-like ramp (dark violet -> blue -> teal -> green -> yellow), linearly interpolated.
RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
                np.float32) / 255.0


def colormap(x):
    """Values in [0, 1] (any shape) -> (..., 3) RGB floats along `RAMP`."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0) * (len(RAMP) - 1)
    i = np.minimum(np.floor(x).astype(np.int64), len(RAMP) - 2)
    t = (x - i)[..., None]
    return RAMP[i] * (1.0 - t) + RAMP[i + 1] * t


def _normalize_each(x):
    """Min-max normalize every instance (axis 0) to [0, 1]; a constant one becomes 0."""
    x = np.asarray(x, np.float32)
    flat = x.reshape(len(x), -1)
    lo = flat.min(axis=1) if flat.size else np.zeros(len(x), np.float32)
    hi = flat.max(axis=1) if flat.size else np.zeros(len(x), np.float32)
    span = np.where(hi > lo, hi - lo, 1.0)
    shape = (len(x),) + (1,) * (x.ndim - 1)
    return (x - lo.reshape(shape)) / span.reshape(shape)


def spectrogram_images(spectra):
    """(N, F, T[, 1]) spectrograms (frequency bin 0 = lowest) -> (N, F, T, 3) RGB in [0, 1]:
    each normalized on its own, the lowest frequency at the bottom, colored by `colormap`."""
    x = np.asarray(spectra, np.float32)
    if x.ndim == 4:
        if x.shape[-1] != 1:
            raise ValueError(f"audio grid: spectrograms must be (N, F, T, 1), got {x.shape}")
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"audio grid: spectrograms must be (N, F, T[, 1]), got {x.shape}")
    return colormap(_normalize_each(x)[:, ::-1, :])


def voxel_projections(voxels, gap=1):
    """(N, D, H, W[, 1]) volumes -> (N, S, 3 S + 2 gap, 3) RGB in [0, 1], S = max(D, H, W):
    the maximum along D (an H x W view), along H (D x W) and along W (D x H), side by side,
    each instance normalized on its own (gray; gaps white)."""
    x = np.asarray(voxels, np.float32)
    if x.ndim == 5:
        if x.shape[-1] != 1:
            raise ValueError(f"voxel grid: volumes must be (N, D, H, W, 1), got {x.shape}")
        x = x[..., 0]
    if x.ndim != 4:
        raise ValueError(f"voxel grid: volumes must be (N, D, H, W[, 1]), got {x.shape}")
    x = _normalize_each(x)
    n, d, h, w = x.shape
    side = max(d, h, w)
    out = np.ones((n, side, 3 * side + 2 * gap), np.float32)
    for j, p in enumerate((x.max(axis=1), x.max(axis=2), x.max(axis=3))):
        c0 = j * (side + gap)
        out[:, :p.shape[1], c0:c0 + p.shape[2]] = p
    return np.repeat(out[..., None], 3, axis=-1)


def modality_grid(images, modality="image", nrow=None, *, pad=1, upscale=None):
    """A readable uint8 (rows, cols, 3) grid of a set of any modality (jaxdd.data layouts):

      image  (N, H, W, C) in [0, 1]            as `make_grid` (nrow columns)
      audio  (N, F, T, 1) log spectrograms     `spectrogram_images` tiles (nrow columns)
      video  (N, T, H, W, C) in [0, 1]         one row per instance, its T frames left to
                                               right (nrow is not used)
      voxel  (N, D, H, W, 1)                   `voxel_projections` panels (nrow columns,
                                               3 pad between instances, 1 between views)
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    x = np.asarray(images, np.float32)
    if modality == "image":
        return make_grid(x, nrow=nrow, pad=pad, upscale=upscale)
    if modality == "audio":
        return make_grid(spectrogram_images(x), nrow=nrow, pad=pad, upscale=upscale)
    if modality == "voxel":
        panels = voxel_projections(x)
        if upscale is None:  # each view (not the 3-view panel) at >= 64 px
            upscale = max(1, 64 // panels.shape[1])
        # 3x the padding between instances than between an instance's views
        return make_grid(panels, nrow=nrow, pad=3 * pad, upscale=upscale)
    if x.ndim != 5:
        raise ValueError(f"video grid: clips must be (N, T, H, W, C), got {x.shape}")
    n, t = x.shape[:2]
    return make_grid(x.reshape((n * t,) + x.shape[2:]), nrow=t, pad=pad, upscale=upscale)


def save_modality_grid(path, images, modality="image", nrow=None, **kwargs):
    """Write `modality_grid(images, modality, nrow, **kwargs)` as a PNG; -> path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(modality_grid(images, modality, nrow, **kwargs)).save(path)
    return path


# ----------------------------------------------------------------------------- line plots

REAL_COLOR = (31, 119, 180)
SYN_COLOR = (214, 39, 40)


def _font():
    try:
        return ImageFont.load_default()
    except Exception:  # pragma: no cover
        return None


def _nice(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e3 or a < 1e-2:
        return f"{v:.0e}"
    return f"{v:.3g}"


def line_panel(draw, box, series, *, title, xlabel, ylabel, log_y=False, font=None):
    """Draw line plots into box=(x0, y0, x1, y1). series: list of (values, color, label)."""
    x0, y0, x1, y1 = box
    left, bottom, top, right = 52, 30, 22, 10
    px0, py0, px1, py1 = x0 + left, y0 + top, x1 - right, y1 - bottom
    draw.rectangle([x0, y0, x1, y1], fill=(255, 255, 255))
    draw.text((x0 + left, y0 + 4), title, fill=(0, 0, 0), font=font)
    vals = [np.asarray(v, np.float64) for v, _, _ in series if len(v)]
    if not vals:
        return
    allv = np.concatenate(vals)
    if log_y:
        pos = allv[allv > 0]
        floor = pos.min() if pos.size else 1e-12
        tr = lambda v: np.log10(np.maximum(np.asarray(v, np.float64), floor))
    else:
        tr = lambda v: np.asarray(v, np.float64)
    t = np.concatenate([tr(v) for v in vals])
    lo, hi = float(t.min()), float(t.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(v) for v in vals)
    sx = lambda i: px0 + (px1 - px0) * (i / max(n - 1, 1))
    sy = lambda v: py1 - (py1 - py0) * ((v - lo) / (hi - lo))
    # axes + ticks
    draw.line([px0, py0, px0, py1, px1, py1], fill=(0, 0, 0))
    for q in np.linspace(0, 1, 4):
        yv = lo + q * (hi - lo)
        yy = sy(yv)
        draw.line([px0 - 3, yy, px0, yy], fill=(0, 0, 0))
        lab = _nice(10 ** yv) if log_y else _nice(yv)
        draw.text((x0 + 2, yy - 5), lab, fill=(60, 60, 60), font=font)
    for i in sorted(set([0, n - 1, (n - 1) // 2])):
        xx = sx(i)
        draw.line([xx, py1, xx, py1 + 3], fill=(0, 0, 0))
        draw.text((xx - 4, py1 + 5), str(i), fill=(60, 60, 60), font=font)
    draw.text(((px0 + px1) // 2 - 20, y1 - 12), xlabel, fill=(60, 60, 60), font=font)
    draw.text((x0 + 2, y0 + 4 + 10), ylabel, fill=(60, 60, 60), font=font)
    for v, color, _ in series:
        tv = tr(v)
        pts = [(sx(i), sy(tv[i])) for i in range(len(tv))]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for p in pts if len(pts) <= 32 else []:
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
    # legend
    ly = py0 + 2
    for _, color, label in series:
        draw.line([px1 - 70, ly + 5, px1 - 55, ly + 5], fill=color, width=2)
        draw.text((px1 - 52, ly), label, fill=(0, 0, 0), font=font)
        ly += 12


def plot_spectral_report(report, path, *, panel=(330, 200)):
    """One row per layer: eigen-spectrum of Psi (log) | FLC energy fraction per band."""
    layers = report["layers"]
    w, h = panel
    img = Image.new("RGB", (2 * w + 30, len(layers) * (h + 10) + 30), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    font = _font()
    draw.text((10, 8), f"UniDD spectra: real (blue, n={report['num_real']}) vs synthetic "
                       f"(red, n={report['num_syn']})", fill=(0, 0, 0), font=font)
    for r, lay in enumerate(layers):
        y = 30 + r * (h + 10)
        line_panel(draw, (10, y, 10 + w, y + h),
                   [(lay["eig_real"], REAL_COLOR, "real"), (lay["eig_syn"], SYN_COLOR, "syn")],
                   title=f"{lay['name']} (d={lay['dim']}): FFC eigenvalues",
                   xlabel="eigen-index (low -> high freq)", ylabel="", log_y=True, font=font)
        line_panel(draw, (20 + w, y, 20 + 2 * w, y + h),
                   [(lay["flc_band_fraction_real"], REAL_COLOR, "real"),
                    (lay["flc_band_fraction_syn"], SYN_COLOR, "syn")],
                   title=f"{lay['name']}: FLC energy fraction per band",
                   xlabel="band (low -> high freq)", ylabel="", log_y=False, font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def write_spectral_report(report, out_prefix):
    """-> (png path, json path) for out_prefix + '.png' / '.json'."""
    png = plot_spectral_report(report, out_prefix + ".png")
    js = out_prefix + ".json"
    with open(js, "w") as f:
        json.dump(report, f, indent=1)
    return png, js
