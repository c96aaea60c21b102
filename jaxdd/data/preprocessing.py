"""The authors' preprocessing choices: per-dataset normalization constants
(`AUTHORS_NORMALIZATION`), which standardization applies (`_resolve_standardize`), the id of
a pipeline (`preprocessing_id`), per-channel train statistics and [0, 1] pixels.
Part of :mod:`jaxdd.data.datasets` (whose doc describes the whole pipeline).
"""
from __future__ import annotations

import numpy as np

from jaxdd.data.catalog import (MODALITIES, _IMAGENET_PREFIX, _PREPARED, _is_variable_size,
                                modality_of)
from jaxdd.data.resize import _resolve_resize
from jaxdd.data.shard import allsum


# The authors' per-channel (mean, std) constants, keyed by jaxdd's dataset name. Every
# repository hard-codes the same values where it has the dataset (mtt-distillation
# utils.py:56-57, 72-73, 91-92, 122-123; FreD TM/utils.py:82-83, 94-95, 106-107, 121-122,
# 155-156, 185-186; DDiF TM/utils.py:123-124, 135-136, 147-148, 162-163, 195-196, 225-226;
# the DC/DM copies), checked against the sources by tests/test_parity_data_constants.py.
# CIFAR-100: the trajectory-matching code of all three (and DDiF DC/DM) normalizes CIFAR-100
# with the CIFAR-10 constants; only FreD DC/DM (FreD DC/utils.py:118-119, DM/utils.py:
# 118-119) use CIFAR-100's own statistics (`CIFAR100_OWN_NORMALIZATION`; pass
# stats=CIFAR100_OWN_NORMALIZATION to follow them).
_CIFAR10_CONSTANTS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_IMAGENET_CONSTANTS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
AUTHORS_NORMALIZATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2861,), (0.3530,)),
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "cifar10": _CIFAR10_CONSTANTS,
    "cifar100": _CIFAR10_CONSTANTS,
    "imagenette": _IMAGENET_CONSTANTS,
    "imagenet2012": _IMAGENET_CONSTANTS,  # every 'imagenet2012:<subset>'
    # MiniUCF frames: the ImageNet constants (aailab-kaist/DDiF @ b628e7b,
    # Video/utils.py:279-280, transforms.Normalize after ToTensor).
    "miniucf": _IMAGENET_CONSTANTS,
}
CIFAR100_OWN_NORMALIZATION = ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))


def _canonical(name) -> str:
    """Key of AUTHORS_NORMALIZATION for a dataset name ('' when the authors never used it)."""
    low = str(name).lower()
    if low.startswith(_IMAGENET_PREFIX):
        return "imagenet2012"
    base = low.split("/")[0]
    if base == "svhn":
        return "svhn_cropped"
    return base if base in AUTHORS_NORMALIZATION else ""


def authors_normalization(name):
    """The authors' (mean, std) tuples for dataset `name`, or None (digits, npz, tfds:...)."""
    return AUTHORS_NORMALIZATION.get(_canonical(name))


# Datasets whose authors' transform standardizes even when --zca is on (FreD TM/utils.py:84,
# 96 and DDiF TM/utils.py:125, 137: MNIST / FashionMNIST ignore args.zca in the transform,
# while the ZCA block after it still runs): with zca=True they are standardized, then ZCA'd.
_STANDARDIZED_BEFORE_ZCA = ("mnist", "fashion_mnist")
# Voxel sets the authors feed as raw occupancies / values (mean = std = None: DDiF
# 3D_Voxel/utils.py:119-138; FreD 3D-MNIST/utils.py:65-91): not standardized by default.
_RAW_BY_AUTHORS = tuple(_PREPARED)


def _resolve_standardize(name, *, zca, normalize, stats):
    """-> (standardize: bool, constants (mean, std) or None = train statistics, kind str)."""
    if normalize is None:
        standardize = (((not zca) or _canonical(name) in _STANDARDIZED_BEFORE_ZCA)
                       and str(name).lower().split("/")[0] not in _RAW_BY_AUTHORS)
    else:
        standardize = bool(normalize)
    if not standardize:
        return False, None, "none"
    if stats is None or (isinstance(stats, str) and stats == "auto"):
        const = authors_normalization(name)
        return (True, const, "authors-constants") if const is not None else (True, None,
                                                                              "train-stats")
    if isinstance(stats, str):
        if stats == "authors":
            const = authors_normalization(name)
            if const is None:
                raise ValueError(
                    f"no authors' normalization constants for dataset {name!r} (known: "
                    f"{', '.join(sorted(AUTHORS_NORMALIZATION))}); use stats='train'")
            return True, const, "authors-constants"
        if stats == "train":
            return True, None, "train-stats"
        raise ValueError(f"stats must be None/'auto', 'authors', 'train' or (mean, std), "
                         f"got {stats!r}")
    mean, std = stats
    mean = tuple(float(v) for v in np.atleast_1d(np.asarray(mean, np.float64)))
    std = tuple(float(v) for v in np.atleast_1d(np.asarray(std, np.float64)))
    if authors_normalization(name) is not None and (mean, std) == tuple(
            tuple(float(v) for v in t) for t in authors_normalization(name)):
        return True, (mean, std), "authors-constants"
    fmt = lambda t: "/".join(f"{v:g}" for v in t)  # noqa: E731
    return True, (mean, std), f"custom-mean{fmt(mean)}-std{fmt(std)}"


def preprocessing_id(name, *, zca: bool = False, zca_eps: float = 0.1, normalize=None,
                     stats=None, resize=None, modality=None) -> str:
    """Short id of the preprocessing `load_dataset` applies with these arguments.

    'zca01-eps0.1'                    ZCA (eps 0.1) on [0, 1] pixels (the authors' --zca)
    'standardize-authors-constants'   (x - mean) / std with the authors' constants
    'standardize-train-stats'         ... with the train split's statistics (digits, npz)
    'standardize-custom-mean..-std..' ... with user constants
    'standardize-<...>+zca-eps0.1'    standardize, then ZCA (normalize=True with zca=True;
                                      not what the authors do)
    'pixels01'                        nothing: [0, 1] pixels
    Variable-size sources (imagenette, imagenet2012:<subset>) append ';resize=squash|crop'.
    Non-image data append ';modality=audio|video|voxel' (image ids are unchanged).
    modality: None = the dataset name's (`catalog.modality_of`: 'image' for npz files,
    whose content hash identifies them in buffer metadata).
    Stored in expert-buffer metadata: buffers built with another id are refused.
    """
    modality = modality_of(name) if modality is None else str(modality)
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    standardize, _, kind = _resolve_standardize(name, zca=zca, normalize=normalize, stats=stats)
    eps = f"eps{float(zca_eps):g}"
    if standardize:
        out = f"standardize-{kind}" + (f"+zca-{eps}" if zca else "")
    else:
        out = f"zca01-{eps}" if zca else "pixels01"
    if _is_variable_size(name):
        out += f";resize={_resolve_resize(resize)}"
    if modality != "image":
        out += f";modality={modality}"
    return out


def _channel_stats(x: np.ndarray, chunk: int = 4096, sharded: bool = False):
    """Per-channel mean and (population) std of x (N, *grid, C), float64 accumulation.
    sharded: x is this process's shard; the sums are added over processes (collective)."""
    c = x.shape[-1]
    s, ss, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, x.shape[0], chunk):
        b = np.asarray(x[start:start + chunk], np.float64).reshape(-1, c)
        s += b.sum(0)
        ss += (b * b).sum(0)
        count += b.shape[0]
    if sharded:
        tot = allsum(np.concatenate([s, ss, [float(count)]]))
        s, ss, count = tot[:c], tot[c:2 * c], tot[2 * c]
    mean = s / count
    var = np.maximum(ss / count - mean**2, 0.0)
    return mean, np.sqrt(var)


def _as_float01(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 [0, 255], bool (occupancy: 0 / 1) or float [0, 1] images -> float32 [0, 1]."""
    images = np.asarray(images)
    if images.dtype == np.bool_:
        return images.astype(np.float32)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{where}: images must be uint8, bool or float in [0, 1], got "
                         f"{images.dtype}")
    images = images.astype(np.float32)
    if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
        raise ValueError(
            f"{where}: float images must lie in [0, 1] (got min {images.min():.3g}, "
            f"max {images.max():.3g}); store uint8 0..255 or rescale."
        )
    return images
