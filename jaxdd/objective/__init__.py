"""Objectives: what the synthetic set must match (TM, DM, DC, CFM).

Each objective module exposes
  * `make_loss(...)` -> a pure `loss(key, syn_images, syn_labels, ctx) -> scalar`, and
  * `build(setup: Setup) -> Objective`: what the generic loop in `jaxdd.distill` needs, from
    the pieces the LOOP prepared (config, student network, real data and, for TM, the expert
    trajectories). Objectives never import the loop (distill / evaluate / experts) nor the
    parameterizations; the loop loads or builds what they need (tests/test_imports.py).
  * optionally `trajectory_epochs(objective_cfg) -> int`: the objective consumes expert
    trajectories, epochs 0..N-1 of them; the loop loads (or builds) them into
    `setup.trajectories`.
  * optionally `needs_teacher(objective_cfg) -> bool`: the objective reads a trained
    teacher and the real statistics through it (CFM); the loop prepares them
    (`jaxdd.teacher.prepare_teacher`: squeeze + statistics, cached) into `setup.teacher`.
  * optionally `evaluation_protocol(objective_cfg) -> str`: how its sets are scored
    (`jaxdd.evaluators`; default 'hard_label'; CFM: 'soft_label', the teacher relabels).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np


def pad_groups(groups: Sequence, width: int | None = None):
    """Ragged integer index groups -> (idx (G, width) int32, mask (G, width) float32) numpy
    arrays: row g holds groups[g] followed by index 0 with mask 0. width None: the longest
    group (at least 1). Used for static class groups (DC) and explicit minibatch orders (TM)."""
    groups = [np.asarray(g, np.int64).reshape(-1) for g in groups]
    width = max(1, max((len(g) for g in groups), default=1)) if width is None else int(width)
    idx = np.zeros((len(groups), width), np.int32)
    mask = np.zeros((len(groups), width), np.float32)
    for i, g in enumerate(groups):
        idx[i, :len(g)] = g
        mask[i, :len(g)] = 1.0
    return idx, mask


class Objective(NamedTuple):
    """What the distillation loop needs from an objective.

    loss(key, syn_images, syn_labels, ctx) -> scalar (pure);
    sample_ctx(key, syn_lr, data, obj_state) -> ctx: ONE signature for every objective;
      jit-able, draws the per-iteration context from `data` (expert trajectories, real
      images, ...) and the objective's carried state (() when it has none); when ctx has a
      `syn_lr` field the loop substitutes the differentiated syn_lr into it;
    data: a pytree of device arrays passed to the jitted step as an argument;
    learn_lr: whether syn_lr is optimized (TM) or stays the evaluation lr (DM/DC).

    Stateful objectives (DC trains its network between outer steps) also give
    init_state(key) -> obj_state (a pytree, checkpointed with the run) and
    post_step(key, obj_state, syn_images, syn_labels, data, step) -> obj_state, run inside
    the same jitted step after the synthetic update (images are stop-gradient'ed).

    select(step) -> int indices (k,) (optional, jit-able): the instances the loop decodes
    (and updates) at iteration `step`; it replaces the loop's random `decode_subset`
    (CFM: the class-batch of its curriculum).

    feed(key) -> pytree of numpy arrays (optional, host side, NOT jitted): per-iteration
    inputs too large to keep on the devices (TM: the start and target snapshots of the
    expert trajectories, which stay in host memory). `key` is the same context key
    sample_ctx receives; the loop calls feed outside the jitted step (one iteration ahead,
    copying to the devices in the background: `jaxdd.sharding.Prefetcher`) and hands
    sample_ctx `{**data, **feed(key)}` as its data.
    """
    loss: Callable
    sample_ctx: Callable
    data: Any
    learn_lr: bool = True
    init_state: Callable | None = None
    post_step: Callable | None = None
    select: Callable | None = None
    feed: Callable | None = None


class Setup(NamedTuple):
    """What the loop hands an objective's `build` (complete, read-only; not the Run).

    cfg: the run's ConfigDict (cfg.objective, cfg.dsa_strategy, cfg.param.ipc, ...);
    model / apply_fn: the student network and `(params, images) -> logits` (train mode);
    train_ds / test_ds: the datasets (`.images`, `.labels`, `.num_classes`, `.image_shape`);
    trajectories: expert trajectories, a params pytree with leaves (experts, epochs, ...),
      loaded by the loop when the objective has `trajectory_epochs` (else None);
    progress: whether long work may show progress bars;
    teacher: dict(model, variables, stats, test_acc) prepared by the loop when the objective
      has `needs_teacher` (CFM), else None;
    syn_labels: the labels of the synthetic instances (numpy, `aux['labels']`);
    mesh: the run's `jax.sharding.Mesh` (`jaxdd.sharding`), None on one device: objectives
      split their real batches and the student minibatch over it.
    """
    cfg: Any
    model: Any
    apply_fn: Callable
    train_ds: Any
    test_ds: Any = None
    trajectories: Any = None
    progress: bool = True
    teacher: Any = None
    syn_labels: Any = None
    mesh: Any = None


_MODULES = {"tm": "jaxdd.objective.tm", "dm": "jaxdd.objective.dm", "dc": "jaxdd.objective.dc",
            "cfm": "jaxdd.objective.cfm"}


def available():
    return sorted(_MODULES)


def get_module(name: str):
    """The module of objective `name` (its `build`, `make_loss`, ...)."""
    if name.lower() not in _MODULES:
        raise ValueError(f"unknown objective {name!r}; available: {available()}")
    return importlib.import_module(_MODULES[name.lower()])


def get_builder(name: str) -> Callable:
    """The `build(setup) -> Objective` function of objective `name`."""
    return get_module(name).build


def trajectory_epochs(name: str, objective_cfg) -> int | None:
    """Expert epochs 0..N-1 the objective reads (None: it needs no trajectories)."""
    fn = getattr(get_module(name), "trajectory_epochs", None)
    return None if fn is None else int(fn(objective_cfg))


def needs_teacher(name: str, objective_cfg) -> bool:
    """Whether the loop must prepare `Setup.teacher` (a trained teacher + real statistics)."""
    fn = getattr(get_module(name), "needs_teacher", None)
    return False if fn is None else bool(fn(objective_cfg))


def evaluation_protocol(name: str, objective_cfg) -> str:
    """The evaluation protocol a set made by this objective is scored with
    (`jaxdd.evaluators.PROTOCOLS`): the module's `evaluation_protocol(cfg)`, else
    'hard_label' (the standard protocol)."""
    fn = getattr(get_module(name), "evaluation_protocol", None)
    return "hard_label" if fn is None else str(fn(objective_cfg))
