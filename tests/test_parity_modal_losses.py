"""Parity: jaxdd's DM / DC losses on voxels and DM on video against the authors' code
(fixture made by tests/parity/make_modal_losses.py from aailab-kaist/DDiF 3D_Voxel/ and
Video/).

Voxels: the authors' Conv3DNet (width 6, depth 3, 8^3, 3 classes) converted with
`jaxdd.models.from_torch` into jaxdd's Conv3DNet; DM (3D_Voxel/main_DM.py) and DC
(3D_Voxel/main_DC.py, dis_metric 'ours' with the authors' row rule for 5-D conv weights).
Video: the authors' ConvNet3D (depth 1, first block 64 channels, 3 frames of 4x4 RGB) into
jaxdd's ConvNet3D; DM (Video/distill_DDiF.py). No augmentation, as the authors.

Tolerances (float32): forward values (embeddings, distance_wb, per-class CE gradients)
rtol 1e-5..1e-4; the summed losses rtol 2e-5 (DM) / 2e-4 (DC: a sum of cosines of gradients
through three conv layers, accumulation order differs); d loss / d inputs rtol 1e-3 with
atol at 1e-4 of the largest entry (DC: a second-order gradient), as tests/test_parity_dm_dc.py.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from parity.common import load_fixture

from jaxdd import augment
from jaxdd.models import from_torch, get_model
from jaxdd.objective import dc, dm

FX = load_fixture("modal_losses")
VC = 3  # voxel classes
CC = 2  # video classes


def _torch_list(prefix):
    keys = sorted(k for k in FX if k.startswith(prefix))
    return [np.asarray(FX[k], np.float32) for k in keys]


def _params(model, x, prefix):
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])["params"]
    return jax.tree.map(jnp.asarray, from_torch(template, _torch_list(prefix)))


@pytest.fixture(scope="module")
def voxel_model():
    m = get_model("conv3dnet", VC, width=6, depth=3, conv_impl="native")
    return m, (lambda p, x: m.apply({"params": p}, x, train=True))


def test_fixture_records_the_authors_voxel_dsa_default_as_identity():
    """The authors' voxel scripts: args.dsa is True for the default strategy '' but
    DiffAugment returns the batch itself; jaxdd: 'none'/'' -> no augmentation."""
    assert bool(FX["vox/dsa_flag"]) and bool(FX["vox/dsa_default_is_identity"])
    assert augment.make_augment("", modality="voxel") is None
    assert dm.make_class_augment("", modality="voxel") is None


def test_voxel_dm_loss_and_gradient(voxel_model):
    m, _ = voxel_model
    real, syn = jnp.asarray(FX["vox/real"]), jnp.asarray(FX["vox/syn"])
    params = _params(m, syn, "vox/dm_net/")
    loss = dm.make_loss(dm.make_embed_fn(m), VC, augment=None)
    ctx = dm.DMContext(params, real, jnp.ones(real.shape[:2], jnp.float32))
    labels = jnp.asarray(FX["vox/syn_labels"])
    val, grad = jax.jit(jax.value_and_grad(loss, argnums=1))(jax.random.PRNGKey(0), syn,
                                                            labels, ctx)
    np.testing.assert_allclose(val, FX["vox/dm_loss"], rtol=2e-5)
    g_ref = FX["vox/dm_grad_syn"]
    np.testing.assert_allclose(grad, g_ref, rtol=1e-3, atol=1e-4 * np.abs(g_ref).max())


def test_distance_wb_on_a_5d_conv_weight():
    """The authors' distance_wb leaves 5-D weights unreshaped: the cosine runs over the
    last axis (kw). jaxdd's rows5d='authors' does the same on the flax layout."""
    a, b = FX["vox/dwb5/a"], FX["vox/dwb5/b"]   # (out, in, kd, kh, kw)
    to_flax = lambda t: jnp.asarray(t.transpose(2, 3, 4, 1, 0))  # noqa: E731
    d = dc.unit_distance(to_flax(a), to_flax(b))
    np.testing.assert_allclose(d, FX["vox/dwb5/d"], rtol=1e-5)
    unit = dc.unit_distance(to_flax(a), to_flax(b), rows5d="unit")
    assert abs(float(unit) - float(FX["vox/dwb5/d"])) > 1.0  # the other rule differs


def test_voxel_dc_gradients_loss_and_gradient(voxel_model):
    m, apply_fn = voxel_model
    real, syn = jnp.asarray(FX["vox/real"]), jnp.asarray(FX["vox/syn"])
    params = _params(m, syn, "vox/dc_net/")
    labels = jnp.asarray(FX["vox/syn_labels"])
    n_real, n_syn = real.shape[1], int((FX["vox/syn_labels"] == 0).sum())
    loss = dc.make_loss(apply_fn, VC, augment=None)
    ctx = dc.DCContext(params, real, jnp.ones(real.shape[:2], jnp.float32))

    @jax.jit
    def run(params, real, syn):
        gce = jax.grad(dc.masked_ce, argnums=1)
        g_r = gce(apply_fn, params, real[0], jnp.zeros((n_real,), jnp.int32),
                  jnp.ones((n_real,)))
        g_s = gce(apply_fn, params, syn[:n_syn], labels[:n_syn], jnp.ones((n_syn,)))
        val, grad = jax.value_and_grad(lambda x: loss(jax.random.PRNGKey(0), x, labels,
                                                      ctx))(syn)
        return g_r, g_s, val, grad

    g_r, g_s, val, grad = run(params, real, syn)
    for g, tag in ((g_r, "real"), (g_s, "syn")):  # class 0, in jaxdd layout
        ref = from_torch(jax.tree.map(np.asarray, g), _torch_list(f"vox/dc_gw_{tag}/"))
        scale = max(np.abs(v).max() for v in jax.tree.leaves(ref))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(
            a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=tag), g, ref)
    np.testing.assert_allclose(val, FX["vox/dc_loss"], rtol=2e-4)
    g_ref = FX["vox/dc_grad_syn"]
    np.testing.assert_allclose(grad, g_ref, rtol=1e-3, atol=1e-4 * np.abs(g_ref).max())


def test_video_dm_loss_and_gradient():
    m = get_model("convnet3d", CC, depth=1, width=64, conv_impl="native")
    real, syn = jnp.asarray(FX["vid/real"]), jnp.asarray(FX["vid/syn"])
    params = _params(m, syn, "vid/dm_net/")
    embed = dm.make_embed_fn(m)
    loss = dm.make_loss(embed, CC, augment=None)
    ctx = dm.DMContext(params, real, jnp.ones(real.shape[:2], jnp.float32))
    labels = jnp.asarray(FX["vid/syn_labels"])

    @jax.jit
    def run(params, real, syn):
        e = embed(params, real.reshape((-1,) + real.shape[2:]))
        return e, jax.value_and_grad(loss, argnums=1)(jax.random.PRNGKey(0), syn, labels, ctx)

    e, (val, grad) = run(params, real, syn)
    # embeddings: jaxdd flattens (T, H, W, C), the authors (C, T, H, W)
    ch = int(FX["vid/dm_net/00"].shape[0])
    e_ref = FX["vid/dm_emb_real"].reshape(real.shape[0] * real.shape[1], ch, -1)
    e_j = np.asarray(e).reshape(e_ref.shape[0], -1, ch).transpose(0, 2, 1)
    np.testing.assert_allclose(e_j, e_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(val, FX["vid/dm_loss"], rtol=2e-5)
    g_ref = FX["vid/dm_grad_syn"]
    np.testing.assert_allclose(grad, g_ref, rtol=1e-3, atol=1e-4 * np.abs(g_ref).max())
