"""jaxdd.io: the one serialization module. Files written before it (by jaxdd.distill's and
jaxdd.teacher's own helpers, kept in tests/data) still load, and the format is unchanged."""
import os

import numpy as np

from jaxdd import io

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def test_old_synthetic_file_loads_and_decodes():
    path = os.path.join(DATA, "synthetic_v0.msgpack")
    d = io.load_synthetic(path)
    assert d["param"] == "pixel" and d["syn_lr"] == 0.01
    assert d["aux"]["image_shape"] == (4, 4, 1)
    assert d["meta"] == {"objective": "tm", "step": 3, "note": [1, "a"]}
    images, labels, lr = io.decode_synthetic(path)
    want = np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1) / 10
    np.testing.assert_array_equal(np.asarray(images), want)
    np.testing.assert_array_equal(labels, [0, 1])
    assert lr == 0.01


def test_synthetic_format_unchanged(tmp_path):
    """Re-saving what the old writer wrote gives the same bytes."""
    old = os.path.join(DATA, "synthetic_v0.msgpack")
    d = io.load_synthetic(old)
    new = str(tmp_path / "s.msgpack")
    io.save_synthetic(new, param_name=d["param"], params=d["params"], aux=d["aux"],
                      syn_lr=d["syn_lr"], meta=d["meta"])
    with open(old, "rb") as f, open(new, "rb") as g:
        assert f.read() == g.read()


def test_old_cfm_cache_loads():
    d = io.load_tree(os.path.join(DATA, "cfm_cache_v0.msgpack"))
    assert d["names"] == ["conv0", "conv1"]  # the old CFM encoding kept sequences as lists
    np.testing.assert_array_equal(d["images"], np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(d["cache"][0], np.zeros(2))
    assert d["cache"][1] == {"a": 1.5} and d["seconds"] == 1.25


def test_round_trip(tmp_path):
    import jax.numpy as jnp
    tree = {"a": jnp.arange(3.0), "b": [1, {"c": (2, np.ones(2))}], "t": (1, 2), "s": "x",
            "n": None, 3: 4.5}
    p = str(tmp_path / "sub" / "t.msgpack")
    io.save_tree(p, tree)
    back = io.load_tree(p)
    np.testing.assert_array_equal(back["a"], np.arange(3.0))
    assert back["b"][0] == 1 and back["b"][1]["c"][0] == 2
    np.testing.assert_array_equal(back["b"][1]["c"][1], np.ones(2))
    assert back["t"] == (1, 2) and back["s"] == "x" and back["n"] is None and back["3"] == 4.5


def test_vanilla_is_now_pixel(tmp_path):
    """`param.name='vanilla'` raises, naming 'pixel'; a set saved under the old name loads."""
    import pytest

    from jaxdd import param

    with pytest.raises(ValueError, match="'pixel'"):
        param.get("vanilla")
    assert "vanilla" not in param.available()
    p = str(tmp_path / "old.msgpack")
    io.save_synthetic(p, param_name="vanilla", params={"images": np.ones((1, 2, 2, 1))},
                      aux={"labels": np.zeros(1, np.int32), "image_shape": (2, 2, 1)},
                      syn_lr=0.1)
    images, labels, _ = io.decode_synthetic(p)
    assert images.shape == (1, 2, 2, 1) and io.load_synthetic(p)["param"] == "pixel"


def test_state_round_trip(tmp_path):
    """save_state / load_state: optax states (NamedTuples) restored into a template."""
    import jax.numpy as jnp
    import optax

    tx = optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(0.1, momentum=0.9))
    params = {"w": jnp.arange(3.0), "b": [jnp.ones(2)]}
    opt = tx.init(params)
    opt = jax_tree_map(lambda a: a + 1.5, opt)  # momentum traces 1.5 (not the init 0)
    p = str(tmp_path / "state.msgpack")
    io.save_state(p, {"params": params, "opt": opt, "epoch": 7})
    back = io.load_state(p, {"params": params, "opt": tx.init(params), "epoch": 0})
    assert back["epoch"] == 7
    assert type(back["opt"][1][0]) is type(opt[1][0])
    np.testing.assert_array_equal(back["opt"][1][0].trace["w"], np.full(3, 1.5))


def jax_tree_map(f, tree):
    import jax
    return jax.tree.map(f, tree)


def test_nsd_set_decodes_at_another_resolution(tmp_path):
    """NSD has no continuous form: a saved NSD set asked for 2x its side is its native
    decode resized bilinearly (what the cross-architecture table needs for VGG11)."""
    import jax
    from jaxdd.param import nsd
    rng = np.random.default_rng(0)
    real = [rng.random((4, 8, 8, 1)).astype(np.float32) for _ in range(2)]
    cfg = nsd.default_config()
    params, aux = nsd.init(jax.random.PRNGKey(0), real, cfg)
    path = str(tmp_path / "nsd.msgpack")
    io.save_synthetic(path, param_name="nsd", params=params, aux=aux, syn_lr=0.01)
    native, labels, _ = io.decode_synthetic(path)
    big, labels16, _ = io.decode_synthetic(path, resolution=16)
    assert native.shape[1:] == (8, 8, 1) and big.shape == (native.shape[0], 16, 16, 1)
    np.testing.assert_array_equal(labels, labels16)
    want = jax.image.resize(native, big.shape, method="bilinear")
    np.testing.assert_allclose(np.asarray(big), np.asarray(want), rtol=0, atol=1e-6)
    assert np.abs(np.asarray(big)).max() > 0
