"""Storing experts: one Orbax checkpoint per expert, partial reads of epoch snapshots.

Layout: ``<buffer_dir>/expert_<i:05d>``, a composite checkpoint with two items:

    trajectory/   PyTree {'epoch_0000': params_0, 'epoch_0001': params_1, ...}
                  (OCDBT + zarr, one array per parameter leaf per epoch)
    metadata/     JSON: dataset (name, content sha256 of a file, preprocessing, ...), model
                  (name, overrides), epochs, lr_teacher, batch_size, dsa_strategy, seed,
                  test accuracy, ... (`jaxdd.experts.identity` says which must match)

Each epoch snapshot is its own subtree, so reading epochs (s .. s+k) is an Orbax *partial
restore* (``PyTreeRestore(item=<only those epoch subtrees>, partial_restore=True)``): only
the requested arrays are read from the OCDBT store (the tests check the bytes read with
tensorstore's kvstore metrics). Orbax's ``Checkpointer.save`` writes into
``expert_<i>.orbax-checkpoint-tmp*`` and renames it when complete (atomic on a local
filesystem; ``commit_success.txt`` on object stores), so a killed run never leaves an expert
that loads; the loader only accepts finalized ``expert_<5 digits>`` directories and
`build_buffer` deletes leftover temporary directories. (The PyTorch buffer is one
``replay_buffer_<n>.pt`` per 10 experts; one checkpoint per expert makes a build resumable
and reads partial.)
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Sequence

import jax
import numpy as np

from jaxdd.experts.errors import ExpertMismatchError, MissingExpertsError
from jaxdd.fingerprint import jsonable

__all__ = ["FORMAT", "expert_dir", "dir_bytes", "save_expert", "list_experts",
           "load_expert_metadata", "load_slice"]

EXPERT_DIR_FMT = "expert_{:05d}"
_EXPERT_RE = re.compile(r"^expert_(\d{5})$")
_EPOCH_FMT = "epoch_{:04d}"
_TMP_MARK = ".orbax-checkpoint-tmp"
_TRAJ_ITEM = "trajectory"
_META_ITEM = "metadata"
FORMAT = "jaxdd.experts/1"


def expert_dir(buffer_dir, i: int) -> str:
    return os.path.join(os.fspath(buffer_dir), EXPERT_DIR_FMT.format(int(i)))


def dir_bytes(path) -> int:
    """Total size in bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def _ocp():
    import orbax.checkpoint as ocp
    return ocp


def _checkpointer(local: bool = False):
    """The expert checkpointer. local: in a multi-process run, this process writes alone
    (Orbax's primary host = this process, no barrier with the others; Orbax writes numpy
    leaves from process 0 only, so only process 0 saves this way: `build_buffer`)."""
    ocp = _ocp()
    if not local or jax.process_count() == 1:
        registry = ocp.handlers.create_default_handler_registry(
            **{_TRAJ_ITEM: ocp.PyTreeCheckpointHandler(),
               _META_ITEM: ocp.JsonCheckpointHandler()})
        return ocp.Checkpointer(ocp.CompositeCheckpointHandler(handler_registry=registry))
    me = jax.process_index()
    mp = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me},
                                            barrier_sync_key_prefix=f"jaxdd_expert_p{me}")
    registry = ocp.handlers.create_default_handler_registry(
        **{_TRAJ_ITEM: ocp.PyTreeCheckpointHandler(multiprocessing_options=mp),
           _META_ITEM: ocp.JsonCheckpointHandler(multiprocessing_options=mp)})
    handler = ocp.CompositeCheckpointHandler(
        handler_registry=registry,
        composite_options=ocp.CompositeOptions(multiprocessing_options=mp))
    return ocp.Checkpointer(handler, multiprocessing_options=mp)


def save_expert(path, trajectory, meta: dict, *, force: bool = False,
                local: bool = False) -> str:
    """Write one expert: ``trajectory`` leaves (R + 1, ...) (epoch-major) + JSON ``meta``.

    Atomic: Orbax writes a temporary directory and renames it when complete.
    ``meta`` gains 'format' and 'num_snapshots'. Returns the path. local: this process
    writes it alone in a multi-process run (process 0, `build_buffer`).
    """
    path = os.path.abspath(os.fspath(path))
    leaves = jax.tree.leaves(trajectory)
    n = int(leaves[0].shape[0])
    if any(int(leaf.shape[0]) != n for leaf in leaves):
        raise ValueError("all trajectory leaves need the same leading (epoch) axis")
    tree = {_EPOCH_FMT.format(e): jax.tree.map(lambda a: np.asarray(a[e]), trajectory)
            for e in range(n)}
    meta = jsonable({**meta, "format": FORMAT, "num_snapshots": n})
    ocp = _ocp()
    from jaxdd.locks import deferred_stops
    with deferred_stops():  # a Ctrl-C / SIGTERM (jaxdd.locks.clean_stops) stops after it
        _checkpointer(local).save(path, ocp.args.Composite(**{
            _TRAJ_ITEM: ocp.args.PyTreeSave(tree), _META_ITEM: ocp.args.JsonSave(meta)}),
            force=force)
    return path


def _is_complete(path) -> bool:
    """A finalized expert checkpoint with both items written."""
    if not os.path.isdir(path) or _TMP_MARK in os.path.basename(path):
        return False
    try:
        if not _ocp().utils.is_checkpoint_finalized(path):
            return False
    except Exception:  # noqa: BLE001 -- anything unreadable is not complete
        return False
    return (os.path.isfile(os.path.join(path, _META_ITEM, "metadata"))
            and os.path.isfile(os.path.join(path, _TRAJ_ITEM, "_METADATA")))


def list_experts(buffer_dir) -> dict:
    """{index: path} of the complete experts in ``buffer_dir`` (temporary dirs ignored)."""
    out = {}
    if not os.path.isdir(buffer_dir):
        return out
    for name in os.listdir(buffer_dir):
        m = _EXPERT_RE.match(name)
        if m is None:
            continue
        p = os.path.join(buffer_dir, name)
        if _is_complete(p):
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def load_expert_metadata(path) -> dict:
    """The JSON metadata of one expert checkpoint."""
    with open(os.path.join(path, _META_ITEM, "metadata")) as f:
        return json.load(f)


def _epoch_tree_metadata(path):
    return _checkpointer().metadata(path).item_metadata[_TRAJ_ITEM].tree


def _restore_epochs(path, epochs: Sequence[int]):
    """Partial restore of the given epoch snapshots -> list of numpy param pytrees.

    Only the arrays of the requested ``epoch_XXXX`` subtrees are read (Orbax partial
    restore on the OCDBT store).
    """
    ocp = _ocp()
    tree_md = _epoch_tree_metadata(path)
    names = [_EPOCH_FMT.format(int(e)) for e in epochs]
    missing = [n for n in names if n not in tree_md]
    if missing:
        try:
            meta = load_expert_metadata(path)
            trained, rec = int(meta["epochs"]), int(meta.get("record_epochs", meta["epochs"]))
        except Exception:  # noqa: BLE001 -- the message then says less
            trained = rec = None
        need, have = max(int(e) for e in epochs), len(tree_md) - 1
        why = (f"it was trained for {trained} epoch(s), snapshots recorded up to epoch {rec}"
               if trained is not None else "its metadata cannot be read")
        cause = ("record_epochs" if trained is not None and trained >= need else
                 "epochs (and record_epochs, when set)")
        raise ExpertMismatchError(
            f"{path} has snapshots 0..{have} ({why}), but epoch {need} is needed "
            f"(objective.max_start_epoch + objective.expert_epochs). Lower those to at most "
            f"{have} in total, or build experts with {cause} >= {need} in another buffer "
            f"dir (the stored ones are never overwritten)")
    item = {n: tree_md[n] for n in dict.fromkeys(names)}
    rargs = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
    out = _checkpointer().restore(path, ocp.args.Composite(**{_TRAJ_ITEM: ocp.args.PyTreeRestore(
        item=item, restore_args=rargs, partial_restore=True)}))[_TRAJ_ITEM]
    return [out[n] for n in names]


def _epoch_list(epochs, num_snapshots=None):
    """None -> all; int n -> 0..n inclusive; range / sequence -> as given."""
    if epochs is None:
        if num_snapshots is None:
            raise ValueError("epochs=None needs the number of snapshots")
        return list(range(int(num_snapshots)))
    if isinstance(epochs, (int, np.integer)):
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        return list(range(int(epochs) + 1))
    out = [int(e) for e in epochs]
    if not out or min(out) < 0:
        raise ValueError(f"bad epochs selection {epochs!r}")
    return out


def load_slice(buffer_dir, expert: int, start: int, k: int, *, endpoints_only: bool = False):
    """Snapshots ``start .. start + k`` (inclusive) of one expert, read partially.

    Returns a numpy params pytree with leaves (k + 1, ...): [0] = theta at epoch ``start``,
    [-1] = the target at ``start + k``. ``endpoints_only``: read just those two snapshots
    (leaves (2, ...)), all TM needs.
    """
    path = expert_dir(buffer_dir, expert)
    if not _is_complete(path):
        raise MissingExpertsError(f"expert {expert} is missing or incomplete in {buffer_dir}",
                                  buffer_dir=buffer_dir, missing=(expert,))
    epochs = [start, start + k] if endpoints_only else list(range(start, start + k + 1))
    snaps = _restore_epochs(path, epochs)
    return jax.tree.map(lambda *s: np.stack(s), *snaps)


def _set_aside_expert(buffer_dir, path, err, progress=True):
    """Rename a damaged expert into <buffer_dir>/damaged/ and say so; returns the new path."""
    from jaxdd.workdir import set_aside

    dest = set_aside(path, root=buffer_dir)
    msg = (f"[experts] {path} is damaged ({type(err).__name__}: "
           f"{str(err).splitlines()[0][:200] if str(err) else ''}); set aside as {dest} "
           f"(delete it when you no longer need it); it will be rebuilt")
    print(msg)
    return dest


def _clean_tmp(buffer_dir):
    removed = []
    for name in os.listdir(buffer_dir):
        if name.startswith("expert_") and _TMP_MARK in name:
            shutil.rmtree(os.path.join(buffer_dir, name), ignore_errors=True)
            removed.append(name)
    return removed
