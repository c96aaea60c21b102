"""Clean stops (issue 32, `jaxdd.locks.clean_stops`): Ctrl-C (SIGINT) and SIGTERM of a real
`launch/distill.py` process end with ONE line -- the last checkpoint's iteration and the
exact command that resumes -- exit code 130 / 143 and no traceback, the workdir's lock
released; that command resumes. A full disk (OSError ENOSPC from the checkpoint writer,
simulated) ends with one line naming the path and the intact last good checkpoint, and the
run resumes from it once there is space. (Kill -9 / resume byte-identity:
tests/test_reliability_faults.py.)
"""
import errno
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from jaxdd import locks
from tinyrun import subprocess_env, tiny_config, write_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return subprocess_env()


def _stop_at(cmd, workdir, after_step, signum):
    """Start `cmd`, send `signum` once checkpoint `after_step` exists -> (rc, stderr)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=_env())
    target = os.path.join(workdir, "checkpoints", str(after_step))
    t0 = time.time()
    while not os.path.isdir(target) and p.poll() is None and time.time() - t0 < 240:
        time.sleep(0.1)
    assert p.poll() is None, p.communicate()[1][-3000:]
    p.send_signal(signum)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def _one_line(err, start):
    lines = [ln for ln in err.splitlines() if ln.startswith(start)]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def test_sigint_then_sigterm_one_line_and_the_resume_command(tmp_path):
    npz = write_npz(tmp_path / "tiny.npz")
    w = str(tmp_path / "w")
    cmd = [sys.executable, os.path.join(ROOT, "launch", "distill.py"),
           f"--config={os.path.join(ROOT, 'configs', 'tm_pixel.py')}:{npz}",
           "--config.model.name=ConvNetD1W4", "--config.iterations=100000",
           "--config.buffer.num_experts=1", "--config.buffer.epochs=2",
           "--config.objective.max_start_epoch=1", "--config.objective.expert_epochs=1",
           "--config.objective.syn_steps=2", "--config.checkpoint_every=1",
           "--config.dsa_strategy=none", "--config.opt.lr.lr=1e-7",
           "--config.objective.remat=False", f"--config.buffer.buffer_dir={tmp_path / 'b'}",
           "--no_progress", f"--workdir={w}"]
    rc, err = _stop_at(cmd, w, 2, signal.SIGINT)
    assert rc == 130, err[-3000:]
    line = _one_line(err, "[jaxdd] stopped by SIGINT (Ctrl-C): saved: the checkpoint of "
                          "iteration ")
    first = int(line.split("iteration ")[1].split()[0])
    assert first >= 2 and os.path.isdir(os.path.join(w, "checkpoints", str(first)))
    resume = line.split("; resume with: ")[1]
    assert shlex.split(resume) == ["python"] + cmd[1:], resume  # the command, as given
    assert locks.holder(w) is None  # released

    rc, err = _stop_at([sys.executable] + shlex.split(resume)[1:], w, first + 2,
                       signal.SIGTERM)
    assert rc == 143, err[-3000:]
    line = _one_line(err, "[jaxdd] stopped by SIGTERM: saved: the checkpoint of iteration ")
    assert int(line.split("iteration ")[1].split()[0]) >= first + 2  # it resumed
    assert line.endswith("; resume with: " + resume) and locks.holder(w) is None


def test_full_disk_one_line_last_good_checkpoint_intact(tmp_path, monkeypatch, capsys):
    from jaxdd import distill
    from jaxdd.checkpoints import Checkpoints, saved_steps, stop_summary

    npz = write_npz(tmp_path / "tiny.npz")
    cfg = tiny_config(npz, str(tmp_path / "buf"), dsa_strategy="none", objective__remat=False,
                      opt__lr__lr=1e-7)
    w = str(tmp_path / "w")
    real_save, calls = Checkpoints.save, []

    def full_disk(self, state, force=False):  # checkpoints 0 and 1 fit, then the disk is full
        calls.append(int(state.step))
        if len(calls) == 3:
            path = os.path.join(self.directory, f"{int(state.step)}.orbax-checkpoint-tmp-1")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_save(self, state, force=force)

    monkeypatch.setattr(Checkpoints, "save", full_disk)
    with pytest.raises(SystemExit) as e, locks.clean_stops(
            lambda full: stop_summary(w, full), "python launch/distill.py --workdir=" + w):
        with locks.hold(w):
            distill.Run(cfg, w, progress=False).train()
    assert e.value.code == 1
    line = _one_line(capsys.readouterr().err, "[jaxdd] disk full: could not write ")
    assert os.path.join(w, "checkpoints", "2.orbax-checkpoint-tmp-1") in line
    assert "the last good checkpoint (iteration 1" in line and "is intact" in line
    assert line.endswith("free some space, then resume with: python launch/distill.py "
                         f"--workdir={w}")
    assert saved_steps(w) == [0, 1] and locks.holder(w) is None
    monkeypatch.setattr(Checkpoints, "save", real_save)  # space freed: the run resumes
    run = distill.Run(cfg, w, progress=False)
    assert int(run.state.step) == 1
    assert run.train()["step"] == 4
