"""CFM (UniDD curriculum frequency matching) as a pure objective: the recover loss.

    loss(key, syn_images, syn_labels, ctx) = CE(teacher(aug(x)), y)
                                             + eta * sum_l (L_filter,l + L_signal,l)

aug = RandomResizedCrop + flip + random roll (`recover_augment`, differentiable, one draw
per batch as the public code); the teacher runs in eval mode (BatchNorm running averages)
and the INPUT of every conv layer (ResNet shortcuts excluded) is recorded
(`conv_inputs`); per layer the batch statistics (Psi_s, Phi_s) are mixed with the EMU cache
of the earlier class-batches (weight 1/b) and matched to the real (Psi, Phi) through the
HFM ((Psi + beta I)^-1) or LFM (Psi) filter (`feature_losses`, the pieces of
`jaxdd.objective.spectral`, parity: tests/test_parity_unidd.py).

ctx (`CFMContext`): the teacher's variables, the real statistics, the EMU cache, beta and
the 1-based batch number b. The teacher, its training (squeeze) and the real-statistics
pass are prepared by the LOOP (`jaxdd.distill` -> `jaxdd.teacher.prepare_teacher`) and handed
to `build` in `Setup.teacher`; this module imports neither the loop nor `jaxdd.teacher`
(`jaxdd.teacher`, the stages around this objective, imports its pieces from here).

The curriculum in the generic loop (`build`): the synthetic set is recovered as m
class-batches, batch b = the b-th instance of every class in `aux['labels']` order (m =
instances per class: IPC for pixels), one after the other: batch b owns iterations
[b T / m, (b + 1) T / m) of the T = cfg.iterations (UniDD: T = IPC x recover iterations).
The objective's `select(step)` tells the loop to decode only batch b's instances; with a
per-instance optimizer (`opt.syn.per_instance`, the cfm configs) each batch starts a fresh
Adam and its cosine schedule (per-instance step counts), as UniDD's new optimizer per batch.
beta_b = beta (1 + cos(pi b / m)) / 2 (`spectral.curriculum_beta`); after the last
iteration of batch b, `post_step` folds the statistics of batch b (the updated instances,
augmented once) into the EMU cache with weight 1/(b + 1) (the public code folds the last
iteration's statistics, before that iteration's update: one optimizer step apart).
Not done by the generic loop: clipping pixels to the valid range after each step (the
parameterizations have no pixel projection).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdd.losses import cross_entropy
from jaxdd.objective import spectral


class CFMContext(NamedTuple):
    """Per-iteration inputs of the CFM recover loss (a pytree).

    variables: the teacher's {'params', 'batch_stats'} (eval mode);
    real: {'psi': [(d, d)], 'phi': [(d, c) or (d,)]} real statistics per recorded layer;
    cache: the EMU cache of the batches recovered before (same structure as real);
    beta: the filter's beta (curriculum applied); b: 1-based batch number (EMU weight 1/b).
    """
    variables: Any
    real: Any
    cache: Any
    beta: jax.Array
    b: jax.Array


# ============================================================================ augmentation

def rrc_params(key, n, height, width, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
               attempts=10):
    """torchvision RandomResizedCrop.get_params, vectorized over n draws.

    Returns int32 arrays (i, j, h, w), each (n,): crop top, left, height, width.
    Up to `attempts` proposals per draw (area ~ U(scale) * H * W, log-aspect uniform in
    log(ratio)); the first valid one is taken, else the central fallback crop.
    """
    ka, kr, ki, kj = jax.random.split(key, 4)
    area = float(height * width)
    t_area = area * jax.random.uniform(ka, (n, attempts), minval=scale[0], maxval=scale[1])
    logr = jax.random.uniform(kr, (n, attempts), minval=math.log(ratio[0]),
                              maxval=math.log(ratio[1]))
    ar = jnp.exp(logr)
    w = jnp.round(jnp.sqrt(t_area * ar)).astype(jnp.int32)
    h = jnp.round(jnp.sqrt(t_area / ar)).astype(jnp.int32)
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = jnp.argmax(valid, axis=1)
    anyv = valid.any(axis=1)
    pick = lambda a: jnp.take_along_axis(a, first[:, None], axis=1)[:, 0]
    w, h = pick(w), pick(h)
    ui = pick(jax.random.uniform(ki, (n, attempts)))
    uj = pick(jax.random.uniform(kj, (n, attempts)))
    i = jnp.floor(ui * (height - h + 1)).astype(jnp.int32)
    j = jnp.floor(uj * (width - w + 1)).astype(jnp.int32)
    # fallback: whole image if its aspect is within `ratio`, else the central crop
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = height, int(round(height * max(ratio)))
    else:
        fw, fh = width, height
    fi, fj = (height - fh) // 2, (width - fw) // 2
    i = jnp.where(anyv, i, fi)
    j = jnp.where(anyv, j, fj)
    h = jnp.where(anyv, h, fh)
    w = jnp.where(anyv, w, fw)
    return i, j, h, w


def _interp_matrix(start, length, in_size, out_size):
    """Bilinear resize (align_corners=False, PyTorch) of a crop as a matrix.

    start, length: int arrays (n,) -> (n, out_size, in_size) with out = R @ in resampling
    rows [start, start + length) of the input to out_size rows.
    """
    u = jnp.arange(out_size, dtype=jnp.float32)
    lf = length.astype(jnp.float32)[:, None]
    src = (u[None, :] + 0.5) * lf / out_size - 0.5
    src = jnp.maximum(src, 0.0)
    y0 = jnp.minimum(jnp.floor(src), lf - 1.0)
    lam = src - y0
    y1 = jnp.minimum(y0 + 1.0, lf - 1.0)
    s = start.astype(jnp.float32)[:, None]
    a0 = jax.nn.one_hot((s + y0).astype(jnp.int32), in_size)
    a1 = jax.nn.one_hot((s + y1).astype(jnp.int32), in_size)
    return (1.0 - lam)[..., None] * a0 + lam[..., None] * a1


def crop_resize(x, i, j, h, w):
    """Crop (i, j, h, w) of every image (params (n,) or (1,) broadcast) resized back to the
    input size with bilinear interpolation. x (n, H, W, C) -> (n, H, W, C); linear in x."""
    n, hh, ww, _ = x.shape
    ry = _interp_matrix(i, h, hh, hh)
    rx = _interp_matrix(j, w, ww, ww)
    ry = jnp.broadcast_to(ry, (n,) + ry.shape[1:])
    rx = jnp.broadcast_to(rx, (n,) + rx.shape[1:])
    return jnp.einsum("nuh,nhwc,nvw->nuvc", ry, x, rx, precision=jax.lax.Precision.HIGHEST)


def random_resized_crop(key, x, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                        per_sample=True):
    """RandomResizedCrop to the input size (differentiable w.r.t. x).

    per_sample=False: one crop for the whole batch (torchvision on a 4-D tensor)."""
    n, hh, ww, _ = x.shape
    i, j, h, w = rrc_params(key, n if per_sample else 1, hh, ww, tuple(scale), tuple(ratio))
    return crop_resize(x, i, j, h, w)


def random_flip(key, x, per_sample=True, p=0.5):
    """Horizontal flip with probability p (per image, or one coin for the batch)."""
    shape = (x.shape[0], 1, 1, 1) if per_sample else ()
    flip = jax.random.uniform(key, shape) < p
    return jnp.where(flip, x[:, :, ::-1, :], x)


def random_roll(key, x, max_shift):
    """torch.roll by (s1, s2) on (H, W), s ~ U{0..max_shift}, one draw for the batch."""
    if max_shift <= 0:
        return x
    s = jax.random.randint(key, (2,), 0, int(max_shift) + 1)
    return jnp.roll(x, (s[0], s[1]), axis=(1, 2))


def recover_augment(key, x, *, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), flip=True,
                    jitter=4, per_sample=False):
    """The recover augmentation: RandomResizedCrop -> flip -> random roll (differentiable)."""
    k1, k2, k3 = jax.random.split(key, 3)
    x = random_resized_crop(k1, x, scale, ratio, per_sample)
    if flip:
        x = random_flip(k2, x, per_sample)
    return random_roll(k3, x, jitter)

# ============================================================================ feature capture

def _is_conv(module) -> bool:
    from jaxdd.models.conv import Conv
    return isinstance(module, (Conv, nn.Conv))


def conv_inputs(model, variables, x, *, exclude: Sequence[str] = ("shortcut",), train=False):
    """Run `model` and record the INPUT of every conv layer, in call order.

    Uses `flax.linen.intercept_methods` (the network code is untouched): every `__call__` of
    a conv module (jaxdd.models.conv.Conv or flax.linen.Conv) whose path contains none of
    the `exclude` substrings records its first argument.

    Returns (logits, names: tuple of '/'-joined module paths, feats: list of (N, h, w, d)).
    Pure from the outside (the recording list lives inside the call); jit/grad-able.
    """
    names, feats = [], []

    def interceptor(next_fun, args, kwargs, context):
        mod = context.module
        if context.method_name == "__call__" and _is_conv(mod):
            name = "/".join(str(p) for p in mod.path)
            if not any(e and e in name for e in exclude):
                names.append(name)
                feats.append(args[0])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        logits = model.apply(variables, x, train=train)
    return logits, tuple(names), feats

# ============================================================================ statistics and losses

def synthetic_statistics(feats, labels, num_classes, signal="class"):
    """Per-layer (Psi_s, Phi_s) of one synthetic batch (lists of jnp arrays)."""
    psi = [spectral.ffc(f) for f in feats]
    phi = [spectral.signal(f, labels, num_classes, signal) for f in feats]
    return psi, phi


def feature_losses(real, cache, feats, labels, beta, b, *, num_classes, filter="hfm",
                   signal="class", ema=True):
    """CFM's feature term of one synthetic batch, summed over layers (pure, differentiable).

    Follows the authors' hook.py `post_hook_fn` per hooked layer: Psi_s = biased covariance
    of the batch's conv input over B*h*w positions; signal 'mean' (channel mean, (d,)) or
    'class' (1/B X'^T onehot(Y), (d, classes)); with `ema` the EMU mix
    (1 - 1/b) cache + (1/b) batch (b 1-based) of both; then
    L_filter = ||F(Psi) - F(Psi_s)||_F and L_signal = ||F(Psi) Phi - F(Psi_s) Phi_s||_F
    (norms, not squared; F = solve(Psi + beta I, I) for 'hfm', Psi for 'lfm').

    real / cache: {'psi': [...], 'phi': [...]} per layer; feats: list of (B, h, w, d).
    Returns (L_filter summed over layers, L_signal summed, this batch's statistics
    {'psi', 'phi'} (what the authors' `ema_update` folds into the cache)).
    """
    psi_b, phi_b = synthetic_statistics(feats, labels, num_classes, signal)
    batch = {"psi": psi_b, "phi": phi_b}
    cur = spectral.emu(cache, batch, b) if ema else batch
    lf = ls = 0.0
    for pr, fr, ps, fs in zip(real["psi"], real["phi"], cur["psi"], cur["phi"]):
        a, c = spectral.cfm_losses(pr, fr, ps, fs, kind=filter, beta=beta)
        lf, ls = lf + a, ls + c
    return lf, ls, batch


def zero_cache(real):
    """An all-zero EMU cache shaped like the real statistics {'psi': [...], 'phi': [...]}."""
    return {"psi": [jnp.zeros_like(jnp.asarray(p)) for p in real["psi"]],
            "phi": [jnp.zeros_like(jnp.asarray(p)) for p in real["phi"]]}


def real_targets(stats, signal="class"):
    """The real {'psi', 'phi'} used by recover from `real_statistics` output."""
    return {"psi": [jnp.asarray(p) for p in stats["psi"]],
            "phi": [jnp.asarray(p) for p in (stats["phi"] if signal == "class"
                                              else stats["mean"])]}


def recover_terms(model, variables, key, x, labels, real, cache, beta, b, *, num_classes,
                  filter="hfm", signal="class", eta=0.1, ema=True, aug=None,
                  exclude=("shortcut",)):
    """The recover loss of one synthetic batch and its parts (pure, differentiable in x).

    Returns (loss, (ce, L_filter, L_signal, batch statistics {'psi', 'phi'}
    (stop-gradient'ed: what the EMU cache folds in))).
    """
    xa = recover_augment(key, x, **dict(aug or {}))
    logits, _, feats = conv_inputs(model, variables, xa, exclude=exclude)
    ce = cross_entropy(logits, labels)
    lf, ls, batch = feature_losses(real, cache, feats, labels, beta, b,
                                   num_classes=num_classes, filter=filter, signal=signal,
                                   ema=ema)
    return ce + eta * (lf + ls), (ce, lf, ls, jax.lax.stop_gradient(batch))


def hard_labels(labels):
    """int labels (N,) from int labels or soft (N, classes) ones (argmax)."""
    labels = jnp.asarray(labels)
    return jnp.argmax(labels, -1).astype(jnp.int32) if labels.ndim == 2 else labels


def make_loss(model, *, num_classes, filter="hfm", signal="class", eta=0.1, ema=True,
              aug=None, exclude=("shortcut",)):
    """The pure CFM loss(key, syn_images, syn_labels, ctx: CFMContext) -> scalar."""
    kw = dict(num_classes=int(num_classes), filter=filter, signal=signal, eta=float(eta),
              ema=bool(ema), aug=dict(aug or {}), exclude=tuple(exclude))

    def loss(key, syn_images, syn_labels, ctx: CFMContext):
        val, _ = recover_terms(model, ctx.variables, key, syn_images, hard_labels(syn_labels),
                               ctx.real, ctx.cache, ctx.beta, ctx.b, **kw)
        return val

    return loss


# ============================================================================ the objective

def default_config():
    """cfg.objective for CFM (UniDD's published recover settings; configs/cfm_*.py).

    teacher: the squeezed network (name, overrides); squeeze: its training (SGD 0.1,
    momentum 0.9, wd 5e-4, cosine, batch 128, RandomCrop(pad) + flip; `dir` '' = the run's
    workdir, set it to share a teacher between runs); statistics: the real pass (psi 'batch'
    = the authors' average of per-batch covariances, batch 128); recover: filter, beta,
    curriculum, signal, ema, eta and the recover augmentation. The recover iterations per
    class-batch are cfg.iterations / (instances per class); the optimizer is cfg.opt.syn.
    """
    import ml_collections as mlc
    c = mlc.ConfigDict()
    c.name = "cfm"
    c.teacher = mlc.ConfigDict(dict(name="ConvNetD3BN", overrides=mlc.ConfigDict()))
    c.squeeze = mlc.ConfigDict(dict(dir="", seed=0, epochs=200, batch_size=128, lr=0.1,
                                    momentum=0.9, weight_decay=5e-4, crop_pad=4, flip=True,
                                    checkpoint_every=10))
    c.statistics = mlc.ConfigDict(dict(psi="batch", batch_size=128, exclude=("shortcut",)))
    c.filter = "hfm"
    c.beta = 0.1
    c.curriculum = True
    c.signal = "mean"
    c.ema = True
    c.eta = 0.1
    c.rrc_scale = (0.08, 1.0)
    c.rrc_ratio = (3.0 / 4.0, 4.0 / 3.0)
    c.flip = True
    c.jitter = 4
    c.per_sample_aug = False
    return c


def needs_teacher(objective_cfg) -> bool:
    """The loop prepares `Setup.teacher` (squeeze + real statistics) for this objective."""
    del objective_cfg
    return True


def evaluation_protocol(objective_cfg) -> str:
    """CFM sets are scored by relabelling: students on the teacher's soft labels."""
    del objective_cfg
    return "soft_label"


def aug_kwargs(o):
    return dict(scale=tuple(o.rrc_scale), ratio=tuple(o.rrc_ratio), flip=bool(o.flip),
                jitter=int(o.jitter), per_sample=bool(o.per_sample_aug))


def class_batches(labels, num_classes: int):
    """(m, classes) int32: row b = the index of the b-th instance of every class.

    Raises ValueError unless every class has the same number m >= 1 of instances."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    members = [np.flatnonzero(labels == c) for c in range(int(num_classes))]
    counts = {len(m) for m in members}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"CFM recovers class-batches (one instance per class each): every "
                         f"class needs the same number of synthetic instances, got "
                         f"{[len(m) for m in members]}; use a balanced parameterization "
                         "config")
    return np.stack(members, axis=1).astype(np.int32)


def build(setup) -> "Objective":
    """CFM through the generic loop (module docstring: class-batches, curriculum, EMU).

    Needs `setup.teacher` = dict(model, variables, stats) (`jaxdd.teacher.prepare_teacher`, run
    by the loop) and `setup.syn_labels` (the synthetic instances' labels).
    """
    from jaxdd.objective import Objective

    cfg, o = setup.cfg, setup.cfg.objective
    t = setup.teacher
    if t is None:
        raise ValueError("the CFM objective needs the teacher and the real statistics in "
                         "Setup.teacher (the loop prepares them: jaxdd.teacher.prepare_teacher)")
    if setup.syn_labels is None:
        raise ValueError("the CFM objective needs Setup.syn_labels (the synthetic instances' "
                         "labels) to schedule its class-batches")
    nc = int(setup.train_ds.num_classes)
    table = class_batches(setup.syn_labels, nc)
    m, total = int(table.shape[0]), int(cfg.iterations)
    if total < m:
        raise ValueError(f"cfg.iterations = {total} is fewer than the {m} class-batches of "
                         "CFM (instances per class); use at least one iteration per batch")
    teacher, exclude = t["model"], tuple(o.statistics.get("exclude", ("shortcut",)))
    signal, ema, aug = str(o.signal), bool(o.ema), aug_kwargs(o)
    loss = make_loss(teacher, num_classes=nc, filter=str(o.filter), signal=signal,
                     eta=float(o.eta), ema=ema, aug=aug, exclude=exclude)
    mesh = getattr(setup, "mesh", None)
    from jaxdd import sharding
    if sharding.size(mesh) > 1:
        # the class-batch (one instance per class) and the teacher forward over it:
        # data-parallel over the mesh when the batch divides by the device count
        base_loss = loss

        def loss(key, syn_images, syn_labels, ctx):
            x = sharding.constrain(syn_images, sharding.batch(mesh, syn_images.shape))
            return base_loss(key, x, syn_labels, ctx)

    def _split(x):
        return sharding.constrain(x, sharding.batch(mesh, x.shape))
    real = real_targets(t["stats"], signal)
    data = {"variables": t["variables"], "real": real}
    table_j = jnp.asarray(table)

    def batch_of(step):
        return jnp.minimum(jnp.asarray(step, jnp.int32) * m // total, m - 1)

    def select(step):
        return table_j[batch_of(step)]

    def init_state(key):
        del key
        return {"step": jnp.int32(0), "cache": zero_cache(real)}

    def sample_ctx(key, syn_lr, data, obj_state):
        del key, syn_lr
        b = batch_of(obj_state["step"])
        beta = spectral.curriculum_beta(float(o.beta), b.astype(jnp.float32), float(m),
                                        bool(o.curriculum))
        return CFMContext(variables=data["variables"], real=data["real"],
                          cache=obj_state["cache"], beta=jnp.asarray(beta, jnp.float32),
                          b=(b + 1).astype(jnp.float32))

    def post_step(key, obj_state, images, labels, data, step):
        b = batch_of(step)
        last = (step + 1 >= total) | (batch_of(step + 1) != b)

        def fold(cache):
            xa = _split(recover_augment(key, _split(images), **aug))
            _, _, feats = conv_inputs(teacher, data["variables"], xa, exclude=exclude)
            psi, phi = synthetic_statistics(feats, hard_labels(labels), nc, signal)
            return spectral.emu(cache, {"psi": psi, "phi": phi},
                                (b + 1).astype(jnp.float32))

        cache = obj_state["cache"]
        if ema:
            cache = jax.lax.cond(last, fold, lambda c: c, cache)
        return {"step": jnp.asarray(step, jnp.int32) + 1, "cache": cache}

    return Objective(loss=loss, sample_ctx=sample_ctx, data=data, learn_lr=False,
                     init_state=init_state, post_step=post_step, select=select)
