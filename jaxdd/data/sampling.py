"""Per-class views of a Dataset and the 'random real' baseline."""
from __future__ import annotations

import numpy as np

__all__ = ["class_indices", "images_by_class", "random_real"]


def class_indices(labels, num_classes: int) -> list[np.ndarray]:
    """Indices of each class. labels: (N,) ints -> list (num_classes) of int64 (n_c,) arrays,
    ascending."""
    labels = np.asarray(labels).reshape(-1)
    return [np.flatnonzero(labels == c) for c in range(int(num_classes))]


def images_by_class(ds) -> list[np.ndarray]:
    """All train images of each class: list (num_classes) of float32 (n_c, H, W, C).

    This is the `real_images_by_class` argument of a parameterization's `init`. For a
    process's shard of a multi-process run (`ds.shard`), each entry is a
    `jaxdd.data.shard.ClassView` of the GLOBAL class instead: the same shape and indexing,
    rows fetched collectively from the processes that hold them.
    """
    if getattr(ds, "shard", None) is not None:
        from jaxdd.data.shard import ClassView
        return [ClassView(ds, c) for c in range(ds.num_classes)]
    return [ds.images[idx] for idx in class_indices(ds.labels, ds.num_classes)]


def _as_generator(rng_or_key) -> np.random.Generator:
    """numpy Generator from a Generator, an int seed, or a jax PRNG key (typed or raw).

    A jax key seeds the Generator with its raw key data (no jax computation, no compile).
    """
    if isinstance(rng_or_key, np.random.Generator):
        return rng_or_key
    if isinstance(rng_or_key, (int, np.integer)):
        return np.random.default_rng(int(rng_or_key))
    import jax

    data = np.asarray(jax.random.key_data(rng_or_key)).astype(np.uint32).ravel()
    return np.random.default_rng(data.tolist())


def random_real(rng_or_key, ds, n_per_class: int):
    """The 'random real' baseline: n_per_class distinct random images of every class.

    Args:
      rng_or_key: a jax PRNG key, a numpy Generator, or an int seed.
      ds: a Dataset (usually the train split).
      n_per_class: images per class.

    Returns:
      images: float32 (num_classes * n_per_class, H, W, C), in class order;
      labels: int32 (num_classes * n_per_class,) = [0]*n + [1]*n + ...
    """
    n = int(n_per_class)
    rng = _as_generator(rng_or_key)
    idx = []
    if getattr(ds, "shard", None) is not None:  # a process's shard: the global draw
        from jaxdd.data.shard import gather_class_rows
        out = []
        for c in range(ds.num_classes):
            n_c = int(ds.shard.class_counts[c])
            if n_c < n:
                raise ValueError(f"class {c} ({ds.class_names[c]!r}) has {n_c} images, "
                                 f"fewer than n_per_class={n}")
            out.append(gather_class_rows(ds, c, rng.choice(n_c, size=n, replace=False)))
        labels = np.repeat(np.arange(ds.num_classes, dtype=np.int32), n)
        return (np.concatenate(out) if out else np.zeros((0,) + ds.image_shape, np.float32),
                labels)
    for c, members in enumerate(class_indices(ds.labels, ds.num_classes)):
        if len(members) < n:
            raise ValueError(
                f"class {c} ({ds.class_names[c]!r}) has {len(members)} images, "
                f"fewer than n_per_class={n}"
            )
        idx.append(members[rng.choice(len(members), size=n, replace=False)])
    idx = np.concatenate(idx) if idx else np.zeros((0,), np.int64)
    labels = np.repeat(np.arange(ds.num_classes, dtype=np.int32), n)
    return np.asarray(ds.images[idx], np.float32), labels
