"""Separable 2-D frequency transforms over the H and W axes of (..., H, W, C) arrays.

Pure ``jnp`` functions; every transform is a pair of matrix products
``einsum('uh,...hwc->...uwc')`` / ``einsum('vw,...uwc->...uvc')`` with small (H, H) and (W, W)
matrices built once per size with numpy (``functools.lru_cache``; the cached arrays are
read-only constants, so the cache is not mutable state). Everything jits and differentiates;
the products run at ``Precision.HIGHEST`` so GPUs/TPUs do not silently use TF32/bf16.

Transforms (all map an (..., H, W, C) real array to an (..., H, W, C) real array):

* ``'dct'`` -- 2-D DCT-II (forward) / DCT-III (inverse), separable along H and W.
  ``norm='ortho'``: the orthonormal matrix ``D[u, n] = a_u cos(pi (2n+1) u / (2N))`` with
  ``a_0 = sqrt(1/N)``, ``a_u = sqrt(2/N)``; ``D D^T = I``. Identical to
  ``scipy.fft.dctn(x, type=2, norm='ortho', axes=(H, W))``.
  ``norm='none'``: scipy's unnormalized pair (``norm=None``, also torch-dct's default and what
  the FreD code uses): forward ``y_u = 2 sum_n x_n cos(pi (2n+1) u / (2N))`` = ``d_u * ortho``
  with ``d_0 = 2 sqrt(N)``, ``d_u = sqrt(2N)``; the inverse is ``scipy.fft.idctn(norm=None)``
  (DCT-III divided by 2N per axis), the exact inverse.
* ``'dft'`` -- the real Fourier basis. Per axis (length n) the rows are
  ``Re(DFT_k)`` for ``k = 0 .. n//2`` followed by ``Im(DFT_k)`` for ``k = 1 .. (n-1)//2``
  (real and imaginary parts "stacked" along the frequency axis; the identically zero imaginary
  parts of DC and Nyquist are dropped), so a length-n real signal maps to exactly n real
  numbers. ``norm='none'``: those rows are literally ``numpy.fft.rfft``'s real/imag parts;
  ``norm='ortho'``: rows scaled by ``1/sqrt(n)`` (DC, Nyquist) or ``sqrt(2/n)`` (others), an
  orthonormal matrix. Applied separably in 2-D this is the tensor-product real Fourier basis:
  the coefficients at (|k|, |l|) span the same 4-dimensional space as Re/Im of the complex 2-D
  DFT at (+-k, +-l) (an orthogonal 2x2 re-mixing), with an exact inverse.
* ``'dwt'`` -- orthonormal Haar wavelet transform, 2-D Mallat pyramid (as ``pywt.wavedec2``
  with ``coeffs_to_array``): each level maps the current top-left LL block
  ``[[LL, LH], [HL, HH]]`` with ``approx = (x[2i] + x[2i+1]) / sqrt2``,
  ``detail = (x[2i] - x[2i+1]) / sqrt2`` along H and W. ``levels`` >= 1; H and W must be
  divisible by ``2**levels``. Orthonormal, energy preserving, exact inverse. Only
  ``norm='ortho'`` (the Haar wavelet is defined orthonormal).

``get_transform(name, norm='ortho', **kw) -> (forward, inverse)`` is the registry.

Cross-resolution (DCT only): ``idct2_resize(coef, (M_h, M_w), norm)`` decodes N-point
coefficients on an M-point grid by zero-padding (M > N) or truncation (M < N) of the spectrum,
scaled so that a low-frequency image keeps its amplitude: per axis ``lambda = sqrt(M/N)``
orthonormal, ``M/N`` unnormalized (so ``(M/N)^2`` for a square image in the unnormalized
convention, FreD's lambda; ``M/N`` orthonormal). Derivation: the samples of the continuous
basis function ``cos(pi u t)`` at the cell centres ``t_n = (2n+1)/(2N)`` have orthonormal
coefficient ``sqrt(N/2)`` (``sqrt(N)`` for u = 0) at N points and ``sqrt(M/2)`` at M points,
ratio ``sqrt(M/N)``; unnormalized coefficients are N and M, ratio ``M/N``. So any image that is
a combination of DCT basis functions with frequencies < min(N, M) is resampled exactly as the
continuous band-limited function evaluated on the other grid.
"""

from __future__ import annotations

import functools
from typing import Callable, Tuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "NORMS",
    "TRANSFORMS",
    "canonical_norm",
    "dct_matrix",
    "idct_matrix",
    "dct_unnorm_scale",
    "dft_matrix",
    "idft_matrix",
    "dft_frequency",
    "haar_matrix",
    "apply_separable",
    "dct2",
    "idct2",
    "dft2",
    "idft2",
    "dwt2",
    "idwt2",
    "get_transform",
    "frequency_key",
    "lowpass_rank",
    "dct_resize_matrix",
    "idct2_resize",
]

NORMS = ("ortho", "none")
TRANSFORMS = ("dct", "dft", "dwt")

_HI = jax.lax.Precision.HIGHEST


def canonical_norm(norm) -> str:
    """'ortho' | 'none' (None, 'None', 'backward' are accepted as 'none')."""
    if norm is None:
        return "none"
    n = str(norm).lower()
    if n in ("none", "backward"):
        return "none"
    if n == "ortho":
        return "ortho"
    raise ValueError(f"norm must be 'ortho' or 'none', got {norm!r}")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


# ----------------------------------------------------------------------------- DCT


@functools.lru_cache(maxsize=None)
def _dct_ortho(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    t = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * t + 1) * k / (2 * n))
    a = np.full((n, 1), np.sqrt(2.0 / n))
    a[0] = np.sqrt(1.0 / n)
    return _frozen(a * m)


@functools.lru_cache(maxsize=None)
def dct_unnorm_scale(n: int) -> np.ndarray:
    """(n,) factors d with unnormalized DCT-II = d[:, None] * orthonormal DCT-II.

    d_0 = 2 sqrt(n), d_u = sqrt(2n) (u > 0). In 2-D the factor is outer(d_H, d_W).
    """
    d = np.full((n,), np.sqrt(2.0 * n))
    d[0] = 2.0 * np.sqrt(n)
    return _frozen(d)


@functools.lru_cache(maxsize=None)
def dct_matrix(n: int, norm: str = "ortho") -> np.ndarray:
    """(n, n) forward DCT-II matrix: coef = M @ x (scipy.fft.dct(type=2, norm=norm))."""
    q = _dct_ortho(n)
    if canonical_norm(norm) == "ortho":
        return q
    return _frozen(dct_unnorm_scale(n)[:, None] * q)


@functools.lru_cache(maxsize=None)
def idct_matrix(n: int, norm: str = "ortho") -> np.ndarray:
    """(n, n) inverse (DCT-III) matrix: x = Mi @ coef, the exact inverse of dct_matrix."""
    q = _dct_ortho(n)
    if canonical_norm(norm) == "ortho":
        return _frozen(q.T)
    return _frozen(q.T / dct_unnorm_scale(n)[None, :])


# ----------------------------------------------------------------------------- DFT


def dft_frequency(n: int) -> np.ndarray:
    """(n,) integer frequency |k| of each row of the real DFT basis (cos rows then sin rows)."""
    n_cos = n // 2 + 1
    i = np.arange(n)
    return np.where(i < n_cos, i, i - n_cos + 1)


@functools.lru_cache(maxsize=None)
def _dft_raw(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """(raw rows = Re/Im of rfft, row norms) for the real DFT basis of length n."""
    n_cos = n // 2 + 1
    t = np.arange(n)[None, :]
    kc = np.arange(n_cos)[:, None]
    ks = np.arange(1, (n - 1) // 2 + 1)[:, None]
    raw = np.concatenate(
        [np.cos(2 * np.pi * kc * t / n), -np.sin(2 * np.pi * ks * t / n)], axis=0
    )
    nrm = np.full((n,), np.sqrt(n / 2.0))
    nrm[0] = np.sqrt(n)
    if n % 2 == 0:
        nrm[n // 2] = np.sqrt(n)
    return raw, nrm


@functools.lru_cache(maxsize=None)
def dft_matrix(n: int, norm: str = "ortho") -> np.ndarray:
    """(n, n) forward real-DFT matrix (rows: Re rfft k=0..n//2, then Im rfft k=1..(n-1)//2).

    'none': exactly the real/imag parts of numpy.fft.rfft; 'ortho': rows normalized
    (orthonormal matrix).
    """
    raw, nrm = _dft_raw(n)
    if canonical_norm(norm) == "ortho":
        return _frozen(raw / nrm[:, None])
    return _frozen(raw)


@functools.lru_cache(maxsize=None)
def idft_matrix(n: int, norm: str = "ortho") -> np.ndarray:
    """(n, n) exact inverse of dft_matrix(n, norm)."""
    raw, nrm = _dft_raw(n)
    q = raw / nrm[:, None]
    if canonical_norm(norm) == "ortho":
        return _frozen(q.T)
    return _frozen(q.T / nrm[None, :])


# ----------------------------------------------------------------------------- Haar


@functools.lru_cache(maxsize=None)
def haar_matrix(n: int) -> np.ndarray:
    """(n, n) single-level orthonormal Haar analysis matrix (n even).

    Rows 0..n/2-1: (x[2i] + x[2i+1]) / sqrt2; rows n/2..n-1: (x[2i] - x[2i+1]) / sqrt2.
    """
    if n % 2:
        raise ValueError(f"Haar DWT needs an even length, got {n}")
    h = n // 2
    m = np.zeros((n, n))
    i = np.arange(h)
    s = 1.0 / np.sqrt(2.0)
    m[i, 2 * i] = s
    m[i, 2 * i + 1] = s
    m[h + i, 2 * i] = s
    m[h + i, 2 * i + 1] = -s
    return _frozen(m)


def _check_dwt(h: int, w: int, levels: int) -> None:
    if levels < 1:
        raise ValueError(f"dwt levels must be >= 1, got {levels}")
    f = 2 ** levels
    if h % f or w % f:
        raise ValueError(
            f"Haar DWT with {levels} level(s) needs H and W divisible by {f}, got {h}x{w}"
        )


# ----------------------------------------------------------------------------- core


def apply_separable(x: jax.Array, mh, mw) -> jax.Array:
    """y[..., u, v, c] = sum_{h,w} mh[u, h] mw[v, w] x[..., h, w, c].

    x: (..., H, W, C); mh: (U, H); mw: (V, W) -> (..., U, V, C). Rectangular matrices allowed.
    """
    x = jnp.asarray(x)
    dt = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    mh = jnp.asarray(mh, dtype=dt)
    mw = jnp.asarray(mw, dtype=dt)
    y = jnp.einsum("uh,...hwc->...uwc", mh, x.astype(dt), precision=_HI)
    return jnp.einsum("vw,...uwc->...uvc", mw, y, precision=_HI)


def _hw(x) -> Tuple[int, int]:
    if x.ndim < 3:
        raise ValueError(f"expected (..., H, W, C), got shape {x.shape}")
    return int(x.shape[-3]), int(x.shape[-2])


def dct2(x: jax.Array, norm: str = "ortho") -> jax.Array:
    """2-D DCT-II over the H, W axes of (..., H, W, C) (scipy dctn(type=2, norm))."""
    h, w = _hw(x)
    return apply_separable(x, dct_matrix(h, canonical_norm(norm)), dct_matrix(w, canonical_norm(norm)))


def idct2(c: jax.Array, norm: str = "ortho") -> jax.Array:
    """Inverse of dct2 (scipy idctn(type=2, norm)): (..., H, W, C) -> (..., H, W, C)."""
    h, w = _hw(c)
    return apply_separable(c, idct_matrix(h, canonical_norm(norm)), idct_matrix(w, canonical_norm(norm)))


def dft2(x: jax.Array, norm: str = "ortho") -> jax.Array:
    """Separable real 2-D DFT (Re/Im stacked per axis), (..., H, W, C) -> same shape."""
    h, w = _hw(x)
    return apply_separable(x, dft_matrix(h, canonical_norm(norm)), dft_matrix(w, canonical_norm(norm)))


def idft2(c: jax.Array, norm: str = "ortho") -> jax.Array:
    """Exact inverse of dft2."""
    h, w = _hw(c)
    return apply_separable(c, idft_matrix(h, canonical_norm(norm)), idft_matrix(w, canonical_norm(norm)))


def dwt2(x: jax.Array, levels: int = 1) -> jax.Array:
    """Orthonormal 2-D Haar DWT, Mallat layout (coarsest LL at the top-left).

    x: (..., H, W, C) with H, W divisible by 2**levels -> coefficients of the same shape.
    """
    h, w = _hw(x)
    _check_dwt(h, w, levels)
    y = jnp.asarray(x)
    for lvl in range(levels):
        hh, ww = h >> lvl, w >> lvl
        blk = apply_separable(y[..., :hh, :ww, :], haar_matrix(hh), haar_matrix(ww))
        y = y.at[..., :hh, :ww, :].set(blk)
    return y


def idwt2(c: jax.Array, levels: int = 1) -> jax.Array:
    """Exact inverse of dwt2 (same levels)."""
    h, w = _hw(c)
    _check_dwt(h, w, levels)
    y = jnp.asarray(c)
    for lvl in reversed(range(levels)):
        hh, ww = h >> lvl, w >> lvl
        blk = apply_separable(y[..., :hh, :ww, :], haar_matrix(hh).T, haar_matrix(ww).T)
        y = y.at[..., :hh, :ww, :].set(blk)
    return y


Transform = Tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]


def get_transform(name: str, norm: str = "ortho", *, levels: int = 1) -> Transform:
    """Registry: name in {'dct', 'dft', 'dwt'} -> (forward, inverse), both (..., H, W, C) maps.

    norm: 'ortho' | 'none' (dct, dft); 'dwt' accepts only 'ortho'. levels: Haar levels (dwt).
    """
    norm = canonical_norm(norm)
    if name == "dct":
        return functools.partial(dct2, norm=norm), functools.partial(idct2, norm=norm)
    if name == "dft":
        return functools.partial(dft2, norm=norm), functools.partial(idft2, norm=norm)
    if name == "dwt":
        if norm != "ortho":
            raise ValueError("the Haar DWT is orthonormal only: use norm='ortho' with 'dwt'")
        return functools.partial(dwt2, levels=levels), functools.partial(idwt2, levels=levels)
    raise ValueError(f"unknown transform {name!r}; choose from {TRANSFORMS}")


# ----------------------------------------------------------------------------- ordering


def frequency_key(name: str, n: int, *, levels: int = 1) -> np.ndarray:
    """(n,) int: the 'frequency' of each coefficient index along one axis.

    dct: the index u; dft: |k| of the row; dwt: the band (0 = coarsest approximation,
    1 = coarsest detail level, ..., levels = finest details) in the Mallat layout.
    """
    if name == "dct":
        return np.arange(n)
    if name == "dft":
        return dft_frequency(n)
    if name == "dwt":
        i = np.arange(n)
        key = np.zeros(n, dtype=np.int64)
        for b in range(1, levels + 1):  # band b spans [n / 2^(levels-b+1), n / 2^(levels-b))
            key[i >= (n >> (levels - b + 1))] = b
        return key
    raise ValueError(f"unknown transform {name!r}; choose from {TRANSFORMS}")


def lowpass_rank(name: str, h: int, w: int, *, levels: int = 1) -> np.ndarray:
    """(h, w) int ranks 0..h*w-1 of coefficient positions from lowest to highest frequency.

    dct / dft: zig-zag order by fh + fw (anti-diagonals), ties by max(fh, fw) (rounder
    region), then raster order. dwt: by band max(bh, bw) (a whole coarser band before any
    finer one, so the first (h/2^L)(w/2^L) positions are exactly the LL band), then i + j,
    then raster order.
    """
    fh = frequency_key(name, h, levels=levels)[:, None] * np.ones((1, w), np.int64)
    fw = frequency_key(name, w, levels=levels)[None, :] * np.ones((h, 1), np.int64)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    raster = ii * w + jj
    if name == "dwt":
        keys = (raster, ii + jj, np.maximum(fh, fw))
    else:
        keys = (raster, np.maximum(fh, fw), fh + fw)
    order = np.lexsort([k.ravel() for k in keys])  # last key is primary
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)
    return rank.reshape(h, w)


# ----------------------------------------------------------------------------- cross-res


@functools.lru_cache(maxsize=None)
def dct_resize_matrix(n_in: int, n_out: int, norm: str = "ortho") -> np.ndarray:
    """(n_out, n_in) matrix: n_in-point DCT coefficients -> image samples on an n_out grid.

    Zero-pads (n_out > n_in) or truncates (n_out < n_in) the spectrum, scales it by
    lambda = sqrt(n_out / n_in) (ortho) or n_out / n_in (unnormalized), and applies the
    n_out-point inverse DCT. n_out == n_in gives idct_matrix(n_in, norm).
    """
    norm = canonical_norm(norm)
    lam = np.sqrt(n_out / n_in) if norm == "ortho" else n_out / n_in
    inv = idct_matrix(n_out, norm)  # (n_out, n_out) acting on n_out-point coefficients
    m = np.zeros((n_out, n_in))
    k = min(n_in, n_out)
    m[:, :k] = lam * inv[:, :k]
    return _frozen(m)


def idct2_resize(c: jax.Array, out_hw: Tuple[int, int], norm: str = "ortho") -> jax.Array:
    """Decode (..., H, W, C) DCT coefficients as an (..., M_h, M_w, C) image.

    Frequency zero-padding / truncation with the amplitude-preserving scale (see module doc).
    """
    h, w = _hw(c)
    mh, mw = int(out_hw[0]), int(out_hw[1])
    norm = canonical_norm(norm)
    return apply_separable(c, dct_resize_matrix(h, mh, norm), dct_resize_matrix(w, mw, norm))
