"""DSA hyper-parameters (``DSAParams``) and the per-sample uniform draws every op reads.

Part of :mod:`jaxdd.augment` (the package doc describes the ops, the randomness and the
siamese property).
"""

from __future__ import annotations

import dataclasses
import functools
import jax
import jax.numpy as jnp


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
