"""Parity: jaxdd's DM and DC losses against the authors' code (fixture made by
tests/parity/make_dm_dc.py from sdh0818/FreD DM/ and DC/; the same lines are in
aailab-kaist/DDiF DM/ and DC/).

Same ConvNet weights (width 4, depth 2, instance norm, 8x8x3, 3 classes), same real batch per
class and synthetic images, DSA off. Tolerances: float32 forward values rtol 1e-5; the
per-class gradient tensors and the losses rtol 1e-4 / 2e-4 (sums of products through two
conv layers, accumulation order differs); d loss / d images (DC: a second-order gradient)
rtol 1e-3 with atol at 1e-4 of the largest entry.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from parity.common import load_fixture

from jaxdd.models import get_model
from jaxdd.objective import dc, dm

FX = load_fixture("dm_dc")
NC = 3
N_REAL = FX["real"].shape[1]
SIDE = FX["real"].shape[-1]


def nhwc(x):
    return jnp.asarray(np.moveaxis(np.asarray(x), -3, -1))


def to_flax(sd, prefix, side=SIDE, depth=2):
    """The authors' ConvNet state_dict -> jaxdd ConvNet params (features.{4d}, classifier)."""
    p = {}
    for d in range(depth):
        conv, norm = f"{prefix}features.{4 * d}", f"{prefix}features.{4 * d + 1}"
        p[f"conv_{d}"] = {"kernel": jnp.asarray(sd[conv + ".weight"].transpose(2, 3, 1, 0)),
                          "bias": jnp.asarray(sd[conv + ".bias"])}
        p[f"norm_{d}"] = {"scale": jnp.asarray(sd[norm + ".weight"]),
                          "bias": jnp.asarray(sd[norm + ".bias"])}
    w = sd[prefix + "classifier.weight"]  # (out, C*h*w), torch flattens (C, h, w)
    s = side // 2 ** depth
    c = w.shape[1] // (s * s)
    p["classifier"] = {"kernel": jnp.asarray(w.reshape(-1, c, s, s).transpose(2, 3, 1, 0)
                                             .reshape(s * s * c, -1)),
                       "bias": jnp.asarray(sd[prefix + "classifier.bias"])}
    return p


def to_torch(name, g):
    """A jaxdd gradient leaf -> the layout of the authors' parameter `name`."""
    g = np.asarray(g)
    if name.startswith("classifier") and name.endswith("weight"):
        s = SIDE // 4
        c = g.shape[0] // (s * s)
        return g.reshape(s, s, c, -1).transpose(3, 2, 0, 1).reshape(g.shape[1], -1)
    if g.ndim == 4:
        return g.transpose(3, 2, 0, 1)
    return g


def torch_name_to_path(name):
    """'features.4.weight' -> ('conv_1', 'kernel'), 'features.1.bias' -> ('norm_0', 'bias')."""
    parts = name.split(".")
    leaf = parts[-1]
    if parts[0] == "classifier":
        return "classifier", "kernel" if leaf == "weight" else "bias"
    i = int(parts[1])
    d, r = divmod(i, 4)
    if r == 0:
        return f"conv_{d}", "kernel" if leaf == "weight" else "bias"
    return f"norm_{d}", "scale" if leaf == "weight" else "bias"


@pytest.fixture(scope="module")
def model():
    m = get_model("ConvNetD2W4", NC, conv_impl="native")  # compiles fastest on CPU
    return m, (lambda p, x: m.apply({"params": p}, x, train=True))


def _sd(prefix):
    return {k: v for k, v in FX.items() if k.startswith(prefix)}


# ----------------------------------------------------------------------------- DM

def test_dm_embed_loss_and_image_gradient(model):
    m, _ = model
    params = to_flax(_sd("dm_net/"), "dm_net/")
    embed = dm.make_embed_fn(m)
    real, syn = nhwc(FX["real"]), nhwc(FX["syn"])
    loss = dm.make_loss(embed, NC, augment=None)
    ctx = dm.DMContext(params, real, jnp.ones((NC, N_REAL), jnp.float32))
    labels = jnp.asarray(FX["syn_labels"])

    @jax.jit  # one compile: real embeddings, the loss and d loss / d images
    def run(params, real, syn):
        e = embed(params, real.reshape((-1,) + real.shape[2:]))
        return e, jax.value_and_grad(loss, argnums=1)(jax.random.PRNGKey(0), syn, labels, ctx)

    e, (val, grad) = run(params, real, syn)
    # the embedding: features after the last pool, flattened (jaxdd: (h, w, C) order)
    e = np.asarray(e)
    s = SIDE // 4
    e_torch_order = e.reshape(-1, s, s, e.shape[-1] // (s * s)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(e_torch_order.reshape(NC, N_REAL, -1), FX["dm_emb_real"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(val, FX["dm_loss"], rtol=2e-5)
    g_ref = np.moveaxis(FX["dm_grad_syn"], 1, -1)
    np.testing.assert_allclose(grad, g_ref, rtol=1e-3, atol=1e-4 * np.abs(g_ref).max())


# ----------------------------------------------------------------------------- DC

@pytest.mark.parametrize("key", ["4x3x3x3", "4x2x2", "3x16", "4"])
def test_distance_wb_every_rank(key):
    a, b = FX[f"dwb/{key}/a"], FX[f"dwb/{key}/b"]
    # jaxdd layout: output units LAST (flax conv (kh, kw, in, out), dense (in, out), layer
    # norm (h, w, C)); the authors' layout: output units FIRST
    to_jax = {4: lambda t: t.transpose(2, 3, 1, 0), 3: lambda t: t.transpose(1, 2, 0),
              2: lambda t: t.T, 1: lambda t: t}[a.ndim]
    d = dc.unit_distance(jnp.asarray(to_jax(a)), jnp.asarray(to_jax(b)))
    np.testing.assert_allclose(d, FX[f"dwb/{key}/d"], rtol=1e-5, atol=1e-6)
    if a.ndim == 1:
        assert float(d) == 0.0  # 1-D tensors (biases, norm affine) do not count


def test_dc_class_gradients_loss_and_image_gradient(model):
    _, apply_fn = model
    params = to_flax(_sd("dc_net/"), "dc_net/")
    names = [str(n) for n in FX["dc_param_names"]]
    real, syn = nhwc(FX["real"]), nhwc(FX["syn"])
    labels = FX["syn_labels"]
    n_syn_c = len(labels) // NC

    loss = dc.make_loss(apply_fn, NC, augment=None)
    ctx = dc.DCContext(params, real, jnp.ones((NC, N_REAL), jnp.float32))
    lab = jnp.asarray(labels)

    @jax.jit  # one compile: per-class CE gradients, the loss and d loss / d images
    def run(params, real, syn):
        gce = jax.grad(dc.masked_ce, argnums=1)
        g_r = jax.vmap(lambda x, c: gce(apply_fn, params, x, jnp.full((N_REAL,), c),
                                        jnp.ones((N_REAL,))))(real, jnp.arange(NC))
        g_s = jax.vmap(lambda x, y: gce(apply_fn, params, x, y, jnp.ones((n_syn_c,))))(
            syn.reshape((NC, n_syn_c) + syn.shape[1:]), lab.reshape(NC, n_syn_c))
        val, grad = jax.value_and_grad(lambda x: loss(jax.random.PRNGKey(0), x, lab, ctx))(syn)
        return g_r, g_s, val, grad

    grads_r, grads_s, val, grad = run(params, real, syn)
    for c in range(NC):  # per-class CE gradients (mean CE, PyTorch's CrossEntropyLoss)
        g_r, g_s = (jax.tree.map(lambda a: a[c], t) for t in (grads_r, grads_s))
        for g, tag in ((g_r, "real"), (g_s, "syn")):
            # the conv biases feed instance norm: their true gradient is 0 (rounding noise
            # ~1e-8 on both sides), so atol is relative to the class's largest gradient
            scale = max(np.abs(FX[f"dc_gw_{tag}/{c}/{n}"]).max() for n in names)
            for n in names:
                mod, leaf = torch_name_to_path(n)
                np.testing.assert_allclose(to_torch(n, g[mod][leaf]), FX[f"dc_gw_{tag}/{c}/{n}"],
                                           rtol=1e-4, atol=1e-5 * scale,
                                           err_msg=f"{tag} gradient of {n}, class {c}")
    np.testing.assert_allclose(val, FX["dc_loss"], rtol=2e-4)
    g_ref = np.moveaxis(FX["dc_grad_syn"], 1, -1)
    np.testing.assert_allclose(grad, g_ref, rtol=1e-3, atol=1e-4 * np.abs(g_ref).max())


def test_dc_inner_loop_network_update(model):
    """DC's `epoch('train', ...)` x inner_loop with SGD(lr_net), no momentum, aug off."""
    _, apply_fn = model
    params = to_flax(_sd("dc_net/"), "dc_net/")
    inner, lr = int(FX["dc_inner_loop"]), float(FX["dc_lr_net"])
    tx = optax.sgd(lr)  # the authors: torch.optim.SGD(net.parameters(), lr=args.lr_net)
    train = dc.make_net_trainer(apply_fn, tx, inner_loop=inner, batch_train=256, augment=None)
    state = jax.jit(train)(jax.random.PRNGKey(0), {"params": params, "opt": tx.init(params)},
                           nhwc(FX["syn"]), jnp.asarray(FX["syn_labels"]))
    ref = to_flax(_sd("dc_trained/"), "dc_trained/")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 state["params"], ref)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), ref, params)
    assert max(jax.tree.leaves(moved)) > 1e-3  # the fixture's update is not a no-op


def test_dc_loops_are_the_authors_get_loops():
    """FreD / DDiF DC/utils.py get_loops (IPC 2 / 11 / 51: FreD's budget settings)."""
    expect = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15),
              50: (50, 10), 2: (1, 1), 11: (10, 50), 51: (50, 10)}
    for ipc, loops in expect.items():
        assert dc.get_loops(ipc) == loops
    with pytest.raises(ValueError, match="outer/inner"):
        dc.get_loops(3)
