"""A process's hold on a directory (a run's workdir, an expert buffer) and its clean stops.

Lock: ``<dir>/.jaxdd.lock``, a JSON file naming the holder (host, boot id, pid, the pid's
start time in /proc, when it started, the command). It is created atomically -- written to
a private temporary file, then hard-linked to the lock's name (``os.link`` fails when the name exists, also on
NFS; where links are unsupported, ``os.open(O_CREAT | O_EXCL)``) -- so it works on the
shared filesystems of multi-host runs, where ``fcntl`` locks do not reliably. A second
process refuses at once with a message naming the holder and what to do
(`LockedError`, a `jaxdd.workdir.WorkdirError`). A lock whose holder is dead (same host and
boot, the pid gone or reused by another program; or the host rebooted) is stale: it is taken
over with a one-line note. A holder on another host cannot be checked from here: the message
says which file to delete if that process is gone. Locks are per process and reentrant (the
launch script and `build_buffer` both hold the buffer lock of one build). Released on a
normal exit, on exceptions, on SIGINT / SIGTERM (`clean_stops` turns both into an
exception, so every ``finally`` runs) and, as a backstop, at interpreter exit; a kill -9
leaves a stale lock, taken over by the next run. On multi-host runs process 0 alone takes
the lock (``multiprocess=True``) and tells the others whether it got it.

Readers (`check_free`) look at the lock before reading a directory's files, so a second
process never calls a live run's checkpoints or experts damaged.

The clean stops (`clean_stops`, `deferred_stops`: one line, the resume command) live in
`jaxdd.stops` and are re-exported here.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import socket
import sys
import time
import uuid

from jaxdd.stops import (Stopped, clean_stops, command_line, deferred_stops,  # noqa: F401
                         disk_full_error, resume_command)
from jaxdd.workdir import WorkdirError

__all__ = ["LOCK_NAME", "LockedError", "Stopped", "acquire", "release", "hold", "holder",
           "check_free", "live_holder", "clean_stops", "deferred_stops", "disk_full_error",
           "command_line", "resume_command"]

LOCK_NAME = ".jaxdd.lock"
_UNREADABLE_GRACE_S = 10.0  # an unreadable lock younger than this may be being written
_HELD: dict = {}  # abspath(directory) -> _Lock


class LockedError(WorkdirError):
    """Another live process holds the directory's lock; the message names it."""


def lock_path(directory) -> str:
    return os.path.join(os.fspath(directory), LOCK_NAME)


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_start(pid):
    """The pid's start time in clock ticks since boot (Linux), None when unknown."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True

def _me(what, directory, token, command=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": os.getpid(),
            "proc_start": _proc_start(os.getpid()), "started": now.isoformat(timespec="seconds"),
            "command": command or command_line(), "what": what,
            "directory": os.path.abspath(directory),
            "token": token}


def holder(directory):
    """The lock's JSON (dict) or None when there is no lock; {'unreadable': reason, 'age_s'}
    when the file cannot be parsed."""
    path = lock_path(directory)
    try:
        with open(path) as f:
            text = f.read()
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    except OSError as e:
        return {"unreadable": f"{type(e).__name__}: {e}", "age_s": 0.0}
    try:
        info = json.loads(text)
        if not isinstance(info, dict) or "pid" not in info:
            raise ValueError("not a lock record")
        return info
    except ValueError as e:
        return {"unreadable": f"{type(e).__name__}: {e}", "age_s": age}


def _is_mine(info) -> bool:
    return (info.get("host") == socket.gethostname() and info.get("pid") == os.getpid()
            and info.get("boot_id") == _boot_id())


def _stale_reason(info):
    """Why the holder is certainly dead, or None (alive, or on a host we cannot check)."""
    if "unreadable" in info:
        if info.get("age_s", 0.0) > _UNREADABLE_GRACE_S:
            return f"the lock file is unreadable ({info['unreadable']})"
        return None
    if info.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if info.get("boot_id") and boot and info["boot_id"] != boot:
        return "its host has rebooted since"
    pid = info.get("pid")
    if not _alive(pid):
        return "that process is no longer running"
    if info.get("proc_start") and _proc_start(pid) not in (None, info["proc_start"]):
        return "that process is no longer running (its pid now belongs to another program)"
    return None


def _describe(info) -> str:
    if "unreadable" in info:
        return f"an unreadable lock ({info['unreadable']}; it may be being written right now)"
    age = ""
    try:
        t = datetime.datetime.fromisoformat(info["started"])
        age = f" ({(datetime.datetime.now(datetime.timezone.utc) - t).total_seconds() / 60:.0f}" \
              f" min ago)"
    except (KeyError, TypeError, ValueError):
        pass
    return (f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"
            f"{age}, command: {info.get('command')}")


def _refusal(directory, what, info, advice):
    path = lock_path(directory)
    pid, host = info.get("pid"), info.get("host")
    stop = (f" (or stop it: `kill {pid}` on {host} saves and stops it cleanly)"
            if "unreadable" not in info else "")
    return (f"{what} {directory} is in use by another process: {_describe(info)}. Two "
            f"processes on one {what} would overwrite each other's files, so this one stops "
            f"here (nothing in {directory} was read or changed). {advice}{stop}. If that "
            f"process is no longer running (a process on another host cannot be checked from "
            f"here), delete {path} and run again.")


class _Lock:
    def __init__(self, directory, what, token, created):
        self.directory, self.what, self.token, self.created = directory, what, token, created
        self.count = 1


def _create(path, record) -> bool:
    """Atomically create `path` holding `record`; False when it exists."""
    text = json.dumps(record, indent=1)
    tmp = f"{path}.{record['token']}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # links unsupported, or NFS reporting an error for a link it made
        try:
            if os.stat(tmp).st_nlink == 2:
                return True
        except OSError:
            pass
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _take_over_stale(directory, what, info, reason, quiet):
    """Remove a stale lock (one taker at a time: <lock>.takeover, created exclusively)."""
    path = lock_path(directory)
    guard = path + ".takeover"
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - os.stat(guard).st_mtime > 60:  # its taker died: clear it
                os.unlink(guard)
        return
    try:
        now = holder(directory)
        same = now is not None and (now.get("token") == info.get("token")
                                    if "unreadable" not in info else "unreadable" in now)
        if same:
            os.unlink(path)
            if not quiet:
                who = (_describe(info) if "unreadable" not in info
                       else "an unreadable lock")
                print(f"[jaxdd] taking over the stale lock of {what} {directory}: "
                      f"{who}; {reason}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(guard)


def acquire(directory, what="workdir", *, advice="Wait for it to finish, or use another "
            "directory", quiet=False, command=None):
    """Take the lock of `directory` (created with its parents when absent; directories
    created here are removed again on release if left empty). Reentrant within a process.
    LockedError when another live process holds it; a stale lock is taken over."""
    directory = os.fspath(directory)
    key = os.path.abspath(directory)
    if key in _HELD:
        _HELD[key].count += 1
        return _HELD[key]
    created, d = [], key
    while d and not os.path.exists(d):
        created.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    os.makedirs(key, exist_ok=True)
    token = uuid.uuid4().hex
    path = lock_path(key)
    for _ in range(5):
        if _create(path, _me(what, directory, token, command)):
            lock = _HELD[key] = _Lock(directory, what, token, created)
            return lock
        info = holder(key)
        if info is None:
            continue  # released meanwhile
        if "unreadable" not in info and _is_mine(info):  # left by this process: adopt it
            lock = _HELD[key] = _Lock(directory, what, info.get("token"), created)
            return lock
        reason = _stale_reason(info)
        if reason is None:
            _remove_created(created)
            raise LockedError(_refusal(directory, what, info, advice))
        _take_over_stale(key, what, info, reason, quiet)
        time.sleep(0.05)
    _remove_created(created)
    raise LockedError(f"could not take the lock {path} (other processes keep taking it); "
                      f"run again when they are done")


def _remove_created(created):
    for d in created:  # deepest first
        try:
            os.rmdir(d)
        except OSError:
            break


def release(directory):
    """Release this process's lock of `directory` (when the last holder in it is done)."""
    key = os.path.abspath(os.fspath(directory))
    lock = _HELD.get(key)
    if lock is None:
        return
    lock.count -= 1
    if lock.count > 0:
        return
    del _HELD[key]
    info = holder(key)
    if info is not None and info.get("token") == lock.token and info.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(lock_path(key))
    _remove_created(lock.created)


@atexit.register
def _release_all():
    for key in list(_HELD):
        _HELD[key].count = 1
        release(key)


def _agree(ok: bool):
    """Multi-process: process 0's outcome on every process (a collective)."""
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    if jax.process_count() == 1:
        return ok
    got = multihost_utils.broadcast_one_to_all(np.asarray(1 if ok else 0, np.int32))
    return bool(int(np.asarray(got)))


@contextlib.contextmanager
def hold(directory, what="workdir", *, advice="Wait for it to finish, or use another "
         "directory", multiprocess=False, quiet=False, command=None):
    """Hold the lock of `directory` for the block. multiprocess: a jax.distributed run:
    process 0 alone takes it and every process learns the outcome (all call this)."""
    take = True
    if multiprocess:
        import jax
        take = jax.process_index() == 0
    err = None
    if take:
        try:
            acquire(directory, what, advice=advice, quiet=quiet, command=command)
        except LockedError as e:
            err = e
    if multiprocess and not _agree(err is None):
        if err is None:
            err = LockedError(f"{what} {directory}: process 0 could not take its lock (its "
                              f"message says who holds it)")
    if err is not None:
        raise err
    try:
        yield
    finally:
        if take:
            release(directory)


def live_holder(directory):
    """The lock record when another live process (or an unreadable, fresh lock) holds
    `directory`, else None (no lock, this process's, or a stale one)."""
    info = holder(directory)
    if info is None or ("unreadable" not in info and _is_mine(info)):
        return None
    if _stale_reason(info) is not None:
        return None
    return info


def check_free(directory, what="workdir", *, advice="Wait for it to finish, or use "
               "another directory"):
    """For readers: LockedError when another live process holds `directory`'s lock
    (checked before any file of it is read)."""
    info = live_holder(directory)
    if info is not None:
        raise LockedError(_refusal(os.fspath(directory), what, info, advice))
