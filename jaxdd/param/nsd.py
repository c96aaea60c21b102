"""NSD: Neural Spectral Decomposition (Yang et al., ECCV 2024; no public code).

The synthetic set of each class is stored as N_T *spectrum tensors* and N_K *kernel sets*;
every (spectrum, kernel set) pair decodes to a block of u1 images by mode-n products

    x_(i,j) = T_i x_1 K_j1 x_2 K_j2 x_3 K_j3 x_4 K_j4                         (paper eq. 1-2)

    T_i  : (t1, t2, t3, t4)          spectrum tensor
    K_j1 : (t1, u1)   batch mode     (u1 = images per block)
    K_j2 : (t2, u2)   channel mode   (u2 = C)
    K_j3 : (t3, u3)   height mode    (u3 = H)
    K_j4 : (t4, u4)   width mode     (u4 = W)

i.e. x_(i,j)[e, f, g, h] = sum_{a,b,c,d} T_i[a,b,c,d] K_j1[a,e] K_j2[b,f] K_j3[c,g] K_j4[d,h].

Mode order.  T keeps the paper's (B, C, H, W) mode order (t2 is the channel mode, as in the
paper's "t2 = 3"); the decoding einsum writes its output directly in jaxdd's NHWC order,
so a block is (u1, H, W, C) and no transpose is materialised.

Class mapping (not specified by the paper; the class-wise reading, see docs/methods.md): each
class c owns its own N_T spectra and N_K kernel sets, and class c's images are all N_T*N_K
pairs of *its* tensors and kernels.  Decoded images are class-major; within a class the
image index is (i * N_K + j) * u1 + e  (spectrum i, kernel set j, image e of the block; this
is the paper's x_{j + (i-1) N_K} with the block expanded), so every class decodes
N_T * N_K * u1 images -- usually more than IPC, which is the point of NSD.

params = {'T': (classes, N_T, t1, t2, t3, t4),
          'K1': (classes, N_K, t1, u1), 'K2': (classes, N_K, t2, C),
          'K3': (classes, N_K, t3, H),  'K4': (classes, N_K, t4, W)}
With cfg.learn_kernels=False (the fixed DCT / fixed random kernel ablations) the four kernel
arrays live in aux (numpy) instead of params; they are then *not* counted by budget(): fixed
kernels are data-independent (DCT basis, or random from a seed) and can be regenerated from
the sizes instead of being stored, so only the spectra are stored floats.  (For the same
reason a data-dependent PCA batch kernel is refused when kernels are fixed.)

Storage budget (paper eq. 3): size(T) + size(K) ~= IPC x classes x image size, i.e. per
class  N_T*t1*t2*t3*t4 + N_K*(t1*u1 + t2*C + t3*H + t4*W) <= IPC*H*W*C, see choose_sizes.
The paper's size defaults: t2 = C (3), t3 = t4 = half the image side for IPC <= 10 and 7/8
of it above, t1 < u1 chosen to fill the budget.  N_T, N_K, t1 and u1 are not published
(Figure 3 only sweeps t1, t3 graphically); jaxdd's defaults are documented in choose_sizes.

Initialisation (cfg.init):
  'random' (paper default): T ~ N(0, init_std^2) and K_n ~ N(0, 1/t_n) i.i.d., so every
      mode-n product preserves the second moment and decoded pixels have E[x^2] = init_std^2.
  'dct' (the paper's LDCT variant when kernels are learned, DCT when fixed): K3, K4 = the
      first t3 / t4 rows of the orthonormal H- / W-point DCT-II matrices (each row a basis
      function; rows -> pixels is the inverse-DCT direction), K2 = identity when t2 = C
      (first t2 rows of the C-point DCT-II otherwise), K1 = identity when t1 = u1, otherwise
      (cfg.k1_init) the first t1 rows of the u1-point DCT-II ('dct') or the per-class PCA basis
      of the batch mode that is least-squares optimal for the drawn real images ('pca').
      Spectra = the least-squares fit of N_T blocks of u1 random real images of the class,
      T_i = X_i x_1 K1^T x_2 K2^T x_3 K3^T x_4 K4^T (all kernels have orthonormal rows),
      i.e. the truncated DCT of the real images.  At full size (t2=C, t3=H, t4=W, t1=u1)
      this reproduces the real images exactly.  All N_K kernel sets start identical (so
      the N_K copies of a block coincide at init; cfg.dct_noise adds N(0, dct_noise^2) to
      learnable kernels to break the tie).  Note: the paper's eq. 4 writes the cosine as
      cos(pi/n (j+0.5)(i+0.5)) (a DCT-IV form); we use the orthonormal DCT-II
      (docs/methods.md).

The sizes and the budget rule (choose_sizes, published_config, budget_line) live in
jaxdd.param.nsd_sizes and are importable from here.

Other grids -- EXTENSION: not published for these data (the paper has images only). The
decomposition takes one learnable transform per grid axis: for (*grid, C) data with grid
(S_1, .., S_d), d = 1..3, the spectrum is T_i (t1, t2, t3, .., t_{d+2}) and a kernel set is
K1 (t1, u1) batch, K2 (t2, C) channel, K_{k+2} (t_{k+2}, S_k) for grid axis k: images and
spectrograms (H, W, C) keep K3 (H), K4 (W) exactly as above; video (T, H, W, C) and voxels
(D, H, W, 1) get K3 (T or D), K4 (H), K5 (W); budget per class N_T*t1*t2*prod(t_k) +
N_K*(t1*u1 + t2*C + sum_k t_k*S_k) <= IPC*prod(grid)*C, grid sizes side/2 (IPC <= 10) on
every axis, shrunk in proportion when they do not fit (choose_sizes).

_dct_matrix is private here so the module has no dependency on jaxdd/param/transforms.py;
it could be swapped for transforms.dct_matrix later.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from ml_collections import config_dict

from jaxdd.param.nsd_sizes import (  # noqa: F401 -- re-exported: nsd.choose_sizes, ...
    _per_class_cost, choose_sizes, default_counts, published_config)

from jaxdd.param.nsd_sizes import budget_line_sizes, size_tuple, spatial_names

_IN, _OUT = "cdp", "ghq"   # einsum letters of the grid axes: spectrum side / data side


def _kernel_names(grid_ndim: int) -> tuple:
    """K1 (batch), K2 (channel), then one kernel per grid axis: K3, K4 (, K5)."""
    return ("K1", "K2") + tuple(f"K{k + 3}" for k in range(int(grid_ndim)))


def _decode_spec(d: int) -> str:
    """All pairs of one class, d grid axes (d = 2: 'iabcd,jae,jbf,jcg,jdh->ijeghf')."""
    ins, outs = _IN[:d], _OUT[:d]
    return (f"iab{ins},jae,jbf," + ",".join(f"j{i}{o}" for i, o in zip(ins, outs))
            + f"->ije{outs}f")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix D (n, n), float64: D[k, m] = s_k cos(pi (2m+1) k / (2n)).

    s_0 = sqrt(1/n), s_k = sqrt(2/n).  Forward DCT: X = D x; inverse: x = D^T X, so the first
    t rows of D are a (t, n) kernel mapping t coefficients to n samples (mode-n product).
    """
    k = np.arange(n)[:, None]
    m = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * m + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def _host_rng(key) -> np.random.Generator:
    """numpy Generator seeded deterministically from a JAX PRNG key (raw or typed).

    init runs once on the host; drawing with numpy avoids compiling a threefry kernel per
    array shape (seconds each on a loaded CPU) while staying a pure function of `key`.
    """
    if jax.dtypes.issubdtype(getattr(key, "dtype", np.uint32), jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def default_config() -> ml_collections.ConfigDict:
    """NSD fields.  None sizes = automatic (choose_sizes); see published_config for the paper.

    ipc            budget in images per class (eq. 3)
    n_t, n_k       spectra / kernel sets per class (None: first fitting of default_counts)
    u1             images per (spectrum, kernel) block; t1, t2, t3, t4 spectrum sizes
                   (None: choose_sizes defaults, t1 the largest fitting t1 < u1)
    init           'random' (paper default) | 'dct' (DCT kernels + DCT of real images: LDCT)
    init_std       std of the random spectra (decoded pixels have E[x^2] = init_std^2)
    learn_kernels  True: kernels in params (paper / LDCT); False: fixed kernels in aux, not
                   counted by budget (DCT / fixed ablation)
    k1_init        'auto' | 'pca' | 'dct' batch-mode kernel for init='dct' when t1 < u1
                   ('auto' = 'pca' if learn_kernels else 'dct')
    dct_noise      std of Gaussian noise added to learnable kernels at init='dct'
    enforce_budget raise when explicit sizes exceed IPC*H*W*C per class
    """
    cfg = ml_collections.ConfigDict()
    cfg.ipc = 1
    cfg.n_t = config_dict.placeholder(int)
    cfg.n_k = config_dict.placeholder(int)
    cfg.u1 = config_dict.placeholder(int)
    cfg.t1 = config_dict.placeholder(int)
    cfg.t2 = config_dict.placeholder(int)
    cfg.t3 = config_dict.placeholder(int)
    cfg.t4 = config_dict.placeholder(int)
    cfg.t5 = config_dict.placeholder(int)   # 3 grid axes only (video / voxels: W)
    cfg.init = "random"
    cfg.init_std = 1.0
    cfg.learn_kernels = True
    cfg.k1_init = "auto"
    cfg.dct_noise = 0.0
    cfg.enforce_budget = True
    return cfg


# --------------------------------------------------------------------------------------
# init / decode / budget
# --------------------------------------------------------------------------------------
def _sizes_from_cfg(cfg, image_shape):
    get = lambda k, d=None: cfg.get(k, d)  # noqa: E731
    return choose_sizes(int(cfg.ipc), image_shape, n_t=get("n_t"), n_k=get("n_k"),
                        u1=get("u1"), t1=get("t1"), t2=get("t2"), t3=get("t3"),
                        t4=get("t4"), t5=get("t5"), count_kernels=bool(get("learn_kernels", True)),
                        enforce_budget=bool(get("enforce_budget", True)))


def budget_line(cfg, image_shape) -> str:
    """One human line: the NSD budget rule for cfg on data of shape (*grid, C) (the sizes
    init will use); ValueError with the numbers when nothing fits."""
    return budget_line_sizes(_sizes_from_cfg(cfg, tuple(int(s) for s in image_shape)),
                             image_shape)


def init(key, real_images_by_class, cfg):
    """Initialize NSD spectra and kernels for every class.

    Args:
      key: JAX PRNG key (seeds a host numpy Generator; init is host-side, not jitted).
      real_images_by_class: list (classes) of float32 (n_c, *grid, C) real data (1-3
        grid axes; more than 2 is the extension described in the module docstring).
      cfg: default_config()-like ConfigDict.
    Returns:
      params: {'T': (Z, N_T, t1, t2, t3, t4)} plus 'K1' (Z, N_K, t1, u1), 'K2' (Z, N_K, t2, C),
        'K3' (Z, N_K, t3, H), 'K4' (Z, N_K, t4, W) when cfg.learn_kernels (Z = classes).
      aux: 'labels' (Z*N_T*N_K*u1,) int32 class-major, 'image_shape' (H, W, C),
        'num_classes', 'sizes' (n_t, n_k, t1, t2, t3, t4, u1), 'images_per_class',
        'learn_kernels', 'init'; fixed kernels 'K1'..'K4' (numpy) when not learned;
        'init_real_indices' (Z, N_T*u1) int32 for init='dct' (real images used: block i of
        class c = real_images_by_class[c][idx[c, i*u1:(i+1)*u1]]).
    """
    num_classes = len(real_images_by_class)
    image_shape = tuple(int(s) for s in real_images_by_class[0].shape[1:])
    grid, c = image_shape[:-1], image_shape[-1]
    d = len(grid)
    names = spatial_names(d)
    s = _sizes_from_cfg(cfg, image_shape)
    n_t, n_k, t1, t2, u1 = (s[k] for k in ("n_t", "n_k", "t1", "t2", "u1"))
    ts = tuple(s[n] for n in names)
    learn_kernels = bool(cfg.get("learn_kernels", True))
    mode = cfg.get("init", "random")
    z = num_classes
    rng = _host_rng(key)
    aux = {}

    if mode == "random":
        std = float(cfg.get("init_std", 1.0))
        T = std * rng.standard_normal((z, n_t, t1, t2) + ts)
        kernels = [rng.standard_normal((z, n_k, t, u)) / math.sqrt(t)
                   for t, u in ((t1, u1), (t2, c)) + tuple(zip(ts, grid))]
    elif mode == "dct":
        k1_init = cfg.get("k1_init", "auto")
        if k1_init == "auto":
            k1_init = "pca" if learn_kernels else "dct"
        if k1_init not in ("pca", "dct"):
            raise ValueError(f"k1_init must be 'auto', 'pca' or 'dct', got {k1_init!r}")
        if k1_init == "pca" and not learn_kernels and t1 < u1:
            raise ValueError("k1_init='pca' is data-dependent, so fixed (unstored) kernels "
                             "cannot use it; use k1_init='dct' with learn_kernels=False")
        k2 = np.eye(c)[:t2] if t2 == c else _dct_matrix(c)[:t2]
        kgrid = [_dct_matrix(g)[:t] for g, t in zip(grid, ts)]
        ins, outs = _IN[:d], _OUT[:d]
        proj = (f"ie{outs}f,bf," + ",".join(f"{i}{o}" for i, o in zip(ins, outs))
                + f"->ieb{ins}")   # d = 2: 'ieghf,bf,cg,dh->iebcd'
        need = n_t * u1
        T = np.zeros((z, n_t, t1, t2) + ts)
        k1s = np.zeros((z, t1, u1))
        used = np.zeros((z, need), np.int32)
        for cls in range(z):  # init-time only (host numpy), not part of decode
            real = real_images_by_class[cls]  # indexed before the copy: only the drawn
            n_c = int(real.shape[0])            # rows are read (a process shard's view)
            if n_c == 0:
                raise ValueError(f"class {cls} has no real images to initialize from")
            idx = rng.choice(n_c, size=need, replace=n_c < need)
            used[cls] = idx
            x = np.asarray(real[idx], np.float64).reshape((n_t, u1) + image_shape)
            # spatial/channel projection: (n_t, u1, t2, *ts)
            y = np.einsum(proj, x, k2, *kgrid)
            if t1 == u1:
                k1 = np.eye(u1)
            elif k1_init == "dct":
                k1 = _dct_matrix(u1)[:t1]
            else:  # PCA of the batch mode shared by the n_t blocks of this class
                yf = y.reshape(n_t, u1, -1)
                m = np.einsum("ies,ifs->ef", yf, yf)
                _, vecs = np.linalg.eigh(m)
                k1 = vecs[:, ::-1][:, :t1].T
            k1s[cls] = k1
            T[cls] = np.einsum(f"ae,ieb{ins}->iab{ins}", k1, y)
        kernels = [np.broadcast_to(kn, (z, n_k) + kn.shape[-2:]).copy()
                   for kn in [k1s[:, None], k2] + kgrid]
        noise = float(cfg.get("dct_noise", 0.0))
        if noise > 0 and learn_kernels:
            kernels = [kn + noise * rng.standard_normal(kn.shape) for kn in kernels]
        aux["init_real_indices"] = used
    else:
        raise ValueError(f"unknown NSD init {mode!r} (expected 'random' or 'dct')")

    params = {"T": jnp.asarray(T, jnp.float32)}
    if learn_kernels:
        params.update({n: jnp.asarray(kn, jnp.float32)
                       for n, kn in zip(_kernel_names(d), kernels)})
    else:
        aux.update({n: np.asarray(kn, np.float32) for n, kn in zip(_kernel_names(d), kernels)})
    per_class = n_t * n_k * u1
    aux.update({
        "labels": np.repeat(np.arange(z, dtype=np.int32), per_class),
        "image_shape": image_shape,
        "num_classes": z,
        "sizes": size_tuple(s, d),
        "images_per_class": per_class,
        "learn_kernels": learn_kernels,
        "init": str(mode),
    })
    return params, aux


def _kernels(params, aux):
    src = params if "K1" in params else aux
    d = len(aux["image_shape"]) - 1
    return tuple(jnp.asarray(src[n]) for n in _kernel_names(d))


def _decode_class(T, *K):
    """All pairs of one class: T (N_T,t1,t2,*ts), Kn (N_K,tn,un) -> (N_T,N_K,u1,*grid,C)."""
    return jnp.einsum(_decode_spec(len(K) - 2), T, *K, optimize="optimal")


def _check_resolution(resolution, grid):
    if resolution is None:
        return
    if isinstance(resolution, (tuple, list)):
        same = tuple(int(r) for r in resolution) == tuple(grid)
    else:
        same = all(int(resolution) == g for g in grid)
    if not same:
        raise NotImplementedError(
            f"NSD decodes only at its training resolution {'x'.join(map(str, grid))} (got "
            f"resolution={resolution}); learned kernels are arbitrary (t_n x u_n) matrices "
            "with no continuous form to resample")


def decode(params, aux, *, indices=None, resolution=None):
    """Decode NSD images, NHWC float32.

    Args:
      params, aux: from init.
      indices: None (all Z*N_T*N_K*u1 images, class-major, in aux['labels'] order) or an int
        array (traced OK) of image indices; returns indices.shape + (H, W, C).  Only the
        selected images are decoded: for few indices, each image's spectrum T[c, i] is
        gathered and contracted with its K1 column; for many, the batch-mode contraction
        T x_1 K1 is done once for all pairs and the selected rows are gathered (both avoid
        the full spatial decode).
      resolution: None or the training side; other values raise NotImplementedError.
    """
    shape = tuple(int(s) for s in aux["image_shape"])
    grid = shape[:-1]
    d = len(grid)
    _check_resolution(resolution, grid)
    n_t, n_k, t1, t2 = aux["sizes"][:4]
    ts, u1 = tuple(aux["sizes"][4:-1]), aux["sizes"][-1]
    T = params["T"]
    K = _kernels(params, aux)
    K1 = K[0]
    if indices is None:
        x = jax.vmap(_decode_class)(T, *K)
        return x.reshape((-1,) + shape)

    idx = jnp.asarray(indices)
    out_shape = idx.shape
    idx = idx.reshape(-1)
    per_class = n_t * n_k * u1
    total = int(aux["num_classes"]) * per_class
    cls = idx // per_class
    r = idx % per_class
    i = r // (n_k * u1)
    j = (r // u1) % n_k
    e = r % u1
    ins, outs = _IN[:d], _OUT[:d]
    if idx.shape[0] * t1 <= total:      # per-image gather: memory n * t1 * t2*prod(ts)
        core = jnp.einsum(f"nab{ins},na->nb{ins}", T[cls, i], K1[cls, j, :, e])
    else:                               # shared batch-mode core: memory total * t2*prod(ts)
        core_all = jax.vmap(lambda t, k: jnp.einsum(f"iab{ins},jae->ijeb{ins}", t, k))(T, K1)
        core = core_all.reshape((total, t2) + ts)[idx]
    spec = (f"nb{ins},nbf," + ",".join(f"n{a}{b}" for a, b in zip(ins, outs))
            + f"->n{outs}f")    # d = 2: 'nbcd,nbf,ncg,ndh->nghf'
    x = jnp.einsum(spec, core, *(k[cls, j] for k in K[1:]), optimize="optimal")
    return x.reshape(out_shape + shape)


def budget(params, aux) -> int:
    """Stored floats: all learnable spectra and kernels (fixed kernels are not stored)."""
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params)))
