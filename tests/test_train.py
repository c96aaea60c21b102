"""The training core (jaxdd.train) and the CE family (jaxdd.losses), tiny shapes."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdd import losses as L
from jaxdd import train as T
from jaxdd.models import get_model

C, S = 3, 8  # classes, image side


def _data(n, seed=0):
    rng = np.random.RandomState(seed)
    return (jnp.asarray(rng.randn(n, S, S, 1).astype(np.float32)),
            jnp.asarray(rng.randint(0, C, n).astype(np.int32)))


def linear_apply(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"] + p["b"]


def _linear_params(seed=0):
    rng = np.random.RandomState(seed)
    return {"w": jnp.asarray(0.1 * rng.randn(S * S, C).astype(np.float32)),
            "b": jnp.asarray(0.1 * rng.randn(C).astype(np.float32))}


def _np_grad(p, x, y):
    """Mean-CE gradient of the linear model in float64 (soft or hard targets)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    z = x @ np.asarray(p["w"], np.float64) + np.asarray(p["b"], np.float64)
    q = np.exp(z - z.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    t = np.eye(C)[np.asarray(y)] if np.ndim(y) == 1 else np.asarray(y, np.float64)
    d = (q - t) / len(x)
    return {"w": x.T @ d, "b": d.sum(0)}


def _stack(tree):
    return jax.tree.map(lambda a: jnp.asarray(a)[None], tree)


# ----------------------------------------------------------------------------- losses

def test_losses_hard_soft_weights_temperature():
    rng = np.random.RandomState(0)
    z = jnp.asarray(rng.randn(5, C).astype(np.float32))
    y = jnp.asarray([0, 1, 2, 1, 0])
    logp = np.asarray(jax.nn.log_softmax(z), np.float64)
    ce = -logp[np.arange(5), np.asarray(y)]
    np.testing.assert_allclose(L.cross_entropy(z, y), ce.mean(), rtol=1e-6)
    # one-hot soft targets == hard labels
    np.testing.assert_allclose(L.cross_entropy(z, jax.nn.one_hot(y, C)), ce.mean(), rtol=1e-6)
    # 0/1 weights: the mean over the kept entries
    w = jnp.asarray([1, 1, 0, 1, 0], jnp.float32)
    np.testing.assert_allclose(L.cross_entropy(z, y, w), ce[[0, 1, 3]].mean(), rtol=1e-6)
    # soft targets at temperature T: T^2 * CE(softmax(z / T)); hard labels ignore T
    p = jax.nn.softmax(jnp.asarray(rng.randn(5, C).astype(np.float32)))
    t = 4.0
    lq = np.asarray(jax.nn.log_softmax(z / t), np.float64)
    want = -(np.asarray(p) * lq).sum(-1).mean() * t * t
    np.testing.assert_allclose(L.cross_entropy(z, p, temperature=t), want, rtol=1e-6)
    np.testing.assert_allclose(L.cross_entropy(z, y, temperature=t), ce.mean(), rtol=1e-6)
    # KL = soft CE - entropy of the target (same gradient), 0 at a perfect match
    ent = -(np.asarray(p) * np.log(np.asarray(p))).sum(-1).mean()
    soft1 = -(np.asarray(p) * logp).sum(-1).mean()
    np.testing.assert_allclose(L.kl_divergence(z, p), soft1 - ent, rtol=1e-5)
    assert abs(float(L.kl_divergence(jnp.log(p), p))) < 1e-6
    g1 = jax.grad(lambda a: L.kl_divergence(a, p))(z)
    g2 = jax.grad(lambda a: L.cross_entropy(a, p))(z)
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)


def test_one_cross_entropy_family_in_the_library():
    """No module outside jaxdd/losses.py computes a cross-entropy of its own."""
    import os
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jaxdd")
    found = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py") and f != "losses.py":
                src = open(os.path.join(d, f)).read()
                found += [f"{f}: {w}" for w in ("log_softmax", "softmax_cross_entropy")
                          if w in src]
    assert not found, found


# ----------------------------------------------------------------------------- orders / batches

@pytest.mark.parametrize("last", ["short", "drop", "wrap"])
def test_explicit_order_seam_and_last_batch(last):
    """SGD on a given order, batches of 2 over 5 examples: the steps of a numpy loop."""
    x, y = _data(5)
    p0 = _linear_params()
    lr = 0.5
    tr = T.make_trainer(linear_apply, optax.sgd, batch_size=2, last_batch=last)
    order = jnp.asarray([[3, 0, 4, 1, 2]])
    st = jax.vmap(tr.create)(_stack(p0))
    st, met = jax.jit(tr.epoch)(st, order, None, x, y, jnp.float32(lr))
    o = np.asarray(order[0])
    batches = {"short": [o[0:2], o[2:4], o[4:]], "drop": [o[0:2], o[2:4]],
               "wrap": [o[0:2], o[2:4], np.r_[o[4:], o[:1]]]}[last]
    assert met["loss"].shape == (1, len(batches)) == (1, tr.num_steps(5))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), p0)
    for i in batches:
        g = _np_grad(p, np.asarray(x)[i], np.asarray(y)[i])
        p = jax.tree.map(lambda a, b: a - lr * b, p, g)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-6),
                 st.params, p)
    assert int(st.step[0]) == len(batches)


def test_soft_labels_with_temperature_in_a_step():
    x, _ = _data(4, 1)
    p0 = _linear_params(1)
    t = 3.0
    soft = jax.nn.softmax(jnp.asarray(np.random.RandomState(2).randn(4, C), jnp.float32))
    tr = T.make_trainer(linear_apply, optax.sgd(1.0), batch_size=4,
                        loss=functools.partial(L.cross_entropy, temperature=t))
    st = jax.vmap(tr.create)(_stack(p0))
    st, _ = tr.epoch(st, jnp.arange(4)[None], None, x, soft)
    # d/dz [T^2 CE(p, softmax(z/T))] = T (softmax(z/T) - p); z linear in the params
    xs = np.asarray(x, np.float64).reshape(4, -1)
    z = xs @ np.asarray(p0["w"], np.float64) + np.asarray(p0["b"], np.float64)
    q = np.exp(z / t - (z / t).max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    d = t * (q - np.asarray(soft, np.float64)) / 4
    np.testing.assert_allclose(st.params["w"][0], np.asarray(p0["w"]) - xs.T @ d, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(st.params["b"][0], np.asarray(p0["b"]) - d.sum(0), rtol=1e-5,
                               atol=1e-6)


# ----------------------------------------------------------------------------- BN / vmap

@pytest.fixture(scope="module")
def bn_model():
    return get_model("ConvNetD1W4BN", C)


def _flip(k, x):
    return jnp.where(jax.random.bernoulli(k, 0.5, (x.shape[0], 1, 1, 1)), x[:, :, ::-1], x)


def test_k_networks_vmapped_equal_k_single_runs(bn_model):
    """3 BN networks (own init, order, augmentation; short last batch) == 3 runs of K=1."""
    x, y = _data(7, 3)
    tr = T.make_trainer(bn_model, lambda lr: optax.sgd(lr, momentum=0.9), batch_size=3,
                        augment=_flip)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    orders = T.random_orders(jax.random.split(jax.random.PRNGKey(1), 3), 7)
    skeys = jax.random.split(jax.random.PRNGKey(2), 9).reshape(3, 3, 2)
    epoch = jax.jit(tr.epoch)
    st = jax.jit(tr.init)(keys, x[:1])
    together, met = epoch(st, orders, skeys, x, y, jnp.float32(0.05))
    assert met["loss"].shape == (3, 3)
    for k in range(3):
        one = jax.tree.map(lambda a: a[k:k + 1], st)
        got, m1 = epoch(one, orders[k:k + 1], skeys[k:k + 1], x, y, jnp.float32(0.05))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[k], b[0], rtol=2e-5,
                                                             atol=2e-6), together, got)
        np.testing.assert_allclose(met["loss"][k], m1["loss"][0], rtol=1e-5)


def test_net_loop_map_equals_vmap(bn_model):
    """net_loop='map' (networks one after the other) trains and predicts like 'vmap'; 'auto'
    resolves to 'map' on one CPU device and 'vmap' when K is split over devices."""
    x, y = _data(7, 3)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    orders = T.random_orders(jax.random.split(jax.random.PRNGKey(1), 2), 7)
    skeys = jax.random.split(jax.random.PRNGKey(2), 6).reshape(2, 3, 2)
    out = {}
    for loop in ("vmap", "map"):
        tr = T.make_trainer(bn_model, lambda lr: optax.sgd(lr, momentum=0.9), batch_size=3,
                            augment=_flip, net_loop=loop)
        assert tr.net_loop == loop
        st = jax.jit(tr.init)(keys, x[:1])
        st, met = jax.jit(tr.epoch)(st, orders, skeys, x, y, jnp.float32(0.05))
        out[loop] = (st, met, jax.jit(tr.logits)(st, x))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
                 out["vmap"], out["map"])
    assert T.resolve_net_loop("auto", 1) == ("map" if jax.default_backend() == "cpu"
                                             else "vmap")
    assert T.resolve_net_loop("auto", 8) == "vmap"
    with pytest.raises(ValueError, match="net_loop"):
        T.make_trainer(bn_model, optax.sgd(0.1), net_loop="loop")


def test_batchnorm_state_carried_and_used_in_eval_mode(bn_model):
    x, y = _data(7, 4)
    tr = T.make_trainer(bn_model, optax.sgd(0.05), batch_size=3)
    # jitted throughout: eagerly, every flax op below is a compile of its own
    st0 = jax.jit(tr.init)(jax.random.split(jax.random.PRNGKey(0), 2), x[:1])
    assert jax.tree.leaves(st0.batch_stats)
    st, _ = jax.jit(tr.epoch)(st0, T.random_orders(jax.random.split(jax.random.PRNGKey(1), 2),
                                                   7), None, x, y)
    # the running statistics moved (3 steps: batches 3, 3 and the short last one of 1...)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), st.batch_stats,
                         st0.batch_stats)
    assert min(jax.tree.leaves(moved)) > 0
    # ... the last of 1 example ran as its own step: the statistics equal 3 explicit steps
    one = jax.tree.map(lambda a: a[0], st0)
    order = np.asarray(T.random_orders(jax.random.split(jax.random.PRNGKey(1), 2), 7)[0])
    @jax.jit
    def explicit_step(v, xb, yb):
        def lf(p):
            out, upd = bn_model.apply({**v, "params": p}, xb, train=True,
                                      mutable=["batch_stats"])
            return L.cross_entropy(out, yb), upd
        (_, upd), g = jax.value_and_grad(lf, has_aux=True)(v["params"])
        return {"params": jax.tree.map(lambda a, b: a - 0.05 * b, v["params"], g), **upd}

    v = one.variables
    for i in (order[0:3], order[3:6], order[6:]):
        v = explicit_step(v, x[i], y[i])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-5),
                 st.variables, v)
    # eval mode uses the running statistics (== model.apply(train=False)), not the batch's
    logits = jax.jit(tr.logits)(st, x)
    apply = jax.jit(bn_model.apply, static_argnames=("train", "mutable"))
    net1 = jax.tree.map(lambda a: a[1], st.variables)
    want = apply(net1, x, train=False)
    np.testing.assert_allclose(logits[1], want, rtol=1e-5, atol=1e-5)
    train_mode, _ = apply(net1, x, train=True, mutable=("batch_stats",))
    assert float(jnp.abs(train_mode - want).max()) > 1e-3
    np.testing.assert_array_equal(jax.jit(tr.correct)(st, x, y),
                                  (logits.argmax(-1) == y[None]).sum(-1))


# ----------------------------------------------------------------------------- schedule

def test_authors_schedule_and_the_drop_with_momentum_reset():
    from jaxdd.evaluate import _schedule
    assert T.authors_schedule(1000) == (502, 499)
    assert T.authors_schedule(4) == (4, 1) and T.authors_schedule(0) == (1, 0)
    calls = []
    out = _schedule(lambda c, lr, start, n: calls.append(("run", lr, start, n)) or c + n,
                    lambda c: calls.append(("reset",)) or c, 0, lr=0.1, epochs=10,
                    chunk_epochs=4)
    assert out == 11  # E + 1 passes
    assert calls == [("run", 0.1, 0, 4), ("run", 0.1, 4, 3), ("reset",),
                     ("run", 0.1 * 0.1, 7, 4)]


def test_lr_factory_keeps_the_lr_traced():
    """A factory lr -> tx: one compile serves every lr; sgd(lr) == lr x sgd(1)."""
    x, y = _data(4)
    tr = T.make_trainer(linear_apply, lambda lr: optax.sgd(lr, momentum=0.9), batch_size=2)
    st = jax.vmap(tr.create)(_stack(_linear_params()))
    f = jax.jit(tr.epoch)
    a, _ = f(st, jnp.arange(4)[None], None, x, y, jnp.float32(0.1))
    b, _ = f(st, jnp.arange(4)[None], None, x, y, jnp.float32(0.2))
    assert f._cache_size() == 1
    assert float(jnp.abs(a.params["w"] - b.params["w"]).max()) > 1e-5


# ----------------------------------------------------------------------------- users

def test_evaluate_synthetic_with_a_batchnorm_model(bn_model):
    from jaxdd.evaluate import evaluate_synthetic
    x, y = _data(9, 5)
    xt, yt = _data(20, 6)
    res = evaluate_synthetic(jax.random.PRNGKey(0), bn_model, x, y, xt, yt, lr=0.01,
                             num_nets=2, epochs=3, batch_size=4, dsa_strategy="flip",
                             progress=False)
    assert res.accs.shape == (2,) and res.passes == 4
    assert np.all((res.accs >= 0) & (res.accs <= 1))


def test_cfm_teacher_and_students_on_the_core(bn_model):
    from jaxdd import teacher
    x, y = _data(10, 7)
    v = teacher.train_teacher(jax.random.key(0), bn_model, x, y, epochs=2, batch_size=4,
                          crop_pad=1, progress=False)
    assert set(v) == {"params", "batch_stats"}
    res = teacher.evaluate_soft(jax.random.key(1), get_model("ConvNetD1W4", C), bn_model, v,
                            x[:5], x, y, num_nets=2, epochs=2, batch_size=4,
                            rrc_scale=(0.5, 1.0), progress=False)
    assert res.accs.shape == (2,)
