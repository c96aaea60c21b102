"""jaxdd.bench.memory on tiny shapes: with the trajectories on the host, the device bytes a
TM run holds do not grow with the number of experts; with them on the device (the old
path, `host=False`) they grow by the trajectories' bytes (checks the measurement too)."""
import pytest

from jaxdd.bench import memory

TINY = dict(ipc=1, side=8, channels=1, model="ConvNetD1W4", max_start_epoch=3, syn_steps=1,
            steps=2, compiled_memory=False)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    import gc
    import json
    out = tmp_path_factory.mktemp("bench") / "memory.json"
    # the measurement calls gc.collect() before every sample (the live arrays it counts must
    # be the reachable ones); in a test process that has run other files first a full
    # collection takes ~0.5 s. Everything alive before the measurement goes to the permanent
    # generation (gc.freeze): the collections then scan only what the measurement creates,
    # and the arrays it counts (relative to those alive at its start) are the same.
    gc.collect()
    gc.freeze()
    try:
        res = memory.run((2, 40), out=str(out), **TINY)  # the benchmark's JSON
        host_false = memory.measure(40, host=False, **TINY)
    finally:
        gc.unfreeze()
    assert json.loads(out.read_text())["rows"] == res["rows"]
    few, many = res["rows"]
    return {(2, True): few, (40, True): many, (40, False): host_false}


def test_host_trajectories_do_not_grow_device_memory(rows):
    few, many = rows[(2, True)], rows[(40, True)]
    assert many["host_trajectory_bytes"] == 20 * few["host_trajectory_bytes"]
    # at most the snapshots of one iteration in flight differ (prefetch timing)
    assert abs(many["peak_live_bytes"] - few["peak_live_bytes"]) <= 2 * few["snapshot_bytes"]
    assert many["peak_live_bytes"] < many["device_trajectories_old_path"]
    # every iteration after the first found its snapshots prefetched
    assert many["prefetch"] == {"hits": TINY["steps"] - 1, "misses": 1}


def test_device_trajectories_grow_with_experts(rows):
    host, dev = rows[(40, True)], rows[(40, False)]
    grown = dev["peak_live_bytes"] - host["peak_live_bytes"]
    # the old path holds the whole (experts x snapshots) buffer on the device
    assert grown >= 0.9 * dev["device_trajectories_old_path"]
