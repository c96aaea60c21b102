"""Parity: jaxdd's TM loss == one MTT distill.py iteration -- loss, d/d images, d/d syn_lr.

Fixture tests/parity/fixtures/mtt_tm.npz (tests/parity/make_mtt_tm.py): the authors'
ConvNet (width 8, depth 2, 3x16x16) in their ReparamModule, 10 synthetic images, start and
target flat parameter vectors, syn_lr 0.02, syn_steps 4, batch_syn 4 with the minibatch
order MTT drew (chunks of 2, 4, 4 from one permutation -- the short chunk popped first --
then 2 from the next), no DSA; the loss (with MTT's / num_params on both sums) and its
gradients w.r.t. the images and syn_lr.

jaxdd: ``tm.make_loss(...).with_schedule`` on the same order (``tm.schedule_from_chunks``
pads the short chunks and masks them out of the mean CE), flat vectors converted with
``jaxdd.models.from_torch_flat``; remat on and off.

`test_production_objective_matches_authors` runs the same fixture through the path the
distillation loop uses: a published TM config (configs/tm_pixel.py) with the fixture's tiny
sizes, the objective built by ``jaxdd.assemble.build_objective`` (the run assembly's call,
the objective builder of ``cfg.objective.name``) from a one-expert trajectory (start,
target), ``feed`` / ``sample_ctx`` / ``loss(key, ...)`` differentiated as the outer step
does (``jaxdd.outer_step``: syn_lr substituted into the context). The only seam: the
minibatch order ``loss`` draws (``tm.mtt_schedule``, checked against MTT's chunking by
`test_mtt_schedule_has_the_authors_structure`) returns the order the authors drew.

Tolerances (float32, 4 unrolled steps differentiated to second order): loss rtol 1e-5;
d/d syn_lr rtol 1e-4; d/d images rtol 1e-4 + atol 1e-4 * max|g|.  Measured (both conv
implementations): loss 1.2e-7 relative, d/d syn_lr <= 2.1e-7 relative, d/d images
max difference 4.2e-7 * max|g|.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import importlib.util
import os
import types

from jaxdd import assemble
from jaxdd.models import from_torch_flat, get_model, to_torch_flat
from jaxdd.objective import tm
from parity.common import load_fixture

FIX = load_fixture("mtt_tm")

# XLA:CPU spends ~11 s optimizing the second-order graph of this tiny unroll and ~5 s at
# backend optimization level 0 (same operations, the LLVM passes are skipped); the tests use
# the cheaper compile to stay fast on 2 CI cores.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@pytest.fixture(autouse=True)
def _highest_precision():
    with jax.default_matmul_precision("highest"):
        yield


def _setup():
    x = np.transpose(FIX["images"], (0, 2, 3, 1))
    model = get_model("ConvNetD2W8", 10)
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])["params"]
    start = from_torch_flat(template, FIX["start"])
    target = from_torch_flat(template, FIX["target"])
    np.testing.assert_array_equal(to_torch_flat(start), FIX["start"])  # layout round trip
    assert int(FIX["num_params"]) == FIX["start"].size
    chunks = [row[row >= 0] for row in FIX["chunks"]]
    return model, x, start, target, chunks


@pytest.mark.parametrize("remat", [False, True])
def test_tm_loss_and_gradients_match_authors(remat):
    model, x, start, target, chunks = _setup()
    assert [len(c) for c in chunks] == [2, 4, 4, 2]   # MTT pops the short chunk first
    idx, w = tm.schedule_from_chunks(chunks, int(FIX["batch_syn"]))
    loss = tm.make_loss(lambda p, v: model.apply({"params": p}, v, train=True),
                        syn_steps=int(FIX["syn_steps"]), batch_syn=int(FIX["batch_syn"]),
                        augment=None, remat=remat)
    labels = jnp.asarray(FIX["labels"])

    def f(images, syn_lr):
        ctx = tm.TMContext(start=start, target=target, syn_lr=syn_lr)
        return loss.with_schedule(idx, w, images, labels, ctx)

    grad_fn = jax.jit(jax.value_and_grad(f, argnums=(0, 1)), compiler_options=FAST_COMPILE)
    val, (gx, gl) = grad_fn(jnp.asarray(x), jnp.float32(FIX["syn_lr"]))
    np.testing.assert_allclose(val, FIX["loss"], rtol=1e-5)
    np.testing.assert_allclose(gl, FIX["grad_syn_lr"], rtol=1e-4)
    want = np.transpose(FIX["grad_images"], (0, 2, 3, 1))
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(gx, want, rtol=1e-4, atol=1e-4 * scale)
    # every image was in a minibatch, so every image has a gradient
    assert np.all(np.abs(want).reshape(len(want), -1).max(1) > 0)


def test_padding_is_masked_not_averaged():
    """Same order without the mask (padded slots counted in the mean) is NOT MTT."""
    model, x, start, target, chunks = _setup()
    idx, w = tm.schedule_from_chunks(chunks, int(FIX["batch_syn"]))
    loss = tm.make_loss(lambda p, v: model.apply({"params": p}, v, train=True),
                        syn_steps=int(FIX["syn_steps"]), batch_syn=int(FIX["batch_syn"]),
                        remat=False)
    ctx = tm.TMContext(start=start, target=target, syn_lr=jnp.float32(FIX["syn_lr"]))
    unmasked = jax.jit(lambda: loss.with_schedule(idx, np.ones_like(w), jnp.asarray(x),
                                                  jnp.asarray(FIX["labels"]), ctx),
                       compiler_options=FAST_COMPILE)()
    assert abs(float(unmasked) - float(FIX["loss"])) > 1e-4


def test_mtt_schedule_has_the_authors_structure():
    """tm.mtt_schedule (what the loss draws) = MTT's pop-from-the-end chunking of fresh
    permutations, checked against a re-statement of distill.py:342-348 on the same perms."""
    n, b, steps = 10, 4, 7
    key = jax.random.PRNGKey(4)
    idx, w = (np.asarray(a) for a in tm.mtt_schedule(key, n, steps, b))
    k_chunks = -(-n // b)
    perms = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, n))(
        jax.random.split(key, -(-steps // k_chunks))))
    chunks, ref = [], []
    pi = 0
    for _ in range(steps):
        if not chunks:
            chunks = [perms[pi][i:i + b] for i in range(0, n, b)]
            pi += 1
        ref.append(chunks.pop())
    ridx, rw = tm.schedule_from_chunks(ref, b)
    np.testing.assert_array_equal(w, rw)
    np.testing.assert_array_equal(idx * (w > 0), ridx)
    # divisible case: no mask, full chunks
    idx2, w2 = tm.mtt_schedule(key, 8, 5, 4)
    assert w2 is None and idx2.shape == (5, 4)


def _published_tm_config():
    """configs/tm_pixel.py's MTT CIFAR-10 IPC 10 row, resized to the fixture: syn_steps 4,
    batch_syn 4, one expert epoch from start epoch 0, DSA off (the fixture's args.dsa
    False), one device. remat, microbatch and gamma stay the config's."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("_tm_tm_pixel",
                                                  os.path.join(root, "configs", "tm_pixel.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config("cifar10,ipc=10")
    o = cfg.objective
    o.syn_steps, o.batch_syn = int(FIX["syn_steps"]), int(FIX["batch_syn"])
    o.expert_epochs, o.max_start_epoch = 1, 1
    cfg.dsa_strategy = "none"
    cfg.mesh.data = 1
    return cfg


def test_production_objective_matches_authors(monkeypatch):
    """objective.loss as the loop builds and differentiates it == the authors' iteration."""
    model, x, start, target, chunks = _setup()
    idx, w = tm.schedule_from_chunks(chunks, int(FIX["batch_syn"]))
    drawn = []

    def authors_order(key, n, syn_steps, batch_syn):
        drawn.append((int(n), int(syn_steps), int(batch_syn)))
        return jnp.asarray(idx), jnp.asarray(w)

    monkeypatch.setattr(tm, "mtt_schedule", authors_order)
    cfg = _published_tm_config()
    assert cfg.objective.name == "tm" and float(cfg.objective.get("gamma", 0.0)) == 0.0
    labels = np.asarray(FIX["labels"])
    trajs = jax.tree.map(lambda a, b: np.stack([np.asarray(a), np.asarray(b)])[None],
                         start, target)  # (experts 1, epochs 2, ...)
    train_ds = types.SimpleNamespace(images=x, labels=labels, num_classes=10,
                                     image_shape=x.shape[1:])
    obj = assemble.build_objective(cfg, model, train_ds, mesh=None, trajectories=trajs,
                                   syn_labels=labels, progress=False)
    assert obj.learn_lr and obj.feed is not None

    k_ctx, k_loss = jax.random.split(jax.random.PRNGKey(7))
    data = {**obj.data, **obj.feed(k_ctx)}  # host-drawn (start, target): expert 0, epoch 0
    ctx = obj.sample_ctx(k_ctx, jnp.float32(FIX["syn_lr"]), data, ())
    jax.tree.map(np.testing.assert_array_equal, ctx.start, start)
    jax.tree.map(np.testing.assert_array_equal, ctx.target, target)

    def objective_value(images, syn_lr):  # jaxdd.outer_step's objective_value
        return obj.loss(k_loss, images, jnp.asarray(labels), ctx._replace(syn_lr=syn_lr))

    grad_fn = jax.jit(jax.value_and_grad(objective_value, argnums=(0, 1)),
                      compiler_options=FAST_COMPILE)
    val, (gx, gl) = grad_fn(jnp.asarray(x), jnp.float32(FIX["syn_lr"]))
    assert drawn == [(len(x), int(FIX["syn_steps"]), int(FIX["batch_syn"]))], drawn
    np.testing.assert_allclose(val, FIX["loss"], rtol=1e-5)
    np.testing.assert_allclose(gl, FIX["grad_syn_lr"], rtol=1e-4)
    want = np.transpose(FIX["grad_images"], (0, 2, 3, 1))
    np.testing.assert_allclose(gx, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
