"""Tests for jaxdd.param.siren and jaxdd.param.ddif (tiny shapes, CPU)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxdd.param import ddif
from jaxdd.param import siren


def _cfg(**kw):
    cfg = ddif.default_config()
    cfg.progress = False
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _paper_b(n, d, L, m):
    """Paper Sec. 3.2: d0(n+1) + sum_{l=1}^{L-1} d_l(d_{l-1}+1) + m(d_{L-1}+1), d_l = d."""
    return d * (n + 1) + (L - 1) * d * (d + 1) + m * (d + 1)


def _smooth_images(rng, n, h, w, c):
    """Low-frequency images (sums of a few random plane waves), values ~ O(1)."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    out = np.zeros((n, h, w, c), np.float32)
    for i in range(n):
        for ch in range(c):
            for _ in range(3):
                a, b, ph = rng.normal(size=3)
                out[i, :, :, ch] += 0.5 * np.sin(1.5 * a * yy + 1.5 * b * xx + ph)
    return out


# ----------------------------------------------------------------------------- budget

@pytest.mark.parametrize("image_shape,ipc,width,layers,b,fpc", [
    ((32, 32, 3), 1, 6, 2, 81, 37),        # CIFAR-10 IPC 1
    ((32, 32, 3), 10, 6, 2, 81, 379),      # CIFAR-10 IPC 10
    ((32, 32, 3), 50, 20, 2, 543, 282),    # CIFAR-10 IPC 50
    ((128, 128, 3), 1, 20, 3, 963, 51),    # ImageNet-128 IPC 1
])
def test_published_budget(image_shape, ipc, width, layers, b, fpc):
    cfg = _cfg(ipc=ipc, width=width, num_layers=layers)
    assert ddif.params_per_field(cfg, image_shape) == b
    assert _paper_b(2, width, layers, 3) == b
    assert siren.num_params(2, width, layers, 3) == b
    assert ddif.fields_per_class(ipc, image_shape, b) == fpc
    # the actual parameter tree has exactly b floats
    p = siren.init_siren(jax.random.key(0), 2, width, layers, 3, 10.0, 30.0)
    assert siren.tree_num_params(p) == b


def test_impossible_budget_raises_clear_error():
    cfg = _cfg(ipc=1, width=20, num_layers=2, warmup_steps=0)
    b = ddif.params_per_field(cfg, (4, 4, 1))
    assert b == _paper_b(2, 20, 2, 1) == 501
    with pytest.raises(ValueError) as e:
        ddif.fields_per_class(1, (4, 4, 1), b)
    msg = str(e.value)
    assert "ipc=1" in msg and "(4, 4, 1)" in msg and "501" in msg and "width" in msg
    real = [np.zeros((2, 4, 4, 1), np.float32)] * 2
    with pytest.raises(ValueError, match="invalid budget"):
        ddif.init(jax.random.key(0), real, cfg)
    # a fixed number of fields over the budget is rejected too (code's `dipc` check)
    with pytest.raises(ValueError, match="invalid budget"):
        ddif.fields_per_class(1, (32, 32, 3), 81, fixed=38)
    assert ddif.fields_per_class(1, (32, 32, 3), 81, fixed=10) == 10


# ----------------------------------------------------------------------------- init

def _ks_uniform(x, bound):
    return stats.kstest(np.asarray(x, np.float64).ravel(), "uniform",
                        args=(-bound, 2 * bound)).pvalue


@pytest.mark.parametrize("dim_in", [2, 3])
def test_first_layer_init_distribution(dim_in):
    p = siren.init_siren(jax.random.key(1), dim_in, 2000, 1, 3, w0=10.0, w0_initial=30.0)
    w, b = p["layers"][0]["w"], p["layers"][0]["b"]
    bound = 1.0 / dim_in
    assert w.shape == (dim_in, 2000) and b.shape == (2000,)
    assert float(jnp.max(jnp.abs(w))) <= bound and float(jnp.max(jnp.abs(b))) <= bound
    assert _ks_uniform(w, bound) > 1e-3
    assert _ks_uniform(b, bound) > 1e-3
    # power check: the same test rejects a wrong bound
    assert _ks_uniform(w, 1.3 * bound) < 1e-6


def test_hidden_and_output_init_distribution():
    w0, width = 10.0, 128
    p = siren.init_siren(jax.random.key(2), 2, width, 2, 3, w0=w0, w0_initial=30.0)
    hidden, out = p["layers"][1], p["layers"][2]
    bound = math.sqrt(6.0 / width) / w0
    assert float(jnp.max(jnp.abs(hidden["w"]))) <= bound
    assert _ks_uniform(hidden["w"], bound) > 1e-3
    assert _ks_uniform(hidden["w"], 1.2 * bound) < 1e-6      # power check
    # biases follow the DDiF code: same uniform as the layer's weight
    assert float(jnp.max(jnp.abs(hidden["b"]))) <= bound
    assert float(jnp.max(jnp.abs(hidden["b"]))) > 0.8 * bound
    # output layer uses the hidden w0
    assert float(jnp.max(jnp.abs(out["w"]))) <= bound
    assert _ks_uniform(out["w"], bound) > 1e-3


# ----------------------------------------------------------------------------- forward

def _np_siren(params, coords, w0, w0i):
    h = np.asarray(coords, np.float64)
    layers = params["layers"]
    for l, layer in enumerate(layers):
        W = np.asarray(layer["w"], np.float64)
        bb = np.asarray(layer["b"], np.float64)
        z = np.zeros((h.shape[0], W.shape[1]))
        for i in range(W.shape[1]):                  # explicit dot products
            z[:, i] = sum(h[:, j] * W[j, i] for j in range(W.shape[0])) + bb[i]
        h = z if l == len(layers) - 1 else np.sin((w0i if l == 0 else w0) * z)
    return h


def test_siren_apply_matches_numpy():
    p = siren.init_siren(jax.random.key(3), 2, 7, 3, 3, w0=10.0, w0_initial=30.0)
    coords = siren.make_grid((5, 6))
    got = np.asarray(siren.siren_apply(p, jnp.asarray(coords), 10.0, 30.0))
    want = _np_siren(p, coords, 10.0, 30.0)
    assert got.shape == (30, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_poly_sine_accuracy_and_derivatives():
    """The fields' CPU sine against float64 sin: within one float32 spacing of values below
    1 (6e-8) on [-400, 400] (SIREN pre-activations are w0 * z, a few tens here), and its
    first and second derivatives are cos and -sin to the same accuracy (TM differentiates
    the decode; the meta-gradient may differentiate again)."""
    x = np.linspace(-400.0, 400.0, 400_001).astype(np.float32)
    ref = np.sin(x.astype(np.float64))
    got = np.asarray(jax.jit(siren.poly_sin)(x), np.float64)
    assert np.abs(got - ref).max() < 6e-8
    d1 = jax.jit(jax.vmap(jax.grad(siren.poly_sin)))(x[::97])
    d2 = jax.jit(jax.vmap(jax.grad(jax.grad(siren.poly_sin))))(x[::97])
    np.testing.assert_allclose(d1, np.cos(x[::97].astype(np.float64)), rtol=0, atol=6e-8)
    np.testing.assert_allclose(d2, -ref[::97], rtol=0, atol=6e-8)
    assert siren.sine(jnp.float32(0.5)) == siren.poly_sin(jnp.float32(0.5))  # CPU backend


def test_make_grid_layout():
    g = siren.make_grid((3, 5))
    assert g.shape == (15, 2) and g.dtype == np.float32
    lin_h, lin_w = np.linspace(-1, 1, 3), np.linspace(-1, 1, 5)
    for i in range(3):
        for j in range(5):
            np.testing.assert_allclose(g[i * 5 + j], [lin_h[i], lin_w[j]], atol=1e-7)
    g3 = siren.make_grid((2, 3, 4))
    assert g3.shape == (24, 3)
    np.testing.assert_allclose(g3[1 * 12 + 2 * 4 + 3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(g3[0], [-1.0, -1.0, -1.0])
    assert siren.make_grid((3, 5), resolution=4).shape == (16, 2)


# ----------------------------------------------------------------------------- decode

@pytest.fixture(scope="module")
def small_set():
    rng = np.random.default_rng(0)
    real = [_smooth_images(rng, 4, 8, 8, 2) for _ in range(3)]
    cfg = _cfg(ipc=1, width=4, num_layers=2, warmup_steps=0)
    params, aux = ddif.init(jax.random.key(0), real, cfg)
    return params, aux


def test_init_structure_and_aux(small_set):
    params, aux = small_set
    b = _paper_b(2, 4, 2, 2)                       # 12 + 20 + 10 = 42
    fpc = (8 * 8 * 2) // b                         # 3
    assert aux["params_per_field"] == b and aux["fields_per_class"] == fpc
    np.testing.assert_array_equal(aux["labels"], np.repeat(np.arange(3), fpc))
    assert aux["labels"].dtype == np.int32
    assert aux["image_shape"] == (8, 8, 2) and aux["grid_shape"] == (8, 8)
    for leaf in jax.tree.leaves(params):
        assert leaf.shape[0] == 3 * fpc
    assert ddif.budget(params, aux) == siren.tree_num_params(params) == 3 * fpc * b
    # aux holds only serializable values
    for k, v in aux.items():
        ok = isinstance(v, (np.ndarray, int, float, str, bool)) or (
            isinstance(v, tuple) and all(isinstance(s, int) for s in v))
        assert ok, (k, type(v))
    # distinct fields got distinct random inits
    w = np.asarray(params["layers"][0]["w"])
    assert not np.allclose(w[0], w[1])


def test_vmapped_decode_equals_loop(small_set):
    params, aux = small_set
    x = np.asarray(jax.jit(lambda p: ddif.decode(p, aux))(params))
    assert x.shape == (len(aux["labels"]), 8, 8, 2)
    coords = siren.make_grid((8, 8))
    for k in range(x.shape[0]):
        pk = jax.tree.map(lambda a: a[k], params)
        want = _np_siren(pk, coords, aux["w0"], aux["w0_initial"]).reshape(8, 8, 2)
        np.testing.assert_allclose(x[k], want, rtol=1e-4, atol=1e-5)


def test_indices_subset_decode(small_set):
    params, aux = small_set
    full = np.asarray(ddif.decode(params, aux))
    f = jax.jit(lambda p, idx: ddif.decode(p, aux, indices=idx))
    idx = ddif.sample_indices(jax.random.key(5), aux, 4)
    assert idx.shape == (4,) and len(set(np.asarray(idx).tolist())) == 4
    assert int(idx.min()) >= 0 and int(idx.max()) < len(aux["labels"])
    np.testing.assert_allclose(np.asarray(f(params, idx)), full[np.asarray(idx)],
                               rtol=1e-6, atol=1e-6)
    idx2 = jnp.array([8, 0, 8], jnp.int32)
    np.testing.assert_allclose(np.asarray(f(params, idx2)), full[[8, 0, 8]], rtol=1e-6,
                               atol=1e-6)
    allidx = np.asarray(ddif.sample_indices(jax.random.key(6), aux, 100))
    assert sorted(allidx.tolist()) == list(range(len(aux["labels"])))


def test_cross_resolution(small_set):
    params, aux = small_set
    x = np.asarray(ddif.decode(params, aux))
    np.testing.assert_array_equal(np.asarray(ddif.decode(params, aux, resolution=8)), x)
    x2 = np.asarray(ddif.decode(params, aux, resolution=16))
    assert x2.shape == (x.shape[0], 16, 16, 2)
    # linspace(-1, 1, 15)[::2] == linspace(-1, 1, 8): the finer grid contains the coarse one
    x15 = np.asarray(ddif.decode(params, aux, resolution=15))
    np.testing.assert_allclose(x15[:, ::2, ::2], x, rtol=1e-4, atol=1e-5)
    # corners are shared by every grid
    np.testing.assert_allclose(x2[:, [0, -1]][:, :, [0, -1]], x[:, [0, -1]][:, :, [0, -1]],
                               rtol=1e-4, atol=1e-5)
    # the finer image is not just a copy of the coarse one
    assert not np.allclose(x2[:, 1, 1], x[:, 0, 0], atol=1e-3)


def test_three_axis_grid_decode():
    rng = np.random.default_rng(1)
    real = [rng.normal(size=(2, 3, 4, 5, 2)).astype(np.float32) for _ in range(2)]
    cfg = _cfg(ipc=1, width=3, num_layers=1, warmup_steps=0)
    params, aux = ddif.init(jax.random.key(1), real, cfg)
    b = _paper_b(3, 3, 1, 2)                        # 12 + 8 = 20
    assert aux["dim_in"] == 3 and aux["params_per_field"] == b
    assert aux["fields_per_class"] == (3 * 4 * 5 * 2) // b
    x = np.asarray(ddif.decode(params, aux))
    assert x.shape == (2 * aux["fields_per_class"], 3, 4, 5, 2)
    coords = siren.make_grid((3, 4, 5))
    p0 = jax.tree.map(lambda a: a[1], params)
    want = _np_siren(p0, coords, aux["w0"], aux["w0_initial"]).reshape(3, 4, 5, 2)
    np.testing.assert_allclose(x[1], want, rtol=1e-4, atol=1e-5)
    assert ddif.decode(params, aux, resolution=6).shape == (x.shape[0], 6, 6, 6, 2)


# ----------------------------------------------------------------------------- warm-up

def test_warmup_reduces_mse_and_matches_independent_fits():
    rng = np.random.default_rng(2)
    real = [_smooth_images(rng, 3, 8, 8, 1) for _ in range(2)]
    cfg = _cfg(ipc=2, width=4, num_layers=2, warmup_steps=0)   # b = 12+20+5 = 37 -> 3/class
    params, aux = ddif.init(jax.random.key(3), real, cfg)
    K = len(aux["labels"])
    assert K == 6
    targets = np.concatenate(real)
    x0 = np.asarray(ddif.decode(params, aux))
    mse0 = ((x0 - targets) ** 2).mean(axis=(1, 2, 3))
    new, losses = ddif.warmup(None, params, aux, targets, 50, lr=5e-3, progress=False,
                              chunk=20)                       # 20+20+10: remainder chunk
    assert losses.shape == (50,)
    np.testing.assert_allclose(losses[0], mse0.mean(), rtol=1e-4)
    x1 = np.asarray(ddif.decode(new, aux))
    mse1 = ((x1 - targets) ** 2).mean(axis=(1, 2, 3))
    assert np.all(mse1 < 0.5 * mse0), (mse0, mse1)
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_allclose(losses[-1], ((np.asarray(ddif.decode(
        ddif.warmup(None, params, aux, targets, 49, lr=5e-3, progress=False, chunk=20)[0],
        aux)) - targets) ** 2).mean(), rtol=1e-4)
    # joint vmapped fit == fits in groups of 4 (4 + 2 padded): every field is fitted
    # independently (sum of per-field losses, element-wise Adam)
    grouped, losses_g = ddif.warmup(None, params, aux, targets, 50, lr=5e-3,
                                    progress=False, chunk=20, batch=4)
    for a, b in zip(jax.tree.leaves(grouped), jax.tree.leaves(new)):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses_g, losses, rtol=1e-4)


def test_init_warmup_fits_own_class():
    # class c images are smooth images shifted by a class-specific offset: after warm-up,
    # each field must be closest to its own class (checks class-major targets and labels).
    rng = np.random.default_rng(4)
    offsets = [-1.5, 0.0, 1.5]
    real = [_smooth_images(rng, 5, 8, 8, 1) * 0.3 + o for o in offsets]
    cfg = _cfg(ipc=1, width=4, num_layers=2, warmup_steps=60, warmup_lr=1e-2,
               warmup_chunk=30)
    params, aux = ddif.init(jax.random.key(7), real, cfg)
    assert "warmup_final_mse" in aux and aux["warmup_final_mse"] < 0.2
    x = np.asarray(ddif.decode(params, aux))
    means = x.mean(axis=(1, 2, 3))
    nearest = np.argmin(np.abs(means[:, None] - np.array(offsets)[None]), axis=1)
    np.testing.assert_array_equal(nearest, aux["labels"])


# ----------------------------------------------------------------------------- FFN

def test_ffn_field():
    rng = np.random.default_rng(5)
    real = [_smooth_images(rng, 3, 8, 8, 3) for _ in range(2)]
    cfg = _cfg(ipc=2, field="ffn", width=5, num_layers=2, ffn_num_features=4,
               ffn_scale=3.0, warmup_steps=0)
    params, aux = ddif.init(jax.random.key(8), real, cfg)
    b = (2 * 4) * 5 + 5 + 5 * 5 + 5 + 5 * 3 + 3            # 45 + 30 + 18 = 93
    assert aux["params_per_field"] == b == ddif.params_per_field(cfg, (8, 8, 3))
    assert aux["fields_per_class"] == (2 * 8 * 8 * 3) // b
    assert siren.tree_num_params(params) == ddif.budget(params, aux)
    B = aux["ffn_B"]
    assert B.shape == (4, 2)
    np.testing.assert_array_equal(B, siren.fourier_matrix(0, "gaussian", 2, 4, 3.0))
    x = np.asarray(ddif.decode(params, aux))
    assert x.shape == (len(aux["labels"]), 8, 8, 3)
    # numpy reference forward for field 0
    c = siren.make_grid((8, 8)).astype(np.float64)
    proj = 2 * np.pi * c @ B.T.astype(np.float64)
    h = np.concatenate([np.cos(proj), np.sin(proj)], axis=1)
    L = params["layers"]
    for l in range(len(L)):
        z = h @ np.asarray(L[l]["w"][0], np.float64) + np.asarray(L[l]["b"][0], np.float64)
        h = z if l == len(L) - 1 else np.maximum(z, 0)
    np.testing.assert_allclose(x[0], h.reshape(8, 8, 3), rtol=1e-4, atol=1e-5)
    # positional mapping: F = m * dim_in rows, frequencies scale^(j/m) on each axis
    Bp = siren.fourier_matrix(0, "positional", 2, 3, 8.0)
    np.testing.assert_allclose(Bp[:3, 0], [1.0, 2.0, 4.0], rtol=1e-6)
    assert np.all(Bp[:3, 1] == 0) and np.all(Bp[3:, 0] == 0)
    cfgp = _cfg(ipc=2, field="ffn", ffn_mapping="positional", ffn_num_features=3, width=5,
                num_layers=2, warmup_steps=0)
    assert ddif.params_per_field(cfgp, (8, 8, 3)) == 12 * 5 + 5 + 30 + 18
