"""Coordinate networks (neural fields) as pure functions: SIREN and Fourier-feature MLPs.

A field maps coordinates (P, dim_in) in [-1, 1]^dim_in to values (P, dim_out). Parameters
are plain pytrees ``{'layers': [{'w': (fan_in, fan_out), 'b': (fan_out,)}, ...]}`` so that a
stack of K fields is the same pytree with a leading axis K on every leaf, and
``jax.vmap(siren_apply, in_axes=(0, None, None, None))`` decodes all of them at once.

SIREN (Sitzmann et al. 2020), structured as in the DDiF public code (which adapts
lucidrains/siren-pytorch); ``num_layers`` counts the sine layers:

    h_1 = sin(w0_initial * (x W_1 + b_1))            first layer    dim_in -> width
    h_l = sin(w0 * (h_{l-1} W_l + b_l))   l=2..num_layers  hidden   width  -> width
    y   = h_L W_out + b_out                           linear output  width  -> dim_out

so CIFAR-10's "width 6, num_layers 2" field has 2*6+6 + 6*6+6 + 6*3+3 = 81 parameters.

Initialization (DDiF code, ``SirenLayer`` with c = 6):
  first layer:   w, b ~ U(-1/dim_in, 1/dim_in)
  other layers:  w, b ~ U(-sqrt(6/fan_in)/w0, +sqrt(6/fan_in)/w0), hidden w0 (the output
                 layer also uses the hidden w0).
Bias choice: the public code overrides PyTorch's default nn.Linear bias init and draws the
bias from the SAME uniform as the weight of its layer (``nn.init.uniform_(bias, -w_std,
w_std)``); we follow the code. (The original vsitzmann/siren code keeps PyTorch's default
bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the DDiF code uses the former; docs/methods.md "DDiF".)

FFN (Tancik et al. 2020, the DDiF structure ablation): a fixed Fourier feature mapping
gamma(v) = [cos(2 pi v B^T), sin(2 pi v B^T)] followed by a ReLU MLP with a linear output.
B is not learned; it is built from an integer seed and shared by all fields, so a field's
stored parameters are only its MLP weights (see ``ffn_num_params``).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


# ---------------------------------------------------------------------------------------
# sine
# ---------------------------------------------------------------------------------------

# pi/2 in three parts (Cody-Waite): k * _PIO2_1 and k * _PIO2_2 are exact in float32 for
# |k| < 2**15, i.e. |x| < ~5e4, far beyond what a field's pre-activations reach.
_PIO2_1, _PIO2_2, _PIO2_3 = 1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8


def _exact_square_error(a, a2):
    """a*a - fl(a*a) exactly (Dekker's product with Veltkamp's split; no FMA needed)."""
    c = a * 4097.0
    hi = c - (c - a)
    lo = a - hi
    return ((hi * hi - a2) + 2.0 * hi * lo) + lo * lo


def _sincos_poly(x):
    """(sin x, cos x) from one quadrant reduction r = x - k pi/2 in [-pi/4, pi/4], carried
    as r + r_lo, and the Taylor polynomials of degree 9 (sin r) and 10 (cos r), whose
    truncation error on [-pi/4, pi/4] is below 2e-9. The rounding errors of r, r^2 and
    1 - r^2/2 are carried into the last addition, so the result is within about 0.8 ulp
    (max abs error 4.8e-8 on [-400, 400]; jnp.sin 3.3e-8, mean errors equal). Only
    multiplies, adds and selects, which XLA fuses and vectorizes."""
    x = jnp.asarray(x)
    k = jnp.round(x * np.float32(2.0 / np.pi))
    t = (x - k * _PIO2_1) - k * _PIO2_2
    kp3 = k * _PIO2_3
    r = t - kp3
    r_lo = (t - r) - kp3
    z = r * r
    z_lo = _exact_square_error(r, z) + 2.0 * r * r_lo          # r_exact^2 = z + z_lo
    s = r + (r_lo + (r * z) * (-1.0 / 6 + z * (1.0 / 120 + z * (-1.0 / 5040
                                                                 + z * (1.0 / 362880)))))
    hz = 0.5 * z
    w = 1.0 - hz
    c = w + ((((1.0 - w) - hz) - 0.5 * z_lo) + (z * z) * (1.0 / 24 + z * (-1.0 / 720 + z * (
        1.0 / 40320 + z * (-1.0 / 3628800)))))
    q = k.astype(jnp.int32) & 3
    sin = jnp.where(q == 0, s, jnp.where(q == 1, c, jnp.where(q == 2, -s, -c)))
    cos = jnp.where(q == 0, c, jnp.where(q == 1, -s, jnp.where(q == 2, -c, s)))
    return sin.astype(x.dtype), cos.astype(x.dtype)


@jax.custom_jvp
def poly_sin(x):
    """sin(x) in float32 by range reduction + polynomial (``_sincos_poly``).
    Differentiable to any order (d sin = cos, d cos = -sin, from the same reduction)."""
    return _sincos_poly(x)[0]


@jax.custom_jvp
def poly_cos(x):
    """cos(x), the companion of ``poly_sin``."""
    return _sincos_poly(x)[1]


@poly_sin.defjvp
def _poly_sin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return poly_sin(x), poly_cos(x) * t


@poly_cos.defjvp
def _poly_cos_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return poly_cos(x), -poly_sin(x) * t


def sine(x):
    """The fields' sine: ``poly_sin`` on XLA:CPU, where ``jnp.sin`` is not vectorized
    (issue 17: 7.5 ms vs 0.37 ms for the 110 x 6 x 784 activations of a digits DDiF set,
    about 25x, which made it most of a warm-up step), ``jnp.sin`` on GPU/TPU."""
    if jax.default_backend() == "cpu":
        return poly_sin(x)
    return jnp.sin(x)


# ---------------------------------------------------------------------------------------
# coordinate grids
# ---------------------------------------------------------------------------------------

def make_grid(shape: Sequence[int], resolution=None) -> np.ndarray:
    """Evenly spaced coordinates in [-1, 1] on every axis, row-major ('ij') order.

    Args:
      shape: spatial shape, e.g. (H, W) for images, (T, H, W) for video, (D, H, W) voxels.
      resolution: None (use ``shape``), an int R (R points on every axis) or a tuple of
        per-axis sizes (same length as ``shape``).
    Returns:
      float32 numpy array (prod(grid), len(shape)); coordinate k of a point is its position
      along axis k (linspace(-1, 1, n_k); a length-1 axis sits at 0). Same layout as the
      DDiF code's ``to_coordinates_and_features`` (first coordinate = row), which for square
      grids equals linspace(-1, 1, n) per axis.
    """
    shape = tuple(int(s) for s in shape)
    if resolution is not None:
        if isinstance(resolution, (int, np.integer)):
            shape = (int(resolution),) * len(shape)
        else:
            res = tuple(int(r) for r in resolution)
            if len(res) != len(shape):
                raise ValueError(f"resolution {res} has {len(res)} axes, grid has {len(shape)}")
            shape = res
    if any(s < 1 for s in shape):
        raise ValueError(f"grid shape must be positive, got {shape}")
    axes = [np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------
# SIREN
# ---------------------------------------------------------------------------------------

def siren_layer_sizes(dim_in: int, width: int, num_layers: int, dim_out: int):
    """[(fan_in, fan_out), ...] for the num_layers sine layers plus the linear output."""
    if num_layers < 1:
        raise ValueError(f"SIREN needs num_layers >= 1 (sine layers), got {num_layers}")
    sizes = [(dim_in, width)] + [(width, width)] * (num_layers - 1) + [(width, dim_out)]
    return sizes


def num_params(dim_in: int, width: int, num_layers: int, dim_out: int) -> int:
    """Number of SIREN parameters b (the paper's per-field budget).

    b = width*(dim_in+1) + (num_layers-1)*width*(width+1) + dim_out*(width+1).
    """
    return sum(i * o + o for i, o in siren_layer_sizes(dim_in, width, num_layers, dim_out))


def init_siren(key, dim_in: int, width: int, num_layers: int, dim_out: int,
               w0: float = 30.0, w0_initial: float = 30.0):
    """Random SIREN parameters for one field (see module docstring for the distributions).

    ``w0_initial`` does not enter the init (first layer bound is 1/dim_in); it is accepted
    so init and apply share a signature. vmap over ``key`` to build a stack of fields.
    Returns {'layers': [{'w': (fan_in, fan_out), 'b': (fan_out,)}, ...]} float32.
    """
    del w0_initial
    sizes = siren_layer_sizes(dim_in, width, num_layers, dim_out)
    bounds = [(1.0 / fi) if l == 0 else (math.sqrt(6.0 / fi) / w0)
              for l, (fi, _) in enumerate(sizes)]
    return _uniform_layers(key, sizes, bounds)


def _uniform_layers(key, sizes, bounds):
    """Layers with w, b ~ U(-bound_l, bound_l), drawn as ONE uniform vector and sliced
    (a single RNG call keeps the vmapped/jitted init program small)."""
    total = sum(fi * fo + fo for fi, fo in sizes)
    u = jax.random.uniform(key, (total,), jnp.float32, -1.0, 1.0)
    layers, off = [], 0
    for (fi, fo), bound in zip(sizes, bounds):
        w = u[off:off + fi * fo].reshape(fi, fo) * bound
        off += fi * fo
        b = u[off:off + fo] * bound
        off += fo
        layers.append({"w": w, "b": b})
    return {"layers": layers}


def siren_apply(params, coords, w0: float = 30.0, w0_initial: float = 30.0):
    """Evaluate one SIREN. coords (..., dim_in) -> (..., dim_out). Pure, jit/vmap-able."""
    layers = params["layers"]
    h = coords
    n = len(layers)
    for l, layer in enumerate(layers):
        z = h @ layer["w"] + layer["b"]
        if l == n - 1:
            return z  # linear output, no activation / clamp
        h = sine((w0_initial if l == 0 else w0) * z)
    return h  # pragma: no cover


def siren_apply_stacked(params, coords, w0: float = 30.0, w0_initial: float = 30.0):
    """Evaluate K stacked SIRENs on shared coords: params leaves (K, ...), coords
    (P, dim_in) -> (K, P, dim_out).

    The same function as ``jax.vmap(siren_apply, in_axes=(0, None, None, None))``, written
    as one batched contraction per layer with the P points on the last (contiguous) axis,
    ``einsum('ip,kio->kop')`` for the first layer and ``'kip,kio->kop'`` after it, and the
    fields' ``sine``. Measured (issue 17, 110 fields of 2-6-6-1 on 28x28, 100 Adam warm-up
    steps, 2 shared cores, one process): points-last contractions 0.49 vs 2.98 ms per hidden
    layer; with ``sine`` 0.69 s per 100 steps against 4.4 s for points-first + ``jnp.sin``.
    """
    layers = params["layers"]
    h = jnp.swapaxes(coords, 0, 1)          # (dim_in, P)
    n = len(layers)
    for l, layer in enumerate(layers):
        spec = "ip,kio->kop" if l == 0 else "kip,kio->kop"
        z = jnp.einsum(spec, h, layer["w"]) + layer["b"][:, :, None]
        if l == n - 1:
            return jnp.swapaxes(z, 1, 2)     # (K, P, dim_out)
        h = sine((w0_initial if l == 0 else w0) * z)
    return h  # pragma: no cover


# ---------------------------------------------------------------------------------------
# Fourier features + ReLU MLP (FFN)
# ---------------------------------------------------------------------------------------

def fourier_matrix(seed: int, mapping: str, dim_in: int, num_features: int,
                   scale: float) -> np.ndarray:
    """Fixed frequency matrix B (F, dim_in) for gamma(v) = [cos(2 pi v B^T), sin(2 pi v B^T)].

    mapping:
      'gaussian':   B_ij ~ N(0, scale^2), F = num_features (Tancik et al. "Gaussian RFF").
      'positional': per axis k, frequencies scale^(j/m), j = 0..m-1 with m = num_features;
                    B has F = m * dim_in rows, row (k, j) = scale^(j/m) e_k.
      'basic':      B = I (F = dim_in).
    Built with numpy from ``seed`` (deterministic, not learned, shared by all fields).
    """
    if mapping == "gaussian":
        rng = np.random.default_rng(int(seed))
        return (rng.standard_normal((num_features, dim_in)) * scale).astype(np.float32)
    if mapping == "positional":
        freqs = scale ** (np.arange(num_features) / num_features)
        eye = np.eye(dim_in)
        return np.concatenate([eye[k][None, :] * freqs[:, None] for k in range(dim_in)],
                              axis=0).astype(np.float32)
    if mapping == "basic":
        return np.eye(dim_in, dtype=np.float32)
    raise ValueError(f"unknown Fourier mapping {mapping!r}; use 'gaussian', 'positional' "
                     "or 'basic'")


def fourier_features(coords, B):
    """gamma(coords) = [cos(2 pi c B^T), sin(2 pi c B^T)]: (..., dim_in) -> (..., 2F)."""
    proj = 2.0 * jnp.pi * (coords @ jnp.asarray(B).T)
    return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)


def ffn_layer_sizes(num_fourier: int, width: int, num_layers: int, dim_out: int):
    """Layer sizes of the ReLU MLP after a mapping with ``num_fourier`` rows (input 2F)."""
    if num_layers < 1:
        raise ValueError(f"FFN needs num_layers >= 1 (ReLU layers), got {num_layers}")
    d = 2 * num_fourier
    return [(d, width)] + [(width, width)] * (num_layers - 1) + [(width, dim_out)]


def ffn_num_params(num_fourier: int, width: int, num_layers: int, dim_out: int) -> int:
    """Learnable parameters per FFN field (the fixed, shared B is not counted)."""
    return sum(i * o + o for i, o in ffn_layer_sizes(num_fourier, width, num_layers, dim_out))


def init_ffn(key, num_fourier: int, width: int, num_layers: int, dim_out: int):
    """ReLU-MLP parameters with PyTorch's nn.Linear default init (the Tancik et al. /
    DDiF-ablation networks are plain nn.Linear): w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Same pytree layout as ``init_siren``."""
    sizes = ffn_layer_sizes(num_fourier, width, num_layers, dim_out)
    return _uniform_layers(key, sizes, [1.0 / math.sqrt(fi) for fi, _ in sizes])


def ffn_apply(params, coords, B):
    """Evaluate one FFN field: Fourier features, ReLU layers, linear output.
    coords (..., dim_in) -> (..., dim_out)."""
    h = fourier_features(coords, B)
    layers = params["layers"]
    for layer in layers[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h @ layers[-1]["w"] + layers[-1]["b"]


def tree_num_params(params) -> int:
    """Total number of floats in a (possibly stacked) field pytree."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
