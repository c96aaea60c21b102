"""Parity of the parameterizations on 3-D grids with the authors' code.

Fixtures (made by running the authors' PyTorch code once, see the generators' docstrings):
  * tests/parity/fixtures/modal_ddif.npz (tests/parity/make_modal_ddif.py): aailab-kaist/DDiF
    @ b628e7b, 3D_Voxel/DDiF.py (voxel fields: DIM_IN 3, dim_out 1) and Video/DDiF.py (video
    fields: DIM_IN 3, dim_out 3). Checked: budget per field and fields per class, the 3-D
    coordinate grids (their to_coordinates_and_features), decode from their weights (their
    DDiF.get, reshaped to jaxdd's channels-last layout), and the voxel warm-up (their
    per-field Adam MSE fit, 8 steps) from the same initial fields and targets. Documented
    difference, asserted: their video warm-up target ``clip.reshape(C, -1).T`` of a
    (T, C, H, W) clip is not the clip in the layout ``get`` decodes; jaxdd fits the latter.
  * tests/parity/fixtures/modal_fred.npz (tests/parity/make_modal_fred.py): sdh0818/FreD @
    9f35a7a, 3D-MNIST/ (DCT, SynSet). Checked: the 3-D DCT forward / inverse (norm 'none'),
    instances per class, the EVR masks per class (channel mean; shared by the channels),
    init from the same selected grids, the masked decode, and two SGD-momentum steps with
    the authors' lr through jaxdd's synthetic optimizer.

Tolerances (float32): decode rtol 1e-5 / atol 2e-6 against the float64 forward of the same
weights for each float32 side (as tests/test_parity_ddif.py: sin(40 z) amplifies the
rounding of z); warm-up rtol 1e-4 / atol 1e-6 (8 chained Adam steps at the authors' lr_nf_init 5e-4;
measured 6e-8 from a float64 run); DCT / coefficients /
decoded grids rtol 1e-5 with atol 1e-5 x max|reference| (both sides sum 4..6 float32
products per axis in another order); masks exactly equal.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from parity.common import load_fixture

from jaxdd import outer_step
from jaxdd.param import ddif, fred, siren, transforms_nd

DD = load_fixture("modal_ddif")
FR = load_fixture("modal_fred")
FRED_CASES = [str(c) for c in FR["cases"]]


# ------------------------------------------------------------------------------ DDiF
def _fields(prefix, num_layers):
    """Torch-layout stacked weights -> jaxdd's stacked pytree (w: (K, in, out))."""
    return {"layers": [{"w": jnp.asarray(np.transpose(DD[f"{prefix}_w{l}"], (0, 2, 1))),
                        "b": jnp.asarray(DD[f"{prefix}_b{l}"])}
                       for l in range(num_layers + 1)]}


def _aux(shape, num_layers, width, w0, w0_initial, fpc=0, num_classes=2):
    cfg = ddif.default_config()
    cfg.update(dict(width=width, num_layers=num_layers, w0=w0, w0_initial=w0_initial,
                    warmup_steps=0, progress=False, fields_per_class=fpc, ipc=1))
    real = [np.zeros((2,) + shape, np.float32) for _ in range(num_classes)]
    return ddif.init(jax.random.key(0), real, cfg)[1]


def _forward64(prefix, num_layers, coords, w0, w0_initial):
    """The SIREN forward in float64 from the stored weights: (K, P, out)."""
    h = np.asarray(coords, np.float64)[None]
    for l in range(num_layers + 1):
        z = np.einsum("kpi,koi->kpo", h, DD[f"{prefix}_w{l}"].astype(np.float64)) \
            + DD[f"{prefix}_b{l}"].astype(np.float64)[:, None]
        h = z if l == num_layers else np.sin((w0_initial if l == 0 else w0) * z)
    return h


def _decode_close(ours, theirs, ref64):
    for side in (ours, theirs):
        np.testing.assert_allclose(np.asarray(side), ref64, rtol=1e-5, atol=2e-6)


def test_ddif_fixture_meta():
    assert DD["meta"]["repository"] == "aailab-kaist/DDiF"
    assert DD["meta"]["commit"].startswith("b628e7b")


def test_ddif_voxel_budget_coordinates_and_decode():
    L, width, out, w0, w0i = (float(v) for v in DD["vox_hparams"][:5])
    L, width, out = int(L), int(width), int(out)
    theirs = DD["vox_decoded"]                        # (K, 1, D, H, W)
    D = theirs.shape[2]
    shape = (D, D, D, 1)
    aux = _aux(shape, L, width, w0, w0i)
    b, npc = (int(v) for v in DD["vox_budget"])
    assert aux["params_per_field"] == b == siren.num_params(3, width, L, out)
    assert aux["fields_per_class"] == npc
    np.testing.assert_array_equal(aux["labels"], DD["vox_labels"])
    coords = siren.make_grid((D, D, D))
    np.testing.assert_allclose(coords, DD["vox_coord"], rtol=0, atol=1e-7)
    params = _fields("vox_warm", L)
    ours = ddif.decode(params, aux)                   # (K, D, H, W, 1)
    assert ours.shape == (len(theirs),) + shape
    ref64 = _forward64("vox_warm", L, DD["vox_coord"], w0, w0i).reshape((-1,) + shape)
    _decode_close(ours, np.moveaxis(theirs, 1, -1), ref64)
    # decode is jit- and vmap-able on the 3-D grid
    jitted = jax.jit(lambda p, i: ddif.decode(p, aux, indices=i))
    np.testing.assert_allclose(jitted(params, jnp.arange(len(theirs))), ours, rtol=1e-6,
                               atol=1e-6)


def test_ddif_voxel_warmup_matches():
    L, width, _, w0, w0i, steps, lr = (float(v) for v in DD["vox_hparams"])
    targets = np.moveaxis(DD["vox_warm_targets"], 1, -1)   # (K, D, H, W, 1)
    aux = _aux(targets.shape[1:], int(L), int(width), w0, w0i)
    fitted, _ = ddif.warmup(None, _fields("vox_pre", int(L)), aux, jnp.asarray(targets),
                            int(steps), lr=lr, progress=False)
    want = _fields("vox_warm", int(L))
    moved = max(float(np.abs(a - b).max()) for a, b in
                zip(jax.tree.leaves(want), jax.tree.leaves(_fields("vox_pre", int(L)))))
    assert moved > 8 * lr / 2    # the fit moved the fields by several Adam steps
    for a, b in zip(jax.tree.leaves(fitted), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_ddif_video_coordinates_and_decode():
    L, width, out, w0, w0i = DD["vid_hparams"]
    L, width, out = int(L), int(width), int(out)
    theirs = DD["vid_decoded"]                        # (K, T, 3, H, W)
    K, T, C, H, W = theirs.shape
    shape = (T, H, W, C)
    aux = _aux(shape, L, width, float(w0), float(w0i), fpc=K // 2)
    assert aux["params_per_field"] == siren.num_params(3, width, L, out)
    np.testing.assert_array_equal(aux["labels"], DD["vid_labels"])
    np.testing.assert_allclose(siren.make_grid((T, H, W)), DD["vid_coord"], rtol=0, atol=1e-7)
    ours = ddif.decode(_fields("vid", L), aux)        # (K, T, H, W, C)
    ref64 = _forward64("vid", L, DD["vid_coord"], float(w0), float(w0i))
    _decode_close(ours, np.moveaxis(theirs, 2, -1), ref64.reshape((K,) + shape))
    assert float(np.abs(ref64).max()) > 0.5      # weights spread: far from a zero field


def test_ddif_video_warmup_target_layout_differs():
    """Their Video/DDiF.py:190 fits ``clip.reshape(C, -1).T`` of a (T, C, H, W) clip; the
    clip in the layout their ``get`` decodes ((T, H, W) points x C) is another array: jaxdd
    fits the latter (documented in jaxdd.param.ddif)."""
    clip = DD["vid_clip"]                              # (T, C, H, W)
    decode_layout = np.moveaxis(clip, 1, -1).reshape(-1, clip.shape[1])   # (P, C)
    theirs = DD["vid_clip_features"]
    assert theirs.shape == decode_layout.shape
    np.testing.assert_array_equal(theirs, clip.reshape(clip.shape[1], -1).T)
    assert not np.allclose(theirs, decode_layout)


# ------------------------------------------------------------------------------ FreD
def _g(case, key):
    return FR[f"{case}_{key}"]


def _cl(a):
    """(..., C, D, H, W) -> (..., D, H, W, C)."""
    return np.moveaxis(np.asarray(a), -4, -1)


def _close(actual, desired, rtol=1e-5, rel_atol=1e-5):
    desired = np.asarray(desired)
    np.testing.assert_allclose(np.asarray(actual), desired, rtol=rtol,
                               atol=rel_atol * float(np.abs(desired).max()))


def _voxels(case):
    u8 = _g(case, "u8")   # (classes, n, C, D, H, W)
    x = ((u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5))
         / np.float32(0.25)).astype(np.float32)
    return _cl(x)


def _selected(case):
    x, sel = _voxels(case), _g(case, "sel")
    return [x[c][sel[c]] for c in range(x.shape[0])]


def _cfg(case):
    cfg = fred.default_config()
    cfg.k, cfg.ipc, cfg.norm = int(_g(case, "k")), int(_g(case, "ipc")), "none"
    return cfg


@functools.lru_cache(maxsize=None)
def _init(case):
    return fred.init_from_images(_selected(case), _cfg(case))


def test_fred_fixture_meta():
    assert FR["meta"]["repository"] == "sdh0818/FreD"
    assert FR["meta"]["commit"].startswith("9f35a7a")
    assert set(FRED_CASES) == {"vox6", "vox4c2"}


@pytest.mark.parametrize("case", FRED_CASES)
def test_fred_3d_dct_forward_and_inverse(case):
    x = _voxels(case)
    flat = jnp.asarray(x.reshape((-1,) + x.shape[2:]))
    coef = transforms_nd.dctn(flat, "none", grid_ndim=3)
    _close(coef, _cl(_g(case, "dct_all")))
    back = transforms_nd.idctn(jnp.asarray(_cl(_g(case, "dct_all"))), "none", grid_ndim=3)
    _close(back, _cl(_g(case, "idct_all")))
    _close(back, flat)


@pytest.mark.parametrize("case", FRED_CASES)
def test_fred_3d_masks_and_instances_per_class(case):
    params, aux = _init(case)
    npc = int(_g(case, "npc"))
    grid = aux["image_shape"][:-1]
    assert npc == aux["num_per_class"] == fred.instances_per_class(int(_g(case, "ipc")), grid,
                                                                   int(_g(case, "k")))
    mask = _g(case, "mask")       # (N, C, D, H, W): one mask per class, every channel
    assert np.all(mask == mask[:, :1])
    for c in range(2):
        assert np.all(mask[c * npc:(c + 1) * npc] == mask[c * npc])
    np.testing.assert_array_equal(aux["masks"], mask[::npc, 0].astype(np.float32))
    assert aux["masks"].shape == (2,) + tuple(grid)
    assert fred.budget(params, aux) == 2 * npc * int(_g(case, "k")) * aux["image_shape"][-1]


@pytest.mark.parametrize("case", FRED_CASES)
def test_fred_3d_init_and_decode(case):
    params, aux = _init(case)
    m = _cl(_g(case, "mask")).astype(np.float32)
    _close(params["coef"], m * _cl(_g(case, "freq0")))
    _close(fred.decode(params, aux), _cl(_g(case, "decode0")))


@pytest.mark.parametrize("case", FRED_CASES)
def test_fred_3d_two_sgd_steps(case):
    params, aux = _init(case)
    g_vox = jnp.asarray(_cl(_g(case, "G")))
    loss = lambda p: jnp.sum(g_vox * jnp.tanh(fred.decode(p, aux)))  # noqa: E731
    ocfg = ml_collections.ConfigDict(dict(name="sgd", lr=float(_g(case, "lr")),
                                          momentum=float(_g(case, "mom"))))
    tx = outer_step.make_syn_optimizer(ocfg, fred)
    state = tx.init(params)
    grad = jax.jit(jax.grad(loss))
    for _ in range(2):
        params, state = outer_step.apply_syn_update(tx, grad(params), state, params)
    m = _cl(_g(case, "mask")).astype(np.float32)
    _close(params["coef"], m * _cl(_g(case, "freq2")))
    _close(fred.decode(params, aux), _cl(_g(case, "decode2")))
