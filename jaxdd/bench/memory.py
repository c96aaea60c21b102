"""Device memory of the TM outer step vs the number of experts (issue 15).

The question: does the memory a TM run holds on its devices grow with the expert buffer?
Before issue 15 the loop copied every loaded trajectory to the device
(experts x (max_start_epoch + expert_epochs + 1) snapshots: 5.5 GB at CIFAR-10 IPC 50 with
100 experts); now the trajectories stay on the host and each iteration brings only its
start and target snapshots (`jaxdd.objective.tm`, host feeding in `jaxdd.outer_step.Step`).

Method: the published CIFAR-10 IPC 50 shapes (pixel, 500 images 32x32x3, ConvNetD3, MTT's
max_start_epoch 40 / expert_epochs 2, so 43 snapshots per expert are loaded) with random
data; the trajectories are a zero-stride numpy view (experts x 43 snapshots of one random
parameter set: no host memory, same shapes). For each expert count the real loop objects
are built (`tm.make_objective`, `outer_step.make_step`) and `steps` outer iterations run;
``live_bytes`` is the sum of the bytes of every live JAX array (``jax.live_arrays()``,
all shards) sampled after building and after every iteration (the prefetched next
snapshots included), minus what was live before; ``peak_live`` is its maximum. XLA's
compiled memory analysis of the step (arguments + outputs + temporaries) is reported
beside it (the step's arguments no longer include trajectories). ``device_trajectories``
is what the old path held on top: experts x 43 x snapshot bytes.

syn_steps is lowered to 2 (default) so the CPU run takes seconds: the resident memory and
the per-iteration snapshots do not depend on it; the scan's temporaries do, equally for
every expert count.

    python -m jaxdd.bench.memory --out bench_results/memory.json          # 10 vs 100
    python -m jaxdd.bench.memory --quick                                   # tiny shapes
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time

from jaxdd import outer_step
import numpy as np


def _broadcast_trajectories(params, num_experts: int, snapshots: int):
    """(experts, snapshots, ...) zero-stride numpy views of one parameter set."""
    import jax
    return jax.tree.map(lambda a: np.broadcast_to(np.asarray(a)[None, None],
                                                  (num_experts, snapshots) + a.shape), params)


def _device_peak():
    """The allocator's peak bytes on device 0 (GPU/TPU; None on CPU, which has no stats)."""
    import jax
    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:
        return None
    return None if not stats else stats.get("peak_bytes_in_use")


def _live():
    from jaxdd import sharding
    gc.collect()
    return sharding.live_device_bytes()


def measure(num_experts: int, *, ipc: int = 50, side: int = 32, channels: int = 3,
            num_classes: int = 10, model: str = "ConvNetD3", syn_steps: int = 2,
            max_start_epoch: int = 40, expert_epochs: int = 2, steps: int = 3,
            host: bool = True, compiled_memory: bool = True) -> dict:
    """One row: the device bytes a TM run with `num_experts` experts holds (module doc)."""
    import jax
    import jax.numpy as jnp
    import ml_collections

    from jaxdd import sharding
    from jaxdd.models import get_model
    from jaxdd.objective import tm
    from jaxdd.param import pixel

    base = _live()
    net = get_model(model, num_classes)
    theta = net.init(jax.random.PRNGKey(0), jnp.zeros((1, side, side, channels)))["params"]
    theta = jax.tree.map(np.asarray, theta)
    snapshots = max_start_epoch + expert_epochs + 1
    trajs = _broadcast_trajectories(theta, num_experts, snapshots)
    ocfg = ml_collections.ConfigDict(dict(
        syn_steps=syn_steps, expert_epochs=expert_epochs, max_start_epoch=max_start_epoch,
        batch_syn=0, remat=True, gamma=0.0, real_batch=256))
    apply_fn = lambda p, x: net.apply({"params": p}, x, train=True)  # noqa: E731
    obj = tm.make_objective(apply_fn, trajs, ocfg, dsa_strategy="none", host=host)
    rng = np.random.default_rng(0)
    by_class = [rng.normal(size=(ipc, side, side, channels)).astype(np.float32)
                for _ in range(num_classes)]
    pcfg = pixel.default_config()
    pcfg.ipc = ipc
    params, aux = pixel.init(jax.random.PRNGKey(1), by_class, pcfg)
    cfg = ml_collections.ConfigDict({
        "decode_subset": 0,
        "opt": {"syn": {"name": "sgd", "lr": 100.0, "momentum": 0.5},
                "lr": {"lr": 1e-5, "momentum": 0.5, "min_syn_lr": None}}})
    step, init_state = outer_step.make_step(pixel, aux, obj, cfg)
    state = init_state(jax.random.PRNGKey(2), params, 0.01)
    del params
    samples = [_live() - base]
    xla = None
    if compiled_memory:
        try:
            m = step.lower(state, obj.data).compile().memory_analysis()
            xla = {k: int(getattr(m, k)) for k in
                   ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")}
        except Exception:  # memory analysis unavailable on this backend
            xla = None
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        state, met = step(state, obj.data)
        jax.block_until_ready(met["loss"])
        times.append(time.perf_counter() - t0)
        samples.append(_live() - base)
    info = tm.host_bytes(trajs, ocfg)
    row = {"num_experts": int(num_experts), "snapshots_per_expert": snapshots,
           "trajectories_on": "host" if host else "device",
           "snapshot_bytes": info["snapshot"],
           "host_trajectory_bytes": info["trajectories_host"],
           "device_trajectories_old_path": num_experts * snapshots * info["snapshot"],
           "live_bytes_after_init": samples[0], "live_bytes": samples,
           "peak_live_bytes": max(samples), "xla_step_bytes": xla,
           "median_step_s": float(np.median(times)) if times else None,
           "device_peak_bytes_in_use": _device_peak(),
           "prefetch": step.prefetch_stats, "devices": jax.device_count(),
           "mesh": sharding.describe(sharding.mesh_from_config(None))}
    del state, obj, step, trajs
    gc.collect()
    return row


def run(experts=(10, 100), out=None, **kw) -> dict:
    """Rows for each expert count; JSON to `out` (when given)."""
    import jax
    # XLA's memory analysis needs a second compile: only for the first row (the step's
    # arguments hold no trajectories, so it is the same for every expert count)
    cm = kw.pop("compiled_memory", True)
    rows = [measure(e, compiled_memory=cm and i == 0, **kw) for i, e in enumerate(experts)]
    peaks = [r["peak_live_bytes"] for r in rows]
    result = {
        "benchmark": "jaxdd.bench.memory",
        "what": "device bytes held by a TM run vs the number of experts (trajectories on "
                "the host, two snapshots per iteration on the device)",
        "settings": {"experts": list(experts), **kw},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "backend": jax.default_backend(), "devices": jax.device_count()},
        "rows": rows,
        "peak_ratio_last_over_first": peaks[-1] / max(peaks[0], 1),
    }
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--experts", default="10,100")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--syn_steps", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    a = ap.parse_args(argv)
    kw = dict(steps=a.steps, syn_steps=a.syn_steps)
    if a.quick:
        kw.update(ipc=2, side=8, channels=1, model="ConvNetD1W4", max_start_epoch=3)
    res = run(tuple(int(e) for e in a.experts.split(",")), out=a.out or None, **kw)
    mb = 2 ** 20
    for r in res["rows"]:
        print(f"experts {r['num_experts']:4d}: peak live device {r['peak_live_bytes'] / mb:9.1f}"
              f" MiB (old path: + {r['device_trajectories_old_path'] / mb:9.1f} MiB of "
              f"trajectories on the device); step {r['median_step_s']:.2f} s")
    return res


if __name__ == "__main__":
    main()
