"""DSA pixel ops: colour (brightness, saturation, contrast), crop (integer translation),
cutout and flip, each as ``apply_<op>(x, u, params)`` (explicit per-sample uniforms) and a
keyed ``<op>(key, x, params)``. Part of :mod:`jaxdd.augment`.
"""

from __future__ import annotations

import functools
import jax
import jax.numpy as jnp

from jaxdd.augment.params import (DSAParams, _DEFAULT, _bcast, _check4d, _uniform_to_int,
                                  per_sample_uniform)


# ----------------------------------------------------------------------------------------
# Colour ops. Each op is apply_<op>(x, u, params) (u: per-sample U(0,1), shape (N,)) and a
# keyed wrapper <op>(key, x, params).
# ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('params',))
def apply_brightness(x, u, params: DSAParams = _DEFAULT):
    """x + (u - 0.5) * params.brightness. x: (N,H,W,C), u: (N,)."""
    return x + _bcast((u - 0.5) * params.brightness).astype(x.dtype)


@functools.partial(jax.jit, static_argnames=('params',))
def apply_saturation(x, u, params: DSAParams = _DEFAULT):
    """m + (x - m) * (u * params.saturation), m = per-pixel channel mean."""
    m = jnp.mean(x, axis=-1, keepdims=True)
    return m + (x - m) * _bcast(u * params.saturation).astype(x.dtype)


@functools.partial(jax.jit, static_argnames=('params',))
def apply_contrast(x, u, params: DSAParams = _DEFAULT):
    """m + (x - m) * (u + params.contrast), m = per-image mean over H, W, C."""
    m = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return m + (x - m) * _bcast(u + params.contrast).astype(x.dtype)


@functools.partial(jax.jit, static_argnames=('params',))
def brightness(key, x, params: DSAParams = _DEFAULT):
    """x + (u - 0.5) * brightness, u = per_sample_uniform(key, N). (N,H,W,C) -> same."""
    _check4d(x)
    return apply_brightness(x, per_sample_uniform(key, x.shape[0], (), params.batchmode),
                            params)


@functools.partial(jax.jit, static_argnames=('params',))
def saturation(key, x, params: DSAParams = _DEFAULT):
    """m + (x - m) * (2u), m = per-pixel channel mean, u = per_sample_uniform(key, N)."""
    _check4d(x)
    return apply_saturation(x, per_sample_uniform(key, x.shape[0], (), params.batchmode),
                            params)


@functools.partial(jax.jit, static_argnames=('params',))
def contrast(key, x, params: DSAParams = _DEFAULT):
    """m + (x - m) * (u + 0.5), m = per-image mean, u = per_sample_uniform(key, N)."""
    _check4d(x)
    return apply_contrast(x, per_sample_uniform(key, x.shape[0], (), params.batchmode),
                          params)


# ----------------------------------------------------------------------------------------
# Integer-pixel ops: crop (translation) and cutout
# ----------------------------------------------------------------------------------------


def _round_half_up(v: float) -> int:
    return int(v + 0.5)  # DSA: int(size * ratio + 0.5)


def crop_shift_ranges(h: int, w: int, params: DSAParams = _DEFAULT):
    """Integer ranges [lo, hi) of the crop shifts (t_h, t_w): ((-s_h, s_h + 1), (-s_w, s_w + 1)),
    s = int(side * ratio_crop_pad + 0.5) (MTT utils.py:626, randint bounds 628-630)."""
    sh = _round_half_up(h * params.ratio_crop_pad)
    sw = _round_half_up(w * params.ratio_crop_pad)
    return (-sh, sh + 1), (-sw, sw + 1)


@functools.partial(jax.jit, static_argnames=('h', 'w', 'params'))
def crop_shifts_from_uniform(u, h: int, w: int, params: DSAParams = _DEFAULT):
    """u (N,2) -> int shifts (N,2) = (t_h, t_w), t ~ U{-s..s}, s = int(side*ratio+0.5)."""
    (lh, hh), (lw, hw) = crop_shift_ranges(h, w, params)
    return jnp.stack([_uniform_to_int(u[:, 0], lh, hh),
                      _uniform_to_int(u[:, 1], lw, hw)], axis=-1)


@functools.partial(jax.jit, static_argnames=('n', 'h', 'w', 'params'))
def crop_shifts(key, n: int, h: int, w: int, params: DSAParams = _DEFAULT):
    """Per-sample integer shifts (n, 2) drawn with per_sample_uniform(key, n, (2,))."""
    return crop_shifts_from_uniform(per_sample_uniform(key, n, (2,), params.batchmode),
                                    h, w, params)


@jax.jit
def translate(x, shift_h, shift_w):
    """Integer translation with zero fill: out[n,i,j] = x[n, i+shift_h[n], j+shift_w[n]].

    x: (N,H,W,C); shift_h, shift_w: int (N,). Entries read from outside the image are 0
    (DSA ``rand_crop``: pad by 1, clamp the index, gather). Differentiable w.r.t. x.
    """
    _check4d(x)
    n, h, w, _ = x.shape
    rows = jnp.arange(h)[None, :] + shift_h[:, None]  # (N,H)
    cols = jnp.arange(w)[None, :] + shift_w[:, None]  # (N,W)
    vr = (rows >= 0) & (rows < h)
    vc = (cols >= 0) & (cols < w)
    rows = jnp.clip(rows, 0, h - 1)
    cols = jnp.clip(cols, 0, w - 1)
    b = jnp.arange(n)[:, None, None]
    out = x[b, rows[:, :, None], cols[:, None, :]]  # (N,H,W,C)
    mask = (vr[:, :, None] & vc[:, None, :]).astype(x.dtype)
    return out * mask[..., None]


@functools.partial(jax.jit, static_argnames=('params',))
def apply_crop(x, u, params: DSAParams = _DEFAULT):
    """Translation by crop_shifts_from_uniform(u) (u: (N,2)), zero fill."""
    s = crop_shifts_from_uniform(u, x.shape[1], x.shape[2], params)
    return translate(x, s[:, 0], s[:, 1])


@functools.partial(jax.jit, static_argnames=('params',))
def crop(key, x, params: DSAParams = _DEFAULT):
    """DSA ``rand_crop``: random integer translation, zero fill. (N,H,W,C) -> same."""
    _check4d(x)
    return apply_crop(x, per_sample_uniform(key, x.shape[0], (2,), params.batchmode), params)


def cutout_size(h: int, w: int, params: DSAParams = _DEFAULT):
    """(c_h, c_w) = int(side * ratio_cutout + 0.5)."""
    return _round_half_up(h * params.ratio_cutout), _round_half_up(w * params.ratio_cutout)


def cutout_offset_ranges(h: int, w: int, params: DSAParams = _DEFAULT):
    """Integer ranges [lo, hi) of the cutout centres (o_h, o_w): (0, side + 1 - c % 2) with
    c = cutout_size (MTT utils.py:648-652)."""
    ch, cw = cutout_size(h, w, params)
    return (0, h + (1 - ch % 2)), (0, w + (1 - cw % 2))


@functools.partial(jax.jit, static_argnames=('h', 'w', 'params'))
def cutout_offsets_from_uniform(u, h: int, w: int, params: DSAParams = _DEFAULT):
    """u (N,2) -> centres (N,2) = (o_h, o_w), o ~ U{0 .. side - (c % 2)} (DSA)."""
    (lh, hh), (lw, hw) = cutout_offset_ranges(h, w, params)
    return jnp.stack([_uniform_to_int(u[:, 0], lh, hh),
                      _uniform_to_int(u[:, 1], lw, hw)], axis=-1)


@functools.partial(jax.jit, static_argnames=('n', 'h', 'w', 'params'))
def cutout_offsets(key, n: int, h: int, w: int, params: DSAParams = _DEFAULT):
    """Per-sample cutout centres (n, 2) drawn with per_sample_uniform(key, n, (2,))."""
    return cutout_offsets_from_uniform(per_sample_uniform(key, n, (2,), params.batchmode),
                                       h, w, params)


@functools.partial(jax.jit, static_argnames=('h', 'w', 'size', 'dtype'))
def cutout_mask(offsets, h: int, w: int, size, dtype=jnp.float32):
    """Mask (N,H,W): 0 on rows [o_h - c_h//2, o_h - c_h//2 + c_h) x cols (same for w), else 1.

    offsets: int (N, 2); size: (c_h, c_w) python ints. Equals DSA's clamp-and-scatter mask.
    """
    ch, cw = size
    r0 = offsets[:, 0] - ch // 2
    c0 = offsets[:, 1] - cw // 2
    i = jnp.arange(h)[None, :]
    j = jnp.arange(w)[None, :]
    in_r = (i >= r0[:, None]) & (i < r0[:, None] + ch)  # (N,H)
    in_c = (j >= c0[:, None]) & (j < c0[:, None] + cw)  # (N,W)
    return 1.0 - (in_r[:, :, None] & in_c[:, None, :]).astype(dtype)


@functools.partial(jax.jit, static_argnames=('params',))
def cutout_at(x, offsets, params: DSAParams = _DEFAULT):
    """Zero the cutout square centred at integer offsets (N, 2) = (o_h, o_w). (N,H,W,C)."""
    _check4d(x)
    _, h, w, _ = x.shape
    return x * cutout_mask(offsets, h, w, cutout_size(h, w, params), x.dtype)[..., None]


@functools.partial(jax.jit, static_argnames=('params',))
def apply_cutout(x, u, params: DSAParams = _DEFAULT):
    """Zero the square at cutout_offsets_from_uniform(u) (u: (N,2))."""
    _, h, w, _ = x.shape
    return cutout_at(x, cutout_offsets_from_uniform(u, h, w, params), params)


@functools.partial(jax.jit, static_argnames=('params',))
def cutout(key, x, params: DSAParams = _DEFAULT):
    """DSA ``rand_cutout``: zero a random square of side ratio_cutout * side. (N,H,W,C)."""
    _check4d(x)
    return apply_cutout(x, per_sample_uniform(key, x.shape[0], (2,), params.batchmode),
                        params)


# ----------------------------------------------------------------------------------------
# Flip
# ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('params',))
def apply_flip(x, u, params: DSAParams = _DEFAULT):
    """Flip sample n along W where u[n] < prob_flip. u: (N,)."""
    return jnp.where(_bcast(u < params.prob_flip), x[:, :, ::-1, :], x)


@functools.partial(jax.jit, static_argnames=('n', 'params'))
def flip_mask(key, n: int, params: DSAParams = _DEFAULT):
    """Bool (n,): True where the sample is flipped (u < prob_flip)."""
    return per_sample_uniform(key, n, (), params.batchmode) < params.prob_flip


@functools.partial(jax.jit, static_argnames=('params',))
def flip(key, x, params: DSAParams = _DEFAULT):
    """Horizontal (W axis) flip of each sample with probability prob_flip. (N,H,W,C)."""
    _check4d(x)
    return apply_flip(x, per_sample_uniform(key, x.shape[0], (), params.batchmode), params)
