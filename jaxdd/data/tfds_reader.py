"""Reading tfds datasets with tfds.data_source (array_record, no tensorflow needed): opening
a split (or saying how to prepare it), decoding records, scanning labels, and reading a
split -- whole, or one process's shard of the train split -- into numpy arrays.
Part of :mod:`jaxdd.data.datasets`.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from jaxdd.data.resize import _resize_variable
from jaxdd.data.shard import make_shard


class DatasetNotPreparedError(RuntimeError):
    """A tfds dataset is neither prepared in data_dir nor allowed/able to download."""


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
