"""A run's checkpoints and static data in its workdir: open (read-only checks), save,
restore the latest READABLE checkpoint (damaged ones set aside, never deleted)."""
from __future__ import annotations

import os

import jax
import numpy as np

from jaxdd.io import load_tree


def _fault(point):
    from jaxdd.workdir import fault_point
    fault_point(point)


def has_checkpoints(directory) -> bool:
    """Whether an Orbax checkpoint directory holds any (finalized) step."""
    if not os.path.isdir(directory):
        return False
    return any(n.isdigit() for n in os.listdir(directory))


def saved_steps(workdir):
    """The iterations of the finalized checkpoints in workdir/checkpoints (ascending; an
    unfinished write, `<n>.orbax-checkpoint-tmp-*`, is not one)."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def stop_summary(workdir, disk_full=False) -> str:
    """What a stopped run left (`jaxdd.locks.clean_stops`): its last checkpoint."""
    steps = saved_steps(workdir)
    directory = os.path.join(workdir, "checkpoints")
    if not steps:
        return ("no checkpoint of this run was written yet (complete experts already stored "
                "in its buffer are kept)")
    n = steps[-1]
    if disk_full:
        return (f"the last good checkpoint (iteration {n}, {os.path.join(directory, str(n))})"
                f" is intact")
    return (f"saved: the checkpoint of iteration {n} ({os.path.join(directory, str(n))}; a "
            f"resume redoes the iterations after it)")


def checkpoint_manager(directory, keep):
    import orbax.checkpoint as ocp
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))


def read_resumable(workdir, cfg):
    """Read-only checks of a workdir before any work: (aux or None, resume_changes).

    First the workdir's lock (`jaxdd.locks.check_free`): held by another live process ->
    LockedError naming it, before any file is read.

    The recorded config.json must match `cfg` on every result-changing field
    (`jaxdd.workdir.check_resume`); aux.msgpack must be readable when checkpoints exist.
    aux None: a fresh start."""
    from jaxdd import workdir as wd
    from jaxdd.locks import check_free

    # before any file is read: a live run's workdir (another process holds its lock) is
    # refused, so its checkpoints are never read mid-rotation nor called damaged. Process 0
    # checks (it alone holds the lock in a multi-host run).
    if jax.process_index() == 0:
        check_free(workdir, "workdir", advice="Wait for it to finish, or use another "
                   "--workdir")
    ckpt_dir = os.path.join(workdir, "checkpoints")
    aux_path = os.path.join(workdir, "aux.msgpack")
    recorded = wd.read_identity(workdir)
    has_ckpts = has_checkpoints(ckpt_dir)
    if has_ckpts and recorded is None:
        raise wd.WorkdirError(
            f"{workdir} holds checkpoints but no config.json (the record of the run's "
            f"config, needed to check a resume): restore {wd.config_path(workdir)}, or "
            f"start over by deleting {ckpt_dir} (or use another --workdir).")
    changes = wd.check_resume(workdir, cfg, recorded) if recorded is not None else []
    if not has_ckpts:
        return None, changes
    if not os.path.exists(aux_path):
        raise wd.WorkdirError(
            f"{aux_path} is missing but {ckpt_dir} holds checkpoints: aux.msgpack "
            f"is the parameterization's static data (labels, masks, grids) the "
            f"checkpoints need, so the run cannot resume, and it will not silently "
            f"restart from iteration 0. Restore aux.msgpack, or restart from "
            f"iteration 0 by deleting {ckpt_dir} (or the whole workdir).")
    try:
        aux = load_tree(aux_path)
        if not isinstance(aux, dict) or "labels" not in aux:
            raise ValueError("no 'labels' entry")
    except Exception as e:  # noqa: BLE001
        raise wd.WorkdirError(wd.damaged_message(
            aux_path, e, "the parameterization's static data the checkpoints "
            "need", f"Restore it from a backup, or restart from iteration 0 by "
            f"deleting {ckpt_dir} and {aux_path} (or the whole workdir).")) from e
    return aux, changes


class Checkpoints:
    """The workdir's Orbax CheckpointManager for the synthetic set's state (`SynState`)."""

    def __init__(self, workdir, keep=2, *, is_writer=True):
        self.workdir = workdir
        self.directory = os.path.join(workdir, "checkpoints")
        self.keep = keep
        self.is_writer = is_writer
        self.manager = checkpoint_manager(self.directory, keep)

    def latest_step(self):
        return self.manager.latest_step()

    def all_steps(self):
        return list(self.manager.all_steps())

    def save(self, state, force=False):
        import orbax.checkpoint as ocp
        from jaxdd.locks import deferred_stops
        _fault("save_checkpoint")
        with deferred_stops():  # a Ctrl-C / SIGTERM stops right after the write
            self.manager.save(int(state.step), args=ocp.args.StandardSave(state), force=force)
            self.manager.wait_until_finished()
        _fault("saved_checkpoint")

    def restore(self, step, template):
        import orbax.checkpoint as ocp
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), template)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def restore_latest(self, template):
        """The latest READABLE checkpoint: a damaged one (truncated / corrupt files) is set
        aside in workdir/damaged/ (renamed, not deleted) and the previous one is used."""
        from jaxdd import workdir as wd

        tried = []
        for s in sorted(self.manager.all_steps(), reverse=True):
            try:
                state = self.restore(s, template)
                jax.block_until_ready(state)
                if int(state.step) != int(s):
                    raise ValueError(f"holds iteration {int(state.step)}")
                if tried:
                    print(f"[jaxdd] resuming from checkpoint {s} instead")
                return state
            except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint
                path = os.path.join(self.directory, str(s))
                moved = wd.set_aside(path, root=self.workdir) if (
                    self.is_writer and os.path.exists(path)) else path
                tried.append(s)
                print(f"[jaxdd] checkpoint {s} in {self.directory} cannot be read "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
                      f"; set aside as {moved}; falling back to the previous checkpoint")
                self.manager.close()
                self.manager = checkpoint_manager(self.directory, self.keep)
        aux_path = os.path.join(self.workdir, "aux.msgpack")
        raise wd.WorkdirError(
            f"no readable checkpoint in {self.directory} (damaged ones set aside in "
            f"{os.path.join(self.workdir, 'damaged')}: {tried}). Restart from iteration 0 "
            f"with the same command after deleting {self.directory} and {aux_path}, or use "
            f"another --workdir.")
