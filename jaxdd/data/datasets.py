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

This module holds `Dataset`, `load_dataset` (which source to read, then the shared tail:
resize, standardize, ZCA) and the ImageNet-subset reader. The pieces live beside it:
`catalog` (the names known), `arrays` (digits, npz), `tfds_reader` (tfds sources),
`resize`, `preprocessing` (normalization constants, `preprocessing_id`), `zca`, `shard`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
from typing import Optional

import numpy as np

from jaxdd.data.arrays import _load_digits, _load_npz
from jaxdd.data.catalog import (IMAGENET_SUBSETS, _EMBEDDED,
                                _IMAGENET_PREFIX, _IMAGENET_SIDE, _PREPARED, _TFDS, _TFDS_MEDIA,
                                _subset_ids, available_datasets, modality_of)
from jaxdd.data.preprocessing import (AUTHORS_NORMALIZATION, CIFAR100_OWN_NORMALIZATION,
                                      _as_float01, _channel_stats, _resolve_standardize,
                                      authors_normalization, preprocessing_id)
from jaxdd.data.resize import _check_modality, _resize_batch, _resize_spatial, _resolve_resize
from jaxdd.data.shard import ShardInfo, make_shard
from jaxdd.data.tfds_reader import (DatasetNotPreparedError, _label_scan, _load_tfds,
                                    _read_split)
from jaxdd.data.zca import ZCA, apply_zca_batched, fit_zca, fit_zca_sharded

__all__ = [
    "AUTHORS_NORMALIZATION",
    "CIFAR100_OWN_NORMALIZATION",
    "IMAGENET_SUBSETS",
    "Dataset",
    "DatasetNotPreparedError",
    "authors_normalization",
    "available_datasets",
    "embedded_sha256",
    "load_dataset",
    "preprocessing_id",
]


# ----------------------------------------------------------------------------- Dataset


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a classification dataset (images, audio, video or voxels), preprocessed.

    Fields:
      images: (N, *grid, C) float32, preprocessed (see `preprocessing`): (N, H, W, C)
        images, (N, F, T, 1) audio spectrograms, (N, T, H, W, C) video, (N, D, H, W, 1)
        voxels (`modality`). The name stays `images` for every modality.
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
      modality: 'image' (default), 'audio', 'video' or 'voxel' (`catalog.MODALITIES`).
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
    modality: str = "image"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        """images.shape[1:]: (H, W, C) for images, (*grid, C) for any modality."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def normalize(self, pixels):
        """Map [0, 1] pixels (N, *grid, C) into this dataset's space (normalize, then ZCA)."""
        x = (np.asarray(pixels, np.float32) - self.mean) / self.std
        if self.zca is not None:
            x = self.zca.transform(x)
        return np.asarray(x, np.float32)

    def denormalize(self, images):
        """Map images (N, *grid, C) of this dataset's space back to pixels clipped to [0, 1].

        Inverse ZCA (if any), then * std + mean, then clip. Returns float32 numpy.
        """
        x = np.asarray(images, np.float32)
        if self.zca is not None:
            x = np.asarray(self.zca.inverse(x), np.float32)
        return np.clip(x * self.std + self.mean, 0.0, 1.0).astype(np.float32)


def _finalize(name, x_train, y_train, x_test, y_test, class_names, *, resolution,
              standardize, constants, zca, zca_eps, preprocessing, shard=None,
              modality="image"):
    """Shared tail: resize, standardize (given constants or train stats), ZCA (train fit).
    shard: x_train / y_train are this process's rows (`ShardInfo`): the train statistics
    and the ZCA are fitted collectively over all processes' rows."""
    _check_modality(name, modality, x_train)
    _check_modality(f"{name} (test split)", modality, x_test)
    if zca and modality != "image":
        raise ValueError(
            f"{name}: zca=True on {modality} data. ZCA whitening is an image preprocessing "
            f"(the authors never use it on audio, video or voxels); set zca=False.")
    if resolution is not None:
        x_train = _resize_spatial(name, modality, x_train, int(resolution))
        x_test = _resize_spatial(name, modality, x_test, int(resolution))
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
        modality=modality,
    )
    return make(x_train, y_train, shard), make(x_test, y_test)


# ----------------------------------------------------------------------------- sources


# tfds name (train / validation splits); tests swap it on this module, which reads it
_IMAGENET_TFDS = "imagenet2012"


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


_EMBEDDED_SHA: dict = {}


def embedded_sha256(name) -> Optional[str]:
    """sha256 (hex) of an embedded source's arrays as generated (train / test images and
    labels, before any preprocessing): the identity of data that ship as code ('digits',
    'digits_video', 'digits_voxel', 'synth_speech'), so that experts or runs made with
    another version of a generator are other data. None for every other name."""
    low = str(name or "").strip().lower()
    if low != "digits" and low not in _EMBEDDED:
        return None
    if low not in _EMBEDDED_SHA:
        if low == "digits":
            src = _load_digits()
        else:
            from jaxdd.data.embedded import load_embedded
            src = load_embedded(low)
        h = hashlib.sha256()
        for a in src[:4]:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        _EMBEDDED_SHA[low] = h.hexdigest()
    return _EMBEDDED_SHA[low]


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
    frames: Optional[int] = None,
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
      Other modalities (`Dataset.modality`; arrays (N, *grid, C)):
        'digits_video' (N, 8, 16, 16, 3), 'digits_voxel' (N, 16, 16, 16, 1): the digits
        moved through frames / extruded into volumes; 'synth_speech' (N, 32, 32, 1): 8
        classes of synthetic log-mel spectrograms. Embedded, offline (`jaxdd.data.embedded`).
        'miniucf' (video: tfds 'ucf101', the authors' 50 MiniUCF classes, `frames`=16
        frames, resolution = frame side, 112), 'mini_speech_commands' and 'spoken_digit'
        (audio: log-magnitude STFT spectrograms, resolution = side, 64): `jaxdd.data.media`.
        'modelnet10', 'shapenet', '3dmnist' (voxels): <data_dir>/<name>.npz made once by
        launch/prepare_data.py (`jaxdd.data.prepare_voxels`); not standardized by default
        (the authors feed raw voxels).
      'tfds:<name>' reads any other tfds dataset with 'image'/'label' features and
        'train'/'test' splits.
      tfds data are read with tfds.data_source (array_record format, no tensorflow
      needed) from data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets). Nothing is
      downloaded unless download=True; an absent dataset raises DatasetNotPreparedError at
      once, saying how to prepare it.
      'npz' with path=..., or a name ending in '.npz': a numpy .npz file with
          images       (N, H, W, C) or (N, H, W) images, or 5-D (N, T, H, W, C) video /
                       (N, D, H, W, 1) voxels: uint8 0..255, bool (occupancy), or
                       float in [0, 1]
          modality     optional string ('image', 'audio', 'video', 'voxel'); without it
                       rank 4 -> image, rank 5 with C == 1 -> voxel, other rank 5 -> video
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
      frames: 'miniucf' only: frames sampled per clip (default 16, the authors').
      shard: (process_index, process_count) of a multi-process run (see
        `jaxdd.data.shard.process_shard`): the train split keeps only this process's rows
        (row j of class c on process j % process_count) and records them in
        `Dataset.shard`; the train statistics / ZCA are computed collectively (every
        process must call load_dataset with the same arguments). tfds sources read only
        those rows (labels are scanned first); npz files and digits are read whole, then
        cut. The test split is whole on every process. None, or a count of 1: no shard
        (exactly the one-process result).

    Returns:
      (train, test): `Dataset`s with float32 (N, *grid, C) arrays and int32 labels;
      `Dataset.preprocessing` = preprocessing_id(name, zca=..., ...); `Dataset.modality`.
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
    modality = modality_of(key)
    base = low.split("/")[0]
    if frames is not None and base != "miniucf":
        raise ValueError(f"frames={frames} applies to 'miniucf' only, not {name!r}")
    if path is not None or low == "npz" or low.endswith(".npz"):
        p = path if path is not None else (None if low == "npz" else key)
        if p is None:
            raise ValueError("load_dataset('npz') needs path='file.npz'")
        *src, modality = _load_npz(p)
        ds_name = f"npz:{pathlib.Path(str(p)).stem}"
    elif low == "digits":
        src = _load_digits()
        ds_name = "digits"
    elif low in _EMBEDDED:
        from jaxdd.data.embedded import load_embedded
        src = load_embedded(low)
        ds_name = low
    elif base in _TFDS_MEDIA:
        from jaxdd.data.media import load_media
        src = load_media(key, data_dir=data_dir, download=download, side=resolution,
                         frames=frames)
        ds_name = base
        resolution = None  # resampled while reading
    elif low in _PREPARED:
        from jaxdd.data.prepare_voxels import load_prepared
        src = load_prepared(low, data_dir)
        ds_name = low
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
    if x_tr.dtype in (np.uint8, np.bool_):
        x_tr = _as_float01(x_tr, ds_name)
        x_te = _as_float01(x_te, ds_name)
    return _finalize(
        ds_name, x_tr, y_tr, x_te, y_te, class_names,
        resolution=resolution, standardize=standardize, constants=constants, zca=zca,
        zca_eps=zca_eps,
        preprocessing=preprocessing_id(key, zca=zca, zca_eps=zca_eps, normalize=normalize,
                                       stats=stats, resize=resize),
        shard=info_shard, modality=modality,
    )
