"""Scale-out on 8 virtual CPU devices (jaxdd.sharding): the same numbers as on one device.

One subprocess (XLA_FLAGS=--xla_force_host_platform_device_count=8, so the rest of the
suite keeps its single device) runs every check and prints one JSON line:

* TM, DM and DC with pixel, FreD, DDiF and NSD (`PAIRS`; NSD with TM's real-guided term):
  one outer step (`outer_step.make_step`) with the mesh over 8 devices (instances split along
  their axis, the student minibatch / the real batches / DC's inner-network minibatch /
  the real-guided term's real split data-parallel) against the same step without a mesh: the loss and the updated
  synthetic parameters agree to float tolerance. Why a tolerance: the sharded step sums
  partial results in another order (the per-step gradient of the student is an all-reduce
  over 8 shards; per-class means likewise), float32 addition is not associative, so the
  results differ by a few ulps per reduction (observed ~1e-7 relative); the bound 2e-4 of
  the update's size is far below any change a wrong sharding (a dropped shard, a
  misplaced instance) makes, which moves the update by O(1) of its size.
* CFM (pixel, 8 classes: the class-batch of one instance per class split over the 8
  devices, the BatchNorm teacher's forward over it): one recover step, the same check;
* the instances really are split: the decoded images / parameters of the 8-device state
  carry a sharding over 8 devices when their count divides by 8;
* evaluation (`evaluate_synthetic`, 3 networks padded to 8 and split over the devices)
  gives the same accuracies as on one device;
* expert training (`experts.train_experts`, 3 experts padded to 8 on the mesh) gives the
  trajectories each expert has when trained alone on one device.

The two-process (multi-host) check is tests/test_multihost.py.
"""
import json
import os
import subprocess
import sys
import time

from jaxdd import outer_step
from jaxdd import assemble
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PARAMS = ("pixel", "fred", "ddif")
OBJECTIVES = ("tm", "dm", "dc")
# every objective with two or three parameterizations, every parameterization with one to
# three objectives (the full 3 x 3 matrix of pixel/FreD/DDiF passed too, see the issue-15
# report; a subset keeps the subprocess near a minute and a half of CPU). NSD runs with TM
# and its real-guided term (gamma > 0: the flat real split placed over the devices,
# `assemble.real_guided_train`); DC's inner network minibatch is data-parallel too. TM x FreD
# (passed) is left out for time: FreD's sharded part (its coefficient instances) is the
# same under DC. CFM: `_cfm_run` (8 classes, so its class-batch splits).
PAIRS = (("tm", "pixel"), ("tm", "ddif"), ("tm", "nsd"), ("dm", "pixel"), ("dm", "ddif"),
         ("dc", "pixel"), ("dc", "fred"))
RES, NC, PER_CLASS = 8, 10, 16


# ----------------------------------------------------------------------------- worker

def _dataset():
    import types

    import numpy as np
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(NC), PER_CLASS).astype(np.int32)
    base = rng.normal(size=(NC, RES, RES, 1))
    images = (base[labels] + 0.3 * rng.normal(size=(len(labels), RES, RES, 1))).astype(
        np.float32)
    return types.SimpleNamespace(images=images, labels=labels, num_classes=NC,
                                 image_shape=(RES, RES, 1))


def _config(param, objective):
    import ml_collections

    from jaxdd import config as C
    from jaxdd import objective as objective_lib
    from jaxdd import param as param_lib

    cfg = C.base_config("digits", 4)
    cfg.dataset.resolution = RES
    cfg.model.name = "ConvNetD1W4"
    cfg.dsa_strategy = "none"
    pm = param_lib.get(param)
    cfg.param = pm.default_config()
    cfg.param.name, cfg.param.ipc = param, 4
    if param == "fred":
        cfg.param.k = 16
    elif param == "ddif":  # 8 fields per class: 80 (divisible by 8)
        cfg.param.ipc = 8
        cfg.param.fields_per_class = 8
        cfg.param.width, cfg.param.warmup_steps = 4, 0
    elif param == "nsd":  # per-class blocks: the leading axis is the 10 classes (replicated)
        cfg.param.init = "dct"
    if objective == "tm":
        o = cfg.objective
        o.syn_steps, o.expert_epochs, o.max_start_epoch = 2, 1, 2
        o.batch_syn = 16
        o.remat = False
        if param == "nsd":  # the real-guided term: 16 of the 160 real images per step
            o.gamma, o.real_batch = 0.1, 16
        cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=10.0, momentum=0.5))
    else:
        cfg.objective = objective_lib.get_module(objective).default_config()
        cfg.objective.batch_real = 8
        if objective == "dc":
            cfg.objective.outer_loop, cfg.objective.inner_loop = 2, 1
            cfg.objective.batch_train = 16
        cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=1.0, momentum=0.5))
    if param == "ddif" and objective != "tm":  # DM/DC's large gradients: a small step
        cfg.opt.syn.lr = 1e-3
    return cfg


def _one_run(param, objective, mesh, ds, model, trajs, steps=1):
    import jax
    import numpy as np

    from jaxdd import objective as objective_lib
    from jaxdd import param as param_lib
    from jaxdd.objective import Setup

    cfg = _config(param, objective)
    pm = param_lib.get(param)
    by_class = [ds.images[ds.labels == c] for c in range(NC)]
    params, aux = pm.init(jax.random.PRNGKey(3), by_class, cfg.param)
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=True)  # noqa: E731
    train_ds = assemble.real_guided_train(cfg, ds, mesh)
    setup = Setup(cfg=cfg, model=model, apply_fn=apply_fn, train_ds=train_ds, test_ds=None,
                  trajectories=trajs if objective == "tm" else None, progress=False,
                  syn_labels=np.asarray(aux["labels"]), mesh=mesh)
    obj = objective_lib.get_builder(objective)(setup)
    step, init_state = outer_step.make_step(pm, aux, obj, cfg, mesh=mesh)
    state = init_state(jax.random.PRNGKey(4), params, cfg.opt.lr.init)
    losses = []
    for _ in range(steps):
        state, m = step(state, obj.data)
        losses.append(float(m["loss"]))
    leaves = jax.tree.leaves(state.syn_params)
    split = [not a.sharding.is_fully_replicated for a in leaves]
    # a leaf whose leading axis divides by 8 must be split; NSD's class axis (10) cannot
    can = any(a.shape[0] % 8 == 0 for a in leaves) if mesh is not None else False
    if "real_images" in obj.data:  # the real-guided term's real split
        split.append(not obj.data["real_images"].sharding.is_fully_replicated)
        can = can or mesh is not None
    return losses, jax.tree.map(np.asarray, state.syn_params), params, (any(split), can)


CFM_K = 8  # classes of the CFM check: its class-batch (one instance per class) splits over 8


def _cfm_run(mesh):
    """One CFM recover step (pixel, class-batch of 8 split over the mesh, the BatchNorm
    teacher's forward over it) -> (loss, updated images)."""
    import types

    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np

    from jaxdd.models import get_model
    from jaxdd.objective import Setup
    from jaxdd.objective import cfm as ocfm
    from jaxdd.param import pixel

    model = get_model("ConvNetD2W4BN", CFM_K, conv_impl="native")
    v = model.init(jax.random.PRNGKey(0), jnp.zeros((2, RES, RES, 1)))
    rng = np.random.default_rng(1)
    real_x = rng.normal(size=(4 * CFM_K, RES, RES, 1)).astype(np.float32)
    real_y = np.arange(4 * CFM_K, dtype=np.int32) % CFM_K
    _, _, feats = ocfm.conv_inputs(model, v, jnp.asarray(real_x))
    psi, phi = ocfm.synthetic_statistics(feats, jnp.asarray(real_y), CFM_K, "class")
    cfg = ml_collections.ConfigDict()
    cfg.iterations = 2
    cfg.objective = ocfm.default_config()
    cfg.objective.signal = "class"
    cfg.opt = ml_collections.ConfigDict(dict(
        syn=dict(name="adam", lr=0.05, b1=0.5, b2=0.9, per_instance=True),
        lr=dict(lr=0.0, momentum=0.5)))
    by_class = [real_x[real_y == c][:2] for c in range(CFM_K)]
    params, aux = pixel.init(jax.random.PRNGKey(2), by_class,
                             ml_collections.ConfigDict(dict(ipc=2, init="first")))
    o = ocfm.build(Setup(cfg=cfg, model=None, apply_fn=None,
                         train_ds=types.SimpleNamespace(num_classes=CFM_K),
                         teacher={"model": model, "variables": v,
                                  "stats": {"psi": psi, "phi": phi}},
                         syn_labels=aux["labels"], mesh=mesh))
    step, init_state = outer_step.make_step(pixel, aux, o, cfg, mesh=mesh)
    state = init_state(jax.random.PRNGKey(3), params, 0.0)
    state, m = step(state, o.data)
    split = not state.syn_params["images"].sharding.is_fully_replicated
    return float(m["loss"]), np.asarray(state.syn_params["images"]), np.asarray(
        params["images"]), split


def worker():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd import evaluate, sharding
    from jaxdd.models import get_model

    assert jax.device_count() == 8, jax.devices()
    out = {"devices": jax.device_count()}
    mesh = sharding.make_mesh(0)
    ds = _dataset()
    model = get_model("ConvNetD1W4", NC)
    p0 = model.init(jax.random.PRNGKey(0), jnp.zeros((1, RES, RES, 1)))["params"]
    leaves, tdef = jax.tree.flatten(p0)
    ks = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    trajs = jax.tree.unflatten(tdef, [np.asarray(
        a[None, None] + jnp.cumsum(0.01 * jax.random.normal(k, (2, 4) + a.shape), axis=1))
        for a, k in zip(leaves, ks)])
    for objective, param in PAIRS:
        t0 = time.time()
        l1, s1, p0s, _ = _one_run(param, objective, None, ds, model, trajs)
        l8, s8, _, (split, can) = _one_run(param, objective, mesh, ds, model, trajs)
        upd = max(float(np.max(np.abs(a - np.asarray(b))))
                  for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(p0s)))
        diff = max(float(np.max(np.abs(a - b)))
                   for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s8)))
        out[f"{objective}_{param}"] = {
            "loss_1": l1, "loss_8": l8, "update": upd, "param_diff": diff,
            "split": split, "can_split": can, "seconds": time.time() - t0}
    # CFM: class-batch of 8 (one instance per class) split over the 8 devices
    t0 = time.time()
    l1, s1, p0, _ = _cfm_run(None)
    l8, s8, _, split = _cfm_run(mesh)
    out["cfm_pixel"] = {"loss_1": [l1], "loss_8": [l8],
                        "update": float(np.max(np.abs(s1 - p0))),
                        "param_diff": float(np.max(np.abs(s1 - s8))),
                        "split": split, "can_split": True, "seconds": time.time() - t0}
    # DM/DC real data split over the devices (class sizes 13 / 11: padded to 16), built
    # block by block on the host: equal to the one-device array
    import types

    from jaxdd.objective import dm
    keep = np.concatenate([np.flatnonzero(ds.labels == c)[:13 if c % 2 else 11]
                           for c in range(NC)])
    small = types.SimpleNamespace(images=ds.images[keep], labels=ds.labels[keep],
                                  num_classes=NC, image_shape=ds.image_shape)
    r8 = dm.real_data(types.SimpleNamespace(train_ds=small, mesh=mesh))
    real, counts = dm.real_by_class(small.images, small.labels, NC)
    got = np.asarray(r8["real"])
    out["real_data"] = {
        "shape": list(got.shape), "equal": bool(np.array_equal(got[:, :13], real)
                                                and not got[:, 13:].any()),
        "counts_equal": bool(np.array_equal(np.asarray(r8["counts"]), counts)),
        "split": not r8["real"].sharding.is_fully_replicated}
    # evaluation: 3 networks padded to 8, split over the devices, vs one device
    x, y = ds.images[::4], ds.labels[::4]
    kw = dict(lr=0.01, num_nets=3, epochs=2, batch_size=16, dsa_strategy="none",
              progress=False)
    r1 = evaluate.evaluate_synthetic(jax.random.PRNGKey(7), model, x, y, ds.images,
                                     ds.labels, mesh=None, **kw)
    r8 = evaluate.evaluate_synthetic(jax.random.PRNGKey(7), model, x, y, ds.images,
                                     ds.labels, mesh=mesh, **kw)
    out["eval"] = {"accs_1": [float(a) for a in r1.accs],
                   "accs_8": [float(a) for a in r8.accs]}
    # expert training: 3 experts on the 8-device mesh (padded to 8) vs each on one device
    from jax.sharding import Mesh

    from jaxdd import experts
    ekeys = experts.expert_keys(jax.random.PRNGKey(3), 3)
    ekw = dict(epochs=1, batch_size=32, dsa_strategy="none", progress=False)
    e8, acc8 = experts.train_experts(ekeys, model, (ds.images, ds.labels), (x, y), mesh=mesh,
                                     **ekw)
    one = Mesh(np.asarray(jax.devices()[:1]), ("experts",))
    e1 = [experts.train_experts(ekeys[i:i + 1], model, (ds.images, ds.labels), None,
                                mesh=one, **ekw)[0] for i in range(3)]
    out["experts"] = {
        "shape0": [int(a.shape[0]) for a in jax.tree.leaves(e8)],
        "diff": max(float(np.max(np.abs(a[i] - b[0])))
                    for i in range(3)
                    for a, b in zip(jax.tree.leaves(e8), jax.tree.leaves(e1[i]))),
        "moved": max(float(np.max(np.abs(a[:, -1] - a[:, 0]))) for a in jax.tree.leaves(e8)),
        "accs_finite": bool(np.all(np.isfinite(acc8)))}
    print("RESULT " + json.dumps(out))


# ----------------------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def result():
    env = dict(os.environ)
    # the same compile options for the 1- and 8-device runs; cheap LLVM passes (compile time)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=8"
                        " --xla_backend_optimization_level=0"
                        " --xla_llvm_disable_expensive_passes=true").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "worker"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("objective,param", PAIRS + (("cfm", "pixel"),))
def test_step_on_8_devices_equals_one_device(result, objective, param):
    import numpy as np
    r = result[f"{objective}_{param}"]
    np.testing.assert_allclose(r["loss_8"], r["loss_1"], rtol=2e-4, atol=1e-6)
    assert r["update"] > 0
    assert r["param_diff"] <= 2e-4 * r["update"] + 1e-7, r
    # the synthetic parameters (or, NSD, the real-guided term's real data) are split over
    # the 8 devices (not only replicated)
    assert r["can_split"] and r["split"], r


def test_real_data_split_over_devices_equals_one_device(result):
    r = result["real_data"]
    assert r["shape"][:2] == [NC, 16] and r["equal"] and r["counts_equal"] and r["split"], r


def test_evaluation_on_8_devices_equals_one_device(result):
    assert result["devices"] == 8
    assert result["eval"]["accs_8"] == pytest.approx(result["eval"]["accs_1"], abs=1e-6)
    assert len(result["eval"]["accs_8"]) == 3


def test_experts_on_8_devices_equal_each_alone(result):
    r = result["experts"]
    assert set(r["shape0"]) == {3} and r["accs_finite"], r
    assert r["moved"] > 1e-4 and r["diff"] <= 1e-6, r


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    worker()
