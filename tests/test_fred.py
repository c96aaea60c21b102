"""Tests for jaxdd.param.transforms and jaxdd.param.fred (tiny shapes, CPU)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft

from jaxdd.param import fred
from jaxdd.param import transforms as T

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- DCT


@pytest.mark.parametrize("n", [1, 5, 8])
def test_dct_matrix_orthonormal_and_inverse(n):
    m = T.dct_matrix(n, "ortho")
    np.testing.assert_allclose(m @ m.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(m.T @ m, np.eye(n), atol=1e-12)
    for norm in ("ortho", "none"):
        np.testing.assert_allclose(T.idct_matrix(n, norm) @ T.dct_matrix(n, norm), np.eye(n), atol=1e-12)
    # unnormalized = per-row factor times orthonormal
    np.testing.assert_allclose(T.dct_matrix(n, "none"), T.dct_unnorm_scale(n)[:, None] * m, atol=1e-12)


@pytest.mark.parametrize("norm, scipy_norm", [("ortho", "ortho"), ("none", None)])
def test_dct2_matches_scipy(norm, scipy_norm):
    x = _rand(2, 6, 5, 3)
    y = np.asarray(T.dct2(jnp.asarray(x), norm))
    ref = scipy.fft.dctn(x.astype(np.float64), type=2, norm=scipy_norm, axes=(1, 2))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # inverse against scipy idctn on arbitrary coefficients
    c = _rand(2, 6, 5, 3)
    xi = np.asarray(T.idct2(jnp.asarray(c), norm))
    ref_i = scipy.fft.idctn(c.astype(np.float64), type=2, norm=scipy_norm, axes=(1, 2))
    np.testing.assert_allclose(xi, ref_i, rtol=1e-4, atol=1e-5 * np.abs(ref_i).max())
    # round trip
    np.testing.assert_allclose(np.asarray(T.idct2(T.dct2(jnp.asarray(x), norm), norm)), x, atol=1e-5)
    # the "none" option via the registry too
    fwd, inv = T.get_transform("dct", scipy_norm)
    np.testing.assert_allclose(np.asarray(fwd(jnp.asarray(x))), y, atol=1e-5 * max(1, np.abs(y).max()))


# ----------------------------------------------------------------------------- DFT / DWT


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_dft_matrix_vs_numpy_rfft(n):
    x = RNG.standard_normal(n)
    r = np.fft.rfft(x)
    ref = np.concatenate([r.real, r.imag[1:(n - 1) // 2 + 1]])
    np.testing.assert_allclose(T.dft_matrix(n, "none") @ x, ref, atol=1e-12)
    q = T.dft_matrix(n, "ortho")
    np.testing.assert_allclose(q @ q.T, np.eye(n), atol=1e-12)
    for norm in ("ortho", "none"):
        np.testing.assert_allclose(T.idft_matrix(n, norm) @ T.dft_matrix(n, norm), np.eye(n), atol=1e-12)
    # frequency of each row
    freqs = np.concatenate([np.arange(n // 2 + 1), np.arange(1, (n - 1) // 2 + 1)])
    np.testing.assert_array_equal(T.dft_frequency(n), freqs)


@pytest.mark.parametrize("norm", ["ortho", "none"])
def test_dft2_round_trip_and_separable_reference(norm):
    x = _rand(2, 6, 7, 2)
    fwd, inv = T.get_transform("dft", norm)
    c = fwd(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(inv(c)), x, atol=1e-5)
    # numpy reference: 1-D real DFT along H, then along W
    def rdft_axis(a, axis):
        n = a.shape[axis]
        r = np.fft.rfft(a, axis=axis)
        im = np.take(r.imag, np.arange(1, (n - 1) // 2 + 1), axis=axis)
        out = np.concatenate([r.real, im], axis=axis)
        return out if norm == "none" else out / np.sqrt(
            np.where(T.dft_frequency(n) == 0, n, np.where(2 * T.dft_frequency(n) == n, n, n / 2))
        ).reshape([-1 if i == axis % a.ndim else 1 for i in range(a.ndim)])
    ref = rdft_axis(rdft_axis(x.astype(np.float64), 1), 2)
    np.testing.assert_allclose(np.asarray(c), ref, atol=1e-4 * np.abs(ref).max())
    if norm == "ortho":
        np.testing.assert_allclose(np.sum(np.asarray(c) ** 2), np.sum(x ** 2), rtol=1e-5)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_dwt_round_trip_energy_and_haar_definition(levels):
    x = _rand(2, 8, 16, 3)
    fwd, inv = T.get_transform("dwt", "ortho", levels=levels)
    c = np.asarray(fwd(jnp.asarray(x)))
    np.testing.assert_allclose(np.asarray(inv(jnp.asarray(c))), x, atol=1e-5)
    np.testing.assert_allclose(np.sum(c ** 2), np.sum(x ** 2), rtol=1e-5)  # orthonormal
    # brute-force Mallat pyramid with the 2x2 Haar butterflies
    ref = x.astype(np.float64).copy()
    h, w = 8, 16
    for _ in range(levels):
        b = ref[:, :h, :w].copy()
        a00, a01 = b[:, 0::2, 0::2], b[:, 0::2, 1::2]
        a10, a11 = b[:, 1::2, 0::2], b[:, 1::2, 1::2]
        hh, hw = h // 2, w // 2
        ref[:, :hh, :hw] = (a00 + a01 + a10 + a11) / 2  # LL
        ref[:, :hh, hw:w] = (a00 - a01 + a10 - a11) / 2  # low along H, high along W
        ref[:, hh:h, :hw] = (a00 + a01 - a10 - a11) / 2  # high along H, low along W
        ref[:, hh:h, hw:w] = (a00 - a01 - a10 + a11) / 2  # HH
        h, w = hh, hw
    np.testing.assert_allclose(c, ref, atol=1e-5)


def test_dwt_errors():
    with pytest.raises(ValueError):
        T.dwt2(jnp.zeros((1, 6, 8, 1)), levels=2)
    with pytest.raises(ValueError):
        T.get_transform("dwt", "none")
    with pytest.raises(ValueError):
        T.get_transform("wavelet")


# ----------------------------------------------------------------------------- masks


def test_evr_mask_matches_bruteforce_loop():
    h, w, ch, n, k = 4, 4, 3, 7, 5
    coefs = [_rand(n, h, w, ch) * RNG.uniform(0.1, 3.0, size=(1, h, w, 1)).astype(np.float32)
             for _ in range(3)]
    masks = fred.build_masks(coefs, k, "evr", None)
    for c, cc in enumerate(coefs):
        # the authors' O((HW)^2) loop: e_p^T cov e_p / trace(cov)
        flat = cc.astype(np.float64).mean(axis=-1).reshape(n, h * w)
        flat = flat - flat.mean(0)
        cov = np.cov(flat.T)
        evr = np.zeros(h * w)
        for p in range(h * w):
            e = np.eye(h * w)[p][:, None]
            evr[p] = (e.T @ cov @ e).item() / np.trace(cov)
        np.testing.assert_allclose(fred.explained_variance_ratio(cc).ravel(), evr, rtol=1e-10)
        top = np.argsort(-evr)[:k]
        expect = np.zeros(h * w, np.float32)
        expect[top] = 1
        np.testing.assert_array_equal(masks[c].ravel(), expect)


def test_mask_strategies_k_positions():
    h, w, k = 6, 8, 7
    coefs = [_rand(5, h, w, 2) for _ in range(4)]
    key = jax.random.PRNGKey(3)
    for strategy in fred.MASK_STRATEGIES:
        for tr in ("dct", "dft", "dwt"):
            m = fred.build_masks(coefs, k, strategy, key, transform=tr, dwt_levels=1)
            assert m.shape == (4, h, w) and m.dtype == np.float32
            assert set(np.unique(m)) <= {0.0, 1.0}
            np.testing.assert_array_equal(m.reshape(4, -1).sum(1), k)
    # lowpass DCT: the k smallest u + v (zig-zag), class independent
    m = fred.build_masks(coefs, 6, "lowpass", None)
    u, v = np.nonzero(m[0])
    assert set(zip(u, v)) == {(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0)}
    assert np.all(m == m[0])
    # amplitude = top-k mean |coef|, brute force
    m = fred.build_masks(coefs, k, "amplitude", None)
    amp = np.abs(coefs[1]).mean(axis=(0, 3)).ravel()
    assert set(np.flatnonzero(m[1])) == set(np.argsort(-amp)[:k])
    # random: deterministic in the key, different across classes / keys
    r1 = fred.build_masks(coefs, k, "random", key)
    r2 = fred.build_masks(coefs, k, "random", key)
    r3 = fred.build_masks(coefs, k, "random", jax.random.PRNGKey(4))
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1[0], r1[1]) and not np.array_equal(r1, r3)
    # DWT lowpass with k = size of the LL band is exactly the LL band
    m = fred.build_masks([_rand(3, 8, 8, 1)], 4, "lowpass", None, transform="dwt", dwt_levels=2)
    expect = np.zeros((8, 8), np.float32)
    expect[:2, :2] = 1
    np.testing.assert_array_equal(m[0], expect)
    with pytest.raises(ValueError):
        fred.build_masks(coefs, k, "random", None)
    with pytest.raises(ValueError):
        fred.build_masks(coefs, k, "highpass", key)


# ----------------------------------------------------------------------------- init / budget


def _cfg(**kw):
    cfg = fred.default_config()
    for a, b in kw.items():
        setattr(cfg, a, b)
    return cfg


def test_budget_arithmetic_cifar_shapes():
    assert fred.num_per_class(1, 32, 32, 64) == 16
    assert fred.num_per_class(10, 32, 32, 64) == 160
    assert fred.num_per_class(1, 32, 32, 1000) == 1
    with pytest.raises(ValueError, match="1025"):
        fred.num_per_class(1, 32, 32, 1025)
    assert fred.num_per_class(1, 4, 4, 16) == 1
    real = [_rand(20, 32, 32, 3), _rand(18, 32, 32, 3)]
    params, aux = fred.init(jax.random.PRNGKey(0), real, _cfg(ipc=1, k=64))
    assert params["coef"].shape == (32, 32, 32, 3)
    np.testing.assert_array_equal(aux["labels"], np.repeat([0, 1], 16))
    assert aux["image_shape"] == (32, 32, 3)
    assert fred.budget(params, aux) == 2 * 16 * 64 * 3 == 2 * 32 * 32 * 3  # 3072 per class
    np.testing.assert_array_equal(aux["masks"].reshape(2, -1).sum(1), 64)
    # pack / unpack = the k stored coefficients per channel
    packed = fred.pack(params, aux)
    assert packed.shape == (32, 64, 3) and packed.size == fred.budget(params, aux)
    np.testing.assert_array_equal(np.asarray(fred.unpack(packed, aux)["coef"]), np.asarray(params["coef"]))


def test_num_per_class_zero_raises():
    with pytest.raises(ValueError, match=r"0 \* 4 \* 4 / 16"):
        fred.num_per_class(0, 4, 4, 16)
    with pytest.raises(ValueError, match=r"k = 17 .*H\*W = 16"):
        fred.init(jax.random.PRNGKey(0), [_rand(3, 4, 4, 1)], _cfg(ipc=1, k=17))


@pytest.mark.parametrize("transform, norm", [("dct", "ortho"), ("dct", "none"), ("dft", "ortho"),
                                             ("dwt", "ortho")])
def test_full_mask_decode_reproduces_initial_images(transform, norm):
    h, w, ch = 4, 4, 2
    real = [_rand(5, h, w, ch), _rand(3, h, w, ch)]
    cfg = _cfg(ipc=2, k=h * w, transform=transform, norm=norm)
    params, aux = fred.init(jax.random.PRNGKey(1), real, cfg)
    assert params["coef"].shape[0] == 4 and fred.budget(params, aux) == 4 * 16 * 2
    imgs = np.asarray(fred.decode(params, aux))
    assert imgs.shape == (4, h, w, ch)
    used = []
    for i, lab in enumerate(aux["labels"]):
        d = np.abs(real[lab] - imgs[i]).reshape(len(real[lab]), -1).max(1)
        j = int(np.argmin(d))
        assert d[j] < 1e-5, (transform, norm, d)
        used.append((lab, j))
    assert len(set(used)) == 4  # drawn without replacement


def test_default_is_the_authors_unnormalized_dct():
    assert fred.default_config().norm == "none"


@pytest.mark.parametrize("norm, scipy_norm", [("none", None), ("ortho", "ortho")])
def test_decode_masks_and_is_jittable_with_traced_indices(norm, scipy_norm):
    real = [_rand(10, 8, 8, 3) for _ in range(3)]
    params, aux = fred.init(jax.random.PRNGKey(2), real, _cfg(ipc=1, k=16, norm=norm))
    assert params["coef"].shape == (12, 8, 8, 3)
    full = fred.decode(params, aux)
    # decode = inverse DCT of the masked coefficients (independent scipy reference)
    m = aux["masks"][aux["labels"]][..., None]
    ref = scipy.fft.idctn(np.asarray(params["coef"], np.float64) * m, norm=scipy_norm, axes=(1, 2))
    np.testing.assert_allclose(np.asarray(full), ref, atol=1e-5 * max(1.0, np.abs(ref).max()))
    f = jax.jit(lambda p, idx: fred.decode(p, aux, indices=idx))
    idx = jnp.array([11, 0, 5], jnp.int32)
    np.testing.assert_allclose(np.asarray(f(params, idx)), np.asarray(full)[np.asarray(idx)], atol=1e-6)
    # gradient reaches only the masked positions
    g = jax.grad(lambda p: jnp.sum(jnp.sin(fred.decode(p, aux))))(params)["coef"]
    g = np.asarray(g)
    assert np.all(g[np.broadcast_to(m, g.shape) == 0] == 0)
    assert np.count_nonzero(g) == 12 * 16 * 3


# ----------------------------------------------------------------------------- cross-resolution


def _dct_basis_image(coef_lowfreq, side):
    """Continuous sum_{u,v} a_uv cos(pi u t) cos(pi v s) sampled at the cell centres of a side grid."""
    t = (2 * np.arange(side) + 1) / (2 * side)
    ku = np.arange(coef_lowfreq.shape[0])
    cu = np.cos(np.pi * ku[:, None] * t[None, :])  # (U, side)
    return np.einsum("uvc,uh,vw->hwc", coef_lowfreq, cu, cu)


@pytest.mark.parametrize("norm", ["ortho", "none"])
@pytest.mark.parametrize("m", [16, 6])
def test_cross_resolution_matches_continuous_resampling(norm, m):
    n, ch = 8, 2
    a = RNG.standard_normal((3, 3, ch))  # a heavily low-passed image: frequencies < 3
    x_n = _dct_basis_image(a, n)[None].astype(np.float32)
    x_m = _dct_basis_image(a, m)[None]
    # through the FreD interface with a full mask
    aux = {"labels": np.zeros(1, np.int32), "image_shape": (n, n, ch),
           "masks": np.ones((1, n, n), np.float32), "k": n * n, "transform": "dct",
           "norm": norm, "dwt_levels": 0}
    params = {"coef": T.dct2(jnp.asarray(x_n), norm)}
    np.testing.assert_allclose(np.asarray(fred.decode(params, aux)), x_n, atol=1e-5)
    y = np.asarray(fred.decode(params, aux, resolution=m))
    assert y.shape == (1, m, m, ch)
    np.testing.assert_allclose(y, x_m, atol=1e-4 * np.abs(x_m).max())
    # a single basis function keeps its amplitude
    b = np.zeros((3, 3, 1)); b[1, 2, 0] = 1.0
    xb = jnp.asarray(_dct_basis_image(b, n)[None], jnp.float32)
    yb = np.asarray(T.idct2_resize(T.dct2(xb, norm), (m, m), norm))
    np.testing.assert_allclose(yb, _dct_basis_image(b, m)[None], atol=1e-5)
    # rectangular target and the scale factor lambda of the spectrum
    yr = T.idct2_resize(T.dct2(jnp.asarray(x_n), norm), (m, n), norm)
    np.testing.assert_allclose(np.asarray(yr)[0], _dct_basis_image_rect(a, m, n), atol=1e-4 * np.abs(x_m).max())
    lam = (m / n) if norm == "ortho" else (m / n) ** 2
    c_m = np.asarray(T.dct2(jnp.asarray(x_m, jnp.float32), norm))
    c_n = np.asarray(params["coef"])
    np.testing.assert_allclose(c_m[:, :3, :3], lam * c_n[:, :3, :3], rtol=1e-3, atol=1e-4 * np.abs(c_m).max())


def _dct_basis_image_rect(a, hh, ww):
    th = (2 * np.arange(hh) + 1) / (2 * hh)
    tw = (2 * np.arange(ww) + 1) / (2 * ww)
    u = np.arange(a.shape[0])
    return np.einsum("uvc,uh,vw->hwc", a, np.cos(np.pi * u[:, None] * th), np.cos(np.pi * u[:, None] * tw))


def test_cross_resolution_other_transforms_raise():
    real = [_rand(4, 8, 8, 1)]
    params, aux = fred.init(jax.random.PRNGKey(0), real, _cfg(ipc=1, k=16, transform="dft"))
    with pytest.raises(NotImplementedError):
        fred.decode(params, aux, resolution=16)


# ----------------------------------------------------------------------------- learning rate


def test_equivalent_ortho_lr_derivation():
    h = w = 32
    assert fred.equivalent_ortho_lr(1e8, 32, 32) == pytest.approx(24414.0625)
    lr_map = fred.equivalent_ortho_lr_map(1e8, h, w)
    np.testing.assert_allclose(lr_map[1:, 1:], 24414.0625, rtol=1e-12)
    np.testing.assert_allclose(lr_map[0, 1:], 24414.0625 / 2, rtol=1e-12)
    np.testing.assert_allclose(lr_map[0, 0], 24414.0625 / 4, rtol=1e-12)
    # numerically: one SGD step on unnormalized coefficients == per-position ortho step
    hh = ww = 8
    x = _rand(1, hh, ww, 1)
    tgt = _rand(1, hh, ww, 1)
    loss_img = lambda img: jnp.sum((img - tgt) ** 2 * jnp.arange(1, 65.0).reshape(1, 8, 8, 1))
    lr_u = 1e-3
    cu = T.dct2(jnp.asarray(x), "none")
    cu2 = cu - lr_u * jax.grad(lambda c: loss_img(T.idct2(c, "none")))(cu)
    co = T.dct2(jnp.asarray(x), "ortho")
    lr_o = jnp.asarray(fred.equivalent_ortho_lr_map(lr_u, hh, ww), jnp.float32)[None, :, :, None]
    co2 = co - lr_o * jax.grad(lambda c: loss_img(T.idct2(c, "ortho")))(co)
    np.testing.assert_allclose(np.asarray(T.idct2(cu2, "none")), np.asarray(T.idct2(co2, "ortho")), atol=1e-5)
    # and the bulk scalar is the non-DC entry of the map
    assert fred.equivalent_ortho_lr(lr_u, hh, ww) == pytest.approx(float(lr_o[0, 3, 5, 0]))


def test_lowpass_rank_is_permutation():
    for tr in ("dct", "dft", "dwt"):
        r = T.lowpass_rank(tr, 8, 4, levels=2)
        np.testing.assert_array_equal(np.sort(r.ravel()), np.arange(32))
        assert r[0, 0] == 0
    assert fred.auto_dwt_levels(32, 32, 64) == 2
    assert fred.auto_dwt_levels(32, 32, 65) == 1
    assert fred.auto_dwt_levels(32, 32, 1) == 5


# ----------------------------------------------------------------------------- conventions


def test_init_is_select_real_then_init_from_images():
    real = [_rand(9, 8, 8, 3), _rand(5, 8, 8, 3)]
    cfg = _cfg(ipc=1, k=16)
    key = jax.random.PRNGKey(5)
    params, aux = fred.init(key, real, cfg)
    k_img, k_mask = jax.random.split(key)
    sel = fred.select_real(k_img, real, 4)
    p2, a2 = fred.init_from_images(sel, cfg, k_mask)
    np.testing.assert_array_equal(np.asarray(params["coef"]), np.asarray(p2["coef"]))
    np.testing.assert_array_equal(aux["masks"], a2["masks"])
    # unnormalized DCT of the selected images, masked
    ref = scipy.fft.dctn(np.concatenate(sel).astype(np.float64), norm=None, axes=(1, 2))
    m = aux["masks"][aux["labels"]][..., None]
    np.testing.assert_allclose(np.asarray(params["coef"]), ref * m, rtol=1e-5,
                               atol=1e-5 * np.abs(ref).max())
    with pytest.raises(ValueError, match="same number of instances"):
        fred.init_from_images([sel[0], sel[1][:3]], cfg)


def test_evr_mask_depends_on_the_convention_only_through_the_dc_row_and_column():
    """Orthonormal coefficients = unnormalized / s[u, v]; s^2 is 2x larger on the DC row and
    column (4x at (0, 0)) than elsewhere, so ortho EVR ranks those positions lower; away from
    them the EVR ranking is the same. Built so that the two masks differ."""
    h = w = 6
    s2 = np.outer(T.dct_unnorm_scale(h), T.dct_unnorm_scale(w)) ** 2
    # unnormalized variances: position (0, 3) slightly above the bulk position (2, 2)
    var_u = np.full((h, w), 1e-3)
    var_u[0, 3], var_u[2, 2] = 1.5, 1.0
    var_u = var_u * s2[2, 2]  # bulk scale
    z = RNG.standard_normal((4000, h, w, 1))
    z = (z - z.mean(0)) / z.std(0)
    coef_u = (z * np.sqrt(var_u)[None, :, :, None]).astype(np.float64)
    coef_o = coef_u / np.sqrt(s2)[None, :, :, None]
    m_u = fred.build_masks([coef_u], 1, "evr")[0]
    m_o = fred.build_masks([coef_o], 1, "evr")[0]
    assert m_u[0, 3] == 1 and m_o[2, 2] == 1  # DC-row position wins only unnormalized
    e_u = fred.explained_variance_ratio(coef_u)
    e_o = fred.explained_variance_ratio(coef_o)
    bulk = np.ones((h, w), bool); bulk[0, :] = bulk[:, 0] = False
    r = e_o[bulk] / e_u[bulk]
    np.testing.assert_allclose(r, r[0], rtol=1e-9)  # same ranking off the DC row/column
    np.testing.assert_allclose(e_o[0, 1:] / e_u[0, 1:], r[0] / 2, rtol=1e-9)
    np.testing.assert_allclose(e_o[0, 0] / e_u[0, 0], r[0] / 4, rtol=1e-9)


def test_equivalent_ortho_lr_uses_the_true_size():
    # 28x28 (MNIST): s^2 = 4 * 28 * 28 off the DC row/column, not the 32x32 value
    assert fred.equivalent_ortho_lr(1e8, 28, 28) == pytest.approx(1e8 / (4 * 784))
    lr_map = fred.equivalent_ortho_lr_map(1e8, 28, 28)
    np.testing.assert_allclose(lr_map[1:, 1:], 1e8 / (4 * 784), rtol=1e-12)
    np.testing.assert_allclose(lr_map[0, 0], 1e8 / (16 * 784), rtol=1e-12)
