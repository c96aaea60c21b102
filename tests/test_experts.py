"""Expert trajectories: training recipe, vmap correctness, Orbax storage, slices, resume."""
from __future__ import annotations

import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxdd import experts
from jaxdd.data import Dataset
from jaxdd.models import get_model

MODEL = "ConvNetD1W4"
DSA = "crop_flip"  # two op groups: the lax.switch path of mode 'S', cheap to compile
BS = 16  # 40 examples -> batches of 16, 16 and a masked partial batch of 8
EPOCHS = 2


def _dataset(n, seed):
    rng = np.random.RandomState(seed)
    return Dataset(images=rng.randn(n, 8, 8, 1).astype(np.float32),
                   labels=rng.randint(0, 10, n).astype(np.int32),
                   class_names=tuple(str(i) for i in range(10)),
                   mean=np.zeros(1, np.float32), std=np.ones(1, np.float32), name="random")


@pytest.fixture(scope="module")
def data():
    return _dataset(40, 0), _dataset(20, 1)


@pytest.fixture(scope="module")
def model():
    return get_model(MODEL, 10)


@pytest.fixture(scope="module")
def trained(data, model):
    train, test = data
    keys = experts.expert_keys(jax.random.PRNGKey(0), 2)
    traj, acc = experts.train_experts(keys, model, train, test, epochs=EPOCHS, batch_size=BS,
                                      dsa_strategy=DSA, progress=False)
    return keys, traj, acc


def _leaves(tree):
    return jax.tree.leaves(tree)


def _assert_tree_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(_leaves(a), _leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _buffer_cfg(**kw):
    c = ml_collections.ConfigDict()
    c.dataset = ml_collections.ConfigDict(
        {"name": "random", "resolution": None, "zca": False, "zca_eps": 0.1, "data_dir": None})
    c.model = ml_collections.ConfigDict({"name": MODEL, "overrides": {}})
    c.num_experts = 2
    c.epochs = EPOCHS
    c.lr_teacher = 0.01
    c.batch_size = BS
    c.dsa_strategy = DSA
    c.seed = 0
    c.record_epochs = None
    c.experts_per_group = 1
    c.buffer_dir = ""
    c.update(kw)
    return c


def _bytes_read():
    import tensorstore as ts
    ms = ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/bytes_read")
    assert ms, "tensorstore kvstore metrics unavailable"
    return sum(v.get("value", 0) for m in ms for v in m["values"])


# ----------------------------------------------------------------------------- training


def test_shapes_and_accuracy(trained, data, model):
    _, traj, acc = trained
    init = jax.eval_shape(model.init, jax.random.PRNGKey(0), data[0].images[:1])["params"]
    for t, p in zip(_leaves(traj), _leaves(init)):
        assert t.shape == (2, EPOCHS + 1) + p.shape and t.dtype == np.float32
    # test accuracy = direct argmax of the final parameters on the test set
    x, y = data[1].images, data[1].labels
    apply = jax.jit(lambda p: model.apply({"params": p}, x))
    for i in range(2):
        pred = np.argmax(np.asarray(apply(jax.tree.map(lambda a: a[i, -1], traj))), -1)
        assert acc[i] == pytest.approx(np.mean(pred == y), abs=1e-6)


def test_snapshots_are_the_states_training_had(trained, data, model):
    """Snapshot e+1 == one epoch of training from snapshot e with the same keys (no
    aliasing of the live parameters as in the PyTorch buffer on CPU)."""
    keys, traj, _ = trained
    k_init, k_train = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
    init_fn = jax.jit(lambda k: model.init(k, jnp.asarray(data[0].images[:1]))["params"])
    for i in range(2):  # snapshot 0 = model.init with the documented init key
        init = init_fn(k_init[i])
        _assert_tree_equal(jax.tree.map(np.asarray, init), jax.tree.map(lambda a: a[i, 0], traj))
    epoch_fn = experts.make_epoch_fn(model, BS, DSA)
    x, y = jnp.asarray(data[0].images), jnp.asarray(data[0].labels)
    for e in range(EPOCHS):
        cur = jax.tree.map(lambda a: a[:, e], traj)
        nxt = jax.tree.map(lambda a: a[:, e + 1], traj)
        # consecutive snapshots differ (every leaf but the conv bias, whose gradient is
        # 0 in front of instance norm up to rounding: ~1e-9 with the channels-first im2col)
        for path, a in jax.tree_util.tree_leaves_with_path(cur):
            b = nxt[path[0].key][path[1].key]
            moved = np.abs(a - b).reshape(2, -1).max(1)
            if path[1].key == "bias" and path[0].key.startswith("conv"):
                assert np.all(moved < 1e-6)
            else:
                assert np.all(moved > 0), path
        again, _ = epoch_fn(cur, k_train, jnp.int32(e), x, y, jnp.float32(0.01))
        if jax.device_count() == 1:  # the very program that trained them: bitwise
            _assert_tree_equal(jax.tree.map(np.asarray, again), nxt)
        else:  # training ran sharded (padded to the device count): same math, other program
            for a, b in zip(_leaves(again), _leaves(nxt)):
                np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-7)


def test_epoch_is_plain_sgd_with_masked_last_batch(trained, data, model):
    """One epoch (no augmentation) == SGD steps computed independently: batch of 32 then
    the remaining 8 examples (mean CE over those 8, not over a padded 32)."""
    x, y = data[0].images, data[0].labels
    key = jax.random.PRNGKey(3)
    params = jax.tree.map(lambda a: a[0, 1], trained[1])
    lr = 0.05
    epoch_fn = experts.make_epoch_fn(model, 32, "none")
    got, loss = epoch_fn(jax.tree.map(lambda a: a[None], params), key[None], jnp.int32(5),
                         jnp.asarray(x), jnp.asarray(y), jnp.float32(lr))
    # the documented key derivation: k_perm, k_aug = split(fold_in(k_train, epoch))
    k_perm, _ = jax.random.split(jax.random.fold_in(key, 5))
    order = np.asarray(jax.random.permutation(k_perm, 40))

    @jax.jit
    def ref_step(p, xb, yb):
        def ce(q):
            logits = model.apply({"params": q}, xb)
            return jnp.mean(optax.softmax_cross_entropy(logits, jax.nn.one_hot(yb, 10)))
        l, g = jax.value_and_grad(ce)(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g), l

    p = params
    losses = []
    for sl in (order[:32], order[32:]):
        p, l = ref_step(p, x[sl], y[sl])
        losses.append(float(l))
    for a, b in zip(_leaves(got), _leaves(p)):
        np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b), rtol=2e-5, atol=2e-6)
    assert float(loss[0]) == pytest.approx(np.mean(losses), rel=1e-5)


def test_experts_trained_together_equal_one_at_a_time(trained, data, model):
    keys, traj, _ = trained
    for i in range(2):
        single, _ = experts.train_experts(keys[i:i + 1], model, data[0], None, epochs=EPOCHS,
                                          batch_size=BS, dsa_strategy=DSA, progress=False)
        for a, b in zip(_leaves(traj), _leaves(single)):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-5, atol=1e-6)
    # and the two experts are different experts (own init, order and augmentation)
    a0, a1 = (jax.tree.map(lambda a: a[i], traj) for i in range(2))
    assert all(np.abs(u - v).max() > 1e-3 for u, v in zip(_leaves(a0), _leaves(a1))
               if u.ndim > 1)


# the expert axis sharded over 8 devices: tests/test_sharding.py (its 8-device subprocess)


def test_rejects_models_with_batch_stats(data):
    with pytest.raises(ValueError, match="batch_stats"):
        experts.train_experts(jax.random.PRNGKey(0), get_model("ConvNetD1W4BN", 10), data[0],
                              None, num_experts=1, epochs=1, batch_size=BS, progress=False)


# ----------------------------------------------------------------------------- storage


def test_orbax_round_trip_and_slices(trained, tmp_path):
    _, traj, acc = trained
    for i in range(2):
        experts.save_expert(experts.expert_dir(tmp_path, i), jax.tree.map(lambda a: a[i], traj),
                            {"expert": i, "test_acc": float(acc[i]), "lr_teacher": 0.01})
    loaded, metas = experts.load_trajectories(tmp_path)
    _assert_tree_equal(loaded, traj)  # bitwise
    assert [m["expert"] for m in metas] == [0, 1]
    assert metas[1]["test_acc"] == float(acc[1]) and metas[0]["num_snapshots"] == EPOCHS + 1
    # only the needed epochs: int n -> snapshots 0..n; explicit sequences as given
    part, _ = experts.load_trajectories(tmp_path, num_experts=2, epochs=1)
    _assert_tree_equal(part, jax.tree.map(lambda a: a[:, :2], traj))
    part, _ = experts.load_trajectories(tmp_path, num_experts=1, epochs=[2, 0])
    _assert_tree_equal(part, jax.tree.map(lambda a: a[:1, [2, 0]], traj))
    sl = experts.load_slice(tmp_path, 1, 1, 1)
    _assert_tree_equal(sl, jax.tree.map(lambda a: a[1, 1:3], traj))
    ends = experts.load_slice(tmp_path, 0, 0, 2, endpoints_only=True)
    _assert_tree_equal(ends, jax.tree.map(lambda a: a[0, [0, 2]], traj))
    with pytest.raises(experts.ExpertMismatchError, match="record_epochs"):
        experts.load_slice(tmp_path, 0, 2, 1)  # epoch 3 was never recorded
    with pytest.raises(experts.MissingExpertsError):
        experts.load_trajectories(tmp_path, num_experts=3)


def test_slice_reads_only_the_requested_epochs(tmp_path):
    """Partial restore: reading 2 of 12 snapshots reads ~2/12 of the bytes from disk."""
    rng = np.random.RandomState(0)
    traj = {"w": rng.randn(12, 64, 128).astype(np.float32),
            "b": rng.randn(12, 128).astype(np.float32)}
    path = experts.save_expert(experts.expert_dir(tmp_path, 0), traj, {"expert": 0})
    snap_bytes = (64 * 128 + 128) * 4
    b0 = _bytes_read()
    full = experts.load_slice(tmp_path, 0, 0, 11)
    b1 = _bytes_read()
    ends = experts.load_slice(tmp_path, 0, 4, 3, endpoints_only=True)
    b2 = _bytes_read()
    np.testing.assert_array_equal(full["w"], traj["w"])
    np.testing.assert_array_equal(ends["w"], traj["w"][[4, 7]])
    full_read, part_read = b1 - b0, b2 - b1
    assert full_read >= 12 * snap_bytes * 0.9  # sanity: the metric sees the data reads
    assert 2 * snap_bytes * 0.9 <= part_read < 4 * snap_bytes, (part_read, full_read)
    assert os.path.basename(path) == "expert_00000"


# ----------------------------------------------------------------------------- buffer


def test_build_buffer_resumes_after_kill(data, tmp_path, monkeypatch):
    train, _ = data
    cfg = _buffer_cfg()
    buf = str(tmp_path / "buf")
    metas = experts.build_buffer(buf, cfg, train=train, test=None, progress=False)
    assert [m["expert"] for m in metas] == [0, 1]
    experts.check_metadata(metas[0], experts.expected_metadata(cfg, strict=True))
    ref, _ = experts.load_trajectories(buf, expected=experts.expected_metadata(cfg),
                                       num_experts=2)
    e0 = experts.expert_dir(buf, 0)
    e1 = experts.expert_dir(buf, 1)
    created0 = experts.load_expert_metadata(e0)["created"]
    mtime0 = os.path.getmtime(os.path.join(e0, "metadata", "metadata"))

    # simulated kill while writing expert 1: orbax's unfinished temp dir is left over ...
    shutil.rmtree(e1)
    tmp = e1 + ".orbax-checkpoint-tmp"
    shutil.copytree(e0, tmp)
    shutil.rmtree(os.path.join(tmp, "metadata"))
    assert experts.list_experts(buf).keys() == {0}
    with pytest.raises(experts.MissingExpertsError, match="launch/buffer.py") as err:
        experts.load_trajectories(buf, num_experts=2)
    assert err.value.missing == (1,)
    # ... and a half-copied directory under the final name is not an expert either
    shutil.copytree(e0, e1)
    os.remove(os.path.join(e1, "metadata", "metadata"))
    assert experts.list_experts(buf).keys() == {0}

    calls = []
    real_train = experts._train

    def spy(keys, *a, **kw):
        calls.append(int(keys.shape[0]))
        return real_train(keys, *a, **kw)

    monkeypatch.setattr(experts.build, "_train", spy)  # what build_buffer calls
    experts.build_buffer(buf, cfg, train=train, test=None, progress=False)
    assert calls == [1]  # only expert 1 was trained again
    assert not os.path.exists(tmp)
    assert experts.load_expert_metadata(e0)["created"] == created0
    assert os.path.getmtime(os.path.join(e0, "metadata", "metadata")) == mtime0
    again, _ = experts.load_trajectories(buf, num_experts=2)
    _assert_tree_equal(again, ref)  # expert i always gets key fold_in(seed, i)

    # nothing left to do -> no training at all
    calls.clear()
    experts.build_buffer(buf, cfg, train=train, test=None, progress=False)
    assert calls == []


def test_metadata_mismatch(data, tmp_path):
    meta = {"dataset": {"name": "cifar10", "zca": True}, "model": {"name": "ConvNetD3"},
            "lr_teacher": 0.01, "batch_size": 256}
    experts.check_metadata(meta, {"dataset": {"name": "cifar10"}, "lr_teacher": 0.01})
    with pytest.raises(experts.ExpertMismatchError) as err:
        experts.check_metadata(meta, {"dataset": {"name": "cifar10", "zca": False},
                                      "model": {"name": "ConvNetD3"}, "lr_teacher": 0.001,
                                      "batch_size": 256})
    msg = str(err.value)
    assert "dataset.zca" in msg and "lr_teacher" in msg
    assert "model.name" not in msg and "batch_size" not in msg
    # model overrides match exactly (an extra override is another model), except conv_impl
    meta["model"]["overrides"] = {"width": 64, "conv_impl": "native"}
    with pytest.raises(experts.ExpertMismatchError, match="model.overrides"):
        experts.check_metadata(meta, {"model": {"name": "ConvNetD3", "overrides": {}}})
    experts.check_metadata(meta, {"model": {"overrides": {"width": 64}}})

    # on a real buffer: loading or extending it with other settings is refused
    cfg = _buffer_cfg(num_experts=1, epochs=1)
    buf = str(tmp_path / "buf")
    experts.build_buffer(buf, cfg, train=data[0], test=None, progress=False)
    other = _buffer_cfg(num_experts=1, epochs=1, lr_teacher=0.02)
    with pytest.raises(experts.ExpertMismatchError, match="lr_teacher"):
        experts.load_trajectories(buf, expected=experts.expected_metadata(other))
    with pytest.raises(experts.ExpertMismatchError, match="lr_teacher"):
        experts.build_buffer(buf, other, train=data[0], test=None, progress=False)
    # conv_impl is an implementation detail, not part of an expert's identity
    impl = _buffer_cfg(num_experts=1, epochs=1)
    impl.model.overrides = {"conv_impl": "native"}
    experts.load_trajectories(buf, expected=experts.expected_metadata(impl))


def test_missing_experts_message_gives_the_command(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "buffer_cfg", os.path.join(os.path.dirname(__file__), "..", "configs", "buffer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c10 = mod.get_config("cifar10")
    assert (c10.model.name, c10.num_experts, c10.epochs, c10.lr_teacher, c10.batch_size,
            c10.dataset.zca, c10.dataset.resolution) == ("ConvNetD3", 100, 50, 0.01, 256, True,
                                                         None)
    assert mod.get_config(None).dataset.name == "digits"
    c = mod.get_config("cifar10,num_experts=5,model.overrides.width=64")
    assert c.num_experts == 5 and c.model.overrides.width == 64
    cmd = experts.build_command(c, buffer_dir=str(tmp_path))
    assert cmd.startswith("python launch/buffer.py --config=configs/buffer.py:cifar10,")
    assert "num_experts=5" in cmd and "model.overrides.width=64" in cmd
    assert f"--buffer_dir={tmp_path}" in cmd
    with pytest.raises(experts.MissingExpertsError) as err:
        experts.load_trajectories(tmp_path, num_experts=3, build_hint=cmd)
    assert cmd in str(err.value) and err.value.missing == (0, 1, 2)


def test_damaged_experts_are_set_aside_and_rebuilt_bitwise(data, tmp_path, monkeypatch,
                                                           capsys):
    """Issue 16, items 3 and 6: a damaged expert (corrupt metadata; truncated snapshot
    files) is named, renamed into <buffer>/damaged/ (not deleted) and rebuilt ALONE -- on
    the same number of lanes as its group (min(experts_per_group, num_experts), padding
    lanes), so it is bit for bit the expert the uninterrupted build stored."""
    train, _ = data
    cfg = _buffer_cfg(num_experts=3, experts_per_group=3)
    buf = str(tmp_path / "buf")
    experts.build_buffer(buf, cfg, train=train, test=None, progress=False)
    ref, _ = experts.load_trajectories(buf, num_experts=3)
    with open(os.path.join(experts.expert_dir(buf, 1), "metadata", "metadata"), "w") as f:
        f.write('{"dataset": ')
    d2 = os.path.join(experts.expert_dir(buf, 2), "trajectory")
    files = [os.path.join(r, f) for r, _, fs in os.walk(d2) for f in fs]
    big = max(files, key=os.path.getsize)
    with open(big, "r+b") as f:
        f.truncate(os.path.getsize(big) // 3)

    calls = []
    real_train = experts._train

    def spy(keys, *a, **kw):
        calls.append((int(keys.shape[0]), kw.get("lanes")))
        return real_train(keys, *a, **kw)

    monkeypatch.setattr(experts.build, "_train", spy)  # what build_buffer calls
    experts.build_buffer(buf, cfg, train=train, test=None, progress=False)  # expert 1
    with pytest.raises(experts.DamagedExpertError, match="expert 2 .* is damaged") as err:
        experts.load_trajectories(buf, num_experts=3)
    assert err.value.missing == (2,) and "set aside" in str(err.value)
    out = capsys.readouterr().out
    assert "expert_00001 is damaged" in out and "expert_00002 is damaged" in out
    assert sorted(n.split("-")[0] for n in os.listdir(os.path.join(buf, "damaged"))) == [
        "expert_00001", "expert_00002"]
    experts.build_buffer(buf, cfg, train=train, test=None, progress=False)  # expert 2
    assert calls == [(1, 3), (1, 3)]  # alone, on the group's 3 lanes
    again, _ = experts.load_trajectories(buf, num_experts=3)
    _assert_tree_equal(again, ref)


def test_lanes_make_an_expert_independent_of_its_group(data, model):
    """The same expert trained in a group of 3 and alone on 3 lanes: bitwise equal."""
    keys = experts.expert_keys(jax.random.PRNGKey(3), 3)
    kw = dict(epochs=EPOCHS, lr=0.01, batch_size=BS, dsa_strategy=DSA, record_epochs=None,
              progress=False, mesh=None)
    group, _, _ = experts._train(keys, model, data[0], None, **kw)
    alone, _, _ = experts._train(keys[2:], model, data[0], None, lanes=3, **kw)
    for a, b in zip(_leaves(group), _leaves(alone)):
        np.testing.assert_array_equal(a[2], b[0])


# ----------------------------------------------------------------------------- data identity


def _npz_cfg(path):
    c = _buffer_cfg(num_experts=1, epochs=1, dsa_strategy="none")
    c.dataset.name = str(path)
    return c


def _other_pixels(path):
    """Rewrite an npz in place with other pixels (same shapes and file size, later mtime)."""
    with np.load(path) as z:
        arrays = dict(z)
    arrays["images"] = 1.0 - arrays["images"]
    st = os.stat(path)
    np.savez(path, **arrays)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_npz_experts_are_identified_by_content(tmp_path, monkeypatch):
    """Issue 27: an npz dataset is its bytes, not its path. A moved file keeps its experts
    (nothing retrained, same trajectories); other pixels under the same path are refused
    by loading and by building, naming the file and both hashes."""
    from tinyrun import write_npz

    from jaxdd import fingerprint

    os.makedirs(tmp_path / "a")
    p = write_npz(tmp_path / "a" / "tiny.npz")
    buf = str(tmp_path / "buf")
    metas = experts.build_buffer(buf, _npz_cfg(p), progress=False)  # data: assemble.data
    sha = fingerprint.file_sha256(p)
    assert metas[0]["dataset"]["sha256"] == sha and metas[0]["dataset"]["name"] == p
    assert experts.expected_metadata(_npz_cfg(p))["dataset"]["sha256"] == sha
    ref, _ = experts.load_trajectories(buf, expected=experts.expected_metadata(_npz_cfg(p)),
                                       num_experts=1)

    calls = []
    real_train = experts.build._train
    monkeypatch.setattr(experts.build, "_train",
                        lambda keys, *a, **kw: calls.append(1) or real_train(keys, *a, **kw))
    os.makedirs(tmp_path / "b")
    q = str(tmp_path / "b" / "renamed.npz")
    shutil.move(p, q)
    experts.build_buffer(buf, _npz_cfg(q), progress=False)
    assert calls == []  # the same data: every expert reused
    got, _ = experts.load_trajectories(buf, expected=experts.expected_metadata(_npz_cfg(q)),
                                       num_experts=1)
    _assert_tree_equal(got, ref)

    shutil.copy(q, p)
    _other_pixels(p)
    now = fingerprint.file_sha256(p)
    assert now != sha
    for attempt in (lambda: experts.load_trajectories(
                        buf, expected=experts.expected_metadata(_npz_cfg(p)), num_experts=1,
                        build_hint=experts.build_command(_npz_cfg(p), buf)),
                    lambda: experts.build_buffer(buf, _npz_cfg(p), progress=False)):
        with pytest.raises(experts.ExpertMismatchError) as err:
            attempt()
        msg = str(err.value)
        assert f"dataset.sha256: stored {sha!r}, expected {now!r}" in msg
        assert f"The data file {p} is not the data the experts in {buf}" in msg
        assert "Put the original file back" in msg and "launch/buffer.py" in msg
        assert "dataset.name:" not in msg  # same path: only the content differs
    assert calls == []


def test_experts_without_a_hash_compare_the_path(tmp_path):
    """A buffer written before hashes were recorded still loads from the same path (and
    is refused from another one, as before)."""
    from tinyrun import write_npz

    p = write_npz(tmp_path / "tiny.npz")
    meta = {"expert": 0, "dataset": {"name": p, "resolution": None, "zca": False,
                                     "preprocessing": "standardize-train-stats"},
            "model": {"name": MODEL, "overrides": {}}, "lr_teacher": 0.01, "batch_size": BS,
            "dsa_strategy": "none"}
    experts.save_expert(experts.expert_dir(tmp_path / "buf", 0),
                        {"w": np.zeros((2, 3), np.float32)}, meta)
    experts.load_trajectories(tmp_path / "buf", expected=experts.expected_metadata(_npz_cfg(p)),
                              num_experts=1)
    q = str(tmp_path / "moved.npz")
    shutil.copy(p, q)
    with pytest.raises(experts.ExpertMismatchError,
                       match=f"dataset.name: stored {p!r}, expected {q!r}"):
        experts.load_trajectories(tmp_path / "buf",
                                  expected=experts.expected_metadata(_npz_cfg(q)), num_experts=1)


# ----------------------------------------------------------------------------- the package


def test_build_command_rebuilds_the_same_buffer():
    """The hint spells the buffer config's own fields: the config it names is the buffer
    asked for (here an edited variant and the buffer of a distillation config)."""
    from jaxdd import config as C
    from tinyrun import tiny_config

    for cfg in (C.buffer_config("cifar10,num_experts=5,epochs=3,model.overrides.width=64"),
                C.buffer_for(tiny_config("/data/x.npz", "/tmp/b"))):
        cmd = experts.build_command(cfg)
        arg = cmd.split("--config=configs/buffer.py:", 1)[1].split(" --buffer_dir=")[0]
        again = C.buffer_config(arg)
        assert experts.expected_metadata(again, strict=True) == experts.expected_metadata(
            cfg, strict=True)
        assert (again.num_experts, again.experts_per_group) == (cfg.num_experts,
                                                               cfg.experts_per_group)
    assert cmd.endswith(" --buffer_dir=/tmp/b")
    assert experts.hints.VARIANTS == C.BUFFER_VARIANTS


def test_experts_modules_have_one_job_and_no_config_builders():
    """jaxdd.experts never imports jaxdd.config (buffer_dir and the build hint come from
    the buffer config itself); every module stays small."""
    import ast
    import glob

    pkg = os.path.dirname(experts.__file__)
    for path in glob.glob(os.path.join(pkg, "*.py")):
        src = open(path).read()
        assert len(src.splitlines()) < 450, path
        for node in ast.walk(ast.parse(src)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "jaxdd.config" or n.startswith("jaxdd.config.")
                           for n in names), (path, names)
    assert not hasattr(experts, "default_buffer_dir")
