"""Multi-host for real, on one machine: two JAX processes (jax.distributed with a localhost
coordinator, CPU collectives), 4 virtual CPU devices each, one mesh over the 8 devices.

A tiny pixel TM run (3 classes x IPC 8 = 24 instances, split over the 8 devices inside the
step) is started in two processes, which first build the missing expert buffer (process p
trains and writes expert p on its 4 devices, from a transient full copy of the split; the
experts equal those one process builds), "killed" after 2 of 4 iterations (both processes exit after a collective Orbax
checkpoint), restarted in two new processes, which resume from the checkpoint and finish.
Its synthetic set equals the single-process, single-device run's (float tolerance: the
sharded step sums in another order, see tests/test_sharding.py). Checked too: one set of
checkpoint files, the resumed processes started at iteration 2, and both processes hold
the same synthetic set.

Each process holds only its shard of the train split in host memory (`jaxdd.data.shard`:
image j of class c on process j % 2): its rows are exactly that shard of the one-process
split, the two shards are disjoint and cover it; the initial synthetic set (pixel 'real'
init: real images fetched from their owners), the DM real batch drawn from the split real
data (`dm.real_data`, each process placing only its rows), the random-real baseline and the
flat split of NSD's real-guided term (`assemble.real_guided_train`) equal the one-process
ones.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
from jaxdd import assemble
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tiny_cfg(npz_path, buffer_dir):
    from tinyrun import tiny_config

    return tiny_config(npz_path, buffer_dir, ipc=8, dsa_strategy="none",
                       objective__batch_syn=8, opt__syn__lr=10.0,
                       eval__random_real_baseline=False)


def _shard_checks(run):
    """What the first launch records about the data shard (host rows, DM real batch,
    random-real baseline), all from this process's shard."""
    import types

    import jax

    from jaxdd import sharding
    from jaxdd.data import random_real
    from jaxdd.objective import dm

    ds = run.train_ds
    data = dm.real_data(types.SimpleNamespace(train_ds=ds, mesh=sharding.mesh_from_config(
        run.cfg)))
    max_n = dm.max_class_size(data)
    draw = jax.jit(lambda k, r, c, o: dm.sample_real(k, r, c, max_n - 3, max_n, o))
    imgs, mask = draw(jax.random.PRNGKey(5), data["real"], data["counts"], data["order"])
    xr, _ = random_real(jax.random.PRNGKey(6), ds, 2)
    # NSD's real-guided term: the flat split, every row at its global position
    import ml_collections

    cfg = ml_collections.ConfigDict(run.cfg.to_dict())
    cfg.objective.gamma = 0.1
    flat = assemble.real_guided_train(cfg, ds, data["real"].sharding.mesh)
    return dict(rows=ds.shard.rows, local_images=ds.images, local_labels=ds.labels,
                dm_images=sharding.to_host(imgs), dm_mask=sharding.to_host(mask),
                random_real=xr, real_rms=run.real_rms,
                flat_images=sharding.to_host(flat.images),
                flat_labels=sharding.to_host(flat.labels),
                flat_split=not flat.images.sharding.is_fully_replicated)


def worker(pid, port, workdir, npz_path, buffer_dir, stop_after, out):
    from jaxdd import sharding

    sharding.initialize_distributed(f"localhost:{port}", num_processes=2, process_id=pid)
    import jax

    from jaxdd import distill

    assert jax.process_count() == 2 and jax.device_count() == 8, jax.devices()
    run = distill.Run(tiny_cfg(npz_path, buffer_dir), workdir, progress=False)
    start = int(run.state.step)
    extra = _shard_checks(run) if start == 0 else {}
    run.train(stop_after=stop_after or None)
    params = run.state.syn_params
    split = not params["images"].sharding.is_fully_replicated  # storage: replicated
    np.savez(out, start=start, step=int(run.state.step), devices=jax.device_count(),
             images=np.asarray(params["images"]), syn_lr=float(run.state.syn_lr),
             replicated_between_steps=not split, **extra)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(tmp, workdir, npz, buffer_dir, stop_after, tag):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=4"
                        " --xla_backend_optimization_level=0"
                        " --xla_llvm_disable_expensive_passes=true").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    # (no persistent compilation cache: a cached executable in one process and a fresh
    # compile in the other disagreed on a gloo collective in a try)
    port = _free_port()
    outs = [str(tmp / f"{tag}_{i}.npz") for i in range(2)]
    procs = [subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "worker", str(i), str(port), workdir,
         npz, buffer_dir, str(stop_after), outs[i]], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=400)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"{tag}: the two processes did not finish")
    for p, log in zip(procs, logs):
        assert p.returncode == 0, f"{tag} failed:\n" + log[-6000:]
    return [dict(np.load(o)) for o in outs], logs


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    from tinyrun import write_npz

    return write_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def test_two_processes_checkpoint_kill_resume_equal_single_process(tmp_path, npz_path):
    from jaxdd import distill, experts

    one_dir, buffer_dir = str(tmp_path / "buffer_one"), str(tmp_path / "buffer")
    ref = distill.Run(tiny_cfg(npz_path, one_dir), str(tmp_path / "single"), progress=False)
    ref.train()  # builds its expert buffer in one process
    ref_images = np.asarray(ref.state.syn_params["images"])
    workdir = str(tmp_path / "multi")
    # the two processes build their own buffer (expert p by process p), then run 2 iterations
    first, _ = _launch(tmp_path, workdir, npz_path, buffer_dir, 2, "first")
    assert [int(r["step"]) for r in first] == [2, 2]
    _check_shards(first, ref)
    # the experts the two processes built equal the one-process build
    from jaxdd.config import buffer_for
    bcfg = buffer_for(ref.cfg)
    kw = dict(expected=experts.expected_metadata(bcfg), num_experts=2, epochs=2)
    got, _ = experts.load_trajectories(buffer_dir, **kw)
    want, _ = experts.load_trajectories(one_dir, **kw)
    for a, b in zip(jax_leaves(got), jax_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    second, _ = _launch(tmp_path, workdir, npz_path, buffer_dir, 0, "second")
    for r in second:
        assert int(r["start"]) == 2 and int(r["step"]) == 4 and int(r["devices"]) == 8
        assert bool(r["replicated_between_steps"])
    np.testing.assert_array_equal(second[0]["images"], second[1]["images"])
    np.testing.assert_allclose(second[0]["images"], ref_images, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(second[0]["syn_lr"]), float(ref.state.syn_lr),
                               rtol=1e-4)
    metrics = os.path.join(workdir, "metrics.jsonl")
    assert os.path.exists(metrics)
    with open(metrics) as f:
        assert [json.loads(x)["step"] for x in f if '"loss"' in x][-1] == 4


def jax_leaves(tree):
    import jax
    return jax.tree.leaves(tree)


def _check_shards(first, ref):
    """Each process held its shard only; what the shards computed equals one process."""
    import jax

    from jaxdd.data import random_real
    from jaxdd.data.shard import shard_rows
    from jaxdd.objective import dm

    full = ref.train_ds
    nc = full.num_classes
    seen = []
    for p, r in enumerate(first):
        rows, _ = shard_rows(full.labels, nc, p, 2)
        np.testing.assert_array_equal(r["rows"], rows)
        assert len(r["local_labels"]) == len(rows) < len(full.labels)
        np.testing.assert_array_equal(r["local_labels"], full.labels[rows])
        # standardized with the collectively computed train statistics
        np.testing.assert_allclose(r["local_images"], full.images[rows], rtol=1e-6, atol=1e-6)
        seen.append(rows)
    every = np.sort(np.concatenate(seen))
    np.testing.assert_array_equal(every, np.arange(len(full.labels)))  # disjoint, complete
    real, counts = dm.real_by_class(full.images, full.labels, nc)
    max_n = int(counts.max())
    imgs, mask = dm.sample_real(jax.random.PRNGKey(5), real, counts, max_n - 3)
    xr, _ = random_real(jax.random.PRNGKey(6), full, 2)
    for r in first:
        np.testing.assert_array_equal(r["dm_mask"], np.asarray(mask))
        np.testing.assert_allclose(r["dm_images"], np.asarray(imgs), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r["random_real"], xr, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(float(r["real_rms"]), ref.real_rms, rtol=1e-9)
        np.testing.assert_array_equal(r["flat_labels"], full.labels)
        np.testing.assert_allclose(r["flat_images"], full.images, rtol=1e-6, atol=1e-6)
        assert bool(r["flat_split"])


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    a = sys.argv[2:]
    worker(int(a[0]), int(a[1]), a[2], a[3], a[4], int(a[5]), a[6])
