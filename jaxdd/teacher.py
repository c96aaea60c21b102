"""CFM (curriculum frequency matching, UniDD): the stages around the CFM objective.

CFM runs through the generic loop with any parameterization (`launch/distill.py
--config=configs/cfm_{pixel,fred,ddif,nsd}.py`, configs from `jaxdd.config.cfm_config`;
launch/cfm.py adds the spectral diagnostic, `jaxdd.bench.spectral`). The loop calls
`prepare_teacher` first, recovers the set with the pure loss of `jaxdd.objective.cfm`, and
relabels with `evaluate_soft`. The stages (docs/methods.md "CFM"):

1. squeeze (`train_teacher`, on the training core `jaxdd.train`): one teacher on the training
   set (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine per epoch, batch 128,
   `jaxdd.augment.random_crop_flip` with pad 4), cached with its test accuracy.
2. statistics (`real_statistics`, cached): one pass through the teacher in eval mode; for
   the INPUT of every conv layer (ResNet shortcut convs excluded: the public code's
   'downsample' filter) the biased channel covariance Psi over the N*H*W positions,
   Phi = 1/N X'^T Y (X' the spatial means) and the channel mean.
3. recover: the generic loop with `jaxdd.objective.cfm`.
4. relabel (`evaluate_soft`, on the training core): K students trained together with KL to
   the teacher's softmax at temperature T (online soft labels of the same RandomResizedCrop
   + flip + `jaxdd.augment.cutmix` batch), AdamW(1e-3, wd 1e-2); the FINAL test accuracy,
   mean +- std over K. NOT comparable with the TM protocol (hard labels, SGD, DSA).

Against the public code (bdy9527/UniDD @ 4afb992; parity: tests/test_parity_unidd.py):
* real Psi: the public code averages per-batch biased covariances (batch 128, dataset
  order), the default `statistics.psi='batch'`; the paper's covariance over all N*H*W
  positions is `statistics.psi='exact'` (`jaxdd.objective.spectral.MomentMerger`).
* relabel lr: the public code's lr * 0.5 (1 + cos(pi e / (2 E))) per epoch e (ends at lr / 2)
  is schedule 'half_cosine' (default; 'cosine' decays to 0); the KL loss is not multiplied
  by T^2. The public code reports the best test accuracy over epochs > 0.8 E, jaxdd the final.
* a last partial minibatch is dropped in teacher training (BatchNorm) and completed with the
  first images of the permutation in relabeling (PyTorch's number of steps, full batches).
* pixels start from the first IPC images of each class (`param.init='first'`, `get_one_ipc`).
* the recover augmentation, losses, EMU and signal: `jaxdd.objective.cfm`.

Files (in cfg.objective.squeeze.dir, or the run's workdir; one made with another config
raises): teacher.msgpack (variables, test accuracy, config), teacher_ckpt.msgpack (teacher
training in progress; resumes), stats.msgpack (per-layer Psi, Phi, mean of the real data).
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
from jaxdd.augment import cutmix, random_crop_flip
from jaxdd.evaluate import EvalResult, accuracy, accuracy_of
from jaxdd.losses import cross_entropy, kl_divergence
from jaxdd.objective.cfm import conv_inputs, random_flip, random_resized_crop
from jaxdd.objective.spectral import MomentMerger, batch_moments
from jaxdd.train import make_trainer

# ============================================================================ squeeze

@functools.lru_cache(maxsize=8)
def make_teacher_fns(model, *, num_train, epochs, batch_size=128, lr=0.1, momentum=0.9,
                     weight_decay=5e-4, crop_pad=4, fill=None, flip=True):
    """(trainer, train_epoch) for the squeeze stage, on the training core (``jaxdd.train``).

    SGD(lr, momentum) with PyTorch-style coupled weight decay, cosine annealing of the lr
    per epoch over `epochs` (CosineAnnealingLR(T_max=epochs)), batch `batch_size` (last
    partial batch dropped), RandomCrop(pad) + flip per image, cross-entropy; BatchNorm
    statistics carried. train_epoch(state (K=1 stacked TrainState), key, images, labels)
    -> (state, mean loss, mean train accuracy); epoch key -> (k_perm, k_aug) = split(key),
    order permutation(k_perm, N), step s augmented with split(k_aug, steps)[s]
    (``Trainer.keyed_epoch``).
    """
    steps = max(num_train // batch_size, 1)
    sched = lambda count: lr * 0.5 * (1.0 + jnp.cos(jnp.pi * (count // steps) / epochs))
    tx = optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(sched, momentum=momentum))
    trainer = make_trainer(model, tx, loss=cross_entropy, batch_size=batch_size,
                           augment=lambda k, x: random_crop_flip(k, x, crop_pad, fill, flip),
                           last_batch="drop")

    @jax.jit
    def train_epoch(state, key, images, labels):
        state, met = trainer.keyed_epoch(state, key[None], images, labels)
        return state, met["loss"].mean(), met["acc"].mean()

    return trainer, train_epoch


def _teacher_ckpt(state, epoch):
    """The tree of teacher_ckpt.msgpack (`jaxdd.io.save_state`) of one TrainState."""
    return {"params": state.params, "opt": state.opt_state, "epoch": epoch,
            "state": {k: v for k, v in state.variables.items() if k != "params"}}


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
        restored = _io.load_state(ckpt_path, _teacher_ckpt(state, 0))
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
            _io.save_state(ckpt_path, _teacher_ckpt(jax.tree.map(lambda a: a[0], state), e + 1))
    bar.close()
    return jax.tree.map(lambda a: a[0], state.variables)


# ============================================================================ statistics

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


def _cached(path, meta, what, build):
    """(tree, loaded): the tree stored in `path` (made with the config `meta`, else raises),
    or build() stored there with `meta` and the seconds it took."""
    if os.path.exists(path):
        d = _io.load_tree(path)
        stored = json.loads(d["meta"])
        if json.dumps(stored, sort_keys=True, default=str) != json.dumps(
                meta, sort_keys=True, default=str):
            raise ValueError(f"{path} was made with a different {what} config:\n  stored "
                             f"{stored}\n  current {meta}\nUse another workdir (or the "
                             "squeeze dir), or delete the file.")
        return d, True
    t0 = time.time()
    d = build()
    d["seconds"] = time.time() - t0
    d["meta"] = json.dumps(meta)
    _io.save_tree(path, d)
    return d, False


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
    path = os.path.join(directory, "teacher.msgpack")
    ck = os.path.join(directory, "teacher_ckpt.msgpack")

    def build():
        s = ocfg.squeeze
        fill = train_ds.normalize(np.zeros((1, 1, 1, train_ds.image_shape[-1])))
        variables = train_teacher(
            jax.random.fold_in(jax.random.key(int(s.get("seed", 0))), 1), model,
            train_ds.images, train_ds.labels, epochs=int(s.epochs),
            batch_size=int(s.batch_size), lr=float(s.lr), momentum=float(s.momentum),
            weight_decay=float(s.weight_decay), crop_pad=int(s.crop_pad), fill=fill.ravel(),
            flip=bool(s.flip), ckpt_path=ck, checkpoint_every=int(s.get("checkpoint_every", 10)),
            progress=progress, log=log)
        return {"variables": variables,
                "test_acc": accuracy_of(model, variables, test_ds.images, test_ds.labels)}

    d, loaded = _cached(path, squeeze_meta(ocfg, dataset_meta), "teacher", build)
    info = {"test_acc": float(d["test_acc"]), "seconds": float(d["seconds"])}
    if loaded:
        print(f"[cfm] teacher loaded from {path} (test accuracy {info['test_acc']:.4f})")
    else:
        if os.path.exists(ck):
            os.remove(ck)
        print(f"[cfm] teacher trained in {info['seconds']:.1f} s: test accuracy "
              f"{info['test_acc']:.4f}")
        if log is not None:
            log({"stage": "squeeze", **info})
    return model, jax.tree.map(jnp.asarray, d["variables"]), info


def statistics_stage(ocfg, model, variables, train_ds, directory, *, dataset_meta,
                     progress=True):
    """Real per-layer statistics through the teacher (ocfg.statistics), cached in
    <directory>/stats.msgpack. Returns `real_statistics`' dict (+ 'meta', 'seconds')."""
    st = ocfg.statistics
    exclude = tuple(st.get("exclude", ("shortcut",)))
    merge = str(st.get("psi", "exact"))
    meta = json.loads(json.dumps({**squeeze_meta(ocfg, dataset_meta), "exclude": list(exclude),
                                  "psi": merge, "batch_size": int(st.batch_size)}))
    d, loaded = _cached(os.path.join(directory, "stats.msgpack"), meta, "statistics",
                        lambda: real_statistics(
                            model, variables, train_ds.images, train_ds.labels,
                            int(train_ds.num_classes), batch_size=int(st.batch_size),
                            exclude=exclude, progress=progress, merge=merge))
    if not loaded:
        print(f"[cfm] statistics of {len(d['names'])} conv inputs "
              f"({', '.join(d['names'])}) in {d['seconds']:.1f} s")
    return d


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
            st, met = trainer.keyed_epoch(st, ke, images, dummy, aux=tvars)
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
    accs = accuracy(correct, state, jnp.asarray(test_images), jnp.asarray(test_labels), 1000)
    return EvalResult(accs=accs, mean=float(accs.mean()), std=float(accs.std()),
                      seconds=time.time() - t0, epochs=int(epochs), num_train=n)
