"""Tests for jaxdd.param.nsd (Neural Spectral Decomposition parameterization)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft

from jaxdd.param import nsd


def _cfg(**kw):
    cfg = nsd.default_config()
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _real(key, num_classes, n, shape):
    rng = np.random.default_rng(key)
    return [rng.normal(size=(n,) + shape).astype(np.float32) for _ in range(num_classes)]


def _mode_n(x, m, n):
    """Independent mode-n product: x (.., t_n at axis n, ..), m (t_n, u_n) -> u_n at axis n."""
    return np.moveaxis(np.tensordot(x, m, axes=([n], [0])), -1, n)


def _loop_decode(params, aux):
    """Explicit Python loop over classes / spectra / kernel sets with np.tensordot."""
    T = np.asarray(params["T"], np.float64)
    ks = [np.asarray(params.get(n, aux.get(n)), np.float64) for n in ("K1", "K2", "K3", "K4")]
    out = []
    for c in range(T.shape[0]):
        for i in range(T.shape[1]):
            for j in range(ks[0].shape[1]):
                x = T[c, i]
                for mode in range(4):
                    x = _mode_n(x, ks[mode][c, j], mode)   # (u1, C, H, W)
                out.append(np.transpose(x, (0, 2, 3, 1)))   # -> (u1, H, W, C)
    return np.concatenate(out)


# distinct sizes in every mode so that any axis mix-up changes shapes or values
SHAPE = (5, 6, 3)           # H, W, C (non-square)
SMALL = dict(n_t=2, n_k=3, t1=2, u1=3, t2=2, t3=3, t4=4, enforce_budget=False)


def test_dct_matrix_is_orthonormal_dct2():
    for n in (1, 4, 7):
        d = nsd._dct_matrix(n)
        ref = scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0)
        np.testing.assert_allclose(d, ref, atol=1e-12)
        np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)


def test_decode_shapes_count_and_matches_loop():
    real = _real(0, 2, 7, SHAPE)
    params, aux = nsd.init(jax.random.PRNGKey(0), real, _cfg(ipc=1, **SMALL))
    assert params["T"].shape == (2, 2, 2, 2, 3, 4)
    assert params["K1"].shape == (2, 3, 2, 3)
    assert params["K2"].shape == (2, 3, 2, 3)
    assert params["K3"].shape == (2, 3, 3, 5)
    assert params["K4"].shape == (2, 3, 4, 6)
    per_class = 2 * 3 * 3
    assert aux["images_per_class"] == per_class
    x = nsd.decode(params, aux)
    assert x.shape == (2 * per_class,) + SHAPE and x.dtype == jnp.float32
    np.testing.assert_array_equal(aux["labels"], np.repeat([0, 1], per_class))
    assert aux["labels"].dtype == np.int32 and aux["image_shape"] == SHAPE
    np.testing.assert_allclose(np.asarray(x), _loop_decode(params, aux), rtol=1e-4, atol=1e-5)


def test_decode_indices_jit_both_paths():
    real = _real(1, 2, 7, SHAPE)
    params, aux = nsd.init(jax.random.PRNGKey(1), real, _cfg(ipc=1, **SMALL))
    full = np.asarray(nsd.decode(params, aux))
    total = full.shape[0]
    f = jax.jit(lambda p, idx: nsd.decode(p, aux, indices=idx))
    small = jnp.array([total - 1, 0, 7, 20], jnp.int32)   # n * t1 <= total: per-image gather
    big = jnp.arange(total * 2 + 1, dtype=jnp.int32)[::-1] % total   # shared-core path
    for idx in (small, big):
        np.testing.assert_allclose(np.asarray(f(params, idx)), full[np.asarray(idx)],
                                   rtol=1e-4, atol=1e-5)
    # traced 2-D indices keep their shape
    idx2 = jnp.array([[3, 4], [5, 35]], jnp.int32)
    assert f(params, idx2).shape == (2, 2) + SHAPE
    # gradients reach every learnable leaf
    g = jax.grad(lambda p: jnp.sum(nsd.decode(p, aux, indices=small) ** 2))(params)
    for name, leaf in g.items():
        assert float(jnp.abs(leaf).sum()) > 0, name


@pytest.mark.parametrize("ipc,shape", [(1, (32, 32, 3)), (10, (32, 32, 3)), (50, (32, 32, 3)),
                                       (1, (16, 16, 3)), (10, (64, 64, 3)), (2, (8, 8, 1)),
                                       (10, (8, 8, 1)), (50, (28, 28, 1))])
def test_choose_sizes_budget_rule(ipc, shape):
    h, w, c = shape
    s = nsd.choose_sizes(ipc, shape)
    b = ipc * h * w * c
    # independent cost formula (paper eq. 3, per class)
    cost = lambda t1, u1: (s["n_t"] * t1 * s["t2"] * s["t3"] * s["t4"]  # noqa: E731
                           + s["n_k"] * (t1 * u1 + s["t2"] * c + s["t3"] * h + s["t4"] * w))
    assert s["per_class_floats"] == cost(s["t1"], s["u1"])
    assert 0.8 * b <= s["per_class_floats"] <= b
    assert 1 <= s["t1"] < s["u1"]
    # t1 is the largest that fits for this u1
    assert s["t1"] == s["u1"] - 1 or cost(s["t1"] + 1, s["u1"]) > b
    # paper defaults for the spatial / channel modes
    assert s["t2"] == c
    assert s["t3"] == (h // 2 if ipc <= 10 else 7 * h // 8)
    assert s["t4"] == (w // 2 if ipc <= 10 else 7 * w // 8)
    assert s["images_per_class"] == s["n_t"] * s["n_k"] * s["u1"]


def test_choose_sizes_given_counts_picks_largest_t1():
    s = nsd.choose_sizes(10, (32, 32, 3), n_t=3, n_k=2, u1=20)
    b = 10 * 32 * 32 * 3
    cost = lambda t1: 3 * t1 * 3 * 16 * 16 + 2 * (t1 * 20 + 9 + 16 * 32 * 2)  # noqa: E731
    assert cost(s["t1"]) <= b < cost(s["t1"] + 1)
    # fixed kernels are not counted -> larger t1 under the same budget
    s2 = nsd.choose_sizes(10, (32, 32, 3), n_t=3, n_k=2, u1=60, count_kernels=False)
    assert s2["per_class_floats"] == 3 * s2["t1"] * 3 * 16 * 16 <= b < 3 * (s2["t1"] + 1) * 768


def test_init_budget_matches_sizes():
    real = _real(2, 3, 6, (8, 8, 3))
    cfg = _cfg(ipc=2)
    params, aux = nsd.init(jax.random.PRNGKey(2), real, cfg)
    s = nsd.choose_sizes(2, (8, 8, 3))
    assert aux["sizes"] == tuple(s[k] for k in ("n_t", "n_k", "t1", "t2", "t3", "t4", "u1"))
    n_leaves = sum(int(np.prod(v.shape)) for v in params.values())
    assert nsd.budget(params, aux) == n_leaves == 3 * s["per_class_floats"] <= 3 * 2 * 192
    assert nsd.decode(params, aux).shape[0] == 3 * s["images_per_class"] == len(aux["labels"])
    # typed keys seed the same draws as raw uint32 keys; different keys differ
    p2, _ = nsd.init(jax.random.key(2), real, cfg)
    np.testing.assert_array_equal(np.asarray(p2["T"]), np.asarray(params["T"]))
    p3, _ = nsd.init(jax.random.PRNGKey(3), real, cfg)
    assert not np.allclose(np.asarray(p3["T"]), np.asarray(params["T"]))


def test_impossible_budget_raises():
    # explicit t3 = t4 = 4 are not shrunk: kernels alone 1 + 32 + 32 > 64 floats
    with pytest.raises(ValueError, match=r"budget.*64"):
        nsd.choose_sizes(1, (8, 8, 1), t3=4, t4=4)
    with pytest.raises(ValueError, match="budget"):
        nsd.choose_sizes(1, (2, 2, 1))       # even t3 = t4 = 1 does not fit 4 floats
    with pytest.raises(ValueError, match="budget"):
        nsd.choose_sizes(1, (32, 32, 3), n_t=4, n_k=4, u1=8, t3=16, t4=16)
    # with automatic t3/t4 the same counts fit by shrinking the spatial sizes
    assert nsd.choose_sizes(1, (32, 32, 3), n_t=4, n_k=4, u1=8)["t3"] < 16
    with pytest.raises(ValueError, match="budget"):
        nsd.init(jax.random.PRNGKey(0), _real(0, 2, 4, (8, 8, 1)), _cfg(ipc=1, t3=4, t4=4))
    with pytest.raises(ValueError, match="exceed"):   # explicit sizes over budget
        nsd.choose_sizes(1, (8, 8, 3), n_t=1, n_k=1, t1=4, u1=4, t3=8, t4=8)


# every dataset jaxdd knows: digits, mnist / fashion_mnist, svhn / cifar, imagenette
DATASET_SHAPES = {"digits": (16, 16, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3),
                  "imagenette": (128, 128, 3)}


@pytest.mark.parametrize("ipc", [1, 10, 50])
@pytest.mark.parametrize("name", sorted(DATASET_SHAPES))
def test_every_dataset_fits_the_budget(name, ipc):
    """Issue 13 item 7: the size rule shrinks t3 = t4 below the paper's value only when
    nothing fits there with t1 >= 2 (MNIST / digits at IPC 1), never for CIFAR/ImageNette."""
    h, w, c = shape = DATASET_SHAPES[name]
    s = nsd.choose_sizes(ipc, shape)
    b = ipc * h * w * c
    assert s["per_class_floats"] == nsd._per_class_cost(
        s["n_t"], s["n_k"], s["t1"], s["t2"], s["t3"], s["t4"], s["u1"], shape)
    assert 0.8 * b <= s["per_class_floats"] <= b
    assert 2 <= s["t1"] < s["u1"] and s["t2"] == c and s["t3"] == s["t4"]
    paper = h // 2 if ipc <= 10 else 7 * h // 8
    assert s["spatial_default"] == (paper, paper)
    if s["t3"] < paper:  # shrunk: the paper's size (and every larger one) has no t1 >= 2
        for t3 in range(s["t3"] + 1, paper + 1):
            with pytest.raises(ValueError):
                nsd.choose_sizes(ipc, shape, t3=t3, t4=t3, t1=2)
    else:
        assert s["t3"] == paper
    if c == 3:
        assert s["t3"] == paper  # the published 3-channel sizes stay
    expected_shrunk = {("digits", 1): 5, ("mnist", 1): 10}
    assert s["t3"] == expected_shrunk.get((name, ipc), paper)


def test_tm_nsd_config_builds_for_every_dataset():
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("tm_nsd", os.path.join(root, "configs",
                                                                          "tm_nsd.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from jaxdd import config as C
    shapes = {"digits": (16, 16, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1),
              "svhn_cropped": (32, 32, 3), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3),
              "imagenette": (128, 128, 3)}
    assert set(shapes) == set(C.DATASETS)
    for name, shape in shapes.items():
        for ipc in (1, 10, 50):
            cfg = mod.get_config(f"{name},ipc={ipc}")
            p = cfg.param
            s = nsd.choose_sizes(ipc, shape, n_t=p.n_t, n_k=p.n_k, u1=p.u1, t1=p.t1, t2=p.t2,
                                 t3=p.t3, t4=p.t4)
            assert s["per_class_floats"] <= ipc * shape[0] * shape[1] * shape[2]
            published = (name, ipc) in mod.NSD_REPORTED
            assert cfg.source.startswith("NSD paper") == published, (name, ipc, cfg.source)
            if name != "digits":
                assert cfg.iterations == 10000 and cfg.opt.syn.momentum == 0.9
    assert {v.split(",")[0] for v in mod.VARIANTS} <= set(shapes)
    assert mod.get_config("mnist,ipc=2").source.startswith("derived, not published: ")


def test_dct_init_reproduces_real_images_full_size():
    shape = (6, 5, 3)
    real = _real(3, 2, 9, shape)
    cfg = _cfg(ipc=1, init="dct", n_t=2, n_k=2, u1=4, t1=4, t2=3, t3=6, t4=5,
               enforce_budget=False)
    params, aux = nsd.init(jax.random.PRNGKey(3), real, cfg)
    np.testing.assert_allclose(params["K3"][1, 0], nsd._dct_matrix(6), atol=1e-6)
    np.testing.assert_allclose(params["K2"][0, 1], np.eye(3), atol=0)
    np.testing.assert_allclose(params["K1"][0, 0], np.eye(4), atol=0)
    x = np.asarray(nsd.decode(params, aux)).reshape(2, 2, 2, 4, *shape)  # (c, i, j, e, HWC)
    idx = aux["init_real_indices"]
    for c in range(2):
        for i in range(2):
            want = real[c][idx[c, 4 * i:4 * (i + 1)]]
            for j in range(2):
                np.testing.assert_allclose(x[c, i, j], want, atol=2e-5)


def test_dct_init_truncated_is_lowpass():
    """t3 < H, t4 < W, t1 = u1: decode = zeroing high DCT frequencies (scipy reference)."""
    shape = (8, 6, 2)
    real = _real(4, 1, 5, shape)
    cfg = _cfg(ipc=1, init="dct", n_t=1, n_k=1, u1=3, t1=3, t2=2, t3=3, t4=4,
               enforce_budget=False)
    params, aux = nsd.init(jax.random.PRNGKey(4), real, cfg)
    imgs = real[0][aux["init_real_indices"][0]].astype(np.float64)
    coef = scipy.fft.dctn(imgs, type=2, norm="ortho", axes=(1, 2))
    coef[:, 3:] = 0
    coef[:, :, 4:] = 0
    ref = scipy.fft.idctn(coef, type=2, norm="ortho", axes=(1, 2))
    np.testing.assert_allclose(np.asarray(nsd.decode(params, aux)), ref, atol=2e-5)


def test_dct_init_pca_batch_kernel_is_best_shared_projection():
    """t1 < u1 ('pca'): the batch kernel has orthonormal rows and beats the DCT batch kernel."""
    shape = (4, 4, 1)
    real = _real(5, 1, 12, shape)
    base = dict(ipc=1, init="dct", n_t=3, n_k=1, u1=4, t1=2, t2=1, t3=4, t4=4,
                enforce_budget=False)
    errs = {}
    for k1 in ("pca", "dct"):
        params, aux = nsd.init(jax.random.PRNGKey(5), real, _cfg(k1_init=k1, **base))
        k = np.asarray(params["K1"][0, 0], np.float64)
        np.testing.assert_allclose(k @ k.T, np.eye(2), atol=1e-5)
        want = real[0][aux["init_real_indices"][0]]
        errs[k1] = float(np.sum((np.asarray(nsd.decode(params, aux)) - want) ** 2))
    np.testing.assert_allclose(np.asarray(params["K1"][0, 0]), nsd._dct_matrix(4)[:2],
                               atol=1e-6)
    assert errs["pca"] < errs["dct"]


def test_fixed_kernels_live_in_aux():
    real = _real(6, 2, 8, (8, 8, 3))
    cfg = _cfg(ipc=2, init="dct", learn_kernels=False)
    params, aux = nsd.init(jax.random.PRNGKey(6), real, cfg)
    assert set(params) == {"T"}
    for n in ("K1", "K2", "K3", "K4"):
        assert isinstance(aux[n], np.ndarray)
    assert nsd.budget(params, aux) == params["T"].size
    s = nsd.choose_sizes(2, (8, 8, 3), count_kernels=False)
    assert params["T"].shape[2] == s["t1"] and nsd.budget(params, aux) <= 2 * 2 * 192
    np.testing.assert_allclose(np.asarray(nsd.decode(params, aux)), _loop_decode(params, aux),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pca"):
        nsd.init(jax.random.PRNGKey(6), real, _cfg(ipc=2, init="dct", learn_kernels=False,
                                                   k1_init="pca"))


def test_random_init_unit_scale():
    real = _real(7, 2, 4, (16, 16, 3))
    params, aux = nsd.init(jax.random.PRNGKey(7), real, _cfg(ipc=10))
    x = np.asarray(nsd.decode(params, aux))
    assert 0.7 < float(np.sqrt(np.mean(x ** 2))) < 1.4
    for n, t in zip(("K3", "K4"), (8, 8)):
        assert 0.7 < float(np.std(params[n]) * np.sqrt(t)) < 1.4


def test_resolution_and_published_config():
    real = _real(8, 1, 4, SHAPE)
    params, aux = nsd.init(jax.random.PRNGKey(8), real, _cfg(ipc=1, **SMALL))
    assert nsd.decode(params, aux, resolution=None).shape[1:] == SHAPE
    with pytest.raises(NotImplementedError):
        nsd.decode(params, aux, resolution=10)
    p1, p50 = nsd.published_config("cifar10", 1), nsd.published_config("CIFAR-10", 50)
    assert (p1["t2"], p1["t3"], p1["t4"], p1["reported_acc"]) == (3, 16, 16, 68.5)
    assert (p50["t3"], p50["t4"], p50["reported_acc"]) == (28, 28, 75.2)
    assert nsd.published_config("cifar100", 10)["reported_acc"] == 46.1
    assert p1["n_t"] is None and p1["jaxdd_sizes"]["per_class_floats"] <= 3072
    with pytest.raises(ValueError):
        nsd.published_config("mnist", 1)
