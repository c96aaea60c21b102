"""Parity with the authors' DDiF code (aailab-kaist/DDiF @ b628e7b, SynSet/DDiF.py).

Fixture: tests/parity/fixtures/ddif.npz, made by tests/parity/make_ddif.py (see its
docstring). Checked here, float32 throughout:
  * budget per field and fields per class (their DDiF.__init__), class-major labels;
  * the coordinate grid (their to_coordinates_and_features) at 8x8 and 16x16;
  * decode (their DDiF.get: SIREN, linear output, no clamp, HWC reshape) for RGB and
    grayscale fields, at the training grid and at 16x16 (cross-resolution);
  * the init bounds (empirical maxima over 400 torch inits);
  * the warm-up (their per-field Adam MSE fit) from the same initial fields;
  * five distillation steps with a subset of fields decoded per step: their torch.optim.Adam
    over the ModuleList (per-field state; fields with grad None skipped) against
    jaxdd.distill's per-instance masked Adam: parameters after every step, step counts,
    moments. Plain optax.adam on the stack is shown to differ (the bug fixed here).
Deliberate difference, asserted: on a NON-square grid their code divides both axes by
(H - 1) (the W axis leaves [-1, 1]); jaxdd uses linspace(-1, 1, n) per axis.

Tolerances: decode rtol 1e-5 / atol 2e-6 for each float32 side (theirs and ours) against
the float64 forward of the same weights (one SIREN forward; sin(30 z) amplifies the float32
rounding of z by 30, so the two float32 results may differ by twice that); warm-up and the Adam steps rtol 1e-4 / atol 1e-6 (10 / 5
chained Adam steps whose first steps are ~lr * sign(g), so float32 rounding of g enters
only through m / sqrt(v)).
"""
import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from parity.common import load_fixture

from jaxdd import outer_step
from jaxdd.param import ddif, siren


@pytest.fixture(scope="module")
def fx():
    return load_fixture("ddif")


def to_params(fx, prefix, num_layers):
    """Torch-layout stacked weights -> jaxdd's stacked pytree (w: (K, in, out))."""
    return {"layers": [{"w": jnp.asarray(np.transpose(fx[f"{prefix}_w{l}"], (0, 2, 1))),
                        "b": jnp.asarray(fx[f"{prefix}_b{l}"])}
                       for l in range(num_layers + 1)]}


def to_hwc(x):
    return np.transpose(np.asarray(x), (0, 2, 3, 1))


def make_aux(width, num_layers, w0, w0_initial, shape, num_classes, fpc=0, ipc=1):
    cfg = ddif.default_config()
    cfg.update(dict(width=width, num_layers=num_layers, w0=w0, w0_initial=w0_initial,
                    warmup_steps=0, progress=False, fields_per_class=fpc, ipc=ipc))
    real = [np.zeros((2,) + shape, np.float32) for _ in range(num_classes)]
    _, aux = ddif.init(jax.random.key(0), real, cfg)
    return aux


@pytest.fixture(scope="module")
def rgb_aux(fx):
    lr_nf, _, _, w0, w0i = fx["rgb_hparams"]
    return make_aux(6, 2, float(w0), float(w0i), (8, 8, 3), 2)


def siren64(params, coords, w0, w0_initial):
    """The SIREN forward in float64 numpy (same convention): the exact value both float32
    implementations are compared with. (K, P, C)."""
    h = np.asarray(coords, np.float64)
    layers = params["layers"]
    for l, layer in enumerate(layers):
        w, b = np.asarray(layer["w"], np.float64), np.asarray(layer["b"], np.float64)
        z = (np.einsum("pi,kio->kpo", h, w) if l == 0 else np.einsum("kpi,kio->kpo", h, w))
        z = z + b[:, None, :]
        if l == len(layers) - 1:
            return z
        h = np.sin((w0_initial if l == 0 else w0) * z)


def assert_both_near_exact(ours, theirs, exact):
    """ours (jaxdd, float32) and theirs (the authors' torch float32 output) each within
    rtol 1e-5 / atol 2e-6 of the float64 forward of the same weights; comparing the two
    float32 results directly would need twice that (each carries its own rounding of
    sin(30 z), e.g. 1.4e-6 and 1.5e-6 in opposite directions on the 4x8 grid)."""
    exact = np.asarray(exact).reshape(np.shape(theirs))
    np.testing.assert_allclose(theirs, exact, rtol=1e-5, atol=2e-6, err_msg="authors' output")
    np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=2e-6, err_msg="jaxdd's output")


def test_budget_and_labels(fx, rgb_aux):
    b, fpc = (int(v) for v in fx["rgb_budget"])
    assert rgb_aux["params_per_field"] == b == 81
    assert rgb_aux["fields_per_class"] == fpc == 2
    assert ddif.fields_per_class(1, (8, 8, 3), b) == fpc
    np.testing.assert_array_equal(rgb_aux["labels"], fx["rgb_labels"])


def test_coordinate_grid(fx):
    np.testing.assert_allclose(siren.make_grid((8, 8)), fx["rgb_coord"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(siren.make_grid((16, 16)), fx["rgb_coord_16"], rtol=0,
                               atol=1e-7)


def test_non_square_grid_differs_on_purpose(fx):
    theirs, ours = fx["rgb_coord_ns"], siren.make_grid((4, 8))
    np.testing.assert_allclose(ours[:, 0], theirs[:, 0], atol=1e-7)   # rows: same
    assert theirs[:, 1].max() == pytest.approx(2 * 7 / 3 - 1, abs=1e-6)  # W axis / (H - 1)
    assert ours[:, 1].max() == pytest.approx(1.0)                        # ours stays in [-1, 1]
    np.testing.assert_allclose(theirs[:, 1], (np.arange(32) % 8) / 3 * 2 - 1, atol=1e-6)


def test_decode_rgb(fx, rgb_aux):
    p = to_params(fx, "rgb_step4", 2)
    got = np.asarray(jax.jit(lambda q: ddif.decode(q, rgb_aux))(p))
    assert_both_near_exact(got, to_hwc(fx["rgb_images"]), siren64(p, fx["rgb_coord"], 10., 30.))
    got16 = np.asarray(jax.jit(lambda q: ddif.decode(q, rgb_aux, resolution=16))(p))
    assert_both_near_exact(got16, to_hwc(fx["rgb_images_16"]),
                           siren64(p, fx["rgb_coord_16"], 10., 30.))
    # subset decode = rows of the full decode (their get(indices))
    sub = np.asarray(jax.jit(lambda q, i: ddif.decode(q, rgb_aux, indices=i))(
        p, jnp.array([3, 1])))
    np.testing.assert_allclose(sub, to_hwc(fx["rgb_images"])[[3, 1]], rtol=1e-5, atol=2e-6)


def test_decode_non_square_with_their_coordinates(fx, rgb_aux):
    """Same fields on their 4x8 coordinates agree; our own 4x8 grid differs (on purpose)."""
    p = to_params(fx, "rgb_step4", 2)
    coords = jnp.asarray(fx["rgb_coord_ns"])
    fn = lambda q: siren.siren_apply(q, coords, 10.0, 30.0)
    theirs = np.asarray(jax.jit(jax.vmap(fn))(p)).reshape(4, 4, 8, 3)
    assert_both_near_exact(theirs, to_hwc(fx["rgb_images_ns"]),
                           siren64(p, fx["rgb_coord_ns"], 10.0, 30.0))
    ours = np.asarray(jax.jit(lambda q: ddif.decode(q, rgb_aux, resolution=(4, 8)))(p))
    assert np.abs(ours - theirs).max() > 1e-2


def test_decode_gray(fx):
    w0, w0i = (float(v) for v in fx["gray_hparams"])
    K = fx["gray_w0"].shape[0]
    aux = make_aux(5, 3, w0, w0i, (8, 8, 1), 1, fpc=K, ipc=4)
    assert aux["params_per_field"] == sum(fx[f"gray_{t}{l}"][0].size
                                          for l in range(4) for t in "wb")
    p = to_params(fx, "gray", 3)
    got = np.asarray(jax.jit(lambda q: ddif.decode(q, aux))(p))
    assert got.shape == (K, 8, 8, 1)
    assert_both_near_exact(got, to_hwc(fx["gray_images"]),
                           siren64(p, siren.make_grid((8, 8)), w0, w0i))


def test_init_bounds(fx):
    dim_in, width, L, out, w0, w0i = fx["bound_hparams"]
    dim_in, width, L, out = int(dim_in), int(width), int(L), int(out)
    keys = jax.random.split(jax.random.key(0), 400)
    p = jax.jit(jax.vmap(lambda k: siren.init_siren(k, dim_in, width, L, out, w0, w0i)))(keys)
    for l, layer in enumerate(p["layers"]):
        fan_in = layer["w"].shape[1]
        bound = 1.0 / dim_in if l == 0 else np.sqrt(6.0 / fan_in) / w0   # SirenLayer, c = 6
        for ours, theirs in ((layer["w"], fx["bound_w"][l]), (layer["b"], fx["bound_b"][l])):
            m = float(np.abs(np.asarray(ours)).max())
            assert m <= bound * (1 + 1e-6) and theirs <= bound * (1 + 1e-6)
            assert m > 0.99 * bound and theirs > 0.99 * bound


def test_warmup_matches_authors(fx, rgb_aux):
    lr_nf, steps, lr_init, _, _ = fx["rgb_hparams"]
    pre = to_params(fx, "rgb_pre", 2)
    targets = to_hwc(fx["rgb_warm_targets"])
    fitted, losses = ddif.warmup(None, pre, rgb_aux, targets, int(steps), float(lr_init),
                                 progress=False)
    want = to_params(fx, "rgb_warm", 2)
    for a, b in zip(jax.tree.leaves(fitted), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert np.abs(np.asarray(pre["layers"][0]["w"]) - np.asarray(want["layers"][0]["w"])).max() > 1e-3


def _run_steps(fx, aux, tx, masked):
    """The 5 steps of the fixture; one jitted step (the subset enters as a mask: the mean
    squared error over the decoded fields, as their mse_loss on get(indices))."""
    params = to_params(fx, "rgb_warm", 2)
    targets = jnp.asarray(to_hwc(fx["rgb_targets"]))
    state = tx.init(params)

    @jax.jit
    def step(params, state, sel):
        def loss_fn(p):
            se = (ddif.decode(p, aux) - targets) ** 2
            return jnp.sum(se * sel[:, None, None, None]) / (jnp.sum(sel) * se[0].size)

        loss, g = jax.value_and_grad(loss_fn)(params)
        mask = sel > 0 if masked else None
        params, state = outer_step.apply_syn_update(tx, g, state, params, mask)
        return loss, params, state

    out = []
    for sel in fx["rgb_subsets"]:
        loss, params, state = step(params, state, jnp.asarray(sel, jnp.float32))
        out.append((float(loss), params))
    return out, state


def test_masked_adam_matches_torch_adam(fx, rgb_aux):
    lr_nf = float(fx["rgb_hparams"][0])
    tx = outer_step.make_syn_optimizer(
        ml_collections.ConfigDict(dict(name="adam", lr=lr_nf)), ddif)
    assert isinstance(tx, outer_step.PerInstance)   # DDiF: per-field state by default
    out, state = _run_steps(fx, rgb_aux, tx, masked=True)
    for s, (loss, params) in enumerate(out):
        assert loss == pytest.approx(float(fx["rgb_losses"][s]), rel=1e-5)
        want = to_params(fx, f"rgb_step{s}", 2)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6,
                                       err_msg=f"after step {s}")
    adam = state[0]
    np.testing.assert_array_equal(np.asarray(adam.count), fx["rgb_adam_step"].astype(int))

    def flat(tree):   # per field, layers in order, (w, b), torch layout (out, in)
        return np.concatenate([np.concatenate([np.asarray(l["w"]).transpose(0, 2, 1)
                                               .reshape(4, -1), np.asarray(l["b"])], axis=1)
                               for l in tree["layers"]], axis=1)

    # moments: float32 gradients through sin(30 z) carry ~1e-5 relative rounding of the
    # gradient SCALE, so small entries get an absolute bound of 1e-5 x the largest entry
    for ours, theirs in ((flat(adam.mu), fx["rgb_adam_mu"]), (flat(adam.nu), fx["rgb_adam_nu"])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())


def test_plain_optax_adam_differs(fx, rgb_aux):
    """optax.adam on the whole stack moves undecoded fields (stale moments): not the
    authors' behaviour. Step 1 decodes fields 1 and 3 only; torch keeps 0 and 2 fixed."""
    lr_nf = float(fx["rgb_hparams"][0])
    out, _ = _run_steps(fx, rgb_aux, optax.adam(lr_nf), masked=False)
    moved = np.asarray(out[1][1]["layers"][0]["w"])[[0, 2]]
    torch_kept = np.transpose(fx["rgb_step1_w0"], (0, 2, 1))[[0, 2]]
    np.testing.assert_array_equal(torch_kept, np.transpose(fx["rgb_step0_w0"], (0, 2, 1))[[0, 2]])
    assert np.abs(moved - torch_kept).max() > 0.5 * lr_nf
