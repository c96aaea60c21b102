"""Fault injection (issue 16): a run killed at random points -- while building its experts,
around checkpoint writes, after the final artifact -- resumes to a BYTE-identical result
(synthetic.msgpack, expert trajectories, metrics.jsonl without timings).

Kills use the hook of jaxdd.workdir.fault_point: JAXDD_FAULT="<point>:<n>" stops at the n-th
time <point> is reached; in-process trials raise SimulatedKill (a BaseException nothing
catches), the subprocess trial ends the process with os._exit (no cleanup, like kill -9).
The points are drawn with a fixed seed (set JAXDD_FAULT_SEED to draw others).
"""
import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxdd import distill, experts
from jaxdd import workdir as wd

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# the config, as source: the subprocess trial builds exactly the same one
CONFIG_SRC = textwrap.dedent('''
    from tinyrun import tiny_config, write_npz as make_npz

    def tiny_cfg(npz_path, buffer_dir):
        # no DSA, no remat: cheap to compile; this tests the run's files, not DSA
        return tiny_config(npz_path, buffer_dir, checkpoint_every=2, dsa_strategy="none",
                           objective__remat=False, opt__lr__lr=1e-7)
''')
_ns = {}
exec(CONFIG_SRC, _ns)
tiny_cfg = _ns["tiny_cfg"]

# (point, how many times it is reached in an uninterrupted run): checkpoints at 0, 2, 4
POINTS = {"saved_expert": 2, "save_checkpoint": 3, "saved_checkpoint": 3,
          "saved_synthetic": 1}


def _draw(k=3):
    rng = random.Random(int(os.environ.get("JAXDD_FAULT_SEED", "16")))
    kinds = ["saved_expert", rng.choice(["save_checkpoint", "saved_checkpoint"]),
             "saved_synthetic"]
    return [(p, rng.randint(1, POINTS[p])) for p in kinds[:k]]


def _outcome(trial, buffer_dir):
    """What must be byte-identical: the artifact, the experts, the metrics (no timings)."""
    syn = open(os.path.join(trial, "w", "synthetic.msgpack"), "rb").read()
    trajs, _ = experts.load_trajectories(buffer_dir, num_experts=2)
    metrics = [{k: v for k, v in r.items() if k != "its_per_s"}
               for r in wd.read_metrics(os.path.join(trial, "w", "metrics.jsonl"))]
    return syn, trajs, metrics


def _same(a, b, what):
    import jax
    assert a[0] == b[0], f"{what}: synthetic.msgpack differs"
    for x, y in zip(jax.tree.leaves(a[1]), jax.tree.leaves(b[1])):
        np.testing.assert_array_equal(x, y, err_msg=what)
    assert a[2] == b[2], f"{what}: metrics differ"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    npz = str(root / "tiny.npz")
    _ns["make_npz"](npz)
    ref = str(root / "ref")
    ref_buffer = os.path.join(ref, "buffer")
    distill.Run(tiny_cfg(npz, ref_buffer), os.path.join(ref, "w"), progress=False).train()
    return root, npz, ref_buffer, _outcome(ref, ref_buffer)


def test_killed_at_random_points_resumes_byte_identical(setup, monkeypatch):
    root, npz, ref_buffer, ref = setup
    monkeypatch.setenv("JAXDD_FAULT_MODE", "raise")
    for point, n in _draw():
        trial = str(root / f"{point}-{n}")
        # the expert-build kill builds its own buffer; the other trials read the reference's
        buffer_dir = os.path.join(trial, "buffer") if point == "saved_expert" else ref_buffer
        cfg = tiny_cfg(npz, buffer_dir)
        monkeypatch.setenv("JAXDD_FAULT", f"{point}:{n}")
        wd.reset_faults()
        with pytest.raises(wd.SimulatedKill):
            distill.Run(cfg, os.path.join(trial, "w"), progress=False).train()
        monkeypatch.delenv("JAXDD_FAULT")
        distill.Run(cfg, os.path.join(trial, "w"), progress=False).train()
        _same(_outcome(trial, buffer_dir), ref, f"killed at {point}:{n}")


def test_process_killed_mid_run_resumes_byte_identical(setup):
    """A real process end (os._exit at the second checkpoint write's start: the state of
    iteration 2 is not on disk), then the same command again in a new process."""
    root, npz, ref_buffer, ref = setup
    trial = str(root / "subprocess")
    script = CONFIG_SRC + textwrap.dedent(f'''
        from jaxdd import distill
        cfg = tiny_cfg({npz!r}, {ref_buffer!r})
        distill.run(cfg, {os.path.join(trial, "w")!r}, progress=False)
    ''')
    # the second process reuses the first one's compiled step (persistent cache)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                   [ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")]),
               JAXDD_FAULT="save_checkpoint:2", JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.pop("JAXDD_FAULT_MODE", None)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 137, r.stderr[-2000:]
    assert not os.path.exists(os.path.join(trial, "w", "synthetic.msgpack"))
    env.pop("JAXDD_FAULT")
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _same(_outcome(trial, ref_buffer), ref, "process killed at save_checkpoint:2")
    assert json.load(open(os.path.join(trial, "w", "result.json")))["step"] == 4
