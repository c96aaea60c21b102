"""Per-process shards of a training split (multi-host runs) and the collectives they need.

In a multi-process run (``jax.distributed``) every process holds only its share of the
training images in host memory. The layout is per class and strided:

    row j of class c (the j-th image of class c in training-set order, j = 0, 1, ...)
    lives on process  j % process_count,  as that process's (j // process_count)-th
    image of class c.

Each process keeps its rows in training-set order (a `Dataset` with fewer rows), plus a
`ShardInfo`: the global row ids it holds, the within-class index of every row, and the
global per-class counts. Anything that needs the whole set is computed collectively from
the shards, with exact (order-fixed) arithmetic so that every process gets the same bytes:

* standardization statistics and the ZCA fit (`allsum`: float64 partial sums, added in
  process order; they equal the one-process values up to float64 rounding);
* the initial synthetic set (`ClassView`, what `images_by_class` returns for a shard): a
  parameterization's `init` indexes real images of a class by within-class index; the
  rows are fetched from their owners (`gather_class_rows`, exact copies), so the initial set
  is the one a single process would build from the same key;
* the random-real baseline (`jaxdd.data.random_real`) likewise.

The test split is small and is loaded whole by every process (evaluation replicates it).
A one-process run never builds a shard: ``load_dataset(..., shard=None)`` is unchanged.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

__all__ = ["ShardInfo", "shard_rows", "make_shard", "allgather", "allsum",
           "gather_class_rows", "gather_class", "gather_split", "ClassView", "process_shard"]


@dataclasses.dataclass(frozen=True, eq=False)
class ShardInfo:
    """Which rows of the global training split a process holds.

    index, count: this process's index and the number of processes.
    rows: int64 (n_local,) global row ids held, ascending (the local rows in this order).
    within: int64 (n_local,) index of each local row inside its class (global numbering).
    class_counts: int64 (classes,) images per class in the GLOBAL split.
    total: rows of the global split.
    """

    index: int
    count: int
    rows: np.ndarray
    within: np.ndarray
    class_counts: np.ndarray
    total: int


def process_shard() -> Optional[tuple]:
    """(process_index, process_count) of this JAX process when there is more than one,
    else None (nothing to shard)."""
    import jax

    return (jax.process_index(), jax.process_count()) if jax.process_count() > 1 else None


def shard_rows(labels, num_classes: int, index: int, count: int):
    """Global row ids that process `index` of `count` holds (strided per class, ascending)
    and their within-class indices. labels: (N,) ints of the global split."""
    labels = np.asarray(labels).reshape(-1)
    within = np.zeros(labels.shape, np.int64)
    for c in range(int(num_classes)):
        idx = np.flatnonzero(labels == c)
        within[idx] = np.arange(len(idx))
    rows = np.flatnonzero(within % int(count) == int(index))
    return rows.astype(np.int64), within[rows]


def make_shard(labels, num_classes: int, index: int, count: int) -> ShardInfo:
    labels = np.asarray(labels).reshape(-1)
    rows, within = shard_rows(labels, num_classes, index, count)
    counts = np.bincount(labels, minlength=int(num_classes)).astype(np.int64)
    return ShardInfo(index=int(index), count=int(count), rows=rows, within=within,
                     class_counts=counts, total=int(labels.shape[0]))


# ----------------------------------------------------------------------------- collectives

def allgather(x, *, _gather: Callable | None = None) -> np.ndarray:
    """Every process's `x` (same shape and dtype everywhere), stacked in process order:
    (process_count, *x.shape), the exact bytes (any dtype; float64 stays float64, which
    the device collectives would round to float32 without x64). One process: x[None]."""
    import jax

    x = np.ascontiguousarray(x)
    if _gather is None:
        if jax.process_count() == 1:
            return x[None]
        from jax.experimental import multihost_utils
        _gather = lambda a: np.asarray(multihost_utils.process_allgather(a))  # noqa: E731
    raw = x.reshape(-1).view(np.uint8)
    got = np.asarray(_gather(raw))
    return np.ascontiguousarray(got).view(x.dtype).reshape((got.shape[0],) + x.shape)


def allsum(x, **kw) -> np.ndarray:
    """Sum of `x` over processes, added in process order (identical on every process)."""
    parts = allgather(np.asarray(x), **kw)
    out = parts[0].copy()
    for p in parts[1:]:
        out += p
    return out


def gather_class_rows(ds, cls: int, within, **kw) -> np.ndarray:
    """Images of class `cls` at within-class indices `within` (global numbering, any order,
    repeats allowed) from a sharded Dataset: (len(within), H, W, C) float32, identical on
    every process. Collective: every process must call it with the same arguments."""
    sh = ds.shard
    within = np.asarray(within, np.int64).reshape(-1)
    n_c = int(sh.class_counts[cls])
    if within.size and (within.min() < 0 or within.max() >= n_c):
        raise IndexError(f"class {cls} has {n_c} images; asked for index "
                         f"{int(within.max() if within.max() >= n_c else within.min())}")
    mine = np.flatnonzero(np.asarray(ds.labels) == cls)  # local rows of the class, in order
    local = np.zeros((len(within),) + tuple(ds.image_shape), np.float32)
    own = within % sh.count == sh.index
    if own.any():
        local[own] = ds.images[mine[within[own] // sh.count]]
    parts = allgather(local, **kw)
    return parts[within % sh.count, np.arange(len(within))]


def gather_class(ds, cls: int, **kw) -> np.ndarray:
    """Every image of class `cls` of a sharded Dataset, in training-set order:
    (n_c, H, W, C) float32 on every process (collective). Each process sends only its own
    rows (ceil(n_c / processes) slots), so the transfer is one class, not processes x."""
    sh = ds.shard
    n_c, p = int(sh.class_counts[cls]), sh.count
    m = -(-n_c // p)
    mine = ds.images[np.flatnonzero(np.asarray(ds.labels) == cls)]
    local = np.zeros((m,) + tuple(ds.image_shape), np.float32)
    local[:len(mine)] = mine
    parts = allgather(local, **kw)  # (p, m, ...): within-class index j = k * p + process
    return np.swapaxes(parts, 0, 1).reshape((m * p,) + local.shape[1:])[:n_c]


def gather_split(ds, **kw):
    """The whole train split from the processes' shards, in training-set order: (images
    (N, H, W, C) float32, labels (N,) int32), identical on every process (collective; a
    full host copy: only for what must read the flat split, see `jaxdd.distill`)."""
    sh = ds.shard
    n_loc = np.asarray([len(sh.rows)], np.int64)
    m = int(allgather(n_loc, **kw).max())
    loc = np.full((2, m), -1, np.int64)
    loc[0, :len(sh.rows)] = sh.rows
    loc[1, :len(sh.rows)] = np.asarray(ds.labels)
    parts = allgather(loc, **kw)  # (P, 2, m)
    labels = np.zeros((sh.total,), np.int32)
    for part in parts:
        ok = part[0] >= 0
        labels[part[0][ok]] = part[1][ok]
    images = np.zeros((sh.total,) + tuple(ds.image_shape), np.float32)
    for c in range(len(sh.class_counts)):
        images[np.flatnonzero(labels == c)] = gather_class(ds, c, **kw)
    return images, labels


class ClassView:
    """All images of one class of a sharded training split, as a parameterization's `init`
    sees them (`real_images_by_class[c]`): `shape` / `len` are the GLOBAL class size and
    `view[idx]` (integer index arrays, slices, ints) returns the global rows, fetched from
    the processes that hold them (collective: every process indexes identically, which
    holds because `init` is deterministic given its key). `np.asarray(view)` gathers the
    whole class (one class at a time; used by inits that read every image)."""

    def __init__(self, ds, cls: int):
        self._ds, self._cls = ds, int(cls)
        self.shape = (int(ds.shard.class_counts[cls]),) + tuple(ds.image_shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        n = self.shape[0]
        if isinstance(key, slice):
            idx = np.arange(n)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
        scalar = idx.ndim == 0
        flat = np.where(idx.reshape(-1) < 0, idx.reshape(-1) + n, idx.reshape(-1))
        out = gather_class_rows(self._ds, self._cls, flat)
        out = out[0] if scalar else out.reshape(idx.shape + out.shape[1:])
        return out[(slice(None),) * (0 if scalar else idx.ndim) + rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = gather_class(self._ds, self._cls)
        return out if dtype is None else out.astype(dtype)
