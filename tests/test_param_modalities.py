"""Every parameterization on every grid rank (issue 28): images (N, H, W, C), audio
spectrograms (N, F, T, 1), video (N, T, H, W, C), voxels (N, D, H, W, 1).

Tiny shapes, seconds: decode shapes for every parameterization x rank, decode under jit and
vmap on a 3-D grid, the budget (stored floats <= ipc x prod(image_shape) per class, and
budget_line's numbers), NSD's and FreD's exact reconstructions on 3-D grids, and the clear
errors for a shape or a budget a parameterization cannot represent.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdd.param as P
from jaxdd.param import ddif, fred, nsd, pixel, transforms_nd

SHAPES = {"image": (6, 6, 3), "audio": (8, 6, 1), "video": (3, 4, 4, 3),
          "voxel": (4, 4, 4, 1)}
NUM_CLASSES = 2


def _real(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n,) + shape).astype(np.float32) for _ in range(NUM_CLASSES)]


def _cfg(name, ipc=2):
    pm = P.get(name)
    cfg = pm.default_config()
    cfg.ipc = ipc
    if name == "fred":
        cfg.k = 8
    if name == "ddif":
        cfg.update(dict(width=3, num_layers=1, warmup_steps=2, warmup_chunk=2,
                        progress=False))
    return cfg


@pytest.mark.parametrize("modality", sorted(SHAPES))
@pytest.mark.parametrize("name", ["pixel", "fred", "ddif", "nsd"])
def test_decode_shape_and_budget(name, modality):
    shape = SHAPES[modality]
    pm, cfg = P.get(name), _cfg(name)
    if name == "ddif" and modality != "video":
        cfg.warmup_steps = 0    # the warm-up on a 5-D (video) target is run once
    line = P.budget_line(name, cfg, shape)      # from the config alone, before init
    params, aux = pm.init(jax.random.PRNGKey(0), _real(shape), cfg)
    x = pm.decode(params, aux)
    n = len(aux["labels"]) if "labels" in aux else x.shape[0]
    assert x.shape == (n,) + shape and x.dtype == jnp.float32
    assert np.isfinite(np.asarray(x)).all()
    allowed = cfg.ipc * int(np.prod(shape))
    used = pm.budget(params, aux)
    assert 0 < used <= NUM_CLASSES * allowed
    # the line states the per-class allowance and the stored floats per class
    assert f"= {allowed} floats per class" in line
    stored = int(re.search(r"(\d+) floats stored per class", line).group(1)) \
        if "stored per class" in line else allowed
    assert stored * NUM_CLASSES == used, (line, used)
    # a subset by (traced) indices equals the same rows of the full decode
    idx = jnp.asarray([n - 1, 0])
    sub = jax.jit(lambda p, i: pm.decode(p, aux, indices=i))(params, idx)
    np.testing.assert_allclose(np.asarray(sub), np.asarray(x)[np.asarray(idx)], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name", ["pixel", "fred", "ddif", "nsd"])
def test_decode_jit_and_vmap_on_a_3d_grid(name):
    shape = SHAPES["video"]
    pm, cfg = P.get(name), _cfg(name)
    params, aux = pm.init(jax.random.PRNGKey(1), _real(shape), cfg)
    full = np.asarray(pm.decode(params, aux))
    pairs = jnp.asarray([[0, 1], [2, 3]])
    out = jax.jit(jax.vmap(lambda i: pm.decode(params, aux, indices=i)))(pairs)
    assert out.shape == (2, 2) + shape
    np.testing.assert_allclose(np.asarray(out), full[np.asarray(pairs)], rtol=1e-5, atol=1e-5)
    # and differentiable there
    g = jax.grad(lambda p: jnp.sum(pm.decode(p, aux, indices=pairs[0]) ** 2))(params)
    assert any(float(jnp.abs(leaf).sum()) > 0 for leaf in jax.tree.leaves(g))


def test_resolution_on_3d_grids():
    shape = SHAPES["voxel"]
    for name in ("pixel", "fred", "ddif"):
        pm = P.get(name)
        params, aux = pm.init(jax.random.PRNGKey(2), _real(shape), _cfg(name))
        assert pm.decode(params, aux, resolution=8).shape[1:] == (8, 8, 8, 1)
        assert pm.decode(params, aux, resolution=(2, 4, 6)).shape[1:] == (2, 4, 6, 1)
    params, aux = nsd.init(jax.random.PRNGKey(2), _real(shape), _cfg("nsd"))
    with pytest.raises(NotImplementedError, match="training resolution 4x4x4"):
        nsd.decode(params, aux, resolution=8)


def test_fred_3d_keeps_everything_at_full_k():
    """k = prod(grid): one instance per class per ipc, every coefficient kept: the decode is
    the real data (DCT and DFT on a video grid)."""
    shape = SHAPES["video"]
    real = _real(shape, n=1)
    for transform in ("dct", "dft"):
        cfg = _cfg("fred", ipc=1)
        cfg.k, cfg.transform = int(np.prod(shape[:-1])), transform
        params, aux = fred.init(jax.random.PRNGKey(0), real, cfg)
        np.testing.assert_allclose(np.asarray(fred.decode(params, aux)),
                                   np.concatenate(real), atol=1e-5)
        packed = fred.pack(params, aux)
        np.testing.assert_array_equal(np.asarray(fred.unpack(packed, aux)["coef"]),
                                      np.asarray(params["coef"]))


def test_fred_3d_lowpass_order_and_resize():
    rank = transforms_nd.lowpass_rank_nd("dct", (2, 3, 3))
    assert sorted(rank.ravel().tolist()) == list(range(18)) and rank[0, 0, 0] == 0
    assert rank[1, 0, 0] < rank[1, 1, 0] < rank[1, 1, 1]
    # a constant volume keeps its value on a finer grid (amplitude-preserving resize)
    x = jnp.full((1, 2, 4, 4, 1), 0.7)
    c = transforms_nd.dctn(x, "none", 3)
    y = transforms_nd.idctn_resize(c, (4, 8, 8), "none")
    np.testing.assert_allclose(np.asarray(y), 0.7, atol=1e-5)


def test_nsd_3d_full_size_dct_init_reconstructs():
    """With every spectrum size at full size (t1 = u1, t2 = C, t3..t5 = T, H, W) the DCT init
    is exact: one learnable transform per grid axis represents the real clips."""
    shape = SHAPES["video"]
    real = _real(shape, n=2)
    cfg = nsd.default_config()
    cfg.update(dict(ipc=20, init="dct", n_t=1, n_k=1, u1=2, t1=2, t2=3, t3=3, t4=4, t5=4))
    params, aux = nsd.init(jax.random.PRNGKey(0), real, cfg)
    assert set(params) == {"T", "K1", "K2", "K3", "K4", "K5"}
    assert params["K3"].shape[-2:] == (3, 3) and params["K5"].shape[-2:] == (4, 4)
    idx = aux["init_real_indices"]
    want = np.concatenate([real[c][idx[c]] for c in range(NUM_CLASSES)])
    np.testing.assert_allclose(np.asarray(nsd.decode(params, aux)), want, atol=1e-5)


def test_ddif_3d_fields_follow_the_config():
    """The published voxel field (3 sine layers, width 20, dim_in 3, dim_out 1) and the
    video field (6 layers, width 40, 3 outputs) flow from the config into the budget."""
    cfg = ddif.default_config()
    cfg.update(dict(width=20, num_layers=3, w0=40.0, w0_initial=30.0))
    assert ddif.params_per_field(cfg, (32, 32, 32, 1)) == 941
    assert "floor(32768 / 941) = 34 fields per class" in ddif.budget_line(cfg, (32, 32, 32, 1))
    cfg.update(dict(width=40, num_layers=6, w0=5.0, w0_initial=5.0, fields_per_class=1))
    assert "fixed 1 fields per class" in ddif.budget_line(cfg, (16, 112, 112, 3))
    with pytest.raises(ValueError, match="dim_out=1 but images of shape"):
        cfg.dim_out = 1
        ddif.budget_line(cfg, (4, 8, 8, 3))


def test_clear_errors():
    # a rank no parameterization represents
    for name in P.available():
        with pytest.raises(ValueError, match=r"1-3 grid axes"):
            P.budget_line(name, _cfg(name), (2, 2, 2, 2, 1))
    with pytest.raises(ValueError, match="1-3 grid axes"):
        fred.init(jax.random.PRNGKey(0), [np.zeros((2, 2, 2, 2, 2, 1), np.float32)] * 2,
                  _cfg("fred"))
    with pytest.raises(ValueError, match="grids with 1-3 axes"):
        nsd.choose_sizes(1, (2, 2, 2, 2, 1))
    # budgets that cannot fit: the quantity and what to do
    cfg = _cfg("fred", ipc=1)
    cfg.k = 65
    with pytest.raises(ValueError, match=r"k = 65 .*prod\(grid \(4, 4, 4\)\) = 64.*param.k"):
        fred.budget_line(cfg, SHAPES["voxel"])
    with pytest.raises(ValueError, match="DDiF: invalid budget.*Reduce the field width"):
        ddif.budget_line(ddif.default_config(), (2, 2, 2, 1))
    with pytest.raises(ValueError, match=r"budget.*prod\(grid\)\*C"):
        nsd.budget_line(_cfg("nsd", ipc=1), (1, 1, 2, 1))
    with pytest.raises(ValueError, match="t5 is the spectrum size"):
        nsd.choose_sizes(1, (8, 8, 3), t5=2)
    with pytest.raises(ValueError, match="Haar DWT is implemented for 2 grid axes"):
        c = _cfg("fred")
        c.transform, c.norm = "dwt", "ortho"
        fred.init(jax.random.PRNGKey(0), _real(SHAPES["voxel"]), c)
    with pytest.raises(ValueError, match="ipc >= 1"):
        pixel.budget_line(_cfg("pixel", ipc=0), (4, 4, 4, 1))
