"""Tests for jaxdd.augment (DSA). Tiny shapes; numpy references written from the PyTorch
definitions (DSA's rand_* functions, F.affine_grid / F.grid_sample with align_corners=True)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd import augment as A
from jaxdd.augment import DSAParams, dsa

FULL = "color_crop_cutout_flip_scale_rotate"
GEOM = "crop_cutout_flip_scale_rotate"
ALL_GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


def _x(seed=0, shape=(4, 8, 8, 3)):
    return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


# ------------------------------------------------------------------ numpy references


def translate_np(x, th, tw):
    """out[n,i,j] = x[n, i+th, j+tw] with zero fill, via np.roll + validity mask."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    _, h, w, _ = x.shape
    for n in range(x.shape[0]):
        r = np.roll(x[n], shift=(-int(th[n]), -int(tw[n])), axis=(0, 1))
        i = np.arange(h)[:, None] + int(th[n])
        j = np.arange(w)[None, :] + int(tw[n])
        valid = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        out[n] = r * valid[..., None]
    return out


def grid_sample_np(x, theta):
    """Loop reference of affine_grid + grid_sample (bilinear, zeros, align_corners=True)."""
    x = np.asarray(x, np.float64)
    theta = np.asarray(theta, np.float64)
    n, h, w, c = x.shape
    out = np.zeros_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                xn = -1 + 2 * j / (w - 1)
                yn = -1 + 2 * i / (h - 1)
                gx, gy = theta[b] @ np.array([xn, yn, 1.0])
                ix = (gx + 1) / 2 * (w - 1)
                iy = (gy + 1) / 2 * (h - 1)
                x0, y0 = math.floor(ix), math.floor(iy)
                acc = np.zeros(c)
                for yy, wy in ((y0, 1 - (iy - y0)), (y0 + 1, iy - y0)):
                    for xx, wx in ((x0, 1 - (ix - x0)), (x0 + 1, ix - x0)):
                        if 0 <= yy < h and 0 <= xx < w:
                            acc += wy * wx * x[b, yy, xx]
                out[b, i, j] = acc
    return out


def cutout_mask_np(offsets, h, w, ratio=0.5):
    """DSA rand_cutout mask, literally: clamp the square's indices, scatter zeros."""
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    mask = np.ones((len(offsets), h, w))
    for n, (oh, ow) in enumerate(np.asarray(offsets)):
        gx = np.clip(np.arange(ch) + oh - ch // 2, 0, h - 1)
        gy = np.clip(np.arange(cw) + ow - cw // 2, 0, w - 1)
        mask[n][np.ix_(gx, gy)] = 0
    return mask


# ------------------------------------------------------------------ crop / cutout / flip


def test_translate_matches_roll():
    x = _x(1, (3, 8, 7, 2))
    th = jnp.array([2, 0, -3])
    tw = jnp.array([-1, 0, 3])
    np.testing.assert_array_equal(np.asarray(A.translate(x, th, tw)), translate_np(x, th, tw))
    # explicit content check for sample 0: out[i, j] = x[i+2, j-1]
    out = np.asarray(A.translate(x, th, tw))[0]
    np.testing.assert_array_equal(out[0, 1], np.asarray(x)[0, 2, 0])
    assert np.all(out[-2:] == 0) and np.all(out[:, 0] == 0)


def _grid_u(m):
    """Deterministic stratified 'uniforms' (k + 0.5) / m, plus the extreme 1 - 2**-24."""
    return np.concatenate([(np.arange(m) + 0.5) / m, [1 - 2.0 ** -24]]).astype(np.float32)


def test_crop_is_integer_translation_with_zero_fill():
    x = _x(2, (6, 8, 8, 3))
    key = jax.random.PRNGKey(3)
    s = np.asarray(A.crop_shifts(key, 6, 8, 8))
    np.testing.assert_array_equal(np.asarray(A.crop(key, x)), translate_np(x, s[:, 0], s[:, 1]))
    assert len({tuple(r) for r in s}) > 1  # per-sample shifts
    # range: s = int(side * 0.125 + 0.5) -> 1 for side 8, 4 for 32 and 28 (int(4.0));
    # stratified u hits every value of {-s..s} equally often (uniform), u ~ 1 gives +s
    for side, smax in ((8, 1), (32, 4), (28, 4), (12, 2)):
        m = (2 * smax + 1) * 50
        u = jnp.asarray(np.stack([_grid_u(m), _grid_u(m)[::-1]], -1))
        sh = np.asarray(A.crop_shifts_from_uniform(u, side, side))
        vals, counts = np.unique(sh[:-1, 0], return_counts=True)
        np.testing.assert_array_equal(vals, np.arange(-smax, smax + 1))
        assert np.all(counts == 50)
        assert sh[-1, 0] == smax and sh[0, 1] == smax


def test_cutout_matches_dsa_mask():
    key = jax.random.PRNGKey(6)
    for shape in ((16, 8, 6, 2), (16, 5, 5, 1)):  # even (4, 3) and odd (3, 3) cutout sides
        x = _x(5, shape)
        h, w = shape[1:3]
        off = np.asarray(A.cutout_offsets(key, 16, h, w))
        ref = np.asarray(x) * cutout_mask_np(off, h, w)[..., None]
        np.testing.assert_array_equal(np.asarray(A.cutout(key, x)), ref)
    assert A.cutout_size(8, 6) == (4, 3) and A.cutout_size(5, 5) == (3, 3)
    # offsets: even c -> U{0..H}, odd c -> U{0..H-1} (DSA: randint(0, H + (1 - c % 2)))
    u = jnp.asarray(np.stack([_grid_u(9 * 10), _grid_u(9 * 10)], -1))
    off = np.asarray(A.cutout_offsets_from_uniform(u, 8, 6))
    vals, counts = np.unique(off[:-1, 0], return_counts=True)
    np.testing.assert_array_equal(vals, np.arange(9)) and np.all(counts == 10)
    assert set(np.unique(off[:, 1])) == set(range(6))  # c_w = 3 odd -> 0..5
    # fully inside -> exactly c*c zeros
    m = np.asarray(A.cutout_mask(jnp.array([[4, 4]]), 8, 8, (4, 4)))
    assert (m == 0).sum() == 16 and np.all(m[0, 2:6, 2:6] == 0)
    # explicit edge case against DSA clamping: centre 0 -> rows/cols 0..1 only
    m = np.asarray(A.cutout_mask(jnp.array([[0, 8]]), 8, 8, (4, 4)))
    np.testing.assert_array_equal(m, cutout_mask_np([[0, 8]], 8, 8))
    assert (m == 0).sum() == 4


def test_flip_forced_and_random():
    x = _x(9, (8, 5, 6, 3))
    key = jax.random.PRNGKey(10)
    mirror = np.asarray(x)[:, :, ::-1, :]
    np.testing.assert_array_equal(np.asarray(A.flip(key, x, DSAParams(prob_flip=1.0))), mirror)
    np.testing.assert_array_equal(np.asarray(A.flip(key, x, DSAParams(prob_flip=0.0))), x)
    out = np.asarray(A.flip(key, x))
    m = np.asarray(A.flip_mask(key, 8))
    assert 0 < m.sum() < 8  # this key flips some but not all
    for n in range(8):
        np.testing.assert_array_equal(out[n], mirror[n] if m[n] else np.asarray(x)[n])
    # apply_flip with stratified u: exactly a fraction prob_flip of the samples is mirrored
    u = jnp.asarray(_grid_u(100))
    ramp = jnp.broadcast_to(jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1), (101, 1, 2, 1))
    flipped = np.asarray(A.apply_flip(ramp, u))[:, 0, 0, 0] == 1.0
    assert flipped[:-1].mean() == 0.5 and np.all(flipped[:50]) and not flipped[-1]


def test_per_sample_uniform_distribution():
    u = np.asarray(A.draw_uniforms(jax.random.PRNGKey(11), 3000))  # (3000, 11)
    assert u.shape == (3000, A.NUM_UNIFORMS)
    assert u.min() >= 0 and u.max() < 1
    np.testing.assert_allclose(u.mean(0), 0.5, atol=0.02)
    np.testing.assert_allclose(u.var(0), 1 / 12, atol=0.01)
    c = np.corrcoef(u.T)
    assert np.abs(c - np.eye(A.NUM_UNIFORMS)).max() < 0.1  # columns independent


# ------------------------------------------------------------------ affine sampler


def test_affine_identity():
    x = _x(12, (3, 6, 7, 2))
    eye = jnp.tile(jnp.array([[1.0, 0, 0], [0, 1.0, 0]]), (3, 1, 1))
    np.testing.assert_allclose(A.affine_sample(x, eye), x, atol=1e-5)
    key = jax.random.PRNGKey(13)
    np.testing.assert_allclose(A.scale(key, x, DSAParams(ratio_scale=1.0)), x, atol=1e-5)
    np.testing.assert_allclose(A.rotate(key, x, DSAParams(ratio_rotate=0.0)), x, atol=1e-5)
    # and with non-trivial params they are not identity
    assert np.abs(np.asarray(A.rotate(key, x)) - np.asarray(x)).max() > 1e-2
    assert np.abs(np.asarray(A.scale(key, x)) - np.asarray(x)).max() > 1e-2


@pytest.mark.parametrize("side", [5, 6])
def test_rotate_90_matches_rot90(side):
    x = _x(14, (2, side, side, 3))
    th = A.rotation_matrix(jnp.full((2,), math.pi / 2))
    np.testing.assert_allclose(A.affine_sample(x, th), np.rot90(np.asarray(x), 1, axes=(1, 2)),
                               atol=1e-5)
    th = A.rotation_matrix(jnp.full((2,), -math.pi / 2))
    np.testing.assert_allclose(A.affine_sample(x, th), np.rot90(np.asarray(x), -1, axes=(1, 2)),
                               atol=1e-5)


def test_grid_sample_matches_loop_reference():
    x = _x(15, (3, 5, 7, 2))
    th = jnp.array([[[1.1, 0.2, 0.1], [-0.3, 0.9, -0.2]],
                    [[0.8, 0.0, 0.0], [0.0, 1.2, 0.0]],     # a DSA scale
                    [[0.9, -0.4, 0.3], [0.4, 0.9, 0.05]]])
    np.testing.assert_allclose(A.affine_sample(x, th), grid_sample_np(x, th), atol=1e-5)
    # exact one-pixel shift along W: out[:, :, j] = x[:, :, j + 1], last column zero
    xs = _x(16, (1, 4, 6, 1))
    th = jnp.array([[[1.0, 0, 2.0 / 5], [0, 1.0, 0]]])
    np.testing.assert_allclose(A.affine_sample(xs, th),
                               translate_np(xs, [0], [1]), atol=1e-5)


def test_grid_sample_align_corners_false():
    """PyTorch's align_corners=False (FreD/DDiF DM/DC code): identity is exact, a one-pixel
    shift along W is a translation of 2/W (not 2/(W-1)), and a pure scale equals the
    align_corners=True result (the conventions differ only by where +-1 sits)."""
    xs = _x(16, (2, 4, 6, 1))
    eye = jnp.tile(jnp.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))
    np.testing.assert_allclose(A.affine_sample(xs, eye, align_corners=False), xs, atol=1e-6)
    th = jnp.tile(jnp.array([[1.0, 0, 2.0 / 6], [0, 1.0, 0]]), (2, 1, 1))
    np.testing.assert_allclose(A.affine_sample(xs, th, align_corners=False),
                               translate_np(xs, [0, 0], [1, 1]), atol=1e-6)
    u = jnp.array([[0.1, 0.9], [0.7, 0.3]])
    np.testing.assert_allclose(A.apply_scale(xs, u, DSAParams(align_corners=False)),
                               A.apply_scale(xs, u), atol=1e-5)


def test_affine_param_ranges():
    u = jnp.asarray(_grid_u(200))
    th = np.asarray(A.scale_theta_from_uniform(jnp.stack([u, u[::-1]], -1)))
    s = th[:, [0, 1], [0, 1]]
    assert s.min() >= 1 / 1.2 - 1e-6 and s.max() <= 1.2 + 1e-6
    assert s.min() < 1 / 1.2 + 0.01 and s.max() > 1.2 - 0.01
    np.testing.assert_allclose(np.diff(s[:-1, 0]), (1.2 - 1 / 1.2) / 200, rtol=1e-3)  # uniform
    assert np.all(th[:, [0, 1], [1, 0]] == 0) and np.all(th[:, :, 2] == 0)
    r = np.asarray(A.rotate_theta_from_uniform(u))
    ang = np.degrees(np.arctan2(r[:, 1, 0], r[:, 0, 0]))
    assert ang.min() >= -15 - 1e-4 and ang.max() <= 15 + 1e-4
    assert ang.min() < -14.9 and ang.max() > 14.9
    np.testing.assert_allclose(np.diff(ang[:-1]), 30 / 200, rtol=1e-3)
    np.testing.assert_allclose(r[:, 0, 1], -r[:, 1, 0], atol=1e-7)
    # keyed samplers use per_sample_uniform(key, n, (2,)) / (n,)
    key = jax.random.PRNGKey(18)
    np.testing.assert_allclose(A.scale_theta(key, 4), A.scale_theta_from_uniform(
        A.per_sample_uniform(key, 4, (2,))))
    np.testing.assert_allclose(A.rotate_theta(key, 4), A.rotate_theta_from_uniform(
        A.per_sample_uniform(key, 4)))


# ------------------------------------------------------------------ colour


def test_color_formulas_against_numpy():
    x = _x(19, (5, 4, 3, 3))
    xn = np.asarray(x, np.float64)
    key = jax.random.PRNGKey(20)
    u = np.asarray(A.per_sample_uniform(key, 5), np.float64)[:, None, None, None]
    assert len(np.unique(u)) == 5  # per sample
    np.testing.assert_allclose(A.brightness(key, x), xn + (u - 0.5) * 1.0, atol=1e-5)
    m = xn.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(A.saturation(key, x), m + (xn - m) * (2.0 * u), atol=1e-5)
    m = xn.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(A.contrast(key, x), m + (xn - m) * (u + 0.5), atol=1e-5)


def _color_np(x, u):
    """numpy DSA 'color' group: brightness, saturation, contrast with u[:, 0..2]."""
    x = np.asarray(x, np.float64)
    u = np.asarray(u, np.float64)[:, None, None, None, :]
    x = x + (u[..., 0] - 0.5) * 1.0
    m = x.mean(axis=3, keepdims=True)
    x = m + (x - m) * (u[..., 1] * 2.0)
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    return m + (x - m) * (u[..., 2] + 0.5)


def test_color_group_and_one_channel():
    x = _x(23)
    key = jax.random.PRNGKey(24)
    u = A.draw_uniforms(key, 4)[:, slice(*A.GROUP_COLUMNS["color"])]
    np.testing.assert_allclose(dsa(key, x, strategy="color"), _color_np(x, u), atol=1e-5)
    # C=1: saturation is the identity, every op runs
    x1 = _x(25, (4, 8, 8, 1))
    np.testing.assert_allclose(A.saturation(key, x1), x1, atol=1e-6)
    out = dsa(key, x1, "color_crop_cutout_flip_scale_rotate", "M")
    assert out.shape == x1.shape and np.abs(np.asarray(out - x1)).max() > 1e-3


# ------------------------------------------------------------------ dsa: siamese / modes
# dsa calls share the shape (4, 8, 8, 3) so the jit cache is reused across tests.


def _keys_per_group():
    """One PRNG key per op group of FULL that makes mode 'S' pick that group."""
    keys = jax.random.split(jax.random.PRNGKey(500), 64)
    idx = np.asarray(jax.vmap(lambda k: A.sample_op(k, FULL))(keys))
    return {g: keys[int(np.argmax(idx == i))] for i, g in enumerate(ALL_GROUPS)}, idx


def test_mode_S_hits_every_group_and_mode_M_composes():
    assert A.parse_strategy(FULL) == ALL_GROUPS
    _, idx = _keys_per_group()
    counts = np.bincount(idx, minlength=6)
    assert len(counts) == 6 and np.all(counts > 0)  # 64 keys hit all six groups
    # mode M = groups in order; each group reads its own columns of one uniform block
    x = _x(36)
    key = jax.random.PRNGKey(37)
    np.testing.assert_allclose(dsa(key, x, "flip_rotate", "M"),
                               dsa(key, dsa(key, x, "flip"), "rotate"), atol=1e-6)
    # a single-group strategy gives the same output in both modes
    np.testing.assert_allclose(dsa(key, x, "rotate", "M"), dsa(key, x, "rotate", "S"))


def test_siamese_same_op_and_params():
    x, y = _x(26), _x(27)
    kg, _ = _keys_per_group()
    for g, key in kg.items():
        out_x = np.asarray(dsa(key, x))
        # the op mode 'S' picked is g, for both batches, with the same parameters
        np.testing.assert_allclose(out_x, dsa(key, x, strategy=g), atol=1e-6)
        np.testing.assert_allclose(dsa(key, y), dsa(key, y, strategy=g), atol=1e-6)
        # ... and g really changed the images
        assert np.abs(out_x - np.asarray(x)).max() > 1e-3, g
        if g != "color":  # geometric ops are linear: same key on x and 2x -> 2x the result
            np.testing.assert_allclose(dsa(key, 2 * x), 2 * out_x, atol=1e-5)
        else:  # colour: the brightness offset is the same on both batches
            k = jax.random.PRNGKey(30)
            np.testing.assert_allclose(A.brightness(k, x) - x, A.brightness(k, y) - y,
                                       atol=1e-6)


def test_batch_size_prefix_and_batchmode():
    x = _x(31)
    key = jax.random.PRNGKey(32)
    # per-sample params depend on (key, i) only: a prefix batch gets identical transforms
    for k in (key, _keys_per_group()[0]["rotate"]):
        np.testing.assert_allclose(dsa(k, x)[:2], dsa(k, x[:2]), atol=1e-6)
    # batchmode: all samples share sample 0's transform, whatever the batch size
    p = DSAParams(batchmode=True)
    same = jnp.broadcast_to(x[:1], x.shape)
    out = np.asarray(dsa(key, same, FULL, "M", p))
    for n in range(1, 4):
        np.testing.assert_allclose(out[n], out[0], atol=1e-6)
    np.testing.assert_allclose(dsa(key, same[:2], FULL, "M", p)[0], out[0], atol=1e-6)
    # per-sample (default) draws differ between samples
    out_ps = np.asarray(dsa(_keys_per_group()[0]["rotate"], same))
    assert np.abs(out_ps[1] - out_ps[0]).max() > 1e-3


def test_different_keys_give_different_outputs():
    x = _x(33)
    ops = (A.brightness, A.saturation, A.contrast, A.crop, A.cutout, A.flip, A.scale,
           A.rotate)
    run = jax.jit(lambda k: [f(k, x) for f in ops])
    o1, o2 = run(jax.random.PRNGKey(34)), run(jax.random.PRNGKey(35))
    for f, a, b in zip(ops, o1, o2):
        assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3, f.__name__
    outs = [np.asarray(dsa(jax.random.PRNGKey(300 + i), x)) for i in range(8)]
    assert len({o.tobytes() for o in outs}) == 8
    assert all(np.abs(o - np.asarray(x)).max() > 1e-3 for o in outs)


def test_none_and_errors():
    x = _x(38, (2, 4, 4, 1))
    key = jax.random.PRNGKey(39)
    for s in ("none", "None", ""):
        np.testing.assert_array_equal(dsa(key, x, s), x)
    with pytest.raises(ValueError):
        dsa(key, x, "color_blur")
    with pytest.raises(ValueError):
        dsa(key, x, "flip", "X")
    with pytest.raises(ValueError):
        dsa(key, x[None])  # 5-D not supported


def test_typed_key():
    x = _x(40)
    out = dsa(jax.random.key(41), x)
    assert out.shape == x.shape and np.all(np.isfinite(np.asarray(out)))


# ------------------------------------------------------------------ gradients / jit


def test_gradient_flows_through_every_group():
    x, w = _x(42), _x(43)
    # mode S: nonzero gradient whichever group is drawn (lax.switch is differentiable)
    kg, _ = _keys_per_group()
    grad_s = jax.jit(jax.grad(lambda v, k: jnp.sum(dsa(k, v) * w)))
    for g, key in kg.items():
        assert np.abs(np.asarray(grad_s(x, key))).max() > 1e-3, g
    # mode M (all groups composed): every op is affine in x, so a finite difference with a
    # large step is exact: <f(x + v) - f(x), w> == <v, grad_x <f(x), w>> (vjp = transpose)
    key = jax.random.PRNGKey(44)
    v = _x(45)
    f = lambda z: dsa(key, z, FULL, "M")  # noqa: E731
    g = jax.grad(lambda z: jnp.sum(f(z) * w))(x)
    lhs = float(jnp.sum((f(x + v) - f(x)) * w))
    rhs = float(jnp.sum(v * g))
    assert abs(rhs) > 1e-2
    np.testing.assert_allclose(lhs, rhs, rtol=1e-3)


def test_jit_compiles_once():
    traces = []

    @jax.jit
    def step(key, x):
        traces.append(1)  # python side effect: runs only while tracing
        return dsa(key, x, FULL, "S")

    x = _x(47)
    a = step(jax.random.PRNGKey(1), x)
    b = step(jax.random.PRNGKey(2), x)
    c = step(jax.random.PRNGKey(3), x)
    assert len(traces) == 1
    assert not (np.allclose(a, b) and np.allclose(b, c))
    # the module-level jitted dsa: new keys on an already compiled shape add no entry
    dsa(jax.random.PRNGKey(5), x)
    before = dsa._cache_size()
    dsa(jax.random.PRNGKey(6), x)
    dsa(jax.random.PRNGKey(7), 2 * x)
    assert dsa._cache_size() == before


def test_random_crop_flip_is_torchvision_random_crop_with_fill():
    """Each output is a (possibly flipped) window of the image padded with `fill`
    (torchvision RandomCrop(padding=pad) on the normalized image), at an offset in [0, 2 pad]
    per axis; every offset and both flips occur."""
    pad, fill = 2, np.array([-0.5, 0.25, 1.5], np.float32)
    x = np.asarray(_x(3, (256, 5, 6, 3)))
    out = np.asarray(A.random_crop_flip(jax.random.PRNGKey(7), jnp.asarray(x), pad, fill))
    xp = np.broadcast_to(fill, (256, 5 + 2 * pad, 6 + 2 * pad, 3)).copy()
    xp[:, pad:pad + 5, pad:pad + 6] = x
    seen = set()
    for n in range(256):
        hits = [(i, j, f) for i in range(2 * pad + 1) for j in range(2 * pad + 1)
                for f in (False, True)
                if np.array_equal(out[n], (lambda w: w[:, ::-1] if f else w)(
                    xp[n, i:i + 5, j:j + 6]))]
        assert hits, n
        seen.update(hits)
    assert {f for *_, f in seen} == {False, True}
    assert {(i, j) for i, j, _ in seen} == {(i, j) for i in range(5) for j in range(5)}
    # no padding, no flip: the identity
    assert np.array_equal(A.random_crop_flip(jax.random.PRNGKey(0), x, 0, flip=False), x)


# ------------------------------------------------------------------ 5-D batches (issue 28)


@pytest.mark.parametrize("strategy,mode", [(FULL, "S"), (FULL, "M")])
def test_video_dsa_is_the_clip_draw_on_every_frame(strategy, mode):
    """modality='video': one draw per clip, applied to each frame as to an image."""
    v = _x(1, (3, 4, 8, 8, 3))
    key = jax.random.PRNGKey(11)
    out = dsa(key, v, strategy, mode, modality="video")
    assert out.shape == v.shape
    for t in range(v.shape[1]):
        np.testing.assert_allclose(out[:, t], dsa(key, v[:, t], strategy, mode), atol=1e-6)
    draw = A.dsa_draw(key, v.shape[0], strategy, mode, modality="video")
    # (dsa_apply runs eagerly, dsa under jit: float rounding may differ in the last bit)
    np.testing.assert_allclose(A.dsa_apply(draw, v, strategy, mode, modality="video"), out,
                               atol=1e-6)
    aug = A.make_augment(strategy, mode, modality="video")
    np.testing.assert_array_equal(aug(key, v), out)
    np.testing.assert_allclose(aug.apply(aug.draw(key, v.shape[0]), v), out, atol=1e-6)


def test_video_dsa_is_vectorized_over_frames():
    """The frames are folded into the batch: the traced program does not grow with T."""
    key = jax.random.PRNGKey(0)
    sizes = [len(jax.make_jaxpr(lambda v: A.dsa_apply(
        A.dsa_draw(key, 2, FULL), v, FULL, modality="video"))(_x(0, (2, t, 6, 6, 3))).eqns)
        for t in (2, 7)]
    assert sizes[0] == sizes[1]


def test_video_dsa_gradient_flows():
    v = _x(2, (2, 3, 6, 6, 1))
    g = jax.grad(lambda v: jnp.sum(dsa(jax.random.PRNGKey(3), v, FULL, "M",
                                       modality="video") ** 2))(v)
    assert g.shape == v.shape and float(jnp.abs(g).max()) > 0


def test_voxel_dsa_none_only_and_clear_errors():
    vox = _x(0, (2, 4, 4, 4, 1))
    key = jax.random.PRNGKey(0)
    for s in ("none", "", None):  # the authors' default '' (no augmentation)
        np.testing.assert_array_equal(dsa(key, vox, s, modality="voxel"), vox)
        assert A.make_augment(s, modality="voxel") is None
    with pytest.raises(ValueError, match="'flip'.*'voxel'"):
        dsa(key, vox, "flip", modality="voxel")
    with pytest.raises(ValueError, match="'crop_scale'.*'voxel'"):
        A.make_augment("crop_scale", modality="voxel")
    with pytest.raises(ValueError, match="'color'.*'voxel'"):
        A.dsa_draw(key, 2, "color", modality="voxel")
    with pytest.raises(ValueError, match="modality='video'"):  # 5-D must name its modality
        dsa(key, vox, "flip")
    with pytest.raises(ValueError, match="expects 4-D"):
        dsa(key, vox, "flip", modality="image")
    with pytest.raises(ValueError, match="expects 5-D"):
        dsa(key, _x(), "flip", modality="video")
    with pytest.raises(ValueError, match="unknown modality"):
        dsa(key, _x(), "flip", modality="pointcloud")


def test_audio_modality_is_the_image_path():
    x = _x(4, (3, 8, 8, 1))
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(dsa(key, x, FULL, modality="audio"), dsa(key, x, FULL))
