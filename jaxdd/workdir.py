"""The run's workdir: its identity (config.json), what may change on resume, damaged files.

    config.json     written ONCE, when the run really starts (after validation, right
                    before the first checkpoint); never overwritten
    resume.jsonl    append-only: one line per resume that changed an allowed field
                    ({"time", "step", "changes": {field: [recorded, now]}})
    damaged/        files set aside (renamed, never deleted) because they could not be read

Resume compares EVERY field of the config with config.json (`jaxdd.fingerprint`, which
also decides whether stored experts fit a buffer config). Only the fields matched by
`RESUMABLE` (= fingerprint.RUN_RESUMABLE) may differ (they change how long the run goes, how
often it logs / checkpoints / evaluates, or how it shows progress -- never the synthetic set
of a given iteration); any other difference refuses the run, listing all of them. An npz
dataset is identified by its content (config.json records `dataset.sha256`): moving the file
is an allowed change, rewriting it with other images is not.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil

from jaxdd import fingerprint

__all__ = ["RESUMABLE", "WorkdirError", "is_resumable", "config_diff", "read_identity",
           "check_resume", "write_identity", "record_resume", "truncate_metrics",
           "read_metrics", "set_aside", "damaged_message"]

# Fields that may change when a run is resumed: jaxdd.fingerprint.RUN_RESUMABLE (the one
# place that decides sameness; this name stays for older imports).
RESUMABLE = fingerprint.RUN_RESUMABLE


class WorkdirError(ValueError):
    """The workdir cannot be used as is; the message says which file and what to do."""


def is_resumable(field: str) -> bool:
    return fingerprint.matches(field, RESUMABLE)


_ABSENT = fingerprint.ABSENT


def config_diff(old: dict, new: dict):
    """-> (blocking, allowed): lists of (field, recorded, now) for every differing leaf
    (`jaxdd.fingerprint.diff` with the resumable fields allowed)."""
    return fingerprint.diff(old, new, allowed=RESUMABLE)


def config_path(workdir):
    return os.path.join(workdir, "config.json")


def cfg_json(cfg) -> dict:
    """The run's identity as config.json records it (`jaxdd.fingerprint.run_identity`: the
    config, plus the content hash of file-based data)."""
    return fingerprint.run_identity(cfg)


def read_identity(workdir):
    """The recorded config.json (dict), None when absent; WorkdirError when unreadable."""
    path = config_path(workdir)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            out = json.load(f)
        if not isinstance(out, dict):
            raise ValueError("not a JSON object")
        return out
    except (ValueError, OSError) as e:
        raise WorkdirError(
            f"{path} is damaged ({type(e).__name__}: {e}). It records the run's config, "
            f"which a resume must match. Restore it from a backup (it is the JSON of the "
            f"config the run started with), or start over: delete {workdir} or use another "
            f"--workdir.") from e


def check_resume(workdir, cfg, recorded: dict):
    """Raise WorkdirError listing every result-changing difference between the config
    and the recorded one; return the allowed changes [(field, recorded, now)].

    File-based data are compared by content (`jaxdd.fingerprint`): a moved file with the
    same bytes is an allowed change of `dataset.name`; other bytes are refused, naming the
    file and both hashes. A config.json without a hash (older runs) compares the path."""
    blocking, allowed = config_diff(recorded, cfg_json(cfg))
    if blocking:
        lines = "\n".join(f"  {k}: recorded {va!r}, now {vb!r}" for k, va, vb in blocking)
        msg = (f"workdir {workdir} holds a run with a different config ({len(blocking)} "
               f"field(s) that change the result differ):\n{lines}\n")
        changed = fingerprint.content_change(blocking)
        if changed is not None:
            msg += (f"The data file {fingerprint.data_file(cfg.dataset)} holds other bytes "
                    f"than the data this run started on (sha256 now {changed[1]}, recorded "
                    f"{changed[0]} in {config_path(workdir)}): data are identified by "
                    f"content, so this is another dataset. Put the original file back (any "
                    f"path), or start a new run on these data (a new --workdir).\n")
        raise WorkdirError(
            msg + f"Resume it with the recorded config ({config_path(workdir)}), or use a "
            f"new --workdir (or delete this one). Fields that may change on resume: "
            f"{', '.join(RESUMABLE)}.")
    return allowed


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_identity(workdir, cfg):
    """Write config.json if absent (never overwrites)."""
    path = config_path(workdir)
    if not os.path.exists(path):
        _atomic_write(path, json.dumps(cfg_json(cfg), indent=2))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def record_resume(workdir, step, changes):
    """Append the allowed changes of this resume to resume.jsonl."""
    if not changes:
        return
    rec = {"time": _now(), "step": int(step),
           "changes": {k: [va, vb] for k, va, vb in changes}}
    with open(os.path.join(workdir, "resume.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def read_metrics(path):
    """The records of a metrics.jsonl (a partial last line, from a kill, is skipped)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def truncate_metrics(path, step: int):
    """Keep the records consistent with a state restored at `step`: records of later
    iterations, the final evaluation (rewritten by the resumed run) and a partial line are
    dropped; at step 0 everything is (the iteration-0 evaluation runs again)."""
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        lines = f.readlines()
    keep = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        s = int(r.get("step", 0))
        if step > 0 and (s < step or (s == step and not r.get("final"))):
            keep.append(json.dumps(r) + "\n")
    if len(keep) != len(lines):
        _atomic_write(path, "".join(keep))
    return len(lines) - len(keep)


def set_aside(path, root=None) -> str:
    """Rename a damaged file or directory to <root or its dir>/damaged/<name>-<time>
    (never deleted); returns the new path."""
    path = os.path.abspath(path)
    root = root or os.path.dirname(path)
    dest_dir = os.path.join(root, "damaged")
    os.makedirs(dest_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    dest = os.path.join(dest_dir, f"{os.path.basename(path)}-{stamp}")
    shutil.move(path, dest)
    return dest


def damaged_message(path, e, what, todo):
    return (f"{path} is damaged ({type(e).__name__}: {str(e)[:200]}). It holds {what}. "
            f"{todo}")


# ----------------------------------------------------------------------------- fault injection
# Tests kill a run at chosen points: JAXDD_FAULT="<point>:<n>" ends the process (os._exit,
# like kill -9: no cleanup, no atexit) at the n-th time `point` is reached;
# JAXDD_FAULT_MODE=raise raises SimulatedKill instead (in-process tests). Points:
#   save_checkpoint / saved_checkpoint   just before / after an Orbax checkpoint write
#   saved_expert                         after an expert of a group is stored
#   saved_synthetic                      after synthetic.msgpack, before result.json

_FAULT_HITS: dict = {}


class SimulatedKill(BaseException):
    """Raised at a fault point when JAXDD_FAULT_MODE=raise (not an Exception: nothing in
    the library catches it, like a kill)."""


def fault_point(point: str):
    spec = os.environ.get("JAXDD_FAULT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != point:
        return
    _FAULT_HITS[point] = _FAULT_HITS.get(point, 0) + 1
    if _FAULT_HITS[point] == int(n or 1):
        if os.environ.get("JAXDD_FAULT_MODE") == "raise":
            raise SimulatedKill(f"{point}:{n}")
        os._exit(137)


def reset_faults():
    _FAULT_HITS.clear()
