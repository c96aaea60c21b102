"""The network-training core: K networks trained at once (vmap), BatchNorm state carried.

Every place that trains a network on a dataset -- expert trajectories (experts.py), the
evaluation protocol (evaluate.py), DC's inner loop (objective/dc.py), CFM's teacher and its
soft-label students (cfm.py) -- is this one epoch function with different arguments:

    trainer = make_trainer(model, tx, loss=losses.cross_entropy, batch_size=256,
                           augment=None, last_batch="short")
    state = trainer.init(keys (K,), x0)                         # TrainState, leaves (K, ...)
    state, metrics = trainer.epoch(state, orders (K, N), step_keys (K, S), images, labels,
                                   lr=None)       # {'loss', 'acc'}: (K, S) per step
    state, metrics = trainer.keyed_epoch(state, keys (K,), images, labels)  # orders and
                                                  # step keys drawn from one key per network
    correct = trainer.correct(state, x, y)                      # (K,) eval-mode hits

* Dropout (ConvNet3D): in train mode each network's step gets the dropout rng
  ``fold_in(step_key, _DROPOUT_SALT)`` (so ``epoch`` needs real ``step_keys`` for such a
  model, also without augmentation); eval mode (``correct`` / ``logits``) has no dropout.
* ``TrainState`` is flax's TrainState without the functions: ``params``, ``opt_state``,
  ``batch_stats`` (the BatchNorm running statistics; ``{}`` for a stateless model) and
  ``step``. In training the model runs in train mode (batch statistics, ``batch_stats``
  updated); ``correct`` / ``logits`` run it in eval mode (the running statistics).
* ``model``: a flax Module (``model.apply(variables, x, train=...)``) or a plain stateless
  apply function ``(params, x) -> logits``.
* ``tx``: an optax GradientTransformation, or a factory ``lr -> GradientTransformation``
  whose state does not depend on lr: the epoch's ``lr`` argument (traced) is handed to it
  at every step, so a learned learning rate or an lr drop does not recompile.
* ``loss(logits, targets, weights) -> scalar`` (``jaxdd.losses``); ``weights`` is None or
  the (B,) 0/1 mask of a padded minibatch. ``target_fn(x_aug, y, aux) -> targets`` (optional)
  turns the batch's labels into targets after augmentation (CFM: the teacher's soft labels).
* ``augment(key, x) -> x`` (e.g. DSA), one key per network and minibatch, so each network
  draws its own augmentation (the authors'); with ``shared_keys`` it is called as
  ``augment(key, x, shared_key)`` with one unbatched key per step for all K networks.
  ``augment_loop='map'`` runs it network by network (``lax.map``: a ``lax.switch`` inside
  stays one branch; cheaper on CPU), ``'vmap'`` batched (all branches computed).
* ``net_loop``: how the K networks' forward/backward and update run in one compiled step:
  ``'vmap'`` (batched: the K convolutions become one grouped convolution, which accelerators
  run well) or ``'map'`` (``lax.map``, one network after the other). XLA's CPU grouped
  convolution is slow for wide kernels: AlexNet (5x5, 128-192 channels), 5 networks on 10
  images, took 33 s a step vmapped and 1.0 s mapped (2026-12-01, 2 cores; ConvNetD2W32 with
  256 images: 2.2 vs 1.8 s). ``'auto'`` picks 'map' on a single CPU device; with the K axis
  split over several devices use 'vmap' (a map would walk the split axis).
* The explicit-order seam: ``orders`` (K, N) int is the order in which each network visits
  the N examples (callers draw it from their keys, or the parity tests pass the authors'
  DataLoader order); it is cut into consecutive minibatches of ``B = min(batch_size, N)``.
  ``last_batch`` says what happens to the N mod B leftover examples:
    'short' (PyTorch DataLoader drop_last=False): one more step on them, the loss being
      the mean over their own examples. Stateless models pad the batch to B and mask the
      padding out of the mean (one scan, one compiled step); models with BatchNorm run the
      leftover as its own step so that padding never enters the batch statistics.
    'drop' (drop_last=True): the leftover examples are skipped this epoch.
    'wrap': the last batch is filled up with the first examples of the order.
  ``step_keys`` (K, S) holds one augmentation key per network and step, S =
  ``trainer.num_steps(N)``.
* One epoch is one ``lax.scan`` over minibatches whose step runs forward/backward and the
  optimizer update ``vmap``-ed over the K networks; ``images``/``labels`` are shared by
  the K networks, or carry a leading K axis with ``per_net_data=True``. Nothing here is
  jitted: callers jit their loop once per shape (an epoch, a fori_loop over passes, ...).

``authors_schedule`` is the evaluation schedule of the authors' ``evaluate_synset`` (used
by evaluate.py), kept here so the core owns the whole recipe.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxdd import losses

__all__ = ["TrainState", "Trainer", "make_trainer", "make_apply", "authors_schedule",
           "split_variables", "random_orders", "resolve_net_loop"]


class TrainState(struct.PyTreeNode):
    """params, opt_state, batch_stats ({} when stateless), step (int32)."""
    params: Any
    opt_state: Any
    batch_stats: Any
    step: Any

    @property
    def variables(self) -> dict:
        """Flax variables {'params'[, 'batch_stats']} of this state."""
        return ({"params": self.params, "batch_stats": self.batch_stats} if self.batch_stats
                else {"params": self.params})


def split_variables(variables, what="the model") -> tuple:
    """{'params', 'batch_stats'?} -> (params, batch_stats or {}); other collections raise."""
    extra = sorted(set(variables) - {"params", "batch_stats"})
    if extra:
        raise ValueError(f"{what} has variable collections {extra}; the training core carries "
                         "'params' and 'batch_stats' (BatchNorm) only")
    return variables["params"], variables.get("batch_stats", {})


def make_apply(model) -> Callable:
    """``apply(params, batch_stats, x, train, key=None) -> (logits, batch_stats)``.

    model: a flax Module (called with ``train=``; BatchNorm statistics are used and
    updated in train mode, the running ones in eval mode), or ``(params, x) -> logits``.
    ``key``: the 'dropout' rng of a train-mode call (models with dropout, e.g. ConvNet3D;
    ignored otherwise).
    """
    if isinstance(model, nn.Module):
        def apply(params, batch_stats, x, train, key=None):
            kw = {"rngs": {"dropout": key}} if (train and key is not None) else {}
            if not batch_stats:
                return model.apply({"params": params}, x, train=train, **kw), batch_stats
            v = {"params": params, "batch_stats": batch_stats}
            if train:
                logits, upd = model.apply(v, x, train=True, mutable=["batch_stats"], **kw)
                return logits, upd["batch_stats"]
            return model.apply(v, x, train=False), batch_stats
        return apply
    if callable(model):
        return lambda params, batch_stats, x, train, key=None: (model(params, x), batch_stats)
    raise TypeError(f"model must be a flax Module or an apply function, got {type(model)}")


def tx_at(tx, lr=None) -> optax.GradientTransformation:
    """The optimizer at learning rate ``lr``: ``tx`` itself, or ``tx(lr)`` for a factory."""
    if isinstance(tx, optax.GradientTransformation):
        return tx
    return tx(1.0 if lr is None else lr)


def authors_schedule(epochs: int) -> tuple[int, int]:
    """(passes at lr, passes at lr / 10) of the authors' utils.evaluate_synset for E epochs.

    range(E + 1) passes; the lr drops x0.1 (and the optimizer, i.e. the momentum, is
    re-created) after pass E // 2 + 1 (MTT utils.py:358, 370, 377).
    E = 1000 -> (502, 499); E = 4 -> (4, 1); E = 1 -> (2, 0).
    """
    e = int(epochs)
    first = min(e // 2 + 2, e + 1)
    return first, e + 1 - first


def random_orders(keys, n: int):
    """(K, N) orders: ``permutation(keys[k], n)`` per network."""
    return jax.vmap(lambda k: jax.random.permutation(k, n))(keys)


_LAST = ("short", "drop", "wrap")
_DROPOUT_SALT = 0x64726F70  # fold_in(step key, this): a network's dropout key of a step


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """See the module docstring; build with :func:`make_trainer`."""
    model: Any
    apply: Callable
    tx: Any
    loss: Callable
    batch_size: int
    augment: Optional[Callable]
    last_batch: str
    augment_loop: str
    target_fn: Optional[Callable]
    net_loop: str = "vmap"
    dropout: bool = False

    def _over_nets(self, fn, *args):
        """fn applied to each network's slice of args (leading K axis): vmap, or lax.map
        (one network after the other inside the compiled step) with net_loop='map'."""
        if self.net_loop == "map":
            return jax.lax.map(lambda a: fn(*a), args)
        return jax.vmap(fn)(*args)

    # ------------------------------------------------------------------ state
    def init_one(self, key, x0, lr=None) -> TrainState:
        """A fresh network (not batched): ``model.init(key, x0)``."""
        params, bs = split_variables(self.model.init(key, x0), type(self.model).__name__)
        return self.create(params, bs, lr)

    def init(self, keys, x0, lr=None) -> TrainState:
        """K fresh networks (leaves (K, ...)), one per key."""
        return jax.vmap(lambda k: self.init_one(k, x0, lr))(keys)

    def create(self, params, batch_stats=None, lr=None) -> TrainState:
        """A state from given parameters (not batched): fresh optimizer, step 0."""
        return TrainState(params=params, opt_state=tx_at(self.tx, lr).init(params),
                          batch_stats={} if batch_stats is None else batch_stats,
                          step=jnp.zeros((), jnp.int32))

    def reset_opt(self, state: TrainState, lr=None) -> TrainState:
        """A fresh optimizer state (momentum 0, count 0) for K stacked networks."""
        return state.replace(opt_state=jax.vmap(tx_at(self.tx, lr).init)(state.params))

    # ------------------------------------------------------------------ minibatches
    def batch(self, n: int) -> int:
        return min(int(self.batch_size), int(n))

    def num_steps(self, n: int) -> int:
        """Optimizer steps per epoch on n examples."""
        b = self.batch(n)
        return n // b if self.last_batch == "drop" else -(-n // b)

    # ------------------------------------------------------------------ the step
    def _step(self, state, idx, w, keys, shared, images, labels, lr, aux, per_net_data):
        """One optimizer step of K networks on the minibatches idx (K, B)."""
        if per_net_data:
            take = jax.vmap(lambda a, i: a[i])
            x, y = take(images, idx), take(labels, idx)
        else:
            x, y = images[idx], labels[idx]
        if self.augment is not None:
            if shared is None:
                aug = self.augment
            else:
                aug = lambda k, xb: self.augment(k, xb, shared)  # noqa: E731
            if self.augment_loop == "map":
                x = jax.lax.map(lambda a: aug(*a), (keys, x))
            else:
                x = jax.vmap(aug)(keys, x)

        dkeys = None
        if self.dropout:  # one dropout key per network, apart from its augmentation key
            dkeys = jax.vmap(lambda kk: jax.random.fold_in(kk, _DROPOUT_SALT))(keys)

        def one(st, xb, yb, dk):
            tb = yb if self.target_fn is None else self.target_fn(xb, yb, aux)

            def loss_fn(p):
                logits, bs = self.apply(p, st.batch_stats, xb, True, dk)
                return self.loss(logits, tb, w), (bs, logits)

            (loss, (bs, logits)), g = jax.value_and_grad(loss_fn, has_aux=True)(st.params)
            upd, opt = tx_at(self.tx, lr).update(g, st.opt_state, st.params)
            hit = logits.argmax(-1) == (tb if tb.ndim == 1 else tb.argmax(-1))
            acc = losses.weighted_mean(hit.astype(jnp.float32), w)
            return st.replace(params=optax.apply_updates(st.params, upd), opt_state=opt,
                              batch_stats=bs, step=st.step + 1), {"loss": loss, "acc": acc}

        return self._over_nets(one, state, x, y, dkeys)

    # ------------------------------------------------------------------ the epoch
    def epoch(self, state: TrainState, orders, step_keys, images, labels, lr=None, *,
              shared_keys=None, aux=None, per_net_data=False):
        """One epoch of K networks -> (state, {'loss', 'acc'} (K, S) per step); module doc.

        'acc' is the training accuracy of each minibatch (argmax of soft targets).

        orders (K, N) int; step_keys (K, S, ...) (ignored, may be None, without augmentation); shared_keys None or (S, ...); lr: traced scalar for a tx
        factory; aux: passed to target_fn.
        """
        k, n = orders.shape
        b = self.batch(n)
        nfull, rem = divmod(n, b)
        stateful = bool(jax.tree.leaves(state.batch_stats))
        mask = None
        tail = None
        if self.last_batch == "short" and rem and not stateful:
            pad = b - rem
            idx = jnp.concatenate([orders, jnp.zeros((k, pad), orders.dtype)], 1)
            idx = idx.reshape(k, nfull + 1, b)
            mask = (jnp.arange((nfull + 1) * b) < n).astype(jnp.float32).reshape(-1, b)
        elif self.last_batch == "wrap" and rem:
            idx = jnp.concatenate([orders, orders[:, :b - rem]], 1).reshape(k, nfull + 1, b)
        else:
            idx = orders[:, :nfull * b].reshape(k, nfull, b)
            if self.last_batch == "short" and rem:
                tail = orders[:, nfull * b:]
        steps = idx.shape[1]

        def body(st, inp):
            ib, wb, kb, sb = inp
            return self._step(st, ib, wb, kb, sb, images, labels, lr, aux, per_net_data)

        if step_keys is None and self.dropout:
            raise ValueError(f"{type(self.model).__name__} applies dropout in training: pass "
                             f"step_keys (one key per network and step; its dropout keys "
                             f"are folded from them) or use keyed_epoch")
        if step_keys is None:  # no augmentation: placeholder keys
            step_keys = jnp.zeros((k, steps + (tail is not None)), jnp.uint32)
        xs = (jnp.moveaxis(idx, 1, 0), mask, jnp.moveaxis(step_keys[:, :steps], 1, 0),
              None if shared_keys is None else shared_keys[:steps])
        state, met = jax.lax.scan(body, state, xs)                   # (steps, K)
        if tail is not None:
            state, mt = self._step(state, tail, None, step_keys[:, steps],
                                   None if shared_keys is None else shared_keys[steps],
                                   images, labels, lr, aux, per_net_data)
            met = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]], 0), met, mt)
        return state, jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1), met)

    def keyed_epoch(self, state: TrainState, keys, images, labels, lr=None, *, aux=None,
                    orders=None, shared_keys=None, per_net_data=False):
        """``epoch`` with the randomness drawn from ONE key per network (keys (K,)): the
        convention of evaluate.py and CFM's teacher and students. (k_perm, k_aug) =
        split(key); the order is permutation(k_perm, N) unless ``orders`` (K, N) is given,
        step s is augmented with split(k_aug, S)[s]. shared_keys / per_net_data: as in
        ``epoch``."""
        n = images.shape[1] if per_net_data else images.shape[0]
        steps = self.num_steps(n)
        kperm, kaug = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
        step_keys = jax.vmap(lambda k: jax.random.split(k, steps))(kaug)
        if orders is None:
            orders = random_orders(kperm, n)
        return self.epoch(state, orders, step_keys, images, labels, lr, aux=aux,
                          shared_keys=shared_keys, per_net_data=per_net_data)

    # ------------------------------------------------------------------ eval mode
    def logits(self, state: TrainState, x):
        """(K, n, classes) eval-mode logits of the K networks on one batch x."""
        return self._over_nets(lambda p, bs: self.apply(p, bs, x, False)[0], state.params,
                               state.batch_stats)

    def correct(self, state: TrainState, x, y):
        """(K,) number of correct eval-mode predictions on the batch (x, y)."""
        return (self.logits(state, x).argmax(-1) == y[None]).sum(-1)


def make_trainer(model, tx, *, loss: Callable = losses.cross_entropy, batch_size: int = 256,
                 augment: Optional[Callable] = None, last_batch: str = "short",
                 augment_loop: str = "vmap", target_fn: Optional[Callable] = None,
                 net_loop: str = "vmap") -> Trainer:
    """The training core for ``model`` (module docstring). augment_loop and net_loop:
    'vmap', 'map' or 'auto' ('map' on CPU, 'vmap' on accelerators)."""
    if last_batch not in _LAST:
        raise ValueError(f"last_batch must be one of {_LAST}, got {last_batch!r}")
    if augment_loop == "auto":
        augment_loop = "map" if jax.default_backend() == "cpu" else "vmap"
    if augment_loop not in ("map", "vmap"):
        raise ValueError(f"augment_loop must be 'auto', 'map' or 'vmap', got {augment_loop!r}")
    net_loop = resolve_net_loop(net_loop)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from jaxdd.models import needs_dropout_rng

    return Trainer(model=model, apply=make_apply(model), tx=tx, loss=loss,
                   batch_size=int(batch_size), augment=augment, last_batch=last_batch,
                   augment_loop=augment_loop, target_fn=target_fn, net_loop=net_loop,
                   dropout=isinstance(model, nn.Module) and needs_dropout_rng(model))


def resolve_net_loop(net_loop: str, num_devices: int = 1) -> str:
    """'auto' -> 'map' on a single CPU device, 'vmap' otherwise (module docstring)."""
    if net_loop == "auto":
        cpu = jax.default_backend() == "cpu"
        net_loop = "map" if cpu and int(num_devices) <= 1 else "vmap"
    if net_loop not in ("map", "vmap"):
        raise ValueError(f"net_loop must be 'auto', 'map' or 'vmap', got {net_loop!r}")
    return net_loop
