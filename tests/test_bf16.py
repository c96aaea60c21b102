"""The opt-in bfloat16 compute mode of the conv and dense layers (``compute_dtype``).

Contract (jaxdd.models.conv.resolve_compute_dtype): operands rounded to bfloat16, products
accumulated in float32, float32 results; parameters, norms, activations and the gradients
that reach parameters and inputs stay float32.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd.models import convolve, get_model
from jaxdd.models.conv import Linear, resolve_compute_dtype
from test_models import TINY, _fake_init


def _round_bf16(a):
    return jnp.asarray(a).astype(jnp.bfloat16).astype(jnp.float32)


CASES = [
    # (x shape, kernel shape, padding, strides): deep layer (hybrid's native path), shallow
    # layer (channels-first im2col), gray padding 3, stride 2 (im2col fallback), 3-D
    ((2, 8, 8, 8), (3, 3, 8, 8), 1, 1),
    ((2, 8, 8, 1), (3, 3, 1, 8), 3, 1),
    ((2, 9, 9, 4), (3, 3, 4, 6), 1, 2),
    ((1, 4, 5, 4, 3), (3, 3, 3, 3, 4), 1, 1),
]


@pytest.mark.parametrize("impl", ["native", "im2col", "hybrid"])
@pytest.mark.parametrize("case", CASES)
def test_bf16_conv_is_f32_conv_of_rounded_operands(impl, case):
    """The product of two bfloat16 numbers is exact in float32, so with float32 accumulation
    the result equals a float32 conv of the rounded operands up to summation order; a
    bfloat16 accumulator or a bfloat16 result would be ~1e-3 off."""
    xs, ks, pad, st = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=xs).astype(np.float32))
    k = jnp.asarray(rng.normal(size=ks).astype(np.float32))
    with jax.default_matmul_precision("highest"):
        ref = convolve(_round_bf16(x), _round_bf16(k), padding=pad, strides=st, impl="native")
        got = jax.jit(lambda x, k: convolve(x, k, padding=pad, strides=st, impl=impl,
                                            compute_dtype="bfloat16"))(x, k)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=2e-6, atol=2e-5)
    # and it is not the float32 conv (the mode is really on)
    full = convolve(x, k, padding=pad, strides=st, impl="native")
    assert float(jnp.max(jnp.abs(full - got))) > 1e-3


def test_bf16_linear_is_f32_matmul_of_rounded_operands():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(5, 64)).astype(np.float32))
    lin = Linear(7, compute_dtype="bfloat16")
    v = lin.init(jax.random.key(0), x)
    y = lin.apply(v, x)
    with jax.default_matmul_precision("highest"):
        ref = _round_bf16(x) @ _round_bf16(v["params"]["kernel"]) + v["params"]["bias"]
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("impl", ["native", "im2col", "hybrid"])
def test_bf16_conv_gradients_float32_to_second_order(impl):
    """First and second derivatives (TM's meta-gradient) through the bf16 mode: float32,
    finite, and within bfloat16 rounding of the float32 mode's."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 4)).astype(np.float32))
    k = jnp.asarray(0.3 * rng.normal(size=(3, 3, 4, 4)).astype(np.float32))

    def meta(x, k, cd):
        inner = jax.grad(lambda k: jnp.sum(jnp.tanh(convolve(x, k, impl=impl,
                                                             compute_dtype=cd))))(k)
        return jnp.sum(convolve(x, k - 0.1 * inner, impl=impl, compute_dtype=cd) ** 2)

    f = jax.jit(jax.grad(meta, argnums=(0, 1)), static_argnums=2)
    g16, g32 = f(x, k, "bfloat16"), f(x, k, None)
    for a, b in zip(g16, g32):
        assert a.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(a)))
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=3e-2 * scale)
        assert float(jnp.abs(a - b).max()) > 0


@pytest.mark.parametrize("name,kw,shape", TINY)
def test_bf16_mode_reaches_every_registry_network(name, kw, shape):
    """Same float32 variables, mode on vs off: float32 logits within bfloat16 rounding,
    different from the float32 ones (the flag reaches the layers); the variables (and, for
    the ConvNet, the parameter gradients) are float32."""
    x = jax.random.normal(jax.random.key(1), shape)
    m32 = get_model(name, 5, **kw)
    m16 = get_model(name, 5, compute_dtype="bfloat16", **kw)
    variables = _fake_init(m32, x)
    assert jax.tree.structure(jax.eval_shape(m16.init, jax.random.key(0), x)) == \
        jax.tree.structure(variables)

    # one compilation; the parameter gradients of one network (the layers' own gradient
    # dtypes are covered by the conv / dense tests above; a backward pass per network
    # would double this test's time)
    with_grad = name.startswith("ConvNet")

    @jax.jit
    def run(v):
        g = jax.grad(lambda p: jnp.sum(m16.apply({**v, "params": p}, x) ** 2))(
            v["params"]) if with_grad else {}
        return m32.apply(v, x), m16.apply(v, x), g

    y32, y16, g = run(variables)
    assert y16.dtype == jnp.float32
    scale = float(jnp.abs(y32).max())
    np.testing.assert_allclose(np.asarray(y16), np.asarray(y32), atol=5e-2 * scale)
    assert float(jnp.abs(y16 - y32).max()) > 0, name
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(g))
    assert bool(jax.tree.leaves(g)) == with_grad


def test_compute_dtype_names():
    assert resolve_compute_dtype(None) is None
    assert resolve_compute_dtype("float32") is None
    assert resolve_compute_dtype("bfloat16") == jnp.bfloat16
    assert resolve_compute_dtype(jnp.bfloat16) == jnp.bfloat16
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        convolve(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)), compute_dtype="float16")


def test_compute_dtype_is_not_part_of_an_experts_identity():
    """Experts trained in float32 serve a bfloat16 student and vice versa (like conv_impl:
    how a layer computes, not which function it is)."""
    from jaxdd.experts import ExpertMismatchError, check_metadata

    stored = {"model": {"name": "ConvNetD3", "overrides": {}}}
    check_metadata(stored, {"model": {"name": "ConvNetD3",
                                      "overrides": {"compute_dtype": "bfloat16"}}})
    with pytest.raises(ExpertMismatchError):
        check_metadata(stored, {"model": {"name": "ConvNetD3", "overrides": {"width": 64}}})
