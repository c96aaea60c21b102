"""Parity: jaxdd's evaluation trainer vs MTT's utils.evaluate_synset (fixture: make_eval.py).

Same initial weights, data and minibatch order, DSA off, epoch_eval_train 4 (5 passes, lr
/10 and a fresh optimizer after pass 3). 15 SGD steps in float32: final parameters within
rtol 1e-5 / atol 2e-6 (a few float32 ulps accumulated over the steps), test accuracy exact.

`test_distill_evaluation_matches_authors` compares what the distillation loop itself runs:
``jaxdd.distill.Run.evaluate`` (called unbound on a stand-in run holding the fixture's set
and lr, and the evaluators and evaluation context Run builds from a published config,
``jaxdd.evaluators.from_config`` / ``Context``) -> the main 'hard_label' evaluator ->
``jaxdd.evaluate.evaluate_synthetic`` with its OWN defaults (momentum, weight decay,
schedule). Only two inputs are pinned through a seam
(``make_eval_trainer`` wrapped, the real trainer built with the arguments
evaluate_synthetic passes): the initial parameters (the authors' torch init) and the
minibatch order (the authors' permutations). The optimizer arguments evaluate_synthetic
chose are also compared with the ones the authors' evaluate_synset passed to
torch.optim.SGD (``authors_sgd``, recorded by the generator).
"""
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from parity.common import load_fixture
from jaxdd import evaluate as E
from jaxdd import evaluators as evaluators_lib
from jaxdd.distill import Run
from jaxdd.evaluate import (accuracy, authors_schedule, make_eval_fns, train_schedule)
from jaxdd.models import get_model


@pytest.fixture(scope="module")
def fx():
    return load_fixture("eval")


def _to_jax(t):
    """MTT ConvNet depth 2 parameters (net.parameters() order) -> jaxdd ConvNet params."""
    p = {}
    for d in range(2):
        w, b, nw, nb = t[4 * d: 4 * d + 4]
        p[f"conv_{d}"] = {"kernel": np.transpose(w, (2, 3, 1, 0)), "bias": b}
        p[f"norm_{d}"] = {"scale": nw, "bias": nb}
    w, b = t[8], t[9]
    c = p["conv_1"]["kernel"].shape[-1]
    side = int(round((w.shape[1] // c) ** 0.5))
    # PyTorch flattens (C, H, W); jaxdd (H, W, C)
    k = w.reshape(w.shape[0], c, side, side).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
    p["classifier"] = {"kernel": k, "bias": b}
    return p


def _run(fx, reset=True, drop_after=None):
    x = np.transpose(fx["x"], (0, 2, 3, 1))
    y = fx["y"].astype(np.int32)
    n, k = x.shape[0], int(fx["y"].max()) + 1
    model = get_model("ConvNetD2W8", k)
    init_all, train_epochs, correct = make_eval_fns(
        model, num_train=n, batch_size=int(fx["batch"]), dsa_strategy="none")
    template, _ = init_all(jax.random.split(jax.random.PRNGKey(0), 1), jnp.asarray(x[:1]))
    p0 = _to_jax([fx[f"init_{i}"] for i in range(10)])
    jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape[1:], b.shape), template, p0)
    params = jax.tree.map(lambda a: jnp.asarray(a)[None], p0)
    epochs = int(fx["epochs"])
    perms = jnp.asarray(fx["perms"])[None]
    keys = jax.random.split(jax.random.PRNGKey(1), epochs + 1)[None]
    op_keys = jax.random.split(jax.random.PRNGKey(2), epochs + 1)
    opt = train_epochs.reset_momentum(params)
    lr = float(fx["lr"])
    if reset and drop_after is None:
        params, _ = train_schedule(train_epochs, params, opt, keys, op_keys, jnp.asarray(x),
                                   jnp.asarray(y), lr=lr, epochs=epochs, perms=perms)
    else:  # variants of the schedule, to show the test tells them apart
        n1 = authors_schedule(epochs)[0] if drop_after is None else drop_after
        params, opt = train_epochs(params, opt, keys, op_keys, jnp.asarray(x), jnp.asarray(y),
                                   jnp.float32(lr), n1, perms=perms)
        if reset:
            opt = train_epochs.reset_momentum(params)
        params, _ = train_epochs(params, opt, keys, op_keys, jnp.asarray(x), jnp.asarray(y),
                                 jnp.float32(lr * 0.1), epochs + 1 - n1, start=n1, perms=perms)
    xt = jnp.asarray(np.transpose(fx["x_test"], (0, 2, 3, 1)))
    acc = accuracy(correct, params, xt, jnp.asarray(fx["y_test"].astype(np.int32)))
    return jax.tree.map(lambda a: np.asarray(a[0]), params), float(acc[0])


def test_schedule_rule():
    assert authors_schedule(1000) == (502, 499)
    assert authors_schedule(4) == (4, 1)
    assert authors_schedule(1) == (2, 0) and authors_schedule(0) == (1, 0)


def test_evaluation_trainer_matches_authors(fx):
    got, acc = _run(fx)
    want = _to_jax([fx[f"final_{i}"] for i in range(10)])
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6), got,
                 want)
    assert acc == pytest.approx(float(fx["acc_test"]) / 1.0, abs=1e-9)


@pytest.mark.parametrize("variant", [dict(reset=False), dict(drop_after=2)])
def test_other_schedules_are_told_apart(fx, variant):
    """Keeping the momentum across the drop, or dropping after pass epochs // 2 (jaxdd's
    former schedule), moves the parameters far beyond the tolerance above."""
    got, _ = _run(fx, **variant)
    want = _to_jax([fx[f"final_{i}"] for i in range(10)])
    diff = max(float(np.max(np.abs(g - w))) for g, w in
               zip(jax.tree.leaves(got), jax.tree.leaves(want)))
    assert diff > 1e-4


def _published_config():
    """A published TM config as the loop reads it (configs/tm_pixel.py, MTT CIFAR-10 IPC 10),
    its eval block set to the fixture's tiny schedule, DSA off as in the fixture."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("_eval_tm_pixel",
                                                  os.path.join(root, "configs", "tm_pixel.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config("cifar10,ipc=10")


def _distill_evaluate(fx, monkeypatch):
    """Run.evaluate (the loop's call) on the fixture -> (final params, EvalResult, the
    make_eval_trainer arguments evaluate_synthetic chose)."""
    x = np.transpose(fx["x"], (0, 2, 3, 1))
    k = int(fx["y"].max()) + 1
    model = get_model("ConvNetD2W8", k)
    p0 = jax.tree.map(lambda a: jnp.asarray(a)[None], _to_jax([fx[f"init_{i}"]
                                                               for i in range(10)]))
    order = jnp.asarray(fx["perms"])[None]          # (K = 1, E + 1, N)
    seen = {}
    real = E.make_eval_trainer

    def pinned_trainer(model_, **kw):
        """The real trainer, built with evaluate_synthetic's arguments; the initial
        parameters and the minibatch order are the authors'."""
        seen["kw"] = kw
        fns = real(model_, **kw)

        def init(keys, x0):
            st = fns.init(keys, x0)
            jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), st.params,
                         p0)
            return fns.reset(st.replace(params=p0))  # fresh optimizer for these params

        def run(state, keys, op_keys, images, labels, lr, start, n_epochs,
                per_net_data=False, perms=None):
            assert perms is None  # evaluate_synthetic draws its own order: pinned here
            assert keys.shape[:2] == order.shape[:2], (keys.shape, order.shape)
            out = fns.run(state, keys, op_keys, images, labels, lr, start, n_epochs,
                          per_net_data=per_net_data, perms=order)
            seen["state"] = out
            return out

        return fns._replace(init=init, run=run)

    monkeypatch.setattr(E, "make_eval_trainer", pinned_trainer)
    cfg = _published_config()
    cfg.eval.epochs = int(fx["epochs"])
    cfg.eval.num_nets = cfg.eval.final_nets = 1
    cfg.eval.batch_size = int(fx["batch"])
    cfg.dsa_strategy = "none"   # the fixture: args.dsa False, dc_aug_param None
    test_ds = types.SimpleNamespace(images=np.transpose(fx["x_test"], (0, 2, 3, 1)),
                                    labels=fx["y_test"].astype(np.int32))
    train_ds = types.SimpleNamespace(num_classes=k)
    evaluators = evaluators_lib.from_config(cfg)  # as Run.__init__ builds them
    assert evaluators[0].protocol == "hard_label"
    run = types.SimpleNamespace(
        cfg=cfg, model=model, teacher=None, k_eval=jax.random.PRNGKey(3), progress=False,
        aux={"labels": fx["y"].astype(np.int32)}, decode_all=lambda: jnp.asarray(x),
        state=types.SimpleNamespace(syn_lr=jnp.float32(fx["lr"])), evaluators=evaluators,
        # mesh None: one device, as the fixture's single network
        eval_ctx=evaluators_lib.Context(model, train_ds, test_ds, cfg, None, None, False))
    res = Run.evaluate(run, 0)
    got = jax.tree.map(lambda a: np.asarray(a[0]), seen["state"].params)
    return got, res, seen["kw"]


def test_distill_evaluation_matches_authors(fx, monkeypatch):
    """The evaluation the distillation loop calls (Run.evaluate -> evaluate_synthetic and
    its defaults) trains to the authors' final parameters and test accuracy."""
    got, res, kw = _distill_evaluate(fx, monkeypatch)
    sgd = json.loads(str(fx["authors_sgd"]))
    assert {c["momentum"] for c in sgd} == {kw["momentum"]}, (
        f"evaluate_synthetic trains with momentum {kw['momentum']}; the authors' "
        f"evaluate_synset: {sgd}")
    assert {c["weight_decay"] for c in sgd} == {kw["weight_decay"]}, (
        f"evaluate_synthetic trains with weight_decay {kw['weight_decay']}; the authors' "
        f"evaluate_synset: {sgd}")
    assert kw["batch_size"] == int(fx["batch"]) and kw["dsa_strategy"] == "none"
    assert res.passes == int(fx["epochs"]) + 1
    want = _to_jax([fx[f"final_{i}"] for i in range(10)])
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6), got,
                 want)
    assert res.accs.shape == (1,)
    assert float(res.accs[0]) == pytest.approx(float(fx["acc_test"]), abs=1e-9)
