"""Every parameterization x every objective (4 x 4 = 16 pairs) runs through the generic loop.

Tiny shapes: digits at 8x8 (10 images per class), ConvNetD1W4 student, a random tiny BN
teacher (CFM: its real statistics on the subset), fake expert trajectories (TM: random
parameters of the student, a few snapshots), IPC 1, no evaluation. Each pair builds its
objective from a `Setup` as the loop does (`jaxdd.objective.get_builder`), takes two jitted
`jaxdd.outer_step.make_step` iterations and asserts a finite loss and moved synthetic params.
The expensive pieces (dataset, teacher, trajectories) are module-scoped fixtures.
"""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdd import outer_step
from jaxdd import teacher as teacher_lib
from jaxdd import config as C
from jaxdd import objective as objective_lib
from jaxdd import param as param_lib
from jaxdd.data import images_by_class, load_dataset
from jaxdd.models import get_model
from jaxdd.objective import Setup

PARAMS = ("pixel", "fred", "ddif", "nsd")
OBJECTIVES = ("tm", "dm", "dc", "cfm")
RES = 8
STUDENT = "ConvNetD1W4"
TEACHER = "ConvNetD1W4BN"


@pytest.fixture(scope="module")
def data():
    tr, te = load_dataset("digits", resolution=RES)
    keep = np.concatenate([np.flatnonzero(tr.labels == c)[:10] for c in range(10)])
    tr = dataclasses.replace(tr, images=tr.images[keep], labels=tr.labels[keep])
    te = dataclasses.replace(te, images=te.images[:50], labels=te.labels[:50])
    return tr, te


@pytest.fixture(scope="module")
def student(data):
    model = get_model(STUDENT, 10)
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=True)  # noqa: E731
    return model, apply_fn


@pytest.fixture(scope="module")
def trajectories(student):
    """(experts 2, epochs 3, ...) snapshots of random student parameters (TM only reads
    their shapes and values; no expert training needed for a smoke test)."""
    model, _ = student
    p0 = model.init(jax.random.PRNGKey(0), jnp.zeros((1, RES, RES, 1)), train=False)["params"]
    noise = lambda k, a: 0.01 * jax.random.normal(k, (2, 3) + a.shape)  # noqa: E731
    leaves, tdef = jax.tree.flatten(p0)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    return jax.tree.unflatten(tdef, [a[None, None] + jnp.cumsum(noise(k, a), axis=1)
                                     for a, k in zip(leaves, keys)])


@pytest.fixture(scope="module")
def teacher(data):
    tr, _ = data
    model = get_model(TEACHER, 10)
    variables = model.init(jax.random.PRNGKey(2), jnp.zeros((1, RES, RES, 1)), train=False)
    stats = teacher_lib.real_statistics(model, variables, tr.images, tr.labels, 10, batch_size=100,
                                progress=False, merge="batch")
    return {"model": model, "variables": variables, "stats": stats, "test_acc": 0.0}


def _config(param, objective):
    cfg = C.base_config("digits", 1)
    cfg.dataset.resolution = RES
    cfg.model.name = STUDENT
    cfg.iterations = 1000  # the schedule CFM's curriculum reads; the test runs 2
    cfg.dsa_strategy = "none"  # DSA compiles slowly; the pairs test the wiring
    pm = param_lib.get(param)
    cfg.param = pm.default_config()
    cfg.param.name, cfg.param.ipc = param, 1
    if param == "fred":
        cfg.param.k = 16
    elif param == "ddif":
        cfg.param.width, cfg.param.warmup_steps = 4, 0
    elif param == "nsd":
        cfg.param.t3 = cfg.param.t4 = 2
    if objective == "tm":
        o = cfg.objective
        o.syn_steps, o.expert_epochs, o.max_start_epoch = 2, 1, 1
        o.remat = False
        cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=10.0, momentum=0.5))
    elif objective in ("dm", "dc"):
        cfg.objective = objective_lib.get_module(objective).default_config()
        cfg.objective.batch_real = 4
        if objective == "dc":
            cfg.objective.outer_loop = cfg.objective.inner_loop = 1
            cfg.objective.batch_train = 16
        cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=1.0, momentum=0.5))
    else:
        cfg.objective = objective_lib.get_module("cfm").default_config()
        cfg.objective.teacher.name = TEACHER
        cfg.objective.jitter = 1
        cfg.dsa_strategy = "none"
        cfg.opt.syn = ml_collections.ConfigDict(dict(
            name="adam", lr=0.05, b1=0.5, b2=0.9, schedule="cosine", decay_steps=10,
            per_instance=param != "nsd"))
    return cfg


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("param", PARAMS)
def test_pair_runs_two_iterations(param, objective, data, student, request):
    tr, te = data
    # built once, on first use (module scope)
    trajectories = request.getfixturevalue("trajectories") if objective == "tm" else None
    teacher = request.getfixturevalue("teacher") if objective == "cfm" else None
    model, apply_fn = student
    cfg = _config(param, objective)
    pm = param_lib.get(param)
    params, aux = pm.init(jax.random.PRNGKey(3), images_by_class(tr), cfg.param)
    setup = Setup(cfg=cfg, model=model, apply_fn=apply_fn, train_ds=tr, test_ds=te,
                  trajectories=trajectories, progress=False, teacher=teacher,
                  syn_labels=np.asarray(aux["labels"]))
    obj = objective_lib.get_builder(objective)(setup)
    step, init_state = outer_step.make_step(pm, aux, obj, cfg)
    state = init_state(jax.random.PRNGKey(4), params, cfg.opt.lr.init)
    p0 = state.syn_params
    for _ in range(2):
        state, m = step(state, obj.data)
        assert np.isfinite(float(m["loss"])), (param, objective, m)
        assert np.isfinite(float(m["grad_norm_syn"])), (param, objective, m)
    assert int(state.step) == 2
    moved = max(float(jnp.max(jnp.abs(a - b)))
                for a, b in zip(jax.tree.leaves(state.syn_params), jax.tree.leaves(p0)))
    assert moved > 0, (param, objective)
