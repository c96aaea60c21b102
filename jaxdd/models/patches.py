"""The im2col patch tensor built one spatial axis at a time (used by jaxdd.models.conv).

"""
from __future__ import annotations

from jax import lax
import jax.numpy as jnp

# Kernels with more offsets than this (7x7, 3x7x7) build the patch tensor axis by axis
# (`separable_patches`): k1 + k2 + ... slices instead of k1 * k2 * ... (147 for 3x7x7, whose
# one-slice-per-offset form took ~26 s to compile on CPU); 3x3, 5x5 and 3x3x3 keep the
# one-slice-per-offset form. Both give the same patch tensor.
SEPARABLE_ABOVE = 27


def separable_patches(x, ksize, strides, out, *, first: int, chan_axis: int):
    """The im2col patch tensor, one spatial axis at a time (last axis first).

    x has its spatial axes at ``first .. first + nd - 1`` and its channels at ``chan_axis``
    (padded already). Slicing axis i at the k_i offsets and concatenating them on the
    channel axis, innermost axis first, gives channel index ((o_1 * k_2 + o_2) * ... ) *
    Cin + c: row-major over the kernel offsets, channels within, the order of
    ``kernel.reshape(-1, Cout)`` (and of the one-slice-per-offset form)."""
    nd = len(ksize)
    for i in reversed(range(nd)):
        ax = first + i
        k, s, m = ksize[i], strides[i], out[i]
        parts = [lax.slice_in_dim(x, o, o + (m - 1) * s + 1, s, axis=ax) for o in range(k)]
        x = parts[0] if k == 1 else jnp.concatenate(parts, axis=chan_axis)
    return x
