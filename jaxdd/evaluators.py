"""Declared evaluation protocols: the loop iterates them, it never branches on an objective.

    evals = evaluators.from_config(cfg)          # [Evaluator], each with its own schedule
    ctx   = evaluators.Context(model, train_ds, test_ds, cfg, teacher, mesh, progress)
    for ev in evals:
        if ev.due(step, total): result = ev.run(ctx, key, images, labels, syn_lr, step)

Protocols (`PROTOCOLS`):
  hard_label    the standard protocol (MTT `evaluate_synset`): K fresh networks trained on
                the set's hard labels with the learned syn_lr, SGD momentum 0.9, weight decay
                5e-4, DSA, lr / 10 halfway (`jaxdd.evaluate.evaluate_synthetic`);
  soft_label    relabelling (UniDD / SRe2L): students on a teacher's soft labels, KL at
                temperature T, CutMix, AdamW (`jaxdd.teacher.evaluate_soft`); needs a teacher;
  random_real   the baseline: the same number of real images per class, scored with the
                run's main protocol (hard or soft labels as the set is);
  cross_arch    the set's main protocol with other networks (`models`), final only.

The config's optional `evals` block declares them, one sub-block per evaluator:
`evals.<name> = {protocol, every, final, num_nets, epochs, models}`; absent fields come from
`cfg.eval`. Without an `evals` block the run gets its objective's declared protocol
(`jaxdd.objective.evaluation_protocol`: soft_label for CFM, hard_label otherwise) on
`cfg.eval`'s schedule, plus `random_real` at the end when `cfg.eval.random_real_baseline`.
The protocol a set was made for is stored in its metadata (`meta['evaluation']`) and is the
default of `launch/evaluate.py` and `launch/cross_arch.py`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PROTOCOLS = ("hard_label", "soft_label", "random_real", "cross_arch")


class Context(NamedTuple):
    """What an evaluator reads of the run (read-only)."""
    model: Any
    train_ds: Any
    test_ds: Any
    cfg: Any
    teacher: Any = None
    mesh: Any = None
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """One declared evaluation: `protocol` on the schedule (`every` iterations, 0: never
    during the run; `final`: at the end), with `num_nets` x `epochs`."""
    name: str
    protocol: str
    main: str  # the set's main protocol (what random_real / cross_arch score with)
    every: int = 0
    final: bool = True
    num_nets: int = 5
    final_nets: int = 5
    epochs: int = 1000
    models: tuple = ()

    def due(self, step: int, total: int) -> bool:
        """Due at `step` during the run (iteration 0 and every `every`, not at the end)."""
        return bool(self.every) and step % self.every == 0 and step < total

    def run(self, ctx: Context, key, images, labels, syn_lr, *, final=False, desc=None):
        """Score the set -> EvalResult (`cross_arch`: {model: EvalResult})."""
        nets = self.final_nets if final else self.num_nets
        desc = desc or self.name
        if self.protocol == "cross_arch":
            return {m: _score(self.main, ctx, jax.random.fold_in(key, i), images, labels,
                              syn_lr, nets, self.epochs, desc=f"{desc}:{m}", model=m)
                    for i, m in enumerate(self.models)}
        if self.protocol == "random_real":
            return _random_real(self.main, ctx, key, nets, self.epochs, desc=desc)
        return _score(self.protocol, ctx, key, images, labels, syn_lr, nets, self.epochs,
                      desc=desc)


def _score(protocol, ctx, key, images, labels, lr, num_nets, epochs, *, desc, model=None):
    cfg, e = ctx.cfg, ctx.cfg.eval
    net = ctx.model
    if model is not None:
        from jaxdd.models import get_model
        net = get_model(model, ctx.train_ds.num_classes)
    if protocol == "soft_label":
        if ctx.teacher is None:
            raise ValueError("the soft_label protocol needs a teacher (a CFM run's "
                             "teacher.msgpack); none was prepared for this run")
        from jaxdd.teacher import evaluate_soft
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)  # evaluate_soft splits typed keys
        return evaluate_soft(
            key, net, ctx.teacher["model"], ctx.teacher["variables"], images,
            ctx.test_ds.images, ctx.test_ds.labels, num_nets=int(num_nets),
            epochs=int(epochs), batch_size=int(e.batch_size), lr=float(e.lr),
            weight_decay=float(e.weight_decay), temperature=float(e.temperature),
            cutmix_alpha=float(e.cutmix_alpha), rrc_scale=tuple(e.rrc_scale),
            flip=bool(e.flip), schedule=e.schedule, t2_scale=bool(e.get("t2_scale", False)),
            progress=ctx.progress, desc=desc)
    if protocol != "hard_label":
        raise ValueError(f"unknown evaluation protocol {protocol!r}; known: {PROTOCOLS}")
    from jaxdd.evaluate import evaluate_synthetic
    return evaluate_synthetic(
        key, net, images, np.asarray(labels), ctx.test_ds.images, ctx.test_ds.labels,
        lr=float(lr), num_nets=int(num_nets), epochs=int(epochs),
        batch_size=int(e.get("batch_size", 256)), dsa_strategy=cfg.dsa_strategy,
        share_dsa_ops=bool(e.get("share_dsa_ops", False)), progress=ctx.progress,
        desc=desc, mesh=ctx.mesh)


def _random_real(main, ctx, key, num_nets, epochs, *, desc):
    """`ipc` random real images per class scored like the set (hard labels: each network
    its own subset, lr = the experts' lr_teacher; soft labels: one subset, the teacher's
    labels)."""
    ipc = int(ctx.cfg.param.ipc)
    if main == "soft_label":
        from jaxdd.data import random_real
        xr, yr = random_real(jax.random.fold_in(key, 2**31 - 2), ctx.train_ds, ipc)
        return _score(main, ctx, jax.random.fold_in(key, 2**31 - 1), xr, yr, 0.0, num_nets,
                      epochs, desc=desc)
    from jaxdd.evaluate import evaluate_random_real
    e = ctx.cfg.eval
    return evaluate_random_real(
        jax.random.fold_in(key, 2**31 - 1), ctx.model, ctx.train_ds, ctx.test_ds, ipc,
        lr=float(ctx.cfg.buffer.lr_teacher), num_nets=int(num_nets), epochs=int(epochs),
        batch_size=int(e.get("batch_size", 256)), dsa_strategy=ctx.cfg.dsa_strategy,
        progress=ctx.progress, share_dsa_ops=bool(e.get("share_dsa_ops", False)), desc=desc,
        mesh=ctx.mesh)


def describe_protocol(protocol, cfg) -> str:
    """The protocol as result.json states it (soft labels: not comparable with hard)."""
    if protocol == "soft_label":
        return ("soft_label: teacher soft labels (KL, T=%g, CutMix, AdamW); NOT comparable "
                "with the hard-label protocol" % float(cfg.eval.temperature))
    return protocol


def main_protocol(cfg) -> str:
    """The protocol the run's set is made for: `evals.main.protocol` when declared, else the
    objective's declared one (`jaxdd.objective.evaluation_protocol`)."""
    ev = cfg.get("evals", None)
    if ev is not None and "main" in ev and ev.main.get("protocol"):
        return str(ev.main.protocol)
    from jaxdd import objective
    return objective.evaluation_protocol(cfg.objective.name, cfg.objective)


def from_config(cfg) -> list[Evaluator]:
    """The run's declared evaluators, the main one first (module docstring)."""
    e = cfg.eval
    main = main_protocol(cfg)
    base = dict(every=int(e.get("every", 0) or 0), final=bool(e.get("final", True)),
                num_nets=int(e.get("num_nets", 5)),
                final_nets=int(e.get("final_nets") or e.get("num_nets", 5)),
                epochs=int(e.get("epochs", 1000)))
    declared = cfg.get("evals", None)
    if declared is None:
        out = [Evaluator("main", main, main, **base)]
        if bool(e.get("random_real_baseline", False)):
            out.append(Evaluator("random_real", "random_real", main,
                                 **{**base, "every": 0}))
        return out
    out = []
    for name in sorted(declared.keys(), key=lambda n: (n != "main", n)):
        d = declared[name]
        proto = str(d.get("protocol", main if name == "main" else name))
        if proto not in PROTOCOLS:
            raise ValueError(f"evals.{name}.protocol = {proto!r}; known: {PROTOCOLS}")
        fields = {k: type(v)(d[k]) for k, v in base.items() if k in d and d[k] is not None}
        models = tuple(d.get("models", ()) or ())
        if proto == "cross_arch" and not models:
            raise ValueError(f"evals.{name}: a cross_arch evaluator needs `models`")
        every = 0 if proto in ("random_real", "cross_arch") else fields.pop("every",
                                                                            base["every"])
        fields.pop("every", None)
        out.append(Evaluator(name, proto, main, **{**base, **fields, "every": every},
                             models=models))
    if not out or out[0].name != "main":
        out.insert(0, Evaluator("main", main, main, **base))
    return out


def describe(result) -> dict:
    """JSON-able form of an evaluator's result."""
    if isinstance(result, dict):
        return {k: v.to_dict() for k, v in result.items()}
    return result.to_dict()


def stored_protocol(meta) -> str:
    """The protocol a saved set was made for (`meta['evaluation']['protocol']`; sets saved
    before it was recorded: soft_label for CFM sets, else hard_label)."""
    ev = (meta or {}).get("evaluation") or {}
    if ev.get("protocol"):
        return str(ev["protocol"])
    return "soft_label" if (meta or {}).get("objective") == "cfm" else "hard_label"


def load_teacher(meta, num_classes: int):
    """The teacher a soft-label set is scored with, from its metadata
    (`meta['evaluation']['teacher']`: the teacher.msgpack the run cached, network name and
    overrides) -> dict(model, variables, test_acc)."""
    from jaxdd.io import load_tree
    from jaxdd.models import get_model
    import os

    t = ((meta or {}).get("evaluation") or {}).get("teacher")
    if not t:
        raise ValueError("this set is scored with soft labels, but its metadata names no "
                         "teacher (meta.evaluation.teacher): pass --protocol=hard_label to "
                         "score it with hard labels instead (not comparable)")
    path = t["path"]
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"the set's teacher {path} (recorded in meta.evaluation.teacher) is missing: "
            f"re-run the distill command on the set's workdir to rebuild it, or pass "
            f"--protocol=hard_label (not comparable)")
    d = load_tree(path)
    model = get_model(str(t["name"]), int(num_classes), **dict(t.get("overrides") or {}))
    return {"model": model, "variables": jax.tree.map(jnp.asarray, d["variables"]),
            "test_acc": float(d.get("test_acc", t.get("test_acc", float("nan"))))}


def score_saved(protocol, meta, key, net, images, labels, lr, train, test, *, num_nets,
                epochs, progress=False, desc="evaluate", **eval_kwargs):
    """Score a saved set's decoded images with `protocol` (hard_label or soft_label), the
    evaluation settings stored with it (`meta['evaluation']['eval']`) where it has them."""
    if protocol == "hard_label":
        from jaxdd.evaluate import evaluate_synthetic
        return evaluate_synthetic(key, net, images, labels, test.images, test.labels,
                                  lr=float(lr), num_nets=int(num_nets), epochs=int(epochs),
                                  progress=progress, desc=desc, **eval_kwargs)
    if protocol != "soft_label":
        raise ValueError(f"protocol {protocol!r}: a saved set is scored with hard_label or "
                         f"soft_label")
    import ml_collections
    stored = ((meta or {}).get("evaluation") or {}).get("eval") or {}
    cfg = ml_collections.ConfigDict({"eval": stored, "dsa_strategy": None})
    ctx = Context(net, train, test, cfg, load_teacher(meta, train.num_classes), None,
                  progress)
    return _score("soft_label", ctx, key, images, labels, lr, num_nets, epochs, desc=desc)
