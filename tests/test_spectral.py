"""UniDD spectral filters, CFM losses and the CFM pipeline pieces (tiny shapes)."""
import math
import os

# small LAPACK solves on CPU are ~1000x slower with competing OpenBLAS threads (effective
# only if numpy is not imported yet, e.g. when this file runs alone)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd import augment, teacher
from jaxdd.models import get_model
from jaxdd.objective import cfm as obj
from jaxdd.objective import spectral


def _psd(rng, d, n=50):
    a = rng.normal(size=(n, d))
    return (a.T @ a / n).astype(np.float64)


def _np_filter(psi, f):
    lam, u = np.linalg.eigh(psi)
    return (u * f(lam)) @ u.T


# ----------------------------------------------------------------------------- filters

@pytest.mark.parametrize("name,kw,f", [
    ("dm", {}, lambda l: np.ones_like(l)),
    ("dc", {}, lambda l: l),
    ("mtt", {"alpha": 0.3, "p": 3}, lambda l: (1 - 0.3 * l) ** 3),
    ("krr", {"beta": 0.1}, lambda l: 1.0 / (l + 0.1)),
])
def test_filters_match_numpy_eigendecomposition(name, kw, f):
    psi = _psd(np.random.default_rng(0), 6)
    got = np.asarray(spectral.apply_filter(jnp.asarray(psi, jnp.float32),
                                           spectral.filter_fn(name, **kw)))
    np.testing.assert_allclose(got, _np_filter(psi, f), rtol=2e-4, atol=2e-5)


def test_lowpass_filter_is_identity_map_and_allpass_is_eye():
    psi = _psd(np.random.default_rng(1), 5)
    np.testing.assert_allclose(spectral.apply_filter(psi, spectral.filter_fn("lfm")), psi,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spectral.apply_filter(psi, spectral.filter_fn("dm")),
                               np.eye(5), atol=1e-5)


def test_highpass_solve_equals_eigen_route_and_inverse():
    psi = _psd(np.random.default_rng(2), 7)
    beta = 0.05
    solve = np.asarray(spectral.highpass(jnp.asarray(psi, jnp.float32), beta))
    eig = np.asarray(spectral.apply_filter(jnp.asarray(psi, jnp.float32),
                                           spectral.filter_fn("hfm", beta=beta)))
    ref = np.linalg.inv(psi + beta * np.eye(7))
    np.testing.assert_allclose(solve, ref, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(eig, ref, rtol=1e-3, atol=1e-3)


def test_eigh_sorted_is_descending_and_reconstructs():
    psi = _psd(np.random.default_rng(3), 5)
    lam, u = spectral.eigh_sorted(jnp.asarray(psi))
    assert np.all(np.diff(np.asarray(lam)) <= 1e-7)
    np.testing.assert_allclose((np.asarray(u) * np.asarray(lam)) @ np.asarray(u).T, psi,
                               rtol=1e-4, atol=1e-5)


def test_unidd_distance_dm_is_flc_matching():
    rng = np.random.default_rng(4)
    psi, psi_s = _psd(rng, 4), _psd(rng, 4)
    phi, phi_s = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    got = spectral.unidd_distance(psi, phi, psi_s, phi_s, spectral.filter_fn("dm"))
    np.testing.assert_allclose(got, np.sum((phi - phi_s) ** 2), rtol=1e-4)
    got = spectral.unidd_distance(psi, phi, psi_s, phi_s, spectral.filter_fn("dc"),
                                  use_signal=False)
    np.testing.assert_allclose(got, np.sum((psi - psi_s) ** 2), rtol=1e-4)


# ----------------------------------------------------------------------------- curriculum

def test_curriculum_endpoints():
    beta, ipc = 0.1, 10
    assert spectral.curriculum_beta(beta, 0, ipc) == pytest.approx(beta)
    last = spectral.curriculum_beta(beta, ipc - 1, ipc)
    assert last == pytest.approx(beta * (1 + math.cos(math.pi * 0.9)) / 2)
    assert last < 0.03 * beta
    assert spectral.curriculum_beta(beta, ipc, ipc) == pytest.approx(0.0, abs=1e-12)
    vals = [spectral.curriculum_beta(beta, b, ipc) for b in range(ipc)]
    assert all(a > b for a, b in zip(vals, vals[1:]))  # strictly decreasing
    assert spectral.curriculum_beta(beta, 7, ipc, enabled=False) == beta
    traced = jax.jit(lambda b: spectral.curriculum_beta(beta, b, ipc))(jnp.float32(3))
    np.testing.assert_allclose(traced, vals[3], rtol=1e-6)
    assert spectral.curriculum_beta(beta, 0, 1) == pytest.approx(beta)  # IPC 1: plain beta


def test_emu_is_the_running_mean_of_batches():
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(3, 3)) for _ in range(5)]
    cache = np.zeros((3, 3))
    for b, x in enumerate(batches, start=1):
        cache = spectral.emu(cache, x, b)
        np.testing.assert_allclose(cache, np.mean(batches[:b], axis=0), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- statistics

def test_batch_statistics_match_numpy():
    rng = np.random.default_rng(6)
    n, h, w, d, k = 5, 3, 4, 6, 3
    x = rng.normal(size=(n, h, w, d)).astype(np.float32) + 0.5
    y = np.array([0, 2, 1, 2, 0])
    flat = x.reshape(-1, d).astype(np.float64)
    mu = flat.mean(0)
    psi_ref = (flat - mu).T @ (flat - mu) / (n * h * w)
    np.testing.assert_allclose(spectral.ffc(jnp.asarray(x)), psi_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(psi_ref, np.cov(flat.T, bias=True), rtol=1e-8)
    xp = x.mean(axis=(1, 2)).astype(np.float64)
    phi_ref = np.zeros((d, k))
    for i in range(n):
        phi_ref[:, y[i]] += xp[i] / n
    np.testing.assert_allclose(spectral.flc(jnp.asarray(x), jnp.asarray(y), k), phi_ref,
                               rtol=1e-4, atol=1e-6)
    # soft/one-hot label matrix gives the same
    np.testing.assert_allclose(spectral.flc(jnp.asarray(x), jax.nn.one_hot(y, k)), phi_ref,
                               rtol=1e-4, atol=1e-6)
    # weights 0/1 select a subset
    wts = np.array([1, 0, 1, 1, 0], np.float32)
    sub = x[wts > 0].reshape(-1, d).astype(np.float64)
    np.testing.assert_allclose(spectral.ffc(jnp.asarray(x), jnp.asarray(wts)),
                               np.cov(sub.T, bias=True), rtol=1e-4, atol=1e-5)


def test_cfm_losses_zero_for_equal_statistics_and_match_formula():
    rng = np.random.default_rng(7)
    psi, psi_s = _psd(rng, 5).astype(np.float32), _psd(rng, 5).astype(np.float32)
    phi, phi_s = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(
        np.float32)
    for kind in ("hfm", "lfm"):
        lf, ls = spectral.cfm_losses(psi, phi, psi, phi, kind=kind, beta=0.1)
        assert float(lf) == 0.0 and float(ls) == 0.0
        g = jax.grad(lambda p: sum(spectral.cfm_losses(psi, phi, p, phi, kind=kind,
                                                       beta=0.1)))(jnp.asarray(psi))
        assert np.all(np.isfinite(np.asarray(g)))
    beta = 0.1
    inv = lambda m: np.linalg.inv(m.astype(np.float64) + beta * np.eye(5))
    lf, ls = spectral.cfm_losses(psi, phi, psi_s, phi_s, kind="hfm", beta=beta)
    np.testing.assert_allclose(lf, np.linalg.norm(inv(psi) - inv(psi_s)), rtol=1e-3)
    np.testing.assert_allclose(ls, np.linalg.norm(inv(psi) @ phi - inv(psi_s) @ phi_s),
                               rtol=1e-3)
    lf, ls = spectral.cfm_losses(psi, phi, psi_s, phi_s, kind="lfm")
    np.testing.assert_allclose(lf, np.linalg.norm(psi - psi_s), rtol=1e-4)
    np.testing.assert_allclose(ls, np.linalg.norm(psi @ phi - psi_s @ phi_s), rtol=1e-4)
    # the 'mean' signal (d,) works too
    lf, ls = spectral.cfm_losses(psi, phi[:, 0], psi_s, phi_s[:, 0], kind="hfm", beta=beta)
    np.testing.assert_allclose(ls, np.linalg.norm(inv(psi) @ phi[:, 0] - inv(psi_s) @ phi_s[:, 0]),
                               rtol=1e-3)


def test_flc_band_energy_parseval_and_bands():
    rng = np.random.default_rng(8)
    psi = _psd(rng, 7)
    phi = rng.normal(size=(7, 2))
    _, u = spectral.eigh_sorted(jnp.asarray(psi))
    per_idx, per_band = spectral.flc_band_energy(jnp.asarray(phi), u, 3)
    np.testing.assert_allclose(np.sum(per_idx), np.sum(phi ** 2), rtol=1e-5)
    np.testing.assert_allclose(np.sum(per_band), np.sum(phi ** 2), rtol=1e-5)
    idx = np.asarray(per_idx)
    # bands: indices floor(i * 3 / 7) -> [0,0,0,1,1,2,2]
    np.testing.assert_allclose(per_band, [idx[:3].sum(), idx[3:5].sum(), idx[5:].sum()],
                               rtol=1e-5)


# ----------------------------------------------------------------------------- augmentation

def test_crop_resize_identity_and_known_crop():
    rng = np.random.default_rng(9)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 2)), jnp.float32)
    full = obj.crop_resize(x, jnp.array([0]), jnp.array([0]), jnp.array([6]), jnp.array([6]))
    np.testing.assert_allclose(full, x, atol=1e-6)
    # a 3x3 crop upsampled x2: PyTorch bilinear (align_corners=False) by hand along rows
    out = obj.crop_resize(x, jnp.array([1]), jnp.array([2]), jnp.array([3]), jnp.array([3]))
    src = np.clip((np.arange(6) + 0.5) * 3 / 6 - 0.5, 0, None)
    y0 = np.minimum(np.floor(src), 2).astype(int)
    y1 = np.minimum(y0 + 1, 2)
    lam = src - y0
    crop = np.asarray(x)[:, 1:4, 2:5]
    rows = (1 - lam)[None, :, None, None] * crop[:, y0] + lam[None, :, None, None] * crop[:, y1]
    ref = ((1 - lam)[None, None, :, None] * rows[:, :, y0]
           + lam[None, None, :, None] * rows[:, :, y1])
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_rrc_params_valid_and_augment_differentiable():
    xs = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8, 8, 1)), jnp.float32)

    @jax.jit  # one compile for all the random pieces (threefry compiles slowly on CPU)
    def run(x):
        params = obj.rrc_params(jax.random.key(0), 200, 8, 8)
        g = jax.grad(lambda z: obj.recover_augment(jax.random.key(1), z, jitter=2).sum())(x)
        return params, g, augment.cutmix(jax.random.key(3), x)

    (i, j, h, w), g, m = run(xs)
    i, j, h, w = map(np.asarray, (i, j, h, w))
    assert np.all((h >= 1) & (h <= 8) & (w >= 1) & (w <= 8))
    assert np.all((i >= 0) & (i + h <= 8) & (j >= 0) & (j + w <= 8))
    assert len(set(h.tolist())) > 2  # scales vary
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).sum()) > 0
    # cutmix: every pixel comes from the image itself or from another image at that place
    same = np.isclose(np.asarray(m)[:, None], np.asarray(xs)[None]).any(1)
    assert same.all()


# ----------------------------------------------------------------------------- feature capture

def _tiny_teacher():
    model = get_model("ConvNetD2W4BN", 3, conv_impl="native")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8, 8, 2)), jnp.float32)
    v = jax.jit(model.init)(jax.random.key(0), x)
    # non-trivial running statistics
    v = {"params": v["params"],
         "batch_stats": jax.tree.map(lambda a: a + 0.3 * jnp.arange(a.shape[0]) / a.shape[0],
                                     v["batch_stats"])}
    return model, v, x


def test_conv_inputs_match_manual_forward():
    model, v, x = _tiny_teacher()
    names, _ = teacher.layer_names(model, v, x.shape[1:])
    assert names == ("conv_0", "conv_1")
    logits, feats = jax.jit(lambda v_, x_: obj.conv_inputs(model, v_, x_)[::2])(v, x)
    assert len(feats) == 2
    p, s = v["params"], v["batch_stats"]

    def conv(z, k, b):
        return jax.lax.conv_general_dilated(z, k, (1, 1), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    def bn(z, ps, st):
        return (z - st["mean"]) / jnp.sqrt(st["var"] + 1e-5) * ps["scale"] + ps["bias"]

    def pool(z):
        n, h, w, c = z.shape
        return z.reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))

    @jax.jit
    def manual(x):
        h1 = pool(jax.nn.relu(bn(conv(x, p["conv_0"]["kernel"], p["conv_0"]["bias"]),
                                p["norm_0"], s["norm_0"])))
        h2 = pool(jax.nn.relu(bn(conv(h1, p["conv_1"]["kernel"], p["conv_1"]["bias"]),
                                p["norm_1"], s["norm_1"])))
        return h1, h2.reshape(4, -1) @ p["classifier"]["kernel"] + p["classifier"]["bias"]

    h1, ref_logits = manual(x)
    np.testing.assert_allclose(feats[0], x, atol=1e-6)
    np.testing.assert_allclose(feats[1], h1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)


def test_conv_inputs_resnet_excludes_shortcut():
    model = get_model("ResNet18BN", 3, stage_sizes=(1, 1), width=4, conv_impl="native")
    x = jnp.zeros((2, 8, 8, 3))
    v = jax.eval_shape(model.init, jax.random.key(0), x)
    v = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), v)
    names, shapes = teacher.layer_names(model, v, (8, 8, 3))
    assert names == ("conv1", "layer1_0/conv1", "layer1_0/conv2", "layer2_0/conv1",
                     "layer2_0/conv2")
    assert shapes[0] == (8, 8, 3) and shapes[-1] == (4, 4, 8)
    all_names, _ = teacher.layer_names(model, v, (8, 8, 3), exclude=())
    assert "layer2_0/shortcut_conv" in all_names and len(all_names) == 6


def test_real_statistics_batched_equals_full_numpy():
    model, v, _ = _tiny_teacher()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(11, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=11).astype(np.int32)
    st = teacher.real_statistics(model, v, x, y, 3, batch_size=4, progress=False)  # 4+4+3 (pad)
    _, _, feats = obj.conv_inputs(model, v, jnp.asarray(x))
    for l, f in enumerate(feats):
        f = np.asarray(f, np.float64)
        flat = f.reshape(-1, f.shape[-1])
        np.testing.assert_allclose(st["psi"][l], np.cov(flat.T, bias=True), rtol=1e-4,
                                   atol=1e-6)
        phi = f.mean((1, 2)).T @ np.eye(3)[y] / 11
        np.testing.assert_allclose(st["phi"][l], phi, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(st["mean"][l], flat.mean(0), rtol=1e-4, atol=1e-6)
    assert st["count"] == 11 and st["names"] == ["conv_0", "conv_1"]


def test_real_statistics_batch_merge_is_the_authors_average_of_batch_covariances():
    """merge='batch' (the authors' hook.py): sum_b (n_b / N) cov_b, batches in order; Phi and
    the mean are batch-independent (parity with hook.py: tests/test_parity_unidd.py)."""
    model, v, _ = _tiny_teacher()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(11, 8, 8, 2)).astype(np.float32) + np.arange(11)[:, None, None,
                                                                          None] * 0.2
    y = rng.integers(0, 3, size=11).astype(np.int32)
    st = teacher.real_statistics(model, v, x, y, 3, batch_size=4, progress=False, merge="batch")
    ex = teacher.real_statistics(model, v, x, y, 3, batch_size=4, progress=False, merge="exact")
    _, _, feats = obj.conv_inputs(model, v, jnp.asarray(x))
    for l, f in enumerate(feats):
        f = np.asarray(f, np.float64)
        ref = sum(np.cov(f[s:s + 4].reshape(-1, f.shape[-1]).T, bias=True) * len(f[s:s + 4])
                  for s in range(0, 11, 4)) / 11
        np.testing.assert_allclose(st["psi"][l], ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(st["phi"][l], ex["phi"][l], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(st["mean"][l], ex["mean"][l], rtol=1e-6, atol=1e-7)
    assert not np.allclose(st["psi"][0], ex["psi"][0], rtol=1e-3)
    with pytest.raises(ValueError, match="Psi merge"):
        spectral.MomentMerger("mean")
