"""Trajectory matching (MTT, Cazenavette et al. 2022) as a pure loss.

One TM evaluation (docs/methods.md "TM"; MTT ``distill.py`` lines 324-386 at 50dccea):
  theta_0 = expert[s], target = expert[s + expert_epochs];
  for t in 1..syn_steps: theta <- theta - syn_lr * grad CE(f(theta, DSA(x_b_t)), y_b_t)
  loss = sum((theta_N - target)^2) / sum((theta_0 - target)^2)

The student's training is unrolled with `jax.lax.scan` over `syn_steps`; the minibatch
order and the DSA keys are drawn up front from `key`; the scan body is wrapped in
`jax.checkpoint` when `remat=True` (memory O(1) in syn_steps instead of O(syn_steps) for one
extra forward per step). `syn_lr` lives in `ctx` and is differentiated like the images.

Where this follows the authors' code (MTT distill.py; FreD main_TM_FreD.py and DDiF
main_TM.py have the same loop) -- checked by tests/test_parity_tm.py:
* minibatches (``schedule='mtt'``, the default; distill.py:341-348): when no chunk is left a
  fresh permutation of the synthetic set is cut into chunks of ``batch_syn`` (the last one
  short when batch_syn does not divide the set) and the chunks are taken from the END of
  the list (``indices_chunks.pop()``).  A short chunk is one student step on the mean CE over
  its own images; here it is padded to batch_syn and the padding is masked out of the mean.
  ``schedule='wrap'`` (:func:`minibatch_schedule`) instead lets chunks run across
  permutation boundaries so every step has batch_syn images (no padded compute).
* every student step uses the same learnable ``syn_lr`` (distill.py:370), the gradient is
  taken through the whole unroll (``create_graph=True``), CE is the mean over the minibatch
  with hard labels (soft labels (N, classes) are accepted here as an extension).
* MTT divides both sums of squares by the number of parameters before taking the ratio
  (distill.py:383-386); the ratio is the same, jaxdd skips the two divisions.

Optional real-guided term (NSD, ECCV 2024): `gamma * CE(f(theta_N, x_real), y_real)` on a
real batch given in ctx, added when gamma > 0.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdd import sharding
from jaxdd.losses import cross_entropy, per_example_ce
from jaxdd.objective import pad_groups


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


def ce_loss(logits, labels, weights=None):
    """Cross-entropy (``jaxdd.losses.cross_entropy``): int labels (N,) or soft targets;
    mean, or with ``weights`` (N,) 0/1 the mean over the kept entries."""
    return cross_entropy(logits, labels, weights)


SCHEDULES = ("mtt", "wrap")


def minibatch_schedule(key, n, syn_steps, batch_syn):
    """(syn_steps, batch_syn) indices: consecutive chunks of fresh permutations of range(n).

    The 'wrap' schedule: a permutation is consumed chunk by chunk and a new one is drawn when
    it runs out; chunks run across permutation boundaries, so every step has batch_syn
    images (MTT's own schedule is :func:`mtt_schedule`; both visit every image once per
    permutation, and they coincide in distribution when batch_syn divides n).
    """
    total = syn_steps * batch_syn
    num_perms = math.ceil(total / n)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, num_perms))
    return perms.reshape(-1)[:total].reshape(syn_steps, batch_syn)


def mtt_schedule(key, n, syn_steps, batch_syn):
    """MTT's minibatch schedule (distill.py:341-348 at 50dccea) -> (indices, weights).

    Each fresh permutation of range(n) is cut into K = ceil(n / batch_syn) chunks of
    batch_syn (the last one has n - (K - 1) * batch_syn images) and the chunks are used
    from the last to the first (``list.pop()``); a new permutation is drawn when they run
    out.  Returns ``indices`` (syn_steps, batch_syn) int32 and ``weights``
    (syn_steps, batch_syn) float32 (1 = image, 0 = padding of a short chunk), or
    ``weights=None`` when batch_syn divides n (no step is short).
    """
    n, b = int(n), int(batch_syn)
    k_chunks = -(-n // b)
    num_perms = -(-int(syn_steps) // k_chunks)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, num_perms))
    pad = k_chunks * b - n
    perms = jnp.pad(perms, ((0, 0), (0, pad))).reshape(num_perms, k_chunks, b)
    idx = perms[:, ::-1].reshape(-1, b)[:syn_steps].astype(jnp.int32)
    if pad == 0:
        return idx, None
    valid = (jnp.arange(k_chunks * b) < n).astype(jnp.float32).reshape(k_chunks, b)[::-1]
    weights = jnp.tile(valid, (num_perms, 1))[:syn_steps]
    return idx, weights


def schedule_from_chunks(chunks, batch_syn=None):
    """An explicit minibatch order (a list of index arrays, one per student step, possibly
    of different lengths) -> ``(indices, weights)`` numpy arrays (steps, batch_syn) for
    ``loss.with_schedule``; short chunks are padded with index 0 and weight 0."""
    chunks = [np.asarray(c, np.int64).reshape(-1) for c in chunks]
    b = int(batch_syn) if batch_syn else max(len(c) for c in chunks)
    if any(len(c) > b or len(c) == 0 for c in chunks):
        raise ValueError(f"chunk sizes {[len(c) for c in chunks]} must be in 1..{b}")
    return pad_groups(chunks, b)


def param_distance(a, b):
    """sum over all leaves of (a - b)^2."""
    return sum(jnp.sum(jnp.square(x - y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def make_loss(apply_fn: Callable, *, syn_steps: int, batch_syn: int | None = None,
              augment: Callable | None = None, remat: bool = True, gamma: float = 0.0,
              schedule: str = "mtt", mesh=None, microbatch: int = 0):
    """Build the TM loss.

    Args:
      apply_fn: (params, images) -> logits, the student network (e.g.
        `lambda p, x: model.apply({'params': p}, x, train=True)`).
      syn_steps: student steps unrolled per evaluation.
      batch_syn: synthetic minibatch per student step (None/0: all images each step).
      augment: (key, images) -> images (DSA), or None. One with ``draw(key, n)`` /
        ``apply(draw, images)`` halves (``jaxdd.augment.Augment``) has every step's
        parameters drawn before the scan (the same values; less code in the body).
      remat: wrap the scan body in `jax.checkpoint`.
      gamma: weight of the real-guided cross-entropy (NSD); needs ctx.real_images.
      schedule: 'mtt' (the authors' minibatch order, :func:`mtt_schedule`) or 'wrap'
        (:func:`minibatch_schedule`).
      mesh: a `jax.sharding.Mesh` (`jaxdd.sharding`): every student step's minibatch is
        split over its devices (data parallel; the student parameters replicated), or None.
      microbatch: at most this many images per gradient chunk inside a student step (0:
        the whole minibatch at once). The step's gradient is accumulated over
        ceil(B / microbatch) chunks of equal size (B = the minibatch), each
        rematerialized, so the memory of the second-order pass scales with the chunk, not
        the minibatch (e.g. FreD's 120 or DDiF's 110 decoded images per step; measured in
        docs/performance.md). Same gradient up to float summation order for networks
        that treat images independently (instance / no norm, as the ConvNets of the
        published settings); with batch norm the statistics would be per chunk.

    Returns:
      loss(key, syn_images, syn_labels, ctx: TMContext) -> scalar, with attributes
        ``loss.unroll(key, syn_images, syn_labels, start, syn_lr) -> theta_N`` and
        ``loss.with_schedule(indices, weights, syn_images, syn_labels, ctx, aug_keys=None)``:
        the same loss for an explicit minibatch order (``indices`` (syn_steps, B) int,
        ``weights`` (syn_steps, B) or None; see :func:`schedule_from_chunks`) and, when
        augment is set, explicit per-step augmentation keys (syn_steps, ...).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"TM schedule must be one of {SCHEDULES}, got {schedule!r}")
    microbatch = int(microbatch or 0)
    if microbatch < 0:
        raise ValueError(f"TM microbatch must be >= 0 (0: the whole minibatch), got "
                         f"{microbatch}")

    def student_grad(theta, x, y, w):
        """grad of the (weighted) mean CE over the minibatch; with ``microbatch`` the sum
        of per-chunk gradients of the summed CE (each chunk rematerialized), divided by
        the number of (kept) images: the same gradient, up to float summation order."""
        b = x.shape[0]
        if not microbatch or microbatch >= b:
            return jax.grad(lambda p: ce_loss(apply_fn(p, x), y, w))(theta)
        c = -(-b // microbatch)   # chunks of at most `microbatch`, as equal as possible
        size = -(-b // c)
        pad = c * size - b
        wt = jnp.ones((b,), jnp.float32) if w is None else w.astype(jnp.float32)
        total = jnp.maximum(jnp.sum(wt), 1.0)   # losses.weighted_mean's denominator
        if pad:
            x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
            y = jnp.concatenate([y, jnp.zeros((pad,) + y.shape[1:], y.dtype)])
            wt = jnp.concatenate([wt, jnp.zeros((pad,), wt.dtype)])
        chunks = (x.reshape((c, size) + x.shape[1:]), y.reshape((c, size) + y.shape[1:]),
                  wt.reshape(c, size))

        @jax.checkpoint
        def chunk_grad(p, xc, yc, wc):
            return jax.grad(lambda q: jnp.sum(per_example_ce(apply_fn(q, xc), yc) * wc))(p)

        def acc(gsum, ch):
            g = chunk_grad(theta, *ch)
            return jax.tree.map(jnp.add, gsum, g), None

        gsum, _ = jax.lax.scan(acc, jax.tree.map(jnp.zeros_like, theta), chunks)
        return jax.tree.map(lambda t: t / total, gsum)

    # an augmentation with separate draw / apply halves (jaxdd.augment.Augment) has its
    # parameters drawn for all steps before the scan (same values as augment(key, x))
    presample = augment is not None and hasattr(augment, "draw") and hasattr(augment, "apply")

    def unroll_scheduled(syn_images, syn_labels, start, syn_lr, idx, weights=None,
                         aug_keys=None):
        if idx.shape[0] != syn_steps:
            raise ValueError(f"the minibatch order has {idx.shape[0]} steps, syn_steps is "
                             f"{syn_steps}")
        if augment is not None and aug_keys is None:
            raise ValueError("this TM loss augments (DSA): pass aug_keys (one per step)")

        def step(theta, inp):
            i, w, k = inp
            x = syn_images[i]
            if augment is not None:
                x = augment.apply(k, x) if presample else augment(k, x)
            x = sharding.constrain(x, sharding.batch(mesh, x.shape))  # data parallel
            y = syn_labels[i]
            g = student_grad(theta, x, y, w)
            theta = jax.tree.map(lambda p, gi: p - syn_lr * gi, theta, g)
            return theta, None

        body = jax.checkpoint(step) if remat else step
        if presample:
            # every step's augmentation parameters at once, outside the body: the body (and
            # its rematerialized / transposed copies) holds no PRNG code
            aug_keys = jax.vmap(lambda k: augment.draw(k, idx.shape[1]))(aug_keys)
        xs = (idx, weights, aug_keys if augment is not None else None)
        theta_n, _ = jax.lax.scan(body, start, xs)
        return theta_n

    def unroll(key, syn_images, syn_labels, start, syn_lr):
        n = syn_images.shape[0]
        bs = n if not batch_syn else min(int(batch_syn), n)
        korder, kaug = jax.random.split(key)
        if schedule == "mtt":
            order, weights = mtt_schedule(korder, n, syn_steps, bs)
        else:
            order, weights = minibatch_schedule(korder, n, syn_steps, bs), None
        aug_keys = jax.random.split(kaug, syn_steps)
        return unroll_scheduled(syn_images, syn_labels, start, syn_lr, order, weights,
                                aug_keys)

    def finish(theta_n, ctx):
        num = param_distance(theta_n, ctx.target)
        den = param_distance(ctx.start, ctx.target)
        total = num / den
        if gamma > 0:
            if ctx.real_images is None:
                raise ValueError("TM with gamma > 0 (real-guided loss) needs ctx.real_images")
            total = total + gamma * ce_loss(apply_fn(theta_n, ctx.real_images),
                                            ctx.real_labels)
        return total

    def loss(key, syn_images, syn_labels, ctx: TMContext):
        return finish(unroll(key, syn_images, syn_labels, ctx.start, ctx.syn_lr), ctx)

    def with_schedule(indices, weights, syn_images, syn_labels, ctx: TMContext,
                      aug_keys=None):
        idx = jnp.asarray(indices, jnp.int32)
        w = None if weights is None else jnp.asarray(weights, jnp.float32)
        theta_n = unroll_scheduled(syn_images, syn_labels, ctx.start, ctx.syn_lr, idx, w,
                                   aug_keys)
        return finish(theta_n, ctx)

    loss.unroll = unroll
    loss.with_schedule = with_schedule
    return loss


# ----------------------------------------------------------------------------- objective

def trajectory_epochs(ocfg) -> int:
    """Expert epochs TM reads: 0 .. max_start_epoch + expert_epochs (the loop loads them)."""
    return int(ocfg.max_start_epoch) + int(ocfg.expert_epochs)


def make_objective(apply_fn: Callable, trajectories, ocfg, *, dsa_strategy=None,
                   real_images=None, real_labels=None, host: bool = True,
                   mesh=None, modality=None) -> "Objective":
    """TM from expert trajectories: a random expert and start epoch per iteration.

    trajectories: a params pytree whose leaves are (experts, epochs, ...) with at least
      ``trajectory_epochs(ocfg)`` epochs (the loop loads or builds them: jaxdd.distill).
    ocfg: cfg.objective (syn_steps, expert_epochs, max_start_epoch, batch_syn, remat,
      gamma, real_batch). real_images / real_labels: the real data of the real-guided term
      (needed when gamma > 0).
    host: True (default): the trajectories stay in host memory (numpy or memory-mapped,
      never copied whole to a device); ``Objective.feed(key)`` draws the expert and the
      start epoch on the host and returns only the two snapshots of the iteration, which
      the loop copies to the devices one iteration ahead. False: the trajectories are put
      on the device in ``data['trajs']`` and indexed inside the jitted step (device memory
      grows with experts x epochs). Both draw the same (expert, start) from the same key
      (:func:`draw_expert_start`), so they compute the same loss.
    mesh: `jax.sharding.Mesh` or None (student minibatches data-parallel over it).
    modality: the data's (`jaxdd.augment.check_modality`; None: images). TM on video
      clips / voxels (an extension: the authors run no TM there) is the same loss on 5-D
      batches; DSA is frame-wise on video and 'none' only on voxels.
    """
    from jaxdd.augment import make_augment
    from jaxdd.objective import Objective

    o = ocfg
    needed = trajectory_epochs(o)
    have = int(jax.tree.leaves(trajectories)[0].shape[1])
    if have < needed:
        raise ValueError(f"TM reads expert epochs 0..{needed - 1} (max_start_epoch + "
                         f"expert_epochs = {needed}) but the trajectories hold {have}; "
                         "load more epochs or lower max_start_epoch / expert_epochs")
    augment = make_augment(dsa_strategy, modality=modality)
    gamma = float(o.get("gamma", 0.0))
    loss = make_loss(apply_fn, syn_steps=int(o.syn_steps),
                     batch_syn=int(o.get("batch_syn", 0) or 0), augment=augment,
                     remat=bool(o.get("remat", True)), gamma=gamma, mesh=mesh,
                     microbatch=int(o.get("microbatch", 0) or 0))
    num_experts = int(jax.tree.leaves(trajectories)[0].shape[0])
    max_start = int(o.max_start_epoch)
    ee = int(o.expert_epochs)
    if host:
        trajs = jax.tree.map(lambda t: t if isinstance(t, np.ndarray) else np.asarray(t),
                             trajectories)
        data = {}
    else:
        data = {"trajs": jax.tree.map(jnp.asarray, trajectories)}
    real_bs = int(o.get("real_batch", 256))
    if gamma > 0:
        if real_images is None:
            raise ValueError("TM with gamma > 0 (the real-guided term) needs real_images "
                             "and real_labels")
        data["real_images"] = jnp.asarray(real_images)
        data["real_labels"] = jnp.asarray(real_labels)

    pick = jax.jit(lambda key: draw_expert_start(key, num_experts, max_start))

    def feed(key):
        """Host side: the (start, target) snapshots the key selects (numpy copies)."""
        e, s = (int(v) for v in jax.device_get(pick(key)))
        return {"start": jax.tree.map(lambda t: np.array(t[e, s]), trajs),
                "target": jax.tree.map(lambda t: np.array(t[e, s + ee]), trajs)}

    def sample_ctx(key, syn_lr, data, obj_state=()):
        del obj_state  # stateless
        kr = jax.random.split(key, 3)[2]
        if "start" in data:  # fed by the loop from the host (host=True)
            start, target = data["start"], data["target"]
        else:
            e, s = draw_expert_start(key, num_experts, max_start)
            start = jax.tree.map(lambda t: t[e, s], data["trajs"])
            target = jax.tree.map(lambda t: t[e, s + ee], data["trajs"])
        ri = rl = None
        if gamma > 0:
            n = data["real_images"].shape[0]
            idx = jax.random.choice(kr, n, (min(real_bs, n),), replace=False)
            ri, rl = data["real_images"][idx], data["real_labels"][idx]
        return TMContext(start=start, target=target, syn_lr=syn_lr, real_images=ri,
                         real_labels=rl)

    return Objective(loss=loss, sample_ctx=sample_ctx, data=data, learn_lr=True,
                     feed=feed if host else None)


def draw_expert_start(key, num_experts: int, max_start: int):
    """(expert, start epoch) of an iteration from its context key (jit-able): the key is
    split in 3 (expert, start, real batch), expert ~ U{0..num_experts-1}, start ~
    U{0..max_start-1}."""
    ke, ks, _ = jax.random.split(key, 3)
    return (jax.random.randint(ke, (), 0, num_experts),
            jax.random.randint(ks, (), 0, max_start))


def host_bytes(trajectories, ocfg) -> dict:
    """Memory of TM's expert data: the trajectories held on the host and the two snapshots
    (start, target) a step brings to the device."""
    leaves = jax.tree.leaves(trajectories)
    snap = sum(int(np.prod(t.shape[2:])) * np.dtype(t.dtype).itemsize for t in leaves)
    total = sum(int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize for t in leaves)
    return {"trajectories_host": total, "snapshot": snap, "per_iteration_device": 2 * snap}


def build(setup) -> "Objective":
    """TM from what the loop prepared (`jaxdd.objective.Setup`: cfg, apply_fn, train_ds and
    the expert trajectories, loaded or built by the loop)."""
    if setup.trajectories is None:
        raise ValueError("TM needs expert trajectories: the loop loads them into "
                         "Setup.trajectories (jaxdd.assemble.load_or_build_trajectories)")
    o = setup.cfg.objective
    real = float(o.get("gamma", 0.0)) > 0
    return make_objective(setup.apply_fn, setup.trajectories, o,
                          dsa_strategy=setup.cfg.dsa_strategy,
                          real_images=setup.train_ds.images if real else None,
                          real_labels=setup.train_ds.labels if real else None,
                          mesh=getattr(setup, "mesh", None),
                          modality=getattr(setup.train_ds, "modality", None))
