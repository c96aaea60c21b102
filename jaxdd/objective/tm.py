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
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
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
