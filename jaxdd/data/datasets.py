"""Dataset sources (embedded digits, tfds, ImageNet class subsets, npz arrays) and the
authors' preprocessing (resize, per-dataset mean/std constants, ZCA on [0, 1] pixels).

Pipeline of `load_dataset` for every source (defaults = what the authors' get_dataset does:
mtt-distillation utils.py:46-171, FreD TM/utils.py:72-262, DDiF TM/utils.py:113-272):

    pixels in [0, 1] (float32, NHWC; uint8 / 255 like torchvision's ToTensor)
      -> variable-size sources (ImageNet subsets, tfds imagenette): resize to R x R while
         reading; 'squash' (default, the authors' Resize((R, R))) or 'crop'
      -> fixed-size sources with resolution=R: bilinear resize to R x R
      -> zca=False: (x - mean) / std with the AUTHORS' per-dataset constants
         (`AUTHORS_NORMALIZATION`: mnist, fashion_mnist, svhn_cropped, cifar10, cifar100,
         imagenette, ImageNet subsets); datasets the authors never used (the embedded
         digits, npz files, other tfds datasets) use the train split's per-channel
         statistics instead (there are no authors' constants to follow).
      -> zca=True: NO mean/std (the authors use ToTensor() alone when --zca is on), then
         kornia-style ZCA (eps 0.1) fitted on the whole train split of [0, 1] pixels and
         applied to train and test (mtt-distillation utils.py:58-59, 137-165). (MNIST /
         FashionMNIST: the authors' transform standardizes before the ZCA regardless.)

Every `Dataset` records this as a short string (`Dataset.preprocessing`, made by
`preprocessing_id`), which expert buffers store in their metadata so that trajectories
trained on other inputs are refused.

Datasets live on the host as numpy arrays; move batches to devices where they are used.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Optional, Sequence

import numpy as np

from jaxdd.data.shard import ShardInfo, allsum, make_shard
from jaxdd.data.zca import ZCA, apply_zca_batched, fit_zca, fit_zca_sharded

__all__ = [
    "AUTHORS_NORMALIZATION",
    "CIFAR100_OWN_NORMALIZATION",
    "IMAGENET_SUBSETS",
    "Dataset",
    "DatasetNotPreparedError",
    "authors_normalization",
    "available_datasets",
    "load_dataset",
    "preprocessing_id",
]

# Deterministic stratified split of the embedded digits (and of npz files without a test
# split): per class, a seeded permutation; round(0.2 * n_c) examples go to test.
# sklearn digits (1797 images): train 1438, test 359.
_SPLIT_SEED = 0
_TEST_FRACTION = 0.2

# name -> (tfds name, train split, test split, default side for variable-size images)
_TFDS = {
    "mnist": ("mnist", "train", "test", None),
    "fashion_mnist": ("fashion_mnist", "train", "test", None),
    "cifar10": ("cifar10", "train", "test", None),
    "cifar100": ("cifar100", "train", "test", None),
    "svhn_cropped": ("svhn_cropped", "train", "test", None),
    "svhn": ("svhn_cropped", "train", "test", None),
    # fast.ai's Imagenette (tfds 'imagenette', 9469 train / 3925 validation images of the
    # 10 imagenette classes; the 160px variant is the smallest download whose shorter side
    # is >= 128). NOT the authors' data: they take ALL ImageNet-1k train images of the 10
    # classes (~13k) and the 500 ImageNet validation images of those classes; for that use
    # 'imagenet2012:imagenette' (below). Resized to 128 x 128 (default 'squash', as the
    # authors' Resize((128, 128))).
    "imagenette": ("imagenette/160px-v2", "train", "validation", 128),
}

# The authors' ImageNet class subsets: ImageNet-1k class indices (torchvision ImageNet /
# tfds imagenet2012 label order: synsets sorted by WordNet id). Label c of the subset is the
# c-th index of its list (the authors' class_map). Sources: mtt-distillation utils.py:17-42
# (imagenette, imagewoof, imagemeow, imagesquawk, imagefruit, imageyellow); the same lists in
# FreD TM/utils.py:43-69 and DDiF TM/utils.py:40-109 (DDiF's keys: nette, woof, fruits,
# yellow, cats, birds, a..e); ImageNet-A..E (GLaD's subsets) from FreD
# ImageNet-abcde/utils.py:76-101 (alpha..epsilon).
IMAGENET_SUBSETS = {
    "imagenette": (0, 217, 482, 491, 497, 566, 569, 571, 574, 701),
    "imagewoof": (193, 182, 258, 162, 155, 167, 159, 273, 207, 229),
    "imagemeow": (281, 282, 283, 284, 285, 291, 292, 290, 289, 287),
    "imagesquawk": (84, 130, 88, 144, 145, 22, 96, 9, 100, 89),
    "imagefruit": (953, 954, 949, 950, 951, 957, 952, 945, 943, 948),
    "imageyellow": (309, 986, 954, 951, 987, 779, 599, 291, 72, 11),
    "imagenet-a": (255, 376, 984, 364, 500, 986, 333, 576, 148, 135),
    "imagenet-b": (129, 916, 90, 275, 995, 874, 102, 259, 685, 139),
    "imagenet-c": (565, 94, 554, 535, 92, 392, 291, 136, 324, 11),
    "imagenet-d": (9, 258, 13, 262, 19, 339, 321, 24, 93, 322),
    "imagenet-e": (816, 96, 100, 145, 739, 713, 783, 76, 688, 326),
}
# DDiF's subset keys (DDiF TM/utils.py:92-108) and FreD's short names -> ours.
_SUBSET_ALIASES = {"nette": "imagenette", "woof": "imagewoof", "fruits": "imagefruit",
                   "yellow": "imageyellow", "cats": "imagemeow", "birds": "imagesquawk",
                   **{k: f"imagenet-{k}" for k in "abcde"}}
_IMAGENET_PREFIX = "imagenet2012:"
_IMAGENET_TFDS = "imagenet2012"  # tfds name (train / validation splits); tests swap it
_IMAGENET_SIDE = 128  # the authors' im_size for ImageNet subsets

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
}
CIFAR100_OWN_NORMALIZATION = ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))

_RESIZE_MODES = ("squash", "crop")


class DatasetNotPreparedError(RuntimeError):
    """A tfds dataset is neither prepared in data_dir nor allowed/able to download."""


def available_datasets() -> tuple[str, ...]:
    """Names accepted by `load_dataset` (plus any path ending in '.npz' and 'tfds:<name>')."""
    return (("digits",) + tuple(_TFDS)
            + tuple(_IMAGENET_PREFIX + k for k in IMAGENET_SUBSETS) + ("npz",))


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


def _is_variable_size(name) -> bool:
    low = str(name).lower()
    return low.startswith(_IMAGENET_PREFIX) or (
        low.split("/")[0] in _TFDS and _TFDS[low.split("/")[0]][3] is not None)


def _resolve_resize(resize) -> str:
    mode = "squash" if resize in (None, "") else str(resize).lower()
    if mode not in _RESIZE_MODES:
        raise ValueError(f"resize must be one of {_RESIZE_MODES} (or None = 'squash'), "
                         f"got {resize!r}")
    return mode


# Datasets whose authors' transform standardizes even when --zca is on (FreD TM/utils.py:84,
# 96 and DDiF TM/utils.py:125, 137: MNIST / FashionMNIST ignore args.zca in the transform,
# while the ZCA block after it still runs): with zca=True they are standardized, then ZCA'd.
_STANDARDIZED_BEFORE_ZCA = ("mnist", "fashion_mnist")


def _resolve_standardize(name, *, zca, normalize, stats):
    """-> (standardize: bool, constants (mean, std) or None = train statistics, kind str)."""
    if normalize is None:
        standardize = (not zca) or _canonical(name) in _STANDARDIZED_BEFORE_ZCA
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
                     stats=None, resize=None) -> str:
    """Short id of the preprocessing `load_dataset` applies with these arguments.

    'zca01-eps0.1'                    ZCA (eps 0.1) on [0, 1] pixels (the authors' --zca)
    'standardize-authors-constants'   (x - mean) / std with the authors' constants
    'standardize-train-stats'         ... with the train split's statistics (digits, npz)
    'standardize-custom-mean..-std..' ... with user constants
    'standardize-<...>+zca-eps0.1'    standardize, then ZCA (normalize=True with zca=True;
                                      not what the authors do)
    'pixels01'                        nothing: [0, 1] pixels
    Variable-size sources (imagenette, imagenet2012:<subset>) append ';resize=squash|crop'.
    Stored in expert-buffer metadata: buffers built with another id are refused.
    """
    standardize, _, kind = _resolve_standardize(name, zca=zca, normalize=normalize, stats=stats)
    eps = f"eps{float(zca_eps):g}"
    if standardize:
        out = f"standardize-{kind}" + (f"+zca-{eps}" if zca else "")
    else:
        out = f"zca01-{eps}" if zca else "pixels01"
    if _is_variable_size(name):
        out += f";resize={_resolve_resize(resize)}"
    return out


# ----------------------------------------------------------------------------- Dataset


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image classification dataset, preprocessed.

    Fields:
      images: (N, H, W, C) float32, preprocessed (see `preprocessing`).
      labels: (N,) int32 in [0, num_classes).
      class_names: tuple of num_classes strings.
      mean, std: (C,) float32, the per-channel standardization that was applied:
        pixels in [0, 1] = images_before_zca * std + mean (the authors' constants, or the
        TRAIN split's statistics for datasets without them; mean = 0, std = 1 when nothing
        was standardized, e.g. with ZCA, which works on [0, 1] pixels like the authors').
      name: dataset name.
      zca: the ZCA fitted on the train split (of [0, 1] pixels by default), or None.
      preprocessing: `preprocessing_id` of the pipeline, e.g. 'zca01-eps0.1' or
        'standardize-authors-constants'.
      shard: None (the whole split), or, in a multi-process run's train split, which rows
        of the global split this process holds (`jaxdd.data.shard.ShardInfo`; images and
        labels are then only those rows; statistics and the ZCA are the global ones).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    mean: np.ndarray
    std: np.ndarray
    name: str
    zca: Optional[ZCA] = None
    preprocessing: str = ""
    shard: Optional[ShardInfo] = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        """(H, W, C)."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def normalize(self, pixels):
        """Map [0, 1] pixels (N, H, W, C) into this dataset's space (normalize, then ZCA)."""
        x = (np.asarray(pixels, np.float32) - self.mean) / self.std
        if self.zca is not None:
            x = self.zca.transform(x)
        return np.asarray(x, np.float32)

    def denormalize(self, images):
        """Map images (N, H, W, C) of this dataset's space back to pixels clipped to [0, 1].

        Inverse ZCA (if any), then * std + mean, then clip. Returns float32 numpy.
        """
        x = np.asarray(images, np.float32)
        if self.zca is not None:
            x = np.asarray(self.zca.inverse(x), np.float32)
        return np.clip(x * self.std + self.mean, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- helpers


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


def _resize_batch(images: np.ndarray, side: int, chunk: int = 2048) -> np.ndarray:
    """Bilinear resize of float images (N, H, W, C) to (N, side, side, C).

    jax.image.resize ('bilinear', half-pixel centers, antialiased when downsampling),
    chunk by chunk to bound memory.
    """
    import jax

    n, h, w, c = images.shape
    if (h, w) == (side, side):
        return images
    out = np.empty((n, side, side, c), np.float32)
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk], np.float32)
        out[start:start + len(block)] = np.asarray(
            jax.image.resize(block, (len(block), side, side, c), method="bilinear")
        )
    return out


def _bilinear_taps(n_in: int, n_out: int):
    """1-D taps of bilinear resampling n_in -> n_out, half-pixel centres, no antialiasing.

    Follows torch.nn.functional.interpolate(mode='bilinear', align_corners=False,
    antialias=False), which is what torchvision's transforms.Resize does to a tensor in the
    authors' versions (torchvision 0.12 for MTT / FreD, 0.16 for DDiF: antialias defaults to
    False for tensors): source = max((i + 0.5) * n_in / n_out - 0.5, 0), the two neighbours
    (the upper one clamped to the edge), linear weights.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = np.clip(src - i0.astype(np.float32), 0.0, 1.0).astype(np.float32)
    return i0, i1, lam


def _resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """One float image (H, W, C) -> (out_h, out_w, C), torch bilinear (see _bilinear_taps)."""
    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    if (h, w) == (out_h, out_w):
        return img
    r0, r1, lr = _bilinear_taps(h, out_h)
    c0, c1, lc = _bilinear_taps(w, out_w)
    rows = img[r0] * (1.0 - lr)[:, None, None] + img[r1] * lr[:, None, None]
    return rows[:, c0] * (1.0 - lc)[None, :, None] + rows[:, c1] * lc[None, :, None]


def _resize_variable(img: np.ndarray, side: int, mode: str) -> np.ndarray:
    """One float [0, 1] image (H, W, C) of any size -> (side, side, C).

    'squash': torchvision Resize((side, side)) -- both sides to `side`, aspect ratio not
      kept (the authors' ImageNet-subset transform: mtt-distillation utils.py:86, 94-101;
      FreD TM/utils.py:145-163; DDiF TM/utils.py:184-202; their CenterCrop after it is a
      no-op).
    'crop': torchvision Resize(side) + CenterCrop(side) -- shorter side to `side`, the longer
      to int(side * long / short), then the centre crop with offsets round((n - side) / 2)
      (FreD ImageNet-abcde/utils.py:180-183, ImageNet-A..E).
    Both resample like the authors' tensor Resize (bilinear, no antialiasing, on float
    pixels; the authors normalize before resizing, which commutes with it).
    """
    h, w = img.shape[:2]
    if mode == "squash":
        return _resize_bilinear(img, side, side)
    if h <= w:
        new_h, new_w = side, int(side * w / h)
    else:
        new_h, new_w = int(side * h / w), side
    out = _resize_bilinear(img, new_h, new_w)
    top = int(round((new_h - side) / 2.0))
    left = int(round((new_w - side) / 2.0))
    return out[top:top + side, left:left + side]


def _channel_stats(x: np.ndarray, chunk: int = 4096, sharded: bool = False):
    """Per-channel mean and (population) std of x (N, H, W, C), float64 accumulation.
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
    """uint8 [0, 255] or float [0, 1] images -> float32 [0, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{where}: images must be uint8 or float in [0, 1], got {images.dtype}")
    images = images.astype(np.float32)
    if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
        raise ValueError(
            f"{where}: float images must lie in [0, 1] (got min {images.min():.3g}, "
            f"max {images.max():.3g}); store uint8 0..255 or rescale."
        )
    return images


def _finalize(name, x_train, y_train, x_test, y_test, class_names, *, resolution,
              standardize, constants, zca, zca_eps, preprocessing, shard=None):
    """Shared tail: resize, standardize (given constants or train stats), ZCA (train fit).
    shard: x_train / y_train are this process's rows (`ShardInfo`): the train statistics
    and the ZCA are fitted collectively over all processes' rows."""
    if resolution is not None:
        x_train = _resize_batch(x_train, int(resolution))
        x_test = _resize_batch(x_test, int(resolution))
    c = x_train.shape[-1]
    if not standardize:
        mean, std = np.zeros(c), np.ones(c)
    elif constants is not None:
        mean, std = (np.asarray(v, np.float64).reshape(-1) for v in constants)
        if mean.shape != (c,) or std.shape != (c,):
            if mean.size == 1 and std.size == 1:
                mean, std = np.broadcast_to(mean, (c,)), np.broadcast_to(std, (c,))
            else:
                raise ValueError(f"{name}: normalization constants for {mean.size} channel(s) "
                                 f"but the images have {c}")
    else:
        mean, std = _channel_stats(x_train, sharded=shard is not None)
        std = np.where(std > 0, std, 1.0)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    if standardize:
        # In place: the float arrays here are our own copies. float32 arithmetic, like
        # torchvision's Normalize (sub_(mean).div_(std) on a float32 tensor).
        x_train = np.ascontiguousarray(x_train, np.float32)
        x_test = np.ascontiguousarray(x_test, np.float32)
        x_train -= mean
        x_train /= std
        x_test -= mean
        x_test /= std
    fitted = None
    if zca:
        fitted = (fit_zca(x_train, eps=zca_eps) if shard is None else
                  fit_zca_sharded(x_train, shard.total, eps=zca_eps))
        x_train = apply_zca_batched(fitted, x_train)
        x_test = apply_zca_batched(fitted, x_test)
    class_names = tuple(str(n) for n in class_names)
    make = lambda x, y, sh=None: Dataset(  # noqa: E731
        images=np.ascontiguousarray(x, np.float32),
        labels=np.asarray(y, np.int32),
        class_names=class_names,
        mean=mean,
        std=std,
        name=name,
        zca=fitted,
        preprocessing=preprocessing,
        shard=sh,
    )
    return make(x_train, y_train, shard), make(x_test, y_test)


# ----------------------------------------------------------------------------- sources


def _load_digits():
    """sklearn digits: 1797 8x8 images, 16 grey levels -> float [0, 1], stratified split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[..., None]
    y = d.target.astype(np.int32)
    tr, te = _stratified_split(y)
    names = tuple(str(int(n)) for n in d.target_names)
    return x[tr], y[tr], x[te], y[te], names


def _load_npz(path):
    """Arrays file; see `load_dataset` for the format."""
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
    if (x_te is None) != (y_te is None):
        raise ValueError(f"{path}: give both test_images and test_labels, or neither")

    def prep(images, labels, what):
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"{path}: {what} must be (N, H, W, C) or (N, H, W), got {images.shape}")
        labels = labels.reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{path}: {what} has {images.shape[0]} images but {labels.shape[0]} labels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: labels must be integers, got {labels.dtype}")
        return _as_float01(images, f"{path} {what}"), labels.astype(np.int32)

    x, y = prep(x, y, "images")
    if x_te is None:
        tr, te = _stratified_split(y)
        x, y, x_te, y_te = x[tr], y[tr], x[te], y[te]
    else:
        x_te, y_te = prep(x_te, y_te, "test_images")
    num_classes = int(max(y.max(initial=-1), y_te.max(initial=-1))) + 1
    if y.size and y.min() < 0 or y_te.size and y_te.min() < 0:
        raise ValueError(f"{path}: labels must be >= 0")
    if names is None:
        names = [str(i) for i in range(num_classes)]
    elif len(names) < num_classes:
        raise ValueError(f"{path}: {len(names)} class_names for labels up to {num_classes - 1}")
    return x, y, x_te, y_te, tuple(names)


def _prepare_hint(tfds_name: str, data_dir) -> str:
    where = str(data_dir) if data_dir is not None else (
        os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    )
    return (
        f"tfds dataset {tfds_name!r} is not prepared (in the array_record format that "
        f"tfds.data_source reads) under data_dir={where!r}, and download=False.\n"
        f"Prepare it once on a machine with internet; tfds needs tensorflow to PREPARE image "
        f"datasets (jaxdd only reads them, without tensorflow):\n"
        f"    pip install tensorflow tensorflow-datasets\n"
        f"    python -c \"import tensorflow_datasets as tfds; "
        f"tfds.data_source('{tfds_name}', download=True)\"\n"
        f"then copy that machine's ~/tensorflow_datasets/{tfds_name.split('/')[0]} folder into "
        f"data_dir (or into $TFDS_DATA_DIR). On a machine with internet and tensorflow, "
        f"load_dataset(..., download=True) does the same."
    )


def _open_tfds(tfds_name, split, data_dir, download, decoders=None):
    """tfds.data_source for one split, failing fast with a clear error when absent."""
    import tensorflow_datasets as tfds

    kw = {} if decoders is None else {"decoders": decoders}
    try:
        return tfds.data_source(
            tfds_name,
            split=split,
            data_dir=None if data_dir is None else str(data_dir),
            download=download,
            # data_source only reads random-access formats; when data_dir is given tfds
            # would otherwise default to TFRECORD and fail with a misleading message.
            builder_kwargs={"file_format": "array_record"},
            **kw,
        )
    except Exception as e:  # tfds raises KeyError / NotImplementedError / ... here
        if download:
            raise DatasetNotPreparedError(
                f"could not download and prepare tfds dataset {tfds_name!r} (split {split!r}) "
                f"into data_dir={data_dir!r}: {type(e).__name__}: {e}\n"
                f"(Preparing needs internet and, for image datasets, tensorflow.)\n"
                + _prepare_hint(tfds_name, data_dir)
            ) from e
        raise DatasetNotPreparedError(
            _prepare_hint(tfds_name, data_dir) + f"\n(tfds said: {type(e).__name__}: {e})"
        ) from e


def _fetch(source, keys):
    """Records for `keys`: batched __getitems__, per-record __getitem__ as a fallback."""
    try:
        return source.__getitems__(keys)
    except (TypeError, AttributeError):
        # tfds.testing.mock_data installs a __getitems__ that is not bound correctly.
        return [source[k] for k in keys]


def _decode_image(img) -> np.ndarray:
    """A record's image: an array, or encoded bytes (SkipDecoding) -> uint8 (H, W, C)."""
    encoded = isinstance(img, (bytes, np.bytes_)) or (
        isinstance(img, np.ndarray) and img.dtype.kind in "SO")
    if encoded:
        import io

        from PIL import Image

        raw = img.item() if isinstance(img, np.ndarray) else bytes(img)
        with Image.open(io.BytesIO(raw)) as pil:
            img = np.asarray(pil.convert("RGB"))  # like torchvision's default_loader
    img = np.asarray(img)
    return img[..., None] if img.ndim == 2 else img


def _read_split(source, *, side: Optional[int], desc: str, mode: str = "squash",
                keys=None, label_map=None, chunk: int = 1024):
    """Records of a tfds data source -> (images (N, H, W, C), int32 labels (N,)).

    side: when set, every image is read as float [0, 1] and resized to side x side
    (`_resize_variable`, mode 'squash' or 'crop'; for variable-size datasets) -> float32;
    otherwise all images must have the same shape -> uint8.
    keys: the record indices to read (default all); label_map: {source label: our label}.
    """
    from tqdm.auto import tqdm

    keys = list(range(len(source))) if keys is None else [int(k) for k in keys]
    n = len(keys)
    if n == 0:
        raise ValueError(f"{desc}: the split is empty")
    img0 = _decode_image(_fetch(source, [keys[0]])[0]["image"])
    if side:
        images = np.empty((n, side, side, img0.shape[-1]), np.float32)
    else:
        images = np.empty((n,) + tuple(img0.shape), np.uint8)
    labels = np.empty((n,), np.int32)
    with tqdm(total=n, desc=f"reading {desc}", unit="img", disable=n < 20000, leave=False) as bar:
        for start in range(0, n, chunk):
            part = keys[start:start + chunk]
            for j, rec in enumerate(_fetch(source, part)):
                img = _decode_image(rec["image"])
                if side:
                    img = _resize_variable(img.astype(np.float32) / np.float32(255.0), side, mode)
                elif img.shape != images.shape[1:]:
                    raise ValueError(
                        f"{desc}: record {part[j]} has shape {img.shape}, expected "
                        f"{images.shape[1:]}; pass resolution=R to resize."
                    )
                images[start + j] = img
                lab = int(np.asarray(rec["label"]))
                labels[start + j] = lab if label_map is None else label_map[lab]
            bar.update(len(part))
    return images, labels


def _load_tfds(tfds_name, train_split, test_split, data_dir, download, side, mode="squash",
               shard=None):
    """shard (index, count): read only that process's train rows (`jaxdd.data.shard`; the
    train labels are scanned first without decoding images) -> the 6th item is the
    ShardInfo (None without a shard)."""
    out = []
    class_names = None
    info_shard = None
    for split in (train_split, test_split):
        keys = None
        if shard is not None and split == train_split:
            _, all_labels, _ = _label_scan(tfds_name, split, data_dir, download)
            k = int(all_labels.max()) + 1
            info_shard = make_shard(all_labels, k, *shard)
            keys = info_shard.rows
        source = _open_tfds(tfds_name, split, data_dir, download)
        info = getattr(source, "dataset_info", None)
        if class_names is None and info is not None:
            try:
                class_names = tuple(info.features["label"].names)
            except Exception:  # pragma: no cover - label feature without names
                class_names = None
        if side is None and info is not None:
            shape = tuple(info.features["image"].shape)
            if any(s is None for s in shape[:2]):
                raise ValueError(
                    f"tfds {tfds_name!r} has variable-size images; pass resolution=R"
                )
        x, y = _read_split(source, side=side, mode=mode, desc=f"{tfds_name}:{split}",
                           keys=keys)
        out += [x, y]
    x_tr, y_tr, x_te, y_te = out
    if class_names is None:
        k = int(max(y_tr.max(), y_te.max())) + 1
        if info_shard is not None:
            k = max(k, len(info_shard.class_counts))
        class_names = tuple(str(i) for i in range(k))
    if shard is None:
        return x_tr, y_tr, x_te, y_te, class_names
    return x_tr, y_tr, x_te, y_te, class_names, info_shard


def _subset_ids(subset: str) -> tuple:
    key = _SUBSET_ALIASES.get(subset.lower(), subset.lower())
    if key not in IMAGENET_SUBSETS:
        raise ValueError(f"unknown ImageNet subset {subset!r}; known: "
                         f"{', '.join(IMAGENET_SUBSETS)} (aliases: {', '.join(_SUBSET_ALIASES)})")
    return IMAGENET_SUBSETS[key]


def _label_scan(tfds_name, split, data_dir, download, chunk=4096):
    """(source, labels (N,), file names (N,) or None) of a split, reading every record
    WITHOUT decoding its image."""
    import tensorflow_datasets as tfds
    from tqdm.auto import tqdm

    fast = _open_tfds(tfds_name, split, data_dir, download,
                      decoders={"image": tfds.decode.SkipDecoding()})
    n = len(fast)
    labels = np.empty((n,), np.int64)
    names = []
    for start in tqdm(range(0, n, chunk), desc=f"scanning {tfds_name}:{split} labels",
                      disable=n < 50000, leave=False):
        recs = _fetch(fast, list(range(start, min(n, start + chunk))))
        labels[start:start + len(recs)] = [int(np.asarray(r["label"])) for r in recs]
        for r in recs:
            f = r.get("file_name") if hasattr(r, "get") else None
            f = np.asarray(f).item() if f is not None else None
            names.append(f.decode() if isinstance(f, bytes) else f)
    if any(f is None for f in names):
        names = None
    return fast, labels, names


def _load_imagenet_subset(subset, data_dir, download, side, mode, shard=None):
    """The authors' ImageNet class subset: ALL ImageNet-1k train images of its 10 classes and
    the ImageNet validation images of those classes (50 each: 500), labels 0..9 in the order
    of the subset's list (mtt-distillation utils.py:103-114). Records are ordered like the
    authors' torchvision ImageNet (an ImageFolder: by class index, then file name) when the
    tfds records carry 'file_name' (imagenet2012 does), else by class, then record index."""
    ids = _subset_ids(subset)
    label_map = {cls: i for i, cls in enumerate(ids)}
    out = []
    class_names = None
    for split in ("train", "validation"):
        source, labels, names = _label_scan(_IMAGENET_TFDS, split, data_dir, download)
        if class_names is None:
            info = getattr(source, "dataset_info", None)
            try:
                all_names = info.features["label"].names
                class_names = tuple(str(all_names[c]) for c in ids)
            except Exception:  # noqa: BLE001 - names are cosmetic
                class_names = tuple(str(c) for c in ids)
        keys = np.flatnonzero(np.isin(labels, ids))
        if keys.size == 0:
            raise ValueError(f"{_IMAGENET_TFDS}:{split} has no image of the classes {ids}")
        second = (lambda k: names[k]) if names is not None else (lambda k: int(k))
        keys = sorted(keys.tolist(), key=lambda k: (int(labels[k]), second(k)))
        if shard is not None and split == "train":  # only this process's rows
            ours = np.asarray([label_map[int(labels[k])] for k in keys], np.int64)
            info_shard = make_shard(ours, len(ids), *shard)
            keys = [keys[i] for i in info_shard.rows]
        out += list(_read_split(source, side=side, mode=mode, keys=keys, label_map=label_map,
                                desc=f"{_IMAGENET_TFDS}:{split}[{subset}]"))
    if shard is None:
        return (*out, class_names)
    return (*out, class_names, info_shard)


def load_dataset(
    name: str,
    *,
    data_dir=None,
    resolution: Optional[int] = None,
    normalize: Optional[bool] = None,
    zca: bool = False,
    zca_eps: float = 0.1,
    path=None,
    download: bool = False,
    stats=None,
    resize: Optional[str] = None,
    shard: Optional[tuple] = None,
) -> tuple[Dataset, Dataset]:
    """Load a dataset and preprocess it like the authors -> (train, test) `Dataset`s.

    Names:
      'digits': scikit-learn's digits, embedded (offline). 8x8x1, 10 classes, pixels
        0..16 -> /16. Deterministic stratified split (seed 0, round(20%) of each class to
        test): train 1438 / test 359 images. No authors' constants exist for it: it is
        standardized with its TRAIN split's per-channel mean / std.
      'mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'svhn_cropped' (alias 'svhn'):
        tfds, the authors' train / test splits and normalization constants.
      'imagenet2012:<subset>' (e.g. 'imagenet2012:imagenette'; subsets: IMAGENET_SUBSETS,
        also DDiF's keys 'nette', 'woof', ... and 'a'..'e'): the authors' ImageNet class
        subsets, read from tfds 'imagenet2012' (which you prepare from the ImageNet
        archives): every train image of the 10 classes, test = the ImageNet validation
        images of those classes (500), labels in the subset's order, 128 x 128 by default.
        The whole train split is scanned once for labels (images skipped undecoded); save
        the result with np.savez and reload it as 'npz' to skip that next time.
      'imagenette' (tfds 'imagenette/160px-v2', fast.ai's Imagenette: 9469 train / 3925
        validation images, a different split of ImageNet images than the authors'), resized
        to 128 x 128; other configs: e.g. 'imagenette/320px-v2'.
      'tfds:<name>' reads any other tfds dataset with 'image'/'label' features and
        'train'/'test' splits.
      tfds data are read with tfds.data_source (array_record format, no tensorflow
      needed) from data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets). Nothing is
      downloaded unless download=True; an absent dataset raises DatasetNotPreparedError at
      once, saying how to prepare it.
      'npz' with path=..., or a name ending in '.npz': a numpy .npz file with
          images       (N, H, W, C) or (N, H, W): uint8 0..255, or float in [0, 1]
          labels       (N,) integers in [0, num_classes)
          test_images, test_labels   optional; if absent, a stratified 80/20 split
                                     (seed 0) of images/labels is made
          class_names  optional (num_classes,) strings
        (write one with np.savez(path, images=..., labels=..., ...)).

    Args:
      data_dir: tfds data directory.
      resolution: side R. Fixed-size datasets are resized (bilinear, antialiased) to R x R.
        Variable-size sources (imagenette, imagenet2012:*) are resized while reading
        (default R = 128, the authors' im_size) as `resize` says.
      resize: variable-size sources only: 'squash' (default; the authors' Resize((R, R)) in
        MTT / FreD TM / DDiF TM: aspect ratio not kept) or 'crop' (shorter side to R, centre
        crop: FreD's ImageNet-A..E code). Bilinear without antialiasing on float pixels, as
        the authors' torchvision Resize on tensors.
      normalize: standardize (x - mean) / std. Default None = the authors' choice: yes
        without ZCA, no with ZCA (except mnist / fashion_mnist, whose authors' transform
        standardizes before the ZCA either way). True with zca=True standardizes before
        ZCA (not the authors' pipeline elsewhere; tagged in `preprocessing`).
      stats: the (mean, std) used to standardize: None / 'auto' (the authors' constants,
        `AUTHORS_NORMALIZATION`, where they exist, else the train split's statistics),
        'authors' (raise if there are none), 'train', or explicit per-channel
        (mean, std) sequences (e.g. CIFAR100_OWN_NORMALIZATION, FreD DC/DM's CIFAR-100).
      zca: fit ZCA whitening (kornia ZCAWhitening semantics, eps=zca_eps) on the whole train
        split -- of [0, 1] pixels unless normalize=True -- and apply it to both splits
        (the authors' --zca: mtt-distillation utils.py:137-165); stored in Dataset.zca.
      path: the .npz file for name 'npz'.
      download: let tfds download and prepare an absent dataset.
      shard: (process_index, process_count) of a multi-process run (see
        `jaxdd.data.shard.process_shard`): the train split keeps only this process's rows
        (row j of class c on process j % process_count) and records them in
        `Dataset.shard`; the train statistics / ZCA are computed collectively (every
        process must call load_dataset with the same arguments). tfds sources read only
        those rows (labels are scanned first); npz files and digits are read whole, then
        cut. The test split is whole on every process. None, or a count of 1: no shard
        (exactly the one-process result).

    Returns:
      (train, test): `Dataset`s with float32 NHWC images and int32 labels;
      `Dataset.preprocessing` = preprocessing_id(name, zca=..., ...).
    """
    key = str(name)
    low = key.lower()
    if shard is not None and int(shard[1]) <= 1:
        shard = None
    if shard is not None:
        shard = (int(shard[0]), int(shard[1]))
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard {shard}: expected (process_index, process_count)")
    mode = _resolve_resize(resize)
    standardize, constants, _ = _resolve_standardize(key, zca=zca, normalize=normalize,
                                                     stats=stats)
    if path is not None or low == "npz" or low.endswith(".npz"):
        p = path if path is not None else (None if low == "npz" else key)
        if p is None:
            raise ValueError("load_dataset('npz') needs path='file.npz'")
        src = _load_npz(p)
        ds_name = f"npz:{pathlib.Path(str(p)).stem}"
    elif low == "digits":
        src = _load_digits()
        ds_name = "digits"
    elif low.startswith("tfds:"):
        tfds_name = key[len("tfds:"):]
        src = _load_tfds(tfds_name, "train", "test", data_dir, download, resolution, mode,
                         shard)
        ds_name = tfds_name
    elif low.startswith(_IMAGENET_PREFIX):
        subset = key[len(_IMAGENET_PREFIX):]
        side = int(resolution) if resolution is not None else _IMAGENET_SIDE
        src = _load_imagenet_subset(subset, data_dir, download, side, mode, shard)
        ds_name = low
        resolution = None  # already resized while reading
    elif low.split("/")[0] in _TFDS:
        base = low.split("/")[0]
        tfds_name, tr_split, te_split, default_side = _TFDS[base]
        if "/" in low:  # explicit config, e.g. imagenette/320px-v2
            tfds_name = key
        side = None
        if default_side is not None:  # variable-size images: resized while reading
            side = int(resolution) if resolution is not None else default_side
            resolution = None
        src = _load_tfds(tfds_name, tr_split, te_split, data_dir, download, side, mode,
                         shard)
        ds_name = base if "/" not in low else key
    else:
        raise ValueError(
            f"Unknown dataset {name!r}. Available: {', '.join(available_datasets())}, "
            f"a path ending in '.npz', or 'tfds:<tfds name>'."
        )
    info_shard = None
    if shard is not None:
        if len(src) == 6:  # read as a shard already
            *src, info_shard = src
        else:  # read whole (npz, digits): keep this process's rows
            x_tr, y_tr = src[0], src[1]
            k = max(len(src[4]), int(y_tr.max(initial=-1)) + 1)
            info_shard = make_shard(y_tr, k, *shard)
            src = (x_tr[info_shard.rows], y_tr[info_shard.rows]) + tuple(src[2:])
    x_tr, y_tr, x_te, y_te, class_names = src
    if x_tr.dtype == np.uint8:
        x_tr = _as_float01(x_tr, ds_name)
        x_te = _as_float01(x_te, ds_name)
    return _finalize(
        ds_name, x_tr, y_tr, x_te, y_te, class_names,
        resolution=resolution, standardize=standardize, constants=constants, zca=zca,
        zca_eps=zca_eps,
        preprocessing=preprocessing_id(key, zca=zca, zca_eps=zca_eps, normalize=normalize,
                                       stats=stats, resize=resize),
        shard=info_shard,
    )
