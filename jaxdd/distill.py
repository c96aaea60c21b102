"""The generic distillation loop: any parameterization x any objective.

    state = init (or resume from the workdir)
    before the loop, the objective's inputs: TM the expert trajectories (loaded or built),
        CFM the teacher and the real statistics (squeeze + statistics, `jaxdd.teacher`, cached)
    repeat:
        key -> objective context (TM: expert + start epoch; DM/DC: fresh network, real batch;
               CFM: teacher, real statistics, EMU cache, curriculum beta)
        images = decode(syn_params, aux, indices=subset or all)
        loss = objective(key, images, labels, ctx);  grads w.r.t. (syn_params, syn_lr)
        optax updates, one optimizer per group (synthetic params; syn_lr)
    every N iterations: evaluate, PNG grid, checkpoint; JSON-lines metrics.

The whole iteration is ONE `jax.jit`-compiled function (`jaxdd.outer_step`). The pieces are
assembled top to bottom by `jaxdd.assemble` (validated data -> mesh -> model ->
parameterization -> the objective's declared inputs -> objective); checkpoints live in
`jaxdd.checkpoints`, the stopping rules in `jaxdd.guards`, evaluation protocols in
`jaxdd.evaluators`. This module is the loop only: it names no parameterization or
objective. The run lives in one workdir:

    workdir/config.json        the config of the run (written once, when the run starts;
                               a resume must match it except jaxdd.fingerprint.RUN_RESUMABLE fields)
    workdir/resume.jsonl       the allowed changes of each resume (append-only)
    workdir/damaged/           unreadable checkpoints set aside (renamed, never deleted)
    workdir/aux.msgpack        the parameterization's static data (written once at init)
    workdir/checkpoints/       Orbax CheckpointManager (synthetic params, syn_lr, optimizer
                               states, PRNG state, iteration)
    workdir/metrics.jsonl      one JSON object per logged iteration / evaluation
    workdir/grids/*.png        decoded synthetic set, one row per class
    workdir/synthetic.msgpack  the final artifact: load with `load_synthetic`
    workdir/teacher.msgpack,   CFM only: the squeezed teacher and the real statistics
    workdir/stats.msgpack      (or in cfg.objective.squeeze.dir, shared between runs)
    workdir/result.json        final evaluation by the declared evaluators (`jaxdd.evaluators`:
                               mean +- std over networks, the headline; CFM: the soft-label
                               protocol), best_over_evaluations (the authors' statistic: best
                               mean over the evaluation points, selected on the test set) and
                               the seconds of each phase

Re-running the same command on the same workdir resumes from the latest checkpoint and
continues the same random sequence (same seed -> same result as an uninterrupted run).
A non-finite loss, gradient or parameter stops the run, names the quantity and keeps the
last good checkpoint; so do exploding synthetic images (RMS > max_image_rms_ratio x the real
images') and a syn_lr that stays <= 0 (`jaxdd.guards`). The config and the data are
validated first (`jaxdd.validate`), before anything is written or trained.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxdd import assemble
from jaxdd import evaluators as evaluators_lib
from jaxdd import guards
from jaxdd import objective as objective_lib
from jaxdd import param as param_lib
from jaxdd.checkpoints import Checkpoints, read_resumable
from jaxdd.io import save_synthetic, save_tree
from jaxdd.outer_step import make_step


def _fault(point):
    from jaxdd.workdir import fault_point
    fault_point(point)


class Run:
    """A distillation run bound to a workdir: build once, then `train()`.

    Pieces are public so a researcher can drive the loop from a notebook:
    `run.step(state, run.objective.data)` is the jitted outer step.

    Order (a failed start never poisons the workdir): validate the config and the data
    (every problem at once, nothing written); check the workdir read-only (the recorded
    config.json must match on every result-changing field, `jaxdd.fingerprint.RUN_RESUMABLE`;
    aux.msgpack must be readable when checkpoints exist); the mesh (once), the model, the
    parameterization; the objective's declared inputs (experts, teacher); then, on a fresh
    start, write config.json, aux.msgpack and checkpoint 0. A damaged latest checkpoint is
    set aside (workdir/damaged/) and the previous one used.
    """

    def __init__(self, cfg: ml_collections.ConfigDict, workdir: str, *, progress=True,
                 build_objective: Callable | None = None):
        from jaxdd import workdir as wd
        from jaxdd.data import images_by_class

        self.cfg, self.workdir, self.progress = cfg, workdir, progress
        self.phase_seconds = {}
        t0 = time.time()
        # metrics, grids, config/aux and the final artifacts: process 0 only (multi-host)
        self.is_writer = jax.process_index() == 0
        # 1. validation (config + data), before anything is written or trained
        self.train_ds, self.test_ds = assemble.validated_data(cfg, workdir=workdir)
        self.phase_seconds["data"] = time.time() - t0

        # 2. the workdir, read-only: identity, checkpoints, aux
        self.aux_path = os.path.join(workdir, "aux.msgpack")
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        aux, self.resume_changes = read_resumable(workdir, cfg)

        # 3. mesh, model, parameterization, the objective's inputs (nothing written yet)
        self.mesh = assemble.mesh(cfg)
        d_nc = self.train_ds.num_classes
        self.model = assemble.model(cfg, d_nc)
        self.pm = param_lib.get(cfg.param.name)
        # the storage rule, stated (or refused: a rank or budget it cannot hold) before any work
        self.budget_line = param_lib.budget_line(self.pm, cfg.param, self.train_ds.image_shape)
        if progress:
            print(f"[jaxdd] {self.budget_line}")
        self.real_rms = guards.real_rms_of(self.train_ds)
        k_init, self.k_loop, self.k_eval = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
        self.evaluators = evaluators_lib.from_config(cfg)
        if not objective_lib.needs_teacher(cfg.objective.name, cfg.objective):
            # the random-real baseline needs only the data and the network: scored in a
            # thread from now on, beside the warm-up, the experts and the loop
            self.eval_ctx = evaluators_lib.Context(
                self.model, self.train_ds, self.test_ds, cfg, None, self.mesh, progress)
            self._start_baselines()
        t0 = time.time()
        if aux is not None:
            self.aux, params_template = aux, None  # the params come from the checkpoint
        else:
            params_template, self.aux = self.pm.init(
                k_init, images_by_class(self.train_ds), self._param_cfg())
        self.phase_seconds["init"] = self.init_seconds = time.time() - t0
        t0 = time.time()
        if build_objective is None:
            trajs, self.teacher = assemble.objective_inputs(
                cfg, self.train_ds, self.test_ds, workdir=workdir, progress=progress)
        else:
            trajs, self.teacher = None, None
        self.phase_seconds["objective_inputs"] = time.time() - t0
        self.objective = assemble.build_objective(
            cfg, self.model, self.train_ds, self.test_ds, mesh=self.mesh, trajectories=trajs,
            teacher=self.teacher, syn_labels=self.aux["labels"], progress=progress,
            builder=build_objective)
        del trajs  # the objective holds what it reads
        self.step, self._init_state = make_step(self.pm, self.aux, self.objective, cfg,
                                                mesh=self.mesh)
        self.eval_ctx = evaluators_lib.Context(
            self.model, self.train_ds, self.test_ds, cfg, self.teacher, self.mesh, progress)
        self.pixel_budget = int(np.prod(self.train_ds.image_shape)) * int(cfg.param.ipc) * d_nc

        # 4. start (write the run's identity + checkpoint 0) or resume
        os.makedirs(workdir, exist_ok=True)
        self.ckpt = Checkpoints(workdir, cfg.get("keep_checkpoints", 2),
                                is_writer=self.is_writer)
        if params_template is not None:
            state = self._init_state(self.k_loop, params_template, cfg.opt.lr.init)
            self._check_budget(state)
            self.state = state
            if self.is_writer:
                wd.write_identity(workdir, cfg)
                save_tree(self.aux_path, self.aux)
                wd.truncate_metrics(self.metrics_path, 0)  # leftovers of a failed start
            self.ckpt.save(self.state, force=True)  # caches init (e.g. the DDiF warm-up)
        else:
            self.state = self.ckpt.restore_latest(self._template_state())
            self._check_budget(self.state)
            step = int(self.state.step)
            if self.is_writer:
                dropped = wd.truncate_metrics(self.metrics_path, step)
                if dropped and progress:
                    print(f"[jaxdd] metrics.jsonl: {dropped} record(s) after iteration {step} "
                          f"dropped (they belong to the iterations that will be redone)")
                wd.record_resume(workdir, step, self.resume_changes)
            if self.resume_changes:
                print("[jaxdd] resuming with changed settings (recorded in resume.jsonl): "
                      + ", ".join(f"{k} {va!r} -> {vb!r}" for k, va, vb in self.resume_changes))

    def _param_cfg(self):
        """cfg.param, with progress bars off when the run's are (e.g. a warm-up)."""
        pc = self.cfg.param
        if not self.progress and "progress" in pc:
            pc = ml_collections.ConfigDict(pc.to_dict())
            pc.progress = False
        return pc

    def _check_budget(self, state):
        b = self.pm.budget(state.syn_params, self.aux)
        self.budget = b
        if b > self.pixel_budget * 1.0001:
            raise ValueError(f"the synthetic set stores {b} floats, more than the budget "
                             f"IPC x classes x H x W x C = {self.pixel_budget}")

    def _template_state(self):
        """The state's structure, without the parameterization's expensive init work."""
        from jaxdd.data import images_by_class
        params = param_lib.template(self.pm, jax.random.PRNGKey(0),
                                    images_by_class(self.train_ds), self._param_cfg())
        return self._init_state(jax.random.PRNGKey(0), params, self.cfg.opt.lr.init)

    def log(self, record):
        if not self.is_writer:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- evaluation / artifacts
    def decode_all(self, resolution=None):
        return self.pm.decode(self.state.syn_params, self.aux, resolution=resolution)

    def image_rms(self, state=None):
        """RMS of the decoded synthetic set (jitted once)."""
        if getattr(self, "_rms_fn", None) is None:
            pm, aux = self.pm, self.aux
            self._rms_fn = jax.jit(
                lambda p: jnp.sqrt(jnp.mean(jnp.square(pm.decode(p, aux).astype(jnp.float32)))))
        return float(self._rms_fn((state or self.state).syn_params))

    def save_grid(self, name):
        """PNG of the decoded set, one row per class (at most grid_max_per_class per row;
        video: one row per clip, its frames left to right), drawn for the data's modality
        (`jaxdd.viz.modality_grid`)."""
        from jaxdd.viz import save_modality_grid
        if not self.is_writer:
            return None
        images = np.asarray(self.decode_all())
        modality = getattr(self.train_ds, "modality", "image")
        labels = np.asarray(self.aux["labels"])
        ncol = min(int(np.bincount(labels).max()), self.cfg.get("grid_max_per_class", 10))
        rows = []
        for c in range(self.train_ds.num_classes):  # pad short classes to full rows
            idx = np.flatnonzero(labels == c)[:ncol]
            x = self.train_ds.denormalize(images[idx])
            if modality == "video" or len(idx) == ncol:
                rows.append(x)
            else:
                rows.append(np.concatenate([x, np.ones((ncol - len(idx),) + x.shape[1:],
                                                       x.dtype)]))
        return save_modality_grid(os.path.join(self.workdir, "grids", f"{name}.png"),
                                  np.concatenate(rows), modality, nrow=ncol)

    def evaluate(self, step, num_nets=None, epochs=None, *, evaluator=None, final=False):
        """Score the current set with `evaluator` (default: the main one, the protocol the
        set is made for) -> EvalResult."""
        ev = evaluator or self.evaluators[0]
        if num_nets or epochs:
            import dataclasses
            ev = dataclasses.replace(ev, num_nets=num_nets or ev.num_nets,
                                     final_nets=num_nets or ev.final_nets,
                                     epochs=epochs or ev.epochs)
        return ev.run(self.eval_ctx, jax.random.fold_in(self.k_eval, step), self.decode_all(),
                      np.asarray(self.aux["labels"]), float(self.state.syn_lr), final=final,
                      desc=f"{ev.name}@{step}")

    def _evaluate_during(self, step, total):
        """The evaluators due at `step`; the main one's result is logged as eval_acc_*."""
        for ev in self.evaluators:
            if not ev.due(step, total):
                continue
            res = self.evaluate(step, evaluator=ev)
            pre = "eval" if ev is self.evaluators[0] else f"eval_{ev.name}"
            self.log({"step": step, f"{pre}_acc_mean": res.mean, f"{pre}_acc_std": res.std})
            tqdm.write(f"[jaxdd] iteration {step}: {ev.name} test accuracy {res}")

    def evaluations(self):
        """[(step, mean, std)] of every main evaluation logged in metrics.jsonl, in order."""
        from jaxdd.workdir import read_metrics
        return [(int(r["step"]), float(r["eval_acc_mean"]), float(r["eval_acc_std"]))
                for r in read_metrics(self.metrics_path) if "eval_acc_mean" in r]

    def evaluation_meta(self):
        """How the set is meant to be scored (stored with it: `launch/evaluate.py` and
        `launch/cross_arch.py` default to it)."""
        main = self.evaluators[0]
        meta = {"protocol": main.protocol, "eval": self.cfg.eval.to_dict()}
        if self.teacher is not None:
            meta["teacher"] = assemble.teacher_record(self.cfg, self.workdir, self.teacher)
        return meta

    def save_final(self):
        meta = {"dataset": self.cfg.dataset.to_dict(), "model": self.cfg.model.to_dict(),
                "objective": self.cfg.objective.name, "step": int(self.state.step),
                "budget": int(self.budget), "pixel_budget": int(self.pixel_budget),
                "evaluation": self.evaluation_meta(),
                # what the set is of: evaluation refuses data it does not match
                "data": {"modality": getattr(self.train_ds, "modality", "image"),
                         "preprocessing": getattr(self.train_ds, "preprocessing", None),
                         "num_classes": int(self.train_ds.num_classes),
                         "image_shape": [int(s) for s in self.train_ds.image_shape]}}
        path = os.path.join(self.workdir, "synthetic.msgpack")
        if self.is_writer:
            save_synthetic(path, param_name=self.cfg.param.name, params=self.state.syn_params,
                           aux=self.aux, syn_lr=self.state.syn_lr, meta=meta)
        return path

    # -- the loop
    def _check_scale(self, state, it):
        ratio = self.cfg.get("max_image_rms_ratio", 1e4)
        if ratio:
            guards.check_image_scale(self.image_rms(state), self.real_rms, float(ratio), it)

    def train(self, iterations=None, *, stop_after=None):
        """Run to `iterations` (default cfg.iterations). `stop_after`: return early after
        that many iterations of this call (used by tests to simulate a kill)."""
        cfg = self.cfg
        total = int(iterations if iterations is not None else cfg.iterations)
        start = int(self.state.step)
        if start > 0:
            print(f"[jaxdd] resuming {self.workdir} at iteration {start}/{total}")
        if start < total:
            self._start_baselines()
        ckpt_every = int(cfg.get("checkpoint_every", 100))
        log_every = int(cfg.get("log_every", 10))
        evals_due = lambda it: any(ev.due(it, total) for ev in self.evaluators)  # noqa: E731
        bar = tqdm(total=total, initial=start, desc="distill", disable=not self.progress)
        data = self.objective.data
        t_last, it_last = time.time(), start
        t_eval = 0.0
        t_start = time.time()
        done_here = 0
        state = self.state
        learn_lr = bool(self.objective.learn_lr)
        patience = int(cfg.opt.lr.get("nonpositive_patience", 25) or 1)
        nonpositive, pending = 0, False  # pending: a checkpoint deferred while syn_lr <= 0
        if start == 0 and total > 0:
            # the authors also evaluate the initial set (MTT distill.py: it = 0 is in
            # eval_it_pool); it is one of the points of their best-over-evaluations statistic
            t0 = time.time()
            self._evaluate_during(0, total)
            t_eval += time.time() - t0
        while int(state.step) < total:
            new_state, metrics = self.step(state, data)
            m = {k: float(v) for k, v in jax.device_get(metrics).items()}
            it = int(new_state.step)
            # raise before the bad state is saved (the last good checkpoint stays)
            guards.check_finite(m, it)
            lr_ok = not learn_lr or m["syn_lr"] > 0
            nonpositive = 0 if lr_ok else nonpositive + 1
            guards.check_divergence(m, it, learn_lr=learn_lr, nonpositive_for=nonpositive,
                                    patience=1 if it >= total else patience)
            stopping = stop_after is not None and done_here + 1 >= stop_after
            save_now = it % ckpt_every == 0 or it == total or pending
            if it % log_every == 0 or save_now or stopping or evals_due(it):
                self._check_scale(new_state, it)
            state = self.state = new_state
            bar.update(1)
            bar.set_postfix(loss=f"{m['loss']:.4f}", syn_lr=f"{m['syn_lr']:.2e}")
            if it % log_every == 0 or it == total:
                now = time.time()
                m.update(step=it, its_per_s=(it - it_last) / max(now - t_last, 1e-9))
                t_last, it_last = now, it
                self.log(m)
            if evals_due(it):
                t0 = time.time()
                self._evaluate_during(it, total)
                self.save_grid(f"step_{it:06d}")
                t_eval += time.time() - t0
            if save_now:  # never a state with syn_lr <= 0: deferred until it is positive
                pending = not lr_ok
                if lr_ok:
                    self.ckpt.save(state)
            done_here += 1
            if stopping:
                if lr_ok and self.ckpt.latest_step() != it:
                    self.ckpt.save(state)
                bar.close()
                return None
        bar.close()
        if self.ckpt.latest_step() != int(state.step):
            self.ckpt.save(state)
        self.phase_seconds["distill"] = time.time() - t_start - t_eval
        self.phase_seconds["evaluations"] = t_eval
        return self.finish()

    def _start_baselines(self):
        """Score the final evaluators that do not depend on the set (the random-real
        baseline) in a thread beside the run's work (from the start when the objective needs
        no teacher, else from the loop's start), on the same keys as at the end, so the
        result is the same: on a CPU the warm-up, the experts and the loop leave part of
        the cores idle
        (`cfg.eval.overlap_baseline`, default on; single-process runs only, since a
        multi-host evaluation's collectives must not interleave with the loop's)."""
        import threading
        self._baselines = getattr(self, "_baselines", {})
        if (not self.cfg.eval.get("overlap_baseline", True) or jax.process_count() > 1
                or not self.evaluators[0].final):
            return
        ctx = self.eval_ctx._replace(progress=False)  # no second progress bar
        for ev in self.evaluators[1:]:
            if ev.protocol != "random_real" or not ev.final or ev.name in self._baselines:
                continue
            box = {}

            def work(ev=ev, box=box):
                try:
                    box["result"] = ev.run(ctx, self.k_eval, None, None, 0.0, final=True,
                                           desc=ev.name)
                except BaseException as e:  # noqa: BLE001 -- re-raised by the loop's thread
                    box["error"] = e
            t = threading.Thread(target=work, name=f"jaxdd-{ev.name}", daemon=True)
            self._baselines[ev.name] = (t, box)
            t.start()

    def _baseline_result(self, ev):
        """The background result of `ev` (joined), or None when it was not started."""
        entry = getattr(self, "_baselines", {}).pop(ev.name, None)
        if entry is None:
            return None
        t, box = entry
        t.join()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def finish(self):
        """Final artifact, grid, the declared evaluators' final scores."""
        t0 = time.time()
        path = self.save_final()
        _fault("saved_synthetic")
        self.save_grid("final")
        step = int(self.state.step)
        result = {"step": step, "syn_lr": float(self.state.syn_lr),
                  "budget": int(self.budget), "pixel_budget": int(self.pixel_budget),
                  "num_images": int(len(self.aux["labels"])), "synthetic": path}
        main = self.evaluators[0]
        if main.final:
            res = self.evaluate(step, final=True)
            result["final_eval"] = res.to_dict()
            tqdm.write(f"[jaxdd] final synthetic set: test accuracy {res} (final epoch, "
                       f"mean +- std over {len(res.accs)} networks; {main.protocol})")
            self.log({"step": step, "eval_acc_mean": res.mean, "eval_acc_std": res.std,
                      "final": True})
            result["best_over_evaluations"] = best_over_evaluations(
                [e for e in self.evaluations() if e[0] <= step])
            result["protocol"] = evaluators_lib.describe_protocol(main.protocol, self.cfg)
            if self.teacher is not None:
                result["teacher_test_acc"] = float(self.teacher["test_acc"])
            for ev in self.evaluators[1:]:
                if not ev.final:
                    continue
                r = self._baseline_result(ev)
                if r is None:
                    r = ev.run(self.eval_ctx, self.k_eval, self.decode_all(),
                               np.asarray(self.aux["labels"]), float(self.state.syn_lr),
                               final=True, desc=ev.name)
                result[ev.name] = evaluators_lib.describe(r)
                tqdm.write(f"[jaxdd] {ev.name} ({ev.protocol}, same IPC): {r}")
        self.phase_seconds["final"] = time.time() - t0
        result["phase_seconds"] = {k: round(v, 2) for k, v in self.phase_seconds.items()}
        if self.is_writer:
            rpath = os.path.join(self.workdir, "result.json")
            with open(rpath + ".tmp", "w") as f:
                json.dump(result, f, indent=2)
            os.replace(rpath + ".tmp", rpath)
        return result


def best_over_evaluations(points):
    """The authors' statistic: the best mean test accuracy over the evaluation points of a
    run, with the std of that point (MTT distill.py:205-216: best_acc / best_std, updated on
    a strictly greater mean, so the first of equal means wins).

    points: [(step, mean, std)] in order. It is selected ON THE TEST SET (an optimistic
    estimate); jaxdd's headline is the final evaluation (`final_eval`).
    """
    best = None
    for step, mean, std in points:
        if best is None or mean > best[1]:
            best = (step, mean, std)
    if best is None:
        return None
    return {"mean": best[1], "std": best[2], "step": best[0], "points": len(points),
            "selected_on": "test set",
            "note": "the authors' statistic (best mean over evaluation points, MTT "
                    "distill.py best_acc/best_std), selected on the test set; the headline "
                    "is final_eval"}


def run(cfg, workdir, *, progress=True):
    """Build and train a run, holding the workdir's lock (`jaxdd.locks`: a second process on
    the same workdir is refused, naming this one); returns the final result dict."""
    from jaxdd import locks
    with locks.hold(workdir, "workdir", multiprocess=jax.process_count() > 1):
        return Run(cfg, workdir, progress=progress).train()
