"""Sameness, decided once: is this the same run, the same buffer, the same data?

Two questions get the same answer machinery:

* a resumed workdir: the run's config now vs its config.json (`jaxdd.workdir`);
* a stored expert: its metadata vs what the buffer config asks for (`jaxdd.experts`).

Both sides are nested dicts (JSON). `flatten` turns one into {dotted field: leaf} (an empty
dict is a leaf, ``{}``); `diff` lists the fields whose leaves differ, split into those that
block and those a use declares harmless. The declared lists, one per use:

    RUN_RESUMABLE   a resumed run may change these (how long it goes, how often it logs /
                    checkpoints / evaluates, how it shows progress): recorded, not refused
    BUFFER_IGNORED  how a layer computes, not which function it is: never compared
    BUFFER_WHOLE    compared as a whole (an extra key on either side is a difference);
                    elsewhere an expert is compared on the fields the buffer config names

Data are identified by CONTENT when they come from a file (an npz dataset: a name ending in
'.npz', or 'npz' with a ``path``): `data_sha256` is the sha256 of the file's bytes (streamed;
cached per (path, size, mtime) in the process), recorded as ``dataset.sha256`` in the
workdir identity (config.json) and in every expert's metadata. When BOTH sides record it
(`CONTENT`), the hash is compared and the path is not (a moved file with the same bytes is
the same data: for a run the new path is an allowed change, recorded in resume.jsonl; the
same path with other bytes is other data). When either side lacks it (a workdir or buffer
written before hashes were recorded) the path is compared, as it was then. tfds and the
embedded datasets keep their name (+ the preprocessing id) as identity.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Optional

__all__ = ["ABSENT", "RUN_RESUMABLE", "BUFFER_IGNORED", "BUFFER_WHOLE", "CONTENT",
           "flatten", "jsonable", "matches", "diff", "data_file", "data_sha256", "file_sha256",
           "with_data_sha256", "run_identity", "content_change"]

ABSENT = "<absent>"

# Fields that may change when a run is resumed (dotted prefixes of the config).
RUN_RESUMABLE = (
    "iterations",            # run longer / stop earlier
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "grid_max_per_class",
    "eval",                  # evaluation settings (every, num_nets, epochs, final, ...)
    "evals",                 # declared evaluators and their schedules (jaxdd.evaluators)
    "param.progress",        # progress bars (DDiF warm-up)
    "dataset.download",      # whether tfds may download (same data either way)
    "source",                # descriptive text
    "max_image_rms_ratio",   # divergence guard threshold
)

# Expert metadata fields never compared with the buffer config: model overrides that say
# how a layer computes (the convolution's implementation, the compute dtype), not which
# function it is; experts trained one way serve a student computing the other way.
BUFFER_IGNORED = ("model.overrides.conv_impl", "model.overrides.compute_dtype")

# Expert metadata subtrees compared whole: an extra model override is another model.
BUFFER_WHOLE = ("model.overrides",)

# content field -> the fields that name the same data (compared only without the content)
CONTENT = {"dataset.sha256": ("dataset.name", "dataset.path")}


# ----------------------------------------------------------------------------- comparison


def flatten(tree, prefix: str = "") -> dict:
    """{dotted field: leaf} of a nested dict; a non-empty dict is descended into, an empty
    one is a leaf ({}); a non-dict ``tree`` at the top is returned under ''."""
    out = {}
    if isinstance(tree, dict) and (tree or not prefix):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = tree
    return out


def matches(field: str, prefixes: Iterable[str]) -> bool:
    """`field` is one of `prefixes` or lies under one of them."""
    return any(field == p or field.startswith(p + ".") for p in prefixes)


def jsonable(x):
    """A JSON round trip (tuples -> lists, numpy scalars -> Python numbers)."""
    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        if hasattr(o, "to_dict"):
            return o.to_dict()
        raise TypeError(f"not JSON-serializable: {type(o).__name__}")
    return json.loads(json.dumps(x, default=default))


def diff(stored: dict, expected: dict, *, allowed: Iterable[str] = (),
         ignored: Iterable[str] = (), only_expected: bool = False,
         whole: Iterable[str] = ()):
    """-> (blocking, harmless): lists of (field, stored, expected) for every differing
    leaf, sorted by field; a side without the field shows `ABSENT`.

    Both sides go through a JSON round trip (tuples equal lists) and `flatten`.
    allowed: dotted prefixes whose differences are harmless (second list);
    ignored: prefixes never compared;
    only_expected: compare only the fields of `expected` (plus, on both sides, every
      field under a `whole` prefix); default: every field of either side.
    An empty dict, a None and an absent field are the same (nothing there): a field added
    to a config later, with a None default, does not block resuming an older run.
    Data content (`CONTENT`): with the hash on both sides the naming fields are harmless;
    otherwise the hash is ignored and the names compared.
    """
    a, b = flatten(jsonable(stored or {})), flatten(jsonable(expected or {}))
    allowed, ignored, whole = tuple(allowed), list(ignored), tuple(whole)
    for content, names in CONTENT.items():
        if content in a and content in b:
            allowed += names
        else:
            ignored.append(content)
    fields = set(b) | (set(a) if not only_expected else {k for k in a if matches(k, whole)})
    blocking, harmless = [], []
    for k in sorted(fields):
        if matches(k, ignored):
            continue
        va, vb = a.get(k, ABSENT), b.get(k, ABSENT)
        if va == vb or (_nothing(va) and _nothing(vb)):
            continue
        (harmless if matches(k, allowed) else blocking).append((k, va, vb))
    return blocking, harmless


def _nothing(v) -> bool:
    return v is ABSENT or v is None or (isinstance(v, dict) and not v)


def content_change(changes) -> Optional[tuple]:
    """(stored hash, expected hash) when the data content differs among `changes`
    ((field, stored, expected) as `diff` gives), else None."""
    for k, va, vb in changes:
        if k in CONTENT:
            return va, vb
    return None


# ----------------------------------------------------------------------------- data content


def _get(d, name, default=None):
    if d is None:
        return default
    try:
        v = d.get(name, default) if hasattr(d, "get") else getattr(d, name, default)
    except (AttributeError, KeyError):
        v = default
    return default if v is None else v


def data_file(d) -> Optional[str]:
    """The file of a file-based `dataset` block (ConfigDict or dict): its ``path`` when
    the name is 'npz', or the name itself when it ends in '.npz'; None otherwise (tfds,
    the embedded digits)."""
    name = str(_get(d, "name", "") or "")
    path = _get(d, "path")
    if path and (name.lower() == "npz" or name.lower().endswith(".npz")):
        return os.path.expanduser(str(path))
    if name.lower().endswith(".npz"):
        return os.path.expanduser(name)
    return None


_SHA_CACHE: dict = {}


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks; cached per (absolute path,
    size, mtime, inode, ctime) for the life of the process: a rewritten or replaced file
    is hashed again (unless rewritten with the same size within the filesystem's timestamp
    resolution of the previous hash)."""
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def data_sha256(d) -> Optional[str]:
    """`file_sha256` of a dataset block's file; None when the data are not file-based or
    the file is absent (loading it then fails with its own message)."""
    f = data_file(d)
    if f is None or not os.path.isfile(f):
        return None
    return file_sha256(f)


def with_data_sha256(tree: dict, d=None) -> dict:
    """`tree` (a JSON dict with a 'dataset' block) with ``dataset.sha256`` set to the
    content hash of the data `d` (default: ``tree['dataset']``), when file-based."""
    block = tree.get("dataset") if d is None else d
    sha = data_sha256(block)
    if sha is None:
        return tree
    out = dict(tree)
    out["dataset"] = {**dict(out.get("dataset") or {}), "sha256": sha}
    return out


def run_identity(cfg) -> dict:
    """What a run's workdir records as its identity (config.json): the config as JSON,
    plus ``dataset.sha256`` for file-based data."""
    plain = json.loads(cfg.to_json_best_effort()) if hasattr(cfg, "to_json_best_effort") \
        else jsonable(cfg)
    return with_data_sha256(plain)
