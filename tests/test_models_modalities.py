"""Networks for 3-D grids (video ConvNet3D, voxel Conv3DNet): registry, layouts, the rank
check, the conv paths for 3-D kernels, dropout, and training / evaluation / experts on
(N, T, H, W, C) and (N, D, H, W, 1) arrays (augmentation off). Parity with the authors'
modules: tests/test_parity_modal_nets.py."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdd import losses, validate
from jaxdd import models as M
from jaxdd.models import get_model, input_rank, spatial_dims
from jaxdd.models.conv import conv_im2col, conv_native, convolve
from jaxdd.models.convnet3d import feature_grid
from jaxdd.models.layers import pool
from jaxdd.train import make_trainer

VIDEO = (8, 16, 16, 3)     # the embedded video set's clips
VOXEL = (8, 8, 8, 1)       # small voxels (the embedded set is 16^3)


def _video_net(**kw):
    return get_model("ConvNet3DD2", 3, width=8, first_width=8, **kw)


def _voxel_net():
    return get_model("Conv3DNetD2W8", 3)


def _data(shape, n=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % classes).astype(np.int32)
    # class-dependent mean so a few steps can learn something
    x = rng.normal(size=(n,) + shape).astype(np.float32) + y.reshape((-1,) + (1,) * len(shape))
    return x, y


def test_registry_names_layouts_and_ranks():
    cases = {"ConvNetD3": ("ConvNet", "NHWC"), "AlexNet": ("AlexNet", "NHWC"),
             "VGG11": ("VGG", "NHWC"), "ResNet18": ("ResNet", "NHWC"), "ViT": ("ViT", "NHWC"),
             "Conv3DNet": ("Conv3DNet", "NDHWC"), "ConvNet3D": ("ConvNet3D", "NDHWC")}
    for name, (cls, layout) in cases.items():
        m = get_model(name, 10)
        assert type(m).__name__ == cls and m.layout == layout == type(m).layout
        assert input_rank(m) == len(layout) and spatial_dims(m) == len(layout) - 2
    assert get_model("Conv3DNet", 10).width == 64            # FreD 3D-MNIST
    assert get_model("Conv3DNetW128", 10).width == 128       # DDiF 3D_Voxel
    m = get_model("convnet3d", 10)                           # DDiF Video defaults
    assert (m.depth, m.width, m.first_width, m.norm, m.pooling, m.dropout) == (
        3, 128, 64, "none", "max", 0.5)
    assert get_model("ConvNet3DD2W16", 10, dropout=0.0).depth == 2
    assert M.needs_dropout_rng(m) and not M.needs_dropout_rng(get_model("ConvNet3D", 10,
                                                                        dropout=0.0))
    with pytest.raises(ValueError, match="unknown model"):
        get_model("ConvNet3DX", 10)


def test_convnet3d_sizes_the_authors_network_takes():
    m = get_model("ConvNet3D", 5, width=4, first_width=4)
    for shape in [(16, 112, 112, 3), (8, 64, 64, 3), (16, 128, 128, 1)]:
        out = jax.eval_shape(lambda x: m.init_with_output(jax.random.PRNGKey(0), x)[0],
                             jax.ShapeDtypeStruct((2,) + shape, jnp.float32))
        assert out.shape == (2, 5)
    assert feature_grid(3, 16, 112, 112) == (4, 2, 2)       # MiniUCF: 128 x 4 x 2 x 2 features
    assert feature_grid(2, 8, 16, 16) == (4, 1, 1)
    with pytest.raises(ValueError, match="depth 2 on 16x16"):
        m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 32, 32, 3)))
    with pytest.raises(ValueError, match="frames"):
        _video_net().init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 16, 16, 3)))


def test_rank_mismatch_errors_name_the_model_the_shape_and_the_fix():
    with pytest.raises(ValueError, match="ConvNet3D' for video"):
        get_model("ConvNetD3", 10).init(jax.random.PRNGKey(0), jnp.zeros((1,) + VIDEO))
    with pytest.raises(ValueError, match="2-D network"):
        _voxel_net().init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 1)))
    msg = validate.model_at_resolution("ConvNetD3", {}, VIDEO, 10)
    assert "ConvNetD3" in msg and "(8, 16, 16, 3)" in msg and "model='ConvNet3D'" in msg
    msg = validate.model_at_resolution("Conv3DNet", {}, (16, 16, 1), 10)
    assert "Conv3DNet" in msg and "(16, 16, 1)" in msg and "ConvNetD3" in msg
    assert validate.model_at_resolution("ConvNet3DD2", {}, VIDEO, 10) is None
    assert validate.model_at_resolution("Conv3DNet", {}, (16, 16, 16, 1), 10) is None
    msg = validate.model_at_resolution("ConvNet3D", {}, VIDEO, 10)   # depth 3 on 16x16
    assert "cannot run on 8x16x16 clips" in msg and "8x64x64" in msg
    msg = validate.model_at_resolution("Conv3DNetD5", {}, (16, 16, 16, 1), 10)
    assert "16x16x16 volumes" in msg and "32x32x32" in msg


def test_pool_window_per_axis():
    x = jnp.arange(2 * 4 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 4, 1)
    y = pool(x, "max", (1, 2, 2))
    assert y.shape == (2, 4, 2, 2, 1)
    np.testing.assert_array_equal(y[0, 1, 0, 0, 0], x[0, 1, :2, :2, 0].max())
    assert pool(x, "avg", 2).shape == (2, 2, 2, 2, 1)
    with pytest.raises(ValueError, match="3 spatial axes"):
        pool(x, "max", (2, 2))


@pytest.mark.parametrize("layout", ["cf", "nhwc"])
def test_3x7x7_strided_im2col_equals_native_with_gradients(layout):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k1, (2, 4, 9, 10, 3))
    w = jax.random.normal(k2, (3, 7, 7, 3, 5)) * 0.1
    pads, st = ((1, 1), (3, 3), (3, 3)), (1, 2, 2)

    def f(impl):
        return lambda x, w: jnp.sum(jnp.sin(impl(x, w, st, pads)))

    a = conv_im2col(x, w, st, pads, layout=layout)
    b = conv_native(x, w, st, pads)
    assert a.shape == b.shape == (2, 4, 5, 5, 5)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ga = jax.grad(f(lambda *z: conv_im2col(*z, layout=layout)), (0, 1))(x, w)
    gb = jax.grad(f(conv_native), (0, 1))(x, w)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
    # 'hybrid' (the CPU 'auto') falls back to im2col for the strided conv
    np.testing.assert_allclose(convolve(x, w, strides=st, padding=pads, impl="hybrid"), b,
                               rtol=1e-5, atol=1e-5)


def test_convnet3d_dropout_only_in_train_mode_with_an_rng():
    m = _video_net()
    x, _ = _data(VIDEO, n=2)
    v = m.init(jax.random.PRNGKey(0), x)
    ev = m.apply(v, x)
    np.testing.assert_array_equal(m.apply(v, x, train=True), ev)   # no rng: deterministic
    d1 = m.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    d2 = m.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    d1, d2, ev = np.asarray(d1), np.asarray(d2), np.asarray(ev)
    assert not np.allclose(d1, ev) and not np.allclose(d1, d2)
    m0 = _video_net(dropout=0.0)
    np.testing.assert_array_equal(
        m0.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)}), ev)


def test_trainer_on_video_uses_dropout_keys_and_needs_them():
    m = _video_net()
    x, y = _data(VIDEO)
    tr = make_trainer(m, optax.sgd(0.01), loss=losses.cross_entropy, batch_size=4)
    assert tr.dropout
    st = tr.init(jax.random.split(jax.random.PRNGKey(0), 2), jnp.asarray(x[:1]))
    with pytest.raises(ValueError, match="dropout"):
        tr.epoch(st, jnp.tile(jnp.arange(6), (2, 1)), None, x, y)
    # two networks with the same init and order but their own keys: dropout differs
    same = jax.tree.map(lambda a: jnp.stack([a[0], a[0]]), st)
    orders = jnp.tile(jnp.arange(6), (2, 1))
    keys = jax.random.split(jax.random.PRNGKey(3), 4).reshape(2, 2, -1)
    out, met = jax.jit(tr.epoch)(same, orders, keys, x, y)
    assert met["loss"].shape == (2, 2) and np.all(np.isfinite(met["loss"]))
    assert not np.allclose(met["loss"][0], met["loss"][1])
    # the same key twice: the same result
    keys2 = jnp.stack([keys[0], keys[0]])
    _, met2 = jax.jit(tr.epoch)(same, orders, keys2, x, y)
    np.testing.assert_array_equal(met2["loss"][0], met2["loss"][1])


@pytest.mark.parametrize("kind", ["video", "voxel"])
def test_evaluate_synthetic_on_3d_grids(kind):
    from jaxdd.evaluate import evaluate_synthetic
    shape, net = (VIDEO, _video_net()) if kind == "video" else (VOXEL, _voxel_net())
    x, y = _data(shape)
    xt, yt = _data(shape, n=9, seed=1)
    r = evaluate_synthetic(jax.random.PRNGKey(0), net, x, y, xt, yt, lr=0.01, num_nets=2,
                           epochs=2, dsa_strategy="none", progress=False)
    assert r.accs.shape == (2,) and r.num_train == 6
    # one set per network: (K, N, *grid, C), told apart by the test set's rank
    xs = np.stack([x, x[::-1]])
    ys = np.stack([y, y[::-1]])
    r2 = evaluate_synthetic(jax.random.PRNGKey(0), net, xs, ys, xt, yt, lr=0.01, num_nets=2,
                            epochs=1, dsa_strategy="none", progress=False)
    assert r2.accs.shape == (2,) and r2.num_train == 6
    with pytest.raises(ValueError, match="do not match the test images"):
        evaluate_synthetic(jax.random.PRNGKey(0), net, x[:, 0], y, xt, yt, lr=0.01,
                           num_nets=2, epochs=1, dsa_strategy="none", progress=False)


@pytest.mark.parametrize("kind", ["video", "voxel"])
def test_experts_on_3d_grids(kind):
    from jaxdd.experts.training import train_experts
    shape, net = (VIDEO, _video_net()) if kind == "video" else (VOXEL, _voxel_net())
    x, y = _data(shape)
    traj, acc = train_experts(jax.random.PRNGKey(0), net, (x, y), (x, y), num_experts=2,
                              epochs=2, lr=0.01, batch_size=4, dsa_strategy="none",
                              progress=False)
    leaf = jax.tree.leaves(traj)[0]
    assert leaf.shape[:2] == (2, 3) and acc.shape == (2,)
    assert not np.allclose(leaf[:, 0], leaf[:, 2])   # the experts moved
