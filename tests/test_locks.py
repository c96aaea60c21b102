"""Locks on a workdir and a buffer dir (issue 32, `jaxdd.locks`): a second process refuses at
once naming the holder and touches nothing; a dead holder's lock is taken over with a note;
a holder on another host is never taken over; default workdir names stay under workdirs/.

The live holders are real processes (`_holder`: another Python process takes the lock with
`jaxdd.locks.acquire`, then sleeps), so the checks cross process boundaries as two runs do.
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from jaxdd import locks
from jaxdd import workdir as wd
from tinyrun import subprocess_env, tiny_config, write_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return subprocess_env()


@pytest.fixture
def holder():
    """holder(directory, what) -> a live process holding the lock of `directory`."""
    procs = []

    def start(directory, what="workdir"):
        code = ("import sys, time\nfrom jaxdd import locks\n"
                "locks.acquire(sys.argv[1], sys.argv[2])\nprint('held', flush=True)\n"
                "time.sleep(300)\n")
        p = subprocess.Popen([sys.executable, "-c", code, str(directory), what],
                             stdout=subprocess.PIPE, text=True, env=_env())
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _tree(directory):
    """{relative path: (size, mtime_ns, sha256)} of every file (the lock file excluded)."""
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            if f == locks.LOCK_NAME:
                continue
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, directory)] = (
                st.st_size, st.st_mtime_ns, hashlib.sha256(open(p, "rb").read()).hexdigest())
    return out


def test_second_process_refused_then_stale_lock_taken_over(tmp_path, holder, capsys):
    w = tmp_path / "fresh" / "w"  # two fresh runs at once: the directory does not exist yet
    p = holder(w)
    with pytest.raises(locks.LockedError) as e:
        locks.acquire(w, "workdir")
    msg = str(e.value)
    for needle in (f"pid {p.pid}", f"host {socket.gethostname()}", "started ",
                   "command: python -c", "Wait for it",
                   f"kill {p.pid}", os.path.join(str(w), locks.LOCK_NAME)):
        assert needle in msg, (needle, msg)
    assert isinstance(e.value, wd.WorkdirError)  # the entry points' handlers catch it
    p.send_signal(signal.SIGKILL)  # a kill -9: the lock stays, its holder is gone
    p.wait()
    assert locks.holder(w)["pid"] == p.pid
    locks.acquire(w, "workdir")
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and "taking over the stale lock" in note[0], note
    assert f"pid {p.pid}" in note[0] and "no longer running" in note[0]
    assert locks.holder(w)["pid"] == os.getpid()
    locks.acquire(w, "workdir")  # reentrant within a process
    locks.release(w)
    assert locks.holder(w)["pid"] == os.getpid()
    locks.release(w)
    assert locks.holder(w) is None
    locks.acquire(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b" / locks.LOCK_NAME).exists()
    locks.release(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()  # created for the lock, left empty: removed


def test_reused_pid_other_host_and_unreadable_locks(tmp_path, holder):
    d = tmp_path / "d"
    d.mkdir()
    p = holder(tmp_path / "other")  # a live pid that is not the lock's process
    rec = {"host": socket.gethostname(), "boot_id": locks._boot_id(), "pid": p.pid,
           "proc_start": "1", "started": "2020-01-01T00:00:00+00:00", "command": "old",
           "token": "t"}
    lock = d / locks.LOCK_NAME
    lock.write_text(json.dumps(rec))  # the pid lives, but started later: reused -> stale
    assert locks.live_holder(d) is None
    locks.acquire(d)
    locks.release(d)
    rec.update(host="another-host", proc_start=None)  # cannot be checked from here
    lock.write_text(json.dumps(rec))
    with pytest.raises(locks.LockedError, match="another host cannot be checked"):
        locks.acquire(d)
    assert json.loads(lock.read_text())["host"] == "another-host"  # never taken over
    lock.write_text("{trunc")  # unreadable and fresh: maybe being written -> refused
    with pytest.raises(locks.LockedError, match="unreadable lock"):
        locks.check_free(d)
    old = os.stat(lock).st_mtime - 3600
    os.utime(lock, (old, old))  # unreadable for an hour: stale
    locks.acquire(d)
    locks.release(d)
    assert not lock.exists()


def test_live_run_workdir_refused_before_any_file_is_read(tmp_path, holder):
    """A second run on a live run's workdir (whose newest checkpoint is mid-write, i.e.
    unreadable): refused before reading anything, nothing moved to damaged/, nothing
    advised deleted; the same through launch/distill.py (exit code 1, no traceback)."""
    from jaxdd import distill

    npz = write_npz(tmp_path / "tiny.npz")
    cfg = tiny_config(npz, str(tmp_path / "buf"))
    w = tmp_path / "w"
    (w / "checkpoints" / "55").mkdir(parents=True)
    (w / "checkpoints" / "55" / "_CHECKPOINT_METADATA").write_text("{partial")
    (w / "aux.msgpack").write_bytes(b"being rewritten")
    wd.write_identity(str(w), cfg)
    before = _tree(w)
    p = holder(w)
    with pytest.raises(locks.LockedError) as e:
        distill.Run(cfg, str(w), progress=False)
    msg = str(e.value)
    assert f"pid {p.pid}" in msg and "damaged" not in msg and "aux.msgpack" not in msg
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "distill.py"),
         f"--config={os.path.join(ROOT, 'configs', 'tm_pixel.py')}:{npz}", f"--workdir={w}",
         "--no_progress"], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and f"in use by another process: pid {p.pid}" in r.stderr
    assert _tree(w) == before and not (w / "damaged").exists()
    assert locks.holder(w)["pid"] == p.pid  # the live run's lock is still its own


def test_two_buffer_builds_on_one_dir(tmp_path, holder):
    from jaxdd import experts
    from jaxdd.config import buffer_config

    cfg = buffer_config("digits,num_experts=1,epochs=1")
    cfg.dataset.name = write_npz(tmp_path / "tiny.npz")
    cfg.dataset.resolution = None
    cfg.model.name = "ConvNetD1W4"
    buf = tmp_path / "buf"
    p = holder(buf, "buffer dir")
    with pytest.raises(locks.LockedError) as e:
        experts.build_buffer(str(buf), cfg, progress=False)  # refused before any training
    assert f"buffer dir {buf} is in use by another process: pid {p.pid}" in str(e.value)
    assert "--buffer_dir" in str(e.value)
    assert os.listdir(buf) == [locks.LOCK_NAME]


@pytest.mark.parametrize("config, expect", [
    ("configs/tm_ddif.py:cifar10,ipc=10", "tm_ddif-cifar10_ipc10"),  # names of earlier runs
    ("configs/tm_pixel.py", "tm_pixel-default"),
    ("configs/tm_pixel.py:digits,source=../../../../esc", "tm_pixel-digits_source________esc"),
    ("configs/tm_pixel.py:/data/my set.npz", "tm_pixel-_data_my_set.npz"),
    ("configs/../..:..", "_-_"),
])
def test_default_workdir_is_one_sanitized_name_under_workdirs(config, expect):
    from jaxdd.config import default_workdir

    got = default_workdir(config)
    assert got == os.path.join("workdirs", expect)


def test_default_workdir_long_names_are_cut_with_a_hash():
    from jaxdd.config import default_workdir

    a = default_workdir("configs/tm_pixel.py:" + "x" * 300 + ",a=1")
    b = default_workdir("configs/tm_pixel.py:" + "x" * 300 + ",a=2")
    for got in (a, b):
        name = got[len("workdirs/"):]
        assert os.path.dirname(got) == "workdirs" and len(name) <= 96
        assert all(c.isalnum() or c in "._=-" for c in name)
    assert a != b


def test_empty_workdir_flag_is_an_error(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "distill.py"),
                        f"--config={os.path.join(ROOT, 'configs', 'tm_pixel.py')}",
                        "--workdir=", "--no_progress"], capture_output=True, text=True,
                       env=_env(), timeout=120, cwd=str(tmp_path))
    assert r.returncode != 0 and "--workdir is empty" in r.stderr, r.stderr[-2000:]
    assert not os.path.exists(tmp_path / "workdirs")
