"""Training-set augmentations of the CFM pipeline (jaxdd.teacher), built on the DSA kernels:
``random_crop_flip`` (the teacher's) and ``cutmix`` (the soft-label students').
Part of :mod:`jaxdd.augment`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdd.augment.ops import apply_flip, translate
from jaxdd.augment.params import _check4d


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
