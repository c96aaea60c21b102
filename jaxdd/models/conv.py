"""Convolution with two interchangeable implementations: XLA's native conv and im2col.

Why two implementations
-----------------------
On CPU, inside a ``lax.scan`` unroll (trajectory matching differentiates through many
student SGD steps), XLA:CPU leaves the weight-gradient and second-order convolutions on a
slow generic path.  Measured in this project: a TM meta-gradient took ~45 s with
``lax.conv_general_dilated`` and ~3 s with the matmul ("im2col") form.  On GPU/TPU the
native convolution is the fast one.  Both implementations compute the same function
(cross-correlation, like PyTorch / ``flax.linen.Conv``) from the same parameters, so a
network can be trained with one and evaluated with the other.

* ``'native'``: ``lax.conv_general_dilated`` with channels-last dimension numbers.
* ``'im2col'``: pad, take one strided slice per kernel offset (built axis by axis for
  kernels of more than 27 offsets, e.g. 3x7x7: ``jaxdd.models.patches``), concatenate the
  slices on the channel axis -> ``(N, *out_spatial, prod(kernel) * Cin)``, then ONE matmul with
  ``kernel.reshape(prod(kernel) * Cin, Cout)``.  Memory of the patch tensor is
  ``prod(kernel)`` times the (padded) input: 9x for 3x3, 27x for 3x3x3.  For layers with few
  input channels (``2 * Cin < Cout``, e.g. the first layer on RGB) the patch matrix is built
  channels-first, ``(prod(kernel) * Cin, N * prod(out_spatial))``, which makes the weight
  gradient a plain matmul (see :func:`im2col_patch_layout`; measured: a CIFAR ConvNetD3 TM
  step ~1.1-1.3x faster).
* ``'hybrid'`` (stride 1; other strides fall back to ``'im2col'``): XLA's native forward
  convolution and native input-gradient convolution, with a custom VJP that computes the
  weight gradient as ONE matmul of the im2col patches with the output gradient
  (``dy^T @ cols``).  The backward rule is written with the same function (the input
  gradient is itself a hybrid conv of ``dy`` with the flipped kernel) plus slices and
  matmuls, so it is differentiable again: TM's second order never reaches XLA:CPU's slow
  generic weight-gradient convolution either.  Shallow layers (``2 * Cin < Cout``, e.g.
  the first layer on gray or RGB input) use the channels-first im2col form, which is
  faster there.  Measured (issue 17, MNIST-shaped ConvNetD3 TM step with DSA, 2 shared
  cores, alternating in one process): 1.08-1.13x faster than ``'im2col'``; the layer-1
  forward conv 1.7x faster, the weight gradient the same (it is a matmul either way).
* ``'auto'``: ``'hybrid'`` when ``jax.default_backend() == 'cpu'``, ``'native'`` otherwise.
  Resolved at trace time (a static Python choice).

Both support any number of spatial dimensions (1-D ``NWC``, 2-D ``NHWC``, 3-D ``NDHWC``), any
kernel size and any stride; no dilation, no feature groups.

Initialization (documented choice): PyTorch's default for ``nn.Conv2d`` / ``nn.Linear``,
i.e. kernel and bias both ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
``fan_in = Cin * prod(kernel_size)``.  The published dataset-distillation hyperparameters
(expert learning rates, ``lr_lr`` etc.) were tuned with PyTorch's init, so we keep it.
Parameter names and shapes are those of ``flax.linen.Conv``: ``kernel`` of shape
``(*kernel_size, Cin, Cout)`` and ``bias`` of shape ``(Cout,)``.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax
import flax.linen as nn

from jaxdd.models.patches import SEPARABLE_ABOVE as _SEPARABLE_ABOVE
from jaxdd.models.patches import separable_patches as _separable_patches

CONV_IMPLS = ("auto", "native", "im2col", "hybrid")

PaddingLike = Union[None, int, str, Sequence[Sequence[int]]]


# --------------------------------------------------------------------------- init
def torch_kernel_init():
    """PyTorch default kernel init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Works for conv kernels ``(*K, Cin, Cout)`` and dense kernels ``(in, out)``
    (fan_in = prod of all but the last axis).
    """
    # variance_scaling(scale, 'fan_in', 'uniform') draws U(-sqrt(3*scale/fan_in), +...).
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform", in_axis=-2, out_axis=-1)


def torch_bias_init(fan_in: int):
    """PyTorch default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(max(int(fan_in), 1))

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# --------------------------------------------------------------------------- helpers
def resolve_conv_impl(impl: str) -> str:
    """Map 'auto' to 'hybrid' on the CPU backend and 'native' elsewhere; validate."""
    impl = impl.lower()
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "hybrid" if jax.default_backend() == "cpu" else "native"
    return impl


def _as_tuple(v, n: int) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {v}")
    return v


def resolve_padding(padding: PaddingLike, in_spatial: Sequence[int], kernel_size: Sequence[int],
                    strides: Sequence[int]) -> tuple:
    """Explicit ``((lo, hi), ...)`` padding per spatial dim.

    padding: None -> PyTorch-style symmetric ``k // 2`` per side (output = input size for odd
      kernels at stride 1); int p -> ``(p, p)`` on every dim; 'SAME' / 'VALID' -> XLA's
      rules; or an explicit sequence of (lo, hi) pairs.
    """
    nd = len(kernel_size)
    if padding is None:
        return tuple((k // 2, k // 2) for k in kernel_size)
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    if isinstance(padding, str):
        return tuple(tuple(p) for p in lax.padtype_to_pads(tuple(in_spatial), tuple(kernel_size),
                                                          tuple(strides), padding.upper()))
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pads) != nd:
        raise ValueError(f"padding needs {nd} (lo, hi) pairs, got {padding}")
    return pads


def _dimension_numbers(nd: int):
    spatial = "DHW"[-nd:] if nd <= 3 else None
    if spatial is None:
        raise ValueError("at most 3 spatial dimensions are supported")
    return ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")


# --------------------------------------------------------------------------- functional
def conv_native(x, kernel, strides, pads, precision=None, preferred_element_type=None):
    """lax.conv_general_dilated, channels last. x (N, *S, Cin), kernel (*K, Cin, Cout).
    ``preferred_element_type``: the result (accumulation) dtype, e.g. float32 for bfloat16
    operands."""
    nd = kernel.ndim - 2
    return lax.conv_general_dilated(
        x, kernel, window_strides=tuple(strides), padding=tuple(pads),
        dimension_numbers=_dimension_numbers(nd), precision=precision,
        preferred_element_type=preferred_element_type)


PATCH_LAYOUTS = ("auto", "nhwc", "cf")


def im2col_patch_layout(cin: int, cout: int, layout: str = "auto") -> str:
    """Layout of the im2col patch matrix: 'nhwc' (M, K*Cin) or 'cf' (K*Cin, M).

    'auto' picks 'cf' when ``2 * Cin < Cout`` (e.g. the first layer of a network on RGB
    input), 'nhwc' otherwise.  Why: the weight gradient ``cols^T @ dy`` contracts the long
    M = N*H*W axis of both operands; XLA:CPU lowers that by materializing a transpose of one
    of them, and for a shallow patch matrix (K*Cin = 27 for RGB) it transposes ``dy``
    (M x Cout, e.g. 10 x 32 x 32 x 128 floats) inside elementwise fusions with a stride of M
    floats -- in a profiled CIFAR TM step those layer-0 fusions took ~40% of the step; end
    to end the step got 1.1-1.2x faster (tm, remat / unrolled).  With a channels-first patch
    matrix the weight gradient is a plain (K*Cin, M) @ (M, Cout) product and only x (M x Cin,
    3 channels) is transposed.  For deep layers (Cin = Cout = 128) the NHWC form is faster
    (the channels-first slices have short contiguous rows).
    """
    layout = layout.lower()
    if layout not in PATCH_LAYOUTS:
        raise ValueError(f"patch layout must be one of {PATCH_LAYOUTS}, got {layout!r}")
    if layout == "auto":
        return "cf" if 2 * int(cin) < int(cout) else "nhwc"
    return layout


def conv_im2col(x, kernel, strides, pads, precision=None, layout: str = "auto",
                preferred_element_type=None):
    """Same function as :func:`conv_native`, as slices + concat + one matmul.

    x (N, *S, Cin), kernel (*K, Cin, Cout) -> (N, *S_out, Cout) with
    ``S_out = (S + lo + hi - K) // stride + 1``.  ``layout`` ('auto' | 'nhwc' | 'cf') is the
    layout of the patch matrix, see :func:`im2col_patch_layout`; the result is the same.
    """
    nd = kernel.ndim - 2
    ksize = kernel.shape[:nd]
    cin, cout = kernel.shape[-2], kernel.shape[-1]
    if x.shape[-1] != cin:
        raise ValueError(f"input has {x.shape[-1]} channels, kernel expects {cin}")
    layout = im2col_patch_layout(cin, cout, layout)
    n = x.shape[0]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[1:-1], pads))
    out = tuple((p - k) // s + 1 for p, k, s in zip(padded, ksize, strides))
    if any(o <= 0 for o in out):
        raise ValueError(f"input spatial size {padded} (padded) is smaller than kernel {ksize}")
    w = kernel.reshape(-1, cout)
    pointwise = all(k == 1 for k in ksize) and all(s == 1 for s in strides)
    offsets = list(itertools.product(*(range(k) for k in ksize)))
    if layout == "cf":
        # channels-first: xt (Cin, N, *S); patches stacked on the leading axis -> (K*Cin, M)
        xt = jnp.moveaxis(x, -1, 0)
        if any(lo or hi for lo, hi in pads):
            xt = jnp.pad(xt, ((0, 0), (0, 0)) + tuple(pads))
        if pointwise:
            cols = xt
        else:
            if len(offsets) > _SEPARABLE_ABOVE:
                cols = _separable_patches(xt, ksize, strides, out, first=2, chan_axis=0)
            else:
                patches = []
                # Row-major over kernel offsets, channels within: matches
                # kernel.reshape(-1, Cout).
                for offs in offsets:
                    start = (0, 0) + offs
                    limit = (cin, n) + tuple(o + (m - 1) * s + 1
                                             for o, m, s in zip(offs, out, strides))
                    patches.append(lax.slice(xt, start, limit, (1, 1) + tuple(strides)))
                cols = patches[0] if len(patches) == 1 else jnp.concatenate(patches, axis=0)
        cols = cols.reshape(w.shape[0], -1)
        y = lax.dot_general(cols, w, (((0,), (0,)), ((), ())), precision=precision,
                            preferred_element_type=preferred_element_type)
        return y.reshape((n,) + out + (cout,))
    if any(lo or hi for lo, hi in pads):
        x = jnp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),))
    if pointwise:
        cols = x
    elif len(offsets) > _SEPARABLE_ABOVE:
        cols = _separable_patches(x, ksize, strides, out, first=1, chan_axis=x.ndim - 1)
    else:
        patches = []
        # Row-major over kernel offsets, channels innermost: matches kernel.reshape(-1, Cout).
        for offs in offsets:
            start = (0,) + offs + (0,)
            limit = (n,) + tuple(o + (m - 1) * s + 1 for o, m, s in zip(offs, out, strides)) + (cin,)
            patches.append(lax.slice(x, start, limit, (1,) + tuple(strides) + (1,)))
        cols = patches[0] if len(patches) == 1 else jnp.concatenate(patches, axis=-1)
    return jnp.matmul(cols, w, precision=precision, preferred_element_type=preferred_element_type)


def _crop_or_pad(x, pads):
    """Pad the spatial axes of x (N, *S, C) by ``pads`` ((lo, hi), ...); negative = crop."""
    if all(lo >= 0 and hi >= 0 for lo, hi in pads):
        if any(lo or hi for lo, hi in pads):
            x = jnp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),))
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads)
                   + ((0, 0, 0),))


def _hybrid_weight_grad(x, dy, ksize, pads):
    """d(conv)/d(kernel) for stride 1: one matmul ``dy^T @ cols`` -> (*K, Cin, Cout)."""
    nd = len(ksize)
    cin, cout = x.shape[-1], dy.shape[-1]
    xp = _crop_or_pad(x, pads)
    out = dy.shape[1:-1]
    patches = [lax.slice(xp, (0,) + offs + (0,), (xp.shape[0],) + tuple(
        o + m for o, m in zip(offs, out)) + (cin,))
        for offs in itertools.product(*(range(k) for k in ksize))]
    cols = patches[0] if len(patches) == 1 else jnp.concatenate(patches, axis=-1)
    kc = math.prod(ksize) * cin
    # (Cout, K*Cin) = dy^T cols: measured faster on XLA:CPU than cols^T dy (the small result
    # is transposed instead of one of the long operands)
    dwt = lax.dot_general(dy.reshape(-1, cout), cols.reshape(-1, kc), (((0,), (0,)), ((), ())),
                          preferred_element_type=jnp.float32)
    del nd
    return dwt.T.reshape(tuple(ksize) + (cin, cout)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_hybrid(x, kernel, pads):
    # float32 accumulation and result, also for bfloat16 operands (the compute_dtype mode)
    return conv_native(x, kernel, (1,) * (kernel.ndim - 2), pads,
                       preferred_element_type=jnp.float32)


def _conv_hybrid_fwd(x, kernel, pads):
    return _conv_hybrid(x, kernel, pads), (x, kernel)


def _conv_hybrid_bwd(pads, res, dy):
    x, kernel = res
    nd = kernel.ndim - 2
    ksize = kernel.shape[:nd]
    # input gradient: correlate dy with the spatially flipped, in/out-swapped kernel, padded
    # k - 1 - lo before and k - 1 - hi after (negative: crop); the output has x's size
    kt = jnp.swapaxes(jnp.flip(kernel, tuple(range(nd))), -1, -2)
    tpads = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(ksize, pads))
    dy = dy.astype(x.dtype)   # bfloat16 operands in the compute_dtype mode; else a no-op
    dx = conv_hybrid(dy, kt, tpads).astype(x.dtype)
    dw = _hybrid_weight_grad(x, dy, ksize, pads).astype(kernel.dtype)
    return dx, dw


_conv_hybrid.defvjp(_conv_hybrid_fwd, _conv_hybrid_bwd)


def conv_hybrid(x, kernel, pads, strides=None, precision=None):
    """Same function as :func:`conv_native`: native forward / input-gradient convolutions,
    weight gradient as one matmul, differentiable to any order (module docstring).

    Strides other than 1 (and ``precision``) fall back to :func:`conv_im2col`; shallow
    layers (``2 * Cin < Cout``) use the channels-first im2col form.
    """
    nd = kernel.ndim - 2
    strides = (1,) * nd if strides is None else tuple(strides)
    cin, cout = kernel.shape[-2], kernel.shape[-1]
    if any(s != 1 for s in strides) or precision is not None or 2 * cin < cout:
        if any(lo < 0 or hi < 0 for lo, hi in pads):
            x = _crop_or_pad(x, pads)
            pads = ((0, 0),) * nd
        return conv_im2col(x, kernel, strides, pads, precision,
                           preferred_element_type=jnp.float32)
    if x.shape[-1] != cin:
        raise ValueError(f"input has {x.shape[-1]} channels, kernel expects {cin}")
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    return _conv_hybrid(x, kernel, pads)


COMPUTE_DTYPES = ("float32", "bfloat16")


def resolve_compute_dtype(compute_dtype):
    """None / 'float32' -> None (plain float32); 'bfloat16' (or the dtype) -> jnp.bfloat16.

    The opt-in mixed-precision mode of the conv and dense layers: their operands are rounded
    to bfloat16, the products accumulate in float32 and the result is float32; parameters,
    gradients' accumulation, norms, activations and pooling stay float32."""
    if compute_dtype is None:
        return None
    name = jnp.dtype(compute_dtype).name if not isinstance(compute_dtype, str) else compute_dtype
    name = name.lower()
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES} (or None), got "
                         f"{compute_dtype!r}")
    return None if name == "float32" else jnp.bfloat16


def compute_operands(compute_dtype, x, kernel):
    """(x, kernel, preferred_element_type) for one product in the ``compute_dtype`` mode:
    unchanged and None for float32; both rounded to bfloat16 and float32 accumulation
    otherwise. Shared by :func:`convolve` and :class:`Linear`."""
    cd = resolve_compute_dtype(compute_dtype)
    if cd is None:
        return x, kernel, None
    return x.astype(cd), kernel.astype(cd), jnp.float32


def convolve(x, kernel, bias=None, *, strides=1, padding: PaddingLike = None, impl: str = "auto",
         precision=None, compute_dtype=None):
    """Channels-last N-D convolution (cross-correlation) with an optional bias.

    Args:
      x: (N, *spatial, Cin) with 1 to 3 spatial dims.
      kernel: (*kernel_size, Cin, Cout).
      bias: (Cout,) or None.
      strides: int or per-dim tuple.
      padding: see :func:`resolve_padding` (default: symmetric k // 2, PyTorch-style).
      impl: 'auto' | 'native' | 'im2col' | 'hybrid'.
      compute_dtype: None / 'float32', or 'bfloat16': x and kernel rounded to bfloat16,
        float32 accumulation and result (:func:`resolve_compute_dtype`); the gradients
        reaching x and kernel are float32 again (through the casts).
    Returns:
      (N, *out_spatial, Cout), float32 for float32 inputs in either mode.
    """
    nd = kernel.ndim - 2
    if x.ndim != nd + 2:
        raise ValueError(f"kernel has {nd} spatial dims but x has shape {x.shape}")
    strides = _as_tuple(strides, nd)
    pads = resolve_padding(padding, x.shape[1:-1], kernel.shape[:nd], strides)
    impl = resolve_conv_impl(impl)
    out_dtype = x.dtype
    x, kernel, acc = compute_operands(compute_dtype, x, kernel)
    if impl == "hybrid":  # accumulates in float32 whatever the operands
        y = conv_hybrid(x, kernel, pads, strides, precision)
    else:
        fn = conv_im2col if impl == "im2col" else conv_native
        y = fn(x, kernel, strides, pads, precision, preferred_element_type=acc)
    y = y.astype(out_dtype)
    if bias is not None:
        y = y + bias
    return y


# --------------------------------------------------------------------------- modules
class Conv(nn.Module):
    """N-D convolution module; parameters as ``flax.linen.Conv`` ('kernel', 'bias').

    Attributes:
      features: output channels Cout.
      kernel_size: per-dim kernel size; its length sets the number of spatial dims
        (2 -> NHWC, 3 -> NDHWC).
      strides: int or per-dim tuple.
      padding: None (symmetric k//2, PyTorch-style), int, 'SAME', 'VALID' or (lo, hi) pairs.
      use_bias: add a bias.
      conv_impl: 'auto' | 'native' | 'im2col' | 'hybrid' (see module docstring).
      kernel_init / bias_init: default PyTorch-like (module docstring). ``bias_init=None``
        means U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      compute_dtype: None (float32) | 'bfloat16' (operands rounded to bfloat16, float32
        accumulation and output; the parameters stay float32), see :func:`convolve`.
    Input (N, *S, Cin) -> output (N, *S_out, features).
    """
    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Any = 1
    padding: Any = None
    use_bias: bool = True
    conv_impl: str = "auto"
    precision: Any = None
    kernel_init: Any = None
    bias_init: Any = None
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x):
        ksize = tuple(self.kernel_size)
        cin = x.shape[-1]
        fan_in = cin * math.prod(ksize)
        kinit = self.kernel_init if self.kernel_init is not None else torch_kernel_init()
        kernel = self.param("kernel", kinit, ksize + (cin, self.features), jnp.float32)
        bias = None
        if self.use_bias:
            binit = self.bias_init if self.bias_init is not None else torch_bias_init(fan_in)
            bias = self.param("bias", binit, (self.features,), jnp.float32)
        return convolve(x, kernel, bias, strides=self.strides, padding=self.padding,
                    impl=self.conv_impl, precision=self.precision,
                    compute_dtype=self.compute_dtype)


class Conv3x3(Conv):
    """3x3 convolution, stride 1, padding 1 (output size = input size), with bias.

    Same parameters as ``nn.Conv(features, (3, 3))``: 'kernel' (3, 3, Cin, Cout), 'bias'
    (Cout,).  ``conv_impl`` selects lax.conv ('native') or slices+matmul ('im2col').
    """
    kernel_size: Sequence[int] = (3, 3)


class Linear(nn.Module):
    """Dense layer with PyTorch-default init; params 'kernel' (in, out), 'bias' (out,).

    Input (..., in) -> (..., features). ``compute_dtype='bfloat16'``: the product of
    bfloat16-rounded operands, accumulated in float32 (as :class:`Conv`).
    """
    features: int
    use_bias: bool = True
    precision: Any = None
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", torch_kernel_init(), (fan_in, self.features), jnp.float32)
        xa, ka, acc = compute_operands(self.compute_dtype, x, kernel)
        y = jnp.matmul(xa, ka, precision=self.precision,
                       preferred_element_type=acc).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", torch_bias_init(fan_in), (self.features,), jnp.float32)
        return y
