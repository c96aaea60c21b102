"""The CFM objective (jaxdd/objective/cfm.py): the pure recover loss equals the parity-checked
pieces composed by hand (tests/test_parity_unidd.py), value and gradient; it reduces to the
teacher's CE when the synthetic statistics equal the real ones; `build` schedules the
class-batches, the beta curriculum and the EMU cache through the loop's hooks; recover steps
of the generic loop's jitted step lower the loss."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdd import outer_step
from jaxdd import teacher as teacher_lib
from jaxdd.losses import cross_entropy
from jaxdd.models import get_model
from jaxdd.objective import Setup, spectral
from jaxdd.objective import cfm as obj

K = 3
IDENTITY = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, jitter=0, per_sample=False)
AUG = dict(scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), flip=True, jitter=2,
           per_sample=False)


@pytest.fixture(scope="module")
def teacher():
    model = get_model("ConvNetD2W4BN", K, conv_impl="native")
    rng = np.random.default_rng(0)
    v = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 8, 8, 2)))
    v = {"params": v["params"],
         "batch_stats": jax.tree.map(lambda a: a + 0.3 * jnp.arange(a.shape[0]) / a.shape[0],
                                     v["batch_stats"])}
    real_x = rng.normal(size=(30, 8, 8, 2)).astype(np.float32)
    real_y = np.arange(30, dtype=np.int32) % K
    st = teacher_lib.real_statistics(model, v, real_x, real_y, K, batch_size=10, progress=False,
                             merge="batch")
    return model, v, st


@pytest.mark.parametrize("filt,signal", [("hfm", "mean"), ("lfm", "class")])
def test_loss_equals_the_pieces_value_and_gradient(teacher, filt, signal):
    model, v, st = teacher
    real = obj.real_targets(st, signal)
    rng = np.random.default_rng(1)
    # a non-trivial EMU cache (batch 2 of the curriculum: weight 1/2)
    cache = jax.tree.map(lambda a: a * 0.9 + 0.01, real)
    x = jnp.asarray(rng.normal(size=(K, 8, 8, 2)), jnp.float32)
    labels = jnp.arange(K, dtype=jnp.int32)
    key = jax.random.key(7)
    beta, b = jnp.float32(spectral.curriculum_beta(0.1, 1, 4)), jnp.float32(2.0)
    ctx = obj.CFMContext(variables=v, real=real, cache=cache, beta=beta, b=b)
    loss = obj.make_loss(model, num_classes=K, filter=filt, signal=signal, eta=0.1, ema=True,
                         aug=AUG)
    val, g = jax.jit(jax.value_and_grad(loss, argnums=1))(key, x, labels, ctx)

    # recover_terms (the loss with its parts) gives the same value
    terms, (ce, lf, ls, batch) = obj.recover_terms(
        model, v, key, x, labels, real, cache, beta, b, num_classes=K, filter=filt,
        signal=signal, eta=0.1, ema=True, aug=AUG)
    np.testing.assert_allclose(float(val), float(terms), rtol=1e-6)
    np.testing.assert_allclose(float(terms), float(ce + 0.1 * (lf + ls)), rtol=1e-6)

    # gradient: the parity-checked pieces composed by hand (tests/test_parity_unidd.py)
    def by_hand(x):
        xa = obj.recover_augment(key, x, **AUG)
        logits, _, feats = obj.conv_inputs(model, v, xa)
        lf, ls, _ = obj.feature_losses(real, cache, feats, labels, beta, b, num_classes=K,
                                       filter=filt, signal=signal, ema=True)
        return cross_entropy(logits, labels) + 0.1 * (lf + ls)

    v2, g2 = jax.jit(jax.value_and_grad(by_hand))(x)
    np.testing.assert_allclose(float(val), float(v2), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g2), rtol=1e-5,
                               atol=1e-6 * float(jnp.abs(g2).max()))
    assert float(jnp.abs(g).max()) > 0


def test_loss_is_the_ce_when_synthetic_statistics_equal_the_real(teacher):
    model, v, _ = teacher
    x = jnp.asarray(np.random.default_rng(2).normal(size=(K, 8, 8, 2)), jnp.float32)
    labels = jnp.arange(K, dtype=jnp.int32)
    logits, _, feats = obj.conv_inputs(model, v, x)
    psi, phi = obj.synthetic_statistics(feats, labels, K, "class")
    real = {"psi": psi, "phi": phi}
    for filt in ("hfm", "lfm"):
        ctx = obj.CFMContext(variables=v, real=real, cache=obj.zero_cache(real),
                             beta=jnp.float32(0.1), b=jnp.float32(1.0))
        loss = obj.make_loss(model, num_classes=K, filter=filt, signal="class", eta=0.1,
                             ema=False, aug=IDENTITY)
        val = loss(jax.random.key(0), x, labels, ctx)
        np.testing.assert_allclose(float(val), float(cross_entropy(logits, labels)),
                                   rtol=1e-5)
        # the feature term (norms, not squared: a kink at the minimum) is ~0 there and
        # grows when the synthetic batch moves away from the real statistics
        def feat(x):
            feats = obj.conv_inputs(model, v, x)[2]
            lf, ls, _ = obj.feature_losses(real, obj.zero_cache(real), feats, labels, 0.1, 1.0,
                                           num_classes=K, filter=filt, signal="class",
                                           ema=False)
            return float(lf + ls)

        at = feat(x)
        assert at < 1e-3 * feat(x + 0.3), at
        d = jnp.asarray(np.random.default_rng(4).normal(size=x.shape), jnp.float32)
        assert feat(x + 0.05 * d) > at


def test_class_batches_and_errors():
    t = obj.class_batches(np.array([0, 1, 2, 0, 1, 2]), 3)
    assert t.tolist() == [[0, 1, 2], [3, 4, 5]]
    t = obj.class_batches(np.array([0, 0, 1, 1]), 2)
    assert t.tolist() == [[0, 2], [1, 3]]
    with pytest.raises(ValueError, match="same number"):
        obj.class_batches(np.array([0, 0, 1]), 2)


def _run_cfg(iterations, **objective):
    """A minimal run config for obj.build: the CFM objective (class signal + `objective`)."""
    cfg = ml_collections.ConfigDict()
    cfg.iterations = iterations
    cfg.objective = obj.default_config()
    cfg.objective.signal = "class"
    cfg.objective.update(objective)
    return cfg


def _build(teacher, cfg, labels):
    model, v, st = teacher

    class DS:
        num_classes = K

    return obj.build(Setup(cfg=cfg, model=None, apply_fn=None, train_ds=DS(),
                           teacher={"model": model, "variables": v, "stats": st},
                           syn_labels=labels))


def test_build_schedules_batches_beta_and_emu(teacher):
    labels = np.repeat(np.arange(K), 2)  # class-major, 2 instances per class: m = 2
    o = _build(teacher, _run_cfg(4), labels)
    assert o.learn_lr is False
    # batch b = step * m // T: iterations 0, 1 -> batch 0 (instances 0, 2, 4), 2, 3 -> batch 1
    assert [np.asarray(o.select(s)).tolist() for s in range(4)] == [[0, 2, 4]] * 2 + [
        [1, 3, 5]] * 2
    state = o.init_state(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(3).normal(size=(K, 8, 8, 2)), jnp.float32)
    y = jnp.arange(K)
    betas, caches = [], []
    for s in range(4):
        ctx = o.sample_ctx(jax.random.key(s), 0.0, o.data, state)
        betas.append(float(ctx.beta))
        assert float(ctx.b) == s // 2 + 1
        state = o.post_step(jax.random.key(10 + s), state, x, y, o.data, jnp.int32(s))
        caches.append(state["cache"])
    assert betas == pytest.approx([0.1, 0.1, 0.05, 0.05], rel=1e-6)
    # iteration 0: no fold; iteration 1 (last of batch 0): cache = batch statistics (w 1)
    assert float(jnp.abs(caches[0]["psi"][0]).max()) == 0.0
    assert float(jnp.abs(caches[1]["psi"][0]).max()) > 0.0
    np.testing.assert_array_equal(np.asarray(caches[2]["psi"][0]),
                                  np.asarray(caches[1]["psi"][0]))
    assert int(state["step"]) == 4


def test_recover_steps_of_the_loop_reduce_the_loss(teacher):
    """The generic loop's jitted step (jaxdd.outer_step.make_step) with the CFM objective and a
    per-instance Adam: 30 recover iterations of one class-batch lower the recover loss
    (identity augmentation, so the loss is that of the iterate itself)."""
    from jaxdd.param import pixel

    cfg = _run_cfg(30, rrc_scale=(1.0, 1.0), rrc_ratio=(1.0, 1.0), flip=False, jitter=0)
    cfg.opt = ml_collections.ConfigDict(dict(
        syn=dict(name="adam", lr=0.05, b1=0.5, b2=0.9, per_instance=True,
                 schedule="cosine", decay_steps=30),
        lr=dict(lr=0.0, momentum=0.5)))
    x0 = np.random.default_rng(2).normal(size=(K, 1, 8, 8, 2)).astype(np.float32) * 2.0
    pcfg = ml_collections.ConfigDict(dict(ipc=1, init="first"))
    params, aux = pixel.init(jax.random.key(0), list(x0), pcfg)
    o = _build(teacher, cfg, aux["labels"])
    step, init_state = outer_step.make_step(pixel, aux, o, cfg)
    state = init_state(jax.random.key(1), params, 0.0)
    losses = []
    for _ in range(30):
        state, m = step(state, o.data)
        losses.append(float(m["loss"]))
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses
    # b = 1, the last iteration of the only batch: the EMU cache holds its statistics
    assert float(jnp.abs(state.obj_state["cache"]["psi"][0]).max()) > 0
