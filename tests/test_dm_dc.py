"""DM and DC objectives: losses against numpy references, siamese DSA, DC's network schedule,
and a DM/DC run through the generic loop (`jaxdd.distill.Run`)."""
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxdd.models import get_model
from jaxdd.objective import dc, dm

C, H = 3, 8  # classes, image side (8x8x1)
STRATEGY = "color_crop_cutout_flip_scale_rotate"
SMALL = "color"  # one op group: cheap to compile; the op select is tested against dsa above


@pytest.fixture(scope="module")
def net():
    model = get_model("ConvNetD1W4", C)
    init = dm.make_init_fn(model, (H, H, 1))
    params = jax.jit(init)(jax.random.PRNGKey(0))
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=True)  # noqa: E731
    return model, init, params, apply_fn


def images(key, n):
    return jax.random.normal(jax.random.PRNGKey(key), (n, H, H, 1))


# ----------------------------------------------------------------------------- shared pieces

def test_real_by_class_and_sample_real():
    labels = np.array([0, 1, 1, 2, 2, 2, 1, 2])
    x = np.arange(8, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1), np.float32)
    real, counts = dm.real_by_class(x, labels, 3)
    assert real.shape == (3, 4, 2, 2, 1) and counts.tolist() == [1, 3, 4]
    for batch in (2, 4):
        imgs, mask = jax.jit(dm.sample_real, static_argnums=3)(
            jax.random.PRNGKey(batch), jnp.asarray(real), jnp.asarray(counts), batch)
        imgs, mask = np.asarray(imgs), np.asarray(mask)
        assert imgs.shape == (3, batch, 2, 2, 1)
        for c in range(3):
            k = min(batch, counts[c])
            np.testing.assert_array_equal(mask[c], np.arange(batch) < k)
            ids = imgs[c, :k, 0, 0, 0].astype(int)
            assert len(set(ids)) == k  # without replacement
            assert all(labels[i] == c for i in ids)  # from the right class
    with pytest.raises(ValueError, match="no training"):
        dm.real_by_class(x, labels, 4)


def test_embed_fn_is_classifier_input(net):
    model, _, params, apply_fn = net
    x = images(1, 5)
    f = jax.jit(dm.make_embed_fn(model))(params, x)
    # 1-channel input: the authors' first-conv padding 3 (gray_padding, on by default)
    assert f.shape == (5, 4 * ((H + 4) // 2) ** 2)
    w, b = params["classifier"]["kernel"], params["classifier"]["bias"]
    np.testing.assert_allclose(f @ w + b, jax.jit(apply_fn)(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy,mode", [(STRATEGY, "S"), ("crop_flip_crop", "M")])
def test_class_augment_is_dsa_batchmode_per_class(strategy, mode):
    from jaxdd.augment import DSAParams, dsa
    aug = dm.make_class_augment(strategy, mode)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    x = images(2, 8)
    cls = jnp.array([2, 0, 1, 0, 2, 1, 3, 3])  # any order (2 per class: one dsa compile)
    out = np.asarray(jax.jit(aug)(keys, x, cls))
    for c in range(4):
        sel = np.flatnonzero(np.asarray(cls) == c)
        # DSA's seeded call on the class batch: one transform for the whole batch
        ref = dsa(keys[c], x[sel], strategy=strategy, mode=mode,
                  params=DSAParams(batchmode=True))
        np.testing.assert_allclose(out[sel], ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out, x)
    assert dm.make_class_augment("none") is None


# ----------------------------------------------------------------------------- DM

def np_dm(e_real, mask, e_syn, cls):
    """float64 reference: sum over present classes of ||masked mean real - mean syn||^2."""
    total = 0.0
    for c in range(e_real.shape[0]):
        sel = cls == c
        if not sel.any():
            continue
        m = mask[c].astype(bool)
        total += np.sum((e_real[c][m].mean(0) - e_syn[sel].mean(0)) ** 2)
    return total


def linear_embed(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"]


def test_dm_loss_matches_numpy_any_order_and_counts():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(H * H, 5)), jnp.float32)}
    loss = jax.jit(dm.make_loss(linear_embed, C, augment=None))
    real = images(4, C * 4).reshape(C, 4, H, H, 1)
    mask = jnp.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], jnp.float32)
    ctx = dm.DMContext(params, real, mask)
    syn = images(5, 5)
    cls = np.array([1, 0, 1, 1, 0])  # class 2 absent, unequal counts, any order
    val = loss(jax.random.PRNGKey(0), syn, jnp.asarray(cls), ctx)
    w = np.asarray(params["w"], np.float64)
    e_real = np.asarray(real, np.float64).reshape(C, 4, -1) @ w
    e_syn = np.asarray(syn, np.float64).reshape(5, -1) @ w
    ref = np_dm(e_real, np.asarray(mask), e_syn, cls)
    np.testing.assert_allclose(val, ref, rtol=1e-5)
    assert val > 0
    # soft labels are grouped by their argmax
    soft = jax.nn.one_hot(cls, C) * 0.8 + 0.2 / C
    np.testing.assert_allclose(loss(jax.random.PRNGKey(0), syn, soft, ctx), val, rtol=1e-6)
    # real classes in chunks of 2 (sequential lax.map): same value
    chunked = jax.jit(dm.make_loss(linear_embed, C, augment=None, class_chunk=2))
    np.testing.assert_allclose(chunked(jax.random.PRNGKey(0), syn, jnp.asarray(cls), ctx), val,
                               rtol=1e-5)
    # the gradient reaches only the synthetic images (finite differences, one entry)
    g = jax.grad(lambda x: loss(jax.random.PRNGKey(0), x, jnp.asarray(cls), ctx))(syn)
    eps, idx = 1e-2, (2, 3, 4, 0)
    xp, xm = np.asarray(syn, np.float64).copy(), np.asarray(syn, np.float64).copy()
    xp[idx] += eps
    xm[idx] -= eps
    fd = (np_dm(e_real, np.asarray(mask), xp.reshape(5, -1) @ w, cls)
          - np_dm(e_real, np.asarray(mask), xm.reshape(5, -1) @ w, cls)) / (2 * eps)
    np.testing.assert_allclose(g[idx], fd, rtol=1e-3, atol=1e-5)


def non_siamese(strategy):
    """A control: the real batch (12 images) and the synthetic set (9) get different keys."""
    aug = dm.make_class_augment(strategy)
    return lambda keys, x, cls: aug(
        jax.vmap(lambda k: jax.random.fold_in(k, x.shape[0]))(keys), x, cls)


def test_dm_zero_when_synthetic_is_the_real_batch_under_siamese_dsa():
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (H * H, 5))}
    real = images(6, C * 4).reshape(C, 4, H, H, 1)
    ctx = dm.DMContext(params, real, jnp.array([[1, 1, 1, 0]] * C, jnp.float32))
    syn = real[:, :3].reshape(-1, H, H, 1)
    cls = jnp.repeat(jnp.arange(C), 3)
    perm = jnp.array([4, 0, 8, 2, 6, 1, 3, 7, 5])  # any order of the synthetic set
    loss = jax.jit(dm.make_loss(linear_embed, C, augment=dm.make_class_augment(SMALL)))
    control = jax.jit(dm.make_loss(linear_embed, C, augment=non_siamese(SMALL)))
    ctrl = []
    for seed in range(4):
        k = jax.random.PRNGKey(seed)
        assert float(loss(k, syn[perm], cls[perm], ctx)) < 1e-9
        assert float(loss(k, syn + 0.5 * images(7, 9), cls, ctx)) > 1e-4
        ctrl.append(float(control(k, syn, cls, ctx)))
    assert min(ctrl) > 1e-4  # different transforms: not zero


# ----------------------------------------------------------------------------- DC distance

def np_distance_wb(g_real, g_syn):
    """DC's distance_wb on PyTorch-layout tensors (out, ...), float64."""
    shape = g_real.shape
    if len(shape) == 1:
        return 0.0
    a = g_real.reshape(shape[0], -1).astype(np.float64)
    b = g_syn.reshape(shape[0], -1).astype(np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-6)
    return float(np.sum(1 - cos))


def to_torch_layout(g):
    """flax conv (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out) -> (out, in)."""
    g = np.asarray(g)
    if g.ndim == 4:
        return g.transpose(3, 2, 0, 1)
    if g.ndim == 2:
        return g.T
    return g


def rand_tree(seed):
    rng = np.random.default_rng(seed)
    return {"conv": {"kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
                     "bias": rng.normal(size=(4,)).astype(np.float32)},
            "dense": {"kernel": rng.normal(size=(6, 3)).astype(np.float32),
                      "bias": rng.normal(size=(3,)).astype(np.float32)}}


def test_dc_distance_matches_numpy():
    a, b = rand_tree(0), rand_tree(1)
    dist = jax.jit(dc.gradient_distance)
    ref = sum(np_distance_wb(to_torch_layout(x), to_torch_layout(y))
              for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    np.testing.assert_allclose(dist(a, b), ref, rtol=1e-5)
    assert ref > 1.0
    # identical gradients: ~0 (only DC's 1e-6 in the denominator remains)
    assert abs(float(dist(a, a))) < 1e-5
    # biases alone do not count
    c = jax.tree.map(lambda x: x, a)
    c["conv"]["bias"] = -c["conv"]["bias"]
    assert abs(float(dist(a, c))) < 1e-5
    # a zero unit gives distance 1 for that unit and a finite gradient (PyTorch's norm)
    z = jax.tree.map(np.copy, b)
    z["dense"]["kernel"][:, 0] = 0.0
    ref_z = sum(np_distance_wb(to_torch_layout(x), to_torch_layout(y))
                for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(z)))
    np.testing.assert_allclose(dist(a, z), ref_z, rtol=1e-5)
    g = jax.jit(jax.grad(lambda t: dc.gradient_distance(a, t)))(z)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(g))


# ----------------------------------------------------------------------------- DC loss

def linear_apply(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"] + p["b"]


def np_ce_grad_w(x, w, b, c):
    """d mean CE(x w + b, c) / d w for a linear softmax classifier, float64."""
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    z = x @ w + b
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[:, c] -= 1.0
    return x.T @ p / x.shape[0]


def test_dc_loss_matches_per_class_numpy_reference():
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(H * H, C)) * 0.3, rng.normal(size=(C,)) * 0.1
    params = {"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
    real = images(8, C * 4).reshape(C, 4, H, H, 1)
    mask = jnp.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], jnp.float32)
    ctx = dc.DCContext(params, real, mask)
    syn = images(9, 5)
    cls = np.array([2, 0, 2, 0, 0])  # class 1 absent, any order

    def ref_loss(syn_np):
        total = 0.0
        for c in (0, 2):
            n = int(mask[c].sum())
            gr = np_ce_grad_w(np.asarray(real[c, :n]), w, b, c)  # (in, out): units = columns
            gs = np_ce_grad_w(syn_np[cls == c], w, b, c)
            total += np_distance_wb(gr.T, gs.T)  # bias gradients do not count
        return total

    ref = ref_loss(np.asarray(syn, np.float64))
    loss = dc.make_loss(linear_apply, C, augment=None)
    key = jax.random.PRNGKey(0)
    lab = jnp.asarray(cls)
    static = jax.jit(lambda k, x, ctx: loss(k, x, lab, ctx))(key, syn, ctx)  # grouped path
    traced = jax.jit(loss)(key, syn, lab, ctx)  # labels traced -> one-hot path
    np.testing.assert_allclose(static, ref, rtol=1e-4)
    np.testing.assert_allclose(traced, ref, rtol=1e-4)
    assert ref > 0.1
    chunked = dc.make_loss(linear_apply, C, augment=None, class_chunk=2)
    np.testing.assert_allclose(jax.jit(chunked)(key, syn, lab, ctx), ref, rtol=1e-4)
    g = jax.jit(jax.grad(loss, argnums=1))(key, syn, lab, ctx)
    eps, idx = 1e-3, (3, 2, 5, 0)
    xp, xm = np.asarray(syn, np.float64).copy(), np.asarray(syn, np.float64).copy()
    xp[idx] += eps
    xm[idx] -= eps
    np.testing.assert_allclose(g[idx], (ref_loss(xp) - ref_loss(xm)) / (2 * eps),
                               rtol=2e-3, atol=1e-5)


def test_dc_zero_when_synthetic_is_the_real_batch_under_siamese_dsa():
    params, apply_fn = linear_init(jax.random.PRNGKey(0)), linear_apply
    real = images(10, C * 4).reshape(C, 4, H, H, 1)
    ctx = dc.DCContext(params, real, jnp.array([[1, 1, 1, 0]] * C, jnp.float32))
    syn = real[:, :3].reshape(-1, H, H, 1)
    cls = jnp.repeat(jnp.arange(C), 3)
    loss = jax.jit(dc.make_loss(apply_fn, C, augment=dm.make_class_augment(SMALL)))
    control = jax.jit(dc.make_loss(apply_fn, C, augment=non_siamese(SMALL)))
    ctrl = []
    for seed in range(4):
        k = jax.random.PRNGKey(seed)
        assert float(loss(k, syn[::-1], cls[::-1], ctx)) < 1e-3  # only the 1e-6 eps remains
        assert float(loss(k, syn + 0.5 * images(11, 9), cls, ctx)) > 0.05
        ctrl.append(float(control(k, syn, cls, ctx)))
    assert min(ctrl) > 0.05  # different transforms: not zero


# ----------------------------------------------------------------------------- DC schedule

def linear_init(key):
    kw, kb = jax.random.split(key)
    return {"w": 0.3 * jax.random.normal(kw, (H * H, C)), "b": 0.1 * jax.random.normal(kb, (C,))}


def test_dc_post_step_reinitializes_every_outer_loop_and_trains_between():
    lr = 0.5
    tx = optax.sgd(lr)
    train = dc.make_net_trainer(linear_apply, tx, inner_loop=1, batch_train=256, augment=None)
    init_state, post_step = dc.make_schedule(linear_init, tx, train, outer_loop=3)
    syn = images(12, 6)
    lab = jnp.repeat(jnp.arange(C), 2)
    post = jax.jit(post_step)
    state = init_state(jax.random.PRNGKey(1))
    jax.tree.map(np.testing.assert_array_equal, state["params"],
                 linear_init(jax.random.PRNGKey(1)))
    x = np.asarray(syn, np.float64).reshape(6, -1)

    def np_ce(p):
        z = x @ np.asarray(p["w"], np.float64) + np.asarray(p["b"], np.float64)
        z = z - z.max(-1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(6), np.asarray(lab)]))

    for step in range(6):
        key = jax.random.PRNGKey(100 + step)
        new = post(key, state, syn, lab, None, jnp.int32(step))
        if step % 3 == 2:  # last synthetic update of the outer loop -> fresh network
            fresh = linear_init(jax.random.split(key)[0])
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                         new["params"], fresh)
        else:  # one epoch = one full-batch SGD step (N <= batch_train, no augmentation)
            w, b = (np.asarray(state["params"][k], np.float64) for k in ("w", "b"))
            z = x @ w + b
            p = np.exp(z - z.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            p[np.arange(6), np.asarray(lab)] -= 1.0
            np.testing.assert_allclose(new["params"]["w"], w - lr * x.T @ p / 6, rtol=1e-4,
                                       atol=1e-6)
            np.testing.assert_allclose(new["params"]["b"], b - lr * p.mean(0), rtol=1e-4,
                                       atol=1e-6)
            assert np_ce(new["params"]) < np_ce(state["params"])
        state = new
    # outer_loop 1 (DC at IPC 1): a fresh network after every update
    _, post1 = dc.make_schedule(linear_init, tx, train, outer_loop=1)
    out = post1(jax.random.PRNGKey(7), state, syn, lab, None, jnp.int32(0))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), out["params"],
                 linear_init(jax.random.split(jax.random.PRNGKey(7))[0]))


def test_dc_trainer_minibatches_cover_the_set_with_a_short_last_batch():
    tx = optax.sgd(0.5, momentum=0.5)
    n, bt = 5, 2  # batches of 2, 2, 1 per epoch
    syn, lab = images(13, n), jnp.array([0, 1, 2, 0, 1])
    params = linear_init(jax.random.PRNGKey(2))
    train = dc.make_net_trainer(linear_apply, tx, inner_loop=2, batch_train=bt, augment=None)
    key = jax.random.PRNGKey(5)
    out = jax.jit(train)(key, {"params": params, "opt": tx.init(params)}, syn, lab)
    # reference: the same permutations, numpy loop over the (short) batches, SGD momentum
    k_perm, _ = jax.random.split(key)
    w, b = np.asarray(params["w"], np.float64), np.asarray(params["b"], np.float64)
    mw, mb = np.zeros_like(w), np.zeros_like(b)
    x_all = np.asarray(syn, np.float64).reshape(n, -1)
    for k in jax.random.split(k_perm, 2):
        perm = np.asarray(jax.random.permutation(k, n))
        for s in range(0, n, bt):
            i = perm[s:s + bt]
            x, y = x_all[i], np.asarray(lab)[i]
            z = x @ w + b
            p = np.exp(z - z.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            p[np.arange(len(i)), y] -= 1.0
            mw, mb = 0.5 * mw + x.T @ p / len(i), 0.5 * mb + p.mean(0)
            w, b = w - 0.5 * mw, b - 0.5 * mb
    np.testing.assert_allclose(out["params"]["w"], w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["params"]["b"], b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(w, params["w"])


# ----------------------------------------------------------------------------- the loop

def tiny_config(objective):
    from jaxdd import config as C_
    from jaxdd.param import pixel
    cfg = C_.base_config("digits", 1)
    cfg.dataset.resolution = None  # native 8x8
    cfg.model.name = "ConvNetD1W4"
    cfg.dsa_strategy = "none"  # DSA is tested above; keeps the compile small
    cfg.iterations = 3
    cfg.checkpoint_every = 2
    cfg.log_every = 1
    cfg.param = pixel.default_config()
    cfg.param.name = "pixel"
    cfg.param.ipc = 1
    cfg.objective = ml_collections.ConfigDict(dict(
        name=objective, batch_real=16, outer_loop=2, inner_loop=1, lr_net=0.01,
        net_momentum=0.0, batch_train=256))
    cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=1.0, momentum=0.5))
    cfg.opt.lr.init = 0.01
    cfg.eval.final = False
    return cfg


@pytest.mark.parametrize("objective", ["dm", "dc"])
def test_distill_run_end_to_end(tmp_path, objective):
    from jaxdd import distill
    cfg = tiny_config(objective)
    run = distill.Run(cfg, str(tmp_path), progress=False)
    p0 = np.asarray(run.state.syn_params["images"])
    result = run.train()
    assert result["step"] == 3 and result["syn_lr"] == pytest.approx(0.01)  # lr not learned
    p1 = np.asarray(run.state.syn_params["images"])
    assert np.isfinite(p1).all() and not np.allclose(p0, p1)
    with open(os.path.join(str(tmp_path), "metrics.jsonl")) as f:
        losses = [json.loads(line)["loss"] for line in f if "loss" in line]
    assert len(losses) == 3 and all(np.isfinite(losses)) and max(losses) > 0
    if objective == "dc":
        # iteration 3 (step index 2) is the first of a new outer loop of 2 (reset at step 1)
        assert set(run.state.obj_state) == {"params", "opt"}
