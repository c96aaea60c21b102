"""Parity with the authors' voxel and video networks (fixture: tests/parity/make_modal_nets.py):
Conv3DNet (aailab-kaist/DDiF @ b628e7b 3D_Voxel/networks.py and sdh0818/FreD @ 9f35a7a
3D-MNIST/networks.py) and ConvNet3D (DDiF Video/networks.py:767) -- logits, embeddings (DM's
features) and the parameter gradients of the mean cross-entropy, same weights and inputs.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd.models import from_torch, get_model, to_torch
from jaxdd.objective.dm import make_embed_fn
from parity.common import PINNED, load_fixture
from parity.make_modal_nets import CASES, NUM_CLASSES, case_arrays

FX = load_fixture("modal_nets")


def _setup(case, conv_impl):
    src, c, grid, width, depth, batch, seed = CASES[case]
    arr = case_arrays(case)
    if src.endswith("voxel"):
        model = get_model("Conv3DNet", NUM_CLASSES, width=width, depth=depth,
                          conv_impl=conv_impl)
        x = np.moveaxis(arr["x"], 1, -1)                       # (N, D, H, W, C)
    else:
        model = get_model("ConvNet3D", NUM_CLASSES, width=width, depth=depth,
                          conv_impl=conv_impl)
        x = np.moveaxis(arr["x"], 2, -1)                       # (N, T, H, W, C)
    x = jnp.asarray(x)
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])["params"]
    params = from_torch(template, arr["params"])
    return model, params, x, arr


def _loss(model, x, labels):
    def f(p):
        logits = model.apply({"params": p}, x, train=False)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], 1)), logits
    return f


# 'auto' is the CPU default (hybrid; im2col for the strided video convs); 'native' too on
# one voxel and one video case
@pytest.mark.parametrize("case, conv_impl", [(c, "auto") for c in sorted(CASES)]
                         + [("voxel_ddif", "native"), ("video", "native")])
def test_forward_embed_and_gradients_match_the_authors(case, conv_impl):
    model, params, x, arr = _setup(case, conv_impl)
    labels = jnp.asarray(FX[f"{case}_labels"])
    np.testing.assert_array_equal(FX[f"{case}_labels"], arr["labels"])
    (loss, logits), g = jax.jit(jax.value_and_grad(_loss(model, x, labels), has_aux=True))(
        params)
    np.testing.assert_allclose(logits, FX[f"{case}_logits"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, FX[f"{case}_loss"], rtol=1e-5, atol=1e-6)
    # DM's embedding (the input of the top-level 'classifier'); the authors flatten
    # (C, *grid), jaxdd (*grid, C)
    emb = np.asarray(make_embed_fn(model)(params, x))
    ref = FX[f"{case}_embed"]
    src, _, _, width, depth = CASES[case][:5]
    n, c = ref.shape[0], (64 if src.endswith("video") and depth == 1 else width)
    ref = np.moveaxis(ref.reshape((n, c, -1)), 1, -1).reshape(n, -1)
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-6)
    # gradients, in the authors' layout and parameter order
    gt = to_torch(jax.tree.map(np.asarray, g))
    assert len(gt) == len(arr["params"])
    for i, (gi, idx) in enumerate(zip(gt, arr["index"])):
        if idx is None:
            want = FX[f"{case}_g{i}"]
            np.testing.assert_allclose(gi, want, rtol=1e-4,
                                       atol=1e-6 * max(1.0, float(np.abs(want).max())),
                                       err_msg=f"{case} g{i}")
        else:
            np.testing.assert_allclose(np.linalg.norm(gi.astype(np.float64)),
                                       FX[f"{case}_g{i}_norm"], rtol=1e-5,
                                       err_msg=f"{case} |g{i}|")
            np.testing.assert_allclose(gi.reshape(-1)[idx], FX[f"{case}_g{i}_sample"],
                                       rtol=1e-4, atol=1e-6, err_msg=f"{case} g{i}[idx]")


def test_fixture_records_both_repositories():
    assert FX["meta"]["commit"] == PINNED["aailab-kaist/DDiF"]
    assert PINNED["sdh0818/FreD"] in str(FX["fred_source"])

