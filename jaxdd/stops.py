"""Clean stops of the entry points (issue 32): SIGINT (Ctrl-C), SIGTERM and a full disk
(OSError ENOSPC, wherever it is raised) end with one line -- what was saved, the command
that resumes -- and exit code 130 / 143 / 1, no traceback (`clean_stops`). A signal that
arrives while a checkpoint or an expert is being written stops the process right after that
write (`deferred_stops`), so the writer's threads are never cut off and the line names the
checkpoint just written. The locks of `jaxdd.locks` are released on the way out (every
``finally`` runs: SIGTERM becomes an exception).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shlex
import signal
import sys

__all__ = ["Stopped", "clean_stops", "deferred_stops", "disk_full_error", "command_line",
           "resume_command"]


class Stopped(KeyboardInterrupt):
    """Raised by the SIGINT / SIGTERM handler of `clean_stops` (a KeyboardInterrupt: nothing
    in the library swallows it, every ``finally`` runs); deferred while a checkpoint or an
    expert is being written (`deferred_stops`)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def command_line(argv=None) -> str:
    argv = sys.argv if argv is None else argv
    return "python " + shlex.join([str(a) for a in argv]) if argv else "python"


def resume_command(argv, flag: str, value) -> str:
    """The command line `argv` as given, with ``--<flag>=<value>`` spelled out (any other
    spelling of that flag removed): the command that resumes the same run."""
    args, i = [], 1
    while i < len(argv):
        a = str(argv[i])
        if a in (f"--{flag}", f"-{flag}"):
            i += 2
            continue
        if not a.startswith((f"--{flag}=", f"-{flag}=")):
            args.append(a)
        i += 1
    return command_line([argv[0]] + args + [f"--{flag}={value}"])


def disk_full_error(exc):
    """The OSError ENOSPC behind `exc` (its causes / contexts; a library's error whose text
    says 'No space left on device' counts), else None."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return e
        if "No space left on device" in str(e) or "ENOSPC" in str(e):
            return e
        todo += [e.__cause__, e.__context__] + list(getattr(e, "exceptions", ()) or ())
    return None


_SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


_CRITICAL = [0, None]  # [depth of deferred_stops blocks, a signal received inside one]


def _raise_stopped(signum, frame):
    del frame
    if _CRITICAL[0]:  # a checkpoint / expert is being written: stop right after it
        _CRITICAL[1] = signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def deferred_stops():
    """A block that a stop of `clean_stops` does not interrupt (a checkpoint or an expert
    being written, whose writer threads would otherwise be cut off mid-file): a SIGINT /
    SIGTERM received inside it is raised when it ends. Without `clean_stops` (library use,
    Python's default handlers) it changes nothing."""
    _CRITICAL[0] += 1
    try:
        yield
    finally:
        _CRITICAL[0] -= 1
        if not _CRITICAL[0] and _CRITICAL[1] is not None:
            signum, _CRITICAL[1] = _CRITICAL[1], None
            raise Stopped(signum)


@contextlib.contextmanager
def clean_stops(saved, resume: str, *, prefix="[jaxdd]", default_path="",
                process=False):
    """Run the block; SIGINT / SIGTERM / a full disk end it with one line on stderr --
    ``saved(disk_full: bool)`` says what is on disk, then the command that resumes -- and
    SystemExit 130 / 143 / 1 (no traceback). Other exceptions pass through.
    process: the block is the whole process (an entry point in launch/): the exit may end
    the process at once (`_exit`)."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, _raise_stopped)
    except ValueError:  # not the main thread: no handler, the defaults apply
        old = {}
    try:
        yield
    except KeyboardInterrupt as e:
        _quiet_signals()
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"{prefix} stopped by {_SIGNAL_NAMES.get(signum, signum)}: {_safe(saved, False)};"
              f" resume with: {resume}", file=sys.stderr, flush=True)
        _exit(128 + int(signum), process)
    except Exception as e:  # noqa: BLE001 -- only a full disk is handled here
        full = disk_full_error(e)
        if full is None:
            raise
        _quiet_signals()
        path = getattr(full, "filename", None) or default_path
        print(f"{prefix} disk full: could not write {path} (No space left on device); "
              f"{_safe(saved, True)}; free some space, then resume with: {resume}",
              file=sys.stderr, flush=True)
        _exit(1, process)
    finally:
        for s, h in old.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)


def _exit(code, process):
    """SystemExit(code); but in a whole-process entry point (`process`) while a background
    thread of the run is inside a computation (the random-real baseline scored beside the
    loop, threads named 'jaxdd-*'), the interpreter's shutdown would stop that thread inside
    XLA and abort the process (SIGABRT instead of `code`): then the streams are flushed, the
    locks released and the process ends at once with `code` (nothing else is being written:
    checkpoint writes defer the signal until they are complete)."""
    import threading
    if not process:
        raise SystemExit(code)
    busy = [t for t in threading.enumerate()
            if t is not threading.current_thread() and t.is_alive()
            and t.name.startswith("jaxdd-")]
    if not busy:
        raise SystemExit(code)
    from jaxdd import locks
    locks._release_all()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _quiet_signals():
    """While the stop is reported and locks released: a second Ctrl-C does not interrupt."""
    for s in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            signal.signal(s, signal.SIG_IGN)


def _safe(saved, full):
    try:
        return saved(full)
    except Exception as e:  # noqa: BLE001 -- the stop line must print whatever happens
        return f"what was saved could not be read ({type(e).__name__}: {e})"
