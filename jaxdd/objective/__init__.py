"""Objectives: what the synthetic set must match (TM, DM, DC; CFM has its own pipeline).

Each objective module exposes
  * `make_loss(...)` -> a pure `loss(key, syn_images, syn_labels, ctx) -> scalar`, and
  * `build(run) -> Objective`: what the generic loop in `jaxdd.distill` needs, built from a
    run object that has `.cfg`, `.train_ds`, `.test_ds`, `.model`, `.apply_fn`,
    `.progress` (duck-typed; objectives never import `jaxdd.param` or `jaxdd.distill`).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple


class Objective(NamedTuple):
    """What the distillation loop needs from an objective.

    loss(key, syn_images, syn_labels, ctx) -> scalar (pure);
    sample_ctx(key, syn_lr, data) -> ctx: jit-able, draws the per-iteration context from
      `data` (expert trajectories, real images, ...); when ctx has a `syn_lr` field the
      loop substitutes the differentiated syn_lr into it;
    data: a pytree of device arrays passed to the jitted step as an argument;
    learn_lr: whether syn_lr is optimized (TM) or stays the evaluation lr (DM/DC).

    Stateful objectives (DC trains its network between outer steps) also give
    init_state(key) -> obj_state (a pytree, checkpointed with the run) and
    post_step(key, obj_state, syn_images, syn_labels, data, step) -> obj_state, run inside
    the same jitted step after the synthetic update (images are stop-gradient'ed); their
    sample_ctx takes obj_state as a 4th argument.
    """
    loss: Callable
    sample_ctx: Callable
    data: Any
    learn_lr: bool = True
    init_state: Callable | None = None
    post_step: Callable | None = None


_MODULES = {"tm": "jaxdd.objective.tm", "dm": "jaxdd.objective.dm", "dc": "jaxdd.objective.dc"}


def available():
    return sorted(_MODULES)


def get_builder(name: str) -> Callable:
    """The `build(run) -> Objective` function of objective `name`."""
    if name.lower() not in _MODULES:
        raise ValueError(f"unknown objective {name!r}; available: {available()}")
    return importlib.import_module(_MODULES[name.lower()]).build
