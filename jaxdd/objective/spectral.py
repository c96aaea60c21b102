"""UniDD spectral filtering and the CFM (curriculum frequency matching) losses.

UniDD (Bo, Liu, Wang: "Understanding Dataset Distillation via Spectral Filtering") writes
the objectives of DM, DC, MTT and FRePo/KRR as one spectral-filter matching problem

    min || f(FFC) g(FLC) - f(FFC_s) g(FLC_s) ||_F ,   FFC = X^T X,  FLC = X^T Y,

with f acting on the eigenvalues of the (symmetric PSD) feature-feature correlation:
f(U diag(lambda) U^T) = U diag(f(lambda)) U^T, and g in {I, FLC}. Large eigenvalues are
"low frequencies". Filters of the unified methods (Table 1 of the paper):

    name        f(lambda)                 kind
    'dm'        1                         all-pass (DM; DC's FLC term)
    'dc'        lambda                    low-pass (DC's FFC term; = CFM's 'lfm')
    'mtt'       (1 - alpha lambda)^p      high-pass for 0 < alpha lambda < 1 (MTT)
    'krr'       (lambda + beta)^-1        high-pass (FRePo / KIP with a linear kernel;
                                          = CFM's 'hfm')

CFM normalizes the matrices per conv layer (Eq. 18 of the paper): for a layer's input X of
shape (n, h, w, d) (NHWC here),

    Psi = 1/(n h w) (X^ - mean)^T (X^ - mean)      X^ = X.reshape(n h w, d)   (d, d)
    Phi = 1/n X'^T Y                                X' = mean_{h,w} X         (d, c)

and matches, per layer, with beta following the cosine curriculum across the IPC batches,

    L_filter = || F(Psi) - F(Psi_s) ||_F,    L_signal = || F(Psi) Phi - F(Psi_s) Phi_s ||_F,
    F = (Psi + beta I)^-1 (HFM, computed with a linear solve) or F = Psi (LFM).

The synthetic statistics are a running mean over the batches synthesized so far (EMU,
Eq. 19): S_s = (1/b) S_s^b + (1 - 1/b) S_s^{b-1}, b = 1, 2, ... (1-based).

Where this follows the authors' code (bdy9527/UniDD @ 4afb992, hook.py ConvFeatureHook;
parity: tests/test_parity_unidd.py): Psi of a batch = `torch.cov(x, correction=0)` over the
B*h*w positions of the conv input (hook.py:177; `ffc`); signal 'class' = 1/B X'^T onehot(Y)
(hook.py:236; `flc`), 'mean' = channel mean (`feature_mean`); EMU mix with 1/batch_id
(hook.py:181, 267; `emu`); HFM F = solve(Psi + beta I, I) (hook.py:185-186; `highpass`);
L_filter = torch.norm(., 'fro') and L_signal = torch.norm(., 2) of the (flattened) matrix,
i.e. both Frobenius norms, NOT squared (hook.py:259-260; `cfm_losses`); beta curriculum
beta (1 + cos(pi b / IPC)) / 2 with b 0-based (synthesis_small.py:92; `curriculum_beta`).
The real Psi of the authors averages per-batch covariances (hook.py:160): see
`MomentMerger`.

Everything here is a pure jnp function of arrays (jit/grad/vmap-able), except
`MomentMerger`, the float64 numpy accumulator of `batch_moments` over the batches of one
pass (the real statistics: `jaxdd.teacher.real_statistics`). Shapes: Psi (d, d) symmetric PSD,
Phi (d, c) (or (d,) for the public code's 'mean' signal), lambda (d,).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST

FILTERS = ("dm", "allpass", "dc", "lowpass", "lfm", "mtt", "krr", "frepo", "highpass", "hfm")


# ----------------------------------------------------------------------------- statistics

def ffc(x, weights=None):
    """Feature-feature correlation Psi: channel covariance over all positions.

    Args:
      x: (n, ..., d) features (NHWC conv input, or (n, d)); every (image, position) pair is
        one sample of a d-dimensional vector.
      weights: optional (n,) per-image weights (e.g. a 0/1 mask for padded batches).
    Returns:
      (d, d) biased covariance 1/(n h w) sum (x - mean)(x - mean)^T (centered at the
      weighted mean over all n*h*w positions).
    """
    d = x.shape[-1]
    xf = x.reshape(x.shape[0], -1, d)  # (n, p, d)
    if weights is None:
        w = jnp.ones(xf.shape[:2], xf.dtype)
    else:
        w = jnp.broadcast_to(weights.astype(xf.dtype)[:, None], xf.shape[:2])
    tot = jnp.maximum(w.sum(), 1e-12)
    mean = jnp.einsum("np,npd->d", w, xf, precision=_HI) / tot
    xc = xf - mean
    return jnp.einsum("np,npd,npe->de", w, xc, xc, precision=_HI) / tot


def flc(x, y, num_classes=None):
    """Feature-label correlation Phi = 1/n X'^T Y (X' = spatial average of x).

    Args:
      x: (n, ..., d) features. y: int labels (n,) (then `num_classes` is required) or
        (soft / one-hot) label matrix (n, c).
    Returns:
      (d, c): column k = (n_k / n) * (mean feature of class k) for one-hot labels.
    """
    xp = x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)  # (n, d)
    if y.ndim == 1:
        if num_classes is None:
            raise ValueError("flc with integer labels needs num_classes")
        y = jax.nn.one_hot(y, num_classes, dtype=xp.dtype)
    return jnp.matmul(xp.T, y.astype(xp.dtype), precision=_HI) / x.shape[0]


def feature_mean(x):
    """(d,) channel mean over all positions (the public code's default 'mean' signal)."""
    return x.reshape(-1, x.shape[-1]).mean(axis=0)


def signal(x, y, num_classes, kind="class"):
    """The matched signal: 'class' -> flc(x, y) (d, c) (paper Eq. 18); 'mean' -> (d,)."""
    if kind == "class":
        return flc(x, y, num_classes)
    if kind == "mean":
        return feature_mean(x)
    raise ValueError(f"unknown signal {kind!r}; expected 'class' or 'mean'")


# ----------------------------------------------------------------------------- filters

def filter_fn(name: str, *, alpha=None, p=None, beta=None) -> Callable:
    """The filter f(lambda) of a unified method, as a function of the eigenvalues.

    'dm'/'allpass': 1; 'dc'/'lowpass'/'lfm': lambda; 'mtt': (1 - alpha lambda)^p;
    'krr'/'frepo'/'highpass'/'hfm': (lambda + beta)^-1.
    """
    key = name.lower()
    if key in ("dm", "allpass"):
        return lambda lam: jnp.ones_like(lam)
    if key in ("dc", "lowpass", "lfm"):
        return lambda lam: lam
    if key == "mtt":
        if alpha is None or p is None:
            raise ValueError("the 'mtt' filter needs alpha and p")
        return lambda lam: (1.0 - alpha * lam) ** p
    if key in ("krr", "frepo", "highpass", "hfm"):
        if beta is None:
            raise ValueError(f"the {name!r} filter needs beta")
        return lambda lam: 1.0 / (lam + beta)
    raise ValueError(f"unknown filter {name!r}; expected one of {FILTERS}")


def eigh_sorted(psi):
    """Eigen-decomposition of a symmetric matrix, eigenvalues in DESCENDING order.

    Returns (lam (d,), U (d, d)) with psi = U diag(lam) U^T; column i of U is the i-th
    "frequency" (i = 0 the lowest: the largest eigenvalue).
    """
    psi = 0.5 * (psi + psi.T)
    lam, u = jnp.linalg.eigh(psi)
    return lam[::-1], u[:, ::-1]


def apply_filter(psi, f: Callable):
    """f(Psi) = U diag(f(lambda)) U^T for a symmetric PSD Psi (d, d) -> (d, d)."""
    lam, u = eigh_sorted(psi)
    return jnp.matmul(u * f(lam)[None, :], u.T, precision=_HI)


def highpass(psi, beta):
    """(Psi + beta I)^-1 via a linear solve (no eigendecomposition; differentiable)."""
    eye = jnp.eye(psi.shape[-1], dtype=psi.dtype)
    return jnp.linalg.solve(psi + beta * eye, eye)


def filtered(psi, kind: str, beta=None):
    """The CFM filter matrix F(Psi): 'hfm' -> (Psi + beta I)^-1 (solve), 'lfm' -> Psi."""
    if kind == "hfm":
        if beta is None:
            raise ValueError("'hfm' needs beta")
        return highpass(psi, beta)
    if kind == "lfm":
        return psi
    raise ValueError(f"unknown CFM filter {kind!r}; expected 'hfm' or 'lfm'")


def unidd_distance(psi, phi, psi_s, phi_s, f: Callable, use_signal=True):
    """UniDD Eq. 1 for any filter f (eigen route): ||f(Psi) g - f(Psi_s) g_s||_F^2.

    use_signal=False is g = I (the filter-matching term), True is g = Phi.
    """
    a, b = apply_filter(psi, f), apply_filter(psi_s, f)
    if use_signal:
        a = jnp.matmul(a, phi, precision=_HI)
        b = jnp.matmul(b, phi_s, precision=_HI)
    return jnp.sum(jnp.square(a - b))


def _fro(a):
    # sqrt with a zero-safe gradient (the norm of exactly matching statistics is 0)
    s = jnp.sum(jnp.square(a))
    safe = jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.sqrt(safe), 0.0)


def cfm_losses(psi, phi, psi_s, phi_s, *, kind="hfm", beta=0.1):
    """CFM per-layer losses (L_filter, L_signal) (Frobenius norms, not squared).

    L_filter = ||F(Psi) - F(Psi_s)||_F,  L_signal = ||F(Psi) Phi - F(Psi_s) Phi_s||_F,
    F = (Psi + beta I)^-1 for kind='hfm' (solve), F = Psi for kind='lfm'.
    psi, psi_s: (d, d); phi, phi_s: (d, c) or (d,).
    """
    ft, fs = filtered(psi, kind, beta), filtered(psi_s, kind, beta)
    l_filter = _fro(ft - fs)
    l_signal = _fro(jnp.matmul(ft, phi, precision=_HI) - jnp.matmul(fs, phi_s, precision=_HI))
    return l_filter, l_signal


# ----------------------------------------------------------------------------- dataset pass

def batch_moments(feats, y, w, num_classes):
    """Per-layer moments of one (padded) batch of conv-input features (pure, jit-able).

    feats: list of (n, h, w, d) features; y: int (n,); w: (n,) 1/0 weights (padding 0).
    Returns a list of (cnt, mean, m2, cls) per layer: cnt = sum(w) h w positions, mean (d,)
    over those positions, m2 (d, d) = sum of centered outer products (so m2 / cnt is the
    batch's biased covariance, the authors' `torch.cov(x, correction=0)` over B*H*W),
    cls (d, classes) = sum_i w_i xbar_i onehot(y_i)^T (xbar_i: spatial mean of image i).
    """
    out = []
    onehot = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
    for f in feats:
        xf = f.reshape(f.shape[0], -1, f.shape[-1])
        npos = xf.shape[1]
        cnt = w.sum() * npos
        mean = jnp.einsum("n,npd->d", w, xf) / jnp.maximum(cnt, 1.0)
        xc = xf - mean
        m2 = jnp.einsum("n,npd,npe->de", w, xc, xc, precision=_HI)
        xp = xf.mean(axis=1)
        cls = jnp.einsum("n,nd,nk->dk", w, xp, onehot, precision=_HI)
        out.append((cnt, mean, m2, cls))
    return out


PSI_MERGES = ("batch", "exact")


class MomentMerger:
    """Merges `batch_moments` outputs over the batches of one pass (float64, numpy).

    merge='batch' (the authors' hook.py `pre_hook_fn`): Psi = sum_b (n_b / N) cov_b, the
    average of the per-batch biased covariances weighted by batch size (each batch centered
    at its own mean; the result depends on the batch size and order: the authors use 128,
    in dataset order). merge='exact': the biased covariance of all N*h*w positions (Chan et
    al.'s parallel update; independent of batching). Both: mean = overall mean,
    Phi = (1/N) sum_i xbar_i onehot(y_i)^T (hook.py: running_class_mean).
    """

    def __init__(self, merge="batch"):
        if merge not in PSI_MERGES:
            raise ValueError(f"unknown Psi merge {merge!r}; expected one of {PSI_MERGES}")
        self.merge = merge
        self.acc = None
        self.n = 0

    def add(self, out, n_images):
        if self.acc is None:
            self.acc = [[0.0, np.zeros_like(np.asarray(mu), np.float64),
                         np.zeros_like(np.asarray(m2), np.float64),
                         np.zeros_like(np.asarray(cl), np.float64)] for (_, mu, m2, cl) in out]
        for a, (cnt, mu, m2, cl) in zip(self.acc, out):
            cnt = float(cnt)
            mu, m2 = np.asarray(mu, np.float64), np.asarray(m2, np.float64)
            na = a[0]
            tot = na + cnt
            delta = mu - a[1]
            a[1] = a[1] + delta * (cnt / tot)
            if self.merge == "exact":
                a[2] = a[2] + m2 + np.outer(delta, delta) * (na * cnt / tot)
            else:  # sum_b n_b cov_b; divided by N in result()
                a[2] = a[2] + (m2 / cnt) * n_images
            a[3] = a[3] + np.asarray(cl, np.float64)
            a[0] = tot
        self.n += int(n_images)

    def result(self):
        """(psi list, phi list, mean list) as float32 numpy."""
        psi = [(a[2] / a[0]) if self.merge == "exact" else (a[2] / self.n) for a in self.acc]
        return ([p.astype(np.float32) for p in psi],
                [(a[3] / self.n).astype(np.float32) for a in self.acc],
                [a[1].astype(np.float32) for a in self.acc])


# ----------------------------------------------------------------------------- curriculum

def curriculum_beta(beta, b, num_batches, enabled=True):
    """Cosine curriculum of the public code: beta_b = beta (1 + cos(pi b / IPC)) / 2.

    b = 0, ..., IPC - 1 (0-based batch index): beta at b = 0, decreasing towards 0
    (beta (1 + cos(pi (IPC-1)/IPC)) / 2 at the last batch). enabled=False -> beta.
    Works on python numbers and traced arrays.
    """
    if not enabled:
        return beta
    if isinstance(b, (int, float)) and isinstance(num_batches, (int, float)):
        return beta * (1.0 + math.cos(math.pi * b / num_batches)) / 2.0
    return beta * (1.0 + jnp.cos(jnp.pi * b / num_batches)) / 2.0


def emu(prev, current, b):
    """Running mean of statistics over batches (EMU, Eq. 19): (1-1/b) prev + (1/b) current.

    b is 1-based (b = 1 ignores `prev`). Works on pytrees of arrays.
    """
    w = 1.0 / b
    return jax.tree.map(lambda p, c: (1.0 - w) * p + w * c, prev, current)


# ----------------------------------------------------------------------------- diagnostics

def flc_band_energy(phi, u, num_bands: int):
    """Energy of the FLC per frequency band of a given eigenbasis.

    Args:
      phi: (d, c) or (d,) signal; u: (d, d) eigenvectors, columns in DESCENDING eigenvalue
        order (low frequency first), e.g. of the REAL Psi.
      num_bands: the d eigen-indices are split into this many contiguous groups of (almost)
        equal size: index i goes to band floor(i * num_bands / d) (at most d bands).
    Returns:
      (per_index (d,), per_band (num_bands,)): sum over classes of (U^T Phi)^2.
    """
    proj = jnp.matmul(u.T, phi, precision=_HI)
    per_index = jnp.square(proj).reshape(proj.shape[0], -1).sum(-1)
    d = per_index.shape[0]
    nb = max(1, min(int(num_bands), d))
    band = jnp.asarray([i * nb // d for i in range(d)])
    per_band = jax.ops.segment_sum(per_index, band, num_segments=nb)
    return per_index, per_band
