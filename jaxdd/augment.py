"""DSA: differentiable siamese augmentation (Zhao & Bilen, ICML 2021) in pure JAX.

Behaviour follows ``DiffAugment`` / ``ParamDiffAug`` of the DC/DSA/DM/MTT/FreD/DDiF PyTorch
code (strategy ``'color_crop_cutout_flip_scale_rotate'``, mode ``'S'``), rewritten as pure,
jit-able, differentiable functions of an explicit PRNG key.

Images are float NHWC ``(N, H, W, C)``, any ``H, W, C`` (C=1 digits work). Only 4-D inputs
are supported (no NDHWC video/volume batches).

Op groups (names usable in a strategy string joined by ``'_'``):

  ========  ==============================================================================
  color     brightness, then saturation, then contrast (all three, as in DSA)
  crop      integer translation by t ~ U{-s..s} per axis, s = int(side * 0.125 + 0.5),
            zero fill (DSA's pad-by-1 + clamp gather)
  cutout    zero a square of side c = int(side * 0.5 + 0.5) centred at o ~ U{0..side-(c%2)}
            (clipped to the image)
  flip      horizontal (W axis) flip with probability 0.5
  scale     affine, x' = sx * x, y' = sy * y with sx, sy ~ U(1/1.2, 1.2)
  rotate    affine rotation by a ~ U(-15, 15) degrees
  ========  ==============================================================================

Formulas (u ~ U(0, 1) per sample, ``DSAParams`` defaults):
  brightness  x + (u - 0.5) * brightness
  saturation  m + (x - m) * (u * saturation),  m = mean over channels (per pixel)
  contrast    m + (x - m) * (u + contrast),    m = mean over H, W, C (per image)

Affine ops use PyTorch's ``F.affine_grid`` + ``F.grid_sample`` semantics, bilinear
interpolation and zero padding. With ``align_corners=True`` (the default; MTT utils.py:563-564
and 577-578 at 50dccea; FreD/DDiF TM and UniDD also pass it explicitly): for output pixel
(i, j) with normalised coordinates ``xn = -1 + 2 j / (W - 1)``, ``yn = -1 + 2 i / (H - 1)``,
the source point is ``(gx, gy) = theta @ (xn, yn, 1)`` and it is read at pixel
``((gx + 1) / 2 * (W - 1), (gy + 1) / 2 * (H - 1))``. With ``DSAParams(align_corners=False)``
(PyTorch's default since 1.3, hence what the DM/DC code of FreD and DDiF gets: their
DM/utils.py and DC/utils.py call ``F.affine_grid(theta, x.shape)`` / ``F.grid_sample(x, grid)``
without the argument -- e.g. DDiF DM/utils.py:662-663, 677-678 -- under torch 1.11 (FreD
requirements.txt) / 2.1 (DDiF requirements.txt)) pixel centres sit at
``xn = (2 j + 1) / W - 1`` and the source is read at ``((gx + 1) * W - 1) / 2``. For DSA's
thetas (no translation) the two conventions give the same pixel-unit map for scale and for
rotation of a square image; they differ only for rotation of a non-square image (aspect
factor (W-1)/(H-1) vs W/H), so every published (square) setting is unaffected. The
rotation matrix is DSA's ``[[cos a, -sin a, 0], [sin a, cos a, 0]]``, so a = +90 degrees on
a square image equals ``np.rot90(x, k=1, axes=(1, 2))`` (align_corners=True).

Parity with the authors' code (tests/test_parity_dsa.py, fixture made from MTT utils.py and
DDiF DM/utils.py by tests/parity/make_dsa.py): every op given the same sampled parameters
(the uniforms torch.rand drew, or the integers torch.randint drew for crop / cutout) gives
the authors' output and input gradient at float32 precision, in both align_corners
conventions; mode 'M' and 'S' chains and the seeded (siamese, batch-shared) call too. The
random streams differ on purpose (JAX keys vs torch's global generator); the distributions
are the same.

Modes:
  'S' (single; MTT default): one op group of the strategy is drawn uniformly per call (one
      choice for the whole batch, via ``lax.switch`` so the function compiles once), with
      per-sample parameters.
  'M' (multiple): every group of the strategy is applied, in order.
Strategy ``'none'`` / ``'None'`` / ``''`` / ``None`` returns ``x`` unchanged.

Randomness and the siamese property:
  * ``key`` is split into an op-choice key ``k_op`` and a parameter key ``k_par``
    (``split_key``). The op group chosen in mode 'S' depends only on ``k_op``
    (``sample_op``), never on the data or the batch size.
  * All parameters of a call come from one per-sample uniform block
    ``U = draw_uniforms(key, N)`` of shape (N, 11); each group reads its own fixed columns
    (``GROUP_COLUMNS``). So with the same key a group gets the same parameters whatever the
    rest of the strategy is, and mode 'S' applying group g equals ``dsa(key, x, strategy=g)``.
  * Row i of U is drawn from ``fold_in(k, i)``: it depends on (key, i) only, never on the
    batch size. Hence the same key on two batches gives the same op and the same
    per-sample parameters (siamese). With different batch sizes N1 < N2 the first N1
    samples of both batches get identical transforms and the extra samples of the larger
    batch get their own parameters: ``dsa(key, x)[:k] == dsa(key, x[:k])`` (all ops act
    per image, the colour means included).
  * ``DSAParams(batchmode=True)`` reproduces DSA's seeded ("siamese") call
    ``DiffAugment(x, seed=s)`` of DC/DM, where every sample of the batch shares the
    parameters of sample 0; then real and synthetic batches of any sizes get exactly the
    same transform.
  * The individual keyed ops (``brightness(key, x, params)`` ...) draw
    ``per_sample_uniform(key, N, (k,))`` themselves; the ``apply_<op>(x, u, params)``
    functions take explicit uniforms.

Outside DSA, the training-set augmentations of the CFM pipeline (jaxdd.cfm) are built from
the same kernels: ``random_crop_flip`` (torchvision RandomCrop(padding) + flip, the
teacher's) and ``cutmix`` (the soft-label students').
"""

from __future__ import annotations

import dataclasses
import functools
import math
import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "DSAParams",
    "dsa",
    "sample_op",
    "parse_strategy",
    "split_key",
    "draw_uniforms",
    "apply_group",
    "GROUPS",
    "GROUP_ID",
    "GROUP_COLUMNS",
    "NUM_UNIFORMS",
    # individual ops f(key, x, params) -> x'
    "brightness",
    "saturation",
    "contrast",
    "crop",
    "cutout",
    "flip",
    "scale",
    "rotate",
    # the same ops with explicit per-sample uniforms: apply_<op>(x, u, params)
    "apply_brightness",
    "apply_saturation",
    "apply_contrast",
    "apply_crop",
    "apply_cutout",
    "apply_flip",
    "apply_scale",
    "apply_rotate",
    # parameter samplers and deterministic kernels
    "per_sample_keys",
    "per_sample_uniform",
    "crop_shifts",
    "crop_shifts_from_uniform",
    "crop_shift_ranges",
    "cutout_size",
    "cutout_offsets",
    "cutout_offsets_from_uniform",
    "cutout_offset_ranges",
    "flip_mask",
    "scale_theta",
    "scale_theta_from_uniform",
    "rotate_theta",
    "rotate_theta_from_uniform",
    "rotation_matrix",
    "translate",
    "cutout_mask",
    "affine_grid",
    "grid_sample",
    "affine_sample",
    "cutout_at",
    # training-set augmentations of the CFM pipeline (teacher, soft-label students)
    "random_crop_flip",
    "cutmix",
]


@dataclasses.dataclass(frozen=True)
class DSAParams:
    """Hyper-parameters of DSA (defaults = DSA / MTT ``ParamDiffAug``). Hashable (static arg).

    batchmode: False (default, MTT/FreD/DDiF: ``DiffAugment`` without seed) draws parameters
      per sample; True shares sample 0's parameters over the whole batch (DSA's seeded call).
    align_corners: convention of the scale/rotate resampling. True (default) = MTT, FreD TM,
      DDiF TM, UniDD (explicit ``align_corners=True``); False = the DM/DC code of FreD and
      DDiF, which omits the argument and so gets PyTorch's default (False since torch 1.3).
    """

    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    prob_flip: float = 0.5
    batchmode: bool = False
    align_corners: bool = True


_DEFAULT = DSAParams()


def _check4d(x):
    if x.ndim != 4:
        raise ValueError(f"DSA expects NHWC images (4-D), got shape {x.shape}")


# ----------------------------------------------------------------------------------------
# Per-sample randomness
# ----------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('n', 'batchmode'))
def per_sample_keys(key, n: int, batchmode: bool = False):
    """Keys (n,) with key i = fold_in(key, i) (or fold_in(key, 0) for all if batchmode)."""
    idx = jnp.zeros((n,), jnp.uint32) if batchmode else jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)


@functools.partial(jax.jit, static_argnames=('n', 'shape', 'batchmode', 'dtype'))
def per_sample_uniform(key, n: int, shape=(), batchmode: bool = False, dtype=jnp.float32):
    """U[0, 1) draws of shape (n, *shape); row i depends only on (key, i).

    batchmode=True: every row equals row 0 (shared parameters).
    """
    keys = per_sample_keys(key, n, batchmode)
    return jax.vmap(lambda k: jax.random.uniform(k, shape, dtype))(keys)


def _uniform_to_int(u, lo: int, hi: int):
    """u in [0,1) -> integer in [lo, hi) (uniform); clip guards float rounding at u ~ 1."""
    return jnp.clip(lo + jnp.floor(u * (hi - lo)).astype(jnp.int32), lo, hi - 1)


def _bcast(v):
    return v[:, None, None, None]


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


# ----------------------------------------------------------------------------------------
# Strategy / mode
# ----------------------------------------------------------------------------------------

# Each group reads a fixed slice of one per-sample uniform block (N, NUM_UNIFORMS), so a
# whole dsa call costs a single per-sample PRNG draw (cheap to compile) and a group's
# parameters do not depend on which other groups are in the strategy.
GROUP_COLUMNS: dict[str, tuple[int, int]] = {
    "color": (0, 3),    # brightness, saturation, contrast
    "crop": (3, 5),     # t_h, t_w
    "cutout": (5, 7),   # o_h, o_w
    "flip": (7, 8),
    "scale": (8, 10),   # sx, sy
    "rotate": (10, 11),
}
NUM_UNIFORMS = 11
GROUPS = tuple(GROUP_COLUMNS)
GROUP_ID: dict[str, int] = {name: i for i, name in enumerate(GROUPS)}


@functools.partial(jax.jit, static_argnames=('name', 'params'))
def apply_group(x, name: str, u, params: DSAParams = _DEFAULT):
    """Apply op group `name` given its per-sample uniforms u (N, k) (k = its column count).

    'color' = brightness(u[:,0]) -> saturation(u[:,1]) -> contrast(u[:,2]).
    """
    if name == "color":
        x = apply_brightness(x, u[:, 0], params)
        x = apply_saturation(x, u[:, 1], params)
        return apply_contrast(x, u[:, 2], params)
    if name == "crop":
        return apply_crop(x, u, params)
    if name == "cutout":
        return apply_cutout(x, u, params)
    if name == "flip":
        return apply_flip(x, u[:, 0], params)
    if name == "scale":
        return apply_scale(x, u, params)
    if name == "rotate":
        return apply_rotate(x, u[:, 0], params)
    raise ValueError(f"unknown DSA op group {name!r}")


def parse_strategy(strategy) -> tuple[str, ...]:
    """'color_crop_...' -> ('color', 'crop', ...); 'none'/''/None -> ()."""
    if strategy is None or strategy.lower() in ("", "none"):
        return ()
    names = tuple(strategy.split("_"))
    for nm in names:
        if nm not in GROUP_COLUMNS:
            raise ValueError(f"unknown DSA op group {nm!r} in strategy {strategy!r}; "
                             f"known: {list(GROUPS)}")
    return names


def split_key(key):
    """key -> (k_op, k_par): op-choice key (mode 'S') and parameter key."""
    k_op, k_par = jax.random.split(key)
    return k_op, k_par


@functools.partial(jax.jit, static_argnames=('n', 'occurrence', 'batchmode'))
def draw_uniforms(key, n: int, occurrence: int = 0, batchmode: bool = False):
    """The per-sample uniform block (n, NUM_UNIFORMS) that dsa(key, ...) uses.

    Block = per_sample_uniform(fold_in(k_par, occurrence), n, (NUM_UNIFORMS,)) with
    k_par = split_key(key)[1]; `occurrence` counts earlier repeats of the same group name in
    a strategy (mode 'M', e.g. 'flip_flip'), 0 otherwise.
    """
    _, k_par = split_key(key)
    return per_sample_uniform(jax.random.fold_in(k_par, occurrence), n, (NUM_UNIFORMS,),
                              batchmode)


def _occurrences(names):
    seen: dict[str, int] = {}
    occ = []
    for nm in names:
        occ.append(seen.get(nm, 0))
        seen[nm] = seen.get(nm, 0) + 1
    return occ


@functools.partial(jax.jit, static_argnames=('strategy',))
def sample_op(key, strategy: str = "color_crop_cutout_flip_scale_rotate"):
    """Index (int32 scalar) into parse_strategy(strategy) of the group mode 'S' applies."""
    names = parse_strategy(strategy)
    if not names:
        raise ValueError("strategy has no op groups")
    k_op, _ = split_key(key)
    return _uniform_to_int(jax.random.uniform(k_op, ()), 0, len(names))


@functools.partial(jax.jit, static_argnames=("n", "strategy", "mode", "params"))
def dsa_draw(key, n: int, strategy: str = "color_crop_cutout_flip_scale_rotate",
             mode: str = "S", params: DSAParams = _DEFAULT, op_key=None):
    """Every random draw of ``dsa(key, x, strategy, mode, params, op_key)`` for a batch of
    ``n`` images, as a pytree: ``{'op': int32 scalar, 'u': (n, NUM_UNIFORMS)}`` in mode 'S'
    (``op`` indexes the distinct groups of the strategy), ``{'u': (occurrences, n,
    NUM_UNIFORMS)}`` in mode 'M'. ``dsa_apply(dsa_draw(key, n, ...), x, ...)`` is
    ``dsa(key, x, ...)`` exactly.

    Why split: a loop that augments at every step (TM's unrolled student) can draw all its
    steps' parameters at once, vmapped over the step keys, outside the loop body; the body
    (and its rematerialized and transposed copies) then holds no PRNG code. Measured in
    issue 17 (MNIST-shaped MTT step, 20 student steps): see jaxdd.objective.tm."""
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    names = parse_strategy(strategy)
    if mode == "M":
        occ = _occurrences(names) or [0]
        return {"u": jnp.stack([draw_uniforms(key, n, o, params.batchmode)
                                for o in range(max(occ) + 1)])}
    u = draw_uniforms(key, n, 0, params.batchmode)
    uniq = tuple(dict.fromkeys(names))  # distinct groups; duplicates weight the choice
    if len(uniq) <= 1:
        return {"op": jnp.zeros((), jnp.int32), "u": u}
    branch_of = jnp.asarray([uniq.index(nm) for nm in names], jnp.int32)
    return {"op": branch_of[sample_op(key if op_key is None else op_key, strategy)], "u": u}


def dsa_apply(draw, x, strategy: str = "color_crop_cutout_flip_scale_rotate",
              mode: str = "S", params: DSAParams = _DEFAULT):
    """Apply the augmentation that ``draw`` (from :func:`dsa_draw`, same strategy / mode /
    params, a batch of x.shape[0]) describes; differentiable w.r.t. x."""
    _check4d(x)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    names = parse_strategy(strategy)
    if not names:
        return x

    def cols(u, name):
        a, b = GROUP_COLUMNS[name]
        return u[:, a:b]  # float32; ops cast to x.dtype where they touch x

    if mode == "M":
        for nm, o in zip(names, _occurrences(names)):
            x = apply_group(x, nm, cols(draw["u"][o], nm), params)
        return x
    u = draw["u"]
    uniq = tuple(dict.fromkeys(names))
    if len(uniq) == 1:
        return apply_group(x, uniq[0], cols(u, uniq[0]), params)
    branches = [functools.partial(lambda nm, x_, u_: apply_group(x_, nm, cols(u_, nm), params),
                                  nm) for nm in uniq]
    return lax.switch(draw["op"], branches, x, u)


@functools.partial(jax.jit, static_argnames=("strategy", "mode", "params"))
def dsa(key, x, strategy: str = "color_crop_cutout_flip_scale_rotate", mode: str = "S",
        params: DSAParams = _DEFAULT, op_key=None):
    """Differentiable siamese augmentation.

    Args:
      key: PRNG key (raw uint32 or typed). Same key -> same op and per-sample params.
      x: float (N, H, W, C).
      strategy: static; op groups joined by '_' (see module doc) or 'none'.
      mode: static; 'S' = one group drawn per call (lax.switch), 'M' = all groups in order.
      params: static DSAParams.
      op_key: optional key for the mode-'S' op choice (default: `key`). Under `vmap` over
        networks/experts, pass an op_key that is NOT batched: the chosen group is then one
        scalar and `lax.switch` runs one branch, instead of all six branches selected
        per element (what a batched switch index lowers to).
    Returns:
      (N, H, W, C) augmented images, differentiable w.r.t. x.
      ``dsa_apply(dsa_draw(key, N, ...), x, ...)`` is the same function in two parts.
    """
    _check4d(x)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    if not parse_strategy(strategy):
        return x
    return dsa_apply(dsa_draw(key, x.shape[0], strategy, mode, params, op_key), x, strategy,
                     mode, params)


@dataclasses.dataclass(frozen=True)
class Augment:
    """DSA with fixed settings as a value: ``aug(key, x)`` is :func:`dsa`; ``aug.draw(key,
    n)`` / ``aug.apply(draw, x)`` are its two halves (:func:`dsa_draw`, :func:`dsa_apply`),
    which loops use to draw every step's parameters before the loop."""
    strategy: str = "color_crop_cutout_flip_scale_rotate"
    mode: str = "S"
    params: DSAParams = _DEFAULT

    def __call__(self, key, x):
        return dsa(key, x, self.strategy, self.mode, self.params)

    def draw(self, key, n: int):
        return dsa_draw(key, n, self.strategy, self.mode, self.params)

    def apply(self, draw, x):
        return dsa_apply(draw, x, self.strategy, self.mode, self.params)


def make_augment(strategy, mode: str = "S", params: DSAParams = _DEFAULT):
    """An :class:`Augment` for ``strategy``, or None for no augmentation ('none', '', None)."""
    if strategy is None or not parse_strategy(strategy):
        return None
    return Augment(strategy, mode, params)


# ----------------------------------------------------------------------------------------
# Training-set augmentations of the CFM pipeline (not DSA): torchvision's RandomCrop with
# padding + horizontal flip (the teacher), CutMix (the soft-label students)
# ----------------------------------------------------------------------------------------


def random_crop_flip(key, x, pad, fill=None, flip=True):
    """RandomCrop(size, padding=pad) + horizontal flip with probability 0.5, per image.

    The crop is ``translate`` by offsets ~ U{-pad..pad} per axis; the border it uncovers
    holds ``fill`` ((C,): the normalized value of a black pixel, as torchvision pads the PIL
    image before ToTensor/Normalize; default 0). The flip is ``apply_flip``."""
    _check4d(x)
    n = x.shape[0]
    k_crop, k_flip = jax.random.split(key)
    if pad > 0:
        s = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1) - pad
        x = translate(x, s[:, 0], s[:, 1])
        if fill is not None:  # 0 inside, fill on the uncovered border
            inside = translate(jnp.ones_like(x[..., :1]), s[:, 0], s[:, 1])
            x = x + (1.0 - inside) * jnp.asarray(fill, x.dtype)
    if flip:
        x = apply_flip(x, jax.random.uniform(k_flip, (n,)))
    return x


def cutmix(key, x, alpha=1.0):
    """CutMix as UniDD's relabel code: one box for the batch (side sqrt(1 - lam) of the
    image, lam ~ Beta(alpha, alpha), centre uniform, clipped), filled from a permuted batch."""
    n, hh, ww, _ = x.shape
    kl, kp, kx, ky = jax.random.split(key, 4)
    # Beta(1, 1) is U(0, 1) (the default; avoids compiling the gamma sampler)
    lam = (jax.random.uniform(kl) if float(alpha) == 1.0
           else jax.random.beta(kl, alpha, alpha))
    perm = jax.random.permutation(kp, n)
    rat = jnp.sqrt(1.0 - lam)
    cut_h = jnp.floor(hh * rat).astype(jnp.int32)
    cut_w = jnp.floor(ww * rat).astype(jnp.int32)
    cy = jax.random.randint(ky, (), 0, hh)
    cx = jax.random.randint(kx, (), 0, ww)
    y1, y2 = jnp.clip(cy - cut_h // 2, 0, hh), jnp.clip(cy + cut_h // 2, 0, hh)
    x1, x2 = jnp.clip(cx - cut_w // 2, 0, ww), jnp.clip(cx + cut_w // 2, 0, ww)
    rows = jnp.arange(hh)[:, None]
    cols = jnp.arange(ww)[None, :]
    box = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)
    return jnp.where(box[None, :, :, None], x[perm], x)
