"""Training experts: the MTT recipe, all experts of a call at once (vmap), fixed lanes.

Recipe (MTT ``buffer.py``): SGD with a constant learning rate ``lr_teacher`` (0.01), no
momentum, no weight decay, minibatches of 256 drawn from a fresh permutation each epoch
(the last, partial batch is kept: it is a full SGD step whose loss is the mean over its
real examples; padded slots are masked out), DSA augmentation (mode 'S'), cross-entropy.
Parameters are recorded at initialization and after every epoch.

All experts of a call are trained at once by the training core (``jaxdd.train``): one
jitted epoch function (a ``lax.scan`` over minibatches whose step runs forward/backward
``vmap``-ed over the experts, each expert with its own data order and augmentation keys) is
compiled once and called per epoch from a Python loop (tqdm bar with the experts' mean test
accuracy). With several devices the expert axis is sharded over them
(``jax.sharding.NamedSharding``).

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

Differences from the authors' code, on purpose: the PyTorch buffer records
``[p.detach().cpu() for p in net.parameters()]``; on a CPU run ``.cpu()`` is a no-op, so
every snapshot aliases the live tensors and the whole trajectory ends up equal to the last
epoch. Here snapshots are host copies (``np.array(..., copy=True)``) taken after each epoch;
the tests check that snapshot e+1 equals one epoch of training from snapshot e.
"""
from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdd import losses
from jaxdd import train as train_lib

__all__ = ["DEFAULT_DSA", "expert_keys", "make_epoch_fn", "make_ordered_epoch_fn",
           "train_experts"]

DEFAULT_DSA = "color_crop_cutout_flip_scale_rotate"


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
    ``fold_in(k_aug, b)``; also the source of a dropout model's keys, see jaxdd.train);
    ignored when augmentation is off and the model has no dropout.  SGD: the core's optimizer
    factory ``optax.sgd(lr)`` (p - lr * g, no momentum, no weight decay).
    """
    strategy = None if dsa_strategy in (None, "", "none") else str(dsa_strategy)
    augment = None
    if strategy is not None:
        from jaxdd.augment import dsa

        def augment(k, x):
            # 5-D: video (voxels allow 'none' only, refused up front by validate.data)
            return dsa(k, x, strategy=strategy, mode="S",
                       modality="video" if x.ndim == 5 else None)

    trainer = train_lib.make_trainer(model, optax.sgd, loss=losses.cross_entropy,
                             batch_size=int(batch_size), augment=augment,
                             last_batch="short", augment_loop=augment_loop)

    def run(params, order, k_aug, images, labels, lr):
        n = images.shape[0]
        if order.shape[-1] != n:
            raise ValueError(f"order has {order.shape[-1]} entries per expert for {n} examples")
        steps = jnp.arange(trainer.num_steps(n))
        step_keys = jax.vmap(lambda k: jax.vmap(lambda b: jax.random.fold_in(k, b))(steps))(
            k_aug) if (augment is not None or trainer.dropout) else None
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
