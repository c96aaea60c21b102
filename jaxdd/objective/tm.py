"""Trajectory matching (MTT, Cazenavette et al. 2022) as a pure loss.

One TM evaluation (REFERENCE.md "TM iteration"):
  theta_0 = expert[s], target = expert[s + expert_epochs];
  for t in 1..syn_steps: theta <- theta - syn_lr * grad CE(f(theta, DSA(x_b_t)), y_b_t)
  loss = sum((theta_N - target)^2) / sum((theta_0 - target)^2)

The student's training is unrolled with `jax.lax.scan` over `syn_steps`; the minibatch
order (fresh permutations of the synthetic set, chunked into `batch_syn`) and the DSA keys
are drawn up front from `key`; the scan body is wrapped in `jax.checkpoint` when
`remat=True` (memory O(1) in syn_steps instead of O(syn_steps) for one extra forward per
step). `syn_lr` lives in `ctx` and is differentiated like the images.

Optional real-guided term (NSD, ECCV 2024): `gamma * CE(f(theta_N, x_real), y_real)` on a
real batch given in ctx, added when gamma > 0.
"""
from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax


class TMContext(NamedTuple):
    """Per-iteration inputs of the TM loss (a pytree; every field may be traced).

    start: student parameters theta_0 (the expert at epoch s), a params pytree.
    target: the expert at epoch s + expert_epochs.
    syn_lr: scalar learnable student learning rate.
    real_images / real_labels: a real batch for the real-guided term (or None).
    """
    start: dict
    target: dict
    syn_lr: jax.Array
    real_images: jax.Array | None = None
    real_labels: jax.Array | None = None


def ce_loss(logits, labels):
    """Mean cross-entropy; int labels (N,) or soft target probabilities (N, classes)."""
    if labels.ndim == logits.ndim - 1:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return -(labels * jax.nn.log_softmax(logits)).sum(-1).mean()


def minibatch_schedule(key, n, syn_steps, batch_syn):
    """(syn_steps, batch_syn) indices: consecutive chunks of fresh permutations of range(n).

    Matches MTT: a permutation is consumed chunk by chunk; a new one is drawn when it runs
    out (if batch_syn does not divide n, the last chunk of each permutation is short in
    MTT; here chunks run across permutation boundaries so every step has batch_syn images).
    """
    total = syn_steps * batch_syn
    num_perms = math.ceil(total / n)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, num_perms))
    return perms.reshape(-1)[:total].reshape(syn_steps, batch_syn)


def param_distance(a, b):
    """sum over all leaves of (a - b)^2."""
    return sum(jnp.sum(jnp.square(x - y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def make_loss(apply_fn: Callable, *, syn_steps: int, batch_syn: int | None = None,
              augment: Callable | None = None, remat: bool = True, gamma: float = 0.0):
    """Build the TM loss.

    Args:
      apply_fn: (params, images) -> logits, the student network (e.g.
        `lambda p, x: model.apply({'params': p}, x, train=True)`).
      syn_steps: student steps unrolled per evaluation.
      batch_syn: synthetic minibatch per student step (None/0: all images each step).
      augment: (key, images) -> images (DSA), or None.
      remat: wrap the scan body in `jax.checkpoint`.
      gamma: weight of the real-guided cross-entropy (NSD); needs ctx.real_images.

    Returns:
      loss(key, syn_images, syn_labels, ctx: TMContext) -> scalar.
    """

    def unroll(key, syn_images, syn_labels, start, syn_lr):
        n = syn_images.shape[0]
        bs = n if not batch_syn else min(int(batch_syn), n)
        korder, kaug = jax.random.split(key)
        order = minibatch_schedule(korder, n, syn_steps, bs)
        aug_keys = jax.random.split(kaug, syn_steps)

        def step(theta, inp):
            idx, k = inp
            x = syn_images[idx]
            if augment is not None:
                x = augment(k, x)
            y = syn_labels[idx]
            g = jax.grad(lambda p: ce_loss(apply_fn(p, x), y))(theta)
            theta = jax.tree.map(lambda p, gi: p - syn_lr * gi, theta, g)
            return theta, None

        body = jax.checkpoint(step) if remat else step
        theta_n, _ = jax.lax.scan(body, start, (order, aug_keys))
        return theta_n

    def loss(key, syn_images, syn_labels, ctx: TMContext):
        theta_n = unroll(key, syn_images, syn_labels, ctx.start, ctx.syn_lr)
        num = param_distance(theta_n, ctx.target)
        den = param_distance(ctx.start, ctx.target)
        total = num / den
        if gamma > 0:
            if ctx.real_images is None:
                raise ValueError("TM with gamma > 0 (real-guided loss) needs ctx.real_images")
            total = total + gamma * ce_loss(apply_fn(theta_n, ctx.real_images),
                                            ctx.real_labels)
        return total

    loss.unroll = unroll
    return loss


# ----------------------------------------------------------------------------- loop wiring

def build(run) -> "Objective":
    """TM: expert trajectories (built if missing), random expert + start epoch per step."""
    from jaxdd.augment import dsa
    from jaxdd.objective import Objective

    cfg = run.cfg
    o = cfg.objective
    bcfg = buffer_config(cfg)
    needed = int(o.max_start_epoch) + int(o.expert_epochs)
    if needed > int(bcfg.epochs):
        raise ValueError(f"max_start_epoch + expert_epochs = {needed} exceeds the experts' "
                         f"{bcfg.epochs} epochs (buffer.epochs)")
    trajs = _load_or_build_experts(run, bcfg, needed)
    strategy = cfg.dsa_strategy
    augment = None if strategy in (None, "", "none") else (
        lambda k, x: dsa(k, x, strategy=strategy))
    gamma = float(o.get("gamma", 0.0))
    loss = make_loss(run.apply_fn, syn_steps=int(o.syn_steps),
                     batch_syn=int(o.get("batch_syn", 0) or 0), augment=augment,
                     remat=bool(o.get("remat", True)), gamma=gamma)
    num_experts = jax.tree.leaves(trajs)[0].shape[0]
    max_start = int(o.max_start_epoch)
    ee = int(o.expert_epochs)
    data = {"trajs": trajs}
    real_bs = int(o.get("real_batch", 256))
    if gamma > 0:
        data["real_images"] = jnp.asarray(run.train_ds.images)
        data["real_labels"] = jnp.asarray(run.train_ds.labels)

    def sample_ctx(key, syn_lr, data):
        ke, ks, kr = jax.random.split(key, 3)
        e = jax.random.randint(ke, (), 0, num_experts)
        s = jax.random.randint(ks, (), 0, max_start)
        start = jax.tree.map(lambda t: t[e, s], data["trajs"])
        target = jax.tree.map(lambda t: t[e, s + ee], data["trajs"])
        ri = rl = None
        if gamma > 0:
            n = data["real_images"].shape[0]
            idx = jax.random.choice(kr, n, (min(real_bs, n),), replace=False)
            ri, rl = data["real_images"][idx], data["real_labels"][idx]
        return TMContext(start=start, target=target, syn_lr=syn_lr, real_images=ri,
                         real_labels=rl)

    return Objective(loss=loss, sample_ctx=sample_ctx, data=data, learn_lr=True)


def buffer_config(cfg) -> ml_collections.ConfigDict:
    """The expert-buffer config implied by a distillation config (cfg.buffer + data/model)."""
    b = ml_collections.ConfigDict(cfg.buffer.to_dict())
    b.dataset = ml_collections.ConfigDict(cfg.dataset.to_dict())
    b.model = ml_collections.ConfigDict(cfg.model.to_dict())
    if "dsa_strategy" not in b:
        b.dsa_strategy = cfg.dsa_strategy
    if not b.get("buffer_dir"):
        d = cfg.dataset
        tag = f"{d.name}-r{d.get('resolution') or 'native'}-{'zca' if d.get('zca') else 'nozca'}"
        b.buffer_dir = os.path.join("buffers", f"{tag}-{cfg.model.name}")
    b.buffer_dir = os.path.abspath(os.path.expanduser(b.buffer_dir))  # Orbax needs absolute
    return b


def _load_or_build_experts(run, bcfg, needed_epochs):
    from jaxdd import experts

    expected = experts.expected_metadata(bcfg)
    try:
        trajs, _ = experts.load_trajectories(bcfg.buffer_dir, expected=expected,
                                             num_experts=int(bcfg.num_experts),
                                             epochs=needed_epochs,
                                             build_hint=experts.build_command(bcfg))
    except experts.MissingExpertsError as e:
        print(f"[jaxdd] {e}\n[jaxdd] building the missing experts now in {bcfg.buffer_dir} "
              f"({bcfg.num_experts} experts x {bcfg.epochs} epochs) ...")
        experts.build_buffer(bcfg.buffer_dir, bcfg, train=run.train_ds, test=run.test_ds,
                             progress=run.progress)
        trajs, _ = experts.load_trajectories(bcfg.buffer_dir, expected=expected,
                                             num_experts=int(bcfg.num_experts),
                                             epochs=needed_epochs)
    return jax.tree.map(jnp.asarray, trajs)
