"""FreD: frequency-domain dataset distillation (Shin et al., NeurIPS 2023).

Each synthetic instance is a full (H, W, C) array of frequency coefficients (2-D DCT-II by
default); a binary mask per class keeps k positions per channel (the same positions for all
channels and all instances of the class); the decoded image is ``inverse(mask[label] * coef)``.
The budget counts only the kept coefficients: ``N * k * C``. With k < H*W the same budget
holds ``floor(ipc * H * W / k)`` instances per class (CIFAR-10 IPC 1, k = 64: 16 per class,
16 * 64 * 3 = 3072 floats per class = one 32x32x3 image).

Parameterization interface (see the jaxdd design doc):

    cfg = default_config(); cfg.ipc = 1
    params, aux = init(key, real_images_by_class, cfg)      # params = {'coef': (N, H, W, C)}
    images = decode(params, aux, indices=None, resolution=None)
    budget(params, aux)                                      # N * k * C

``params['coef']`` is full size (the optimizer updates the full array; positions outside the
mask get zero gradient). At init the unmasked positions are set to 0, so ``params`` holds
exactly the k kept coefficients per channel (``pack``/``unpack`` convert to and from the
(N, k, C) storage layout). The authors' code keeps the full initial spectrum there instead
(TM/main_TM_FreD.py:45, SynSet.init); those positions never move (zero gradient, no weight
decay), so decoded images and every update are identical either way.

DCT convention (the authors' code, sdh0818/FreD @ 9f35a7a, TM/frequency_transforms.py; the
DM/, DC/ and ImageNet-abcde/ copies are identical). ``DCT(resolution=H)`` builds the 1-D
torch-dct DCT-II matrix with ``norm=None`` (``y_u = 2 sum_n x_n cos(pi (2n+1) u / 2N)``, i.e.
scipy's unnormalized ``dct(type=2, norm=None)``) and its exact inverse (scipy
``idct(norm=None)``, DCT-III / 2N); ``forward`` applies it along W and then along H of the
(N, C, H, W) images -- the separable 2-D DCT-II over (H, W), channels independent (square
images only: one matrix for both axes). jaxdd's ``norm='none'`` (the default) is this pair
exactly (``transforms.dct2`` / ``idct2`` over the H, W axes of NHWC arrays; coefficient
[n, u, v, c] here = authors' [n, c, u, v]); tests/test_parity_fred.py checks forward,
mask, decode, init and two SGD steps against fixtures made with the authors' classes.
``norm='ortho'`` is kept as an option (coefficients scaled by 1 / s[u, v], see below); it is
NOT equivalent under a single scalar lr and its EVR mask can rank the DC row/column
differently, so every published config uses ``norm='none'`` with the authors' lr.

Masks (``build_masks``, jaxdd.param.fred_masks, re-exported here; computed once at init
from the class's initial coefficients): 'evr' (the paper: explained-variance ratio of each
position over the class's channel-averaged coefficients, top k), 'lowpass', 'random',
'amplitude'. With n = 1 instance per class the authors' torch.cov (ddof 1) gives NaN for
every position (only possible when k > HW / 2 at IPC 1; no published setting): jaxdd then
keeps the k lowest frequencies (ties go to low frequencies).

Other grids (video, audio, voxels). Everything above holds on a grid of any rank, channels
last: the transform runs over every grid axis (``transforms_nd``), masks are (classes,
*grid), budget rule ``floor(ipc * prod(grid) / k)`` instances per class, ``N * k * C``
stored floats (``budget_line`` prints it).
  * voxels (D, H, W, 1) -- published (FreD's 3D MNIST, Table 4): sdh0818/FreD @ 9f35a7a,
    3D-MNIST/frequency_transforms.py ``DCT.forward`` is the unnormalized 1-D DCT-II applied
    along W, H and D; 3D-MNIST/main_DM_FreD.py:29 ``num_per_class = int(ipc * D*H*W /
    msz_per_channel)`` (= k here), :70-96 the EVR mask on the channel mean flattened over
    D*H*W, :67 decode ``dct.inverse(mask * freq_syn)``; the published run is DM, ipc 1,
    msz_per_channel 512 on 16^3 voxels -> 8 instances per class, lr_freq 1e6, momentum 0.5
    (3D-MNIST/scripts/run_DM_FreD.sh). tests/test_parity_modal_params.py checks the 3-D DCT,
    masks and decode against the authors' classes.
  * audio (F, T, 1) -- a 2-D grid: the image code path, unchanged.
  * video (T, H, W, C) -- EXTENSION (the authors publish no video FreD): the 3-D DCT over
    (T, H, W) per channel, one mask per class shared by the channels, as for voxels.
  * 1-D grids (L, C) work the same way (no published setting).
The Haar DWT and the ``equivalent_ortho_lr`` helpers are 2-D only.

Transforms: 'dct' (default), 'dft', 'dwt' (orthonormal Haar; the paper's ablation pairs it
with a low-pass mask). ``norm='none'`` (default: scipy/torch-dct unnormalized pair, the
authors' convention) or ``'ortho'`` (DCT and DFT; the DWT is orthonormal only).

Learning rate (SGD on the coefficients). With ``norm='none'`` the published lr_freq are used
as they are: 1e8 (TM, 32x32 and 28x28), 1e9 (TM, ImageNet 128x128), 1e6 (DM), 1e3 (DC,
CIFAR-10), 1e5 (DC, ImageNet) -- see jaxdd/published/fred.py; no resolution-dependent
conversion. For ``norm='ortho'``: the unnormalized 2-D DCT-II equals the orthonormal one
times a per-position factor ``s[u, v] = d_u d_v`` with ``d_0 = 2 sqrt(N)``, ``d_u = sqrt(2N)``
(u > 0), i.e. ``s = 2 sqrt(HW)`` for u, v > 0, ``2 sqrt(2HW)`` on the DC row/column,
``4 sqrt(HW)`` at (0, 0). With ``c_u = s c_o`` the chain rule gives ``dL/dc_u = (1/s)
dL/dc_o``, so an SGD step with lr_u on c_u moves the orthonormal coefficient by ``-(lr_u / s^2)
dL/dc_o``: the equivalent orthonormal lr is ``lr_u / s^2`` per position (momentum is linear).
``equivalent_ortho_lr_map(lr_u, H, W)`` returns that (H, W) map (use the true H, W: 28x28
for MNIST); ``equivalent_ortho_lr`` its bulk (u, v > 0) value lr_u / (4 H W). A single
scalar orthonormal lr equal to the bulk value moves the DC row/column 2x and (0, 0) 4x faster
than the authors' run.

Cross-resolution (``decode(..., resolution=M)``; DCT only): frequency zero-padding for M > N
(embed the masked N x N coefficients in an M x M zero array and apply the M-point inverse)
and truncation for M < N (keep the top-left M x M block), scaled by lambda = M/N
(orthonormal; sqrt(M/N) per axis) or (M/N)^2 (unnormalized, FreD's lambda) so that a
low-frequency image keeps its amplitude: a band-limited image is resampled exactly as the
continuous DCT interpolant evaluated on the new grid. DFT/DWT raise NotImplementedError.
"""

from __future__ import annotations

import functools
from typing import List, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxdd.param import transforms, transforms_nd
from jaxdd.param.fred_masks import (  # noqa: F401 -- re-exported: fred.build_masks, ...
    MASK_STRATEGIES, _top_k_mask, build_masks, explained_variance_ratio)

__all__ = [
    "MASK_STRATEGIES",
    "default_config",
    "num_per_class",
    "instances_per_class",
    "budget_line",
    "auto_dwt_levels",
    "explained_variance_ratio",
    "build_masks",
    "select_real",
    "init_from_images",
    "init",
    "decode",
    "budget",
    "masked_coefficients",
    "pack",
    "unpack",
    "equivalent_ortho_lr",
    "equivalent_ortho_lr_map",
]

def default_config() -> ml_collections.ConfigDict:
    """FreD fields (+ 'ipc').

    norm 'none' is the authors' unnormalized DCT: use their lr_freq as published (1e8 for
    CIFAR-10 TM, SGD momentum 0.5). With norm 'ortho' convert with equivalent_ortho_lr(_map)
    (see the module docstring; not equivalent on the DC row/column under a scalar lr).
    """
    cfg = ml_collections.ConfigDict()
    cfg.ipc = 1
    cfg.k = 64  # coefficients kept per channel (CIFAR IPC 1: 64 -> 16 instances per class)
    cfg.transform = "dct"  # 'dct' | 'dft' | 'dwt'
    cfg.norm = "none"  # 'none' (the authors' unnormalized DCT) | 'ortho'
    cfg.mask = "evr"  # 'evr' | 'lowpass' | 'random' | 'amplitude'
    cfg.dwt_levels = 0  # Haar levels for 'dwt'; 0 = auto (coarsest level whose LL >= k)
    return cfg


# ----------------------------------------------------------------------------- helpers


def num_per_class(ipc: int, h: int, w: int, k: int) -> int:
    """floor(ipc * H * W / k); ValueError if k is not in [1, H*W] or the result is 0."""
    ipc, h, w, k = int(ipc), int(h), int(w), int(k)
    if k < 1 or k > h * w:
        raise ValueError(f"FreD: k = {k} coefficients per channel must be in [1, H*W = {h * w}]")
    n = (ipc * h * w) // k
    if n < 1:
        raise ValueError(
            f"FreD: ipc * H * W / k = {ipc} * {h} * {w} / {k} < 1: no instance fits the budget"
        )
    return n


def instances_per_class(ipc: int, grid: Sequence[int], k: int) -> int:
    """floor(ipc * prod(grid) / k) for a grid of any rank ((H, W), (D, H, W), (T, H, W)):
    the authors' ``num_per_class`` (3D-MNIST/main_DM_FreD.py:29 for voxels). ValueError,
    naming k and the grid, when k is not in [1, prod(grid)] or no instance fits."""
    grid = tuple(int(s) for s in grid)
    if len(grid) == 2:
        return num_per_class(ipc, grid[0], grid[1], k)
    ipc, k, size = int(ipc), int(k), int(np.prod(grid))
    if k < 1 or k > size:
        raise ValueError(f"FreD: k = {k} coefficients per channel must be in [1, prod(grid "
                         f"{grid}) = {size}]: set param.k to at most {size}")
    n = (ipc * size) // k
    if n < 1:
        raise ValueError(f"FreD: ipc * prod(grid) / k = {ipc} * {size} / {k} < 1: no instance "
                         f"fits the budget; lower param.k or raise ipc")
    return n


def budget_line(cfg, image_shape: Sequence[int]) -> str:
    """One human line: the FreD budget rule for cfg (ipc, k) on data of shape (*grid, C);
    ValueError (naming k, the grid and what to do) when no instance fits."""
    ipc, k = int(cfg.ipc), int(cfg.k)
    shape = tuple(int(s) for s in image_shape)
    grid, c = shape[:-1], shape[-1]
    n = instances_per_class(ipc, grid, k)
    allowed = int(ipc) * int(np.prod(shape))
    return (f"FreD budget: {int(ipc)} ipc x {'x'.join(map(str, shape))} = {allowed} floats per "
            f"class; k = {int(k)} coefficients per channel -> floor({int(ipc)} * "
            f"{int(np.prod(grid))} / {int(k)}) = {n} instances per class, "
            f"{n} * {int(k)} * {c} = {n * int(k) * c} floats stored per class")


def auto_dwt_levels(h: int, w: int, k: int) -> int:
    """Coarsest Haar level L >= 1 with H, W divisible by 2^L and (H/2^L)(W/2^L) >= k."""
    if h % 2 or w % 2:
        raise ValueError(f"Haar DWT needs even H and W, got {h}x{w}")
    lvl = 1
    while (h % (2 ** (lvl + 1)) == 0 and w % (2 ** (lvl + 1)) == 0
           and (h >> (lvl + 1)) * (w >> (lvl + 1)) >= k):
        lvl += 1
    return lvl


def _levels(cfg_levels, transform: str, h: int, w: int, k: int) -> int:
    if transform != "dwt":
        return 0
    if cfg_levels:
        return int(cfg_levels)
    return auto_dwt_levels(h, w, k)


# ----------------------------------------------------------------------------- interface


@functools.lru_cache(maxsize=None)
def _jit_forward(transform: str, norm: str, levels: int, grid_ndim: int = 2):
    """jax.jit of the forward transform, one per (transform, norm, levels, grid rank):
    compiled once per shape instead of once per init call."""
    return jax.jit(transforms_nd.get_transform_nd(transform, norm, grid_ndim,
                                                  levels=levels)[0])


def _split_shape(shape, what="images") -> Tuple[Tuple[int, ...], int]:
    """(grid, C) of an (*grid, C) shape with 1-3 grid axes; a clear error otherwise."""
    shape = tuple(int(s) for s in shape)
    if not 2 <= len(shape) <= 4:
        raise ValueError(f"FreD: {what} of shape {shape} are not (*grid, C) with 1-3 grid "
                         "axes: give (N, H, W, C) images / (N, F, T, 1) spectrograms, "
                         "(N, T, H, W, C) video or (N, D, H, W, 1) voxels")
    return shape[:-1], shape[-1]


def select_real(key: jax.Array, real_images_by_class: Sequence[np.ndarray],
                npc: int) -> List[np.ndarray]:
    """Per class, npc real images drawn without replacement (with replacement only if the
    class has fewer images): the starting images of the synthetic instances.

    The authors draw ``np.random.permutation(indices_class[c])[:num_per_class]``
    (TM/main_TM_FreD.py:44) and fail when a class has fewer images; jaxdd uses its PRNG key
    (fold_in(key, class)), so the drawn images differ from a torch run, not their law.
    """
    out = []
    for c, imgs in enumerate(real_images_by_class):
        if not hasattr(imgs, "shape"):
            imgs = np.asarray(imgs, dtype=np.float32)
        n_c = int(imgs.shape[0])   # a ClassView (multi-process shard): the global class size
        if n_c == 0:
            raise ValueError(f"class {c} has no images")
        kc = jax.random.fold_in(key, c)
        if n_c >= npc:
            idx = np.asarray(jax.random.permutation(kc, n_c))[:npc]
        else:
            idx = np.asarray(jax.random.randint(kc, (npc,), 0, n_c))
        out.append(np.asarray(imgs[idx], dtype=np.float32))   # only the drawn rows are read
    return out


def init_from_images(images_by_class: Sequence[np.ndarray], cfg,
                     key: Optional[jax.Array] = None) -> Tuple[dict, dict]:
    """FreD state from the given starting images (no drawing): instance i of class c starts
    as forward(images_by_class[c][i]); every class must have the same count (= instances per
    class). The masks are built from these coefficients (key: only for mask 'random').
    Used by ``init`` and by the parity tests (the same images the authors' run selected).
    Budget consistency (count == floor(ipc prod(grid) / k)) is checked by ``init``, not here.
    Any grid rank: (n, H, W, C), (n, D, H, W, C), (n, T, H, W, C), (n, L, C).
    """
    transform = str(cfg.transform)
    norm = transforms.canonical_norm(cfg.norm)
    k = int(cfg.k)
    strategy = str(cfg.get("mask", "evr"))
    shape = tuple(int(s) for s in np.shape(images_by_class[0])[1:])
    grid, _ = _split_shape(shape)
    size = int(np.prod(grid))
    if not 1 <= k <= size:
        if len(grid) == 2:
            raise ValueError(f"FreD: k = {k} coefficients per channel must be in "
                             f"[1, H*W = {size}]")
        raise ValueError(f"FreD: k = {k} coefficients per channel must be in [1, prod(grid "
                         f"{grid}) = {size}]: set param.k to at most {size}")
    npc = int(np.shape(images_by_class[0])[0])
    if transform == "dwt" and len(grid) != 2:
        raise ValueError(f"FreD: the Haar DWT is implemented for 2 grid axes, these data have "
                         f"grid {grid}: use transform='dct' (the authors' 3-D choice) or 'dft'")
    levels = _levels(cfg.get("dwt_levels", 0), transform, grid[0], grid[-1], k)
    forward = _jit_forward(transform, norm, max(levels, 1), len(grid))
    coefs_by_class: List[np.ndarray] = []
    for c, imgs in enumerate(images_by_class):
        imgs = np.asarray(imgs, dtype=np.float32)
        if imgs.shape[1:] != shape:
            raise ValueError(f"class {c}: image shape {imgs.shape[1:]} != {shape}")
        if imgs.shape[0] != npc:
            raise ValueError(f"class {c}: {imgs.shape[0]} starting images, class 0 has {npc}; "
                             f"every class needs the same number of instances")
        coefs_by_class.append(np.asarray(forward(jnp.asarray(imgs))))
    if key is None:
        key = jax.random.PRNGKey(0)
    masks = build_masks(coefs_by_class, k, strategy, key, transform=transform,
                        dwt_levels=max(levels, 1))
    coef = np.concatenate(
        [cc * masks[c][None, ..., None] for c, cc in enumerate(coefs_by_class)], axis=0
    ).astype(np.float32)
    labels = np.repeat(np.arange(len(coefs_by_class), dtype=np.int32), npc)
    aux = {
        "labels": labels,
        "image_shape": shape,
        "masks": masks,
        "k": k,
        "transform": transform,
        "norm": norm,
        "dwt_levels": int(levels),
        "mask": strategy,
        "num_per_class": int(npc),
        "num_classes": len(coefs_by_class),
    }
    return {"coef": jnp.asarray(coef)}, aux


def init(key: jax.Array, real_images_by_class: Sequence[np.ndarray], cfg) -> Tuple[dict, dict]:
    """Initialize FreD coefficients and class masks.

    real_images_by_class: list (classes) of (n_c, *grid, C) float32 arrays (images
    (H, W, C), spectrograms (F, T, 1), video (T, H, W, C), voxels (D, H, W, 1)). Per class,
    num_per_class = floor(ipc * prod(grid) / k) images are drawn (``select_real``),
    transformed, and masked (``init_from_images``).
    Returns params {'coef': (classes * num_per_class, *grid, C) float32} (in label order) and
    aux {'labels', 'image_shape', 'masks' (classes, *grid) float32 0/1, 'k', 'transform',
    'norm', 'dwt_levels', 'mask', 'num_per_class', 'num_classes'}.
    """
    shape = tuple(int(s) for s in np.shape(real_images_by_class[0])[1:])
    grid, _ = _split_shape(shape)
    npc = instances_per_class(cfg.ipc, grid, int(cfg.k))
    for c, imgs in enumerate(real_images_by_class):
        if tuple(np.shape(imgs)[1:]) != shape:
            raise ValueError(f"class {c}: image shape {np.shape(imgs)[1:]} != {shape}")
    k_img, k_mask = jax.random.split(key)
    selected = select_real(k_img, real_images_by_class, npc)
    return init_from_images(selected, cfg, k_mask)


def masked_coefficients(params: dict, aux: dict, *, indices=None) -> jax.Array:
    """mask[label] * coef for all instances (or `indices`, traced ok): (n, *grid, C)."""
    coef = params["coef"]
    labels = jnp.asarray(aux["labels"])
    masks = jnp.asarray(aux["masks"], dtype=coef.dtype)
    if indices is not None:
        indices = jnp.asarray(indices)
        coef = jnp.take(coef, indices, axis=0)
        labels = jnp.take(labels, indices, axis=0)
    return coef * jnp.take(masks, labels, axis=0)[..., None]


def _out_hw(resolution, h: int, w: int) -> Tuple[int, int]:
    if resolution is None:
        return h, w
    if isinstance(resolution, (tuple, list)):
        return int(resolution[0]), int(resolution[1])
    r = int(resolution)
    if h == w:
        return r, r
    return r, max(1, int(round(r * w / h)))  # int = the new H; W keeps the aspect ratio


def _out_grid(resolution, grid: Tuple[int, ...]) -> Tuple[int, ...]:
    """Output grid: 2 axes as ``_out_hw``; other ranks: None, an int (every axis) or a tuple."""
    if len(grid) == 2:
        return _out_hw(resolution, *grid)
    if resolution is None:
        return grid
    if isinstance(resolution, (tuple, list)):
        out = tuple(int(r) for r in resolution)
        if len(out) != len(grid):
            raise ValueError(f"FreD decode: resolution {out} has {len(out)} axes, the grid "
                             f"{grid} has {len(grid)}")
        return out
    return (int(resolution),) * len(grid)


def decode(params: dict, aux: dict, *, indices=None,
           resolution: Union[int, Tuple[int, ...], None] = None):
    """Data = inverse(mask[label] * coef): (n, *grid', C) float32 (any grid rank).

    indices: optional int array (may be traced) selecting instances; None = all, label order.
    resolution: None (training size); 2 grid axes: an int side (a square training image ->
    (r, r); else r is the new H and W keeps the aspect ratio) or an (H', W') tuple; other
    ranks: an int (every axis) or a per-axis tuple. A different size uses DCT zero-padding /
    truncation (DCT only; see the module docstring).
    """
    grid = tuple(int(s) for s in aux["image_shape"][:-1])
    f = masked_coefficients(params, aux, indices=indices)
    out = _out_grid(resolution, grid)
    transform, norm = aux["transform"], aux["norm"]
    if out == grid:
        _, inverse = transforms_nd.get_transform_nd(
            transform, norm, len(grid), levels=max(int(aux.get("dwt_levels", 1)), 1))
        return inverse(f)
    if transform != "dct":
        raise NotImplementedError(
            f"FreD cross-resolution decoding is implemented for 'dct' only, not {transform!r}"
        )
    return transforms_nd.idctn_resize(f, out, norm)


def budget(params: dict, aux: dict) -> int:
    """Stored floats: instances * k * C (only the kept coefficients count, as in the paper;
    per class floor(ipc * prod(grid) / k) * k * C <= ipc * prod(grid) * C)."""
    n = int(params["coef"].shape[0])
    return n * int(aux["k"]) * int(aux["image_shape"][-1])


def _positions(aux: dict) -> np.ndarray:
    """(classes, k) flat positions of each class mask (ascending)."""
    m = np.asarray(aux["masks"]).reshape(len(aux["masks"]), -1)
    return np.stack([np.flatnonzero(row > 0) for row in m])


def pack(params: dict, aux: dict) -> jax.Array:
    """The stored coefficients: (N, k, C), the k kept positions of each instance's class."""
    coef = params["coef"]
    n, c = coef.shape[0], coef.shape[-1]
    pos = jnp.asarray(_positions(aux)[np.asarray(aux["labels"])])  # (N, k)
    flat = coef.reshape(n, -1, c)
    return jnp.take_along_axis(flat, pos[..., None], axis=1)


def unpack(packed: jax.Array, aux: dict) -> dict:
    """Inverse of pack: (N, k, C) -> params {'coef': (N, *grid, C)} (zeros off the mask)."""
    shape = tuple(int(s) for s in aux["image_shape"])
    n = packed.shape[0]
    pos = jnp.asarray(_positions(aux)[np.asarray(aux["labels"])])
    flat = jnp.zeros((n, int(np.prod(shape[:-1])), shape[-1]), packed.dtype)
    flat = flat.at[jnp.arange(n)[:, None], pos].set(packed)
    return {"coef": flat.reshape((n,) + shape)}


# ----------------------------------------------------------------------------- learning rate


def equivalent_ortho_lr_map(lr_unnorm: float, h: int, w: int) -> np.ndarray:
    """(H, W) per-position orthonormal-DCT lr equivalent to SGD lr_unnorm on scipy-unnormalized
    DCT coefficients: lr_unnorm / s[u, v]^2, s = outer(d_H, d_W) (see module docstring)."""
    s = np.outer(transforms.dct_unnorm_scale(int(h)), transforms.dct_unnorm_scale(int(w)))
    return float(lr_unnorm) / s ** 2


def equivalent_ortho_lr(lr_unnorm: float, h: int, w: int) -> float:
    """Orthonormal-DCT lr for the bulk (non-DC) coefficients: lr_unnorm / (4 H W).

    equivalent_ortho_lr(1e8, 32, 32) = 24414.0625 (CIFAR, TM). DC row/column: half of this;
    the (0, 0) coefficient: a quarter.
    """
    return float(lr_unnorm) / (4.0 * int(h) * int(w))
