"""One validation pass over a config and its data, before any expensive work.

Every launch entry point (distill, buffer, evaluate) and `jaxdd.distill.Run` call these
checks first; they collect EVERY problem (errors and warnings) and raise once, listing all
of them, so a user fixes a command in one go instead of one error per 60 s of training:

    report = validate.distill_config(cfg)            # fields: counts, rates, names, epochs
    report += validate.npz_file(path)                # raw arrays: NaN/inf, labels
    report += validate.data(train, test, ipc=..., model_name=..., overrides=...)
    report.raise_if_errors("distill config")         # ConfigError listing every problem

Cheap by design (a few seconds on the largest dataset): counts, one `isfinite` pass over
the images, and a shape-only trace (`jax.eval_shape`) of the student network at the data's
resolution.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from typing import Optional

import numpy as np

from jaxdd.validate_model import model_at_resolution  # noqa: F401 -- re-exported

__all__ = ["ConfigError", "Report", "distill_config", "buffer_config", "npz_file", "data",
           "model_at_resolution", "evaluate_args", "npz_path", "output_dirs"]


class ConfigError(ValueError):
    """A config or its data cannot work; ``problems`` lists every error found."""

    def __init__(self, message, problems=(), warnings=()):
        super().__init__(message)
        self.problems = list(problems)
        self.warnings = list(warnings)


@dataclasses.dataclass
class Report:
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)

    def error(self, msg):
        if msg not in self.errors:  # two checks may find the same problem
            self.errors.append(msg)

    def warn(self, msg):
        self.warnings.append(msg)

    def __iadd__(self, other):
        self.errors += [e for e in other.errors if e not in self.errors]
        self.warnings += other.warnings
        return self

    def __bool__(self):
        return not self.errors

    def print_warnings(self, file=None):
        for w in self.warnings:
            print(f"[jaxdd] warning: {w}", file=file or sys.stderr)

    def raise_if_errors(self, what="config"):
        """Print the warnings; raise ConfigError listing every error (if any)."""
        self.print_warnings()
        if self.errors:
            lines = "\n".join(f"  - {e}" for e in self.errors)
            raise ConfigError(f"{len(self.errors)} problem(s) with the {what}; nothing was "
                              f"run or written:\n{lines}", self.errors, self.warnings)


# ----------------------------------------------------------------------------- helpers

def _get(node, dotted, default=None):
    cur = node
    for p in dotted.split("."):
        try:
            if cur is None or p not in cur:
                return default
            cur = cur[p]
        except (TypeError, KeyError, AttributeError):
            return default
    return cur


def _num(rep, node, dotted, *, minimum=None, positive=False, integer=False, optional=False,
         hint=""):
    """Check one numeric field; returns the value (or None when absent / bad)."""
    v = _get(node, dotted, _ABSENT)
    if v is _ABSENT:
        return None
    if v is None:
        if not optional:
            rep.error(f"{dotted} is None; give a number{hint}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        rep.error(f"{dotted}={v!r} is not a number{hint}")
        return None
    if integer and float(v) != int(v):
        rep.error(f"{dotted}={v!r} must be an integer{hint}")
        return None
    if not math.isfinite(float(v)):
        rep.error(f"{dotted}={v!r} must be finite{hint}")
        return None
    if positive and not v > 0:
        rep.error(f"{dotted}={v!r} must be > 0{hint}")
        return None
    if minimum is not None and v < minimum:
        rep.error(f"{dotted}={v!r} must be >= {minimum}{hint}")
        return None
    return v


_ABSENT = object()


def npz_path(name) -> Optional[str]:
    """The file of an npz dataset name (a path ending in '.npz'), else None."""
    s = str(name)
    return os.path.expanduser(s) if s.lower().endswith(".npz") else None


# ----------------------------------------------------------------------------- configs

def _dataset_block(rep, cfg, prefix="dataset"):
    d = _get(cfg, prefix)
    if d is None:
        rep.error(f"the config has no '{prefix}' block")
        return
    if not str(_get(d, "name", "") or ""):
        rep.error(f"{prefix}.name is empty")
    _num(rep, cfg, f"{prefix}.resolution", positive=True, integer=True, optional=True,
         hint=" (None = the dataset's native size)")
    if _get(d, "zca", False):
        _num(rep, cfg, f"{prefix}.zca_eps", positive=True)
    p = npz_path(_get(d, "name", ""))
    if p is not None and not os.path.exists(p):
        rep.error(f"npz dataset file not found: {p}")


def _model_block(rep, cfg, prefix="model"):
    from jaxdd.models import get_model

    name = _get(cfg, f"{prefix}.name")
    ov = _get(cfg, f"{prefix}.overrides") or {}
    ov = ov.to_dict() if hasattr(ov, "to_dict") else dict(ov)
    try:
        get_model(str(name), 10, **ov)
    except Exception as e:  # noqa: BLE001 -- unknown name / bad override: report it
        rep.error(f"{prefix}.name={name!r}{' with overrides ' + repr(ov) if ov else ''}: {e}")


def _fields_and_names(rep, cfg):
    """The command line's --config.* problems (unknown fields with a "did you mean", wrong
    types: jaxdd.config.flag_problems), closed sets of names, parameterization fields, the
    mesh (jaxdd.validate_run)."""
    from jaxdd import validate_run
    from jaxdd.config import flag_problems
    for msg in flag_problems(cfg):
        rep.error(msg)
    validate_run.enums(rep, cfg)
    validate_run.param_fields(rep, cfg)
    validate_run.mesh(rep, cfg)


def output_dirs(report, dirs: dict):
    """Every directory an entry point will write ({what: path}: workdir, buffer dir, ...)
    checked before any work: not empty, not a file nor under one, writable or creatable
    (`jaxdd.validate_run.output_dirs`); problems go into `report`, which is returned."""
    from jaxdd import validate_run
    validate_run.output_dirs(report, dirs)
    return report


def buffer_config(cfg, *, prefix="") -> Report:
    """Fields of an expert-buffer config (configs/buffer.py, or a distill config's buffer
    block with ``prefix='buffer.'``, whose dataset/model are checked by distill_config)."""
    rep = Report()
    if not prefix:
        _fields_and_names(rep, cfg)
        _dataset_block(rep, cfg)
        _model_block(rep, cfg)
    _num(rep, cfg, f"{prefix}num_experts", minimum=1, integer=True)
    epochs = _num(rep, cfg, f"{prefix}epochs", minimum=1, integer=True)
    _num(rep, cfg, f"{prefix}lr_teacher", positive=True)
    _num(rep, cfg, f"{prefix}batch_size", minimum=1, integer=True)
    _num(rep, cfg, f"{prefix}experts_per_group", minimum=1, integer=True)
    rec = _num(rep, cfg, f"{prefix}record_epochs", minimum=0, integer=True, optional=True)
    if rec is not None and epochs is not None and rec > epochs:
        rep.error(f"{prefix}record_epochs={rec} exceeds {prefix}epochs={epochs}")
    return rep


def distill_config(cfg) -> Report:
    """Every field of a distillation config that can make the run fail or do nothing."""
    from jaxdd import objective as objective_lib
    from jaxdd import param as param_lib

    rep = Report()
    _fields_and_names(rep, cfg)
    _dataset_block(rep, cfg)
    _model_block(rep, cfg)
    pname = _get(cfg, "param.name")
    try:
        param_lib.get(str(pname))
    except Exception as e:  # noqa: BLE001
        rep.error(f"param.name: {e}")
    _num(rep, cfg, "param.ipc", minimum=1, integer=True, hint=" (images per class)")
    _num(rep, cfg, "seed", integer=True)
    _num(rep, cfg, "iterations", minimum=0, integer=True)
    _num(rep, cfg, "checkpoint_every", minimum=1, integer=True)
    _num(rep, cfg, "log_every", minimum=1, integer=True)
    _num(rep, cfg, "keep_checkpoints", minimum=1, integer=True)
    _num(rep, cfg, "decode_subset", minimum=0, integer=True)
    _num(rep, cfg, "grid_max_per_class", minimum=1, integer=True)
    _num(rep, cfg, "max_image_rms_ratio", positive=True, optional=True)
    # optimizers
    _num(rep, cfg, "opt.syn.lr", positive=True)
    _num(rep, cfg, "opt.lr.lr", minimum=0)
    if str(_get(cfg, "objective.name", "")).lower() != "cfm":  # CFM: eval.lr, no syn_lr
        _num(rep, cfg, "opt.lr.init", positive=True,
             hint=" (the initial syn_lr: the students' / evaluation learning rate)")
    _num(rep, cfg, "opt.lr.min_syn_lr", positive=True, optional=True)
    # evaluation
    _num(rep, cfg, "eval.every", minimum=0, integer=True, hint=" (0: only at the end)")
    if _get(cfg, "eval.every", 0) or _get(cfg, "eval.final", True):
        _num(rep, cfg, "eval.num_nets", minimum=1, integer=True)
        _num(rep, cfg, "eval.epochs", minimum=1, integer=True)
        _num(rep, cfg, "eval.batch_size", minimum=1, integer=True)
        _num(rep, cfg, "eval.lr", positive=True, optional=True,
             hint=" (the evaluation networks' learning rate)")
    if _get(cfg, "eval.final", True):
        _num(rep, cfg, "eval.final_nets", minimum=1, integer=True, optional=True)
    # objective
    oname = str(_get(cfg, "objective.name", ""))
    try:
        objective_lib.get_module(oname)
    except Exception as e:  # noqa: BLE001
        rep.error(f"objective.name: {e}")
        return rep
    o = _get(cfg, "objective")
    if oname.lower() == "tm":
        _num(rep, cfg, "objective.syn_steps", minimum=1, integer=True)
        ee = _num(rep, cfg, "objective.expert_epochs", minimum=1, integer=True)
        ms = _num(rep, cfg, "objective.max_start_epoch", minimum=0, integer=True)
        _num(rep, cfg, "objective.batch_syn", minimum=0, integer=True)
        _num(rep, cfg, "objective.microbatch", minimum=0, integer=True, optional=True)
    else:
        ee = ms = None
    try:
        need = objective_lib.trajectory_epochs(oname, o)
    except Exception:  # noqa: BLE001 -- bad fields are reported above
        need = (ms + ee) if (ms is not None and ee is not None) else None
    if need is not None and _get(cfg, "buffer") is not None:
        rep += buffer_config(cfg, prefix="buffer.")
        ep = _get(cfg, "buffer.epochs")
        rec = _get(cfg, "buffer.record_epochs")
        have = rec if rec is not None else ep
        if isinstance(have, (int, np.integer)) and have >= 1 and need > have:
            rep.error(f"objective.max_start_epoch + objective.expert_epochs = {need} exceeds "
                      f"the experts' {have} recorded epochs (buffer."
                      f"{'record_epochs' if rec is not None else 'epochs'}); lower "
                      f"max_start_epoch or raise buffer.epochs")
    return rep


def evaluate_args(*, num_nets, epochs, ipc=None, resolution=None, lr=None) -> Report:
    """The flags of launch/evaluate.py."""
    rep = Report()
    flags = {"num_nets": num_nets, "epochs": epochs}
    if ipc is not None:
        flags["ipc"] = ipc
    for k, v in flags.items():
        if v is None or int(v) < 1:
            rep.error(f"--{k}={v} must be >= 1")
    if resolution is not None and int(resolution) < 1:
        rep.error(f"--resolution={resolution} must be >= 1")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        rep.error(f"--lr={lr} must be a positive number")
    return rep


# ----------------------------------------------------------------------------- data

def _label_problems(rep, where, labels, num_classes=None, class_names=None):
    """Empty classes and stray labels (a label far above the others)."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        rep.error(f"{where}: no images")
        return
    if labels.min() < 0:
        rep.error(f"{where}: negative labels {sorted(set(labels[labels < 0].tolist()))[:5]}")
        return
    k = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    counts = np.bincount(labels, minlength=k)
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return
    present = np.flatnonzero(counts)
    # a stray label: the present labels are 0..m contiguous except a few far above
    contiguous = int(np.argmax(counts == 0))  # first empty class
    stray = present[present > contiguous]
    if contiguous > 0 and 0 < stray.size <= max(1, contiguous // 2):
        desc = ", ".join(f"{int(c)} ({int(counts[c])} image(s))" for c in stray[:5])
        rep.error(
            f"{where}: labels 0..{contiguous - 1} plus stray label(s) {desc}: that would make "
            f"{k} classes, {empty.size} of them with no images. Is this a labelling mistake? "
            f"Fix or drop those images (classes must be 0..K-1, each with images); jaxdd "
            f"does not guess")
        return
    names = ""
    if class_names is not None and len(class_names) == k:
        names = " (" + ", ".join(repr(class_names[c]) for c in empty[:5]) + ")"
    shown = ", ".join(str(int(c)) for c in empty[:10]) + (" ..." if empty.size > 10 else "")
    rep.error(f"{where}: {empty.size} of {k} classes have no images: {shown}{names}; every "
              f"class 0..{k - 1} needs images (relabel to 0..K-1 without gaps)")


def npz_file(path) -> Report:
    """Scan an npz dataset's raw arrays (before preprocessing): NaN/inf pixels, labels."""
    rep = Report()
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        rep.error(f"npz dataset file not found: {path}")
        return rep
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        rep.error(f"{path} is not a readable .npz file ({type(e).__name__}: {e})")
        return rep
    with f:
        keys = set(f.files)
        for k in ("images", "labels"):
            if k not in keys:
                rep.error(f"{path}: missing array {k!r} (has {sorted(keys)})")
        pairs = [("images", "labels")] + (
            [("test_images", "test_labels")] if "test_images" in keys else [])
        ncls = None
        if "class_names" in keys:
            ncls = len(f["class_names"])
        for xi, yi in pairs:
            if xi not in keys or yi not in keys:
                continue
            try:
                x, y = f[xi], f[yi]
            except ValueError as e:  # object arrays need pickle: never loaded
                rep.error(f"{path}: {xi} / {yi} hold Python objects ({e}); save numeric "
                          f"arrays (np.stack the images into one (N, H, W, C) array)")
                continue
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
                rep.error(f"{path}: {xi} has dtype {x.dtype}, not numbers")
                continue
            if np.issubdtype(x.dtype, np.floating):
                bad = ~np.isfinite(x)
                if bad.any():
                    nimg = int(bad.reshape(len(x), -1).any(axis=1).sum())
                    rep.error(f"{path}: {xi} has {int(bad.sum())} NaN/inf pixel value(s) in "
                              f"{nimg} image(s) (first: image "
                              f"{int(np.flatnonzero(bad.reshape(len(x), -1).any(1))[0])}); "
                              f"clean or drop them (training on them gives NaN experts)")
            if not np.issubdtype(y.dtype, np.integer):
                rep.error(f"{path}: {yi} must be integers, got {y.dtype}")
                continue
            if len(y.reshape(-1)) != len(x):
                rep.error(f"{path}: {xi} has {len(x)} images but {yi} has "
                          f"{len(y.reshape(-1))} labels")
                continue
            if xi == "images":
                _label_problems(rep, f"{path} {yi}", y, ncls)
    return rep


def data(train, test=None, *, ipc=None, model_name=None, overrides=None,
         where="dataset", dsa_strategy=None) -> Report:
    """Checks on loaded Datasets: finite images, every class populated, IPC vs class
    sizes (warning: real images would be duplicated), the network at this resolution, the
    augmentation (`dsa_strategy`, when given) defined on the data's modality."""
    rep = Report()
    if train is not None and dsa_strategy is not None:
        from jaxdd.augment import check_modality
        try:
            check_modality(np.ndim(train.images), dsa_strategy,
                           getattr(train, "modality", None))
        except ValueError as e:
            rep.error(f"dsa_strategy={dsa_strategy!r}: {e}")
    if train is not None and int(train.num_classes) < 2:
        rep.error(f"{where}: {train.num_classes} class: distillation and evaluation need at "
                  f"least 2 classes (labels 0..K-1, K >= 2)")
    for split, ds in (("train", train), ("test", test)):
        if ds is None:
            continue
        x = np.asarray(ds.images)
        if x.size == 0:
            rep.error(f"{where} {split}: no images")
            continue
        fin = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not fin.all():
            rep.error(f"{where} {split}: {int((~fin).sum())} image(s) with NaN/inf values "
                      f"(first: {int(np.flatnonzero(~fin)[0])}); clean the data")
        _label_problems(rep, f"{where} {split}", ds.labels, ds.num_classes,
                        getattr(ds, "class_names", None))
    if train is not None and ipc is not None and np.asarray(train.labels).size:
        counts = np.bincount(np.asarray(train.labels), minlength=train.num_classes)
        short = [(c, int(n)) for c, n in enumerate(counts) if 0 < n < int(ipc)]
        if short:
            desc = ", ".join(f"{c} ({n})" for c, n in short[:8])
            rep.warn(f"IPC {ipc} is larger than the images some classes have: {desc}; their "
                     f"real images are duplicated in the initial synthetic set (and a "
                     f"random-real baseline cannot be drawn)")
    if train is not None and model_name and len(train):
        msg = model_at_resolution(model_name, overrides, train.image_shape, train.num_classes)
        if msg:
            rep.error(msg)
    return rep
