"""Parity: jaxdd's ConvNet == the authors' ConvNet (MTT networks.py) -- logits and gradients.

Fixture tests/parity/fixtures/mtt_convnet.npz (tests/parity/make_mtt_convnet.py): the
authors' ConvNet (width 16, depth 3, instance norm, ReLU, avg pooling) on 4 images of
3x32x32 and of 1x28x28 (first conv padded by 3), its logits, mean cross-entropy and the
gradient of that loss w.r.t. every parameter.  The weights are loaded into jaxdd's ConvNet
with ``jaxdd.models.from_torch`` (the classifier's input axis is permuted from PyTorch's
(C, H, W) flatten order to jaxdd's (H, W, C)); both conv implementations are checked.

Tolerances (float32): logits and loss rtol 1e-5 / atol 1e-5 (logits are O(1); measured
max difference 4e-7); gradients rtol 1e-4 + atol 1e-5 * max|g| of each tensor (measured:
at most 1.6e-6 * max|g|) -- both sides accumulate float32 sums of thousands of terms in
different orders (im2col matmul vs direct conv, two-pass vs PyTorch's GroupNorm).  The conv
biases sit in front of instance norm, so their true gradient is 0: both sides must be
rounding noise (< 2e-6 * max|conv kernel gradient|).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdd.models import ConvNet, from_torch, get_model, to_torch
from parity.common import load_fixture

FIX = load_fixture("mtt_convnet")


@pytest.fixture(autouse=True)
def _highest_precision():
    with jax.default_matmul_precision("highest"):
        yield


def _case(case):
    x = np.transpose(FIX[f"{case}_x"], (0, 2, 3, 1))          # NCHW -> NHWC
    n = int(FIX[f"{case}_num_params"])
    tp = [FIX[f"{case}_p{i}"] for i in range(n)]
    tg = [FIX[f"{case}_g{i}"] for i in range(n)]
    return x, FIX[f"{case}_labels"], tp, tg


@pytest.mark.parametrize("conv_impl", ["native", "im2col"])
@pytest.mark.parametrize("case", ["rgb", "gray"])
def test_convnet_logits_and_gradients_match_authors(case, conv_impl):
    x, labels, tparams, tgrads = _case(case)
    model = get_model("ConvNetD3W16", 10, conv_impl=conv_impl)
    assert model.gray_padding  # the authors' default reaches the registry
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])["params"]
    params = from_torch(template, tparams)
    # the round trip is exact and the classifier has the authors' 16*4*4 inputs
    for a, b in zip(to_torch(params), tparams):
        np.testing.assert_array_equal(a, b)
    assert params["classifier"]["kernel"].shape == (256, 10)

    def loss_fn(p):
        logits = model.apply({"params": p}, jnp.asarray(x), train=True)
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.asarray(labels)).mean(), logits

    (loss, logits), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
    np.testing.assert_allclose(logits, FIX[f"{case}_logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss, FIX[f"{case}_loss"], rtol=1e-5)
    got = to_torch(jax.tree.map(np.asarray, grads))
    assert len(got) == len(tgrads) == 4 * 3 + 2
    for i, (g, want) in enumerate(zip(got, tgrads)):
        if i % 4 == 1 and i < 12:
            # conv bias right before instance norm: its gradient is exactly 0 in exact
            # arithmetic (the norm subtracts the per-channel mean); both sides hold float32
            # rounding noise (~1e-7), so assert that both are noise-sized instead.
            kscale = float(np.abs(tgrads[i - 1]).max())
            assert np.abs(g).max() < 2e-6 * kscale and np.abs(want).max() < 2e-6 * kscale
            continue
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"{case} {conv_impl} parameter {i}")


def test_gray_padding_off_is_a_different_network():
    """gray_padding=False (plain padding 1) is not the authors' network at 28x28x1."""
    x, _, tparams, _ = _case("gray")
    off = ConvNet(num_classes=10, depth=3, width=16, gray_padding=False)
    shapes = jax.eval_shape(off.init, jax.random.PRNGKey(0), x[:1])["params"]
    assert shapes["classifier"]["kernel"].shape == (16 * 3 * 3, 10)   # 28->14->7->3
    with pytest.raises(ValueError, match="classifier|shape"):
        from_torch(shapes, tparams)
