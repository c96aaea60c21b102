"""DSA affine ops: PyTorch ``affine_grid`` / ``grid_sample`` in NHWC (bilinear, zero
padding, both align_corners conventions), the scale and rotation thetas, and the scale /
rotate ops. Part of :mod:`jaxdd.augment`.
"""

from __future__ import annotations

import functools
import math
import jax
import jax.numpy as jnp

from jaxdd.augment.params import DSAParams, _DEFAULT, _check4d, per_sample_uniform


# ----------------------------------------------------------------------------------------
# Affine ops (PyTorch affine_grid / grid_sample, bilinear, zero padding; align_corners
# True by default, False for the DM/DC code of FreD/DDiF -- see DSAParams)
# ----------------------------------------------------------------------------------------


def _base_coords(n: int, dtype, align_corners: bool):
    """Normalised pixel-centre coordinates along one axis of n pixels (PyTorch)."""
    lin = jnp.linspace(-1.0, 1.0, n, dtype=dtype)
    if n <= 1:
        return jnp.zeros((n,), dtype)  # torch: a single pixel sits at 0
    return lin if align_corners else lin * ((n - 1) / n)


@functools.partial(jax.jit, static_argnames=('h', 'w', 'align_corners'))
def affine_grid(theta, h: int, w: int, align_corners: bool = True):
    """PyTorch ``F.affine_grid(theta, (N,C,H,W), align_corners=align_corners)``.

    theta: (N, 2, 3). Returns grid (N, H, W, 2) of normalised source coords (x, y).
    """
    xs = _base_coords(w, theta.dtype, align_corners)
    ys = _base_coords(h, theta.dtype, align_corners)
    gx, gy = jnp.meshgrid(xs, ys)  # (H, W), gx varies along W
    base = jnp.stack([gx, gy, jnp.ones_like(gx)], axis=-1)  # (H, W, 3)
    return jnp.einsum("hwk,nck->nhwc", base, theta)


@functools.partial(jax.jit, static_argnames=('align_corners',))
def grid_sample(x, grid, align_corners: bool = True):
    """PyTorch ``F.grid_sample(x, grid, 'bilinear', 'zeros', align_corners)``, NHWC.

    x: (N, H, W, C); grid: (N, Ho, Wo, 2) normalised (x, y). Returns (N, Ho, Wo, C).
    Bilinear gather; corners outside the image contribute 0. Differentiable w.r.t. x and
    grid.
    """
    _check4d(x)
    n, h, w, c = x.shape
    if align_corners:
        ix = (grid[..., 0] + 1.0) * 0.5 * (w - 1)
        iy = (grid[..., 1] + 1.0) * 0.5 * (h - 1)
    else:
        ix = ((grid[..., 0] + 1.0) * w - 1.0) * 0.5
        iy = ((grid[..., 1] + 1.0) * h - 1.0) * 0.5
    x0 = jnp.floor(ix)
    y0 = jnp.floor(iy)
    wx1 = ix - x0
    wy1 = iy - y0
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)
    # the 4 bilinear corners of every output pixel, read with ONE gather from the flattened
    # image (its gradient is one scatter-add; about 2x faster to compile and run than four
    # advanced-indexing gathers)
    xs = jnp.stack([x0, x0 + 1, x0, x0 + 1], axis=-1)  # (N, Ho, Wo, 4)
    ys = jnp.stack([y0, y0, y0 + 1, y0 + 1], axis=-1)
    wts = jnp.stack([(1.0 - wy1) * (1.0 - wx1), (1.0 - wy1) * wx1,
                     wy1 * (1.0 - wx1), wy1 * wx1], axis=-1)
    valid = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    wts = jnp.where(valid, wts, 0.0).astype(x.dtype)
    idx = (jnp.clip(ys, 0, h - 1) * w + jnp.clip(xs, 0, w - 1)).reshape(n, -1, 1)
    v = jnp.take_along_axis(x.reshape(n, h * w, c), idx, axis=1)  # (N, Ho*Wo*4, C)
    return jnp.sum(v.reshape(grid.shape[:3] + (4, c)) * wts[..., None], axis=3)


@functools.partial(jax.jit, static_argnames=('align_corners',))
def affine_sample(x, theta, align_corners: bool = True):
    """Warp x (N,H,W,C) by theta (N,2,3) (PyTorch convention; see affine_grid)."""
    _check4d(x)
    return grid_sample(x, affine_grid(theta.astype(x.dtype), x.shape[1], x.shape[2],
                                      align_corners), align_corners)


@functools.partial(jax.jit, static_argnames=('params',))
def scale_theta_from_uniform(u, params: DSAParams = _DEFAULT):
    """u (N,2) -> thetas (N,2,3) [[sx,0,0],[0,sy,0]], s = u * (r - 1/r) + 1/r."""
    r = params.ratio_scale
    s = u * (r - 1.0 / r) + 1.0 / r
    z = jnp.zeros(s.shape[:1], s.dtype)
    return jnp.stack([jnp.stack([s[:, 0], z, z], -1), jnp.stack([z, s[:, 1], z], -1)], 1)


@functools.partial(jax.jit, static_argnames=('n', 'params'))
def scale_theta(key, n: int, params: DSAParams = _DEFAULT):
    """(n,2,3) thetas [[sx,0,0],[0,sy,0]], sx, sy ~ U(1/r, r), r = ratio_scale."""
    return scale_theta_from_uniform(per_sample_uniform(key, n, (2,), params.batchmode),
                                    params)


@jax.jit
def rotation_matrix(angle):
    """(n,2,3) thetas [[cos a, -sin a, 0], [sin a, cos a, 0]] for angles (n,) in radians."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    z = jnp.zeros_like(angle)
    return jnp.stack([jnp.stack([c, -s, z], -1), jnp.stack([s, c, z], -1)], 1)


@functools.partial(jax.jit, static_argnames=('params',))
def rotate_theta_from_uniform(u, params: DSAParams = _DEFAULT):
    """u (N,) -> rotation thetas, angle = (u - 0.5) * 2 * ratio_rotate degrees."""
    return rotation_matrix((u - 0.5) * 2.0 * params.ratio_rotate / 180.0 * math.pi)


@functools.partial(jax.jit, static_argnames=('n', 'params'))
def rotate_theta(key, n: int, params: DSAParams = _DEFAULT):
    """(n,2,3) rotation thetas, angle ~ U(-ratio_rotate, ratio_rotate) degrees."""
    return rotate_theta_from_uniform(per_sample_uniform(key, n, (), params.batchmode),
                                     params)


@functools.partial(jax.jit, static_argnames=('params',))
def apply_scale(x, u, params: DSAParams = _DEFAULT):
    """Scale by scale_theta_from_uniform(u) (u: (N,2))."""
    return affine_sample(x, scale_theta_from_uniform(u, params), params.align_corners)


@functools.partial(jax.jit, static_argnames=('params',))
def apply_rotate(x, u, params: DSAParams = _DEFAULT):
    """Rotate by rotate_theta_from_uniform(u) (u: (N,))."""
    return affine_sample(x, rotate_theta_from_uniform(u, params), params.align_corners)


@functools.partial(jax.jit, static_argnames=('params',))
def scale(key, x, params: DSAParams = _DEFAULT):
    """DSA ``rand_scale``: per-axis scaling by U(1/1.2, 1.2), bilinear, zero pad."""
    _check4d(x)
    return apply_scale(x, per_sample_uniform(key, x.shape[0], (2,), params.batchmode),
                       params)


@functools.partial(jax.jit, static_argnames=('params',))
def rotate(key, x, params: DSAParams = _DEFAULT):
    """DSA ``rand_rotate``: rotation by U(-15, 15) degrees, bilinear, zero pad."""
    _check4d(x)
    return apply_rotate(x, per_sample_uniform(key, x.shape[0], (), params.batchmode),
                        params)
