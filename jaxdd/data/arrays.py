"""Array sources read without tfds: scikit-learn's embedded digits and numpy .npz files of
any modality
(with the deterministic stratified split used when they have no test split).
Part of :mod:`jaxdd.data.datasets`.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from jaxdd.data.catalog import MODALITIES, MODALITY_RANK
from jaxdd.data.preprocessing import _as_float01


# Deterministic stratified split of the embedded digits (and of npz files without a test
# split): per class, a seeded permutation; round(0.2 * n_c) examples go to test.
# sklearn digits (1797 images): train 1438, test 359.
_SPLIT_SEED = 0
_TEST_FRACTION = 0.2


def _stratified_split(labels: np.ndarray, test_fraction=_TEST_FRACTION, seed=_SPLIT_SEED):
    """Deterministic stratified split -> (train_idx, test_idx), each sorted ascending."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _load_digits():
    """sklearn digits: 1797 8x8 images, 16 grey levels -> float [0, 1], stratified split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[..., None]
    y = d.target.astype(np.int32)
    tr, te = _stratified_split(y)
    names = tuple(str(int(n)) for n in d.target_names)
    return x[tr], y[tr], x[te], y[te], names


def _npz_modality(path, declared, x) -> str:
    """The modality of an npz file's arrays: the 'modality' key if present, else by rank
    (4 -> image, 5 with C == 1 -> voxel, other 5 -> video)."""
    if declared is not None:
        if declared not in MODALITIES:
            raise ValueError(f"{path}: modality {declared!r} is not one of {MODALITIES}")
        want = MODALITY_RANK[declared]
        if x.ndim == 3 and declared in ("image", "audio"):
            return declared
        if x.ndim != want:
            raise ValueError(f"{path}: modality {declared!r} needs {want}-D images (N, *grid, "
                             f"C), got shape {x.shape}")
        return declared
    if x.ndim in (3, 4):
        return "image"
    if x.ndim == 5:
        return "voxel" if x.shape[-1] == 1 else "video"
    raise ValueError(
        f"{path}: images must be (N, H, W, C) or (N, H, W) images, or 5-D (N, T, H, W, C) "
        f"video / (N, D, H, W, 1) voxels; got shape {x.shape}. Store a 'modality' string "
        f"('image', 'audio', 'video', 'voxel') beside 5-D arrays to say which.")


def _load_npz(path):
    """Arrays file; see `load_dataset` for the format -> (x, y, x_test, y_test, class_names,
    modality)."""
    path = pathlib.Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise FileNotFoundError(f"npz dataset file not found: {path}")
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        missing = {"images", "labels"} - keys
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {sorted(keys)})")
        x = np.asarray(f["images"])
        y = np.asarray(f["labels"])
        x_te = np.asarray(f["test_images"]) if "test_images" in keys else None
        y_te = np.asarray(f["test_labels"]) if "test_labels" in keys else None
        names = [str(s) for s in f["class_names"]] if "class_names" in keys else None
        declared = str(np.asarray(f["modality"]).item()) if "modality" in keys else None
    if (x_te is None) != (y_te is None):
        raise ValueError(f"{path}: give both test_images and test_labels, or neither")
    modality = _npz_modality(path, declared, x)

    def prep(images, labels, what):
        if images.ndim == 3 and modality in ("image", "audio"):
            images = images[..., None]
        if images.ndim != MODALITY_RANK[modality]:
            raise ValueError(f"{path}: {what} must be {MODALITY_RANK[modality]}-D like the "
                             f"{modality} images, got {images.shape}")
        labels = labels.reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{path}: {what} has {images.shape[0]} images but "
                             f"{labels.shape[0]} labels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: labels must be integers, got {labels.dtype}")
        return _as_float01(images, f"{path} {what}"), labels.astype(np.int32)

    x, y = prep(x, y, "images")
    if x_te is None:
        tr, te = _stratified_split(y)
        x, y, x_te, y_te = x[tr], y[tr], x[te], y[te]
    else:
        x_te, y_te = prep(x_te, y_te, "test_images")
        if x_te.shape[1:] != x.shape[1:]:
            raise ValueError(f"{path}: test_images are {x_te.shape[1:]} per example but images "
                             f"are {x.shape[1:]}")
    num_classes = int(max(y.max(initial=-1), y_te.max(initial=-1))) + 1
    if y.size and y.min() < 0 or y_te.size and y_te.min() < 0:
        raise ValueError(f"{path}: labels must be >= 0")
    if names is None:
        names = [str(i) for i in range(num_classes)]
    elif len(names) < num_classes:
        raise ValueError(f"{path}: {len(names)} class_names for labels up to {num_classes - 1}")
    return x, y, x_te, y_te, tuple(names), modality
