"""CFM (curriculum frequency matching, UniDD): the stages around the CFM objective.

CFM runs through the generic loop like every objective, with any parameterization:

    python launch/distill.py --config=configs/cfm_{pixel,fred,ddif,nsd}.py

(`launch/cfm.py` is the same command with configs/cfm_pixel.py as its default, plus the
spectral diagnostic). The loop (`jaxdd.distill.Run`) calls `prepare_teacher` before its
first iteration, optimizes the synthetic set with the pure recover loss of
`jaxdd.objective.cfm` (class-batch curriculum, HFM/LFM filters, EMU as objective state) and
relabels with `evaluate_soft` at the end. This module holds what is CFM-specific around it
(SRe2L-style pipeline, REFERENCE.md "UniDD / CFM"):

1. squeeze (`train_teacher`, on the training core `jaxdd.train`): one teacher on the full
   training set (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine per epoch, batch 128,
   RandomCrop(pad 4) + flip), cached with its test accuracy (`squeeze_stage`).
2. statistics (`real_statistics`, cached by `statistics_stage`): one pass over the
   training set through the teacher in eval mode; for the INPUT of every conv layer (ResNet
   shortcut convs excluded, the public code's 'downsample' filter) the channel covariance
   Psi over the N*H*W positions (biased; by default the authors' average of per-batch
   covariances, batch 128), the channel mean, and Phi = 1/n X'^T Y (`batch_moments`,
   `MomentMerger`; `jaxdd.objective.spectral`).
3. recover: the generic loop with `jaxdd.objective.cfm` (module docstring there).
4. relabel / evaluate (`evaluate_soft`, on the training core): K fresh students trained
   together (vmap) on the synthetic images with KL to the teacher's softmax at temperature
   T (online soft labels of the same RandomResizedCrop + flip + CutMix batch),
   AdamW(1e-3, wd 1e-2); the FINAL test accuracy, mean +- std over the K students.
`distill_config` builds the configs/cfm_*.py configs; `spectral_report` (and
`run_spectral_report` for a CFM workdir) is the FFC/FLC diagnostic.

The accuracies are NOT comparable with the TM protocol (hard labels, SGD, DSA): the
students here learn from the teacher's soft labels.

Behaviour of the public code (bdy9527/UniDD @ 4afb992) followed here, with the paper's
differences (parity: tests/test_parity_unidd.py runs the same inputs through hook.py):
* the real Psi: the public code (hook.py pre_hook_fn, synthesis_small.py: batch 128, dataset
  order) averages per-batch biased covariances weighted by n_b / N; that is the default
  (`statistics.psi='batch'`, `statistics.batch_size=128`). The paper's "covariance over all
  N*H*W positions" is `statistics.psi='exact'` (merged in float64, batch-independent).
* the recover augmentation, losses, EMU and signal: `jaxdd.objective.cfm`.
* evaluation lr schedule: the public code multiplies lr by 0.5 (1 + cos(pi e / (2 E)))
  per epoch e (ends at lr / 2): schedule 'half_cosine' (default); 'cosine' decays to 0.
  The KL loss is not multiplied by T^2 (public code). The public code reports the best test
  accuracy over epochs > 0.8 E; jaxdd reports the final one.
* a last partial minibatch is dropped in teacher training (BatchNorm) and completed with
  images from the start of the permutation in evaluation (same number of steps per epoch
  as PyTorch's drop_last=False, always full batches).
* the pixel set starts from the first IPC images of each class in training-set order
  (`param.init='first'`, the authors' `get_one_ipc`).

Files (in cfg.objective.squeeze.dir, or the run's workdir; a cached file made with another
config raises):
    teacher.msgpack       teacher params + batch_stats + test accuracy + the config it was
                          made with
    teacher_ckpt.msgpack  in-progress teacher training state (every N epochs; resumes)
    stats.msgpack         per-layer Psi, Phi, mean of the real data
"""
from __future__ import annotations

import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdd import io as _io
from jaxdd.losses import cross_entropy, kl_divergence
from jaxdd.objective import spectral
# the pure pieces (recover augmentation, conv-input capture, statistics, the recover loss)
# live in the CFM objective; re-exported here for the stages and their callers
from jaxdd.objective.cfm import (  # noqa: F401
    conv_inputs, crop_resize, feature_losses, random_flip, random_resized_crop, random_roll,
    real_targets, recover_augment, recover_terms, rrc_params, synthetic_statistics,
    zero_cache)
from jaxdd.train import make_trainer, random_orders

# ============================================================================ augmentation


def random_crop_flip(key, x, pad, fill=None, flip=True):
    """RandomCrop(size, padding=pad) + horizontal flip, per image (teacher training).

    fill: (C,) padding value per channel (the normalized value of a black pixel, as
    torchvision pads the PIL image before ToTensor/Normalize), default 0."""
    n, hh, ww, c = x.shape
    k1, k2 = jax.random.split(key)
    if pad > 0:
        fillv = jnp.zeros((c,), x.dtype) if fill is None else jnp.asarray(fill, x.dtype)
        xp = jnp.broadcast_to(fillv, (n, hh + 2 * pad, ww + 2 * pad, c))
        xp = xp.at[:, pad:pad + hh, pad:pad + ww, :].set(x)
        off = jax.random.randint(k1, (n, 2), 0, 2 * pad + 1)
        x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (hh, ww, c)))(
            xp, off)
    if flip:
        x = random_flip(k2, x, per_sample=True)
    return x


def cutmix(key, x, alpha=1.0):
    """CutMix of the public code: one box for the batch (side sqrt(1 - lam) of the image,
    lam ~ Beta(alpha, alpha), centre uniform, clipped), filled from a permuted batch."""
    n, hh, ww, _ = x.shape
    kl, kp, kx, ky = jax.random.split(key, 4)
    # Beta(1, 1) is U(0, 1) (the default; avoids compiling the gamma sampler)
    lam = (jax.random.uniform(kl) if float(alpha) == 1.0
           else jax.random.beta(kl, alpha, alpha))
    perm = jax.random.permutation(kp, n)
    rat = jnp.sqrt(1.0 - lam)
    cut_h = jnp.floor(hh * rat).astype(jnp.int32)
    cut_w = jnp.floor(ww * rat).astype(jnp.int32)
    cy = jax.random.randint(ky, (), 0, hh)
    cx = jax.random.randint(kx, (), 0, ww)
    y1, y2 = jnp.clip(cy - cut_h // 2, 0, hh), jnp.clip(cy + cut_h // 2, 0, hh)
    x1, x2 = jnp.clip(cx - cut_w // 2, 0, ww), jnp.clip(cx + cut_w // 2, 0, ww)
    rows = jnp.arange(hh)[:, None]
    cols = jnp.arange(ww)[None, :]
    box = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)
    return jnp.where(box[None, :, :, None], x[perm], x)


# ============================================================================ squeeze

def predict(model, variables, images, batch_size=1000):
    """Logits of a model (eval mode) over a large array, batched. -> numpy (N, classes)."""
    fn = _predict_fn(model)
    out = []
    for s in range(0, images.shape[0], batch_size):
        out.append(np.asarray(fn(variables, jnp.asarray(images[s:s + batch_size]))))
    return np.concatenate(out)


@functools.lru_cache(maxsize=8)
def _predict_fn(model):
    return jax.jit(lambda v, x: model.apply(v, x, train=False))


def accuracy_of(model, variables, images, labels, batch_size=1000) -> float:
    logits = predict(model, variables, images, batch_size)
    return float((logits.argmax(-1) == np.asarray(labels)).mean())


@functools.lru_cache(maxsize=8)
def make_teacher_fns(model, *, num_train, epochs, batch_size=128, lr=0.1, momentum=0.9,
                     weight_decay=5e-4, crop_pad=4, fill=None, flip=True):
    """(trainer, train_epoch) for the squeeze stage, on the training core (``jaxdd.train``).

    SGD(lr, momentum) with PyTorch-style coupled weight decay, cosine annealing of the lr
    per epoch over `epochs` (CosineAnnealingLR(T_max=epochs)), batch `batch_size` (last
    partial batch dropped), RandomCrop(pad) + flip per image, cross-entropy; BatchNorm
    statistics carried. train_epoch(state (K=1 stacked TrainState), key, images, labels)
    -> (state, mean loss, mean train accuracy); epoch key -> (k_perm, k_aug) = split(key),
    order permutation(k_perm, N), step s augmented with split(k_aug, steps)[s].
    """
    steps = max(num_train // batch_size, 1)
    sched = lambda count: lr * 0.5 * (1.0 + jnp.cos(jnp.pi * (count // steps) / epochs))
    tx = optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(sched, momentum=momentum))
    fill_t = None if fill is None else tuple(float(f) for f in np.asarray(fill).ravel())
    trainer = make_trainer(model, tx, loss=cross_entropy, batch_size=batch_size,
                           augment=lambda k, x: random_crop_flip(k, x, crop_pad, fill_t, flip),
                           last_batch="drop")

    @jax.jit
    def train_epoch(state, key, images, labels):
        kperm, kaug = jax.random.split(key)
        orders = jax.random.permutation(kperm, images.shape[0])[None]
        step_keys = jax.random.split(kaug, trainer.num_steps(images.shape[0]))[None]
        state, met = trainer.epoch(state, orders, step_keys, images, labels)
        return state, met["loss"].mean(), met["acc"].mean()

    return trainer, train_epoch


def train_teacher(key, model, train_images, train_labels, *, epochs, batch_size=128, lr=0.1,
                  momentum=0.9, weight_decay=5e-4, crop_pad=4, fill=None, flip=True,
                  ckpt_path=None, checkpoint_every=10, progress=True, log=None):
    """The squeeze stage: train one teacher. Returns its variables {'params', ...}.

    With `ckpt_path`, the training state is written every `checkpoint_every` epochs and a
    re-run resumes from it (same key -> same result as an uninterrupted run).
    """
    images = jnp.asarray(train_images)
    labels = jnp.asarray(train_labels)
    trainer, train_epoch = make_teacher_fns(
        model, num_train=images.shape[0], epochs=epochs, batch_size=batch_size, lr=lr,
        momentum=momentum, weight_decay=weight_decay, crop_pad=crop_pad,
        fill=None if fill is None else tuple(float(f) for f in np.asarray(fill).ravel()),
        flip=flip)  # cached (hashable arguments): one compile per teacher setting
    kinit, ktrain = jax.random.split(key)
    state = trainer.init_one(kinit, images[:2])
    start = 0
    if ckpt_path and os.path.exists(ckpt_path):
        extra = {k: v for k, v in state.variables.items() if k != "params"}
        # {'params', 'state': {'batch_stats'?}, 'opt', 'epoch'} (jaxdd.io.save_state)
        restored = _io.load_state(ckpt_path, {"params": state.params, "state": extra,
                                              "opt": state.opt_state, "epoch": 0})
        state = state.replace(params=restored["params"], opt_state=restored["opt"],
                              batch_stats=restored["state"].get("batch_stats", {}))
        start = int(restored["epoch"])
        print(f"[cfm] resuming teacher training at epoch {start}/{epochs}")
    state = jax.tree.map(lambda a: jnp.asarray(a)[None], state)  # K = 1 network
    bar = tqdm(total=epochs, initial=start, desc="squeeze", disable=not progress)
    for e in range(start, epochs):
        state, loss, acc = train_epoch(state, jax.random.fold_in(ktrain, e), images, labels)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{float(acc):.3f}")
        if log is not None:
            log({"stage": "squeeze", "epoch": e + 1, "loss": float(loss),
                 "train_acc": float(acc)})
        if ckpt_path and ((e + 1) % checkpoint_every == 0) and e + 1 < epochs:
            one = jax.tree.map(lambda a: a[0], state)
            extra = {k: v for k, v in one.variables.items() if k != "params"}
            _io.save_state(ckpt_path, {"params": one.params, "state": extra,
                                       "opt": one.opt_state, "epoch": e + 1})
    bar.close()
    return jax.tree.map(lambda a: a[0], state.variables)


# ============================================================================ statistics

def batch_moments(feats, y, w, num_classes):
    """Per-layer moments of one (padded) batch of conv-input features (pure, jit-able).

    feats: list of (n, h, w, d) features; y: int (n,); w: (n,) 1/0 weights (padding 0).
    Returns a list of (cnt, mean, m2, cls) per layer: cnt = sum(w) h w positions, mean (d,)
    over those positions, m2 (d, d) = sum of centered outer products (so m2 / cnt is the
    batch's biased covariance, the authors' `torch.cov(x, correction=0)` over B*H*W),
    cls (d, classes) = sum_i w_i xbar_i onehot(y_i)^T (xbar_i: spatial mean of image i).
    """
    out = []
    onehot = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
    for f in feats:
        xf = f.reshape(f.shape[0], -1, f.shape[-1])
        npos = xf.shape[1]
        cnt = w.sum() * npos
        mean = jnp.einsum("n,npd->d", w, xf) / jnp.maximum(cnt, 1.0)
        xc = xf - mean
        m2 = jnp.einsum("n,npd,npe->de", w, xc, xc, precision=jax.lax.Precision.HIGHEST)
        xp = xf.mean(axis=1)
        cls = jnp.einsum("n,nd,nk->dk", w, xp, onehot, precision=jax.lax.Precision.HIGHEST)
        out.append((cnt, mean, m2, cls))
    return out


PSI_MERGES = ("batch", "exact")


class MomentMerger:
    """Merges `batch_moments` outputs over the batches of one pass (float64, numpy).

    merge='batch' (the authors' hook.py `pre_hook_fn`): Psi = sum_b (n_b / N) cov_b, the
    average of the per-batch biased covariances weighted by batch size (each batch centered
    at its own mean; the result depends on the batch size and order: the authors use 128,
    in dataset order). merge='exact': the biased covariance of all N*h*w positions (Chan et
    al.'s parallel update; independent of batching). Both: mean = overall mean,
    Phi = (1/N) sum_i xbar_i onehot(y_i)^T (hook.py: running_class_mean).
    """

    def __init__(self, merge="batch"):
        if merge not in PSI_MERGES:
            raise ValueError(f"unknown Psi merge {merge!r}; expected one of {PSI_MERGES}")
        self.merge = merge
        self.acc = None
        self.n = 0

    def add(self, out, n_images):
        if self.acc is None:
            self.acc = [[0.0, np.zeros_like(np.asarray(mu), np.float64),
                         np.zeros_like(np.asarray(m2), np.float64),
                         np.zeros_like(np.asarray(cl), np.float64)] for (_, mu, m2, cl) in out]
        for a, (cnt, mu, m2, cl) in zip(self.acc, out):
            cnt = float(cnt)
            mu, m2 = np.asarray(mu, np.float64), np.asarray(m2, np.float64)
            na = a[0]
            tot = na + cnt
            delta = mu - a[1]
            a[1] = a[1] + delta * (cnt / tot)
            if self.merge == "exact":
                a[2] = a[2] + m2 + np.outer(delta, delta) * (na * cnt / tot)
            else:  # sum_b n_b cov_b; divided by N in result()
                a[2] = a[2] + (m2 / cnt) * n_images
            a[3] = a[3] + np.asarray(cl, np.float64)
            a[0] = tot
        self.n += int(n_images)

    def result(self):
        """(psi list, phi list, mean list) as float32 numpy."""
        psi = [(a[2] / a[0]) if self.merge == "exact" else (a[2] / self.n) for a in self.acc]
        return ([p.astype(np.float32) for p in psi],
                [(a[3] / self.n).astype(np.float32) for a in self.acc],
                [a[1].astype(np.float32) for a in self.acc])


@functools.lru_cache(maxsize=8)
def _stats_fn(model, num_classes, exclude):
    @jax.jit
    def fn(variables, x, y, w):
        _, _, feats = conv_inputs(model, variables, x, exclude=exclude)
        return batch_moments(feats, y, w, num_classes)
    return fn


def layer_names(model, variables, image_shape, exclude=("shortcut",)):
    """Names and input shapes of the recorded conv layers (no compute: eval_shape)."""
    box = {}

    def f(v, x):
        _, names, feats = conv_inputs(model, v, x, exclude=exclude)
        box["names"] = names
        return feats

    shapes = jax.eval_shape(f, variables, jax.ShapeDtypeStruct((1,) + tuple(image_shape),
                                                               jnp.float32))
    return box["names"], [tuple(s.shape[1:]) for s in shapes]


def real_statistics(model, variables, images, labels, num_classes, *, batch_size=500,
                    exclude=("shortcut",), progress=True, merge="exact"):
    """One pass over a (training) set: per conv-layer input, Psi, Phi and mean.

    Returns dict(names: list[str], psi: list (d, d), phi: list (d, classes), mean: list
    (d,), count: int) as float32 numpy. Psi: biased covariance over h*w positions, merged
    over the batches of `batch_size` images in order (`MomentMerger`): merge='exact' the
    covariance of all N*h*w positions; merge='batch' the authors' average of per-batch
    covariances (hook.py pre_hook_fn; the CFM pipeline uses it with batch 128 by default).
    Phi = 1/N X'^T onehot(Y); mean = channel mean over all positions. The model runs in
    eval mode (BN running averages), as the authors' `model.eval()`.
    """
    fn = _stats_fn(model, int(num_classes), tuple(exclude))
    names, _ = layer_names(model, variables, images.shape[1:], exclude)
    n = images.shape[0]
    bs = min(batch_size, n)
    merger = MomentMerger(merge)
    bar = tqdm(total=n, desc="statistics", disable=not progress, leave=False)
    for s in range(0, n, bs):
        xb = np.asarray(images[s:s + bs], np.float32)
        yb = np.asarray(labels[s:s + bs], np.int32)
        m = xb.shape[0]
        w = np.ones((bs,), np.float32)
        if m < bs:  # pad the last batch, zero weight
            w[m:] = 0.0
            xb = np.concatenate([xb, np.zeros((bs - m,) + xb.shape[1:], np.float32)])
            yb = np.concatenate([yb, np.zeros((bs - m,), np.int32)])
        out = jax.device_get(fn(variables, jnp.asarray(xb), jnp.asarray(yb), jnp.asarray(w)))
        merger.add(out, m)
        bar.update(m)
    bar.close()
    psi, phi, mean = merger.result()
    return {"names": list(names), "psi": psi, "phi": phi, "mean": mean, "count": int(n)}


def _check_meta(path, stored, current, what):
    if json.dumps(stored, sort_keys=True, default=str) != json.dumps(
            current, sort_keys=True, default=str):
        raise ValueError(f"{path} was made with a different {what} config:\n  stored "
                         f"{stored}\n  current {current}\nUse another workdir (or the "
                         "squeeze dir), or delete the file.")


def squeeze_meta(ocfg, dataset_meta):
    """The config a cached teacher is checked against (dataset, teacher, squeeze)."""
    return json.loads(json.dumps(
        {"dataset": dataset_meta, "teacher": ocfg.teacher.to_dict(),
         "squeeze": {k: v for k, v in ocfg.squeeze.to_dict().items() if k != "dir"}},
        default=str))


def squeeze_stage(ocfg, train_ds, test_ds, directory, *, dataset_meta, progress=True,
                  log=None):
    """Train (or load from <directory>/teacher.msgpack) the teacher of ocfg.teacher with
    ocfg.squeeze. Returns (model, variables, {'test_acc', 'seconds'})."""
    from jaxdd.models import get_model
    os.makedirs(directory, exist_ok=True)
    model = get_model(ocfg.teacher.name, int(train_ds.num_classes),
                      **dict(ocfg.teacher.get("overrides", {}) or {}))
    meta = squeeze_meta(ocfg, dataset_meta)
    path = os.path.join(directory, "teacher.msgpack")
    if os.path.exists(path):
        d = _io.load_tree(path)
        _check_meta(path, json.loads(d["meta"]), meta, "teacher")
        print(f"[cfm] teacher loaded from {path} (test accuracy {float(d['test_acc']):.4f})")
        return (model, jax.tree.map(jnp.asarray, d["variables"]),
                {"test_acc": float(d["test_acc"]), "seconds": float(d["seconds"])})
    s = ocfg.squeeze
    t0 = time.time()
    ck = os.path.join(directory, "teacher_ckpt.msgpack")
    fill = train_ds.normalize(np.zeros((1, 1, 1, train_ds.image_shape[-1])))
    variables = train_teacher(
        jax.random.fold_in(jax.random.key(int(s.get("seed", 0))), 1), model,
        train_ds.images, train_ds.labels, epochs=int(s.epochs), batch_size=int(s.batch_size),
        lr=float(s.lr), momentum=float(s.momentum), weight_decay=float(s.weight_decay),
        crop_pad=int(s.crop_pad), fill=fill.ravel(), flip=bool(s.flip), ckpt_path=ck,
        checkpoint_every=int(s.get("checkpoint_every", 10)), progress=progress, log=log)
    acc = accuracy_of(model, variables, test_ds.images, test_ds.labels)
    secs = time.time() - t0
    _io.save_tree(path, {"variables": variables, "test_acc": acc, "seconds": secs,
                        "meta": json.dumps(meta)})
    if os.path.exists(ck):
        os.remove(ck)
    print(f"[cfm] teacher trained in {secs:.1f} s: test accuracy {acc:.4f}")
    if log is not None:
        log({"stage": "squeeze", "test_acc": acc, "seconds": secs})
    return model, jax.tree.map(jnp.asarray, variables), {"test_acc": acc, "seconds": secs}


def statistics_stage(ocfg, model, variables, train_ds, directory, *, dataset_meta,
                     progress=True):
    """Real per-layer statistics through the teacher (ocfg.statistics), cached in
    <directory>/stats.msgpack. Returns `real_statistics`' dict (+ 'meta', 'seconds')."""
    st = ocfg.statistics
    exclude = tuple(st.get("exclude", ("shortcut",)))
    merge = str(st.get("psi", "exact"))
    meta = json.loads(json.dumps({**squeeze_meta(ocfg, dataset_meta), "exclude": list(exclude),
                                  "psi": merge, "batch_size": int(st.batch_size)}))
    path = os.path.join(directory, "stats.msgpack")
    if os.path.exists(path):
        d = _io.load_tree(path)
        _check_meta(path, json.loads(d["meta"]), meta, "statistics")
        return d
    t0 = time.time()
    out = real_statistics(model, variables, train_ds.images, train_ds.labels,
                          int(train_ds.num_classes), batch_size=int(st.batch_size),
                          exclude=exclude, progress=progress, merge=merge)
    out["seconds"] = time.time() - t0
    out["meta"] = json.dumps(meta)
    _io.save_tree(path, out)
    print(f"[cfm] statistics of {len(out['names'])} conv inputs "
          f"({', '.join(out['names'])}) in {out['seconds']:.1f} s")
    return out


def prepare_teacher(ocfg, train_ds, test_ds, directory, *, dataset_meta=None, progress=True,
                    log=None):
    """The squeeze and statistics stages for the CFM objective of the generic loop.

    ocfg: cfg.objective of a configs/cfm_*.py run (teacher, squeeze, statistics);
    directory: where teacher.msgpack / stats.msgpack are cached (ocfg.squeeze.dir, or the
    run's workdir); a cached file made with another config raises. dataset_meta: what
    identifies the dataset in that check (default: the training images' shape). Returns
    dict(model, variables, stats, test_acc) for `jaxdd.objective.Setup.teacher`.
    """
    dm = list(np.shape(train_ds.images)) if dataset_meta is None else dataset_meta
    model, variables, info = squeeze_stage(ocfg, train_ds, test_ds, directory,
                                           dataset_meta=dm, progress=progress, log=log)
    stats = statistics_stage(ocfg, model, variables, train_ds, directory, dataset_meta=dm,
                             progress=progress)
    return {"model": model, "variables": variables, "stats": stats,
            "test_acc": info["test_acc"]}


# ============================================================================ distill configs

# UniDD relabel batch sizes (the public code's commands); digits uses CIFAR-10's
_EVAL_BATCH = {("cifar10", 1): 10, ("cifar10", 10): 50, ("cifar10", 50): 100,
               ("cifar100", 1): 20, ("cifar100", 10): 100, ("cifar100", 50): 200}
# the synthetic optimizer per parameterization: UniDD's Adam(0.25, (0.5, 0.9)) with a cosine
# per class-batch on per-instance parameters (pixels; FreD's orthonormal DCT coefficients);
# smaller constant-lr Adam for DDiF's fields and NSD's shared kernels (jaxdd choices: no
# published CFM setting for them)
_CFM_PARAMS = {
    # pixels start from the first IPC images of each class (UniDD's get_one_ipc)
    "pixel": dict(opt=dict(lr=0.25, cosine=True, per_instance=True), param={"init": "first"}),
    "fred": dict(opt=dict(lr=0.25, cosine=True, per_instance=True), param={"norm": "ortho"}),
    "ddif": dict(opt=dict(lr=1e-3, cosine=False, per_instance=True), param={}),
    "nsd": dict(opt=dict(lr=1e-2, cosine=False, per_instance=False), param={}),
}


def distill_config(param: str, arg=None):
    """The config of CFM through the generic loop for parameterization `param`
    (configs/cfm_{pixel,fred,ddif,nsd}.py; the config string as every config's).

    digits (default): teacher = student = ConvNetD2W32BN, 30 squeeze epochs, IPC 10,
    200 recover iterations per class-batch, 5 students x 300 relabel epochs; cifar10 /
    cifar100: UniDD's published recover / squeeze / relabel settings (ConvNetD3BN; arch=resnet18
    for ResNet18BN). cfg.iterations = IPC x recover iterations (the class-batch curriculum:
    `jaxdd.objective.cfm`). Shortcuts: ipc, arch, filter, curriculum, beta, signal,
    recover_iterations, epochs (relabel).
    """
    import ml_collections as mlc
    from jaxdd import config as C
    from jaxdd import param as param_lib
    from jaxdd.objective import cfm as obj

    if param not in _CFM_PARAMS:
        raise ValueError(f"CFM configs exist for {sorted(_CFM_PARAMS)}, got {param!r}")
    dataset, ov = C.parse_arg(arg)
    if dataset not in ("digits", "cifar10", "cifar100"):
        raise ValueError(f"CFM configs have variants digits, cifar10, cifar100; got "
                         f"{dataset!r}")
    ipc = int(ov.pop("ipc", 10))
    arch = str(ov.pop("arch", "convnet")).lower()
    per_batch = int(ov.pop("recover_iterations", 200 if dataset == "digits" else 1000))
    short = {"filter": "objective.filter", "curriculum": "objective.curriculum",
             "beta": "objective.beta", "signal": "objective.signal", "epochs": "eval.epochs"}
    ov = {short.get(k, k): v for k, v in ov.items()}
    digits = dataset == "digits"

    cfg = C.base_config(dataset, ipc)
    cfg.source = (C.EMBEDDED if digits else
                  "UniDD (bdy9527/UniDD @ 4afb992) synthesis_small.py / README commands")
    cfg.param = param_lib.get(param).default_config()
    cfg.param.name, cfg.param.ipc = param, ipc
    spec = C._MATCHING_PARAMS[param]
    for k, v in {**spec["param"], **_CFM_PARAMS[param]["param"]}.items():
        cfg.param[k] = v
    if digits and spec["digits"] is not None:
        spec["digits"](cfg, "dm")  # the parameterization's digits shape (k, width, t3/t4)
    o = cfg.objective = obj.default_config()
    if digits:
        o.teacher.name = "ConvNetD2W32BN"
    elif arch in ("convnet", "resnet18"):
        o.teacher.name = "ConvNetD3BN" if arch == "convnet" else "ResNet18BN"
    else:
        raise ValueError(f"arch must be convnet or resnet18, got {arch!r}")
    o.squeeze.epochs = {"digits": 30, "cifar10": 200, "cifar100": 100}[dataset]
    o.squeeze.crop_pad = 2 if digits else 4
    o.squeeze.flip = o.flip = not digits  # flipped digits are other digits
    o.jitter = 2 if digits else 4
    cfg.model.name = o.teacher.name  # the relabel students have the teacher's architecture
    cfg.dsa_strategy = "none"  # CFM's own recover augmentation (objective.rrc_*, jitter)
    cfg.iterations = ipc * per_batch
    cfg.checkpoint_every = per_batch
    cfg.log_every = 50
    so = _CFM_PARAMS[param]["opt"]
    cfg.opt.syn = mlc.ConfigDict(dict(name="adam", lr=so["lr"], b1=0.5, b2=0.9,
                                      per_instance=so["per_instance"],
                                      schedule="cosine" if so["cosine"] else "constant",
                                      decay_steps=per_batch))
    cfg.opt.lr.init = 0.0  # no learned student lr (soft-label relabel has its own)
    e = cfg.eval
    e.every = 0
    e.num_nets = e.final_nets = 5
    e.epochs = 300 if digits else 1000
    e.batch_size = _EVAL_BATCH.get(("cifar10" if digits else dataset, ipc), 100)
    e.lr, e.weight_decay, e.temperature, e.cutmix_alpha = 1e-3, 1e-2, 20.0, 1.0
    e.rrc_scale = (0.08, 1.0)
    e.flip = not digits
    e.schedule = "half_cosine"
    e.t2_scale = False
    e.random_real_baseline = False
    return C.apply_overrides(cfg, ov)


# ============================================================================ relabel / evaluate

def _lr_factor(schedule, epoch, epochs):
    if schedule == "half_cosine":  # public code: 0.5 (1 + cos(pi e / (2 E))), ends at 0.5
        return 0.5 * (1.0 + jnp.cos(jnp.pi * epoch / epochs / 2.0))
    if schedule == "cosine":
        return 0.5 * (1.0 + jnp.cos(jnp.pi * epoch / epochs))
    if schedule == "constant":
        return jnp.ones_like(epoch, jnp.float32)
    raise ValueError(f"unknown schedule {schedule!r}")


@functools.lru_cache(maxsize=16)
def make_soft_eval_fns(student, teacher, *, num_train, epochs, batch_size, lr=1e-3,
                       weight_decay=1e-2, temperature=20.0, cutmix_alpha=1.0,
                       rrc_scale=(0.08, 1.0), flip=True, schedule="half_cosine",
                       t2_scale=False):
    """(init_all, train_epochs, correct) for K students trained together on soft labels,
    on the training core (``jaxdd.train``).

    One step (per student): a minibatch of synthetic images -> RandomResizedCrop + flip
    (per image) -> CutMix (one box per batch) -> teacher logits (eval mode) -> loss
    KL(softmax(t / T) || softmax(s / T)) (batchmean; x T^2 if t2_scale) -> AdamW. The last
    minibatch is completed with the first images of the epoch's order ('wrap').
    init_all(keys (K,), x0) -> TrainState; train_epochs(state, keys (K, n_epochs), images,
    tvars, n_epochs) -> (state, mean loss per epoch (K, n_epochs)); correct(state, x, y).
    """
    bs = min(batch_size, num_train)
    steps = math.ceil(num_train / bs)
    sched = lambda count: lr * _lr_factor(schedule, (count // steps).astype(jnp.float32),
                                          float(epochs))
    tx = optax.adamw(sched, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
    t = float(temperature)

    def augment(k, x):
        k1, k2, k3 = jax.random.split(k, 3)
        x = random_resized_crop(k1, x, rrc_scale, per_sample=True)
        if flip:
            x = random_flip(k2, x, per_sample=True)
        if cutmix_alpha and cutmix_alpha > 0:
            x = cutmix(k3, x, cutmix_alpha)
        return x

    def target_fn(x, y, tvars):  # online soft labels of the augmented batch
        del y
        return jax.nn.softmax(teacher.apply(tvars, x, train=False) / t)

    trainer = make_trainer(student, tx, batch_size=bs, augment=augment, last_batch="wrap",
                           target_fn=target_fn,
                           loss=functools.partial(kl_divergence, temperature=t,
                                                  t2_scale=bool(t2_scale)))

    @functools.partial(jax.jit, static_argnames=("n_epochs",))
    def train_epochs(state, keys, images, tvars, n_epochs):
        """keys (K, n_epochs): n_epochs epochs for all K students."""
        del n_epochs  # the shape of keys
        dummy = jnp.zeros((images.shape[0],), jnp.int32)

        def body(st, ke):
            kperm, kaug = jnp.moveaxis(jax.vmap(jax.random.split)(ke), 1, 0)
            orders = random_orders(kperm, num_train)
            step_keys = jax.vmap(lambda k: jax.random.split(k, steps))(kaug)
            st, met = trainer.epoch(st, orders, step_keys, images, dummy, aux=tvars)
            return st, met["loss"].mean(1)

        state, losses = jax.lax.scan(body, state, jnp.moveaxis(keys, 1, 0))
        return state, jnp.moveaxis(losses, 0, 1)

    return jax.jit(trainer.init), train_epochs, jax.jit(trainer.correct)


def evaluate_soft(key, student, teacher, teacher_vars, images, test_images, test_labels, *,
                  num_nets=5, epochs=1000, batch_size=64, lr=1e-3, weight_decay=1e-2,
                  temperature=20.0, cutmix_alpha=1.0, rrc_scale=(0.08, 1.0), flip=True,
                  schedule="half_cosine", t2_scale=False, chunk_epochs=None, progress=True,
                  desc="relabel", log=None):
    """Relabel / evaluate: train `num_nets` students on `images` with the teacher's soft
    labels (module docstring), return the FINAL test accuracy as an `EvalResult`."""
    from jaxdd.evaluate import EvalResult
    t0 = time.time()
    images = jnp.asarray(images, jnp.float32)
    n = images.shape[0]
    init_all, train_epochs, correct = make_soft_eval_fns(
        student, teacher, num_train=n, epochs=int(epochs), batch_size=int(batch_size),
        lr=float(lr), weight_decay=float(weight_decay), temperature=float(temperature),
        cutmix_alpha=float(cutmix_alpha), rrc_scale=tuple(float(s) for s in rrc_scale),
        flip=bool(flip), schedule=schedule, t2_scale=bool(t2_scale))
    kinit, ktrain = jax.random.split(key)
    state = init_all(jax.random.split(kinit, num_nets), images[:2])
    chunk = chunk_epochs or max(d for d in range(1, min(epochs, 100) + 1) if epochs % d == 0)
    keys = jax.random.split(ktrain, num_nets * epochs).reshape(num_nets, epochs)
    bar = tqdm(total=epochs, desc=desc, disable=not progress, leave=False)
    done = 0
    while done < epochs:
        k = min(chunk, epochs - done)
        state, losses = train_epochs(state, keys[:, done:done + k], images, teacher_vars,
                                     n_epochs=k)
        done += k
        bar.update(k)
        ml = float(np.asarray(losses)[:, -1].mean())
        bar.set_postfix(kl=f"{ml:.4f}")
        if log is not None:
            log({"stage": "evaluate", "epoch": done, "kl": ml})
    bar.close()
    test_images = jnp.asarray(test_images)
    test_labels = jnp.asarray(test_labels)
    tot = 0
    for s in range(0, test_images.shape[0], 1000):
        tot = tot + np.asarray(correct(state, test_images[s:s + 1000],
                                       test_labels[s:s + 1000]))
    accs = tot / test_images.shape[0]
    return EvalResult(accs=accs, mean=float(accs.mean()), std=float(accs.std()),
                      seconds=time.time() - t0, epochs=int(epochs), num_train=n)


# ============================================================================ diagnostics

def spectral_report(model, variables, real_images, real_labels, syn_images, syn_labels,
                    num_classes, *, bands=8, exclude=("shortcut",), real_stats=None,
                    batch_size=500, progress=False):
    """Per-layer spectra of the real and the synthetic set through one network.

    For every recorded conv-layer input: the eigenvalues of the real and the synthetic Psi
    (descending), and the FLC energy per frequency band: ||U_b^T Phi||^2 with U the
    eigenvectors of the REAL Psi (low frequency = large eigenvalue first), bands = groups
    of contiguous eigen-indices; for both Phi (real) and Phi_s (synthetic).
    Returns a JSON-able dict {'layers': [...], 'bands': bands}.
    """
    real = real_stats or real_statistics(model, variables, real_images, real_labels,
                                         num_classes, batch_size=batch_size, exclude=exclude,
                                         progress=progress)
    syn = real_statistics(model, variables, syn_images, syn_labels, num_classes,
                          batch_size=batch_size, exclude=exclude, progress=False)
    layers = []
    for l, name in enumerate(real["names"]):
        lam_r, u = spectral.eigh_sorted(jnp.asarray(real["psi"][l], jnp.float32))
        lam_s, _ = spectral.eigh_sorted(jnp.asarray(syn["psi"][l], jnp.float32))
        _, band_r = spectral.flc_band_energy(jnp.asarray(real["phi"][l]), u, bands)
        _, band_s = spectral.flc_band_energy(jnp.asarray(syn["phi"][l]), u, bands)
        band_r, band_s = np.asarray(band_r, np.float64), np.asarray(band_s, np.float64)
        layers.append({
            "name": name,
            "dim": int(lam_r.shape[0]),
            "eig_real": [float(v) for v in np.asarray(lam_r)],
            "eig_syn": [float(v) for v in np.asarray(lam_s)],
            "flc_band_energy_real": [float(v) for v in band_r],
            "flc_band_energy_syn": [float(v) for v in band_s],
            "flc_band_fraction_real": [float(v) for v in band_r / max(band_r.sum(), 1e-30)],
            "flc_band_fraction_syn": [float(v) for v in band_s / max(band_s.sum(), 1e-30)],
        })
    return {"bands": int(bands), "num_real": int(real["count"]),
            "num_syn": int(np.asarray(syn_images).shape[0]), "layers": layers}


def datasets_of(cfg):
    """(train, test) of a run's cfg.dataset, loaded as `jaxdd.distill.Run` loads them."""
    from jaxdd.data import load_dataset
    d = cfg.dataset
    return load_dataset(d.name, data_dir=d.get("data_dir"), resolution=d.get("resolution"),
                        zca=d.get("zca", False), zca_eps=d.get("zca_eps", 0.1),
                        normalize=d.get("normalize"), stats=d.get("stats"),
                        resize=d.get("resize"))


def run_spectral_report(workdir, synthetic=None, *, bands=8, progress=False):
    """`spectral_report` of a CFM run of the generic loop (a configs/cfm_*.py workdir):
    its teacher and cached real statistics (loaded by `prepare_teacher`, the files the run
    wrote) and its synthetic set (default <workdir>/synthetic.msgpack)."""
    import ml_collections

    with open(os.path.join(workdir, "config.json")) as f:
        cfg = ml_collections.ConfigDict(json.load(f))
    if cfg.objective.get("name") != "cfm":
        raise ValueError(f"{workdir} is not a CFM run (objective {cfg.objective.get('name')!r}); "
                         "use jaxdd.bench.spectral.synthetic_report for other sets")
    train, test = datasets_of(cfg)
    t = prepare_teacher(cfg.objective, train, test,
                        cfg.objective.squeeze.get("dir", "") or workdir, progress=progress)
    images, labels, _ = _io.decode_synthetic(synthetic or os.path.join(workdir,
                                                                       "synthetic.msgpack"))
    exclude = tuple(cfg.objective.statistics.get("exclude", ("shortcut",)))
    return spectral_report(t["model"], t["variables"], None, None, np.asarray(images),
                           np.asarray(labels), int(train.num_classes), bands=int(bands),
                           exclude=exclude, real_stats=t["stats"])
