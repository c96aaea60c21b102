"""One place for the device mesh: which arrays of a run are split over which devices.

A run has ONE mesh with one axis, ``'data'``, over ``cfg.mesh.data`` devices (0, the default:
every device, i.e. all local devices, or all devices of all processes after
``jax.distributed.initialize``). Every helper returns ``None`` (= leave the array where JAX
puts it, no constraint) when the mesh has a single device, so a one-device run compiles and
computes exactly what it did before the mesh existed.

What is sharded (explicit ``NamedSharding``s, GSPMD inserts the collectives):

* the synthetic minibatch of every student step (TM, inside the scan): data-parallel over
  the devices (:func:`batch`), the student parameters replicated (the per-step gradient is
  an all-reduce);
* stacked instances -- the leading axis of every leaf of the synthetic parameters (pixel
  images, FreD coefficient sets, DDiF fields, NSD's per-class blocks) and of their
  optimizer state -- for decode and update (:func:`leading`); a leaf whose leading axis
  does not divide by the device count is REPLICATED (each device holds and updates all of
  it; correct, just not split);
* the K evaluation networks (``jaxdd.evaluate``): the network axis; K is padded to a
  multiple of the device count with extra networks that are trained and dropped (as
  expert training does), so no device trains all K;
* DM/DC real batches (classes, B, ...): over B when it divides, else over the classes
  (:func:`real_batch`); DC's inner-network minibatch and CFM's class-batch (:func:`batch`);
  TM's real-guided term (NSD): the flat real split along its rows (``jaxdd.distill``);
* expert training: ``jaxdd.experts`` (its own mesh over the expert axis of this process's
  devices; a multi-process build gives each process a disjoint share of the experts).

Host memory in a multi-process run: each process holds only its shard of the training
split (``jaxdd.data.shard``: image j of class c on process j % processes); the pieces that
need the whole split (statistics, ZCA, initial set, DM/DC real data) are built from the
shards collectively, see there.

Single-process runs keep the synthetic state split over devices between iterations;
multi-process runs keep it replicated between iterations (split inside the step), so every
process can read the whole synthetic set for checkpoints, grids and the artifact
(:func:`state_storage`).

Host-side feeding (:class:`Prefetcher`): an objective with a ``feed`` (TM) draws the
per-iteration inputs on the host (the expert snapshots of this iteration) from the same
key the jitted step uses; the next iteration's inputs are copied to the devices in a
background thread while the current step runs.
"""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"

__all__ = ["AXIS", "make_mesh", "mesh_from_config", "size", "replicated", "leading",
           "batch", "real_batch", "tree_leading", "constrain", "constrain_tree", "put",
           "put_tree", "to_host", "state_storage", "pad_to_devices", "Prefetcher",
           "tree_bytes", "live_device_bytes", "describe", "initialize_distributed"]


# ----------------------------------------------------------------------------- the mesh

def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-axis mesh ('data') over the first ``num_devices`` of ``jax.devices()`` (0: all,
    every process's devices after ``jax.distributed.initialize``)."""
    devices = jax.devices()
    n = int(num_devices or 0) or len(devices)
    if n < 1 or n > len(devices):
        raise ValueError(f"cfg.mesh.data = {num_devices}: this run sees {len(devices)} "
                         f"device(s) ({jax.default_backend()}); use 0 (all) or 1..{len(devices)}")
    if jax.process_count() > 1 and n != len(devices):
        raise ValueError(f"cfg.mesh.data = {num_devices}: a multi-process run ("
                         f"{jax.process_count()} processes) uses every device ({len(devices)});"
                         " set cfg.mesh.data = 0")
    return jax.make_mesh((n,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=devices[:n])


def mesh_from_config(cfg) -> Mesh | None:
    """The run's mesh from ``cfg.mesh.data`` (missing field: 0 = every device); None when it
    has a single device (nothing to shard)."""
    m = cfg.get("mesh", None) if hasattr(cfg, "get") else None
    n = 0 if m is None else int(m.get("data", 0) or 0)
    mesh = make_mesh(n)
    return mesh if mesh.size > 1 else None


def size(mesh) -> int:
    return 1 if mesh is None else int(mesh.size)


# ----------------------------------------------------------------------------- shardings

def replicated(mesh):
    """Every device holds the whole array (None without a mesh)."""
    return None if size(mesh) <= 1 else NamedSharding(mesh, P())


def _axis_spec(ndim: int, axis: int) -> P:
    spec = [None] * ndim
    spec[axis] = AXIS
    return P(*spec)


def leading(mesh, shape):
    """Split the leading axis (instances, networks, batch) over the devices when its length
    divides by the device count; replicated otherwise; None without a mesh."""
    n = size(mesh)
    if n <= 1:
        return None
    shape = tuple(shape)
    if len(shape) >= 1 and shape[0] >= n and shape[0] % n == 0:
        return NamedSharding(mesh, _axis_spec(len(shape), 0))
    return NamedSharding(mesh, P())


def batch(mesh, shape):
    """The synthetic minibatch of a student step (B, H, W, C): data-parallel over B."""
    return leading(mesh, shape)


def real_batch(mesh, shape):
    """DM/DC real batch (classes, B, ...): split B when it divides, else the classes, else
    replicated."""
    n = size(mesh)
    if n <= 1:
        return None
    shape = tuple(shape)
    if len(shape) >= 2 and shape[1] % n == 0:
        return NamedSharding(mesh, _axis_spec(len(shape), 1))
    return leading(mesh, shape)


def tree_leading(mesh, tree):
    """:func:`leading` for every leaf of a pytree (shapes read from the leaves)."""
    return jax.tree.map(lambda a: leading(mesh, np.shape(a)), tree)


def state_storage(mesh, tree):
    """How the synthetic state (parameters, optimizer state) is kept between iterations:
    split along the instance axis in a single process; replicated in a multi-process run
    (every process can then read it whole for checkpoints, grids and the artifact)."""
    if size(mesh) <= 1:
        return jax.tree.map(lambda a: None, tree)
    if jax.process_count() > 1:
        return jax.tree.map(lambda a: replicated(mesh), tree)
    return tree_leading(mesh, tree)


def constrain(x, sharding):
    """``jax.lax.with_sharding_constraint`` unless sharding is None (no mesh)."""
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def constrain_tree(tree, shardings):
    return jax.tree.map(constrain, tree, shardings)


# ----------------------------------------------------------------------------- placement

def to_host(x):
    """numpy value of an array, also when it is a global array spread over processes."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def put(x, sharding):
    """Place x with ``sharding`` (None: returned as is). Works in multi-process runs: each
    process materializes only its own shards (``jax.make_array_from_callback``), so every
    process must hold the same host value (same seed, same data)."""
    if sharding is None:
        return x
    if isinstance(x, jax.Array):
        if x.sharding == sharding:
            return x
        if not x.is_fully_addressable:  # a global array: reshard on the devices
            return jax.jit(lambda a: a, out_shardings=sharding)(x)
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def put_tree(tree, shardings):
    return jax.tree.map(put, tree, shardings)


def pad_to_devices(n: int, mesh) -> int:
    """n rounded up to a multiple of the device count."""
    d = size(mesh)
    return -(-int(n) // d) * d


# ----------------------------------------------------------------------------- feeding

class Prefetcher:
    """Host-side per-iteration inputs, copied to the devices one iteration ahead.

    ``load(key_data) -> pytree`` builds (on the host, numpy) and places (``put``) the
    inputs of the iteration whose PRNG state is ``key_data`` (uint32 numpy). ``get(k)``
    returns them, from the background copy started by ``prefetch(k)`` when there is one.
    One worker thread; at most one pending prefetch.
    """

    def __init__(self, load: Callable[[np.ndarray], Any]):
        self._load = load
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                           thread_name_prefix="jaxdd-feed")
        self._pending: tuple[bytes, concurrent.futures.Future] | None = None
        self._lock = threading.Lock()
        self.hits = 0    # iterations whose inputs were prefetched
        self.misses = 0  # loaded on demand (the first one, a resume, a foreign state)

    def prefetch(self, key_data):
        k = np.asarray(key_data)
        with self._lock:
            self._pending = (k.tobytes(), self._pool.submit(self._load, k))

    def get(self, key_data):
        k = np.asarray(key_data)
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending[0] == k.tobytes():
            self.hits += 1
            return pending[1].result()
        self.misses += 1
        return self._load(k)


# ----------------------------------------------------------------------------- memory

def tree_bytes(tree) -> int:
    """Bytes of the array leaves of a pytree (shapes only; no copy)."""
    return int(sum(int(np.prod(np.shape(a))) * np.dtype(getattr(a, "dtype", np.float32)).itemsize
                   for a in jax.tree.leaves(tree) if hasattr(a, "shape")))


def live_device_bytes() -> int:
    """Bytes of every live JAX array (``jax.live_arrays()``), summed over its shards: what
    the devices of this process hold right now."""
    total = 0
    for a in jax.live_arrays():
        try:
            total += sum(s.data.nbytes for s in a.addressable_shards)
        except Exception:  # deleted / donated while iterating
            pass
    return int(total)


def describe(mesh) -> str:
    if size(mesh) <= 1:
        return f"1 device ({jax.default_backend()})"
    return (f"mesh {dict(mesh.shape)} over {mesh.size} {jax.default_backend()} devices, "
            f"{jax.process_count()} process(es)")


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
    """``jax.distributed.initialize`` for ``launch/distill.py --distributed``.

    Arguments None: from the environment variables JAX_COORDINATOR_ADDRESS (host:port of
    process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID when set, else detected by JAX from
    the cluster (Cloud TPU pods, SLURM, Open MPI). On CPU also selects the gloo collectives
    (cross-process all-reduce). Call before any other JAX work."""
    import os
    env = os.environ
    if num_processes is None and env.get("JAX_NUM_PROCESSES"):
        num_processes = int(env["JAX_NUM_PROCESSES"])
    if process_id is None and env.get("JAX_PROCESS_ID"):
        process_id = int(env["JAX_PROCESS_ID"])
    kw = {k: v for k, v in dict(coordinator_address=coordinator_address,
                                num_processes=num_processes, process_id=process_id).items()
          if v is not None}
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # option absent in this jax: keep its default
        pass
    jax.distributed.initialize(**kw)
