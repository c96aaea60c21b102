"""Which experts a buffer config asks for: the metadata an expert records and must match.

`expert_metadata` is what `build_buffer` stores with each expert; `expected_metadata` the
fields a stored expert must match for a buffer config; `check_metadata` compares them with
`jaxdd.fingerprint.diff` (the module that also decides whether a workdir resumes the same
run): model overrides compared whole except `fingerprint.BUFFER_IGNORED` (conv_impl,
compute_dtype), an npz dataset by the sha256 of its file (`dataset.sha256`; experts stored
before hashes were recorded: by its path).
"""
from __future__ import annotations

import datetime
from typing import Optional

import jax
import numpy as np

from jaxdd import fingerprint
from jaxdd.experts.errors import ExpertMismatchError
from jaxdd.experts.training import DEFAULT_DSA, _images_labels, _is_typed_key

__all__ = ["expected_metadata", "check_metadata", "expert_metadata"]


def _cfg_get(cfg, name, default=None):
    try:
        v = cfg.get(name, default) if hasattr(cfg, "get") else getattr(cfg, name, default)
    except (AttributeError, KeyError):
        v = default
    return default if v is None and default is not None else v


def _model_overrides(cfg) -> dict:
    m = _cfg_get(cfg, "model")
    ov = _cfg_get(m, "overrides") if m is not None else None
    return dict(ov.to_dict() if hasattr(ov, "to_dict") else (ov or {}))


def _identity_overrides(ov: dict) -> dict:
    return {k: v for k, v in ov.items()
            if not fingerprint.matches(f"model.overrides.{k}", fingerprint.BUFFER_IGNORED)}


def _dsa_name(s):
    return "none" if s in (None, "", "none") else str(s)


def _dataset_preprocessing(d) -> str:
    """``jaxdd.data.preprocessing_id`` of a config's dataset block (name, zca, zca_eps and the
    optional normalize / stats / resize fields)."""
    from jaxdd.data import preprocessing_id

    stats = _cfg_get(d, "stats")
    if stats is not None and hasattr(stats, "to_dict"):
        stats = stats.to_dict()
    return preprocessing_id(
        str(d.name), zca=bool(_cfg_get(d, "zca", False)),
        zca_eps=float(_cfg_get(d, "zca_eps", 0.1)), normalize=_cfg_get(d, "normalize"),
        stats=stats, resize=_cfg_get(d, "resize"))


def _resolution(d):
    return None if _cfg_get(d, "resolution") is None else int(d.resolution)


def expected_metadata(cfg, *, strict: bool = False) -> dict:
    """Fields a stored expert must match for the buffer config ``cfg``.

    Default (loading for TM): dataset (name, resolution, zca, zca_eps, preprocessing, and
    sha256 for an npz file), model (name, overrides except conv_impl / compute_dtype),
    lr_teacher, batch_size, dsa_strategy.
    'dataset.preprocessing' is ``jaxdd.data.preprocessing_id`` of the dataset block (e.g.
    'zca01-eps0.1', 'standardize-authors-constants'): buffers built with other inputs --
    including every buffer built before jaxdd followed the authors' preprocessing, which
    lacks the field -- are refused (`check_metadata` says how to rebuild them).
    'dataset.sha256' (npz files, `jaxdd.fingerprint.data_sha256`): the file's content; when
    the stored expert records it too, it is compared instead of the path.
    ``strict`` (build_buffer, deciding whether to reuse an expert) adds epochs,
    record_epochs and seed. (Which epochs were recorded is checked at load time.)
    """
    d = cfg.dataset
    zca = bool(_cfg_get(d, "zca", False))
    exp = {
        "dataset": {
            "name": str(d.name),
            "resolution": _resolution(d),
            "zca": zca,
            "preprocessing": _dataset_preprocessing(d),
        },
        "model": {"name": str(cfg.model.name),
                  "overrides": _identity_overrides(_model_overrides(cfg))},
        "lr_teacher": float(cfg.lr_teacher),
        "batch_size": int(_cfg_get(cfg, "batch_size", 256)),
        "dsa_strategy": _dsa_name(_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA)),
    }
    if zca:
        exp["dataset"]["zca_eps"] = float(_cfg_get(d, "zca_eps", 0.1))
    if _cfg_get(d, "frames") is not None:  # video clips of another length: other data
        exp["dataset"]["frames"] = int(d.frames)
    sha = fingerprint.data_sha256(d)
    if sha is not None:
        exp["dataset"]["sha256"] = sha
    if strict:
        epochs = int(cfg.epochs)
        rec = _cfg_get(cfg, "record_epochs")
        exp["epochs"] = epochs
        exp["record_epochs"] = epochs if rec is None else int(rec)
        exp["seed"] = int(_cfg_get(cfg, "seed", 0))
    return exp


_PREPROCESSING_HELP = {
    "zca01": "ZCA (kornia semantics) fitted on [0, 1] pixels, no mean/std, as the authors' --zca",
    "standardize-authors-constants": "(x - mean) / std with the authors' per-dataset constants",
    "standardize-train-stats": "(x - mean) / std with the train split's statistics (datasets "
                               "without authors' constants)",
    "pixels01": "[0, 1] pixels",
}


def _show(v):
    return fingerprint.ABSENT if v is fingerprint.ABSENT else repr(v)


def check_metadata(meta: dict, expected: Optional[dict], *, where: str = "expert",
                   buffer_dir=None, hint: Optional[str] = None) -> None:
    """Raise ExpertMismatchError if ``meta`` differs from ``expected`` on any of its fields.

    Only the (nested) fields present in ``expected`` are compared, after a JSON round trip
    (tuples equal lists) (`jaxdd.fingerprint.diff`); 'model.overrides' must match exactly
    (except conv_impl and compute_dtype, `fingerprint.BUFFER_IGNORED`); an npz dataset is
    compared by content when both record 'dataset.sha256', else by path.
    The message lists every differing field. When the input preprocessing differs
    ('dataset.preprocessing', e.g. a buffer built before jaxdd followed the authors' ZCA /
    normalization, which has no such field), it also says why the experts cannot be reused
    and how to rebuild them: delete ``buffer_dir`` (or use another) and run ``hint`` (the
    build command, `build_command`). When the data file's content differs, it names the
    file and both hashes.
    """
    if not expected:
        return
    blocking, _ = fingerprint.diff(meta, expected, ignored=fingerprint.BUFFER_IGNORED,
                                   only_expected=True, whole=fingerprint.BUFFER_WHOLE)
    if not blocking:
        return
    diffs = [f"  {k}: stored {_show(va)}, expected {_show(vb)}" for k, va, vb in blocking]
    msg = f"{where} was built with different settings:\n" + "\n".join(diffs)
    where_dir = buffer_dir if buffer_dir is not None else "<buffer_dir>"
    rebuild = hint or (f"python launch/buffer.py --config=configs/buffer.py:<variant> "
                       f"--buffer_dir={where_dir}")
    fields = [k for k, _, _ in blocking]
    changed = fingerprint.content_change(blocking)
    if "dataset.preprocessing" in fields:
        got = ((meta or {}).get("dataset") or {}).get("preprocessing")
        want = ((expected or {}).get("dataset") or {}).get("preprocessing")
        why = ("stored <absent>: the buffer predates preprocessing metadata, i.e. it was "
               "built when jaxdd standardized every dataset with its train-split mean/std "
               "and fitted ZCA after that standardization (not the authors' pipeline)"
               if got is None else f"stored {got!r}")
        msg += (f"\nThe experts in {where_dir} were trained on differently preprocessed "
                f"images ({why}; expected {want!r}: "
                f"{_PREPROCESSING_HELP.get(str(want).split(';')[0].split('-eps')[0], want)}). "
                f"Trajectories only fit the inputs they were trained on, so they cannot be "
                f"reused. Delete the stale experts (rm -r {where_dir}) or choose another "
                f"buffer_dir, then rebuild them:\n  " + rebuild)
    elif changed is not None:
        data = (expected or {}).get("dataset") or {}
        msg += (f"\nThe data file {fingerprint.data_file(data)} is not the data the experts "
                f"in {where_dir} were trained on: its content (sha256 {changed[1]}) differs "
                f"from the one they record (sha256 {changed[0]}; data are identified by "
                f"content, not by path). Trajectories only fit the images they were trained "
                f"on. Put the original file back (any path will do), or delete the stale "
                f"experts (rm -r {where_dir}) or choose another buffer_dir, then rebuild "
                f"them:\n  " + rebuild)
    else:
        msg += "\nUse another buffer_dir for these settings, or delete the stale experts."
        if hint:
            msg += f" Build command:\n  {hint}"
    raise ExpertMismatchError(msg)


def _version():
    import jaxdd
    return str(getattr(jaxdd, "__version__", "unknown"))


def expert_metadata(cfg, i, *, key, test_acc, hist, seconds, num_params, train,
                    record) -> dict:
    """The metadata `build_buffer` stores with expert ``i`` of the buffer config ``cfg``
    (a superset of `expected_metadata(cfg, strict=True)`)."""
    d = cfg.dataset
    x, _ = _images_labels(train)
    meta = {
        "expert": int(i),
        "dataset": {
            "name": str(d.name),
            "resolution": _resolution(d),
            "preprocessing": _dataset_preprocessing(d),
            "zca": bool(_cfg_get(d, "zca", False)),
            "zca_eps": float(_cfg_get(d, "zca_eps", 0.1)),
            "image_shape": list(x.shape[1:]),
            "num_train": int(x.shape[0]),
            "num_classes": int(train.num_classes) if hasattr(train, "num_classes") else None,
        },
        "model": {"name": str(cfg.model.name), "overrides": _model_overrides(cfg),
                  "num_params": int(num_params)},
        "epochs": int(cfg.epochs),
        "record_epochs": int(record),
        "lr_teacher": float(cfg.lr_teacher),
        "batch_size": int(_cfg_get(cfg, "batch_size", 256)),
        "dsa_strategy": _dsa_name(_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA)),
        "optimizer": "sgd (constant lr, momentum 0, weight decay 0), cross-entropy",
        "seed": int(_cfg_get(cfg, "seed", 0)),
        "key": np.asarray(jax.random.key_data(key) if _is_typed_key(key) else key).tolist(),
        "test_acc": float(test_acc),
        "test_acc_per_epoch": [float(a) for a in hist],
        "train_seconds": float(seconds),
        "jaxdd_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    sha = fingerprint.data_sha256(d)
    if sha is not None:
        meta["dataset"]["sha256"] = sha
    return meta
