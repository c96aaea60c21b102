"""The outer distillation step: the synthetic set's state, its optimizers, one jitted step.

    state = init_state(key, syn_params, syn_lr)          # SynState
    state, metrics = step(state, objective.data)          # one jax.jit

One iteration: key -> the objective's context -> decode (all instances, the objective's
`select(step)`, or a random `decode_subset`) -> loss and gradients w.r.t. (synthetic
parameters, syn_lr) -> one optax update per group (per-instance optimizers for
parameterizations that store every instance as its own parameter set, e.g. DDiF) ->
the objective's `post_step` (DC trains its network). With a mesh the instance axis is split
over the devices (`jaxdd.sharding`). The loop that drives it is `jaxdd.distill.Run`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdd import runtime
from jaxdd import sharding
from jaxdd.objective import Objective

class SynState(NamedTuple):
    """The synthetic set's training state (checkpointed by the loop). The network-training
    state of experts / evaluation is `jaxdd.train.TrainState`."""
    step: jax.Array  # int32 scalar: iterations done
    rng: jax.Array  # uint32 key data
    syn_params: Any
    syn_lr: jax.Array
    opt_syn: Any
    opt_lr: Any
    obj_state: Any = ()  # objective-carried state (DC's network), () when stateless


# ----------------------------------------------------------------------------- optimizers

def make_optimizer(ocfg) -> optax.GradientTransformation:
    """optax optimizer from a ConfigDict(name in {sgd, adam}, lr, momentum, b1, b2;
    optional schedule 'constant' (default) or 'cosine' with decay_steps: the lr decays over
    the optimizer's update count, per instance under `per_instance`)."""
    name = ocfg.get("name", "sgd").lower()
    lr = ocfg.lr
    sched = ocfg.get("schedule", "constant") or "constant"
    if sched == "cosine":  # cosine decay to 0 over decay_steps updates (then 0)
        lr = optax.cosine_decay_schedule(float(ocfg.lr), int(ocfg.decay_steps))
    elif sched != "constant":
        raise ValueError(f"unknown opt schedule {sched!r} (constant, cosine)")
    if name == "sgd":
        return optax.sgd(lr, momentum=ocfg.get("momentum", 0.5) or None)
    if name == "adam":
        return optax.adam(lr, b1=ocfg.get("b1", 0.9), b2=ocfg.get("b2", 0.999))
    raise ValueError(f"unknown optimizer {name!r} (sgd, adam)")


class PerInstance(optax.GradientTransformationExtraArgs):
    """Marker type of ``per_instance`` transformations (same fields as optax's)."""


def per_instance(inner: optax.GradientTransformation) -> PerInstance:
    """One independent copy of ``inner`` per synthetic instance, updating only selected ones.

    Every leaf of the parameters carries the instance axis first (K, ...), as DDiF's
    stacked fields do. The state is ``jax.vmap(inner.init)`` (so Adam's moments AND its step
    count are per instance), and ``update(grads, state, params, instance_mask=m)`` with m a
    bool (K,) applies ``inner`` to the instances with m True and leaves the others exactly
    as they were: zero update, state (moments, count) unchanged. ``instance_mask=None``
    updates every instance (then per-instance Adam equals ``inner`` on the whole stack).

    This is torch.optim.Adam over a ModuleList of per-instance modules when the instances
    that were not decoded have ``grad None`` (DDiF's code: SynSet/DDiF.py:65 and :133,
    TM/main_TM.py:285, torch >= 2.0 ``zero_grad(set_to_none=True)``): torch skips such a
    parameter entirely (no moment update, no step increment), so each field's bias
    correction uses the number of iterations in which IT was decoded. optax.adam on the
    whole stack would instead move undecoded fields with stale moments and decay them.
    Checked against torch by tests/test_parity_ddif.py.
    """
    def init_fn(params):
        return jax.vmap(inner.init)(params)

    def update_fn(updates, state, params=None, *, instance_mask=None, **extra):
        del extra
        if params is None:
            new_u, new_s = jax.vmap(lambda g, s: inner.update(g, s))(updates, state)
        else:
            new_u, new_s = jax.vmap(inner.update)(updates, state, params)
        if instance_mask is None:
            return new_u, new_s
        m = jnp.asarray(instance_mask, bool)

        def sel(new, old):
            return jnp.where(m.reshape(m.shape + (1,) * (jnp.ndim(new) - 1)), new, old)

        new_u = jax.tree.map(lambda u: sel(u, jnp.zeros_like(u)), new_u)
        new_s = jax.tree.map(sel, new_s, state)
        return new_u, new_s

    return PerInstance(init_fn, update_fn)


def make_syn_optimizer(ocfg, pm=None):
    """The optimizer of the synthetic parameters: ``make_optimizer(ocfg)``, wrapped in
    ``per_instance`` when the parameterization stores every instance as its own parameter
    set in the authors' code (``pm.INSTANCE_PARAMETERS``, e.g. DDiF) or when
    ``ocfg.per_instance`` is True (False forces one state for the whole stack)."""
    tx = make_optimizer(ocfg)
    flag = ocfg.get("per_instance", None)
    if flag is None:
        flag = bool(getattr(pm, "INSTANCE_PARAMETERS", False))
    return per_instance(tx) if flag else tx


def instance_mask(indices, num_instances: int):
    """bool (num_instances,): True at the decoded ``indices`` (None: all instances)."""
    if indices is None:
        return None
    return jnp.zeros((num_instances,), bool).at[indices].set(True)


def apply_syn_update(tx, grads, opt_state, params, mask=None):
    """One optimizer step of the synthetic parameters; with a per-instance ``tx`` and a
    mask, the instances outside the mask keep their parameters bit-identical."""
    if isinstance(tx, PerInstance) and mask is not None:
        upd, opt_state = tx.update(grads, opt_state, params, instance_mask=mask)
        new = optax.apply_updates(params, upd)
        new = jax.tree.map(
            lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (jnp.ndim(n) - 1)), n, o),
            new, params)
        return new, opt_state
    upd, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, upd), opt_state


def _global_norm(tree):
    return optax.global_norm(tree)


def _split_step_key(rng):
    """The outer step's keys from its PRNG state (typed key): (next, ctx, idx, loss, post).
    The jitted step and the host-side feeding (`jaxdd.sharding.Prefetcher`) both use it, so
    a host-drawn context (TM's expert and start epoch) is the one the key selects."""
    return jax.random.split(rng, 5)


@jax.jit
def _host_keys(rng_data):
    """(next PRNG state data, context key data) of a step, for the host side."""
    ks = _split_step_key(jax.random.wrap_key_data(rng_data))
    return jax.random.key_data(ks[0]), jax.random.key_data(ks[1])


class Step:
    """The outer step: ``step(state, data) -> (state, metrics)``, one jitted function.

    For an objective with a host-side ``feed`` (TM: the expert snapshots of the iteration),
    the call draws this iteration's inputs on the host from the state's PRNG state (the
    same key the jitted step splits), places them on the devices, runs the jitted step and
    starts copying the NEXT iteration's inputs in a background thread (the next PRNG state
    is known before the step finishes). ``step.jitted(state, data, fed)`` is the jitted
    function itself; ``step.lower(state, data)`` lowers it (benchmarks)."""

    def __init__(self, jitted, feed_load=None, place_state=None):
        self.jitted = jitted
        self._place = place_state
        self._prefetch = None if feed_load is None else sharding.Prefetcher(feed_load)
        self._predicted = None  # (the rng array we returned, its host value)
        # the first call compiles ahead of running and hands the compiler's freed host
        # memory back to the OS before the step's buffers exist (`runtime.CompileAhead`;
        # MTT pixel step of the authors comparison: peak RSS 796-834 -> 535-542 MiB,
        # issue 17)
        self.compiled = runtime.CompileAhead(jitted)

    def _fed(self, state):
        if self._prefetch is None:
            return None, None
        if self._predicted is not None and self._predicted[0] is state.rng:
            rng = self._predicted[1]  # no device sync
        else:
            rng = sharding.to_host(state.rng)
        return rng, self._prefetch.get(rng)

    def __call__(self, state, data):
        if self._place is not None:
            state = self._place(state)
        rng, fed = self._fed(state)
        new, metrics = (self.compiled(state, data) if fed is None
                        else self.compiled(state, data, fed))
        if self._prefetch is not None:
            nxt = np.asarray(_host_keys(rng)[0])
            self._predicted = (new.rng, nxt)
            self._prefetch.prefetch(nxt)
        return new, metrics

    @property
    def prefetch_stats(self):
        """{'hits', 'misses'} of the host feeding (None without a feed)."""
        p = self._prefetch
        return None if p is None else {"hits": p.hits, "misses": p.misses}

    def lower(self, state, data):
        if self._place is not None:
            state = self._place(state)
        fed = self._fed(state)[1]
        return (self.jitted.lower(state, data) if fed is None
                else self.jitted.lower(state, data, fed))


def make_step(pm, aux, objective: Objective, cfg, mesh="config"):
    """The outer step (a `Step`: state -> (state, metrics), one jit) and init_state.

    mesh: a `jax.sharding.Mesh`, None (one device, nothing sharded) or "config" (default:
    `jaxdd.sharding.mesh_from_config(cfg)`, every device unless cfg.mesh.data says
    otherwise). With a mesh, the decoded images and the synthetic parameters and optimizer
    state are split along the instance axis (`jaxdd.sharding`), the state is placed that
    way by init_state and by every call."""
    if isinstance(mesh, str):
        mesh = sharding.mesh_from_config(cfg)
    tx_syn = make_syn_optimizer(cfg.opt.syn, pm)
    tx_lr = optax.sgd(cfg.opt.lr.lr, momentum=cfg.opt.lr.get("momentum", 0.5) or None)
    min_lr = cfg.opt.lr.get("min_syn_lr", None)
    labels_all = jnp.asarray(aux["labels"])
    num_instances = int(labels_all.shape[0])
    decode_n = int(cfg.get("decode_subset", 0) or 0)

    subset = 0 < decode_n < num_instances

    def inst(tree):  # instance-axis constraint (no-op without a mesh)
        return jax.tree.map(lambda a: sharding.constrain(a, sharding.leading(mesh, a.shape)),
                            tree)

    def decoded_indices(k_idx, step):
        """The instances decoded this iteration (None: all of them): the objective's
        `select(step)` when it has one, else a random `decode_subset`."""
        if objective.select is not None:
            return objective.select(step)
        if subset:
            return jax.random.choice(k_idx, num_instances, (decode_n,), replace=False)
        return None

    def decode(syn_params, k_idx, step):
        idx = decoded_indices(k_idx, step)
        if idx is not None:
            return inst(pm.decode(syn_params, aux, indices=idx)), labels_all[idx]
        return inst(pm.decode(syn_params, aux)), labels_all

    def objective_value(syn_params, syn_lr, k_idx, k_loss, ctx, step):
        images, labels = decode(syn_params, k_idx, step)
        if hasattr(ctx, "_replace") and hasattr(ctx, "syn_lr"):
            ctx = ctx._replace(syn_lr=syn_lr)
        return objective.loss(k_loss, images, labels, ctx)

    def step(state: SynState, data, fed=None):
        rng = jax.random.wrap_key_data(state.rng)
        rng, k_ctx, k_idx, k_loss, k_post = _split_step_key(rng)
        if fed is not None:  # host-drawn inputs of this iteration (objective.feed)
            data = {**data, **fed}
        ctx = objective.sample_ctx(k_ctx, state.syn_lr, data, state.obj_state)
        syn_in = inst(state.syn_params)
        loss, (g_syn, g_lr) = jax.value_and_grad(objective_value, argnums=(0, 1))(
            syn_in, state.syn_lr, k_idx, k_loss, ctx, state.step)
        # only the decoded instances move (per-instance optimizers, e.g. DDiF fields)
        mask = instance_mask(decoded_indices(k_idx, state.step), num_instances)
        syn_params, opt_syn = apply_syn_update(tx_syn, inst(g_syn), inst(state.opt_syn),
                                               syn_in, mask)
        if objective.learn_lr:
            upd_lr, opt_lr = tx_lr.update(g_lr, state.opt_lr, state.syn_lr)
            syn_lr = state.syn_lr + upd_lr
            if min_lr is not None:
                syn_lr = jnp.maximum(syn_lr, min_lr)
        else:
            opt_lr, syn_lr = state.opt_lr, state.syn_lr
        obj_state = state.obj_state
        if objective.post_step is not None:
            images, labels = decode(jax.lax.stop_gradient(syn_params), k_idx, state.step)
            obj_state = objective.post_step(k_post, obj_state, images, labels, data,
                                            state.step)
        new = SynState(step=state.step + 1, rng=jax.random.key_data(rng),
                       syn_params=syn_params, syn_lr=syn_lr, opt_syn=opt_syn, opt_lr=opt_lr,
                       obj_state=obj_state)
        metrics = {
            "loss": loss,
            "syn_lr": syn_lr,
            "grad_norm_syn": _global_norm(g_syn),
            "grad_norm_lr": jnp.abs(g_lr),
            "param_norm_syn": _global_norm(syn_params),
        }
        sh = shardings_of(new)
        if sh is not None:  # the storage layout between iterations (`sharding.state_storage`)
            new = jax.tree.map(sharding.constrain, new, sh)
            metrics = jax.tree.map(
                lambda m: sharding.constrain(m, sharding.replicated(mesh)), metrics)
        return new, metrics

    def shardings_of(state):
        if sharding.size(mesh) <= 1:
            return None
        rep = sharding.replicated(mesh)
        return state._replace(
            step=rep, rng=rep, syn_lr=rep, opt_lr=jax.tree.map(lambda a: rep, state.opt_lr),
            obj_state=jax.tree.map(lambda a: rep, state.obj_state),
            syn_params=sharding.state_storage(mesh, state.syn_params),
            opt_syn=sharding.state_storage(mesh, state.opt_syn))

    def place(state):
        sh = shardings_of(state)
        return state if sh is None else sharding.put_tree(state, sh)

    jitted = jax.jit(step)

    feed_load = None
    if objective.feed is not None:
        rep = sharding.replicated(mesh)

        def feed_load(rng_data):
            k_ctx = jax.random.wrap_key_data(_host_keys(rng_data)[1])
            fed = objective.feed(k_ctx)
            return jax.tree.map(lambda a: sharding.put(a, rep) if rep is not None
                                else jax.device_put(a), fed)

    def init_state(key, syn_params, syn_lr):
        syn_lr = jnp.asarray(syn_lr, jnp.float32)
        k_loop, k_obj = jax.random.split(key)
        obj_state = objective.init_state(k_obj) if objective.init_state is not None else ()
        state = SynState(step=jnp.int32(0), rng=jax.random.key_data(k_loop),
                         syn_params=syn_params, syn_lr=syn_lr,
                         opt_syn=tx_syn.init(syn_params), opt_lr=tx_lr.init(syn_lr),
                         obj_state=obj_state)
        return place(state)

    return Step(jitted, feed_load, place if sharding.size(mesh) > 1 else None), init_state
