"""Expert training and storage measurements (launch/bench_experts.py is the command line).

  * one training epoch (``jaxdd.experts.make_epoch_fn``: SGD + DSA, no evaluation) of
    ``num_experts`` experts trained together (vmap, one call), and of the same experts
    trained one at a time (a Python loop of single-expert calls); reported as seconds per
    expert-epoch (and per expert-epoch scaled to 50,000 examples, the CIFAR-10 train set);
  * the Orbax checkpoint of one expert with ``snapshots`` snapshots (51 = MTT's 50 epochs +
    init): bytes on disk, save time, time and bytes read to load all snapshots vs the two
    TM endpoints (partial restore).
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdd import experts
from jaxdd.models import count_params, get_model


def _median_times(fns, repeats):
    """Median wall time of each fn after one warm-up call; repeats interleaved (fairer on a
    shared machine whose load drifts)."""
    for fn in fns:
        fn()  # compile / warm up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times], times


def _bytes_read():
    try:
        import tensorstore as ts
        ms = ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/bytes_read")
        return sum(v.get("value", 0) for m in ms for v in m["values"])
    except Exception:  # noqa: BLE001
        return float("nan")


def bench_training(model, x, y, n, batch_size, strategy, repeats, augment_loop="auto"):
    keys = experts.expert_keys(jax.random.PRNGKey(0), n)
    init = experts._make_init_fn(model)
    params, k_train = init(keys, x[:1])
    epoch_fn = experts.make_epoch_fn(model, batch_size, strategy, augment_loop)
    lr = jnp.float32(0.01)

    def together():
        p, loss = epoch_fn(params, k_train, jnp.int32(0), x, y, lr)
        jax.block_until_ready(p)

    singles = [(jax.tree.map(lambda a: a[i:i + 1], params), k_train[i:i + 1]) for i in range(n)]

    def one_at_a_time():
        for p1, k1 in singles:
            p, loss = epoch_fn(p1, k1, jnp.int32(0), x, y, lr)
            jax.block_until_ready(p)

    (t_tog, t_one), (all_tog, all_one) = _median_times([together, one_at_a_time], repeats)
    return {
        "vmap_seconds_per_epoch_all_experts": t_tog,
        "vmap_seconds_per_expert_epoch": t_tog / n,
        "single_seconds_per_expert_epoch": t_one / n,
        "speedup_vmap_vs_single": t_one / t_tog,
        "raw_vmap_seconds": all_tog,
        "raw_single_seconds_all_experts": all_one,
    }, jax.tree.map(lambda a: np.asarray(a[0]), params)


def bench_storage(params, snapshots):
    rng = np.random.RandomState(0)
    # random values (like trained weights: incompressible), one array per epoch snapshot
    traj = jax.tree.map(
        lambda a: rng.randn(snapshots, *a.shape).astype(np.float32) * 0.05, params)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        path = experts.save_expert(experts.expert_dir(d, 0), traj, {"expert": 0})
        t_save = time.perf_counter() - t
        size = experts.dir_bytes(path)
        b0 = _bytes_read()
        t = time.perf_counter()
        experts.load_slice(d, 0, 0, snapshots - 1)
        t_full = time.perf_counter() - t
        b1 = _bytes_read()
        t = time.perf_counter()
        k = min(2, snapshots - 1)  # TM's expert_epochs, mid-trajectory
        experts.load_slice(d, 0, (snapshots - 1 - k) // 2, k, endpoints_only=True)
        t_ends = time.perf_counter() - t
        b2 = _bytes_read()
    n = count_params(params)
    return {
        "num_params": n,
        "snapshots": snapshots,
        "bytes_per_snapshot_raw": 4 * n,
        "bytes_per_expert_on_disk": size,
        "save_seconds": t_save,
        "load_all_snapshots_seconds": t_full,
        "load_all_snapshots_bytes_read": b1 - b0,
        "load_2_endpoints_seconds": t_ends,
        "load_2_endpoints_bytes_read": b2 - b1,
    }


def run(*, model="ConvNetD3", num_examples=256, resolution=32, channels=3, num_classes=10,
        num_experts=4, batch_size=256, dsa_strategy=experts.DEFAULT_DSA, augment_loop="auto",
        repeats=3, snapshots=51, command=None):
    """Both measurements on random data -> the result dict (JSON-able)."""
    config = dict(model=model, num_examples=num_examples, resolution=resolution,
                  channels=channels, num_classes=num_classes, num_experts=num_experts,
                  batch_size=batch_size, dsa_strategy=dsa_strategy, augment_loop=augment_loop,
                  repeats=repeats, snapshots=snapshots)
    rng = np.random.RandomState(0)
    x = jnp.asarray(rng.randn(num_examples, resolution, resolution, channels)
                    .astype(np.float32))
    y = jnp.asarray(rng.randint(0, num_classes, num_examples).astype(np.int32))
    net = get_model(model, num_classes)
    t0 = time.time()
    train, params = bench_training(net, x, y, num_experts, batch_size, dsa_strategy, repeats,
                                   augment_loop)
    storage = bench_storage(params, snapshots)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "config": config,
        "training": train,
        "storage": storage,
        "wall_seconds": time.time() - t0,
    }
    scale = 50000 / num_examples
    train["vmap_seconds_per_expert_epoch_at_50k"] = train["vmap_seconds_per_expert_epoch"] * scale
    train["single_seconds_per_expert_epoch_at_50k"] = (
        train["single_seconds_per_expert_epoch"] * scale)
    return result


def table(result) -> str:
    """The result as an aligned two-column text table."""
    c, tr, st = result["config"], result["training"], result["storage"]
    rows = [
        ("model / input", f"{c['model']}, {c['num_examples']} x {c['resolution']}x"
                          f"{c['resolution']}x{c['channels']}, batch {c['batch_size']}, DSA "
                          f"{c['dsa_strategy']}"),
        ("device", f"{result['backend']} x{len(result['devices'])}"),
        (f"s / expert-epoch, {c['num_experts']} together (vmap)",
         f"{tr['vmap_seconds_per_expert_epoch']:.3f}"),
        ("s / expert-epoch, one at a time", f"{tr['single_seconds_per_expert_epoch']:.3f}"),
        ("speedup vmap vs one at a time", f"{tr['speedup_vmap_vs_single']:.2f}x"),
        ("s / expert-epoch scaled to 50k examples (vmap / single)",
         f"{tr['vmap_seconds_per_expert_epoch_at_50k']:.1f} / "
         f"{tr['single_seconds_per_expert_epoch_at_50k']:.1f}"),
        ("parameters", f"{st['num_params']:,}"),
        (f"bytes per expert ({st['snapshots']} snapshots)",
         f"{st['bytes_per_expert_on_disk']:,} ({st['bytes_per_expert_on_disk'] / 1e6:.1f} MB)"),
        ("save / load all / load 2 endpoints (s)",
         f"{st['save_seconds']:.2f} / {st['load_all_snapshots_seconds']:.2f} / "
         f"{st['load_2_endpoints_seconds']:.2f}"),
        ("bytes read: all / 2 endpoints",
         f"{st['load_all_snapshots_bytes_read']:,} / {st['load_2_endpoints_bytes_read']:,}"),
    ]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
