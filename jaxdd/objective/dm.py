"""Distribution matching (DM, Zhao & Bilen, WACV 2023) as a pure loss.

One DM evaluation (the authors' `main_DM.py`, ConvNet branch):

  * a freshly initialized network (new every iteration, never trained; its parameters are
    drawn in `sample_ctx` and carried in the context, no gradient flows into them);
  * per class c: a real batch of min(batch_real, n_c) images of class c (without
    replacement) and the synthetic images of class c, both augmented with the SAME DSA
    transform (siamese: one key per class; `DSAParams(batchmode=True)`, i.e. DSA's seeded
    call where every sample of the batch shares one transform);
  * embeddings = the network's features before the classifier (the input of its final
    linear layer, flattened: ConvNet's `embed`);
  * loss = sum_c || mean_i e(real_c,i) - mean_j e(syn_c,j) ||^2   (real side stop-gradient).

Authors' code followed (parity: tests/test_parity_dm_dc.py, same weights / images, DSA off):
sdh0818/FreD DM/main_DM_FreD.py:247-317 and aailab-kaist/DDiF DM/main_DM.py:166-200 (net =
get_network(...), net.train(), parameters frozen, embed = net.embed = features after the last
pooling, flattened; loss += sum((mean(embed(real_c), 0) - mean(embed(syn_c), 0)) ** 2); the
real batch is `get_images(..., c, batch_real)`: a random subset without replacement).
Differences, both equivalent here: DDiF's DM (and FreD's on TinyImageNet) take one optimizer
step per CLASS (zero_grad / backward / step inside the class loop); with per-instance
synthetic parameters and an elementwise optimizer whose untouched parameters have grad None
(DDiF: torch 2.1, Adam), that is one step on the summed loss, as here. (FreD's TinyImageNet
branch on torch 1.11 zeroes rather than drops the other classes' gradients, so its momentum
also moves them between the class steps; jaxdd has no FreD TinyImageNet DM config.)
The authors' BatchNorm branch (`'BN' in args.model`: one concatenated forward) is not
offered: `make_init_fn` refuses BatchNorm networks.

Class bookkeeping (documented choice). Synthetic labels may come in any order and any
number per class (a parameterization's decode order, or `decode_subset`): the synthetic
class means are one-hot weighted means, `M_syn = (onehot(y)^T E) / counts`, and the
siamese transform is applied per sample with the key of the sample's class
(`make_class_augment`: exactly the transform that `dsa(key_c, ..., batchmode=True)` gives
the whole class-c batch). A class with no synthetic instance in the decoded subset contributes
nothing. Soft labels (N, classes) are assigned to their argmax class.

Real data on device: all training images grouped by class into one padded array
(classes, max_n, H, W, C) with per-class counts; a per-class batch is drawn with a random
top-k (sampling without replacement inside the class) and a validity mask, so classes of
different sizes and batch_real > n_c (DM then uses all n_c images) are exact.

Other modalities: video (N, T, H, W, C) with ConvNet3D, voxels (N, D, H, W, 1) with
Conv3DNet, the same loss (embedding: the input of the 'classifier'). The authors' video and
voxel DM (aailab-kaist/DDiF @ b628e7b, Video/distill_DDiF.py:104-134, 3D_Voxel/main_DM.py:
157-191; sdh0818/FreD @ 9f35a7a 3D-MNIST/main_DM_FreD.py:226-241) run these lines without
DSA; DSA on video is frame-wise (one draw per clip), on voxels 'none' only (`modality`).

Shared helpers used by `jaxdd.objective.dc`: `real_by_class`, `sample_real`,
`make_class_augment`, `map_classes`, `hard_labels`, `make_embed_fn`, `make_init_fn`,
`real_data`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class DMContext(NamedTuple):
    """Per-iteration inputs of the DM loss (a pytree).

    params: parameters of the freshly initialized embedding network.
    real_images: (classes, B, H, W, C) real batch per class (padded where n_c < B).
    real_mask: (classes, B) float 1/0, which entries of real_images are real samples.
    """
    params: dict
    real_images: jax.Array
    real_mask: jax.Array


# ----------------------------------------------------------------------------- helpers

def real_by_class(images, labels, num_classes: int):
    """Group a training set by class, padded to the largest class.

    images: (N, H, W, C); labels: int (N,).
    Returns (real, counts): real float32 (classes, max_n, H, W, C), zero padded;
    counts int32 (classes,). Raises ValueError if a class has no image.
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).reshape(-1)
    idx = [np.flatnonzero(labels == c) for c in range(int(num_classes))]
    counts = np.array([len(i) for i in idx], np.int32)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training "
                         "image; DM/DC need real images of every class")
    real = np.zeros((int(num_classes), int(counts.max())) + images.shape[1:], np.float32)
    for c, i in enumerate(idx):
        real[c, :len(i)] = images[i]
    return real, counts


def sample_real(key, real, counts, batch: int, max_n: int | None = None, order=None):
    """Per-class random real batch without replacement (jit-able).

    real: (classes, max_n, H, W, C); counts: int (classes,); batch: static int <= max_n.
    max_n: the largest class (static) when `real` is padded beyond it (to split its axis
    over devices, `real_data`): the draws depend on max_n only, so padding changes nothing.
    order: None (position j of `real` holds image j of its class), or int (stored,): the
    within-class index each position holds (>= max_n: padding), the layout of a
    multi-process `real_data`. The random scores are drawn per within-class index and
    moved to the positions, so the batch holds the same images in the same order as
    with the plain layout.
    Returns images (classes, batch, H, W, C) and mask float32 (classes, batch): entry j of
    class c is a distinct random image of class c when j < min(batch, n_c), padding (mask 0)
    otherwise.
    """
    num_classes, stored = real.shape[:2]
    max_n = stored if max_n is None else int(max_n)
    valid = jnp.arange(max_n)[None, :] < counts[:, None]
    scores = jnp.where(valid, jax.random.uniform(key, (num_classes, max_n)), -1.0)
    if order is not None:  # positions -> within-class indices (padding: never drawn)
        scores = jnp.pad(scores, ((0, 0), (0, 1)), constant_values=-2.0)
        scores = jnp.take(scores, jnp.minimum(jnp.asarray(order), max_n), axis=1)
    elif stored > max_n:  # storage padding: never drawn
        scores = jnp.pad(scores, ((0, 0), (0, stored - max_n)), constant_values=-2.0)
    _, idx = jax.lax.top_k(scores, batch)  # valid entries first, in random order
    images = jnp.take_along_axis(real, idx.reshape(idx.shape + (1,) * (real.ndim - 2)), 1)
    mask = (jnp.arange(batch)[None, :] < counts[:, None]).astype(jnp.float32)
    return images, mask


def make_class_augment(strategy, mode: str = "S", params=None,
                       modality: str | None = None) -> Callable | None:
    """Siamese DSA keyed by class: augment(keys (K,), x (n, H, W, C), cls int (n,)) -> x'.
    x may be (n, T, H, W, C) video clips (modality 'video': each clip's transform on all
    its frames); modality 'voxel' allows strategy 'none' only (`augment.check_modality`).

    Sample i gets the transform that `dsa(keys[cls[i]], batch, strategy, mode,
    DSAParams(batchmode=True))` applies to every image of a batch (DSA's seeded call of
    DC/DM: one op group and one parameter set shared by the batch). So the real batch and
    the synthetic images of class c get the same transform whatever their order and number.
    Implementation: per key, the op choice (`sample_op`) and the shared uniforms
    (`draw_uniforms(key, 1, o, batchmode=True)`); then, in mode 'S', every op group is
    applied to the whole batch with per-sample uniforms and each sample keeps its class's
    group (a select: vmapping dsa's lax.switch would compute the same). Returns None for
    strategy 'none'.
    """
    from jaxdd import augment

    names = augment.parse_strategy(strategy)
    if modality is not None:
        augment.check_modality(augment.MODALITIES.get(modality, 0), strategy, modality)
    if not names:
        return None
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    params = params or augment.DSAParams(batchmode=True)

    def cols(u, name):
        a, b = augment.GROUP_COLUMNS[name]
        return u[:, a:b]

    if mode == "M":
        occ, seen = [], {}
        for nm in names:
            occ.append(seen.get(nm, 0))
            seen[nm] = seen.get(nm, 0) + 1

        def augment_m(keys, x, cls):
            augment.check_modality(x.ndim, strategy, modality)
            blocks = [jax.vmap(lambda k: augment.draw_uniforms(k, 1, o, True)[0])(keys)[cls]
                      for o in range(max(occ) + 1)]
            for nm, o in zip(names, occ):
                x = augment.apply_group(x, nm, cols(blocks[o], nm), params)
            return x

        return augment_m

    uniq = tuple(dict.fromkeys(names))
    branch_of = np.asarray([uniq.index(nm) for nm in names], np.int32)

    def draw(k):
        return (jnp.asarray(branch_of)[augment.sample_op(k, strategy)],
                augment.draw_uniforms(k, 1, 0, True)[0])

    def augment_s(keys, x, cls):
        augment.check_modality(x.ndim, strategy, modality)
        op, u = jax.vmap(draw)(keys)
        op, u = op[cls], u[cls]
        out = augment.apply_group(x, uniq[0], cols(u, uniq[0]), params)
        for g, nm in enumerate(uniq[1:], start=1):
            sel = (op == g).reshape((-1,) + (1,) * (x.ndim - 1))
            out = jnp.where(sel, augment.apply_group(x, nm, cols(u, nm), params), out)
        return out

    return augment_s


def map_classes(f, xs, chunk: int | None = None):
    """f mapped over the leading (class) axis of the arrays in the tuple xs.

    chunk None/0 (or >= classes): one jax.vmap over all classes (fastest); chunk k: a
    sequential lax.map over groups of k vmapped classes (memory of k classes at a time,
    e.g. CIFAR-100 with 256 real images per class on one GPU).
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if not chunk or int(chunk) >= n:
        return jax.vmap(f)(*xs)
    return jax.lax.map(lambda a: f(*a), xs, batch_size=int(chunk))


def hard_labels(labels):
    """int (N,) labels; soft labels (N, classes) -> argmax class."""
    if labels.ndim == 2:
        return jnp.argmax(labels, axis=-1).astype(jnp.int32)
    return labels.astype(jnp.int32)


_HEAD_NAMES = ("classifier", "head")


def make_embed_fn(model: nn.Module, head_names=_HEAD_NAMES) -> Callable:
    """(params, x) -> features (N, F): the input of the network's final linear layer.

    Works for every jaxdd network (their last layer is a top-level submodule named
    'classifier', or 'head' for ViT): the call of that layer is intercepted
    (`flax.linen.intercept_methods`) and its input returned flattened; the unused logits
    are dead code under jit. For ConvNet this is DM's `embed` (flattened features after
    the last pooling).
    """
    def embed(params, x):
        captured = []

        def interceptor(next_fun, args, kwargs, context):
            mod = context.module
            if (context.method_name == "__call__" and len(mod.path) == 1
                    and mod.path[0] in head_names):
                captured.append(args[0])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(interceptor):
            model.apply({"params": params}, x, train=True)
        if len(captured) != 1:
            raise ValueError(f"{type(model).__name__} has no single top-level final layer "
                             f"named one of {head_names}; DM needs its features")
        feats = captured[0]
        return feats.reshape(feats.shape[0], -1)

    return embed


def data_modality(ds) -> str:
    """`Dataset.modality`; None (no field): 'image', or None for other ranks (DSA then
    refuses 5-D batches with a strategy until the modality is named)."""
    mod = getattr(ds, "modality", None)
    return str(mod) if mod is not None else (
        "image" if len(tuple(ds.image_shape)) == 3 else None)


def make_init_fn(model: nn.Module, image_shape) -> Callable:
    """key -> fresh network params (jit-able). Batch-norm networks are refused."""
    dummy = jnp.zeros((1,) + tuple(int(s) for s in image_shape), jnp.float32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), dummy))
    if set(shapes) != {"params"}:
        raise NotImplementedError(
            f"DM/DC need a network without mutable collections; {type(model).__name__} has "
            f"{sorted(set(shapes) - {'params'})} (use instance norm, e.g. ConvNetD3).")
    return lambda key: model.init(key, dummy)["params"]


# ----------------------------------------------------------------------------- the loss

def make_loss(embed_fn: Callable, num_classes: int, *, augment: Callable | None = None,
              class_chunk: int | None = None):
    """Build the DM loss.

    Args:
      embed_fn: (params, images (n, H, W, C)) -> features (n, F).
      num_classes: number of classes (static).
      augment: siamese augmentation keyed by class, (keys (classes,), x, cls) -> x
        (`make_class_augment(strategy)`); None = no augmentation.
      class_chunk: real classes embedded at once (`map_classes`; None = all).

    Returns:
      loss(key, syn_images (N, H, W, C), syn_labels (N,) int or (N, classes),
           ctx: DMContext) -> scalar
      = sum over classes present in syn_labels of ||mean real emb - mean syn emb||^2.
      `key` draws one augmentation key per class (the same for the class's real and
      synthetic images).
    """
    def loss(key, syn_images, syn_labels, ctx: DMContext):
        cls = hard_labels(syn_labels)
        keys = jax.random.split(key, num_classes)

        def real_mean(x, m, c):  # one class: x (B, H, W, C), m (B,), c scalar
            if augment is not None:
                x = augment(keys, x, jnp.full((x.shape[0],), c, jnp.int32))
            e = embed_fn(ctx.params, x)
            return (m[:, None] * e).sum(0) / jnp.maximum(m.sum(), 1.0)

        mean_real = map_classes(real_mean, (ctx.real_images, ctx.real_mask.astype(jnp.float32),
                                            jnp.arange(num_classes)), class_chunk)
        mean_real = jax.lax.stop_gradient(mean_real)
        syn = syn_images if augment is None else augment(keys, syn_images, cls)
        e_syn = embed_fn(ctx.params, syn)  # (N, F)
        w = jax.nn.one_hot(cls, num_classes, dtype=e_syn.dtype)  # (N, classes)
        n_c = w.sum(0)
        mean_syn = (w.T @ e_syn) / jnp.maximum(n_c, 1.0)[:, None]
        per_class = jnp.sum(jnp.square(mean_real - mean_syn), axis=-1)
        return jnp.sum(jnp.where(n_c > 0, per_class, 0.0))

    return loss


# ----------------------------------------------------------------------------- loop wiring

def default_config():
    """cfg.objective for DM: batch_real 256 (real images per class per step); class_chunk 0
    (embed all classes' real batches at once; k > 0: k classes at a time, less memory)."""
    import ml_collections
    return ml_collections.ConfigDict(dict(name="dm", batch_real=256, class_chunk=0))


def real_data(run):
    """{'real': (classes, max_n', H, W, C), 'counts': (classes,)} on device, from
    run.train_ds (`run`: the loop's Setup). With a mesh (`run.mesh`), max_n is padded to a
    multiple of the device count and the images are split over the devices along that
    axis (each process places only its part: `jaxdd.sharding.put`); without one, max_n' =
    max_n. The largest class size is `max_class_size(data)`."""
    from jaxdd import sharding

    ds = run.train_ds
    mesh = getattr(run, "mesh", None)
    if getattr(ds, "shard", None) is not None:
        return _real_data_sharded(ds, mesh)
    if sharding.size(mesh) <= 1:
        real, counts = real_by_class(ds.images, ds.labels, ds.num_classes)
        return {"real": jnp.asarray(real), "counts": jnp.asarray(counts)}
    # split over the devices: each process builds (on the host) and places only the
    # blocks of its own devices (jax.make_array_from_callback), never the whole array
    images = np.asarray(ds.images)
    labels = np.asarray(ds.labels).reshape(-1)
    groups = [np.flatnonzero(labels == c) for c in range(int(ds.num_classes))]
    counts = np.array([len(g) for g in groups], np.int32)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training "
                         "image; DM/DC need real images of every class")
    shape = (len(groups), sharding.pad_to_devices(int(counts.max()), mesh)) + images.shape[1:]

    def block(index):
        cls = range(shape[0])[index[0]]
        pos = np.arange(shape[1])[index[1]]
        out = np.zeros((len(cls), len(pos)) + images.shape[1:], np.float32)
        for i, c in enumerate(cls):
            ok = pos < len(groups[c])
            out[i, ok] = images[groups[c][pos[ok]]]
        return out[(slice(None), slice(None)) + tuple(index[2:])]

    real = jax.make_array_from_callback(shape, sharding.real_batch(mesh, shape), block)
    return {"real": real, "counts": sharding.put(counts, sharding.replicated(mesh))}


def _real_data_sharded(ds, mesh):
    """`real_data` of a multi-process run whose processes each hold a shard of the train
    split (`jaxdd.data.shard`: image j of class c on process j % P). The padded class axis
    is laid out so that each process's devices hold exactly its own rows: the positions of
    process p's devices (in mesh order) hold its images j = p, p + P, p + 2P, ... of every
    class; 'order' (positions -> within-class index, replicated) tells `sample_real`, which
    then draws the same images as the one-process layout. Nothing is exchanged."""
    from jaxdd import sharding

    sh = ds.shard
    procs = sh.count
    if sharding.size(mesh) <= 1:
        raise ValueError("a sharded train split (multi-process run) needs the run's mesh over "
                         "every process's devices (cfg.mesh.data = 0)")
    counts = np.asarray(sh.class_counts, np.int32)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training "
                         "image; DM/DC need real images of every class")
    max_n = int(counts.max())
    per_proc = -(-max_n // procs)
    stored = sharding.pad_to_devices(per_proc * procs, mesh)
    shape = (len(counts), stored) + tuple(ds.image_shape)
    spec = sharding.real_batch(mesh, shape)
    # positions owned by each process (from the sharding, in mesh order)
    owned = [[] for _ in range(procs)]
    for dev, idx in sorted(spec.devices_indices_map(shape).items(), key=lambda kv: kv[0].id):
        owned[dev.process_index].extend(range(stored)[idx[1]])
    order = np.full((stored,), stored + max_n, np.int64)
    for p, pos in enumerate(owned):
        pos = sorted(set(pos))
        if len(pos) < per_proc:
            raise ValueError(f"process {p} holds {len(pos)} of {stored} real-data positions, "
                             f"fewer than its {per_proc} rows per class (uneven devices?)")
        order[pos[:per_proc]] = p + procs * np.arange(per_proc)
    labels = np.asarray(ds.labels).reshape(-1)
    mine = [np.flatnonzero(labels == c) for c in range(len(counts))]

    def block(index):
        cls = range(shape[0])[index[0]]
        pos = np.arange(shape[1])[index[1]]
        out = np.zeros((len(cls), len(pos)) + shape[2:], np.float32)
        j = order[pos]
        for i, c in enumerate(cls):
            ok = j < counts[c]
            if (j[ok] % procs != sh.index).any():
                raise AssertionError("real-data block of another process requested")
            out[i, ok] = ds.images[mine[c][j[ok] // procs]]
        return out[(slice(None), slice(None)) + tuple(index[2:])]

    real = jax.make_array_from_callback(shape, spec, block)
    rep = sharding.replicated(mesh)
    return {"real": real, "counts": sharding.put(counts, rep),
            "order": sharding.put(np.minimum(order, max_n).astype(np.int32), rep)}


def max_class_size(data) -> int:
    """The largest class of `real_data` (static, from the counts on the host)."""
    from jaxdd import sharding
    return int(sharding.to_host(data["counts"]).max())


def constrain_real(mesh, images, mask):
    """The sampled real batch (classes, B, ...) split over the mesh (`sharding.real_batch`)."""
    from jaxdd import sharding
    return (sharding.constrain(images, sharding.real_batch(mesh, images.shape)),
            sharding.constrain(mask, sharding.real_batch(mesh, mask.shape)))


def build(run) -> "Objective":
    """DM: fresh network + per-class real batch every iteration; syn_lr not learned.

    Config fields (cfg.objective): batch_real (default 256), class_chunk (0: all classes'
    real batches at once; k: k classes at a time, to bound memory); cfg.dsa_strategy.
    """
    from jaxdd.objective import Objective

    cfg = run.cfg
    o = cfg.objective
    nc = run.train_ds.num_classes
    data = real_data(run)
    mesh = getattr(run, "mesh", None)
    max_n = max_class_size(data)
    batch = min(int(o.get("batch_real", 256)), max_n)
    augment = make_class_augment(cfg.dsa_strategy, modality=data_modality(run.train_ds))
    init_net = make_init_fn(run.model, run.train_ds.image_shape)
    loss = make_loss(make_embed_fn(run.model), nc, augment=augment,
                     class_chunk=int(o.get("class_chunk", 0) or 0))

    def sample_ctx(key, syn_lr, data, obj_state=()):
        del syn_lr, obj_state  # stateless
        k_net, k_real = jax.random.split(key)
        images, mask = sample_real(k_real, data["real"], data["counts"], batch, max_n,
                                   data.get("order"))
        images, mask = constrain_real(mesh, images, mask)
        return DMContext(params=init_net(k_net), real_images=images, real_mask=mask)

    return Objective(loss=loss, sample_ctx=sample_ctx, data=data, learn_lr=False)
