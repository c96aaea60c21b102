"""The evaluation protocol: train fresh networks on a (decoded) synthetic set, test them.

Protocol (MTT and every TM paper after it, see REFERENCE.md): a freshly initialized network,
SGD(lr, momentum 0.9) with weight decay 5e-4 (PyTorch-style: added to the gradient before
momentum), `epochs` epochs (1000), lr x 0.1 at epochs // 2, batch 256, DSA on every batch;
K networks; the reported number is the FINAL test accuracy, mean +- std over the K networks.

The K networks are trained together: one `jax.vmap` over networks (each with its own
initialization, minibatch order and augmentation randomness) inside one jitted `lax.scan`
over epochs, called in chunks so a progress bar can move between them.

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
    epochs: int
    num_train: int

    def __str__(self):
        return f"{100 * self.mean:.2f} +- {100 * self.std:.2f} % (K={len(self.accs)}, {self.seconds:.1f} s)"

    def to_dict(self):
        return {"accs": [float(a) for a in self.accs], "mean": self.mean, "std": self.std,
                "seconds": self.seconds, "epochs": self.epochs, "num_train": self.num_train}


def cross_entropy(logits, labels, temperature=None):
    """Mean cross-entropy for int labels (N,) or soft target probabilities (N, classes)."""
    if labels.ndim == logits.ndim - 1:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    t = 1.0 if temperature is None else temperature
    logp = jax.nn.log_softmax(logits / t)
    return -(labels * logp).sum(-1).mean() * (t * t)


def _epoch_batches(key, n, batch_size):
    """Indices (steps, batch) of one shuffled epoch and a validity mask (partial last batch)."""
    steps = math.ceil(n / batch_size)
    perm = jax.random.permutation(key, n)
    pad = steps * batch_size - n
    idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)])
    mask = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((pad,), jnp.float32)])
    return idx.reshape(steps, batch_size), mask.reshape(steps, batch_size)


def masked_loss(logits, labels, mask, temperature=None):
    if labels.ndim == logits.ndim - 1:
        per = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    else:
        t = 1.0 if temperature is None else temperature
        per = -(labels * jax.nn.log_softmax(logits / t)).sum(-1) * (t * t)
    return (per * mask).sum() / jnp.maximum(mask.sum(), 1.0)


@functools.lru_cache(maxsize=16)
def make_eval_fns(model, *, num_train, epochs, batch_size=256, momentum=0.9,
                  weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                  temperature=None):
    """Build (init_fn, train_epochs_fn, accuracy_fn) for K networks trained together."""
    batch_size = min(batch_size, num_train)
    steps_per_epoch = math.ceil(num_train / batch_size)
    # Base lr 1: the (traced) learning rate multiplies the updates, which is exact for SGD
    # with momentum (optax's trace accumulates raw gradients), so a new learned lr does not
    # recompile.
    schedule = optax.piecewise_constant_schedule(
        1.0, {int(epochs // 2 * steps_per_epoch): 0.1})
    tx = optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(schedule, momentum=momentum))

    def init_one(key, x0):
        variables = model.init(key, x0)
        if set(variables) - {"params"}:
            raise ValueError("evaluate.py trains stateless models (norm='instance' or 'none'); "
                             f"got collections {sorted(variables)}")
        params = variables["params"]
        return params, tx.init(params)

    def loss_fn(params, x, y, m):
        return masked_loss(model.apply({"params": params}, x, train=True), y, m, temperature)

    def epoch_one(carry, key, op_key, images, labels, lr):
        params, opt_state = carry
        kperm, kaug = jax.random.split(key)
        idx, mask = _epoch_batches(kperm, num_train, batch_size)

        def step(c, inp):
            p, s = c
            bi, bm, k, ko = inp
            x = images[bi]
            if dsa_strategy and dsa_strategy != "none":
                # op group shared by the K networks at this step (unbatched: one branch
                # runs); per-sample parameters are each network's own
                x = dsa(k, x, strategy=dsa_strategy, op_key=ko)
            g = jax.grad(loss_fn)(p, x, labels[bi], bm)
            upd, s = tx.update(g, s, p)
            upd = jax.tree.map(lambda u: lr * u, upd)
            return (optax.apply_updates(p, upd), s), None

        keys = jax.random.split(kaug, steps_per_epoch)
        op_keys = jax.random.split(op_key, steps_per_epoch)
        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state),
                                              (idx, mask, keys, op_keys))
        return params, opt_state

    @functools.partial(jax.jit, static_argnames=("n_epochs", "per_net_data"))
    def train_epochs(params, opt_state, keys, op_keys, images, labels, lr, n_epochs,
                     per_net_data=False):
        """keys: (K, n_epochs, 2) per network; op_keys: (n_epochs, 2) shared (the DSA op
        group of each step). Runs n_epochs epochs for all K networks.
        per_net_data: images/labels carry a leading K axis (a different set per network)."""
        def one_net(p, s, ks, x, y):
            def body(c, k):
                k, ko = k
                return epoch_one(c, k, ko, x, y, lr), None
            (p, s), _ = jax.lax.scan(body, (p, s), (ks, op_keys))
            return p, s
        data_axis = 0 if per_net_data else None
        return jax.vmap(one_net, in_axes=(0, 0, 0, data_axis, data_axis))(
            params, opt_state, keys, images, labels)

    @jax.jit
    def correct(params, x, y):
        logits = jax.vmap(lambda p: model.apply({"params": p}, x))(params)
        return (logits.argmax(-1) == y[None]).sum(-1)

    init_all = jax.jit(jax.vmap(init_one, in_axes=(0, None)))  # compiled once per cache entry

    return init_all, train_epochs, correct


def accuracy(correct_fn, params, images, labels, batch_size=1024):
    """Test accuracy of every network in the stacked `params`, batched over the test set."""
    n = images.shape[0]
    total = 0
    for i in range(0, n, batch_size):
        total = total + np.asarray(correct_fn(params, images[i:i + batch_size],
                                              labels[i:i + batch_size]))
    return total / n


def evaluate_synthetic(key, model, images, labels, test_images, test_labels, *, lr,
                       num_nets=5, epochs=1000, batch_size=256, momentum=0.9,
                       weight_decay=5e-4, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                       temperature=None, chunk_epochs=None, progress=True,
                       desc="evaluate") -> EvalResult:
    """Train `num_nets` fresh networks together on (images, labels); final test accuracy.

    Args:
      key: PRNG key (network inits, minibatch order, augmentation).
      model: a flax Module (stateless: instance norm or no norm).
      images: (N, H, W, C) training (synthetic) images; labels int (N,) or soft (N, classes).
        With `per_net_data=True`: (K, N, H, W, C) and (K, N[, classes]), one set per network
        (the random-real baseline draws a fresh subset for every network).
      lr: the learning rate (the learned syn_lr for TM sets).
    """
    t0 = time.time()
    images = jnp.asarray(images, jnp.float32)
    labels = jnp.asarray(labels)
    per_net_data = images.ndim == 5
    if per_net_data and images.shape[0] != num_nets:
        raise ValueError(f"per-network images have {images.shape[0]} sets for {num_nets} nets")
    n = images.shape[1] if per_net_data else images.shape[0]
    init_all, train_epochs, correct = make_eval_fns(
        model, num_train=n, epochs=epochs, batch_size=batch_size, momentum=momentum,
        weight_decay=weight_decay, dsa_strategy=dsa_strategy, temperature=temperature)
    kinit, ktrain = jax.random.split(key)
    x0 = images[0, :1] if per_net_data else images[:1]
    params, opt_state = init_all(jax.random.split(kinit, num_nets), x0)
    # a divisor of `epochs`, so every chunk has the same static length (one compile)
    chunk = chunk_epochs or max(d for d in range(1, min(epochs, 100) + 1) if epochs % d == 0)
    ktrain, kop = jax.random.split(ktrain)
    keys = jax.random.split(ktrain, num_nets * epochs).reshape(num_nets, epochs, -1)
    op_keys = jax.random.split(kop, epochs)
    bar = tqdm(total=epochs, desc=desc, disable=not progress, leave=False)
    done = 0
    while done < epochs:
        k = min(chunk, epochs - done)
        params, opt_state = train_epochs(params, opt_state, keys[:, done:done + k],
                                         op_keys[done:done + k], images,
                                         labels, jnp.float32(lr), n_epochs=k,
                                         per_net_data=per_net_data)
        done += k
        bar.update(k)
    bar.close()
    accs = accuracy(correct, params, jnp.asarray(test_images), jnp.asarray(test_labels))
    return EvalResult(accs=accs, mean=float(accs.mean()), std=float(accs.std()),
                      seconds=time.time() - t0, epochs=epochs, num_train=n)


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
