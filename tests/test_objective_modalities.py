"""DM, DC and TM on 5-D batches: video clips (N, T, H, W, C) and voxels (N, D, H, W, 1) with
a tiny Conv3DNet; the objectives' `build` on a dataset that names its modality (DSA frame-wise
on video, 'none' only on voxels). Parity with the authors' voxel / video losses:
tests/test_parity_modal_losses.py. Tiny shapes: seconds on CPU."""
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdd import augment
from jaxdd.data import Dataset
from jaxdd.losses import cross_entropy
from jaxdd.models import get_model
from jaxdd.objective import dc, dm, tm

NC = 2


@pytest.fixture(scope="module")
def net():
    m = get_model("conv3dnet", NC, width=4, depth=1, conv_impl="native")
    return m, (lambda p, x: m.apply({"params": p}, x, train=True))


def _ds(shape, modality, n_per_class=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(NC * n_per_class,) + shape).astype(np.float32)
    y = np.repeat(np.arange(NC), n_per_class).astype(np.int64)
    c = shape[-1]
    return Dataset(images=x, labels=y, class_names=tuple(map(str, range(NC))),
                   mean=np.zeros(c, np.float32), std=np.ones(c, np.float32), name="tiny",
                   modality=modality)


def _setup(ds, model, apply_fn, objective, dsa):
    cfg = ml_collections.ConfigDict(dict(objective=objective, dsa_strategy=dsa,
                                         param=dict(ipc=1)))
    return types.SimpleNamespace(cfg=cfg, model=model, apply_fn=apply_fn, train_ds=ds,
                                 mesh=None)


def _run(obj, syn, labels, state=()):
    key = jax.random.PRNGKey(1)
    ctx = jax.jit(obj.sample_ctx)(key, jnp.float32(0.01), obj.data, state)
    val, g = jax.jit(jax.value_and_grad(obj.loss, argnums=1))(key, syn, labels, ctx)
    return float(val), np.asarray(g)


@pytest.mark.parametrize("shape,modality,dsa", [((4, 4, 4, 1), "voxel", "none"),
                                                 ((2, 4, 4, 3), "video", "flip_crop_color")])
def test_dm_and_dc_build_and_differentiate_on_5d_sets(net, shape, modality, dsa):
    model, apply_fn = net
    ds = _ds(shape, modality)
    syn = jnp.asarray(ds.images[[0, 3]]) * 0.5
    labels = jnp.asarray([0, 1])
    dm_obj = dm.build(_setup(ds, model, apply_fn, dm.default_config(), dsa))
    val, g = _run(dm_obj, syn, labels)
    assert np.isfinite(val) and val > 0 and np.abs(g).max() > 0 and g.shape == syn.shape
    dc_obj = dc.build(_setup(ds, model, apply_fn, dc.default_config(), dsa))
    state = dc_obj.init_state(jax.random.PRNGKey(2))
    val, g = _run(dc_obj, syn, labels, state)
    assert np.isfinite(val) and val > 0 and np.abs(g).max() > 0
    # DC's post_step (IPC 1: a fresh network) runs on the 5-D set
    new = dc_obj.post_step(jax.random.PRNGKey(3), state, syn, labels, dc_obj.data, 0)
    assert jax.tree.structure(new) == jax.tree.structure(state)


def test_voxel_dsa_strategy_is_refused_by_name(net):
    model, apply_fn = net
    ds = _ds((4, 4, 4, 1), "voxel")
    for build, ocfg in ((dm.build, dm.default_config()), (dc.build, dc.default_config())):
        with pytest.raises(ValueError, match="'flip'.*voxel"):
            build(_setup(ds, model, apply_fn, ocfg, "flip"))


def test_video_class_augment_is_the_clip_transform_on_every_frame():
    """make_class_augment on clips: each clip gets its class's siamese transform, the same
    on all its frames (= the image class augment on each frame)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 6, 6, 3))
    cls = jnp.asarray([0, 1, 1, 0])
    keys = jax.random.split(jax.random.PRNGKey(7), NC)
    for strategy in ("color_crop_cutout_flip_scale_rotate", "crop_flip"):
        vid = dm.make_class_augment(strategy, modality="video")(keys, x, cls)
        img = dm.make_class_augment(strategy)
        for t in range(x.shape[1]):
            np.testing.assert_allclose(vid[:, t], img(keys, x[:, t], cls), atol=1e-6)


def test_dc_5d_rows_rule_authors_vs_unit():
    """rows5d='authors' = cosine over the flax kernel's kw axis (the authors' 5-D
    distance_wb); 'unit' = one row per output channel (the 2-D rule)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3, 3, 2, 4)).astype(np.float32)
    b = (rng.normal(size=a.shape) + 0.5 * a).astype(np.float32)
    cos = (a * b).sum(2) / (np.linalg.norm(a, axis=2) * np.linalg.norm(b, axis=2) + 1e-6)
    np.testing.assert_allclose(dc.unit_distance(a, b), (1 - cos).sum(), rtol=1e-5)
    ar, br = a.reshape(-1, 4), b.reshape(-1, 4)
    cos_u = (ar * br).sum(0) / (np.linalg.norm(ar, axis=0) * np.linalg.norm(br, axis=0) + 1e-6)
    np.testing.assert_allclose(dc.unit_distance(a, b, rows5d="unit"), (1 - cos_u).sum(),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="rows5d"):
        dc.unit_distance(a[..., 0], b[..., 0], rows5d="rows")


@pytest.mark.parametrize("shape,modality,dsa", [((4, 4, 4, 1), "voxel", "none"),
                                                 ((2, 4, 4, 3), "video", "crop_flip")])
def test_tm_unrolls_on_5d_sets(net, shape, modality, dsa):
    """TM (an extension on these modalities): the loss on voxels equals a hand-written
    2-step full-batch SGD unroll; on video with frame-wise DSA it is finite and moves
    the clips."""
    model, apply_fn = net
    ds = _ds(shape, modality)
    x = jnp.asarray(ds.images[:4])
    y = jnp.asarray(ds.labels[[0, 1, 3, 4]])
    start = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    target = jax.tree.map(lambda p: p + 0.05, start)
    aug = augment.make_augment(dsa, modality=modality)
    loss = tm.make_loss(apply_fn, syn_steps=2, augment=aug)
    ctx = tm.TMContext(start=start, target=target, syn_lr=jnp.float32(0.1))
    val, g = jax.jit(jax.value_and_grad(loss, argnums=1))(jax.random.PRNGKey(1), x, y, ctx)
    assert np.isfinite(float(val)) and np.abs(np.asarray(g)).max() > 0
    if aug is None:
        theta = start
        for _ in range(2):
            gr = jax.grad(lambda p: cross_entropy(apply_fn(p, x), y))(theta)
            theta = jax.tree.map(lambda p, d: p - 0.1 * d, theta, gr)
        ref = tm.param_distance(theta, target) / tm.param_distance(start, target)
        np.testing.assert_allclose(float(val), float(ref), rtol=1e-4)
