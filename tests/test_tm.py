"""TM loss against a hand-written unroll; remat equivalence; minibatch schedule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd.objective import tm

jax.config.update("jax_enable_x64", False)


def linear_apply(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"] + p["b"]


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def np_tm_loss(images, labels, lr, w0, b0, wt, bt, steps):
    """Hand-written full-batch unroll of a linear softmax classifier, float64."""
    x = images.reshape(images.shape[0], -1).astype(np.float64)
    n, k = x.shape[0], w0.shape[1]
    onehot = np.eye(k)[labels]
    w, b = w0.astype(np.float64), b0.astype(np.float64)
    for _ in range(steps):
        p = np_softmax(x @ w + b)
        gz = (p - onehot) / n  # d mean CE / d logits
        w, b = w - lr * (x.T @ gz), b - lr * gz.sum(0)
    num = ((w - wt) ** 2).sum() + ((b - bt) ** 2).sum()
    den = ((w0 - wt) ** 2).sum() + ((b0 - bt) ** 2).sum()
    return num / den


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 3, 3, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 1], np.int32)
    w0 = rng.normal(size=(9, 3)).astype(np.float32) * 0.3
    b0 = rng.normal(size=(3,)).astype(np.float32) * 0.1
    wt = w0 + rng.normal(size=(9, 3)).astype(np.float32) * 0.2
    bt = b0 + rng.normal(size=(3,)).astype(np.float32) * 0.2
    return images, labels, w0, b0, wt, bt


def test_tm_loss_matches_hand_unroll_value_and_grads(problem):
    images, labels, w0, b0, wt, bt = problem
    lr = 0.5
    loss = tm.make_loss(linear_apply, syn_steps=2, batch_syn=0, augment=None, remat=False)
    ctx = tm.TMContext(start={"w": jnp.asarray(w0), "b": jnp.asarray(b0)},
                       target={"w": jnp.asarray(wt), "b": jnp.asarray(bt)},
                       syn_lr=jnp.float32(lr))
    key = jax.random.PRNGKey(0)

    def f(x, s):
        return loss(key, x, jnp.asarray(labels), ctx._replace(syn_lr=s))

    val, (gx, gs) = jax.value_and_grad(f, argnums=(0, 1))(jnp.asarray(images), jnp.float32(lr))
    ref = np_tm_loss(images, labels, lr, w0, b0, wt, bt, steps=2)
    np.testing.assert_allclose(val, ref, rtol=1e-5)
    assert ref != pytest.approx(1.0)  # the unroll moved the student

    # gradients against central finite differences of the float64 hand computation
    eps = 1e-4
    d_lr = (np_tm_loss(images, labels, lr + eps, w0, b0, wt, bt, 2)
            - np_tm_loss(images, labels, lr - eps, w0, b0, wt, bt, 2)) / (2 * eps)
    np.testing.assert_allclose(gs, d_lr, rtol=2e-3, atol=1e-6)
    gx = np.asarray(gx)
    for idx in [(0, 0, 0, 0), (1, 2, 1, 0), (3, 1, 2, 0)]:
        xp, xm = images.astype(np.float64), images.astype(np.float64)
        xp, xm = xp.copy(), xm.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (np_tm_loss(xp, labels, lr, w0, b0, wt, bt, 2)
              - np_tm_loss(xm, labels, lr, w0, b0, wt, bt, 2)) / (2 * eps)
        np.testing.assert_allclose(gx[idx], fd, rtol=2e-3, atol=1e-6)


def test_remat_gives_same_gradient(problem):
    images, labels, w0, b0, wt, bt = problem
    ctx = tm.TMContext(start={"w": jnp.asarray(w0), "b": jnp.asarray(b0)},
                       target={"w": jnp.asarray(wt), "b": jnp.asarray(bt)},
                       syn_lr=jnp.float32(0.3))
    aug = lambda k, x: x + 0.1 * jax.random.normal(k, x.shape)  # keyed, like DSA
    grads = []
    for remat in (False, True):
        loss = tm.make_loss(linear_apply, syn_steps=5, batch_syn=2, augment=aug, remat=remat)
        g = jax.grad(lambda x, c: loss(jax.random.PRNGKey(3), x, jnp.asarray(labels), c),
                     argnums=(0, 1))(jnp.asarray(images), ctx)
        grads.append(g)
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads[0][1].syn_lr, grads[1][1].syn_lr, rtol=1e-5)


def test_minibatch_schedule_covers_permutations():
    order = np.asarray(tm.minibatch_schedule(jax.random.PRNGKey(0), 6, syn_steps=4, batch_syn=3))
    assert order.shape == (4, 3)
    flat = order.reshape(-1)
    assert sorted(flat[:6]) == list(range(6)) and sorted(flat[6:12]) == list(range(6))


def test_real_guided_term_changes_gradient_only_with_gamma(problem):
    images, labels, w0, b0, wt, bt = problem
    rng = np.random.default_rng(1)
    real = jnp.asarray(rng.normal(size=(5, 3, 3, 1)).astype(np.float32))
    real_y = jnp.asarray([0, 1, 2, 0, 1], jnp.int32)
    ctx = tm.TMContext(start={"w": jnp.asarray(w0), "b": jnp.asarray(b0)},
                       target={"w": jnp.asarray(wt), "b": jnp.asarray(bt)},
                       syn_lr=jnp.float32(0.3), real_images=real, real_labels=real_y)
    g = {}
    for gamma in (0.0, 0.5):
        loss = tm.make_loss(linear_apply, syn_steps=2, gamma=gamma, remat=False)
        g[gamma] = jax.grad(lambda x: loss(jax.random.PRNGKey(0), x, jnp.asarray(labels), ctx))(
            jnp.asarray(images))
    plain = tm.make_loss(linear_apply, syn_steps=2, remat=False)
    g_plain = jax.grad(lambda x: plain(jax.random.PRNGKey(0), x, jnp.asarray(labels),
                                       ctx._replace(real_images=None, real_labels=None)))(
        jnp.asarray(images))
    np.testing.assert_allclose(g[0.0], g_plain, rtol=1e-6)
    assert not np.allclose(g[0.5], g_plain)


def test_mtt_schedule_short_chunk_first_and_masked():
    """MTT (distill.py:342-348): chunks of a permutation are popped from the END, so with
    n=5, batch_syn=2 the steps see 1, 2, 2 images, then a new permutation."""
    idx, w = tm.mtt_schedule(jax.random.PRNGKey(1), 5, syn_steps=4, batch_syn=2)
    idx, w = np.asarray(idx), np.asarray(w)
    assert idx.shape == w.shape == (4, 2)
    np.testing.assert_array_equal(w.sum(1), [1, 2, 2, 1])
    first = np.concatenate([idx[t][w[t] > 0] for t in range(3)])
    assert sorted(first) == list(range(5))


def test_explicit_schedule_equals_drawn_schedule(problem):
    """loss(key, ...) == loss.with_schedule(<the order the key draws>, ...)."""
    images, labels, w0, b0, wt, bt = problem
    ctx = tm.TMContext(start={"w": jnp.asarray(w0), "b": jnp.asarray(b0)},
                       target={"w": jnp.asarray(wt), "b": jnp.asarray(bt)},
                       syn_lr=jnp.float32(0.3))
    loss = tm.make_loss(linear_apply, syn_steps=3, batch_syn=3, augment=None, remat=False)
    key = jax.random.PRNGKey(2)
    korder, _ = jax.random.split(key)
    idx, w = tm.mtt_schedule(korder, 4, 3, 3)
    a = loss(key, jnp.asarray(images), jnp.asarray(labels), ctx)
    b = loss.with_schedule(idx, w, jnp.asarray(images), jnp.asarray(labels), ctx)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="syn_steps"):
        loss.with_schedule(idx[:2], w[:2], jnp.asarray(images), jnp.asarray(labels), ctx)
    with pytest.raises(ValueError, match="schedule"):
        tm.make_loss(linear_apply, syn_steps=3, schedule="random")


def _ocfg(**kw):
    import ml_collections
    d = dict(syn_steps=2, expert_epochs=1, max_start_epoch=2, batch_syn=0, remat=False,
             gamma=0.0, real_batch=4)
    d.update(kw)
    return ml_collections.ConfigDict(d)


def test_objective_from_trajectories_is_the_loss_on_the_sampled_slice(problem):
    """TM receives trajectories (no Run, no experts module): sample_ctx has the one
    signature (key, syn_lr, data, obj_state) and picks expert e, epochs s and s + ee."""
    images, labels, w0, b0, wt, bt = problem
    # 2 experts x 3 epochs of the linear model
    traj = {"w": np.stack([np.stack([w0, (w0 + wt) / 2, wt])] * 2),
            "b": np.stack([np.stack([b0, (b0 + bt) / 2, bt])] * 2)}
    obj = tm.make_objective(linear_apply, traj, _ocfg(), dsa_strategy="none")
    assert obj.learn_lr and obj.init_state is None
    # the trajectories stay on the host: the loop merges feed(key) (the two snapshots the
    # key selects) into the data sample_ctx sees
    assert "trajs" not in obj.data and obj.feed is not None
    key = jax.random.PRNGKey(0)
    data = {**obj.data, **obj.feed(key)}
    ctx = obj.sample_ctx(key, jnp.float32(0.1), data, ())
    s = [i for i in range(2) if np.allclose(ctx.start["w"], traj["w"][0, i])]
    assert len(s) == 1
    np.testing.assert_allclose(ctx.target["w"], traj["w"][0, s[0] + 1])
    val = obj.loss(jax.random.PRNGKey(1), jnp.asarray(images), jnp.asarray(labels), ctx)
    assert np.isfinite(float(val))
    # the loop's jit sees sample_ctx with the carried state () like every objective
    jax.jit(obj.sample_ctx)(key, jnp.float32(0.1), data, ())
    # on-device trajectories (host=False) select the same expert and epochs from the key
    dev = tm.make_objective(linear_apply, traj, _ocfg(), dsa_strategy="none", host=False)
    assert dev.feed is None and "trajs" in dev.data
    for k in jax.random.split(jax.random.PRNGKey(5), 6):
        a = obj.sample_ctx(k, 0.1, {**obj.data, **obj.feed(k)}, ())
        b = jax.jit(dev.sample_ctx)(k, jnp.float32(0.1), dev.data, ())
        for x, y in zip(jax.tree.leaves((a.start, a.target)),
                        jax.tree.leaves((b.start, b.target))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_objective_refuses_too_short_trajectories_and_missing_ones(problem):
    from jaxdd.objective import Setup
    _, _, w0, b0, _, _ = problem
    traj = {"w": np.stack([np.stack([w0, w0])]), "b": np.stack([np.stack([b0, b0])])}
    with pytest.raises(ValueError, match="max_start_epoch"):
        tm.make_objective(linear_apply, traj, _ocfg(max_start_epoch=2, expert_epochs=1))
    with pytest.raises(ValueError, match="trajectories"):
        tm.build(Setup(cfg=None, model=None, apply_fn=linear_apply, train_ds=None))
    assert tm.trajectory_epochs(_ocfg(max_start_epoch=5, expert_epochs=2)) == 7
