"""Checks that keep an evaluation from scoring the wrong thing, all made before any training.

`launch/evaluate.py` and `launch/cross_arch.py` (through `jaxdd.crossarch`) call these on
every input first and report every problem at once (`jaxdd.validate.Report`):

    d, problems = load_set(path)                  # missing / damaged / not a synthetic set
    facts = set_facts(d)                          # shape, classes, modality of the set
    problems += data_problems("set x", facts, train, test, name, own=...)  # classes, shape
    problems += output_problems(path, "--out")    # a file can be written there
    rows, problems = resume_rows(path, settings)  # a resume file that is valid and the same run

A saved set records what it was made from (`meta['dataset']`: name, resolution, ZCA and
the rest of the preprocessing; its modality follows from the name and the set's rank) and
how it is scored (`meta['evaluation']`, `jaxdd.evaluators.stored_protocol`); a set scored on
data of another class count, rank, channel count, grid or modality is an error naming both.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

# what a 3-D grid set is evaluated with (suggested when a 2-D network is given one)
RANK_MODELS = {"image": ("ConvNetD3", "AlexNet", "VGG11", "ResNet18", "ViT"),
               "audio": ("ConvNetD3", "AlexNet", "VGG11", "ResNet18", "ViT"),
               "video": ("ConvNet3D", "ConvNet3DD2"),
               "voxel": ("Conv3DNet", "Conv3DNetW128")}


def _is_npz(name) -> bool:
    name = str(name or "")
    return name == "npz" or name.lower().endswith(".npz")


# ----------------------------------------------------------------------------- the set

def load_set(path, flag="--synthetic"):
    """(the dict of `jaxdd.io.load_synthetic`, []) or (None, [message]): a missing,
    truncated or foreign file, or one without the fields a set needs, is named."""
    from jaxdd.io import load_synthetic

    if not path:
        return None, [f"{flag} is empty: give the path of a synthetic.msgpack"]
    if not os.path.exists(path):
        return None, [f"{flag}={path}: no such file (a synthetic.msgpack written by "
                      f"launch/distill.py)"]
    if os.path.isdir(path):
        return None, [f"{flag}={path} is a directory; give its synthetic.msgpack"]
    redo = ("Re-run the distill command on its workdir: a finished run rewrites "
            "synthetic.msgpack from its last checkpoint.")
    try:
        d = load_synthetic(path)
    except Exception as e:  # noqa: BLE001 -- truncated / not msgpack / not a set
        return None, [f"{path} is damaged or not a synthetic.msgpack ({type(e).__name__}: "
                      f"{str(e)[:200]}). {redo}"]
    aux = d.get("aux") if isinstance(d, dict) else None
    missing = [k for k in ("param", "params", "aux") if not isinstance(d, dict) or k not in d]
    missing += [f"aux.{k}" for k in ("labels", "image_shape")
                if not isinstance(aux, dict) or k not in aux]
    if missing:
        return None, [f"{path} is not a complete synthetic.msgpack (missing "
                      f"{', '.join(missing)}). {redo}"]
    if not isinstance(d.get("meta"), dict):
        d["meta"] = {}
    return d, []


def set_facts(d) -> dict:
    """What a loaded set is: shape (one example, channels last), grid_rank (2 or 3),
    num_classes (recorded in meta.data, else from its labels), dataset (its recorded
    meta.dataset), modality (recorded in meta.data, else from the dataset name and rank; None
    when only the data can say, e.g. an older npz set)."""
    from jaxdd.data import modality_of

    meta = d.get("meta") or {}
    dmeta = dict(meta.get("dataset") or {})
    shape = tuple(int(s) for s in np.asarray(d["aux"]["image_shape"]).reshape(-1))
    labels = np.asarray(d["aux"]["labels"])
    k = int(labels.shape[-1]) if labels.ndim == 2 else (int(labels.max()) + 1
                                                         if labels.size else 0)
    name = dmeta.get("name")
    data = meta.get("data") or {}  # recorded by the run (sets saved since issue 32)
    k = int(data.get("num_classes", k))
    modality = data.get("modality") or (
        modality_of(name) if name and not _is_npz(name) else None)
    if modality is not None and (modality in ("video", "voxel")) != (len(shape) == 4):
        modality = None  # the name and the rank disagree: let the rank checks speak
    return {"shape": shape, "grid_rank": len(shape) - 1, "num_classes": k,
            "dataset": dmeta, "name": name, "modality": modality,
            "preprocessing": data.get("preprocessing")}


def data_problems(what, facts, train, test, data_name, *, own=True, resolution=None):
    """The set (`facts`) against the data it is to be scored on: the class count, the rank,
    the channels, the modality, and (`resolution`: the side the set is decoded at, None: its
    own grid) the grid. `own`: the data is the set's own dataset (else an explicit
    override, said in the message)."""
    out = []
    src = (f"its own dataset {data_name!r}" if own else
           f"--dataset={data_name} (its own is {facts['name'] or 'not recorded'!r})")
    want = ("evaluate it on the dataset it was distilled on" if not own else
            "the data file changed since the set was made, or the set's metadata is wrong")
    n = int(test.num_classes)
    if facts["num_classes"] != n:
        out.append(f"{what} has {facts['num_classes']} classes (labels 0.."
                   f"{facts['num_classes'] - 1}) but {src} has {n}: scores would be "
                   f"meaningless; {want}")
    dshape = tuple(int(s) for s in np.shape(test.images)[1:])
    sshape = facts["shape"]
    if len(dshape) != len(sshape):
        out.append(f"{what} holds examples of shape {sshape} ({len(sshape) - 1}-D grid) but "
                   f"{src} has {dshape} ({len(dshape) - 1}-D grid); {want}")
        return out
    if dshape[-1] != sshape[-1]:
        out.append(f"{what} has {sshape[-1]} channel(s) {sshape} but {src} has "
                   f"{dshape[-1]} {dshape}; {want}")
    mod = getattr(test, "modality", None)
    if facts["modality"] and mod and facts["modality"] != mod:
        out.append(f"{what} is a {facts['modality']} set but {src} is {mod} data; {want}")
    pre, dpre = facts.get("preprocessing"), getattr(test, "preprocessing", None)
    if own and pre and dpre and pre != dpre:
        out.append(f"{what} was distilled on data preprocessed as {pre!r} but {src} loads as "
                   f"{dpre!r} (normalization / ZCA differ); {want}")
    grid = sshape[:-1]
    if resolution is not None and len(grid) == 2:
        grid = (int(resolution),) * 2
    if not out and tuple(dshape[:-1]) != tuple(grid):
        out.append(f"{what} is decoded on a {grid} grid but {src} is loaded at "
                   f"{dshape[:-1]}; give the same --resolution for both (or none)")
    return out


def rank_problem(what, facts, models) -> Optional[str]:
    """One message for every network of `models` that does not take the set's rank, with
    networks that do (None when all do or a name is unknown: `model_problems` says that)."""
    from jaxdd.models import get_model, input_rank

    want = facts["grid_rank"] + 2
    wrong = []
    for m in models:
        try:
            if input_rank(get_model(str(m), max(facts["num_classes"], 2))) != want:
                wrong.append(str(m))
        except Exception:  # noqa: BLE001 -- unknown names are reported once elsewhere
            continue
    if not wrong:
        return None
    kind = facts["modality"] or ("3-D grid" if want == 5 else "image")
    good = RANK_MODELS.get(facts["modality"] or "", RANK_MODELS["voxel"] + RANK_MODELS["video"]
                           if want == 5 else RANK_MODELS["image"])
    layout = "2-D (N, H, W, C)" if want == 5 else "3-D (N, D, H, W, C)"
    return (f"{what} is a {kind} set of examples {facts['shape']} ({want}-D batches), but "
            f"{', '.join(wrong)} take {layout} batches: pass networks of the set's rank, "
            f"e.g. --models={','.join(good)}")


def model_problems(models, flag="--models") -> list:
    """Unknown network names, all in one message with the known ones; an empty list."""
    from jaxdd.models import available_models, get_model

    models = list(models or [])
    if not models:
        return [f"{flag} is empty: name at least one network ({', '.join(available_models())})"]
    bad = []
    for m in models:
        try:
            get_model(str(m), 10)
        except Exception as e:  # noqa: BLE001
            bad.append((m, e))
    out = []
    unknown = [m for m, e in bad if "unknown model" in str(e)]
    if unknown:
        out.append(f"{flag}: unknown network(s) {', '.join(map(repr, unknown))}; known: "
                   f"{', '.join(available_models())}")
    out += [f"{flag}: {m}: {e}" for m, e in bad if m not in unknown]
    dup = sorted({m for m in models if models.count(m) > 1})
    if dup:
        out.append(f"{flag} names {', '.join(dup)} more than once")
    return out


# ----------------------------------------------------------------------------- flags

def parse_resolutions(items, flag="--resolutions"):
    """'model=side' items -> ({model: side}, [problems]); every bad item is named with the
    expected form."""
    res, out = {}, []
    for it in items or []:
        k, sep, v = str(it).partition("=")
        try:
            side = int(v) if sep and k else None
        except ValueError:
            side = None
        if side is None or side < 1:
            out.append(f"{flag}: {it!r} is not model=side with side a positive integer "
                       f"(e.g. {flag}=VGG11=32)")
        elif k in res and res[k] != side:
            out.append(f"{flag} gives {k} two sides ({res[k]} and {side})")
        else:
            res[k] = side
    return res, out


def count_problems(**flags) -> list:
    """Each flag (name=value) an integer >= 1."""
    out = []
    for k, v in flags.items():
        try:
            ok = v is not None and int(v) == v and int(v) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            out.append(f"--{k}={v} must be an integer >= 1")
    return out


# ----------------------------------------------------------------------------- output files

def output_problems(path, flag="--out") -> list:
    """[] when the file `path` can be written, else why not, naming the path: a directory
    itself, an existing file that is not writable, or a folder that cannot hold it
    (`jaxdd.validate.output_dirs`: under a regular file, not writable). Creates nothing."""
    if not path:
        return [f"{flag} is empty: give a file path"]
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return [f"{flag}: {path} is a directory; give a file path"]
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return [f"{flag}: {path} exists and is not writable"]
    from jaxdd import validate
    folder = {f"{flag} ({os.path.basename(path)}): its folder": os.path.dirname(path)}
    return list(validate.output_dirs(validate.Report(), folder).errors)


def resume_rows(path, settings: dict, flag="--out"):
    """(rows, []) of a cross_arch resume file (`path`, absent: ([], [])), or ([], [why]):
    not valid JSON, not a cross_arch table, or made with other settings (a table must not
    mix num_nets / epochs / seed / DSA / protocol). Nothing is written."""
    if not path or not os.path.exists(path):
        return [], []
    keep = (f"nothing was overwritten: move it aside (or delete it) to start over, or pick "
            f"another {flag}")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        return [], [f"{path} (the resume file of {flag}) is not readable JSON "
                    f"({type(e).__name__}: {str(e)[:120]}); {keep}"]
    rows = d.get("rows") if isinstance(d, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and {"label", "model", "mean", "std"} <= set(r)
            for r in rows):
        return [], [f"{path} (the resume file of {flag}) is not a cross_arch table (a "
                    f"'rows' list of label / model / mean / std); {keep}"]
    diff = [f"{k}={d[k]!r} (now {v!r})" for k, v in settings.items()
            if k in d and d[k] != v]
    if diff:
        return [], [f"{path} holds rows made with {', '.join(diff)}; a table must not mix "
                    f"them: use the same flags, or another {flag}"]
    return rows, []
