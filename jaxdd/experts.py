"""Expert trajectories for trajectory matching (MTT): train them, store them, load slices.

Training recipe (MTT ``buffer.py``): SGD with a constant learning rate ``lr_teacher``
(0.01), no momentum, no weight decay, minibatches of 256 drawn from a fresh permutation each
epoch (the last, partial batch is kept: it is a full SGD step whose loss is the mean over its
real examples; padded slots are masked out), DSA augmentation (mode 'S'), cross-entropy.
Parameters are recorded at initialization and after every epoch.

All experts of a call are trained at once by the training core (``jaxdd.train``): one
jitted epoch function (a ``lax.scan`` over minibatches whose step runs forward/backward
``vmap``-ed over the experts, each expert with its own data order and augmentation keys) is
compiled once and called per epoch from a
Python loop (tqdm bar with the experts' mean test accuracy). With several devices the
expert axis is sharded over them (``jax.sharding.NamedSharding``).

PRNG contract (so that a group of experts trained together equals the same experts trained
one at a time, and a resumed build reproduces the experts it would have trained):

    expert key k (build_buffer: k_i = fold_in(PRNGKey(seed), i) for expert i)
    k_init, k_train = split(k)               # init: model.init(k_init, x[:1])['params']
    epoch e (0-based): k_e = fold_in(k_train, e); k_perm, k_aug = split(k_e)
    order = permutation(k_perm, N); minibatch b uses dsa(fold_in(k_aug, b), x_b)

Bitwise: XLA compiles the vmapped epoch for a given number of expert lanes, and the same
expert's floats depend on that number (digits, ConvNetD2W32, 2 epochs: 1.5e-8 between 2
and 8 lanes; 0 between lane 0 and lane 7 of 8). `build_buffer` therefore trains every group
on min(experts_per_group, num_experts) lanes, padding a short group (e.g. the experts left
after a kill) with copies: an expert is bit for bit the same whatever group it lands in
(stored as metadata 'lanes'). experts_per_group is part of a buffer's recipe.

Storage: one Orbax checkpoint per expert, ``<buffer_dir>/expert_<i:05d>``, a composite
checkpoint with two items:

    trajectory/   PyTree {'epoch_0000': params_0, 'epoch_0001': params_1, ...}
                  (OCDBT + zarr, one array per parameter leaf per epoch)
    metadata/     JSON: dataset, preprocessing (zca, zca_eps), model (name, overrides),
                  epochs, lr_teacher, batch_size, dsa_strategy, seed, test accuracy, ...

Each epoch snapshot is its own subtree, so reading epochs (s .. s+k) is an Orbax *partial
restore* (``PyTreeRestore(item=<only those epoch subtrees>, partial_restore=True)``): only
the requested arrays are read from the OCDBT store (the tests check the bytes read with
tensorstore's kvstore metrics). Orbax's ``Checkpointer.save`` writes into
``expert_<i>.orbax-checkpoint-tmp*`` and renames it when complete (atomic on a local
filesystem; ``commit_success.txt`` on object stores), so a killed run never leaves an expert
that loads; the loader only accepts finalized ``expert_<5 digits>`` directories and
`build_buffer` deletes leftover temporary directories.

Differences from the authors' code, on purpose:
* The PyTorch buffer records ``[p.detach().cpu() for p in net.parameters()]``; on a CPU
  run ``.cpu()`` is a no-op, so every snapshot aliases the live tensors and the whole
  trajectory ends up equal to the last epoch. Here snapshots are host copies
  (``np.array(..., copy=True)``) taken after each epoch; the tests check that snapshot e+1
  equals one epoch of training from snapshot e.
* The PyTorch buffer is one ``replay_buffer_<n>.pt`` per 10 experts; here one checkpoint per
  expert (resumable, partial reads).
"""
from __future__ import annotations

import datetime
import functools
import json
import os
import re
import shutil
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdd import losses as L
from jaxdd import train as T

__all__ = [
    "DamagedExpertError",
    "ExpertMismatchError",
    "MissingExpertsError",
    "train_experts",
    "make_epoch_fn",
    "make_ordered_epoch_fn",
    "expert_keys",
    "save_expert",
    "load_expert_metadata",
    "list_experts",
    "load_trajectories",
    "load_slice",
    "check_metadata",
    "expected_metadata",
    "build_command",
    "build_buffer",
    "expert_dir",
    "default_buffer_dir",
    "dir_bytes",
]

EXPERT_DIR_FMT = "expert_{:05d}"
_EXPERT_RE = re.compile(r"^expert_(\d{5})$")
_EPOCH_FMT = "epoch_{:04d}"
_TMP_MARK = ".orbax-checkpoint-tmp"
_TRAJ_ITEM = "trajectory"
_META_ITEM = "metadata"
FORMAT = "jaxdd.experts/1"
DEFAULT_DSA = "color_crop_cutout_flip_scale_rotate"
_VARIANTS = ("digits", "cifar10", "cifar100", "imagenette")  # jaxdd.config.BUFFER_VARIANTS


# ============================================================================ errors


class ExpertMismatchError(ValueError):
    """Stored experts were built with settings different from the ones asked for."""


class MissingExpertsError(FileNotFoundError):
    """The buffer directory lacks (complete) experts; the message says how to build them."""

    def __init__(self, message: str, *, buffer_dir=None, missing=(), found=0):
        super().__init__(message)
        self.buffer_dir = buffer_dir
        self.missing = tuple(missing)
        self.found = found


class DamagedExpertError(MissingExpertsError):
    """A stored expert could not be read (truncated / corrupt files). It has been set aside
    (renamed into <buffer_dir>/damaged/, not deleted), so it now counts as missing: building
    the buffer again (the distill command does it itself) retrains it bit for bit."""


def _set_aside_expert(buffer_dir, path, err, progress=True):
    """Rename a damaged expert into <buffer_dir>/damaged/ and say so; returns the new path."""
    from jaxdd.workdir import set_aside

    dest = set_aside(path, root=buffer_dir)
    msg = (f"[experts] {path} is damaged ({type(err).__name__}: "
           f"{str(err).splitlines()[0][:200] if str(err) else ''}); set aside as {dest} "
           f"(delete it when you no longer need it); it will be rebuilt")
    print(msg)
    return dest


# ============================================================================ training


def _images_labels(ds):
    """Dataset-like (``.images``/``.labels``) or an (images, labels) pair -> numpy arrays."""
    if ds is None:
        return None, None
    if hasattr(ds, "images"):
        return np.asarray(ds.images, np.float32), np.asarray(ds.labels, np.int32)
    x, y = ds
    return np.asarray(x, np.float32), np.asarray(y, np.int32)


def _is_typed_key(k) -> bool:
    return jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key)


def expert_keys(key, num_experts: Optional[int] = None):
    """Per-expert keys: a single key is split into ``num_experts``; a stack is checked.

    ``key``: one PRNG key (raw uint32 (2,) or typed ()) or a stack of them (leading axis =
    experts). Returns the stack (num_experts, ...) in the same key flavour.
    """
    key = key if isinstance(key, jax.Array) else jnp.asarray(key)
    single_ndim = 0 if _is_typed_key(key) else 1
    if key.ndim == single_ndim:
        if num_experts is None:
            raise ValueError("num_experts is required when a single key is given")
        return jax.random.split(key, int(num_experts))
    if key.ndim != single_ndim + 1:
        raise ValueError(f"expected a key or a stack of keys, got shape {key.shape}")
    if num_experts is not None and key.shape[0] != int(num_experts):
        raise ValueError(f"{key.shape[0]} keys given for num_experts={num_experts}")
    return key


def _check_stateless(model, x1):
    """Raise if the model has mutable collections (batch norm statistics, ...)."""
    shapes = jax.eval_shape(lambda k: model.init(k, x1), jax.random.PRNGKey(0))
    extra = sorted(c for c in shapes if c != "params")
    if extra:
        raise ValueError(
            f"expert training needs a stateless model (only 'params'), but "
            f"{type(model).__name__} has collections {extra}: batch norm is not supported "
            f"for experts/students in trajectory matching; use norm='instance' (the MTT "
            f"default, e.g. 'ConvNetD3') instead of a *BN model.")
    return shapes["params"]


def _epoch_body(model, batch_size: int, dsa_strategy: Optional[str], augment_loop: str):
    """``run(params, order, k_aug, images, labels, lr) -> (params, loss)`` (not jitted).

    The training epoch for an explicit sample order, on the training core (``jaxdd.train``):
    ``order`` (E, N) holds, per expert, the order in which the N training examples are
    visited; it is cut into ceil(N / B) consecutive minibatches (B = min(batch_size, N)),
    the last one short when B does not divide N.  Like PyTorch's DataLoader
    (``drop_last=False``) in MTT ``utils.epoch`` (utils.py:312-343 at 50dccea), that short
    batch is one SGD step on the mean loss over its own examples (padded and masked out of
    the mean by the core).  ``k_aug`` (E, ...) are the per-expert DSA keys (minibatch b uses
    ``fold_in(k_aug, b)``); ignored when augmentation is off.  SGD: the core's optimizer
    factory ``optax.sgd(lr)`` (p - lr * g, no momentum, no weight decay).
    """
    strategy = None if dsa_strategy in (None, "", "none") else str(dsa_strategy)
    augment = None
    if strategy is not None:
        from jaxdd.augment import dsa

        def augment(k, x):
            return dsa(k, x, strategy=strategy, mode="S")

    trainer = T.make_trainer(model, optax.sgd, loss=L.cross_entropy,
                             batch_size=int(batch_size), augment=augment,
                             last_batch="short", augment_loop=augment_loop)

    def run(params, order, k_aug, images, labels, lr):
        n = images.shape[0]
        if order.shape[-1] != n:
            raise ValueError(f"order has {order.shape[-1]} entries per expert for {n} examples")
        steps = jnp.arange(trainer.num_steps(n))
        step_keys = jax.vmap(lambda k: jax.vmap(lambda b: jax.random.fold_in(k, b))(steps))(
            k_aug) if augment is not None else None
        state = jax.vmap(trainer.create)(params)
        state, met = trainer.epoch(state, order, step_keys, images, labels, lr)
        return state.params, jnp.mean(met["loss"], axis=1)

    return run


@functools.lru_cache(maxsize=32)
def make_epoch_fn(model, batch_size: int = 256, dsa_strategy: Optional[str] = DEFAULT_DSA,
                  augment_loop: str = "auto"):
    """Jitted training epoch of E experts at once, for a stateless flax model.

    Returns ``epoch(params, train_keys, epoch, images, labels, lr) -> (params, loss)``:
      params: pytree, leaves (E, ...) (E experts);
      train_keys: (E, ...) per-expert training keys (the k_train of the module doc);
      epoch: int32 scalar (0-based), folded into the keys;
      images: (N, H, W, C) float32, labels: (N,) int32 (shared by all experts);
      lr: float32 scalar (constant SGD step);
      -> updated params (E, ...), mean training loss per expert (E,) (the unweighted mean of
      the minibatch losses; MTT's logged ``train_loss`` weights them by batch size).
    One epoch = ceil(N / batch_size) SGD steps (lax.scan); the last minibatch is padded to
    batch_size and the padding masked out of the mean loss. The forward/backward pass is
    vmapped over experts. The order comes from the keys (module doc); to train on a given
    order use :func:`make_ordered_epoch_fn` (the same computation).
    augment_loop: how DSA runs over the experts. Mode 'S' picks one op group per call with
      ``lax.switch``; under ``vmap`` the switch becomes a select that computes ALL groups
      ('vmap', cheap on accelerators). 'map' runs DSA expert by expert (``lax.map``), so only
      the drawn group is computed (faster on CPU). Same result either way. 'auto': 'map' on
      CPU, 'vmap' elsewhere.
    Cached on its arguments: build_buffer groups reuse one compile.
    """
    run = _epoch_body(model, batch_size, dsa_strategy, augment_loop)

    def batch_order(k_train, epoch, n):
        k_perm, k_aug = jax.random.split(jax.random.fold_in(k_train, epoch))
        return jax.random.permutation(k_perm, n), k_aug

    def epoch_fn(params, k_train, epoch, images, labels, lr):
        order, k_aug = jax.vmap(batch_order, in_axes=(0, None, None))(
            k_train, epoch, images.shape[0])                          # (E, N), (E,)
        return run(params, order, k_aug, images, labels, lr)

    return jax.jit(epoch_fn)


@functools.lru_cache(maxsize=32)
def make_ordered_epoch_fn(model, batch_size: int = 256,
                          dsa_strategy: Optional[str] = DEFAULT_DSA, augment_loop: str = "auto"):
    """The epoch of :func:`make_epoch_fn` for a GIVEN sample order (jitted).

    Returns ``epoch(params, order, aug_keys, images, labels, lr) -> (params, loss)`` with
    ``order`` (E, N) int32: per expert, the order in which the N examples are visited
    (consecutive minibatches of batch_size, the last one short and masked), and
    ``aug_keys`` (E, ...) the per-expert DSA keys (any keys when dsa_strategy is 'none').
    ``make_epoch_fn`` is exactly this with ``order, aug_keys`` drawn from the keys.
    Used by the parity test against MTT's ``utils.epoch`` on a fixed DataLoader order.
    """
    return jax.jit(_epoch_body(model, batch_size, dsa_strategy, augment_loop))


@functools.lru_cache(maxsize=32)
def _make_init_fn(model):
    """Jitted ``(keys (E, ...), x1 (1, H, W, C)) -> (params (E, ...), k_train (E, ...))``."""

    def one(k, x1):
        k_init, k_train = jax.random.split(k)
        return model.init(k_init, x1)["params"], k_train

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


@functools.lru_cache(maxsize=32)
def _make_eval_fn(model, batch_size: int = 512):
    """Jitted ``acc(params (E, ...), images, labels) -> (E,)`` test accuracy, vmapped."""

    def one(params, images, labels):
        n = images.shape[0]
        nb = -(-n // batch_size)
        pad = nb * batch_size - n
        xs = jnp.concatenate([images, jnp.zeros((pad,) + images.shape[1:], images.dtype)])
        ys = jnp.concatenate([labels, jnp.full((pad,), -1, labels.dtype)])
        xs = xs.reshape((nb, batch_size) + images.shape[1:])
        ys = ys.reshape(nb, batch_size)

        def body(c, inp):
            x, y = inp
            pred = jnp.argmax(model.apply({"params": params}, x, train=False), -1)
            return c + jnp.sum(pred == y), None

        correct, _ = jax.lax.scan(body, jnp.zeros((), jnp.int32), (xs, ys))
        return correct / n

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _host_copy(tree):
    """Device pytree -> numpy pytree of fresh copies (never a view of a live buffer)."""
    return jax.tree.map(lambda a: np.array(a, copy=True), jax.device_get(tree))


def _resolve_mesh(mesh):
    """Default: the expert axis over this process's devices (all devices in a one-process
    run; in a multi-process run the experts of a call are this process's alone, trained on
    the data it holds, never arrays spread over other processes)."""
    if mesh is None and jax.local_device_count() > 1:
        mesh = Mesh(np.asarray(jax.local_devices()), ("experts",))
    return mesh


def _train(keys, model, train, test, *, epochs, lr, batch_size, dsa_strategy, record_epochs,
           progress, mesh, desc="experts", lanes=None):
    """Implementation of train_experts; also returns the per-epoch test accuracy.

    lanes: train on exactly this many expert lanes (>= len(keys)), the extra lanes copies
    of the first key, trained and dropped. The vmapped computation of one expert is then
    the same however many experts a call has (XLA may compile a batch of 1 differently
    from a batch of 8: 3e-8 after 3 epochs, 1.2e-5 after 15), so `build_buffer` (which
    always uses min(experts_per_group, num_experts) lanes) trains an expert bit for bit
    the same alone, after a kill, as in its group."""
    x_tr, y_tr = _images_labels(train)
    x_te, y_te = _images_labels(test)
    epochs = int(epochs)
    record = epochs if record_epochs is None else int(record_epochs)
    if not 0 <= record <= epochs:
        raise ValueError(f"record_epochs={record_epochs} must be in [0, epochs={epochs}]")
    if x_tr.shape[0] == 0:
        raise ValueError("empty training set")
    num = int(keys.shape[0])
    _check_stateless(model, jnp.asarray(x_tr[:1]))

    mesh = _resolve_mesh(mesh)
    total = num
    if lanes is not None and int(lanes) > num:
        total = int(lanes)
        keys = keys[np.arange(total) % num]
    if mesh is not None and mesh.size > 1 and total % mesh.size:
        # Pad the expert axis to a multiple of the device count with copies of the first
        # keys; the copies are trained and dropped (sharding needs equal shards).
        total = -(-total // mesh.size) * mesh.size
        keys = keys[np.arange(total) % num]

    params, k_train = _make_init_fn(model)(keys, jnp.asarray(x_tr[:1]))
    images, labels = jnp.asarray(x_tr), jnp.asarray(y_tr)
    te = (jnp.asarray(x_te), jnp.asarray(y_te)) if x_te is not None else None
    if mesh is not None and mesh.size > 1:
        exp_sh = NamedSharding(mesh, P(tuple(mesh.axis_names)))
        rep = NamedSharding(mesh, P())
        params = jax.device_put(params, exp_sh)
        k_train = jax.device_put(k_train, exp_sh)
        images, labels = jax.device_put((images, labels), rep)
        if te is not None:
            te = jax.device_put(te, rep)

    epoch_fn = make_epoch_fn(model, int(batch_size), dsa_strategy)
    eval_fn = _make_eval_fn(model)
    lr_arr = jnp.asarray(lr, jnp.float32)
    snaps = [_host_copy(params)]
    hist = np.full((epochs, total), np.nan, np.float32)

    from tqdm.auto import tqdm

    bar = tqdm(range(epochs), desc=f"{desc} x{num}", disable=not progress, leave=True)
    for e in bar:
        params, loss = epoch_fn(params, k_train, jnp.int32(e), images, labels, lr_arr)
        if e + 1 <= record:
            snaps.append(_host_copy(params))
        post = {"loss": f"{float(jnp.mean(loss[:num])):.3f}"}
        if te is not None:
            hist[e] = np.asarray(eval_fn(params, *te))
            post["test_acc"] = f"{hist[e, :num].mean():.2%}"
        bar.set_postfix(post)
    bar.close()
    traj = jax.tree.map(lambda *s: np.stack(s, axis=1)[:num], *snaps)
    return traj, hist[-1, :num] if epochs else np.full((num,), np.nan, np.float32), hist[:, :num]


def train_experts(key, model, train, test, *, num_experts=None, epochs, lr=0.01,
                  batch_size=256, dsa_strategy=DEFAULT_DSA, record_epochs=None,
                  progress=True, mesh=None):
    """Train ``num_experts`` experts together (vmap) with the MTT recipe; record trajectories.

    Args:
      key: one PRNG key (split into num_experts) or a stack of per-expert keys
        (num_experts, ...); see the module doc for how each key is used.
      model: a stateless flax.linen Module (``get_model(...)``); raises ValueError if it
        has 'batch_stats' (or any collection besides 'params').
      train, test: Datasets (``.images`` (N, H, W, C) float32, ``.labels`` (N,) int32) or
        (images, labels) pairs. test may be None (accuracy NaN).
      epochs: training epochs. lr: constant SGD step (lr_teacher). batch_size: minibatch.
      dsa_strategy: DSA op groups ('none' disables augmentation).
      record_epochs: keep snapshots 0..record_epochs only (default: all, 0..epochs);
        training still runs ``epochs`` epochs.
      progress: tqdm bar over epochs with the mean (over experts) test accuracy.
      mesh: a jax.sharding.Mesh; the expert axis is sharded over all its devices.
        Default: all devices when there are several.
    Returns:
      trajectories: the params pytree as numpy, leaves (num_experts, R + 1, ...),
        R = record_epochs; [:, e] = parameters after e epochs (0 = initialization).
      test_acc: (num_experts,) final test accuracy.
    """
    keys = expert_keys(key, num_experts)
    traj, acc, _ = _train(keys, model, train, test, epochs=epochs, lr=lr,
                          batch_size=batch_size, dsa_strategy=dsa_strategy,
                          record_epochs=record_epochs, progress=progress, mesh=mesh)
    return traj, acc


# ============================================================================ storage


def default_buffer_dir(cfg) -> str:
    """``buffers/<dataset>-r<resolution|native>-<zca|nozca>-<model>`` (relative path;
    an npz file: ``buffers/npz-<stem>-<hash>-...``, never next to the file;
    `jaxdd.config.dataset_tag`)."""
    from jaxdd.config import default_buffer_dir as _default
    return _default(cfg.dataset, cfg.model.name)


def expert_dir(buffer_dir, i: int) -> str:
    return os.path.join(os.fspath(buffer_dir), EXPERT_DIR_FMT.format(int(i)))


def dir_bytes(path) -> int:
    """Total size in bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def _ocp():
    import orbax.checkpoint as ocp
    return ocp


def _checkpointer(local: bool = False):
    """The expert checkpointer. local: in a multi-process run, this process writes alone
    (Orbax's primary host = this process, no barrier with the others; Orbax writes numpy
    leaves from process 0 only, so only process 0 saves this way: `build_buffer`)."""
    ocp = _ocp()
    if not local or jax.process_count() == 1:
        registry = ocp.handlers.create_default_handler_registry(
            **{_TRAJ_ITEM: ocp.PyTreeCheckpointHandler(),
               _META_ITEM: ocp.JsonCheckpointHandler()})
        return ocp.Checkpointer(ocp.CompositeCheckpointHandler(handler_registry=registry))
    me = jax.process_index()
    mp = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me},
                                            barrier_sync_key_prefix=f"jaxdd_expert_p{me}")
    registry = ocp.handlers.create_default_handler_registry(
        **{_TRAJ_ITEM: ocp.PyTreeCheckpointHandler(multiprocessing_options=mp),
           _META_ITEM: ocp.JsonCheckpointHandler(multiprocessing_options=mp)})
    handler = ocp.CompositeCheckpointHandler(
        handler_registry=registry,
        composite_options=ocp.CompositeOptions(multiprocessing_options=mp))
    return ocp.Checkpointer(handler, multiprocessing_options=mp)


def _jsonable(x):
    """Round-trip through JSON (tuples -> lists, numpy scalars -> python)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if hasattr(o, "to_dict"):
            return o.to_dict()
        raise TypeError(f"not JSON-serializable: {type(o).__name__}")
    return json.loads(json.dumps(x, default=default))


def save_expert(path, trajectory, meta: dict, *, force: bool = False,
                local: bool = False) -> str:
    """Write one expert: ``trajectory`` leaves (R + 1, ...) (epoch-major) + JSON ``meta``.

    Atomic: Orbax writes a temporary directory and renames it when complete.
    ``meta`` gains 'format' and 'num_snapshots'. Returns the path. local: this process
    writes it alone in a multi-process run (process 0, `build_buffer`).
    """
    path = os.path.abspath(os.fspath(path))
    leaves = jax.tree.leaves(trajectory)
    n = int(leaves[0].shape[0])
    if any(int(leaf.shape[0]) != n for leaf in leaves):
        raise ValueError("all trajectory leaves need the same leading (epoch) axis")
    tree = {_EPOCH_FMT.format(e): jax.tree.map(lambda a: np.asarray(a[e]), trajectory)
            for e in range(n)}
    meta = _jsonable({**meta, "format": FORMAT, "num_snapshots": n})
    ocp = _ocp()
    _checkpointer(local).save(path, ocp.args.Composite(**{
        _TRAJ_ITEM: ocp.args.PyTreeSave(tree), _META_ITEM: ocp.args.JsonSave(meta)}),
        force=force)
    return path


def _is_complete(path) -> bool:
    """A finalized expert checkpoint with both items written."""
    if not os.path.isdir(path) or _TMP_MARK in os.path.basename(path):
        return False
    try:
        if not _ocp().utils.is_checkpoint_finalized(path):
            return False
    except Exception:  # noqa: BLE001 -- anything unreadable is not complete
        return False
    return (os.path.isfile(os.path.join(path, _META_ITEM, "metadata"))
            and os.path.isfile(os.path.join(path, _TRAJ_ITEM, "_METADATA")))


def list_experts(buffer_dir) -> dict:
    """{index: path} of the complete experts in ``buffer_dir`` (temporary dirs ignored)."""
    out = {}
    if not os.path.isdir(buffer_dir):
        return out
    for name in os.listdir(buffer_dir):
        m = _EXPERT_RE.match(name)
        if m is None:
            continue
        p = os.path.join(buffer_dir, name)
        if _is_complete(p):
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def load_expert_metadata(path) -> dict:
    """The JSON metadata of one expert checkpoint."""
    with open(os.path.join(path, _META_ITEM, "metadata")) as f:
        return json.load(f)


def _epoch_tree_metadata(path):
    return _checkpointer().metadata(path).item_metadata[_TRAJ_ITEM].tree


def _restore_epochs(path, epochs: Sequence[int]):
    """Partial restore of the given epoch snapshots -> list of numpy param pytrees.

    Only the arrays of the requested ``epoch_XXXX`` subtrees are read (Orbax partial
    restore on the OCDBT store).
    """
    ocp = _ocp()
    tree_md = _epoch_tree_metadata(path)
    names = [_EPOCH_FMT.format(int(e)) for e in epochs]
    missing = [n for n in names if n not in tree_md]
    if missing:
        raise ExpertMismatchError(
            f"{path} has snapshots 0..{len(tree_md) - 1}; {missing[0]} and later were not "
            f"recorded (rebuild the buffer with record_epochs >= {max(epochs)})")
    item = {n: tree_md[n] for n in dict.fromkeys(names)}
    rargs = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
    out = _checkpointer().restore(path, ocp.args.Composite(**{_TRAJ_ITEM: ocp.args.PyTreeRestore(
        item=item, restore_args=rargs, partial_restore=True)}))[_TRAJ_ITEM]
    return [out[n] for n in names]


def _epoch_list(epochs, num_snapshots=None):
    """None -> all; int n -> 0..n inclusive; range / sequence -> as given."""
    if epochs is None:
        if num_snapshots is None:
            raise ValueError("epochs=None needs the number of snapshots")
        return list(range(int(num_snapshots)))
    if isinstance(epochs, (int, np.integer)):
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        return list(range(int(epochs) + 1))
    out = [int(e) for e in epochs]
    if not out or min(out) < 0:
        raise ValueError(f"bad epochs selection {epochs!r}")
    return out


def load_slice(buffer_dir, expert: int, start: int, k: int, *, endpoints_only: bool = False):
    """Snapshots ``start .. start + k`` (inclusive) of one expert, read partially.

    Returns a numpy params pytree with leaves (k + 1, ...): [0] = theta at epoch ``start``,
    [-1] = the target at ``start + k``. ``endpoints_only``: read just those two snapshots
    (leaves (2, ...)), all TM needs.
    """
    path = expert_dir(buffer_dir, expert)
    if not _is_complete(path):
        raise MissingExpertsError(f"expert {expert} is missing or incomplete in {buffer_dir}",
                                  buffer_dir=buffer_dir, missing=(expert,))
    epochs = [start, start + k] if endpoints_only else list(range(start, start + k + 1))
    snaps = _restore_epochs(path, epochs)
    return jax.tree.map(lambda *s: np.stack(s), *snaps)


# ============================================================================ metadata


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


_MISSING = object()


def _compare(got, want, prefix, diffs):
    for k, v in want.items():
        name = f"{prefix}{k}"
        g = got.get(k, _MISSING) if isinstance(got, dict) else _MISSING
        if k == "overrides" and isinstance(v, dict):
            # model overrides must match exactly (an extra override is a different model);
            # conv_impl / compute_dtype are how it computes, and ignored.
            gd = _identity_overrides(g if isinstance(g, dict) else {})
            if gd != _identity_overrides(v):
                diffs.append(f"  {name}: stored {gd!r}, expected {_identity_overrides(v)!r}")
        elif isinstance(v, dict) and isinstance(g, dict):
            _compare(g, v, name + ".", diffs)  # only the fields named in `expected`
        elif g is _MISSING:
            diffs.append(f"  {name}: stored <absent>, expected {v!r}")
        elif g != v:
            diffs.append(f"  {name}: stored {g!r}, expected {v!r}")


def check_metadata(meta: dict, expected: Optional[dict], *, where: str = "expert",
                   buffer_dir=None, hint: Optional[str] = None) -> None:
    """Raise ExpertMismatchError if ``meta`` differs from ``expected`` on any of its fields.

    Only the (nested) fields present in ``expected`` are compared, after a JSON round trip
    (tuples equal lists); a 'model.overrides' dict must match exactly (except conv_impl and compute_dtype).
    The message lists every differing field. When the input preprocessing differs
    ('dataset.preprocessing', e.g. a buffer built before jaxdd followed the authors' ZCA /
    normalization, which has no such field), it also says why the experts cannot be reused
    and how to rebuild them: delete ``buffer_dir`` (or use another) and run ``hint`` (the
    build command, `build_command`).
    """
    if not expected:
        return
    diffs = []
    _compare(_jsonable(meta), _jsonable(expected), "", diffs)
    if not diffs:
        return
    msg = f"{where} was built with different settings:\n" + "\n".join(diffs)
    where_dir = buffer_dir if buffer_dir is not None else "<buffer_dir>"
    if any(d.lstrip().startswith("dataset.preprocessing:") for d in diffs):
        got = ((meta or {}).get("dataset") or {}).get("preprocessing")
        want = ((expected or {}).get("dataset") or {}).get("preprocessing")
        why = ("stored <absent>: the buffer predates preprocessing metadata, i.e. it was "
               "built when jaxdd standardized every dataset with its train-split mean/std "
               "and fitted ZCA after that standardization (not the authors' pipeline)"
               if got is None else f"stored {got!r}")
        msg += (f"\nThe experts in {where_dir} were trained on differently preprocessed "
                f"images ({why}; expected {want!r}: "
                f"{_PREPROCESSING_HELP.get(str(want).split(';')[0].split('-eps')[0], want)}). "
                f"Trajectories only fit the inputs they were trained on, so they cannot be "
                f"reused. Delete the stale experts (rm -r {where_dir}) or choose another "
                f"buffer_dir, then rebuild them:\n  "
                + (hint or f"python launch/buffer.py --config=configs/buffer.py:<variant> "
                            f"--buffer_dir={where_dir}"))
    else:
        msg += "\nUse another buffer_dir for these settings, or delete the stale experts."
        if hint:
            msg += f" Build command:\n  {hint}"
    raise ExpertMismatchError(msg)


_PREPROCESSING_HELP = {
    "zca01": "ZCA (kornia semantics) fitted on [0, 1] pixels, no mean/std, as the authors' --zca",
    "standardize-authors-constants": "(x - mean) / std with the authors' per-dataset constants",
    "standardize-train-stats": "(x - mean) / std with the train split's statistics (datasets "
                               "without authors' constants)",
    "pixels01": "[0, 1] pixels",
}


def _dataset_preprocessing(d) -> str:
    """``jaxdd.data.preprocessing_id`` of a config's dataset block (name, zca, zca_eps and the
    optional normalize / stats / resize fields)."""
    from jaxdd.data import preprocessing_id

    stats = _cfg_get(d, "stats")
    if stats is not None and hasattr(stats, "to_dict"):
        stats = stats.to_dict()
    return preprocessing_id(
        str(d.name), zca=bool(_cfg_get(d, "zca", False)),
        zca_eps=float(_cfg_get(d, "zca_eps", 0.1)), normalize=_cfg_get(d, "normalize"),
        stats=stats, resize=_cfg_get(d, "resize"))


def _cfg_get(cfg, name, default=None):
    try:
        v = cfg.get(name, default) if hasattr(cfg, "get") else getattr(cfg, name, default)
    except (AttributeError, KeyError):
        v = default
    return default if v is None and default is not None else v


def _model_overrides(cfg) -> dict:
    m = _cfg_get(cfg, "model")
    ov = _cfg_get(m, "overrides") if m is not None else None
    ov = dict(ov.to_dict() if hasattr(ov, "to_dict") else (ov or {}))
    return ov


# how a layer computes, not which function it is: not part of an expert's identity
_COMPUTE_ONLY_OVERRIDES = ("conv_impl", "compute_dtype")


def _identity_overrides(ov: dict) -> dict:
    return {k: v for k, v in ov.items() if k not in _COMPUTE_ONLY_OVERRIDES}


def expected_metadata(cfg, *, strict: bool = False) -> dict:
    """Fields a stored expert must match for the buffer config ``cfg``.

    Default (loading for TM): dataset (name, resolution, zca, zca_eps, preprocessing), model
    (name, overrides except conv_impl / compute_dtype), lr_teacher, batch_size, dsa_strategy.
    'dataset.preprocessing' is ``jaxdd.data.preprocessing_id`` of the dataset block (e.g.
    'zca01-eps0.1', 'standardize-authors-constants'): buffers built with other inputs --
    including every buffer built before jaxdd followed the authors' preprocessing, which
    lacks the field -- are refused (`check_metadata` says how to rebuild them).
    ``strict`` (build_buffer, deciding whether to reuse an expert) adds epochs,
    record_epochs and seed. (Which epochs were recorded is checked at load time.)
    """
    d = cfg.dataset
    zca = bool(_cfg_get(d, "zca", False))
    exp = {
        "dataset": {
            "name": str(d.name),
            "resolution": None if _cfg_get(d, "resolution") is None else int(d.resolution),
            "zca": zca,
            "preprocessing": _dataset_preprocessing(d),
        },
        "model": {"name": str(cfg.model.name),
                  "overrides": _identity_overrides(_model_overrides(cfg))},
        "lr_teacher": float(cfg.lr_teacher),
        "batch_size": int(_cfg_get(cfg, "batch_size", 256)),
        "dsa_strategy": _dsa_name(_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA)),
    }
    if zca:
        exp["dataset"]["zca_eps"] = float(_cfg_get(d, "zca_eps", 0.1))
    if strict:
        epochs = int(cfg.epochs)
        rec = _cfg_get(cfg, "record_epochs")
        exp["epochs"] = epochs
        exp["record_epochs"] = epochs if rec is None else int(rec)
        exp["seed"] = int(_cfg_get(cfg, "seed", 0))
    return exp


def _dsa_name(s):
    return "none" if s in (None, "", "none") else str(s)


def build_command(cfg=None, buffer_dir=None) -> str:
    """The shell command that builds the buffer of ``cfg`` (a buffer ConfigDict).

    Fields that differ from the variant's defaults are spelled out in the config string,
    e.g. ``--config=configs/buffer.py:cifar10,num_experts=5,model.overrides.width=64``.
    """
    variant = "<variant>"
    extra = []
    if cfg is not None:
        name = str(cfg.dataset.name).lower()
        name = name.split(":")[-1] if name.startswith("imagenet2012:") else name
        variant = _cfg_get(cfg, "variant") or (name if name in _VARIANTS else "digits")
        try:
            base = _load_buffer_config(variant)
        except Exception:  # noqa: BLE001 -- the hint must never fail
            base = None
        if base is not None:
            mine = _flatten(_jsonable(cfg.to_dict()))
            theirs = _flatten(_jsonable(base.to_dict()))
            for k in ("dataset.name", "dataset.resolution", "dataset.zca", "dataset.zca_eps",
                      "dataset.resize", "dataset.normalize", "dataset.data_dir", "model.name",
                      "num_experts", "epochs", "lr_teacher", "batch_size", "dsa_strategy",
                      "seed", "record_epochs", "experts_per_group"):
                if k not in theirs and mine.get(k) is None:
                    continue  # an optional field left at its default
                if k in mine and mine.get(k) != theirs.get(k, _MISSING):
                    extra.append(f"{k}={mine[k]}")
            for k, v in mine.items():
                if k.startswith("model.overrides.") and theirs.get(k, _MISSING) != v:
                    extra.append(f"{k}={v}")
        buffer_dir = buffer_dir or _cfg_get(cfg, "buffer_dir") or default_buffer_dir(cfg)
    cmd = f"python launch/buffer.py --config=configs/buffer.py:{','.join([variant] + extra)}"
    if buffer_dir:
        cmd += f" --buffer_dir={buffer_dir}"
    return cmd


def _load_buffer_config(variant):
    """The buffer recipe of ``variant`` (jaxdd.config.buffer_config: defined once in the
    library; configs/buffer.py calls it, nothing here runs a config file by path)."""
    from jaxdd.config import buffer_config
    return buffer_config(variant)


def _missing_message(buffer_dir, missing, found, hint, expected=None):
    n = len(missing)
    shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if n > 10 else "")
    if not hint:
        name = str(((expected or {}).get("dataset") or {}).get("name", "")).lower()
        variant = name if name in _VARIANTS else "<variant>"
        hint = (f"python launch/buffer.py --config=configs/buffer.py:{variant} "
                f"--buffer_dir={buffer_dir}  (variants: {', '.join(_VARIANTS)}; set other "
                f"fields in the config string, e.g. :{variant if name in _VARIANTS else 'digits'}"
                f",num_experts=10)")
    return (f"{n} expert(s) missing or incomplete in {buffer_dir} (indices {shown}; "
            f"{found} complete found). Build them with:\n  {hint}")


# ============================================================================ loading


def load_trajectories(buffer_dir, *, expected=None, num_experts=None, epochs=None,
                      build_hint: Optional[str] = None, progress: bool = False,
                      set_aside_damaged: bool = True):
    """Load experts 0..num_experts-1 (default: all complete ones), only the needed epochs.

    Args:
      expected: dict of metadata fields every expert must match (``expected_metadata``);
        mismatch -> ExpertMismatchError listing the fields.
      num_experts: how many experts (0..n-1) are needed; missing ones ->
        MissingExpertsError whose message gives the build command (``build_hint``).
      epochs: None = every recorded snapshot; int n = snapshots 0..n inclusive (TM passes
        max_start_epoch + expert_epochs); a range / sequence = exactly those snapshots.
    Returns:
      (trajs, metas): trajs = numpy params pytree, leaves (num_experts, len(epochs), ...);
      metas = list of the experts' metadata dicts.
    Only the selected epoch snapshots are read from disk (Orbax partial restore), written
    straight into the preallocated output arrays.
    A damaged expert (unreadable metadata or snapshots) is named and, with
    ``set_aside_damaged`` (default), renamed into <buffer_dir>/damaged/ (never deleted);
    then DamagedExpertError (a MissingExpertsError: build the buffer again to retrain it).
    """
    buffer_dir = os.fspath(buffer_dir)
    found = list_experts(buffer_dir)
    if num_experts is None:
        if not found:
            raise MissingExpertsError(_missing_message(buffer_dir, [0], 0, build_hint, expected),
                                      buffer_dir=buffer_dir, missing=(0,), found=0)
        indices = list(found)
    else:
        indices = list(range(int(num_experts)))
        missing = [i for i in indices if i not in found]
        if missing:
            raise MissingExpertsError(_missing_message(buffer_dir, missing, len(found),
                                                       build_hint, expected),
                                      buffer_dir=buffer_dir, missing=missing, found=len(found))
    metas = []
    for i in indices:
        try:
            meta = load_expert_metadata(found[i])
        except Exception as e:  # noqa: BLE001 -- damaged JSON
            _damaged(buffer_dir, i, found[i], e, build_hint, set_aside_damaged)
        check_metadata(meta, expected, where=f"expert {i} ({found[i]})",
                       buffer_dir=buffer_dir, hint=build_hint)
        metas.append(meta)
    ep = _epoch_list(epochs, min(int(m.get("num_snapshots", 0)) for m in metas))

    out = None
    from tqdm.auto import tqdm
    for j, i in enumerate(tqdm(indices, desc="loading experts", disable=not progress)):
        try:
            snaps = _restore_epochs(found[i], ep)
        except ExpertMismatchError:
            raise
        except Exception as e:  # noqa: BLE001 -- truncated / corrupt snapshot files
            _damaged(buffer_dir, i, found[i], e, build_hint, set_aside_damaged)
        if out is None:
            out = jax.tree.map(
                lambda a: np.empty((len(indices), len(ep)) + a.shape, a.dtype), snaps[0])
            treedef = jax.tree.structure(snaps[0])
        for t, s in enumerate(snaps):
            if jax.tree.structure(s) != treedef:
                raise ExpertMismatchError(f"expert {i} has a different parameter structure")
            for dst, src in zip(jax.tree.leaves(out), jax.tree.leaves(s)):
                if dst.shape[2:] != src.shape:
                    raise ExpertMismatchError(
                        f"expert {i}: parameter shape {src.shape} != {dst.shape[2:]}")
                dst[j, t] = src
        del snaps
    return out, metas


def _damaged(buffer_dir, i, path, err, hint, set_aside):
    where = path
    if set_aside:
        where = _set_aside_expert(buffer_dir, path, err)
    raise DamagedExpertError(
        f"expert {i} ({path}) is damaged: {type(err).__name__}: "
        f"{str(err).splitlines()[0][:200] if str(err) else ''}. "
        + (f"It was set aside as {where}; " if set_aside else "Delete or move it; ")
        + "rebuild it with:\n  " + (hint or f"python launch/buffer.py "
                                    f"--config=configs/buffer.py:<variant> --buffer_dir={buffer_dir}"),
        buffer_dir=buffer_dir, missing=(i,), found=0) from err


# ============================================================================ build


def _meta_for(cfg, i, *, key, test_acc, hist, seconds, num_params, train, record):
    d = cfg.dataset
    x, _ = _images_labels(train)
    meta = {
        "expert": int(i),
        "dataset": {
            "name": str(d.name),
            "resolution": None if _cfg_get(d, "resolution") is None else int(d.resolution),
            "preprocessing": _dataset_preprocessing(d),
            "zca": bool(_cfg_get(d, "zca", False)),
            "zca_eps": float(_cfg_get(d, "zca_eps", 0.1)),
            "image_shape": list(x.shape[1:]),
            "num_train": int(x.shape[0]),
            "num_classes": int(train.num_classes) if hasattr(train, "num_classes") else None,
        },
        "model": {"name": str(cfg.model.name), "overrides": _model_overrides(cfg),
                  "num_params": int(num_params)},
        "epochs": int(cfg.epochs),
        "record_epochs": int(record),
        "lr_teacher": float(cfg.lr_teacher),
        "batch_size": int(_cfg_get(cfg, "batch_size", 256)),
        "dsa_strategy": _dsa_name(_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA)),
        "optimizer": "sgd (constant lr, momentum 0, weight decay 0), cross-entropy",
        "seed": int(_cfg_get(cfg, "seed", 0)),
        "key": np.asarray(jax.random.key_data(key) if _is_typed_key(key) else key).tolist(),
        "test_acc": float(test_acc),
        "test_acc_per_epoch": [float(a) for a in hist],
        "train_seconds": float(seconds),
        "jaxdd_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return meta


def _version():
    import jaxdd
    return str(getattr(jaxdd, "__version__", "unknown"))


def _clean_tmp(buffer_dir):
    removed = []
    for name in os.listdir(buffer_dir):
        if name.startswith("expert_") and _TMP_MARK in name:
            shutil.rmtree(os.path.join(buffer_dir, name), ignore_errors=True)
            removed.append(name)
    return removed


def _gather_groups(traj, acc, hist, secs, group):
    """Multi-process `build_buffer`: every process's trained group (leading expert axis,
    padded to `group`) on every process -> [(traj, acc, hist, secs) per process], leaf by
    leaf (`jaxdd.data.shard.allgather`, exact bytes)."""
    from jaxdd.data.shard import allgather

    def pad(a, axis):
        a = np.asarray(a)
        widths = [(0, 0)] * a.ndim
        widths[axis] = (0, group - a.shape[axis])
        return np.pad(a, widths)

    leaves, tdef = jax.tree.flatten(traj)
    g_leaves = [allgather(pad(a, 0)) for a in leaves]
    g_acc = allgather(pad(acc, 0))
    g_hist = allgather(pad(hist, 1))
    g_secs = allgather(np.asarray([secs], np.float64))
    return [(jax.tree.unflatten(tdef, [g[q] for g in g_leaves]), g_acc[q], g_hist[q],
             float(g_secs[q][0])) for q in range(len(g_acc))]


def _barrier(name):
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def build_buffer(buffer_dir, cfg, *, train=None, test=None, progress=True):
    """Train and store the experts of ``cfg`` that are not in ``buffer_dir`` yet (resumable).

    cfg: the buffer ConfigDict (configs/buffer.py): dataset (name, resolution, zca,
    zca_eps, data_dir), model (name, overrides), num_experts, epochs, lr_teacher,
    batch_size, dsa_strategy, seed, record_epochs, experts_per_group.
    Expert i uses key fold_in(PRNGKey(seed), i) whatever group it lands in, so a resumed
    build trains exactly the experts an uninterrupted one would have.
    Complete experts whose metadata match (``expected_metadata(cfg, strict=True)``) are
    skipped; a complete expert with other settings raises ExpertMismatchError (never
    overwritten); leftover temporary / incomplete directories are deleted and rebuilt.
    train/test: preprocessed Datasets; default: ``load_dataset`` from cfg.dataset.
    Prints a summary (mean +- std test accuracy, seconds, bytes per expert).
    Returns the list of the num_experts metadata dicts.
    """
    buffer_dir = os.fspath(buffer_dir)
    n = int(cfg.num_experts)
    if getattr(train, "shard", None) is not None:
        raise ValueError(
            "build_buffer trains every expert on the whole training split, but `train` is "
            "one process's shard (jaxdd.data.shard): pass the whole split (load_dataset "
            "without shard, or jaxdd.data.shard.gather_split)")
    if n < 1:
        raise ValueError(f"num_experts={n}: a buffer needs at least one expert")
    # multi-process: every process reads the buffer, process 0 alone tidies it; then each
    # process trains and writes the missing experts i with i % processes == its index
    procs, me = jax.process_count(), jax.process_index()
    tidy = me == 0
    if os.path.isdir(buffer_dir) and tidy:
        removed = _clean_tmp(buffer_dir)
        if removed and progress:
            print(f"[experts] removed {len(removed)} unfinished temporary dir(s): {removed}")
    expected = expected_metadata(cfg, strict=True)
    found = list_experts(buffer_dir)
    todo = []
    for i in range(n):
        p = expert_dir(buffer_dir, i)
        if i in found:
            try:
                meta = load_expert_metadata(p)
            except Exception as e:  # noqa: BLE001 -- damaged metadata: set aside, rebuild
                if tidy:
                    _set_aside_expert(buffer_dir, p, e)
                todo.append(i)
                continue
            check_metadata(meta, expected, where=f"expert {i} ({p})",
                           buffer_dir=buffer_dir, hint=build_command(cfg, buffer_dir))
        else:
            if os.path.exists(p) and tidy:  # final name but not complete: never loadable
                _set_aside_expert(buffer_dir, p, ValueError("incomplete (not finalized)"))
            todo.append(i)

    if procs > 1:  # after process 0's tidying: every process sees the same buffer
        _barrier("jaxdd_experts_scanned")
        found = list_experts(buffer_dir)
        todo = [i for i in range(n) if i not in found]
    # process q trains the missing experts i with i % procs == q, one group per round
    shares = [[i for i in todo if i % procs == q] for q in range(procs)]
    t0 = time.time()
    if todo:
        if train is None:
            from jaxdd.data import load_dataset
            d = cfg.dataset
            stats = _cfg_get(d, "stats")
            train, test = load_dataset(
                d.name, data_dir=_cfg_get(d, "data_dir"), resolution=_cfg_get(d, "resolution"),
                normalize=_cfg_get(d, "normalize"), resize=_cfg_get(d, "resize"),
                stats=stats.to_dict() if hasattr(stats, "to_dict") else stats,
                zca=bool(_cfg_get(d, "zca", False)), zca_eps=float(_cfg_get(d, "zca_eps", 0.1)),
                download=bool(_cfg_get(d, "download", False)))
        got = getattr(train, "preprocessing", "")  # '' / absent: unknown, not checked
        if got and got != expected["dataset"]["preprocessing"]:
            raise ExpertMismatchError(
                f"the training data given to build_buffer were preprocessed as {got!r}, but "
                f"the buffer config says {expected['dataset']['preprocessing']!r} "
                f"(dataset {cfg.dataset.name}): load them with the config's dataset fields "
                f"(zca, zca_eps, normalize, stats, resize).")
        from jaxdd.models import count_params, get_model
        ov = _model_overrides(cfg)
        model = get_model(str(cfg.model.name), int(train.num_classes), **ov)
        group = max(1, int(_cfg_get(cfg, "experts_per_group", 10)))
        # every group runs on the same number of lanes (padding lanes when a group is
        # short, e.g. the experts left after a kill): bitwise the same experts
        lanes = min(group, n)
        seed_key = jax.random.PRNGKey(int(_cfg_get(cfg, "seed", 0)))
        rec = _cfg_get(cfg, "record_epochs")
        rec = int(cfg.epochs) if rec is None else int(rec)
        if progress:
            part = f" (process {me} of {procs}: {len(shares[me])})" if procs > 1 else ""
            print(f"[experts] {len(todo)} of {n} experts to train{part} in {buffer_dir} "
                  f"({cfg.model.name}, {cfg.epochs} epochs, groups of {group})")
        rounds = max(-(-len(sh) // group) for sh in shares)
        for r in range(rounds):
            mine = shares[me][r * group:(r + 1) * group]
            idx = mine or todo[:1]  # nothing left here this round: a stand-in, discarded
            keys = jnp.stack([jax.random.fold_in(seed_key, i) for i in idx])
            tg = time.time()
            traj, acc, hist = _train(
                keys, model, train, test, epochs=int(cfg.epochs), lr=float(cfg.lr_teacher),
                batch_size=int(_cfg_get(cfg, "batch_size", 256)),
                dsa_strategy=_cfg_get(cfg, "dsa_strategy", DEFAULT_DSA), record_epochs=rec,
                progress=progress, mesh=None, desc=f"experts {idx[0]}-{idx[-1]}", lanes=lanes)
            secs = (time.time() - tg) / len(idx)
            num_params = count_params(jax.tree.map(lambda a: a[0, 0], traj))
            if procs == 1:
                work = [(idx, traj, acc, hist, secs)]
            else:  # every process's group to process 0, which writes them all
                got = _gather_groups(traj, acc, hist, secs, group)
                if me != 0:
                    continue
                work = [(shares[q][r * group:(r + 1) * group],) + got[q] for q in range(procs)]
            for ids, tr, ac, hi, sc in work:
                for j, i in enumerate(ids):
                    meta = _meta_for(cfg, i, key=jax.random.fold_in(seed_key, i),
                                     test_acc=ac[j], hist=hi[:, j], seconds=sc,
                                     num_params=num_params, train=train, record=rec)
                    meta["lanes"] = int(lanes)
                    os.makedirs(buffer_dir, exist_ok=True)
                    save_expert(expert_dir(buffer_dir, i), jax.tree.map(lambda a: a[j], tr),
                                meta, local=procs > 1)
                    from jaxdd.workdir import fault_point
                    fault_point("saved_expert")
    elapsed = time.time() - t0
    if procs > 1:
        _barrier("jaxdd_experts_built")

    found = list_experts(buffer_dir)
    metas = [load_expert_metadata(found[i]) for i in range(n)]
    accs = np.array([m["test_acc"] for m in metas], np.float64)
    sizes = [dir_bytes(found[i]) for i in range(n)]
    if progress:
        print(f"[experts] {buffer_dir}: {n} experts ({len(todo)} trained now in "
              f"{elapsed:.1f} s, {elapsed / max(len(todo), 1):.1f} s/expert); test acc "
              f"{100 * np.nanmean(accs):.2f} +- {100 * np.nanstd(accs):.2f} %; "
              f"{np.mean(sizes) / 1e6:.2f} MB per expert ({sum(sizes) / 1e6:.1f} MB total)")
    return metas
