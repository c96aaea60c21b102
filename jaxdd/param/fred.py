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

Masks (``build_masks``, computed once at init from the class's initial coefficients):
  'evr'       explained-variance ratio (the paper; SynSet.init_mask, TM/main_TM_FreD.py:75-99):
              average the class's coefficients over channels -> (n, H*W); eta = var per
              position / total var (= diag(cov)/trace(cov); the authors' O((HW)^2) identity
              loop is vectorized here, O(n H W)); top k. Computed in float64 (the authors: float32
              on the device); the ranking is identical except at float32 near-ties.
  'lowpass'   the k lowest frequencies (zig-zag order u + v for DCT/DFT; whole coarse bands
              first for the DWT, so k = (H/2^L)(W/2^L) is exactly the LL band).
  'random'    k random positions per class (from the PRNG key).
  'amplitude' top k of mean |coef| over the class's instances and channels.
Ties (exactly equal scores; e.g. n = 1 instance per class, zero variance) are broken toward
low frequencies. The authors' torch.topk leaves tie order unspecified, and with n = 1 their
torch.cov (ddof 1) gives NaN for every position (only possible when k > HW / 2 at IPC 1; no
published setting): jaxdd returns the k lowest frequencies there.

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

from jaxdd.param import transforms

__all__ = [
    "MASK_STRATEGIES",
    "default_config",
    "num_per_class",
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

MASK_STRATEGIES = ("evr", "lowpass", "random", "amplitude")


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


def explained_variance_ratio(coefs: np.ndarray) -> np.ndarray:
    """EVR per position of one class's coefficients.

    coefs: (n, H, W, C). Averages over channels -> (n, H*W); returns (H, W) with
    var_p / sum_p var_p (= diag(cov) / trace(cov); the ddof cancels). Zero total variance
    (e.g. n = 1) gives all zeros.
    """
    a = np.asarray(coefs, dtype=np.float64)
    n, h, w = a.shape[:3]
    a = a.mean(axis=-1).reshape(n, h * w)
    var = a.var(axis=0)
    tot = var.sum()
    evr = var / tot if tot > 0 else np.zeros_like(var)
    return evr.reshape(h, w)


def _top_k_mask(score: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """(H, W) float32 0/1 with ones at the k largest scores (ties -> lower tiebreak rank)."""
    order = np.lexsort((tiebreak.ravel(), -score.ravel()))
    m = np.zeros(score.size, dtype=np.float32)
    m[order[:k]] = 1.0
    return m.reshape(score.shape)


def build_masks(
    coefs_by_class: Sequence[np.ndarray],
    k: int,
    strategy: str = "evr",
    key: Optional[jax.Array] = None,
    *,
    transform: str = "dct",
    dwt_levels: int = 1,
) -> np.ndarray:
    """Class-wise binary masks; a standalone pure function (time it to report mask cost).

    coefs_by_class: list (classes) of (n_c, H, W, C) coefficient arrays (numpy or jax).
    k: positions kept per class. strategy: 'evr' | 'lowpass' | 'random' | 'amplitude'.
    key: PRNG key (required for 'random': i.i.d. uniform scores per class and position).
    transform, dwt_levels: define the low-pass order (used by 'lowpass' and to break ties).
    Returns numpy float32 (classes, H, W) with exactly k ones per class.
    """
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown FreD mask {strategy!r}; choose from {MASK_STRATEGIES}")
    if not len(coefs_by_class):
        raise ValueError("build_masks: no classes")
    h, w = np.shape(coefs_by_class[0])[1:3]
    if not 1 <= k <= h * w:
        raise ValueError(f"build_masks: k = {k} must be in [1, H*W = {h * w}]")
    rank = transforms.lowpass_rank(transform, h, w, levels=max(int(dwt_levels), 1))
    masks = np.zeros((len(coefs_by_class), h, w), dtype=np.float32)
    if strategy == "random":
        if key is None:
            raise ValueError("build_masks: strategy 'random' needs a PRNG key")
        # i.i.d. uniform scores: their top k is a uniformly random k-subset per class
        rand = np.asarray(jax.random.uniform(key, (len(coefs_by_class), h, w)), np.float64)
    for c, coefs in enumerate(coefs_by_class):  # per-class work is vectorized
        coefs = np.asarray(coefs)
        if strategy == "evr":
            score = explained_variance_ratio(coefs)
        elif strategy == "lowpass":
            score = -rank.astype(np.float64)
        elif strategy == "amplitude":
            score = np.abs(coefs.astype(np.float64)).mean(axis=(0, 3))
        else:  # random
            score = rand[c]
        masks[c] = _top_k_mask(score, k, rank)
    return masks


# ----------------------------------------------------------------------------- interface


@functools.lru_cache(maxsize=None)
def _jit_forward(transform: str, norm: str, levels: int):
    """jax.jit of the forward transform, one per (transform, norm, levels): compiled once per
    shape instead of once per init call."""
    return jax.jit(transforms.get_transform(transform, norm, levels=levels)[0])


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
    Budget consistency (count == floor(ipc H W / k)) is checked by ``init``, not here.
    """
    transform = str(cfg.transform)
    norm = transforms.canonical_norm(cfg.norm)
    k = int(cfg.k)
    strategy = str(cfg.get("mask", "evr"))
    h, w, ch = (int(s) for s in np.shape(images_by_class[0])[1:])
    if not 1 <= k <= h * w:
        raise ValueError(f"FreD: k = {k} coefficients per channel must be in [1, H*W = {h * w}]")
    npc = int(np.shape(images_by_class[0])[0])
    levels = _levels(cfg.get("dwt_levels", 0), transform, h, w, k)
    forward = _jit_forward(transform, norm, max(levels, 1))
    coefs_by_class: List[np.ndarray] = []
    for c, imgs in enumerate(images_by_class):
        imgs = np.asarray(imgs, dtype=np.float32)
        if imgs.shape[1:] != (h, w, ch):
            raise ValueError(f"class {c}: image shape {imgs.shape[1:]} != {(h, w, ch)}")
        if imgs.shape[0] != npc:
            raise ValueError(f"class {c}: {imgs.shape[0]} starting images, class 0 has {npc}; "
                             f"every class needs the same number of instances")
        coefs_by_class.append(np.asarray(forward(jnp.asarray(imgs))))
    if key is None:
        key = jax.random.PRNGKey(0)
    masks = build_masks(coefs_by_class, k, strategy, key, transform=transform,
                        dwt_levels=max(levels, 1))
    coef = np.concatenate(
        [cc * masks[c][None, :, :, None] for c, cc in enumerate(coefs_by_class)], axis=0
    ).astype(np.float32)
    labels = np.repeat(np.arange(len(coefs_by_class), dtype=np.int32), npc)
    aux = {
        "labels": labels,
        "image_shape": (h, w, ch),
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

    real_images_by_class: list (classes) of (n_c, H, W, C) float32 arrays. Per class,
    num_per_class = floor(ipc * H * W / k) images are drawn (``select_real``), transformed,
    and masked (``init_from_images``).
    Returns params {'coef': (classes * num_per_class, H, W, C) float32} (in label order) and
    aux {'labels', 'image_shape', 'masks' (classes, H, W) float32 0/1, 'k', 'transform',
    'norm', 'dwt_levels', 'mask', 'num_per_class', 'num_classes'}.
    """
    h, w, ch = (int(s) for s in np.shape(real_images_by_class[0])[1:])
    npc = num_per_class(cfg.ipc, h, w, int(cfg.k))
    for c, imgs in enumerate(real_images_by_class):
        if np.shape(imgs)[1:] != (h, w, ch):
            raise ValueError(f"class {c}: image shape {np.shape(imgs)[1:]} != {(h, w, ch)}")
    k_img, k_mask = jax.random.split(key)
    selected = select_real(k_img, real_images_by_class, npc)
    return init_from_images(selected, cfg, k_mask)


def masked_coefficients(params: dict, aux: dict, *, indices=None) -> jax.Array:
    """mask[label] * coef for all instances (or `indices`, traced ok): (n, H, W, C)."""
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


def decode(params: dict, aux: dict, *, indices=None, resolution: Union[int, Tuple[int, int], None] = None):
    """Images = inverse(mask[label] * coef): (n, H', W', C) float32.

    indices: optional int array (may be traced) selecting instances; None = all, label order.
    resolution: None (training size), an int side (a square training image -> (r, r); else r
    is the new H and W keeps the aspect ratio) or an (H', W') tuple. A different size uses
    DCT zero-padding / truncation (DCT only; see the module docstring).
    """
    h, w, _ = aux["image_shape"]
    f = masked_coefficients(params, aux, indices=indices)
    out = _out_hw(resolution, h, w)
    transform, norm = aux["transform"], aux["norm"]
    if out == (h, w):
        _, inverse = transforms.get_transform(transform, norm, levels=max(int(aux.get("dwt_levels", 1)), 1))
        return inverse(f)
    if transform != "dct":
        raise NotImplementedError(
            f"FreD cross-resolution decoding is implemented for 'dct' only, not {transform!r}"
        )
    return transforms.idct2_resize(f, out, norm)


def budget(params: dict, aux: dict) -> int:
    """Stored floats: instances * k * C (only the kept coefficients count, as in the paper)."""
    n = int(params["coef"].shape[0])
    return n * int(aux["k"]) * int(aux["image_shape"][2])


def _positions(aux: dict) -> np.ndarray:
    """(classes, k) flat positions of each class mask (ascending)."""
    m = np.asarray(aux["masks"]).reshape(len(aux["masks"]), -1)
    return np.stack([np.flatnonzero(row > 0) for row in m])


def pack(params: dict, aux: dict) -> jax.Array:
    """The stored coefficients: (N, k, C), the k kept positions of each instance's class."""
    coef = params["coef"]
    n, h, w, c = coef.shape
    pos = jnp.asarray(_positions(aux)[np.asarray(aux["labels"])])  # (N, k)
    flat = coef.reshape(n, h * w, c)
    return jnp.take_along_axis(flat, pos[..., None], axis=1)


def unpack(packed: jax.Array, aux: dict) -> dict:
    """Inverse of pack: (N, k, C) -> params {'coef': (N, H, W, C)} (zeros off the mask)."""
    h, w, c = aux["image_shape"]
    n = packed.shape[0]
    pos = jnp.asarray(_positions(aux)[np.asarray(aux["labels"])])
    flat = jnp.zeros((n, h * w, c), packed.dtype)
    flat = flat.at[jnp.arange(n)[:, None], pos].set(packed)
    return {"coef": flat.reshape(n, h, w, c)}


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
