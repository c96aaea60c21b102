"""TM's chunked student gradient (``microbatch``) and DSA drawn before the unroll.

* ``make_loss(..., microbatch=m)`` accumulates each student step's gradient over chunks of
  at most m images: the loss and its gradients w.r.t. the images and syn_lr equal the
  whole-minibatch ones (float summation order only), also for the authors' short chunks
  (weights) and chunk sizes that do not divide the minibatch; XLA's temporary memory of the
  compiled meta-gradient shrinks with the chunk.
* An ``Augment`` (draw / apply halves) gives the TM loss the same value as the plain keyed
  ``dsa`` callable, its parameters drawn for every step before the scan.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd.augment import Augment, dsa, make_augment
from jaxdd.models import get_model
from jaxdd.objective import tm


@pytest.fixture(scope="module")
def net():
    model = get_model("ConvNetD1W4", 3)
    x = jax.random.normal(jax.random.PRNGKey(0), (7, 8, 8, 1))
    y = jnp.asarray([0, 1, 2, 0, 1, 2, 0], jnp.int32)
    theta = model.init(jax.random.PRNGKey(1), x[:1])["params"]
    target = jax.tree.map(lambda t: t + 0.05, theta)
    apply_fn = lambda p, xx: model.apply({"params": p}, xx, train=True)
    return apply_fn, x, y, theta, target


def _value_and_grads(net, **kw):
    apply_fn, x, y, theta, target = net
    loss = tm.make_loss(apply_fn, syn_steps=3, remat=True, **kw)
    ctx = tm.TMContext(start=theta, target=target, syn_lr=jnp.float32(0.05))

    def f(xx, lr):
        return loss(jax.random.PRNGKey(5), xx, y, ctx._replace(syn_lr=lr))

    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(x, jnp.float32(0.05))


@pytest.fixture(scope="module")
def whole(net):
    """The whole-minibatch value and gradients by batch_syn, computed (compiled) once for
    the tests that compare with them."""
    done = {}

    def get(batch_syn=0):
        if batch_syn not in done:
            done[batch_syn] = _value_and_grads(net, batch_syn=batch_syn)
        return done[batch_syn]

    return get


def _close(a, b, rtol=2e-5):
    (va, (ga, la)), (vb, (gb, lb)) = a, b
    np.testing.assert_allclose(va, vb, rtol=rtol)
    np.testing.assert_allclose(la, lb, rtol=1e-4)
    scale = float(jnp.max(jnp.abs(ga)))
    assert scale > 0
    np.testing.assert_allclose(ga, gb, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("batch_syn,microbatch", [(0, 3), (0, 4), (3, 2), (5, 2)])
def test_microbatch_gives_the_whole_batch_gradient(net, whole, batch_syn, microbatch):
    # (0, 3): 7 images -> chunks of 3 (padded to 9); (0, 4): 2 chunks of 4 (one padded);
    # (3, 2) / (5, 2): MTT's schedule with a short last chunk (weights) on 7 images
    plain = whole(batch_syn)
    chunked = _value_and_grads(net, batch_syn=batch_syn, microbatch=microbatch)
    assert float(plain[0]) != pytest.approx(1.0)  # the student moved
    _close(plain, chunked)


def test_microbatch_at_least_the_minibatch_is_the_plain_path(net, whole):
    a = whole()  # batch_syn 0 (= None, all images), microbatch 0 (the default)
    b = _value_and_grads(net, microbatch=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1][0], b[1][0])


def test_microbatch_bounds_the_compiled_temporaries():
    model = get_model("ConvNetD2W32", 10)
    x = jnp.zeros((40, 16, 16, 1))
    y = jnp.arange(40) % 10
    theta = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    apply_fn = lambda p, xx: model.apply({"params": p}, xx, train=True)
    ctx = tm.TMContext(start=theta, target=theta, syn_lr=jnp.float32(0.01))
    temps = {}
    for mb in (0, 10):
        loss = tm.make_loss(apply_fn, syn_steps=2, microbatch=mb)
        compiled = jax.jit(jax.grad(lambda xx: loss(jax.random.PRNGKey(0), xx, y, ctx))).lower(
            x).compile()
        temps[mb] = compiled.memory_analysis().temp_size_in_bytes
    assert temps[10] < 0.6 * temps[0], temps


def test_negative_microbatch_is_refused():
    with pytest.raises(ValueError, match="microbatch"):
        tm.make_loss(lambda p, x: x, syn_steps=1, microbatch=-1)


def test_validate_reports_a_bad_microbatch():
    from jaxdd import config as config_lib
    from jaxdd import validate

    cfg = config_lib.base_config("digits", 1)
    cfg.objective.microbatch = -3
    rep = validate.distill_config(cfg)
    assert any("objective.microbatch" in e for e in rep.errors), rep.errors


@pytest.mark.parametrize("mode", ["S", "M"])
def test_dsa_draw_then_apply_is_dsa(mode):
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 12, 12, 3))
    aug = Augment(mode=mode)
    two_halves = jax.jit(lambda k, xx: aug.apply(aug.draw(k, 5), xx))
    for i in range(6):  # several keys: several op groups in mode S
        k = jax.random.PRNGKey(i)
        ref = dsa(k, x, mode=mode)
        assert float(jnp.max(jnp.abs(ref - x))) > 1e-3  # it augmented
        # the same draws and ops; only XLA's fusion of one jit vs another may round apart
        np.testing.assert_allclose(two_halves(k, x), ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(aug(k, x), ref)
    assert make_augment("none") is None and make_augment(None) is None
    assert make_augment("crop_flip") == Augment("crop_flip")


def test_tm_with_augment_object_equals_keyed_dsa(net):
    aug = make_augment("color_crop_cutout_flip_scale_rotate")
    a = _value_and_grads(net, augment=aug)
    b = _value_and_grads(net, augment=lambda k, x: dsa(k, x))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    np.testing.assert_allclose(a[1][0], b[1][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a[1][1], b[1][1], rtol=1e-5)
