"""Building and loading a buffer: which experts exist, train the missing ones, read them.

`build_buffer(buffer_dir, cfg)` trains and stores the experts of a buffer config that are not
there yet (resumable; several processes share the work); `load_trajectories` reads the
needed epoch snapshots of experts 0..n-1, checking each expert's metadata against the
buffer config (`jaxdd.experts.identity`) and naming the command that builds missing ones
(`jaxdd.experts.hints`). Damaged experts are set aside (<buffer_dir>/damaged/), never
deleted, and rebuilt bit for bit.
"""
from __future__ import annotations

import os
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdd.experts.errors import DamagedExpertError, ExpertMismatchError, MissingExpertsError
from jaxdd.experts.hints import build_command, missing_message, rebuild_hint
from jaxdd.experts.identity import (_cfg_get, _model_overrides, check_metadata,
                                    expected_metadata, expert_metadata)
from jaxdd.experts.storage import (_clean_tmp, _epoch_list, _restore_epochs, _set_aside_expert,
                                   dir_bytes, expert_dir, list_experts, load_expert_metadata,
                                   save_expert)
from jaxdd.experts.training import DEFAULT_DSA, _train

__all__ = ["build_buffer", "load_trajectories"]


def load_trajectories(buffer_dir, *, expected=None, num_experts=None, epochs=None,
                      build_hint: Optional[str] = None, progress: bool = False,
                      set_aside_damaged: bool = True):
    """Load experts 0..num_experts-1 (default: all complete ones), only the needed epochs.

    Args:
      expected: dict of metadata fields every expert must match (``expected_metadata``);
        mismatch -> ExpertMismatchError listing the fields.
      num_experts: how many experts (0..n-1) are needed; missing ones ->
        MissingExpertsError whose message gives the build command (``build_hint``).
      epochs: None = every recorded snapshot; int n = snapshots 0..n inclusive (TM passes
        max_start_epoch + expert_epochs); a range / sequence = exactly those snapshots.
    Returns:
      (trajs, metas): trajs = numpy params pytree, leaves (num_experts, len(epochs), ...);
      metas = list of the experts' metadata dicts.
    Only the selected epoch snapshots are read from disk (Orbax partial restore), written
    straight into the preallocated output arrays.
    A damaged expert (unreadable metadata or snapshots) is named and, with
    ``set_aside_damaged`` (default), renamed into <buffer_dir>/damaged/ (never deleted);
    then DamagedExpertError (a MissingExpertsError: build the buffer again to retrain it).
    """
    buffer_dir = os.fspath(buffer_dir)
    found = list_experts(buffer_dir)
    if num_experts is None:
        if not found:
            raise MissingExpertsError(missing_message(buffer_dir, [0], 0, build_hint, expected),
                                      buffer_dir=buffer_dir, missing=(0,), found=0)
        indices = list(found)
    else:
        indices = list(range(int(num_experts)))
        missing = [i for i in indices if i not in found]
        if missing:
            raise MissingExpertsError(missing_message(buffer_dir, missing, len(found),
                                                       build_hint, expected),
                                      buffer_dir=buffer_dir, missing=missing, found=len(found))
    metas = []
    for i in indices:
        try:
            meta = load_expert_metadata(found[i])
        except Exception as e:  # noqa: BLE001 -- damaged JSON
            _damaged(buffer_dir, i, found[i], e, build_hint, set_aside_damaged)
        check_metadata(meta, expected, where=f"expert {i} ({found[i]})",
                       buffer_dir=buffer_dir, hint=build_hint)
        metas.append(meta)
    ep = _epoch_list(epochs, min(int(m.get("num_snapshots", 0)) for m in metas))

    out = None
    from tqdm.auto import tqdm
    for j, i in enumerate(tqdm(indices, desc="loading experts", disable=not progress)):
        try:
            snaps = _restore_epochs(found[i], ep)
        except ExpertMismatchError:
            raise
        except Exception as e:  # noqa: BLE001 -- truncated / corrupt snapshot files
            _damaged(buffer_dir, i, found[i], e, build_hint, set_aside_damaged)
        if out is None:
            out = jax.tree.map(
                lambda a: np.empty((len(indices), len(ep)) + a.shape, a.dtype), snaps[0])
            treedef = jax.tree.structure(snaps[0])
        for t, s in enumerate(snaps):
            if jax.tree.structure(s) != treedef:
                raise ExpertMismatchError(f"expert {i} has a different parameter structure")
            for dst, src in zip(jax.tree.leaves(out), jax.tree.leaves(s)):
                if dst.shape[2:] != src.shape:
                    raise ExpertMismatchError(
                        f"expert {i}: parameter shape {src.shape} != {dst.shape[2:]}")
                dst[j, t] = src
        del snaps
    return out, metas


def _damaged(buffer_dir, i, path, err, hint, set_aside):
    from jaxdd.locks import live_holder

    where = path
    busy = live_holder(buffer_dir)
    if busy is not None:  # another process is writing this buffer: never move its files
        raise DamagedExpertError(
            f"expert {i} ({path}) cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else ''}) while another process "
            f"writes this buffer (pid {busy.get('pid')} on {busy.get('host')}, command: "
            f"{busy.get('command')}); nothing was moved. Run again when it is done.",
            buffer_dir=buffer_dir, missing=(i,), found=0) from err
    if set_aside:
        where = _set_aside_expert(buffer_dir, path, err)
    raise DamagedExpertError(
        f"expert {i} ({path}) is damaged: {type(err).__name__}: "
        f"{str(err).splitlines()[0][:200] if str(err) else ''}. "
        + (f"It was set aside as {where}; " if set_aside else "Delete or move it; ")
        + "rebuild it with:\n  " + rebuild_hint(buffer_dir, hint),
        buffer_dir=buffer_dir, missing=(i,), found=0) from err


def _gather_groups(traj, acc, hist, secs, group):
    """Multi-process `build_buffer`: every process's trained group (leading expert axis,
    padded to `group`) on every process -> [(traj, acc, hist, secs) per process], leaf by
    leaf (`jaxdd.data.shard.allgather`, exact bytes)."""
    from jaxdd.data.shard import allgather

    def pad(a, axis):
        a = np.asarray(a)
        widths = [(0, 0)] * a.ndim
        widths[axis] = (0, group - a.shape[axis])
        return np.pad(a, widths)

    leaves, tdef = jax.tree.flatten(traj)
    g_leaves = [allgather(pad(a, 0)) for a in leaves]
    g_acc = allgather(pad(acc, 0))
    g_hist = allgather(pad(hist, 1))
    g_secs = allgather(np.asarray([secs], np.float64))
    return [(jax.tree.unflatten(tdef, [g[q] for g in g_leaves]), g_acc[q], g_hist[q],
             float(g_secs[q][0])) for q in range(len(g_acc))]


def _barrier(name):
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def build_buffer(buffer_dir, cfg, *, train=None, test=None, progress=True):
    """Train and store the experts of ``cfg`` that are not in ``buffer_dir`` yet (resumable).

    cfg: the buffer ConfigDict (configs/buffer.py): dataset (name, resolution, zca,
    zca_eps, data_dir), model (name, overrides), num_experts, epochs, lr_teacher,
    batch_size, dsa_strategy, seed, record_epochs, experts_per_group.
    Expert i uses key fold_in(PRNGKey(seed), i) whatever group it lands in, so a resumed
    build trains exactly the experts an uninterrupted one would have.
    Complete experts whose metadata match (``expected_metadata(cfg, strict=True)``) are
    skipped; a complete expert with other settings raises ExpertMismatchError (never
    overwritten); leftover temporary / incomplete directories are deleted and rebuilt.
    train/test: preprocessed Datasets; default: ``jaxdd.assemble.data(cfg, shard=None)``
    (the whole split of cfg.dataset on every process).
    Prints a summary (mean +- std test accuracy, seconds, bytes per expert).
    Returns the list of the num_experts metadata dicts.
    One build per buffer dir at a time: the lock <buffer_dir>/.jaxdd.lock (`jaxdd.locks`)
    is taken before anything is read or tidied; held by another live process ->
    LockedError naming it, before any training.
    """
    buffer_dir = os.fspath(buffer_dir)
    n = int(cfg.num_experts)
    if getattr(train, "shard", None) is not None:
        raise ValueError(
            "build_buffer trains every expert on the whole training split, but `train` is "
            "one process's shard (jaxdd.data.shard): pass the whole split (assemble.data(cfg, "
            "shard=None), or jaxdd.data.shard.gather_split)")
    if n < 1:
        raise ValueError(f"num_experts={n}: a buffer needs at least one expert")
    # one builder at a time (process 0 of a multi-process build holds the lock and tells
    # the others): a second build on this buffer dir refuses at once, naming the holder
    from jaxdd import locks
    with locks.hold(buffer_dir, "buffer dir", multiprocess=jax.process_count() > 1,
                    advice="Wait for it to finish, then run this again (the experts it "
                    "stores are reused), or use another buffer dir (--buffer_dir or "
                    "buffer.buffer_dir)"):
        return _build_locked(buffer_dir, cfg, n, train, test, progress)


def _build_locked(buffer_dir, cfg, n, train, test, progress):
    # multi-process: every process reads the buffer, process 0 alone tidies it; then each
    # process trains and writes the missing experts i with i % processes == its index
    procs, me = jax.process_count(), jax.process_index()
    tidy = me == 0
    if os.path.isdir(buffer_dir) and tidy:
        removed = _clean_tmp(buffer_dir)
        if removed and progress:
            print(f"[experts] removed {len(removed)} unfinished temporary dir(s): {removed}")
    expected = expected_metadata(cfg, strict=True)
    found = list_experts(buffer_dir)
    todo = []
    for i in range(n):
        p = expert_dir(buffer_dir, i)
        if i in found:
            try:
                meta = load_expert_metadata(p)
            except Exception as e:  # noqa: BLE001 -- damaged metadata: set aside, rebuild
                if tidy:
                    _set_aside_expert(buffer_dir, p, e)
                todo.append(i)
                continue
            check_metadata(meta, expected, where=f"expert {i} ({p})",
                           buffer_dir=buffer_dir, hint=build_command(cfg, buffer_dir))
        else:
            if os.path.exists(p) and tidy:  # final name but not complete: never loadable
                _set_aside_expert(buffer_dir, p, ValueError("incomplete (not finalized)"))
            todo.append(i)

    if procs > 1:  # after process 0's tidying: every process sees the same buffer
        _barrier("jaxdd_experts_scanned")
        found = list_experts(buffer_dir)
        todo = [i for i in range(n) if i not in found]
    # process q trains the missing experts i with i % procs == q, one group per round
    shares = [[i for i in todo if i % procs == q] for q in range(procs)]
    t0 = time.time()
    if todo:
        if train is None:
            from jaxdd import assemble
            train, test = assemble.data(cfg, shard=None)  # the whole split, every process
        got = getattr(train, "preprocessing", "")  # '' / absent: unknown, not checked
        if got and got != expected["dataset"]["preprocessing"]:
            raise ExpertMismatchError(
                f"the training data given to build_buffer were preprocessed as {got!r}, but "
                f"the buffer config says {expected['dataset']['preprocessing']!r} "
                f"(dataset {cfg.dataset.name}): load them with the config's dataset fields "
                f"(zca, zca_eps, normalize, stats, resize).")
        from jaxdd.models import count_params, get_model
        ov = _model_overrides(cfg)
        model = get_model(str(cfg.model.name), int(train.num_classes), **ov)
        group = max(1, int(_cfg_get(cfg, "experts_per_group", 10)))
        # every group runs on the same number of lanes (padding lanes when a group is
        # short, e.g. the experts left after a kill): bitwise the same experts
        lanes = min(group, n)
        seed_key = jax.random.PRNGKey(int(_cfg_get(cfg, "seed", 0)))
        rec = _cfg_get(cfg, "record_epochs")
        rec = int(cfg.epochs) if rec is None else int(rec)
        if progress:
            part = f" (process {me} of {procs}: {len(shares[me])})" if procs > 1 else ""
            print(f"[experts] {len(todo)} of {n} experts to train{part} in {buffer_dir} "
                  f"({cfg.model.name}, {cfg.epochs} epochs, groups of {group})")
        rounds = max(-(-len(sh) // group) for sh in shares)
        for r in range(rounds):
            mine = shares[me][r * group:(r + 1) * group]
            idx = mine or todo[:1]  # nothing left here this round: a stand-in, discarded
            keys = jnp.stack([jax.random.fold_in(seed_key, i) for i in idx])
            tg = time.time()
            traj, acc, hist = _train(
                keys, model, train, test, epochs=int(cfg.epochs), lr=float(cfg.lr_teacher),
                batch_size=int(_cfg_get(cfg, "batch_size", 256)),
                dsa_strategy=_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA), record_epochs=rec,
                progress=progress, mesh=None, desc=f"experts {idx[0]}-{idx[-1]}", lanes=lanes)
            secs = (time.time() - tg) / len(idx)
            num_params = count_params(jax.tree.map(lambda a: a[0, 0], traj))
            if procs == 1:
                work = [(idx, traj, acc, hist, secs)]
            else:  # every process's group to process 0, which writes them all
                got = _gather_groups(traj, acc, hist, secs, group)
                if me != 0:
                    continue
                work = [(shares[q][r * group:(r + 1) * group],) + got[q] for q in range(procs)]
            for ids, tr, ac, hi, sc in work:
                for j, i in enumerate(ids):
                    meta = expert_metadata(cfg, i, key=jax.random.fold_in(seed_key, i),
                                           test_acc=ac[j], hist=hi[:, j], seconds=sc,
                                           num_params=num_params, train=train, record=rec)
                    meta["lanes"] = int(lanes)
                    os.makedirs(buffer_dir, exist_ok=True)
                    save_expert(expert_dir(buffer_dir, i), jax.tree.map(lambda a: a[j], tr),
                                meta, local=procs > 1)
                    from jaxdd.workdir import fault_point
                    fault_point("saved_expert")
    elapsed = time.time() - t0
    if procs > 1:
        _barrier("jaxdd_experts_built")

    found = list_experts(buffer_dir)
    metas = [load_expert_metadata(found[i]) for i in range(n)]
    accs = np.array([m["test_acc"] for m in metas], np.float64)
    sizes = [dir_bytes(found[i]) for i in range(n)]
    if progress:
        print(f"[experts] {buffer_dir}: {n} experts ({len(todo)} trained now in "
              f"{elapsed:.1f} s, {elapsed / max(len(todo), 1):.1f} s/expert); test acc "
              f"{100 * np.nanmean(accs):.2f} +- {100 * np.nanstd(accs):.2f} %; "
              f"{np.mean(sizes) / 1e6:.2f} MB per expert ({sum(sizes) / 1e6:.1f} MB total)")
    return metas
