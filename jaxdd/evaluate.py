"""The evaluation protocol: train fresh networks on a (decoded) synthetic set, test them.

Protocol: the authors' ``utils.evaluate_synset`` (MTT utils.py:352-389 at 50dccea; DC/DSA/DM,
FreD TM/DC/DM and DDiF copy it), followed step by step:

* ``epochs`` is their ``epoch_eval_train`` (E = 1000): the loop runs ``range(E + 1)``, i.e.
  **E + 1 passes** over the training set (utils.py:370);
* SGD(lr, momentum 0.9, weight decay 5e-4 added to the gradient before momentum, as
  torch.optim.SGD), batch 256 (``batch_train``), a fresh shuffle every pass, the last
  partial batch kept (DataLoader shuffle=True, drop_last=False; utils.py:359-364);
* the lr drops x0.1 AFTER pass ``E // 2 + 1`` (utils.py:358, 377-379): passes 0..E//2+1
  (E//2 + 2 passes, 502 for E = 1000) at lr, the remaining E - E//2 - 1 (499) at lr / 10;
  the optimizer is re-created at the drop, so the momentum buffer RESETS to zero;
* DSA on every training batch (``epoch(..., aug=True)``), mode 'S': each network draws its
  own op group per batch (utils.py:537-542), independently of the other networks (default
  here; ``share_dsa_ops=True`` shares one op group per step across the K networks, which
  lets ``lax.switch`` run one branch instead of all six -- an option, not the authors' behaviour);
* the test accuracy after the last pass (no augmentation, eval mode: BatchNorm networks
  use their running statistics, as ``net.eval()``; instance norm has no eval mode).

Reported: the FINAL test accuracy, mean +- std (population std, as np.std) over the K
networks. The authors' papers report the best mean over the evaluation points of a
distillation run (selected on the test set); jaxdd.distill records that too, labelled.

The K networks are trained together by the training core (``jaxdd.train``: one lax.scan
over minibatches per pass, each step vmapped over networks, each network with its own
initialization, minibatch order and augmentation randomness; BatchNorm state carried) inside
one jitted loop over passes (dynamic bounds: one compile for every chunk), called in chunks
so a progress bar can move between them.

Hard labels (int (N,)) use cross-entropy; soft labels (float (N, classes)) use the
cross-entropy to the target distribution (= KL up to a constant), with an optional
temperature T on the student logits (loss scaled by T^2 as in knowledge distillation).
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdd import losses
from jaxdd import sharding
from jaxdd import train as train_lib
from jaxdd.augment import dsa
from jaxdd.train import authors_schedule  # noqa: F401  (re-exported: the schedule)


@dataclasses.dataclass
class EvalResult:
    accs: np.ndarray  # (K,) final test accuracy of each network
    mean: float
    std: float
    seconds: float
    epochs: int      # the authors' epoch_eval_train E
    num_train: int
    passes: int = 0  # passes over the training set (E + 1)

    def __str__(self):
        return f"{100 * self.mean:.2f} +- {100 * self.std:.2f} % (K={len(self.accs)}, {self.seconds:.1f} s)"

    def to_dict(self):
        return {"accs": [float(a) for a in self.accs], "mean": self.mean, "std": self.std,
                "seconds": self.seconds, "epochs": self.epochs, "passes": self.passes,
                "num_train": self.num_train}


class EvalFns(NamedTuple):
    """The evaluation trainer on the core (``make_eval_trainer``); all jitted.

    init(keys (K,), x0) -> TrainState; run(state, keys, op_keys, images, labels, lr, start,
    n_epochs, per_net_data=False, perms=None) -> state (passes start .. start+n-1);
    reset(state) -> state with a fresh optimizer (momentum 0); correct(state, x, y) -> (K,).
    """
    init: Callable
    run: Callable
    reset: Callable
    correct: Callable
    trainer: Any


def _eval_tx(momentum, weight_decay):
    """SGD(lr, momentum) with weight decay added to the gradient (torch.optim.SGD), as a
    factory of the (traced) lr, so a learned lr or the drop does not recompile."""
    return lambda lr: optax.chain(optax.add_decayed_weights(weight_decay),
                                  optax.sgd(lr, momentum=momentum))


@functools.lru_cache(maxsize=16)
def make_eval_trainer(model, *, batch_size=256, momentum=0.9, weight_decay=5e-4,
                      dsa_strategy="color_crop_cutout_flip_scale_rotate", temperature=None,
                      share_dsa_ops=False, net_loop="vmap") -> EvalFns:
    """The evaluation protocol's trainer (module doc) on ``jaxdd.train``, any model.

    Pass e of network k uses keys[k, e]: (k_perm, k_aug) = split(keys[k, e]); the order is
    permutation(k_perm, N) (or perms[k, e] when given); minibatch b is augmented with
    split(k_aug, S)[b] (op key split(op_keys[e], S)[b] with share_dsa_ops).
    """
    use_dsa = bool(dsa_strategy) and dsa_strategy != "none"
    augment = None
    if use_dsa:
        def augment(k, x, op_key=None):
            # op_key None: the op group follows this network's own key (the authors'); an
            # unbatched op_key shares the group across the K networks (one switch branch)
            # a 5-D batch reaching DSA is video: voxels allow strategy 'none' only
            # (validate.data refuses other strategies on them before any work)
            return dsa(k, x, strategy=dsa_strategy, op_key=op_key,
                       modality="video" if x.ndim == 5 else None)
    loss = functools.partial(losses.cross_entropy, temperature=temperature)
    trainer = train_lib.make_trainer(model, _eval_tx(momentum, weight_decay), loss=loss,
                             batch_size=batch_size, augment=augment, last_batch="short",
                             net_loop=net_loop)

    @functools.partial(jax.jit, static_argnames=("per_net_data", "given_perms"))
    def _run(state, keys, op_keys, perms, images, labels, lr, start, stop,
             per_net_data=False, given_perms=False):
        n = images.shape[1] if per_net_data else images.shape[0]
        steps = trainer.num_steps(n)

        def body(e, st):
            shared = jax.random.split(op_keys[e], steps) if share_dsa_ops else None
            return trainer.keyed_epoch(st, keys[:, e], images, labels, lr,
                                       orders=perms[:, e] if given_perms else None,
                                       shared_keys=shared, per_net_data=per_net_data)[0]

        return jax.lax.fori_loop(start, stop, body, state)

    def run(state, keys, op_keys, images, labels, lr, start, n_epochs, per_net_data=False,
            perms=None):
        given = perms is not None
        pm = jnp.asarray(perms, jnp.int32) if given else jnp.zeros((), jnp.int32)
        return _run(state, keys, op_keys, pm, images, labels, jnp.float32(lr),
                    jnp.int32(start), jnp.int32(start + n_epochs),
                    per_net_data=per_net_data, given_perms=given)

    return EvalFns(init=jax.jit(trainer.init), run=run, reset=jax.jit(trainer.reset_opt),
                   correct=jax.jit(trainer.correct), trainer=trainer)


@functools.lru_cache(maxsize=16)
def make_eval_fns(model, *, num_train, epochs=None, batch_size=256, momentum=0.9,
                  weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                  temperature=None, share_dsa_ops=False):
    """(init_fn, train_epochs_fn, accuracy_fn) over bare (params, opt_state): a thin wrapper
    of ``make_eval_trainer`` for stateless models (the parity test and the benchmark).

    init_fn(keys, x0) -> (params, opt_state); train_epochs(params, opt_state, keys, op_keys,
    images, labels, lr, n_epochs, per_net_data=False, start=0, perms=None) -> (params,
    opt_state); train_epochs.reset_momentum(params) -> opt_state; accuracy_fn(params, x, y).
    keys: (K, E, 2) per network and pass; op_keys (E, 2); perms None or (K, E, N).
    `num_train` and `epochs` are accepted for older callers and unused.
    """
    del num_train, epochs
    fns = make_eval_trainer(model, batch_size=batch_size, momentum=momentum,
                            weight_decay=weight_decay, dsa_strategy=dsa_strategy,
                            temperature=temperature, share_dsa_ops=bool(share_dsa_ops))

    def _state(params, opt_state):
        k = jax.tree.leaves(params)[0].shape[0]
        return train_lib.TrainState(params=params, opt_state=opt_state, batch_stats={},
                            step=jnp.zeros((k,), jnp.int32))

    def init_all(keys, x0):
        st = fns.init(keys, x0)
        if jax.tree.leaves(st.batch_stats):
            raise ValueError("make_eval_fns carries bare params (stateless models); use "
                             "make_eval_trainer / evaluate_synthetic for BatchNorm models")
        return st.params, st.opt_state

    def train_epochs(params, opt_state, keys, op_keys, images, labels, lr, n_epochs,
                     per_net_data=False, start=0, perms=None):
        st = fns.run(_state(params, opt_state), keys, op_keys, images, labels, lr, start,
                     n_epochs, per_net_data=per_net_data, perms=perms)
        return st.params, st.opt_state

    def correct(params, x, y):
        return fns.correct(_state(params, None), x, y)

    train_epochs.reset_momentum = lambda params: fns.reset(_state(params, None)).opt_state
    return init_all, train_epochs, correct


def accuracy(correct_fn, state, images, labels, batch_size=1024):
    """Test accuracy of every network in the stacked `state` (TrainState or params)."""
    n = images.shape[0]
    total = 0
    for i in range(0, n, batch_size):
        total = total + sharding.to_host(correct_fn(state, images[i:i + batch_size],
                                                    labels[i:i + batch_size]))
    return total / n


def accuracy_of(model, variables, images, labels, batch_size=1000) -> float:
    """Test accuracy of ONE flax network given its variables (eval mode), by `accuracy`."""
    return float(accuracy(_correct_one(model), variables, images, labels, batch_size))


@functools.lru_cache(maxsize=8)
def _correct_one(model):
    return jax.jit(lambda v, x, y: (model.apply(v, x, train=False).argmax(-1) == y).sum())


def _schedule(run, reset, carry, *, lr, epochs, chunk_epochs=None, bar=None):
    """The authors' schedule (`authors_schedule`): run(carry, lr, start, n) passes at lr,
    then reset(carry) (a new optimizer) and the rest at lr * 0.1 (Python float, as the
    authors' `lr *= 0.1`)."""
    n1, n2 = authors_schedule(epochs)
    chunk = int(chunk_epochs or 100)
    for phase, (a, b, plr) in enumerate(((0, n1, float(lr)), (n1, n1 + n2, float(lr) * 0.1))):
        if phase == 1 and b > a:
            carry = reset(carry)  # new optimizer (utils.py:379)
        e = a
        while e < b:
            k = min(chunk, b - e)
            carry = run(carry, plr, e, k)
            e += k
            if bar is not None:
                bar.update(k)
    return carry


def train_schedule(train_epochs, params, opt_state, keys, op_keys, images, labels, *, lr,
                   epochs, per_net_data=False, perms=None, chunk_epochs=None, bar=None):
    """The authors' schedule from given (params, opt_state), `train_epochs` of
    `make_eval_fns`; keys (K, epochs + 1, 2); op_keys (epochs + 1, 2); perms None or
    (K, epochs + 1, N). The momentum is reset to zero at the drop."""
    def run(c, plr, start, n):
        return train_epochs(c[0], c[1], keys, op_keys, images, labels, jnp.float32(plr), n,
                            per_net_data=per_net_data, start=start, perms=perms)
    return _schedule(run, lambda c: (c[0], train_epochs.reset_momentum(c[0])),
                     (params, opt_state), lr=lr, epochs=epochs, chunk_epochs=chunk_epochs,
                     bar=bar)


def evaluate_synthetic(key, model, images, labels, test_images, test_labels, *, lr,
                       num_nets=5, epochs=1000, batch_size=256, momentum=0.9,
                       weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                       temperature=None, chunk_epochs=None, progress=True,
                       desc="evaluate", share_dsa_ops=False, mesh="auto",
                       net_loop="auto") -> EvalResult:
    """Train `num_nets` fresh networks together on (images, labels); final test accuracy.

    Args:
      key: PRNG key (network inits, minibatch order, augmentation).
      model: a flax Module (any registry model; BatchNorm statistics are carried in training
        and the running statistics used at test time).
      images: (N, H, W, C) training (synthetic) images -- or (N, T, H, W, C) video,
        (N, D, H, W, C) voxels, any (N, *grid, C) the model takes; labels int (N,) or soft
        (N, classes). Or (K, N, *grid, C) and (K, N[, classes]): one set per network (the
        random-real baseline draws a fresh subset for every network); told apart from a
        single set by the rank of ``test_images`` (M, *grid, C).
      lr: the learning rate (the learned syn_lr for TM sets).
      epochs: the authors' epoch_eval_train E: E + 1 passes, lr / 10 after pass E // 2 + 1
        with the momentum reset (module docstring).
      share_dsa_ops: one DSA op group per step for all K networks (faster; not the
        authors'), instead of one per network.
      mesh: the devices the K networks are split over (`jaxdd.sharding`): "auto" (default:
        every device), a `jax.sharding.Mesh`, or None (one device). K is padded to a
        multiple of the device count with networks that are trained and dropped; network
        k gets the same keys as on one device, so the accuracies are the same.
      net_loop: 'vmap' (the K networks batched), 'map' (one after the other in the compiled
        step) or 'auto': 'map' on one CPU device, where XLA's grouped convolution of vmapped
        networks is slow (`jaxdd.train` docstring), else 'vmap'.
    """
    t0 = time.time()
    images = jnp.asarray(images, jnp.float32)
    labels = jnp.asarray(labels)
    # one set per network: one axis more than the test examples (N, *grid, C), whatever
    # the grid's rank (images, video, voxels)
    test_rank = np.ndim(test_images)
    if images.ndim not in (test_rank, test_rank + 1):
        raise ValueError(f"training images {tuple(images.shape)} do not match the test images "
                         f"{tuple(np.shape(test_images))}: give (N, *grid, C) like the test set "
                         f"(or (K, N, *grid, C), one set per network)")
    per_net_data = images.ndim == test_rank + 1
    if per_net_data and images.shape[0] != num_nets:
        raise ValueError(f"per-network images have {images.shape[0]} sets for {num_nets} nets")
    n = images.shape[1] if per_net_data else images.shape[0]
    if isinstance(mesh, str):
        mesh = sharding.mesh_from_config(None)
    fns = make_eval_trainer(model, batch_size=batch_size, momentum=momentum,
                            weight_decay=weight_decay, dsa_strategy=dsa_strategy,
                            temperature=temperature, share_dsa_ops=bool(share_dsa_ops),
                            net_loop=train_lib.resolve_net_loop(net_loop, sharding.size(mesh)))
    total = sharding.pad_to_devices(num_nets, mesh)  # K padded to the device count
    pad = np.arange(total) % num_nets  # extra networks: copies of the first ones, dropped
    kinit, ktrain = jax.random.split(key)
    x0 = images[0, :1] if per_net_data else images[:1]
    init_keys = jax.random.split(kinit, num_nets)
    passes = int(epochs) + 1
    ktrain, kop = jax.random.split(ktrain)
    keys = jax.random.split(ktrain, num_nets * passes).reshape(num_nets, passes, -1)
    op_keys = jax.random.split(kop, passes)
    if total != num_nets:
        init_keys, keys = init_keys[pad], keys[pad]
        if per_net_data:
            images, labels = images[pad], labels[pad]
    if sharding.size(mesh) > 1:  # the network axis over the devices
        nets = sharding.leading(mesh, (total,))
        rep = sharding.replicated(mesh)
        init_keys, keys = sharding.put(init_keys, nets), sharding.put(keys, nets)
        op_keys = sharding.put(op_keys, rep)
        on = nets if per_net_data else rep
        images, labels = sharding.put(images, on), sharding.put(labels, on)
        x0 = sharding.put(x0, rep)
    state = fns.init(init_keys, x0)
    bar = tqdm(total=passes, desc=desc, disable=not progress, leave=False)
    state = _schedule(
        lambda st, plr, start, k: fns.run(st, keys, op_keys, images, labels, plr, start, k,
                                          per_net_data=per_net_data),
        fns.reset, state, lr=lr, epochs=epochs, chunk_epochs=chunk_epochs, bar=bar)
    bar.close()
    if sharding.size(mesh) > 1:
        rep = sharding.replicated(mesh)
        test_images = sharding.put(np.asarray(test_images, np.float32), rep)
        test_labels = sharding.put(np.asarray(test_labels), rep)
        state = jax.tree.map(lambda a: sharding.put(a, rep) if jax.process_count() > 1 else a,
                             state)
    accs = accuracy(fns.correct, state, jnp.asarray(test_images), jnp.asarray(test_labels))
    accs = accs[:num_nets]
    return EvalResult(accs=accs, mean=float(accs.mean()), std=float(accs.std()),
                      seconds=time.time() - t0, epochs=int(epochs), num_train=n,
                      passes=passes)


def evaluate_random_real(key, model, train, test, ipc, *, lr=0.01, num_nets=5,
                         **kwargs) -> EvalResult:
    """The 'random real' baseline: `ipc` random real images per class, same protocol.

    Every network gets its own random subset, so the std covers the choice of images too.
    """
    from jaxdd.data import random_real  # local: data is optional for pure-array users
    ksel, kev = jax.random.split(key)
    sets = [random_real(k, train, ipc) for k in jax.random.split(ksel, num_nets)]
    x = np.stack([s[0] for s in sets])
    y = np.stack([s[1] for s in sets])
    return evaluate_synthetic(kev, model, x, y, test.images, test.labels, lr=lr,
                              num_nets=num_nets, **kwargs)
