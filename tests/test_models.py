"""Tests for jaxdd.models: registry, parameter counts, conv implementations, norms."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import flax.linen as nn

from jaxdd import models
from jaxdd.models import (ConvNet, InstanceNorm, convolve, count_params, get_model,
                          resolve_conv_impl)
from jaxdd.models.layers import pool


@pytest.fixture(autouse=True)
def _highest_precision():
    """Full-fp32 matmuls/convs: a no-op on CPU; on GPU/TPU avoids TF32/bf16 passes that would
    make the exact-equality comparisons below meaningless."""
    with jax.default_matmul_precision("highest"):
        yield


def _fake_init(model, x, seed=0):
    """Variables of ``model`` filled with numpy random values (PyTorch-like scales).

    Avoids compiling ``model.init`` (threefry compiles are slow on CPU); real init is tested
    separately in ``test_torch_like_init_bounds``.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)

    def fill(path, leaf):
        name = str(path[-1].key)
        if name == "scale":
            v = 1.0 + 0.1 * rng.normal(size=leaf.shape)
        elif name == "var":
            v = np.ones(leaf.shape)
        elif name == "mean":
            v = np.zeros(leaf.shape)
        elif len(leaf.shape) >= 2:
            b = 1.0 / math.sqrt(math.prod(leaf.shape[:-1]))
            v = rng.uniform(-b, b, size=leaf.shape)
        else:
            v = 0.1 * rng.normal(size=leaf.shape)
        return jnp.asarray(v, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _shape_init(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    return variables, out


# ----------------------------------------------------------------------------- counts
def test_convnetd3_cifar_param_count_320010():
    variables, out = _shape_init(get_model("ConvNetD3", 10), (2, 32, 32, 3))
    assert count_params(variables["params"]) == 320_010
    assert out.shape == (2, 10)
    # independent closed form: convs + instance-norm affine + classifier
    w = 128
    expect = (3 * 9 * w + w) + 2 * (w * 9 * w + w) + 3 * 2 * w + (w * 4 * 4 * 10 + 10)
    assert expect == 320_010


def test_count_params_plain_tree():
    tree = {"a": np.zeros((3, 4)), "b": [np.zeros(5), jax.ShapeDtypeStruct((2, 2, 2), jnp.float32)]}
    assert count_params(tree) == 12 + 5 + 8


def test_known_param_counts_other_nets():
    # Standard CIFAR numbers of the DC/MTT networks (3x32x32, 10 classes).
    expected = {"ResNet18": 11_173_962, "VGG11": 9_231_114}
    for name, n in expected.items():
        variables, _ = _shape_init(get_model(name, 10), (1, 32, 32, 3))
        assert count_params(variables["params"]) == n, name


# ----------------------------------------------------------------------------- registry
def test_registry_name_parsing_and_overrides():
    m = get_model("ConvNetD3W32", 7)
    assert (m.depth, m.width, m.norm, m.num_classes) == (3, 32, "instance", 7)
    m = get_model("convnetd2w16bn", 5)
    assert (m.depth, m.width, m.norm) == (2, 16, "batch")
    m = get_model("ConvNet", 10)
    assert (m.depth, m.width, m.pooling) == (3, 128, "avg")
    m = get_model("ConvNetD4MP", 10, width=8)
    assert (m.depth, m.width, m.pooling) == (4, 8, "max")
    for d in range(1, 8):
        assert get_model(f"ConvNetD{d}", 10).depth == d
    assert get_model("ResNet18BN", 10).norm == "batch"
    assert get_model("resnet18", 10).norm == "instance"
    assert get_model("VGG11", 10).norm == "instance"
    assert get_model("ViT", 3, depth=1).depth == 1
    # conv_impl is accepted by every registry model (uniform override)
    for name in ("ConvNetD3", "AlexNet", "VGG11", "ResNet18", "ViT", "Conv3DNet"):
        assert get_model(name, 3, conv_impl="native").conv_impl == "native"


def test_unknown_model_raises_with_names():
    with pytest.raises(ValueError) as e:
        get_model("LeNet9000", 10)
    msg = str(e.value)
    for name in ("ConvNetD3", "AlexNet", "VGG11", "ResNet18", "ViT"):
        assert name in msg
    with pytest.raises(ValueError):
        get_model("ConvNetD3X", 10)


REGISTRY_SHAPES = [
    ("ConvNetD1", (2, 8, 8, 3)), ("ConvNetD2", (2, 8, 8, 1)), ("ConvNetD3", (2, 32, 32, 3)),
    ("ConvNetD4", (2, 64, 64, 3)), ("ConvNetD5", (1, 32, 32, 3)), ("ConvNetD6", (1, 64, 64, 3)),
    ("ConvNetD7", (1, 128, 128, 3)), ("ConvNetD3W32", (2, 16, 16, 3)),
    ("ConvNetD3BN", (2, 16, 16, 3)), ("AlexNet", (2, 32, 32, 3)), ("AlexNetBN", (2, 16, 16, 1)),
    ("VGG11", (2, 32, 32, 3)), ("VGG11BN", (2, 32, 32, 3)), ("ResNet18", (2, 32, 32, 3)),
    ("ResNet18BN", (2, 16, 16, 3)), ("ViT", (2, 32, 32, 3)), ("Conv3DNet", (2, 16, 16, 16, 1)),
]


@pytest.mark.parametrize("name,shape", REGISTRY_SHAPES)
def test_registry_models_logits_shape(name, shape):
    variables, out = _shape_init(get_model(name, 7), shape)
    assert out.shape == (shape[0], 7)
    assert out.dtype == jnp.float32
    assert ("batch_stats" in variables) == name.endswith("BN")


TINY = [
    ("ConvNetD2W8", {}, (3, 8, 8, 3)),
    ("AlexNet", {"widths": (4, 4, 4, 4, 4)}, (3, 8, 8, 1)),
    ("VGG11", {"cfg": (4, "M", 4, "M")}, (3, 8, 8, 3)),
    ("ResNet18", {"width": 4, "stage_sizes": (1, 1)}, (3, 8, 8, 3)),
    ("ViT", {"dim": 8, "depth": 1, "heads": 2, "mlp_dim": 8}, (3, 8, 8, 3)),
    ("Conv3DNet", {"width": 4, "depth": 2}, (3, 4, 4, 4, 1)),
]


def test_tiny_models_run_and_depend_on_input():
    """Real forward passes (tiny widths): finite logits that depend on each sample."""
    for name, kw, shape in TINY:
        model = get_model(name, 5, **kw)
        x = jax.random.normal(jax.random.key(1), shape)

        variables = _fake_init(model, x)

        # one call on [x; reversed x]: in eval mode samples are independent, so the second
        # half must be the first half reversed
        y2 = jax.jit(model.apply)(variables, jnp.concatenate([x, x[::-1]]))
        y, y_perm = y2[: shape[0]], y2[shape[0]:]
        assert y.shape == (shape[0], 5), name
        assert np.all(np.isfinite(np.asarray(y))), name
        # per-sample independence in eval mode: permuting the batch permutes the logits
        np.testing.assert_allclose(np.asarray(y_perm), np.asarray(y)[::-1], rtol=1e-5, atol=1e-5)
        assert float(jnp.abs(y[0] - y[1]).max()) > 0, name


def test_batchnorm_train_mode_updates_stats():
    model = get_model("ConvNetD1W4BN", 3)
    x = 3.0 + jax.random.normal(jax.random.key(0), (6, 4, 4, 2))
    variables = _fake_init(model, x)
    variables = {**variables, "batch_stats": jax.tree_util.tree_map(
        lambda a: a + 0.5, variables["batch_stats"])}

    @jax.jit
    def run(variables, x):
        _, upd = model.apply(variables, x, train=True, mutable=["batch_stats"])
        h = models.Conv3x3(4).apply({"params": variables["params"]["conv_0"]}, x)
        return upd, h

    upd, h = run(variables, x)
    mean0 = np.asarray(variables["batch_stats"]["norm_0"]["mean"])
    mean1 = np.asarray(upd["batch_stats"]["norm_0"]["mean"])
    # running mean moves 10% of the way to the batch mean of the conv output
    np.testing.assert_allclose(mean1, 0.9 * mean0 + 0.1 * np.asarray(h.mean((0, 1, 2))),
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- conv
def _np_conv(x, k, stride, pad):
    """Brute-force cross-correlation, channels last, any number of spatial dims."""
    nd = k.ndim - 2
    x = np.pad(x, [(0, 0)] + [(pad, pad)] * nd + [(0, 0)])
    ks = k.shape[:nd]
    out_sp = [(x.shape[1 + i] - ks[i]) // stride + 1 for i in range(nd)]
    y = np.zeros((x.shape[0], *out_sp, k.shape[-1]))
    for idx in np.ndindex(*out_sp):
        sl = tuple(slice(i * stride, i * stride + kk) for i, kk in zip(idx, ks))
        patch = x[(slice(None),) + sl]                                   # (N, *K, Cin)
        y[(slice(None),) + idx] = np.tensordot(patch, k, axes=nd + 1)
    return y


@pytest.mark.parametrize("impl", ["native", "im2col", "hybrid"])
@pytest.mark.parametrize("case", [
    # (input shape, kernel size, stride, padding)
    ((2, 6, 7, 3), (3, 3), 1, 1),
    ((1, 7, 6, 2), (5, 5), 1, 2),
    ((2, 8, 7, 2), (3, 3), 2, 1),
    ((1, 6, 6, 3), (1, 1), 2, 0),
    ((1, 4, 5, 4, 2), (3, 3, 3), 1, 1),
])
def test_conv_matches_numpy_reference(impl, case):
    shape, ks, stride, pad = case
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    k = rng.normal(size=ks + (shape[-1], 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    y = jax.jit(lambda x, k, b: convolve(x, k, b, strides=stride, padding=pad, impl=impl))(x, k, b)
    ref = _np_conv(x.astype(np.float64), k.astype(np.float64), stride, pad) + b
    assert y.shape == ref.shape
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-4, atol=1e-4)


def test_conv_module_params_like_flax_conv():
    x = jnp.ones((1, 5, 5, 3))
    ours = jax.eval_shape(models.Conv3x3(6).init, jax.random.key(0), x)["params"]
    ref = jax.eval_shape(nn.Conv(6, (3, 3)).init, jax.random.key(0), x)["params"]
    assert jax.tree_util.tree_map(lambda a: a.shape, ours) == \
        jax.tree_util.tree_map(lambda a: a.shape, ref)
    # and same function as flax's nn.Conv('SAME') given the same parameters
    xr = jax.random.normal(jax.random.key(1), (2, 5, 5, 3))

    p = _fake_init(models.Conv3x3(6), x)

    @jax.jit
    def run(xr):
        ref = nn.Conv(6, (3, 3)).apply(p, xr)
        return ref, [models.Conv3x3(6, conv_impl=i).apply(p, xr)
                     for i in ("native", "im2col", "hybrid")]

    ref, ys = run(xr)
    for y in ys:
        np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_torch_like_init_bounds():
    p = jax.jit(models.Conv3x3(64).init)(jax.random.key(0), jnp.ones((1, 4, 4, 32)))["params"]
    bound = 1.0 / math.sqrt(32 * 9)
    k, b = np.asarray(p["kernel"]), np.asarray(p["bias"])
    assert np.abs(k).max() <= bound and np.abs(b).max() <= bound
    # uniform(-bound, bound) has std bound/sqrt(3); 18k samples -> ~1% error
    assert abs(k.std() / (bound / math.sqrt(3)) - 1) < 0.05
    assert abs(b.std() / (bound / math.sqrt(3)) - 1) < 0.3


def _tiny_convnet(impl):
    return ConvNet(num_classes=4, depth=2, width=8, conv_impl=impl)


def test_im2col_equals_native_forward_and_gradients():
    x = jax.random.normal(jax.random.key(0), (3, 8, 8, 3))
    y_lab = jnp.array([0, 1, 3])
    params = _fake_init(_tiny_convnet("native"), x)["params"]

    def loss(impl, p, x):
        logits = _tiny_convnet(impl).apply({"params": p}, x)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(3), y_lab])

    def meta(impl, p, x):
        # trajectory-matching-like: 2 unrolled SGD steps in lax.scan, differentiated w.r.t.
        # both the data x and the initial parameters (second-order through the scan).
        def step(p, _):
            g = jax.grad(loss, argnums=1)(impl, p, x)
            return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g), None
        p_end, _ = jax.lax.scan(step, p, None, length=2)
        return sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(p_end))

    @jax.jit
    def run(params, x):
        res = {}
        for impl in ("native", "im2col", "hybrid"):
            f = _tiny_convnet(impl).apply({"params": params}, x)
            gp, gx = jax.grad(loss, argnums=(1, 2))(impl, params, x)
            mp, mx = jax.grad(meta, argnums=(1, 2))(impl, params, x)
            res[impl] = (f, gp, gx, mp, mx)
        return res

    out = run(params, x)
    # the im2col path really is a different computation
    jaxpr = str(jax.make_jaxpr(lambda x: _tiny_convnet("im2col").apply({"params": params}, x))(x))
    assert "conv_general_dilated" not in jaxpr
    for impl in ("im2col", "hybrid"):
        for a, b in zip(jax.tree_util.tree_leaves(out["native"]),
                        jax.tree_util.tree_leaves(out[impl])):
            scale = float(jnp.abs(a).max()) + 1e-6
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4,
                                       atol=1e-5 * max(scale, 1))
    # the gradients are not trivially zero
    assert float(jnp.abs(out["native"][4]).max()) > 1e-6


def test_conv_second_order_kernel_and_input():
    """d/dk of ||d conv / dx||^2 and a Hessian-vector product agree across impls."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 2))
    k = jax.random.normal(jax.random.key(1), (3, 3, 2, 3))
    v = jax.random.normal(jax.random.key(2), x.shape)

    def f(impl, x, k):
        return jnp.sum(jnp.tanh(convolve(x, k, strides=1, padding=1, impl=impl)) ** 2)

    @jax.jit
    def run(x, k, v):
        res = {}
        for impl in ("native", "im2col"):
            gg = jax.grad(lambda k: jnp.sum(jax.grad(f, argnums=1)(impl, x, k) ** 2))(k)
            hvp = jax.jvp(lambda x: jax.grad(f, argnums=1)(impl, x, k), (x,), (v,))[1]
            res[impl] = (gg, hvp)
        return res

    res = run(x, k, v)
    for a, b in zip(res["native"], res["im2col"]):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-4)

    # 'hybrid' (custom VJP): reverse-over-reverse to any order; the Hessian-vector product
    # as a gradient of <grad, v> (forward mode is not available through a custom VJP)
    @jax.jit
    def run_rev(x, k, v):
        res = {}
        for impl in ("native", "hybrid"):
            gx = lambda x, k: jax.grad(f, argnums=1)(impl, x, k)
            gg = jax.grad(lambda k: jnp.sum(gx(x, k) ** 2))(k)
            hvp = jax.grad(lambda x: jnp.vdot(gx(x, k), v))(x)
            g3 = jax.grad(lambda k: jnp.sum(jax.grad(lambda k: jnp.sum(gx(x, k) ** 2))(k)
                                            ** 2))(k)
            res[impl] = (gg, hvp, g3)
        return res

    res = run_rev(x, k, v)
    for a, b in zip(res["native"], res["hybrid"]):
        scale = float(jnp.abs(a).max()) + 1e-6
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4,
                                   atol=1e-5 * max(scale, 1))


@pytest.mark.parametrize("case", [
    # (input shape, kernel shape, padding): gray padding 3 (negative input-gradient
    # padding), asymmetric, wide -> narrow, 3-D
    ((2, 6, 6, 4), (3, 3, 4, 4), 3),
    ((2, 7, 6, 4), (3, 2, 4, 5), ((2, 0), (1, 3))),
    ((1, 6, 6, 8), (3, 3, 8, 2), 1),
    ((1, 4, 5, 4, 3), (3, 3, 3, 3, 3), 1),
])
def test_hybrid_conv_second_order_matches_native(case):
    xs, ks, pad = case
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=xs).astype(np.float32))
    k = jnp.asarray(rng.normal(size=ks).astype(np.float32))

    def g(impl, x, k):
        gw = jax.grad(lambda k: jnp.sum(jnp.sin(convolve(x, k, padding=pad, impl=impl))))(k)
        return jnp.sum(convolve(x, k, padding=pad, impl=impl) ** 2) + jnp.sum(jnp.cos(gw))

    @jax.jit
    def run(x, k):
        return {i: jax.value_and_grad(g, argnums=(1, 2))(i, x, k) for i in ("native", "hybrid")}

    out = run(x, k)
    for a, b in zip(jax.tree_util.tree_leaves(out["native"]),
                    jax.tree_util.tree_leaves(out["hybrid"])):
        scale = float(jnp.abs(a).max()) + 1e-6
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4,
                                   atol=1e-5 * max(scale, 1))


def test_auto_picks_hybrid_on_cpu(monkeypatch):
    if jax.default_backend() != "cpu":
        assert resolve_conv_impl("auto") == "native"
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert resolve_conv_impl("auto") == "hybrid"
    assert resolve_conv_impl("native") == "native"
    x = jnp.ones((1, 4, 4, 2))
    m = ConvNet(num_classes=2, depth=1, width=4)          # conv_impl defaults to 'auto'
    p = jax.eval_shape(m.init, jax.random.key(0), x)
    assert "custom_vjp_call" in str(jax.make_jaxpr(m.apply)(p, x))
    m_i2c = ConvNet(num_classes=2, depth=1, width=4, conv_impl="im2col")
    assert "conv_general_dilated" not in str(jax.make_jaxpr(m_i2c.apply)(p, x))
    m_nat = ConvNet(num_classes=2, depth=1, width=4, conv_impl="native")
    assert "conv_general_dilated" in str(jax.make_jaxpr(m_nat.apply)(p, x))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert resolve_conv_impl("auto") == "native"
    with pytest.raises(ValueError):
        resolve_conv_impl("fft")


# ----------------------------------------------------------------------------- norm / pool
def _np_groupnorm(x, groups, eps=1e-5):
    """PyTorch GroupNorm (no affine) on NHWC numpy input, float64."""
    n, h, w, c = x.shape
    xg = x.transpose(0, 3, 1, 2).reshape(n, groups, -1)
    mu = xg.mean(-1, keepdims=True)
    var = ((xg - mu) ** 2).mean(-1, keepdims=True)
    y = ((xg - mu) / np.sqrt(var + eps)).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    return y


def test_instance_norm_is_groupnorm_groups_eq_channels():
    rng = np.random.default_rng(0)
    c = 5
    x = (rng.normal(size=(3, 6, 4, c)) * rng.uniform(0.1, 10, size=c) + rng.normal(size=c) * 5)
    x = x.astype(np.float32)
    mod = InstanceNorm()
    p = {"params": {"scale": np.ones(c, np.float32), "bias": np.zeros(c, np.float32)}}
    y = np.asarray(jax.jit(mod.apply)(p, x))
    ref = _np_groupnorm(x.astype(np.float64), groups=c)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    # per-sample, per-channel zero mean / unit variance (before affine; affine is identity)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-3)
    # with a non-trivial affine
    scale, bias = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    y2 = jax.jit(mod.apply)({"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(np.asarray(y2), ref * scale + bias, rtol=1e-4, atol=1e-4)
    # same as flax's GroupNorm with groups = channels and PyTorch's eps
    yf = jax.jit(nn.GroupNorm(num_groups=c, epsilon=1e-5).apply)(
        {"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(np.asarray(y2), np.asarray(yf), rtol=1e-4, atol=1e-4)


def test_convnet_norm_layer_is_instance_norm():
    """Inside ConvNet, each norm normalizes every channel of every sample separately."""
    m = ConvNet(num_classes=3, depth=1, width=4, pooling="none", act="leakyrelu")
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3)) + 2.0
    p = _fake_init(m, x)

    @jax.jit
    def run(x):
        return m.apply(p, x, capture_intermediates=lambda mdl, _: isinstance(mdl, InstanceNorm),
                       mutable=["intermediates"])

    _, inter = run(x)
    h = np.asarray(inter["intermediates"]["norm_0"]["__call__"][0])
    nrm = p["params"]["norm_0"]
    h = (h - np.asarray(nrm["bias"])) / np.asarray(nrm["scale"])     # undo the affine
    np.testing.assert_allclose(h.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(h.var(axis=(1, 2)), 1, atol=1e-3)


def test_pool_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)   # odd sizes: floor mode
    xr = x[:, :4, :6].reshape(2, 2, 2, 3, 2, 3)
    np.testing.assert_allclose(np.asarray(pool(jnp.asarray(x), "avg")), xr.mean((2, 4)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pool(jnp.asarray(x), "max")), xr.max((2, 4)), rtol=1e-6)
    assert pool(jnp.asarray(x), "none").shape == x.shape


# ----------------------------------------------------------------------------- gray padding
@pytest.mark.parametrize("name,shape,features", [
    # the authors' networks.py: ConvNet pads its first conv by 3 for 1 channel (28 -> 32:
    # 4*4*128 = 2048 features), AlexNet by 4 (28 -> 32: 192*4*4), VGG by 3 (28 -> 32 -> 1x1
    # x 512), the voxel Conv3DNet by 3 (12^3 -> 16^3 -> 2^3 x 64; 16^3 inputs give 2^3 with
    # or without it)
    ("ConvNetD3", (1, 28, 28, 1), 2048), ("AlexNet", (1, 28, 28, 1), 192 * 4 * 4),
    ("VGG11", (1, 28, 28, 1), 512), ("Conv3DNet", (1, 12, 12, 12, 1), 8 * 64),
    # RGB is untouched; 1-channel digits at 16x16, depth 2: 20 -> 10 -> 5
    ("ConvNetD3", (1, 32, 32, 3), 2048), ("ConvNetD2W32", (1, 16, 16, 1), 5 * 5 * 32),
])
def test_gray_padding_is_the_registry_default(name, shape, features):
    variables, _ = _shape_init(get_model(name, 10), shape)
    kernel = variables["params"]["classifier"]["kernel"]
    assert kernel.shape == (features, 10)
    if name == "VGG11":  # without the padding 28 -> 14 -> 7 -> 3 -> 1 cannot be pooled again
        with pytest.raises(ValueError, match="pool"):
            _shape_init(get_model(name, 10, gray_padding=False), shape)
        return
    off, _ = _shape_init(get_model(name, 10, gray_padding=False), shape)
    same = shape[-1] != 1
    assert (off["params"]["classifier"]["kernel"].shape == kernel.shape) == same


# ----------------------------------------------------------------------------- torch layout
def test_torch_param_layout_round_trip():
    """from_torch / to_torch: PyTorch's parameters() order and layout of the authors' nets."""
    shapes_cn = models.torch_shapes(_shape_init(get_model("ConvNetD3", 10),
                                                (1, 32, 32, 3))[0]["params"])
    assert shapes_cn == [(128, 3, 3, 3), (128,), (128,), (128,), (128, 128, 3, 3), (128,),
                         (128,), (128,), (128, 128, 3, 3), (128,), (128,), (128,),
                         (10, 2048), (10,)]
    rng = np.random.default_rng(0)
    for name, shape in [("ConvNetD2W4", (1, 12, 12, 3)), ("ConvNetD2W4LN", (1, 8, 8, 1)),
                        ("AlexNet", (1, 28, 28, 1)), ("Conv3DNet", (1, 8, 8, 8, 1))]:
        kw = {"widths": (4, 4, 4, 4, 4)} if name == "AlexNet" else (
            {"width": 4, "depth": 2} if name == "Conv3DNet" else {})
        template = _shape_init(get_model(name, 5, **kw), shape)[0]["params"]
        tshapes = models.torch_shapes(template)
        arrays = [rng.normal(size=s).astype(np.float32) for s in tshapes]
        params = models.from_torch(template, arrays)
        jax.tree.map(lambda a, t: np.testing.assert_equal(a.shape, t.shape), params, template)
        back = models.to_torch(params)
        for a, b in zip(back, arrays):
            np.testing.assert_array_equal(a, b)
        flat = np.concatenate([a.reshape(-1) for a in arrays])
        np.testing.assert_array_equal(models.to_torch_flat(models.from_torch_flat(template, flat)),
                                      flat)
    with pytest.raises(ValueError, match="tensors"):
        models.from_torch(template, arrays[:-1])
