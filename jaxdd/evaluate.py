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
  lets ``lax.switch`` run one branch instead of all six -- see the README for the cost);
* the test accuracy after the last pass (no augmentation; instance norm has no eval mode).

Reported: the FINAL test accuracy, mean +- std (population std, as np.std) over the K
networks. The authors' papers report the best mean over the evaluation points of a
distillation run (selected on the test set); jaxdd.distill records that too, labelled.

The K networks are trained together: one `jax.vmap` over networks (each with its own
initialization, minibatch order and augmentation randomness) inside one jitted loop over
passes (dynamic bounds: one compile for every chunk), called in chunks so a progress bar can
move between them.

Hard labels (int (N,)) use cross-entropy; soft labels (float (N, classes)) use the
cross-entropy to the target distribution (= KL up to a constant), with an optional
temperature T on the student logits (loss scaled by T^2 as in knowledge distillation).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdd.augment import dsa


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


def cross_entropy(logits, labels, temperature=None):
    """Mean cross-entropy for int labels (N,) or soft target probabilities (N, classes)."""
    if labels.ndim == logits.ndim - 1:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    t = 1.0 if temperature is None else temperature
    logp = jax.nn.log_softmax(logits / t)
    return -(labels * logp).sum(-1).mean() * (t * t)


def masked_loss(logits, labels, mask, temperature=None):
    if labels.ndim == logits.ndim - 1:
        per = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    else:
        t = 1.0 if temperature is None else temperature
        per = -(labels * jax.nn.log_softmax(logits / t)).sum(-1) * (t * t)
    return (per * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def authors_schedule(epochs: int) -> tuple[int, int]:
    """(passes at lr, passes at lr / 10) of utils.evaluate_synset for epoch_eval_train = E.

    range(E + 1) passes; the drop happens after pass E // 2 + 1 (utils.py:358, 370, 377).
    E = 1000 -> (502, 499); E = 4 -> (4, 1); E = 1 -> (2, 0).
    """
    e = int(epochs)
    first = min(e // 2 + 2, e + 1)
    return first, e + 1 - first


@functools.lru_cache(maxsize=16)
def make_eval_fns(model, *, num_train, epochs=None, batch_size=256, momentum=0.9,
                  weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                  temperature=None, share_dsa_ops=False):
    """Build (init_fn, train_epochs_fn, accuracy_fn) for K networks trained together.

    The optimizer has base lr 1 and no schedule: the (traced) learning rate multiplies the
    updates -- exact for SGD with momentum (the trace accumulates raw gradients) -- so a new
    learned lr or the lr drop does not recompile; the drop and the momentum reset are done
    by the caller (`evaluate_synthetic`), as the authors re-create their optimizer.
    `epochs` is accepted for older callers and unused.
    """
    del epochs
    batch_size = min(batch_size, num_train)
    steps_per_epoch = math.ceil(num_train / batch_size)
    pad = steps_per_epoch * batch_size - num_train
    tx = optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(1.0, momentum=momentum))
    use_dsa = bool(dsa_strategy) and dsa_strategy != "none"

    def init_one(key, x0):
        variables = model.init(key, x0)
        if set(variables) - {"params"}:
            raise ValueError("evaluate.py trains stateless models (norm='instance' or 'none'); "
                             f"got collections {sorted(variables)}")
        params = variables["params"]
        return params, tx.init(params)

    def loss_fn(params, x, y, m):
        return masked_loss(model.apply({"params": params}, x, train=True), y, m, temperature)

    def epoch_one(params, opt_state, perm, key, op_key, images, labels, lr):
        """One pass in the order `perm` (N,): consecutive batches, the last one partial."""
        idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)])
        mask = jnp.concatenate([jnp.ones((num_train,), jnp.float32),
                                jnp.zeros((pad,), jnp.float32)])
        idx = idx.reshape(steps_per_epoch, batch_size)
        mask = mask.reshape(steps_per_epoch, batch_size)

        def step(c, inp):
            p, s = c
            bi, bm, k = inp[:3]
            ko = inp[3] if share_dsa_ops else None
            x = images[bi]
            if use_dsa:
                # ko None: the op group follows this network's own key (the authors'); an
                # unbatched ko shares the group across the K networks (one switch branch)
                x = dsa(k, x, strategy=dsa_strategy, op_key=ko)
            g = jax.grad(loss_fn)(p, x, labels[bi], bm)
            upd, s = tx.update(g, s, p)
            upd = jax.tree.map(lambda u: lr * u, upd)
            return (optax.apply_updates(p, upd), s), None

        xs = (idx, mask, jax.random.split(key, steps_per_epoch))
        if share_dsa_ops:
            xs = xs + (jax.random.split(op_key, steps_per_epoch),)
        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), xs)
        return params, opt_state

    @functools.partial(jax.jit, static_argnames=("per_net_data", "given_perms"))
    def _train(params, opt_state, keys, op_keys, perms, images, labels, lr, start, stop,
               per_net_data=False, given_perms=False):
        def one_net(p, s, ks, pm, x, y):
            def body(e, c):
                kperm, kaug = jax.random.split(ks[e])
                perm = pm[e] if given_perms else jax.random.permutation(kperm, num_train)
                return epoch_one(c[0], c[1], perm, kaug, op_keys[e], x, y, lr)
            return jax.lax.fori_loop(start, stop, body, (p, s))
        data_axis = 0 if per_net_data else None
        return jax.vmap(one_net, in_axes=(0, 0, 0, 0 if given_perms else None, data_axis,
                                          data_axis))(params, opt_state, keys, perms, images,
                                                      labels)

    def train_epochs(params, opt_state, keys, op_keys, images, labels, lr, n_epochs,
                     per_net_data=False, start=0, perms=None):
        """Passes start .. start + n_epochs - 1 for all K networks at learning rate `lr`.

        keys: (K, E, 2) per network and pass (pass e uses keys[:, e]); op_keys: (E, 2), the
        shared DSA op keys (used only with share_dsa_ops); perms: None, or (K, E, N) int
        minibatch orders (pass e visits perms[k, e] in consecutive batches) instead of the
        orders drawn from `keys`. per_net_data: images/labels carry a leading K axis.
        """
        given = perms is not None
        pm = jnp.asarray(perms, jnp.int32) if given else jnp.zeros((), jnp.int32)
        return _train(params, opt_state, keys, op_keys, pm, images, labels, lr,
                      jnp.int32(start), jnp.int32(start + n_epochs),
                      per_net_data=per_net_data, given_perms=given)

    @jax.jit
    def correct(params, x, y):
        logits = jax.vmap(lambda p: model.apply({"params": p}, x))(params)
        return (logits.argmax(-1) == y[None]).sum(-1)

    init_all = jax.jit(jax.vmap(init_one, in_axes=(0, None)))  # compiled once per cache entry
    train_epochs.reset_momentum = jax.jit(jax.vmap(tx.init))
    return init_all, train_epochs, correct


def accuracy(correct_fn, params, images, labels, batch_size=1024):
    """Test accuracy of every network in the stacked `params`, batched over the test set."""
    n = images.shape[0]
    total = 0
    for i in range(0, n, batch_size):
        total = total + np.asarray(correct_fn(params, images[i:i + batch_size],
                                              labels[i:i + batch_size]))
    return total / n


def train_schedule(train_epochs, params, opt_state, keys, op_keys, images, labels, *, lr,
                   epochs, per_net_data=False, perms=None, chunk_epochs=None, bar=None):
    """The authors' schedule (`authors_schedule`) from given (params, opt_state).

    `train_epochs` from `make_eval_fns`; keys (K, epochs + 1, 2); op_keys (epochs + 1, 2);
    perms None or (K, epochs + 1, N). The lr drop is computed in Python floats (lr * 0.1,
    as the authors' `lr *= 0.1`) and the momentum is reset to zero at the drop.
    """
    n1, n2 = authors_schedule(epochs)
    chunk = int(chunk_epochs or 100)
    for phase, (a, b, plr) in enumerate(((0, n1, float(lr)), (n1, n1 + n2, float(lr) * 0.1))):
        if phase == 1 and b > a:
            opt_state = train_epochs.reset_momentum(params)  # new optimizer (utils.py:379)
        e = a
        while e < b:
            k = min(chunk, b - e)
            params, opt_state = train_epochs(params, opt_state, keys, op_keys, images, labels,
                                             jnp.float32(plr), k, per_net_data=per_net_data,
                                             start=e, perms=perms)
            e += k
            if bar is not None:
                bar.update(k)
    return params, opt_state


def evaluate_synthetic(key, model, images, labels, test_images, test_labels, *, lr,
                       num_nets=5, epochs=1000, batch_size=256, momentum=0.9,
                       weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                       temperature=None, chunk_epochs=None, progress=True,
                       desc="evaluate", share_dsa_ops=False) -> EvalResult:
    """Train `num_nets` fresh networks together on (images, labels); final test accuracy.

    Args:
      key: PRNG key (network inits, minibatch order, augmentation).
      model: a flax Module (stateless: instance norm or no norm).
      images: (N, H, W, C) training (synthetic) images; labels int (N,) or soft (N, classes).
        Or (K, N, H, W, C) and (K, N[, classes]): one set per network (the random-real
        baseline draws a fresh subset for every network).
      lr: the learning rate (the learned syn_lr for TM sets).
      epochs: the authors' epoch_eval_train E: E + 1 passes, lr / 10 after pass E // 2 + 1
        with the momentum reset (module docstring).
      share_dsa_ops: one DSA op group per step for all K networks (faster; not the
        authors'), instead of one per network.
    """
    t0 = time.time()
    images = jnp.asarray(images, jnp.float32)
    labels = jnp.asarray(labels)
    per_net_data = images.ndim == 5
    if per_net_data and images.shape[0] != num_nets:
        raise ValueError(f"per-network images have {images.shape[0]} sets for {num_nets} nets")
    n = images.shape[1] if per_net_data else images.shape[0]
    init_all, train_epochs, correct = make_eval_fns(
        model, num_train=n, batch_size=batch_size, momentum=momentum,
        weight_decay=weight_decay, dsa_strategy=dsa_strategy, temperature=temperature,
        share_dsa_ops=bool(share_dsa_ops))
    kinit, ktrain = jax.random.split(key)
    x0 = images[0, :1] if per_net_data else images[:1]
    params, opt_state = init_all(jax.random.split(kinit, num_nets), x0)
    passes = int(epochs) + 1
    ktrain, kop = jax.random.split(ktrain)
    keys = jax.random.split(ktrain, num_nets * passes).reshape(num_nets, passes, -1)
    op_keys = jax.random.split(kop, passes)
    bar = tqdm(total=passes, desc=desc, disable=not progress, leave=False)
    params, _ = train_schedule(train_epochs, params, opt_state, keys, op_keys, images, labels,
                               lr=lr, epochs=epochs, per_net_data=per_net_data,
                               chunk_epochs=chunk_epochs, bar=bar)
    bar.close()
    accs = accuracy(correct, params, jnp.asarray(test_images), jnp.asarray(test_labels))
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
