"""Run assembly: config -> data -> mesh -> model -> parameterization -> objective inputs.

Every entry point (distill, buffer, evaluate, cross-arch, spectral, the benchmarks) builds
its pieces here, top to bottom, so the mapping from a config block to a library call is
written once:

    train, test = assemble.data(cfg)            # cfg.dataset -> jaxdd.data.load_dataset
    mesh        = assemble.mesh(cfg)            # cfg.mesh -> jax.sharding.Mesh | None
    model       = assemble.model(cfg, train.num_classes)

`dataset_kwargs(d)` is THE mapping from a `dataset` block (a ConfigDict, a plain dict such
as a saved set's metadata, or None fields) to `load_dataset`'s keyword arguments.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np

from jaxdd import objective as objective_lib
from jaxdd import sharding
from jaxdd.objective import Objective, Setup


def _get(d, name, default=None):
    """A field of a ConfigDict / dict / object, `default` when absent or None."""
    if d is None:
        return default
    if hasattr(d, "get"):
        v = d.get(name, default)
    else:
        v = getattr(d, name, default)
    return default if v is None else v


def _plain(v):
    return v.to_dict() if hasattr(v, "to_dict") else v


def dataset_kwargs(d, **override) -> dict[str, Any]:
    """`load_dataset` keyword arguments (name first) of a `dataset` config block: every
    preprocessing field (resolution, zca, zca_eps, normalize, stats, resize) plus where the
    data live (data_dir, download). `override` replaces fields that are not None (an entry
    point's --resolution, say)."""
    kw = dict(
        name=str(_get(d, "name", "")),
        data_dir=_get(d, "data_dir"),
        resolution=_get(d, "resolution"),
        zca=bool(_get(d, "zca", False)),
        zca_eps=float(_get(d, "zca_eps", 0.1)),
        normalize=_get(d, "normalize"),
        stats=_plain(_get(d, "stats")),
        resize=_get(d, "resize"),
        download=bool(_get(d, "download", False)),
    )
    if _get(d, "frames") is not None:  # video sources: frames per clip
        kw["frames"] = int(_get(d, "frames"))
    kw.update({k: v for k, v in override.items() if v is not None})
    return kw


def data(cfg_or_dataset, *, shard="process", **override):
    """(train, test) Datasets of a config's `dataset` block (or the block itself, or a
    saved set's `meta['dataset']` dict). `shard="process"`: in a multi-process run each
    process holds only its shard of the train split (`jaxdd.data.shard`); `shard=None`:
    the whole split."""
    from jaxdd.data import load_dataset

    d = cfg_or_dataset
    if hasattr(d, "get") and d.get("dataset", None) is not None and "name" not in d:
        d = d.get("dataset")
    kw = dataset_kwargs(d, **override)
    if shard == "process":
        from jaxdd.data.shard import process_shard
        shard = process_shard()
    if shard is not None:
        kw["shard"] = shard
    name = kw.pop("name")
    return load_dataset(name, **kw)


def mesh(cfg=None):
    """The run's device mesh (`cfg.mesh.data`, 0 or absent: every device); None on one
    device. Entry points call this once and pass the mesh down."""
    from jaxdd import sharding
    return sharding.mesh_from_config(cfg)


def model(cfg, num_classes: int):
    """The student / expert network of `cfg.model` (name + overrides)."""
    from jaxdd.models import get_model
    m = cfg.model if hasattr(cfg, "model") or (hasattr(cfg, "get") and "model" in cfg) else cfg
    return get_model(str(_get(m, "name")), int(num_classes),
                     **dict(_plain(_get(m, "overrides", {})) or {}))


# ----------------------------------------------------------------------------- validated data

def validated_data(cfg, *, what="distill config", workdir=None, outputs=None):
    """One validation pass (jaxdd.validate) over the config and its data, reporting every
    problem at once (ConfigError); returns (train, test). Nothing is written.

    Beyond the fields: the parameterization's budget rule on the data's shape, stateless
    networks for trajectory matching, decode_subset / batch_syn against the set (clamped,
    noted), a memory estimate that refuses what cannot fit; with `workdir`, the workdir
    (writable or creatable, not a file) and a finished run asked for fewer iterations;
    `outputs` ({what: path}) are checked as directories the run will write."""
    from jaxdd import validate, validate_run

    rep = validate.distill_config(cfg)
    dirs = dict(outputs or {})
    try:  # TM: the experts' buffer dir, unless it exists (a shared read-only buffer loads)
        if objective_lib.trajectory_epochs(cfg.objective.name, cfg.objective) is not None:
            from jaxdd.config import buffer_for
            bdir = str(buffer_for(cfg).get("buffer_dir", "") or "")
            if bdir and not os.path.isdir(bdir):
                dirs.setdefault("buffer dir (experts)", bdir)
        sq = cfg.objective.get("squeeze", None)
        if sq is not None and str(sq.get("dir", "") or ""):
            dirs.setdefault("objective.squeeze.dir (teacher cache)", str(sq.get("dir")))
    except Exception:  # noqa: BLE001 -- bad objective fields are reported by distill_config
        pass
    if workdir is not None:
        from jaxdd import locks
        locks.check_free(workdir)  # another live run's workdir: refused before reading it
        dirs.setdefault("workdir", workdir)
        validate_run.finished_run(rep, workdir, cfg)
    validate.output_dirs(rep, dirs)
    p = validate.npz_path(cfg.dataset.get("name", ""))
    if p is not None:
        rep += validate.npz_file(p)
    train = test = None
    res = cfg.dataset.get("resolution")
    loadable = not (isinstance(res, (int, float)) and res <= 0) and not (
        p is not None and any(e.startswith(p) or p in e for e in rep.errors))
    if loadable:
        try:
            train, test = data(cfg)
        except Exception as e:  # noqa: BLE001 -- reported with the other problems
            rep.error(f"dataset {cfg.dataset.get('name')!r}: {e}")
    if train is not None:
        rep += validate.data(_validation_view(train, rep), test, ipc=cfg.param.get("ipc"),
                             model_name=cfg.model.get("name"),
                             overrides=cfg.model.get("overrides"),
                             dsa_strategy=cfg.get("dsa_strategy"))
        shape, k = tuple(train.image_shape), int(train.num_classes)
        validate_run.param_budget(rep, cfg, shape)
        if str(cfg.objective.get("name", "")).lower() == "tm":
            validate_run.stateless_model(rep, cfg, shape, k,
                                         why="trajectory matching's experts and students")
        try:  # fields too broken to estimate with are reported already
            validate_run.set_batches(rep, cfg, shape, k)
            validate_run.memory(rep, cfg, shape, k)
        except (TypeError, ValueError):
            pass
    rep.raise_if_errors(what)
    return train, test


class _ShardSummary:
    """What `validate.data` reads of a train split, for a process's shard: the GLOBAL label
    multiset (class sizes) and one finite placeholder image, so every process of a
    multi-process run reaches the same verdict (a process-local verdict would stop one
    process and leave the others waiting in a collective)."""

    def __init__(self, ds):
        sh = ds.shard
        self.labels = np.repeat(np.arange(len(sh.class_counts), dtype=np.int32),
                                sh.class_counts)
        self.images = np.zeros((1,) + tuple(ds.image_shape), np.float32)
        self.num_classes, self.class_names = ds.num_classes, ds.class_names
        self.image_shape = tuple(ds.image_shape)
        self._n = int(sh.total)

    def __len__(self):
        return self._n


def _validation_view(train, rep):
    """`train`, or for a process's shard a `_ShardSummary`; the shard's non-finite images
    are counted collectively (reported in `rep` on every process)."""
    if getattr(train, "shard", None) is None:
        return train
    from jaxdd.data.shard import allsum
    x = np.asarray(train.images).reshape(len(train.images), -1)
    bad = int(allsum(np.array([int((~np.isfinite(x).all(axis=1)).sum())], np.int64))[0])
    if bad:
        rep.error(f"dataset train: {bad} image(s) with NaN/inf values (over all processes' "
                  f"shards); clean the data")
    return _ShardSummary(train)


# ----------------------------------------------------------------------------- objective inputs
# The run prepares what the objective declares it needs (`trajectory_epochs`: expert
# trajectories; `needs_teacher`: a teacher and real statistics): objectives never import
# the loop or the experts module; TM receives trajectories, not a run.

def load_or_build_trajectories(bcfg, epochs: int, *, train_ds=None, test_ds=None,
                               progress=True):
    """Expert trajectories of the buffer `bcfg` (jaxdd.config.buffer_for), snapshots
    0..epochs, as HOST numpy arrays (experts, epochs + 1, ...): they stay in host memory,
    TM brings only the two snapshots of an iteration to the devices (`Objective.feed`);
    missing experts are built first (the distill command builds its own buffer)."""
    from jaxdd import experts

    if epochs > int(bcfg.epochs):
        raise ValueError(f"max_start_epoch + expert_epochs = {epochs} exceeds the experts' "
                         f"{bcfg.epochs} epochs (buffer.epochs)")
    expected = experts.expected_metadata(bcfg)
    kw = dict(expected=expected, num_experts=int(bcfg.num_experts), epochs=epochs)
    try:
        trajs, _ = experts.load_trajectories(bcfg.buffer_dir, **kw,
                                             build_hint=experts.build_command(bcfg))
    except experts.MissingExpertsError as e:
        full = train_ds
        if getattr(train_ds, "shard", None) is not None:
            # experts train on the whole split: each process gets a transient full copy
            # and builds its share of the missing experts (i % processes == its index)
            import dataclasses

            from jaxdd.data.shard import gather_split
            images, labels = gather_split(train_ds)
            full = dataclasses.replace(train_ds, images=images, labels=labels, shard=None)
        print(f"[jaxdd] {e}\n[jaxdd] building the missing experts now in {bcfg.buffer_dir} "
              f"({bcfg.num_experts} experts x {bcfg.epochs} epochs) ...")
        experts.build_buffer(bcfg.buffer_dir, bcfg, train=full, test=test_ds,
                             progress=progress)
        del full
        trajs, _ = experts.load_trajectories(bcfg.buffer_dir, **kw)
    return jax.tree.map(np.asarray, trajs)



def cached_teacher(cfg, train_ds, test_ds, workdir, *, progress=True):
    """CFM's squeeze + statistics stages (`jaxdd.teacher.prepare_teacher`), cached in
    cfg.objective.squeeze.dir or, when that is empty, the run's workdir."""
    from jaxdd import teacher

    if getattr(train_ds, "shard", None) is not None:
        raise ValueError(
            "CFM in a multi-process run: the teacher's squeeze and real-statistics passes "
            "read the whole training split, which each process of a distributed run holds "
            "only a shard of. Run CFM in one process (without --distributed; it uses every "
            "local device).")
    directory = cfg.objective.squeeze.get("dir", "") or workdir
    if not directory:
        raise ValueError("the CFM objective caches its teacher in a directory: set "
                         "cfg.objective.squeeze.dir or pass the run's workdir")
    return teacher.prepare_teacher(cfg.objective, train_ds, test_ds, directory, progress=progress)



def teacher_record(cfg, workdir, teacher) -> dict:
    """Where a prepared teacher lives and what it is (stored in a set's metadata, so the
    set can be scored with its soft labels later: `jaxdd.evaluators.load_teacher`)."""
    o = cfg.objective
    return {"path": os.path.abspath(os.path.join(
                o.squeeze.get("dir", "") or workdir, "teacher.msgpack")),
            "name": o.teacher.name,
            "overrides": dict(o.teacher.get("overrides", {}) or {}),
            "test_acc": float(teacher["test_acc"])}


def objective_inputs(cfg, train_ds, test_ds, *, workdir=None, progress=True):
    """What `cfg.objective` declares it needs, prepared: (trajectories, teacher), each None
    when not needed. TM (`trajectory_epochs`): expert trajectories as host arrays, built
    first when missing; CFM (`needs_teacher`): the squeezed teacher and the real statistics
    (cached in cfg.objective.squeeze.dir or `workdir`)."""
    from jaxdd.config import buffer_for

    name, ocfg = cfg.objective.name, cfg.objective
    teacher = (cached_teacher(cfg, train_ds, test_ds, workdir, progress=progress)
               if objective_lib.needs_teacher(name, ocfg) else None)
    epochs = objective_lib.trajectory_epochs(name, ocfg)
    trajs = (None if epochs is None else load_or_build_trajectories(
        buffer_for(cfg), epochs, train_ds=train_ds, test_ds=test_ds, progress=progress))
    return trajs, teacher


def build_objective(cfg, model, train_ds, test_ds=None, *, mesh=None, trajectories=None,
                    teacher=None, syn_labels=None, progress=True,
                    builder: Callable | None = None) -> Objective:
    """The Objective of `cfg.objective.name` (or `builder(setup)`) from a complete `Setup`:
    the student `model` (applied in train mode), the data, the run's `mesh` and the inputs
    `objective_inputs` prepared."""
    def apply_fn(p, x):
        return model.apply({"params": p}, x, train=True)

    train_ds = real_guided_train(cfg, train_ds, mesh)
    setup = Setup(cfg=cfg, model=model, apply_fn=apply_fn, train_ds=train_ds,
                  test_ds=test_ds, trajectories=trajectories, progress=progress,
                  teacher=teacher, mesh=mesh,
                  syn_labels=None if syn_labels is None else np.asarray(syn_labels))
    objective = (builder or objective_lib.get_builder(cfg.objective.name))(setup)
    if progress or trajectories is not None:
        print(memory_plan(objective, trajectories, cfg, mesh))
    return objective


def real_guided_train(cfg, train_ds, mesh):
    """The train split as TM's real-guided term (NSD, cfg.objective.gamma > 0) reads it:
    the flat (N, ...) images and labels, from which it draws real_batch rows per iteration.
    With a mesh they are placed once, split over the devices along N when N divides by the
    device count (`sharding.leading`; else replicated); without one, or for any other
    objective, `train_ds` is returned unchanged. A multi-process shard is gathered first
    (`jaxdd.data.shard.gather_split`, a transient full host copy, then only each process's
    device blocks are kept): the term draws from the flat split by row number, so every row
    must sit at its global position."""
    o = cfg.objective
    if (o.get("name") != "tm" or float(o.get("gamma", 0.0) or 0.0) <= 0
            or sharding.size(mesh) <= 1):
        return train_ds
    if getattr(train_ds, "shard", None) is not None:
        from jaxdd.data.shard import gather_split
        images, labels = gather_split(train_ds)
    else:
        images, labels = np.asarray(train_ds.images), np.asarray(train_ds.labels)
    images = sharding.put(images, sharding.leading(mesh, images.shape))
    labels = sharding.put(labels, sharding.leading(mesh, labels.shape))
    import copy
    view = copy.copy(train_ds)
    for name, value in (("images", images), ("labels", labels), ("shard", None)):
        object.__setattr__(view, name, value)  # frozen Dataset: a modified copy
    return view



def memory_plan(objective, trajectories, cfg, mesh=None) -> str:
    """One line: the memory the run will hold (printed before the loop starts): expert
    trajectories on the host, the objective's device data, and the per-iteration snapshots
    TM copies to the devices (two iterations in flight: current + prefetched)."""
    mb = lambda b: f"{b / 2**20:,.1f} MiB"  # noqa: E731
    parts = [f"[jaxdd] memory: {sharding.describe(mesh)}"]
    if trajectories is not None:
        from jaxdd.objective import tm
        hb = tm.host_bytes(trajectories, cfg.objective)
        parts.append(f"expert trajectories {mb(hb['trajectories_host'])} on the host")
        parts.append(f"start+target snapshots {mb(hb['per_iteration_device'])} per iteration "
                     f"on the devices (x2: prefetched)")
    parts.append(f"objective data {mb(sharding.tree_bytes(objective.data))} on the devices")
    return "; ".join(parts)

