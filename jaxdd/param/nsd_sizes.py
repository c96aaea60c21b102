"""NSD storage budget and sizes (paper eq. 3): the per-class cost, the default (N_T, N_K),
`choose_sizes` (the paper's t2, t3, t4 and the largest t1 < u1 that fits IPC x H x W x C per
class) and `published_config` (the paper's settings, with jaxdd's sizes filling the gaps).
Used by jaxdd.param.nsd, which re-exports the public names.
"""
from __future__ import annotations


def _side_default(side: int, ipc: int) -> int:
    """Paper default spectral size along a spatial side: 1/2 for IPC <= 10, 7/8 above."""
    if ipc <= 10:
        return max(1, side // 2)
    return max(1, (7 * side) // 8)


def spatial_names(grid_ndim: int) -> tuple:
    """Names of the spectrum sizes of the grid axes: ('t3', 't4') for (H, W) images and
    spectrograms, ('t3', 't4', 't5') for (T, H, W) video / (D, H, W) voxels, ('t3',) 1-D."""
    if not 1 <= int(grid_ndim) <= 3:
        raise ValueError(f"NSD: grids with 1-3 axes are supported, got {grid_ndim} (data "
                         "must be (*grid, C): images / spectrograms (H, W, C), video "
                         "(T, H, W, C), voxels (D, H, W, 1))")
    return ("t3", "t4", "t5")[:int(grid_ndim)]


def _per_class_cost_nd(n_t, n_k, t1, t2, ts, u1, image_shape, count_kernels=True) -> int:
    """N_T*t1*t2*prod(ts) + N_K*(t1*u1 + t2*C + sum_k ts[k]*grid[k]) (kernels if counted)."""
    grid, c = tuple(image_shape[:-1]), image_shape[-1]
    spectra = n_t * t1 * t2
    for t in ts:
        spectra *= t
    kernels = n_k * (t1 * u1 + t2 * c + sum(t * g for t, g in zip(ts, grid)))
    return int(spectra + (kernels if count_kernels else 0))


def _per_class_cost(n_t, n_k, t1, t2, t3, t4, u1, image_shape, count_kernels=True) -> int:
    """The 2-D (H, W, C) cost (``_per_class_cost_nd`` with ts = (t3, t4))."""
    return _per_class_cost_nd(n_t, n_k, t1, t2, (t3, t4), u1, image_shape, count_kernels)


def _largest_fitting(lo: int, hi: int, fits) -> int | None:
    """Largest integer t in [lo, hi] with fits(t), for monotone (decreasing) fits; or None."""
    if hi < lo or not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


# --------------------------------------------------------------------------------------
# sizes / config
# --------------------------------------------------------------------------------------
def default_counts(ipc: int) -> tuple[tuple[int, int], ...]:
    """jaxdd default (N_T, N_K) candidates per class, tried in order (not published).

    IPC 1: (1, 1) -- one kernel set already costs ~1/3 of a CIFAR class budget.  IPC >= 2:
    (2, 2) (2 x 2 pairs give the paper's pairwise information sharing), falling back to
    (1, 1) when two kernel sets do not fit with t1 >= 2 (e.g. small grayscale images; with
    t1 = 1 the u1 images of a block are scalar multiples of one image).
    """
    return ((1, 1),) if ipc <= 1 else ((2, 2), (1, 1))


def choose_sizes(ipc, image_shape, *, n_t=None, n_k=None, u1=None, t1=None, t2=None,
                 t3=None, t4=None, t5=None, count_kernels=True, enforce_budget=True) -> dict:
    """Pick NSD sizes for one class under the budget  cost <= IPC * prod(image_shape).

    image_shape = (*grid, C) with 1-3 grid axes; the grid axes' spectrum sizes are t3, t4
    (images (H, W): H, W) and t5 (video (T, H, W) / voxels (D, H, W): t3 = T or D, t4 = H,
    t5 = W; an EXTENSION, the paper has images only).

    With all grid sizes automatic (None), the paper's spatial sizes (side/2 for IPC <= 10,
    7/8 side above, on every grid axis) are tried first; when nothing fits there with
    t1 >= 2 (small images at low IPC: MNIST 28x28x1 IPC 1 -- the H/2 kernels alone,
    2 x 14 x 28 = 784 floats, fill the 784-float budget; digits 16x16x1), t3 is shrunk one
    step at a time (the other grid sizes in proportion, t_k = round(t3 * t_k_default /
    t3_default)) down to 1, and the first (largest) t3 at which a configuration with t1 >= 2
    fits is taken (t1 = 1 makes the u1 images of a block multiples of one image). If no t3
    allows t1 >= 2, the largest t3 that fits with t1 = 1; only if nothing fits at t3 = 1
    does it raise. The paper's sizes are kept wherever they fit with t1 >= 2 (every CIFAR /
    Tiny ImageNet / ImageNette setting). The paper does not say what to do when its sizes
    do not fit (it only reports 3-channel 32-128 px data); this rule is jaxdd's. Explicit
    grid sizes are never changed (they raise when they do not fit).

    The rest of the rule (t2, N_T / N_K, t1, u1) and the returned dict: `_sizes_at`; with
    automatic grid sizes the dict also holds spatial_default = the paper's (t3, t4[, t5]).
    """
    names = spatial_names(len(image_shape) - 1)
    given = {"t3": t3, "t4": t4, "t5": t5}
    for k in ("t3", "t4", "t5"):
        if k not in names and given[k] is not None:
            raise ValueError(f"NSD: {k} is the spectrum size of grid axis {k[1]} - 3 but the "
                             f"data of shape {tuple(image_shape)} have {len(names)} grid "
                             f"axes: leave {k} unset")
    auto = all(given[k] is None for k in names)
    kw = dict(n_t=n_t, n_k=n_k, u1=u1, t1=t1, t2=t2, count_kernels=count_kernels,
              enforce_budget=enforce_budget)
    if not auto:
        return _sizes_at(ipc, image_shape, **{k: given[k] for k in names}, **kw)
    grid = [int(g) for g in image_shape[:-1]]
    t0 = [_side_default(g, int(ipc)) for g in grid]
    first_error, fallback = None, None
    for s3 in range(t0[0], 0, -1):
        ts = [s3] + [min(g, max(1, round(s3 * d / t0[0]))) for g, d in zip(grid[1:], t0[1:])]
        try:
            out = _sizes_at(ipc, image_shape, **dict(zip(names, ts)), **kw)
        except ValueError as e:
            if first_error is None:
                first_error = e
            if s3 == t0[0] and "budget" not in str(e):
                raise  # an invalid argument, not a budget problem
            continue
        out["spatial_default"] = tuple(t0)
        if out["t1"] >= 2 or t1 is not None:
            return out
        if fallback is None:
            fallback = out
    if fallback is not None:
        return fallback
    others = " with " + ", ".join(names[1:]) + " in proportion" if len(names) > 1 else ""
    raise ValueError(f"{first_error} (tried t3 = {t0[0]} .. 1{others})")


def _sizes_at(ipc, image_shape, *, n_t=None, n_k=None, u1=None, t1=None, t2=None,
              t3=None, t4=None, t5=None, count_kernels=True, enforce_budget=True) -> dict:
    """NSD sizes for one class at given (or default) grid sizes t3, t4 (, t5).

    cost = N_T*t1*t2*prod(t_k) + N_K*(t1*u1 + t2*C + sum_k t_k*S_k)   (kernel term only
    when count_kernels, i.e. learnable kernels); images: t3*t4 and t3*H + t4*W.

    Defaults: t2 = C; grid sizes side//2 for IPC <= 10, (7*side)//8 above (paper);
    (N_T, N_K) = the first of default_counts(ipc) that fits (when both are None); u1 = 2 * t1* where t1* is the largest t1 with
    cost(t1, u1=2*t1) <= budget (a batch-mode ratio t1/u1 ~ 1/2, like the spatial one).
    Given u1, t1 = the largest t1 < u1 within the budget (paper: "t1 < u1").  An explicit t1
    is only checked (t1 <= u1, and the budget when enforce_budget).

    Args:
      ipc: images per class of the budget.  image_shape: (*grid, C), 1-3 grid axes.
    Returns:
      dict with n_t, n_k, t1, t2, t3, t4 (, t5), u1 (ints), images_per_class = n_t*n_k*u1,
      per_class_floats (stored floats per class), per_class_budget = IPC*prod(image_shape).
    Raises:
      ValueError (with the numbers) when no choice fits the budget or sizes are invalid.
    """
    shape = tuple(int(s) for s in image_shape)
    names = spatial_names(len(shape) - 1)
    grid, c = shape[:-1], shape[-1]
    ipc = int(ipc)
    if ipc < 1:
        raise ValueError(f"NSD needs ipc >= 1, got {ipc}")
    budget_pc = ipc * c
    for g in grid:
        budget_pc *= g
    given = dict(zip(("t3", "t4", "t5"), (t3, t4, t5)))
    if n_t is None and n_k is None:
        cands = default_counts(ipc)
        for k, (cn_t, cn_k) in enumerate(cands):
            last = k == len(cands) - 1
            try:
                out = _sizes_at(ipc, shape, n_t=cn_t, n_k=cn_k, u1=u1, t1=t1, t2=t2,
                                count_kernels=count_kernels, enforce_budget=enforce_budget,
                                **{n: given[n] for n in names})
            except ValueError:
                if last:
                    raise
                continue
            if last or out["t1"] >= 2 or t1 is not None:  # t1 = 1: rank-1 blocks, degenerate
                return out
    n_t = (2 if ipc > 1 else 1) if n_t is None else int(n_t)
    n_k = (2 if ipc > 1 else 1) if n_k is None else int(n_k)
    t2 = c if t2 is None else int(t2)
    ts = tuple(_side_default(g, ipc) if given[n] is None else int(given[n])
               for n, g in zip(names, grid))
    for name, t, u in (("t2", t2, c),) + tuple(zip(names, ts, grid)):
        if not 1 <= t <= u:
            raise ValueError(f"NSD needs 1 <= {name} <= {u} (image size), got {name}={t}")
    if n_t < 1 or n_k < 1:
        raise ValueError(f"NSD needs n_t, n_k >= 1, got n_t={n_t}, n_k={n_k}")

    def cost(t1_, u1_):
        return _per_class_cost_nd(n_t, n_k, t1_, t2, ts, u1_, shape, count_kernels)

    def describe(t1_, u1_):
        spectra = n_t * t1_ * t2 * int(np_prod(ts))
        kern = n_k * (t1_ * u1_ + t2 * c + sum(t * g for t, g in zip(ts, grid))) \
            if count_kernels else 0
        sizes = ", ".join(f"{n}={t}" for n, t in zip(names, ts))
        return (f"n_t={n_t}, n_k={n_k}, t1={t1_}, u1={u1_}, t2={t2}, {sizes}: "
                f"spectra {n_t}*{t1_}*{t2}*{'*'.join(map(str, ts))} = {spectra} + kernels "
                + (f"{n_k}*({t1_}*{u1_} + {t2}*{c} + "
                   + " + ".join(f"{t}*{g}" for t, g in zip(ts, grid)) + f") = {kern}"
                   if count_kernels else "(fixed, not counted) 0")
                + f" = {spectra + kern} floats per class > budget IPC*"
                + ("H*W*C" if len(grid) == 2 else "prod(grid)*C") + f" = "
                f"{ipc}*{'*'.join(map(str, shape))} = {budget_pc}")

    if t1 is not None:
        t1 = int(t1)
        u1 = 2 * t1 if u1 is None else int(u1)
        if not 1 <= t1 <= u1:
            raise ValueError(f"NSD needs 1 <= t1 <= u1, got t1={t1}, u1={u1}")
        if enforce_budget and cost(t1, u1) > budget_pc:
            raise ValueError("NSD sizes exceed the storage budget: " + describe(t1, u1)
                             + " (set enforce_budget=False to allow it)")
    else:
        if u1 is None:
            t1s = _largest_fitting(1, budget_pc, lambda t: cost(t, 2 * t) <= budget_pc)
            if t1s is None:
                raise ValueError("NSD: nothing fits the storage budget even with the "
                                 "smallest sizes; " + describe(1, 2)
                                 + ". Use fewer/smaller spectra or kernels, or a larger ipc.")
            u1 = 2 * t1s
        u1 = int(u1)
        if u1 < 2:
            raise ValueError(f"NSD needs u1 >= 2 for t1 < u1, got u1={u1}")
        t1 = _largest_fitting(1, u1 - 1, lambda t: cost(t, u1) <= budget_pc)
        if t1 is None:
            raise ValueError("NSD: nothing fits the storage budget even with t1=1; "
                             + describe(1, u1)
                             + ". Use fewer/smaller spectra or kernels, or a larger ipc.")
    out = dict(n_t=n_t, n_k=n_k, t1=t1, t2=t2)
    out.update(zip(names, ts))
    out.update(u1=u1, images_per_class=n_t * n_k * u1, per_class_floats=cost(t1, u1),
               per_class_budget=budget_pc)
    return out


def np_prod(xs) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def size_tuple(s: dict, grid_ndim: int) -> tuple:
    """aux['sizes'] from a choose_sizes dict: (n_t, n_k, t1, t2, t3, t4[, t5], u1)."""
    return ((s["n_t"], s["n_k"], s["t1"], s["t2"])
            + tuple(s[n] for n in spatial_names(grid_ndim)) + (s["u1"],))


def budget_line_sizes(s: dict, image_shape) -> str:
    """One human line: the NSD budget rule for a choose_sizes dict on (*grid, C) data."""
    shape = tuple(int(x) for x in image_shape)
    names = spatial_names(len(shape) - 1)
    sizes = ", ".join(f"{n}={s[n]}" for n in ("n_t", "n_k", "t1", "u1", "t2") + names)
    ipc = s["per_class_budget"] // np_prod(shape)
    return (f"NSD budget: {ipc} ipc x {'x'.join(map(str, shape))} = {s['per_class_budget']} floats "
            f"per class; {sizes} -> {s['per_class_floats']} floats stored per class (spectra "
            f"+ learnable kernels), {s['images_per_class']} decoded instances per class")


# Settings published in the paper (Sec. 4.1 "Model details", Tables 1-2).  N_T, N_K, t1, u1
# and the real-guided loss weight gamma are NOT published (None): jaxdd fills them with
# choose_sizes defaults (key 'jaxdd_sizes').
_PUBLISHED_ACC = {
    "cifar10": {1: 68.5, 10: 73.4, 50: 75.2},
    "cifar100": {1: 36.5, 10: 46.1, 50: None},   # CIFAR-100 IPC 50 not reported
    "tinyimagenet": {1: 21.3},
}
_PUBLISHED_VARIANTS = {  # Table 2 (MTT baseline / fixed DCT / learnable DCT)
    ("cifar10", 1): {"mtt": 46.3, "dwt": 51.3, "svd": 49.0, "lsvd": 53.8, "dct": 57.9,
                     "ldct": 62.3, "nsd": 68.5},
    ("cifar10", 10): {"mtt": 65.3, "dwt": 66.9, "svd": 67.9, "lsvd": 69.4, "dct": 69.5,
                      "ldct": 69.9, "nsd": 73.4},
    ("cifar100", 1): {"mtt": 24.3, "dwt": 26.4, "svd": 25.3, "lsvd": 27.7, "dct": 30.1,
                      "ldct": 35.5, "nsd": 36.5},
}
_SHAPES = {"cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "tinyimagenet": (64, 64, 3)}
_CLASSES = {"cifar10": 10, "cifar100": 100, "tinyimagenet": 200}


def published_config(dataset: str, ipc: int) -> dict:
    """The paper's NSD setting for (dataset, ipc) plus the jaxdd sizes filling the gaps.

    dataset in {'cifar10', 'cifar100', 'tinyimagenet'}; ipc in {1, 10, 50} (CIFAR) / {1}.
    Published: t2 = 3, t3 = t4 = side/2 (IPC <= 10) or 7/8 side (IPC > 10), t1 < u1,
    random init, learnable spectra + kernels, SGD momentum 0.9, 10k iterations, MTT +
    gamma * real-guided CE (ConvNetD3, evaluation lr 0.01, 1000 epochs, batch 256,
    momentum 0.9, wd 5e-4, DSA).  Unpublished values are None.
    """
    ds = dataset.lower().replace("-", "").replace("_", "")
    if ds not in _PUBLISHED_ACC or int(ipc) not in _PUBLISHED_ACC[ds]:
        raise ValueError(f"no published NSD setting for dataset={dataset!r}, ipc={ipc}; "
                         f"known: { {k: sorted(v) for k, v in _PUBLISHED_ACC.items()} }")
    ipc = int(ipc)
    h, w, c = _SHAPES[ds]
    return {
        "dataset": ds, "ipc": ipc, "num_classes": _CLASSES[ds], "image_shape": (h, w, c),
        "t2": 3, "t3": _side_default(h, ipc), "t4": _side_default(w, ipc),
        "n_t": None, "n_k": None, "t1": None, "u1": None,   # not published
        "init": "random", "learn_kernels": True,
        "optimizer": "sgd", "momentum": 0.9, "iterations": 10_000, "lr": None,
        "objective": "mtt + gamma * real-guided CE", "gamma": None,
        "eval": {"model": "ConvNetD3", "lr": 0.01, "epochs": 1000, "batch": 256,
                 "momentum": 0.9, "weight_decay": 5e-4, "augment": "dsa"},
        "reported_acc": _PUBLISHED_ACC[ds][ipc],
        "reported_variants": _PUBLISHED_VARIANTS.get((ds, ipc)),
        "jaxdd_sizes": choose_sizes(ipc, (h, w, c)),
    }
