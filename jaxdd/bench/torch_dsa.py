"""DSA in PyTorch as the authors call it in TM (mode 'S'), for the PyTorch peer
(jaxdd.bench.torch_reference). torch is imported inside the function only.
"""
from __future__ import annotations

import math


DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"


def make_dsa(strategy=DSA_STRATEGY, generator=None, device="cpu"):
    """DSA as the authors call it in TM (``DiffAugment(x, strategy, seed=-1)``, mode 'S'):
    one op group drawn uniformly per call, per-sample parameters, NCHW.

    Groups (``ParamDiffAug`` defaults): color = brightness (+ (u - 0.5)), saturation
    (channel mean + (x - m) * 2u), contrast (image mean + (x - m) * (u + 0.5)); crop =
    integer translation in [-s, s], s = int(0.125 side + 0.5), zero fill, as a gather from
    the 1-padded image; cutout = a zeroed square of side int(0.5 side + 0.5) at a random
    centre (built by index assignment into a ones mask); flip = horizontal with p 0.5;
    scale (sx, sy ~ U(1/1.2, 1.2)) and rotate (+-15 degrees) through
    ``F.affine_grid`` / ``F.grid_sample`` with ``align_corners=True``, the per-sample theta
    assembled from Python scalars like the authors' code does.
    """
    import torch
    import torch.nn.functional as F

    groups = strategy.split("_")
    g = generator

    def rand(*shape):
        return torch.rand(*shape, generator=g).to(device)

    def randint(lo, hi, shape):
        return torch.randint(lo, hi, shape, generator=g).to(device)

    def ar(n):
        return torch.arange(n, device=device)

    def affine(x, rows):
        theta = torch.tensor(rows, dtype=torch.float).to(device)
        grid = F.affine_grid(theta, x.shape, align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def op(x, name):
        n, _, h, w = x.shape
        if name == "color":
            x = x + (rand(n, 1, 1, 1) - 0.5) * 1.0
            m = x.mean(dim=1, keepdim=True)
            x = (x - m) * (rand(n, 1, 1, 1) * 2.0) + m
            m = x.mean(dim=[1, 2, 3], keepdim=True)
            return (x - m) * (rand(n, 1, 1, 1) + 0.5) + m
        if name == "crop":
            sx, sy = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            tx = randint(-sx, sx + 1, [n, 1, 1])
            ty = randint(-sy, sy + 1, [n, 1, 1])
            gb, gx, gy = torch.meshgrid(ar(n), ar(h), ar(w), indexing="ij")
            gx = torch.clamp(gx + tx + 1, 0, h + 1)
            gy = torch.clamp(gy + ty + 1, 0, w + 1)
            xp = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
            return xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
        if name == "cutout":
            ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
            ox = randint(0, h + (1 - ch % 2), [n, 1, 1])
            oy = randint(0, w + (1 - cw % 2), [n, 1, 1])
            gb, gx, gy = torch.meshgrid(ar(n), ar(ch), ar(cw), indexing="ij")
            gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
            gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
            mask = torch.ones(n, h, w, dtype=x.dtype, device=device)
            mask[gb, gx, gy] = 0
            return x * mask.unsqueeze(1)
        if name == "flip":
            return torch.where(rand(n, 1, 1, 1) < 0.5, x.flip(3), x)
        if name == "scale":
            r = 1.2
            sx = rand(n) * (r - 1.0 / r) + 1.0 / r
            sy = rand(n) * (r - 1.0 / r) + 1.0 / r
            return affine(x, [[[float(sx[i]), 0.0, 0.0], [0.0, float(sy[i]), 0.0]]
                              for i in range(n)])
        if name == "rotate":
            a = (rand(n) - 0.5) * 2 * 15.0 / 180 * math.pi
            return affine(x, [[[math.cos(a[i]), math.sin(-a[i]), 0.0],
                               [math.sin(a[i]), math.cos(a[i]), 0.0]] for i in range(n)])
        raise ValueError(f"unknown DSA group {name!r}")

    def dsa(x):
        name = groups[int(torch.randint(0, len(groups), (1,), generator=g))]
        return op(x, name).contiguous()

    return dsa
