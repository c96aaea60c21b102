"""Dataset sources (embedded digits, tfds, npz arrays) and preprocessing (resize, normalize, ZCA).

Pipeline of `load_dataset` for every source:

    pixels in [0, 1] (float32, NHWC)
      -> optional resize to (resolution, resolution)        (bilinear)
      -> per-channel mean / std computed on TRAIN pixels     (applied to train and test)
      -> optional ZCA fitted on the whole normalized TRAIN set (applied to train and test)

Datasets live on the host as numpy arrays; move batches to devices where they are used.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Optional, Sequence

import numpy as np

from jaxdd.data.zca import ZCA, apply_zca_batched, fit_zca

__all__ = [
    "Dataset",
    "DatasetNotPreparedError",
    "available_datasets",
    "load_dataset",
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
    # Imagenette-128 as in DDiF / FreD: shorter side resized to 128 then a 128x128 center
    # crop (the authors' torchvision Resize(128) + CenterCrop(128)). The 160px variant of
    # imagenette2 is the smallest download whose shorter side is >= 128.
    "imagenette": ("imagenette/160px-v2", "train", "validation", 128),
}


class DatasetNotPreparedError(RuntimeError):
    """A tfds dataset is neither prepared in data_dir nor allowed/able to download."""


def available_datasets() -> tuple[str, ...]:
    """Names accepted by `load_dataset` (plus any path ending in '.npz' and 'tfds:<name>')."""
    return ("digits",) + tuple(_TFDS) + ("npz",)


# ----------------------------------------------------------------------------- Dataset


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image classification dataset, preprocessed.

    Fields:
      images: (N, H, W, C) float32, normalized (and ZCA-whitened when zca is set).
      labels: (N,) int32 in [0, num_classes).
      class_names: tuple of num_classes strings.
      mean, std: (C,) float32, the per-channel normalization that was applied:
        pixels in [0, 1] = images_before_zca * std + mean (computed on the TRAIN split's
        [0, 1] pixels; mean = 0, std = 1 when loaded with normalize=False).
      name: dataset name.
      zca: the ZCA fitted on the normalized train split, or None.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    mean: np.ndarray
    std: np.ndarray
    name: str
    zca: Optional[ZCA] = None

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


def _resize_crop_uint8(img: np.ndarray, side: int) -> np.ndarray:
    """One uint8 image (H, W, C) -> (side, side, C): shorter side to `side`, center crop.

    PIL bilinear (antialiased when shrinking), like torchvision Resize + CenterCrop.
    """
    from PIL import Image

    h, w, c = img.shape
    scale = side / min(h, w)
    new_h, new_w = max(side, int(round(h * scale))), max(side, int(round(w * scale)))
    pil = Image.fromarray(img[..., 0] if c == 1 else img)
    pil = pil.resize((new_w, new_h), Image.BILINEAR)
    arr = np.asarray(pil)
    if arr.ndim == 2:
        arr = arr[..., None]
    top, left = (new_h - side) // 2, (new_w - side) // 2
    return arr[top:top + side, left:left + side]


def _channel_stats(x: np.ndarray, chunk: int = 4096):
    """Per-channel mean and (population) std of x (N, H, W, C), float64 accumulation."""
    c = x.shape[-1]
    s, ss, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, x.shape[0], chunk):
        b = np.asarray(x[start:start + chunk], np.float64).reshape(-1, c)
        s += b.sum(0)
        ss += (b * b).sum(0)
        count += b.shape[0]
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
              normalize, zca, zca_eps, stats):
    """Shared tail: resize, normalize (train stats), ZCA (train fit) -> (train, test)."""
    if resolution is not None:
        x_train = _resize_batch(x_train, int(resolution))
        x_test = _resize_batch(x_test, int(resolution))
    c = x_train.shape[-1]
    if stats is not None:
        mean, std = (np.broadcast_to(np.asarray(v, np.float64), (c,)) for v in stats)
    elif normalize:
        mean, std = _channel_stats(x_train)
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = np.zeros(c), np.ones(c)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    if normalize or stats is not None:
        # In place: the float arrays here are our own copies.
        x_train = np.ascontiguousarray(x_train, np.float32)
        x_test = np.ascontiguousarray(x_test, np.float32)
        x_train -= mean
        x_train /= std
        x_test -= mean
        x_test /= std
    fitted = None
    if zca:
        fitted = fit_zca(x_train, eps=zca_eps)
        x_train = apply_zca_batched(fitted, x_train)
        x_test = apply_zca_batched(fitted, x_test)
    class_names = tuple(str(n) for n in class_names)
    make = lambda x, y: Dataset(  # noqa: E731
        images=np.ascontiguousarray(x, np.float32),
        labels=np.asarray(y, np.int32),
        class_names=class_names,
        mean=mean,
        std=std,
        name=name,
        zca=fitted,
    )
    return make(x_train, y_train), make(x_test, y_test)


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


def _open_tfds(tfds_name, split, data_dir, download):
    """tfds.data_source for one split, failing fast with a clear error when absent."""
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(
            tfds_name,
            split=split,
            data_dir=None if data_dir is None else str(data_dir),
            download=download,
            # data_source only reads random-access formats; when data_dir is given tfds
            # would otherwise default to TFRECORD and fail with a misleading message.
            builder_kwargs={"file_format": "array_record"},
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


def _read_split(source, *, side: Optional[int], desc: str, chunk: int = 1024):
    """All records of a tfds data source -> (uint8 images (N, H, W, C), int32 labels (N,)).

    side: when set, every image is resized (shorter side) + center cropped to side x side
    (for variable-size datasets); otherwise all images must have the same shape.
    """
    from tqdm.auto import tqdm

    n = len(source)
    if n == 0:
        raise ValueError(f"{desc}: the split is empty")
    first = _fetch(source, [0])[0]
    img0 = np.asarray(first["image"])
    if img0.ndim == 2:
        img0 = img0[..., None]
    shape = (side, side, img0.shape[-1]) if side else img0.shape
    images = np.empty((n,) + tuple(shape), np.uint8)
    labels = np.empty((n,), np.int32)
    with tqdm(total=n, desc=f"reading {desc}", unit="img", disable=n < 20000, leave=False) as bar:
        for start in range(0, n, chunk):
            keys = list(range(start, min(n, start + chunk)))
            for k, rec in zip(keys, _fetch(source, keys)):
                img = np.asarray(rec["image"])
                if img.ndim == 2:
                    img = img[..., None]
                if side:
                    img = _resize_crop_uint8(img, side)
                elif img.shape != images.shape[1:]:
                    raise ValueError(
                        f"{desc}: record {k} has shape {img.shape}, expected "
                        f"{images.shape[1:]}; pass resolution=R to resize + crop."
                    )
                images[k] = img
                labels[k] = int(np.asarray(rec["label"]))
            bar.update(len(keys))
    return images, labels


def _load_tfds(tfds_name, train_split, test_split, data_dir, download, side):
    out = []
    class_names = None
    for split in (train_split, test_split):
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
        x, y = _read_split(source, side=side, desc=f"{tfds_name}:{split}")
        out += [x, y]
    x_tr, y_tr, x_te, y_te = out
    if class_names is None:
        k = int(max(y_tr.max(), y_te.max())) + 1
        class_names = tuple(str(i) for i in range(k))
    return x_tr, y_tr, x_te, y_te, class_names


# ----------------------------------------------------------------------------- entry point


def load_dataset(
    name: str,
    *,
    data_dir=None,
    resolution: Optional[int] = None,
    normalize: bool = True,
    zca: bool = False,
    zca_eps: float = 0.1,
    path=None,
    download: bool = False,
    stats: Optional[Sequence] = None,
) -> tuple[Dataset, Dataset]:
    """Load a dataset and preprocess it -> (train, test) `Dataset`s.

    Names:
      'digits': scikit-learn's digits, embedded (offline). 8x8x1, 10 classes, pixels
        0..16 -> /16. Deterministic stratified split (seed 0, round(20%) of each class to
        test): train 1438 / test 359 images.
      'mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'svhn_cropped' (alias 'svhn'),
        'imagenette' (tfds 'imagenette/160px-v2', shorter side -> 128, 128x128 center crop;
        test = tfds 'validation'). Other imagenette configs: e.g. 'imagenette/320px-v2'.
        'tfds:<name>' reads any other tfds dataset with 'image'/'label' features and
        'train'/'test' splits. Read with tfds.data_source (array_record format, no
        tensorflow needed) from data_dir (default $TFDS_DATA_DIR or
        ~/tensorflow_datasets). Nothing is downloaded unless download=True; an absent
        dataset raises DatasetNotPreparedError at once, saying how to prepare it.
      'npz' with path=..., or a name ending in '.npz': a numpy .npz file with
          images       (N, H, W, C) or (N, H, W): uint8 0..255, or float in [0, 1]
          labels       (N,) integers in [0, num_classes)
          test_images, test_labels   optional; if absent, a stratified 80/20 split
                                     (seed 0) of images/labels is made
          class_names  optional (num_classes,) strings
        (write one with np.savez(path, images=..., labels=..., ...)).

    Args:
      data_dir: tfds data directory.
      resolution: side R: images are resized (bilinear) to R x R. Variable-size datasets
        (imagenette) are resized on the shorter side and center-cropped instead.
      normalize: subtract the per-channel mean and divide by the per-channel std of the
        train split's [0, 1] pixels (both splits).
      zca: fit ZCA whitening (kornia semantics, eps=zca_eps) on the whole normalized train
        split and apply it to both splits; stored in Dataset.zca.
      path: the .npz file for name 'npz'.
      download: let tfds download and prepare an absent dataset.
      stats: optional (mean, std) per-channel constants to use instead of the train
        statistics (e.g. the fixed constants of the authors' PyTorch code).

    Returns:
      (train, test): `Dataset`s with float32 NHWC images and int32 labels.
    """
    key = str(name)
    low = key.lower()
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
        src = _load_tfds(tfds_name, "train", "test", data_dir, download, resolution)
        ds_name = tfds_name
    elif low.split("/")[0] in _TFDS:
        base = low.split("/")[0]
        tfds_name, tr_split, te_split, default_side = _TFDS[base]
        if "/" in low:  # explicit config, e.g. imagenette/320px-v2
            tfds_name = key
        side = None
        if default_side is not None:  # variable-size images: resize + crop while reading
            side = int(resolution) if resolution is not None else default_side
        src = _load_tfds(tfds_name, tr_split, te_split, data_dir, download, side)
        ds_name = base if "/" not in low else key
    else:
        raise ValueError(
            f"Unknown dataset {name!r}. Available: {', '.join(available_datasets())}, "
            f"a path ending in '.npz', or 'tfds:<tfds name>'."
        )
    x_tr, y_tr, x_te, y_te, class_names = src
    if x_tr.dtype == np.uint8:
        x_tr = _as_float01(x_tr, ds_name)
        x_te = _as_float01(x_te, ds_name)
    return _finalize(
        ds_name, x_tr, y_tr, x_te, y_te, class_names,
        resolution=resolution, normalize=normalize, zca=zca, zca_eps=zca_eps, stats=stats,
    )
