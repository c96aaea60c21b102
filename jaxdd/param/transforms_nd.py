"""Separable frequency transforms over any number of grid axes of (..., *grid, C) arrays.

``jaxdd.param.transforms`` holds the 1-D matrices and the 2-D (H, W) transforms the image
parameterizations use. This module applies the same 1-D matrices along every grid axis of
an array with 1, 2 or 3 grid axes (channels last, never transformed):

    image (..., H, W, C)   audio (..., F, T, 1)   video (..., T, H, W, C)   voxel (..., D, H, W, 1)

A 2-grid-axis array goes through ``transforms`` unchanged (the image path stays bitwise what
it was); other ranks through ``apply_along_grid``, one ``einsum`` per axis at
``Precision.HIGHEST``. Since the transforms are separable, the order of the axes does not
matter in exact arithmetic; in float32 it changes the last bits only.

3-D DCT (the authors' 3-D MNIST code, sdh0818/FreD @ 9f35a7a, 3D-MNIST/frequency_transforms.py
``DCT.forward``): the 1-D unnormalized DCT-II matrix (torch-dct ``norm=None``) applied along
W, then H, then D of (N, C, D, H, W) voxels -- the separable 3-D DCT-II; ``DCT.inverse`` is
the exact inverse the same way. ``dctn(x, 'none', grid_ndim=3)`` is that transform on
(N, D, H, W, C) arrays (coefficient [n, d, h, w, c] here = the authors' [n, c, d, h, w]).
Their code builds ONE matrix of size ``im_size[0]`` (cubic voxels only); here every axis gets
a matrix of its own length.

The DFT (real basis, ``transforms.dft_matrix``) extends the same way; the Haar DWT is kept
2-D only (``get_transform_nd`` raises for other ranks).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdd.param import transforms

__all__ = [
    "apply_along_grid",
    "dctn",
    "idctn",
    "dftn",
    "idftn",
    "get_transform_nd",
    "lowpass_rank_nd",
    "idctn_resize",
]

_HI = jax.lax.Precision.HIGHEST
_LETTERS = "abdefgijklmnopqrstuvwxyz"   # grid-axis letters (not c, h: used below)


def _grid(x, grid_ndim: int) -> Tuple[int, ...]:
    grid_ndim = int(grid_ndim)
    if grid_ndim < 1 or x.ndim < grid_ndim + 1:
        raise ValueError(f"expected (..., *grid, C) with {grid_ndim} grid axes, got shape "
                         f"{tuple(x.shape)}")
    return tuple(int(s) for s in x.shape[-grid_ndim - 1:-1])


def apply_along_grid(x: jax.Array, mats: Sequence) -> jax.Array:
    """y[..., u1..ud, c] = sum mats[0][u1, s1] ... mats[d-1][ud, sd] x[..., s1..sd, c].

    x: (..., S1, .., Sd, C); mats[k]: (U_k, S_k) (rectangular allowed). d = len(mats)."""
    x = jnp.asarray(x)
    dt = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    y = x.astype(dt)
    d = len(mats)
    if d == 2:
        return transforms.apply_separable(y, mats[0], mats[1])
    axes = _LETTERS[:d]
    for k, m in enumerate(mats):
        src = "..." + axes + "c"
        dst = "..." + axes[:k] + "h" + axes[k + 1:] + "c"
        y = jnp.einsum(f"h{axes[k]},{src}->{dst}", jnp.asarray(m, dtype=dt), y, precision=_HI)
    return y


def _separable(x, norm, grid_ndim, two_d, matrix):
    """`two_d(x, norm)` on a 2-D grid (the image path, unchanged); else the 1-D `matrix(n,
    norm)` applied along every grid axis."""
    norm = transforms.canonical_norm(norm)
    grid = _grid(x, grid_ndim)
    if len(grid) == 2:
        return two_d(x, norm)
    return apply_along_grid(x, [matrix(n, norm) for n in grid])


def dctn(x: jax.Array, norm: str = "ortho", grid_ndim: int = 2) -> jax.Array:
    """DCT-II over the grid axes of (..., *grid, C) (scipy ``dctn(type=2, norm)`` there)."""
    return _separable(x, norm, grid_ndim, transforms.dct2, transforms.dct_matrix)


def idctn(c: jax.Array, norm: str = "ortho", grid_ndim: int = 2) -> jax.Array:
    """The exact inverse of ``dctn`` (scipy ``idctn(type=2, norm)``)."""
    return _separable(c, norm, grid_ndim, transforms.idct2, transforms.idct_matrix)


def dftn(x: jax.Array, norm: str = "ortho", grid_ndim: int = 2) -> jax.Array:
    """Separable real DFT (Re/Im rows stacked per axis, ``transforms.dft_matrix``)."""
    return _separable(x, norm, grid_ndim, transforms.dft2, transforms.dft_matrix)


def idftn(c: jax.Array, norm: str = "ortho", grid_ndim: int = 2) -> jax.Array:
    """The exact inverse of ``dftn``."""
    return _separable(c, norm, grid_ndim, transforms.idft2, transforms.idft_matrix)


Transform = Tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]


def get_transform_nd(name: str, norm: str = "ortho", grid_ndim: int = 2, *,
                     levels: int = 1) -> Transform:
    """(forward, inverse) over ``grid_ndim`` grid axes; grid_ndim 2 is exactly
    ``transforms.get_transform`` (the image path). 'dwt' exists for 2 grid axes only."""
    grid_ndim = int(grid_ndim)
    if grid_ndim == 2:
        return transforms.get_transform(name, norm, levels=levels)
    if grid_ndim not in (1, 3):
        raise ValueError(f"frequency transforms take 1, 2 or 3 grid axes, got {grid_ndim}")
    norm = transforms.canonical_norm(norm)
    if name == "dct":
        return (functools.partial(dctn, norm=norm, grid_ndim=grid_ndim),
                functools.partial(idctn, norm=norm, grid_ndim=grid_ndim))
    if name == "dft":
        return (functools.partial(dftn, norm=norm, grid_ndim=grid_ndim),
                functools.partial(idftn, norm=norm, grid_ndim=grid_ndim))
    if name == "dwt":
        raise ValueError(f"the Haar DWT is implemented for 2 grid axes (images, "
                         f"spectrograms), not {grid_ndim}: use transform='dct' or 'dft'")
    raise ValueError(f"unknown transform {name!r}; choose from {transforms.TRANSFORMS}")


def lowpass_rank_nd(name: str, grid: Sequence[int], *, levels: int = 1) -> np.ndarray:
    """Ranks 0..prod(grid)-1 of the positions of a grid from lowest to highest frequency.

    2 grid axes: ``transforms.lowpass_rank``. Otherwise (dct / dft): by the sum of the
    per-axis frequencies (anti-diagonal planes), ties by their max, then raster order."""
    grid = tuple(int(s) for s in grid)
    if len(grid) == 2:
        return transforms.lowpass_rank(name, grid[0], grid[1], levels=levels)
    if name == "dwt":
        raise ValueError("the Haar DWT is implemented for 2 grid axes only")
    keys = np.meshgrid(*[transforms.frequency_key(name, n) for n in grid], indexing="ij")
    keys = [k.ravel().astype(np.int64) for k in keys]
    total = np.sum(keys, axis=0)
    peak = np.max(keys, axis=0)
    raster = np.arange(int(np.prod(grid)))
    order = np.lexsort((raster, peak, total))   # last key is primary
    rank = np.empty(raster.size, dtype=np.int64)
    rank[order] = raster
    return rank.reshape(grid)


def idctn_resize(c: jax.Array, out_grid: Sequence[int], norm: str = "ortho") -> jax.Array:
    """Decode (..., *grid, C) DCT coefficients on another grid (``transforms.idct2_resize``'s
    zero-padding / truncation with the amplitude-preserving scale, on every grid axis)."""
    out_grid = tuple(int(s) for s in out_grid)
    grid = _grid(c, len(out_grid))
    norm = transforms.canonical_norm(norm)
    if len(grid) == 2:
        return transforms.idct2_resize(c, out_grid, norm)
    return apply_along_grid(c, [transforms.dct_resize_matrix(n, m, norm)
                                for n, m in zip(grid, out_grid)])
