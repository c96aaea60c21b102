"""The jaxdd benchmark suite: `run(cfg)` -> result dict, JSON + a printed table.

    python launch/benchmark.py --config=configs/bench_tm.py             # full suite (< 15 min, 2 cores)
    python launch/benchmark.py --config=configs/bench_tm.py:tiny        # smoke test (seconds)
    python launch/benchmark.py --config=configs/bench_tm.py:grid        # every TM row (long)
    python launch/benchmark.py --config=configs/bench_tm.py --sections=ceilings,peer
    bash launch/gpu_bench.sh [--smoke]                                  # GPU (configs/bench_gpu.py)

Sections (``cfg.sections``; each row of the table is one timed workload):

  ceilings  the machine's own ceilings, measured in the same run (at its start and again at
            its end; the best of the two is the denominator): a large f32 matmul, a large
            3x3 convolution (XLA's native conv and the im2col matmul form; the conv
            ceiling is the faster of the two), and a bf16 matmul for reference.
  peer      the PyTorch peer: ``jaxdd.bench.torch_reference`` (MTT-style flat-parameter TM
            step, ``torch.autograd.grad(create_graph=True)``) timed in a subprocess with
            1 thread and with all cores, next to the same JAX TM step (pixel, no
            augmentation on either side). Skipped (with the reason) without torch
            (``pip install -e ".[bench]"``).
  authors   jaxdd vs the authors' code at issue 17's config (``cfg.authors``: MNIST-like
            28x28x1, ConvNetD3 with the gray padding, IPC 1, DSA on, the whole set per
            student step): MTT pixel, FreD and DDiF TM iterations and DDiF's warm-up, the
            PyTorch side from ``jaxdd.bench.torch_reference`` (the authors' step, checked
            against their own scripts). Each side runs in a fresh process (so the resident-
            set high-water marks compare), alternating jaxdd / PyTorch for ``rounds``;
            the jaxdd processes share a persistent compilation cache. A summary row per
            method gives the speed-up (PyTorch median / jaxdd median) and the RSS ratio.
  tm        TM outer iterations: the library's own jitted outer step
            (``jaxdd.distill.make_step``: decode -> unroll -> meta-gradient -> optimizer),
            per parameterization (pixel, FreD, DDiF, NSD), IPC, syn_steps, with or without
            ``jax.checkpoint``, conv implementation. Random data, ConvNetD3 on 32x32x3
            (CIFAR-10 shapes). Rows with ``mode='memory'`` are compiled only (XLA's memory
            analysis), for shapes too large to run here.
  experts   expert training images/s: E experts together (vmap) vs one at a time.
  eval      evaluation training images/s: K networks trained together vs one at a time.
  ddif      DDiF warm-up (all fields at once vs one field at a time) and decode time per
            instance at 32x32 and 128x128.
  fred      FreD mask construction time (explained-variance masks, CIFAR-10 shapes).

Method. Every workload is compiled first (compile time reported separately), then run
``warmup`` times untimed and ``repeats`` times timed with ``block_until_ready``; the
median wall time is reported, with the median process CPU time next to it (on a shared
machine wall time includes waiting for a core, CPU time does not). The load average is
recorded per row. FLOPs: TM rows count the useful work analytically from the network's
forward FLOPs F(b) at the per-step batch b (multiply-add = 2 FLOPs, convs and dense layers,
``forward_flops``): the inner forward+backward is 3 F and the meta-gradient through it
another 6 F, so 9 F per student step whatever the remat setting (remat's recomputation is
overhead, not work; XLA's own count is stored as ``xla_flops`` where it has one).
Training rows (experts, eval) count 3 F per image. Achieved GFLOP/s = FLOPs / median wall
time; the fraction is of the conv ceiling measured in the same run. Because a shared
machine lends a process anywhere between one and all cores, rates are also given per
CPU-second (FLOPs / median process CPU time) against the ceilings per CPU-second: that
fraction does not depend on how many cores the row happened to get. Peak memory: XLA's
compiled memory analysis of the executable (arguments + outputs + temporaries, the
allocation it needs) and, for rows that run, the resident-set high-water mark over the
timed calls minus the resident set before them (the measure the PyTorch row uses).
"""
from __future__ import annotations

import datetime
import importlib.util
import inspect
import json
import os
import platform
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

from jaxdd.bench.torch_reference import reset_peak_rss, rss_bytes  # torch: lazily

SECTIONS = ("ceilings", "peer", "authors", "tm", "experts", "eval", "ddif", "fred")

# ----------------------------------------------------------------------------- config builders
# configs/bench_tm.py and configs/bench_gpu.py are built from these: the fields every
# benchmark config has, a TM row, and the tiny shapes of their smoke variants.

_DSA = "color_crop_cutout_flip_scale_rotate"


def tm_spec(param, ipc, steps, remat, conv_impl="auto", augment="dsa", mode="time", **kw):
    """One entry of cfg.tm_rows (the fields: configs/bench_tm.py's docstring)."""
    return dict(param=param, ipc=ipc, syn_steps=steps, remat=remat, conv_impl=conv_impl,
                augment=augment, mode=mode, **kw)


def base_config(out, sections, **fields):
    """The fields of a benchmark config at CIFAR-10 shapes (ConvNetD3, 32x32x3, 10 classes,
    random data) with the CPU suite's experts / eval / ddif / fred sections; `fields`
    replace top-level fields. cfg.peer, cfg.authors and cfg.tm_rows are the config's own."""
    import ml_collections

    cfg = ml_collections.ConfigDict(dict(
        out=out, sections=list(sections), repeats=3, warmup=1, model="ConvNetD3", side=32,
        channels=3, num_classes=10, real_per_class=0, ceiling_matmul=1024,
        ceiling_conv=(64, 32, 128), ceiling_repeats=5,
        param_overrides={"ddif": {"warmup_steps": 0}}))
    # expert training: E experts together (vmap) vs one at a time, one epoch each
    cfg.experts = ml_collections.ConfigDict(dict(
        num_examples=128, num_experts=4, batch_size=128, dsa_strategy=_DSA, repeats=2))
    # evaluation training: K networks together vs one at a time (IPC 1 and 10 set sizes)
    cfg.eval = ml_collections.ConfigDict(dict(
        num_train=[10, 100], num_nets=5, epochs=2, schedule_epochs=1000, batch_size=256,
        dsa_strategy=_DSA, repeats=2))
    # DDiF: warm-up all fields at once vs one at a time; decode per instance
    cfg.ddif = ml_collections.ConfigDict(dict(
        ipc=1, num_classes=10, warmup_fields=37, warmup_steps=20,
        decode_resolutions=[32, 128], repeats=3, library_call=True))
    # FreD: EVR mask construction (k = 64, CIFAR-10 IPC 1 / 10)
    cfg.fred = ml_collections.ConfigDict(dict(ipcs=[1, 10], k=64, mask="evr", repeats=3))
    cfg.update(fields)
    return cfg


def tiny_shapes(cfg):
    """The smoke variants' shapes (ConvNetD1W4 on 8x8x1, 2 classes, one repeat, no warm-up,
    no augmentation): the same code paths in seconds on a CPU. Changes cfg in place."""
    cfg.repeats, cfg.warmup, cfg.ceiling_repeats = 1, 0, 1
    cfg.model = "ConvNetD1W4"
    cfg.side, cfg.channels, cfg.num_classes = 8, 1, 2
    cfg.ceiling_matmul = 64
    cfg.ceiling_conv = (2, 8, 4)
    cfg.peer.update(num_images=2, syn_steps=2, width=4, depth=1, repeats=1, warmup=0,
                    torch_threads=[1], remat=[], timeout_s=120)
    cfg.authors.update(side=8, channels=1, num_classes=2, model="ConvNetD1W4",
                       syn_steps={"mtt": 2}, warmup=0, fred_k=16, ddif_width=2,
                       ddif_layers=1, warmup_steps=2, warmup_fields_torch=1)
    cfg.experts.update(num_examples=8, num_experts=2, batch_size=4, repeats=1,
                       dsa_strategy="none")
    cfg.eval.update(num_train=[4], num_nets=2, epochs=1, schedule_epochs=2, batch_size=4,
                    repeats=1, dsa_strategy="none")
    cfg.ddif.update(num_classes=2, warmup_fields=2, warmup_steps=2, decode_resolutions=[8],
                    repeats=1, library_call=False)
    cfg.fred.update(ipcs=[1], k=16, repeats=1)
    return cfg


# ----------------------------------------------------------------------------- measuring

def _cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def measure(fn, repeats, warmup=0):
    """Run fn() (returns arrays) warmup + repeats times; medians of wall and CPU seconds.

    Returns dict(seconds_median, seconds_all, cpu_seconds_median, rss_peak_bytes, load).
    """
    import jax

    for _ in range(warmup):
        jax.block_until_ready(fn())
    rss0 = rss_bytes("VmRSS")
    can = reset_peak_rss()
    walls, cpus = [], []
    for _ in range(max(1, repeats)):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_seconds() - c0)
    hwm = rss_bytes("VmHWM")
    peak = hwm - rss0 if (can and hwm is not None and rss0 is not None) else None
    if peak is not None and peak < 0:  # memory freed meanwhile / lagging kernel counters
        peak = None
    return {"seconds_median": statistics.median(walls), "seconds_all": walls,
            "cpu_seconds_median": statistics.median(cpus), "rss_peak_bytes": peak,
            "load": loadavg()}


def compile_timed(jitted, *args):
    """(compiled, seconds), compiled as `jaxdd.distill.Step` compiles its first call
    (`jaxdd.runtime.compile_released`), so the RSS high-water is the loop's."""
    from jaxdd import runtime

    t0 = time.perf_counter()
    compiled = runtime.compile_released(jitted, *args)
    return compiled, time.perf_counter() - t0


def memory_bytes(compiled):
    """XLA's memory analysis: arguments + outputs + temporaries (- aliased), bytes."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                   - getattr(m, "alias_size_in_bytes", 0))
    except Exception:  # pragma: no cover - backend without memory analysis
        return None


def xla_flops(compiled):
    try:
        ca = compiled.cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        return float(ca.get("flops", 0.0)) or None
    except Exception:  # pragma: no cover
        return None


def forward_flops(model, params, x):
    """Analytic forward FLOPs (2 x multiply-adds) of conv/dense layers, via a jaxpr walk."""
    import jax
    import numpy as np

    jaxpr = jax.make_jaxpr(lambda p, x: model.apply({"params": p}, x))(params, x)
    total = 0

    def walk(jp):
        nonlocal total
        for eqn in jp.eqns:
            if eqn.primitive.name == "dot_general":
                (lc, _), _ = eqn.params["dimension_numbers"]
                a = eqn.invars[0].aval.shape
                out = eqn.outvars[0].aval.shape
                k = int(np.prod([a[i] for i in lc])) if lc else 1
                total += 2 * int(np.prod(out)) * k
            elif eqn.primitive.name == "conv_general_dilated":
                out = eqn.outvars[0].aval.shape
                w = eqn.invars[1].aval.shape
                total += 2 * int(np.prod(out)) * int(np.prod(w)) // max(w[-1], 1)
            for v in eqn.params.values():
                if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    walk(v.jaxpr)
                elif hasattr(v, "eqns"):
                    walk(v)
    walk(jaxpr.jaxpr)
    return total


def _rate(flops, seconds, ceil, cpu_seconds=None):
    out = {"flops": flops}
    if flops and cpu_seconds:
        # load-independent: useful GFLOP per second of CPU this process got
        out["gflops_per_cpu_s"] = flops / cpu_seconds / 1e9
        if ceil and ceil.get("conv_gflops_per_cpu_s"):
            out["frac_conv_ceiling_cpu"] = out["gflops_per_cpu_s"] / ceil["conv_gflops_per_cpu_s"]
    if flops and seconds:
        out["gflops_per_s"] = flops / seconds / 1e9
        if ceil and ceil.get("conv_gflops"):
            out["frac_conv_ceiling"] = out["gflops_per_s"] / ceil["conv_gflops"]
        if ceil and ceil.get("matmul_gflops"):
            out["frac_matmul_ceiling"] = out["gflops_per_s"] / ceil["matmul_gflops"]
    return out


# ----------------------------------------------------------------------------- ceilings

def ceilings(cfg):
    """The machine's own ceilings in GFLOP/s: large matmuls and a large 3x3 convolution."""
    import jax
    import jax.numpy as jnp

    from jaxdd.models.conv import convolve

    reps = int(cfg.get("ceiling_repeats", cfg.repeats))
    n = int(cfg.ceiling_matmul)
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    mm = jax.jit(lambda a: a @ a)
    jax.block_until_ready(mm(a))
    r = measure(lambda: mm(a), reps, warmup=1)
    out = {"matmul_n": n, "matmul_gflops": 2 * n ** 3 / r["seconds_median"] / 1e9,
           "matmul_seconds": r["seconds_median"],
           "matmul_gflops_per_cpu_s": 2 * n ** 3 / max(r["cpu_seconds_median"], 1e-9) / 1e9}
    ab = a.astype(jnp.bfloat16)
    mmb = jax.jit(lambda a: jnp.matmul(a, a, preferred_element_type=jnp.float32))
    r = measure(lambda: mmb(ab), reps, warmup=1)
    out["matmul_bf16_gflops"] = 2 * n ** 3 / r["seconds_median"] / 1e9
    b, h, c = cfg.ceiling_conv
    x = jax.random.normal(jax.random.PRNGKey(1), (b, h, h, c))
    w = jax.random.normal(jax.random.PRNGKey(2), (3, 3, c, c))
    flops = 2 * b * h * h * c * c * 9
    out["conv_shape"] = [b, h, h, c, "3x3", c]
    for impl in ("native", "im2col"):
        cv = jax.jit(lambda x, w, impl=impl: convolve(x, w, padding=1, impl=impl))
        r = measure(lambda: cv(x, w), reps, warmup=1)
        out[f"conv_{impl}_gflops"] = flops / r["seconds_median"] / 1e9
        out[f"conv_{impl}_gflops_per_cpu_s"] = flops / max(r["cpu_seconds_median"], 1e-9) / 1e9
    out["conv_gflops"] = max(out["conv_native_gflops"], out["conv_im2col_gflops"])
    out["conv_gflops_per_cpu_s"] = max(out["conv_native_gflops_per_cpu_s"],
                                       out["conv_im2col_gflops_per_cpu_s"])
    out["load"] = loadavg()
    return out


# ----------------------------------------------------------------------------- TM rows

def _row_opts(cfg, row):
    """A TM row (tuple or dict) -> dict with defaults filled in."""
    if not isinstance(row, dict):
        row = dict(row) if hasattr(row, "items") else dict(zip(
            ("param", "ipc", "syn_steps", "remat", "conv_impl", "augment", "mode"), row))
    d = {"param": "pixel", "ipc": 1, "syn_steps": 20, "remat": True, "conv_impl": "auto",
         "augment": "dsa", "mode": "time", "batch_syn": None, "decode_subset": "auto",
         "repeats": None, "warmup": None, "side": None, "channels": None, "model": None,
         "param_cfg": None, "name": None, "compute_dtype": None, "microbatch": 0}
    d.update({k: v for k, v in row.items()})
    d["microbatch"] = int(d["microbatch"] or 0)  # None / 0: off
    return d


def _param_setup(cfg, param_name, ipc):
    import jax
    import numpy as np

    from jaxdd import param as param_lib

    h, c, nc = cfg.side, cfg.channels, cfg.num_classes
    pm = param_lib.get(param_name)
    pcfg = pm.default_config()
    pcfg.ipc = ipc
    if "progress" in pcfg:
        pcfg.progress = False
    for k, v in dict(cfg.param_overrides.get(param_name, {})).items():
        pcfg[k] = v
    rng = np.random.default_rng(0)
    n_real = max(int(cfg.get("real_per_class", 0) or 0), 2 * ipc, 8)
    real = [rng.normal(size=(n_real, h, h, c)).astype(np.float32) for _ in range(nc)]
    t0 = time.perf_counter()
    syn_params, aux = pm.init(jax.random.PRNGKey(0), real, pcfg)
    jax.block_until_ready(syn_params)
    return pm, syn_params, aux, time.perf_counter() - t0


def tm_step_setup(cfg, opts):
    """(compiled-able jitted step, state, data, info) for one TM row (distill.make_step)."""
    import jax
    import jax.numpy as jnp
    import ml_collections

    from jaxdd import distill
    from jaxdd.augment import make_augment
    from jaxdd.models import get_model
    from jaxdd.objective import Objective
    from jaxdd.objective import tm

    h, c, nc = cfg.side, cfg.channels, cfg.num_classes
    pm, syn_params, aux, init_s = _param_setup(cfg, opts["param"], opts["ipc"])
    n_inst = int(len(aux["labels"]))
    bs = int(opts["batch_syn"] or opts["ipc"] * nc)
    bs = min(bs, n_inst)
    dsub = opts["decode_subset"]
    if dsub == "auto":  # DDiF decodes only the fields the unroll uses (authors' code)
        dsub = min(opts["syn_steps"] * bs, n_inst) if opts["param"] == "ddif" else 0
    dsub = int(dsub or 0)
    model = get_model(cfg.model, nc, conv_impl=opts["conv_impl"],
                      compute_dtype=opts["compute_dtype"])  # None/'bfloat16' (opt-in)
    theta0 = jax.jit(lambda k: model.init(k, jnp.zeros((1, h, h, c)))["params"])(
        jax.random.PRNGKey(1))  # one compile, not one per eager op (-RSS)
    # a fake expert: 3 snapshots, start epoch 0, target epoch 2
    trajs = jax.jit(lambda th: jax.tree.map(
        lambda t: jnp.stack([t, t + 0.005, t + 0.01])[None], th))(theta0)
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=True)
    augment = make_augment("color_crop_cutout_flip_scale_rotate" if opts["augment"] == "dsa"
                           else None)
    loss = tm.make_loss(apply_fn, syn_steps=int(opts["syn_steps"]),
                        batch_syn=bs if bs < (dsub or n_inst) else 0,
                        augment=augment, remat=bool(opts["remat"]),
                        microbatch=opts["microbatch"])

    def sample_ctx(key, syn_lr, data, obj_state=()):
        return tm.TMContext(start=jax.tree.map(lambda t: t[0, 0], data["trajs"]),
                            target=jax.tree.map(lambda t: t[0, 2], data["trajs"]),
                            syn_lr=syn_lr)

    objective = Objective(loss=loss, sample_ctx=sample_ctx, data={"trajs": trajs},
                          learn_lr=True)
    scfg = ml_collections.ConfigDict({
        "decode_subset": dsub,
        "opt": {"syn": {"name": "sgd", "lr": 100.0, "momentum": 0.5},
                "lr": {"lr": 1e-5, "momentum": 0.5, "min_syn_lr": 1e-3}}})
    step, init_state = distill.make_step(pm, aux, objective, scfg)
    state = init_state(jax.random.PRNGKey(3), syn_params, 0.01)
    f_fwd = forward_flops(model, theta0, jnp.zeros((bs, h, h, c)))
    info = {"num_instances": n_inst, "batch_syn": bs, "decode_subset": dsub,
            "forward_flops_per_step": f_fwd, "param_init_s": init_s,
            "budget_floats": int(pm.budget(syn_params, aux))}
    return step, state, objective.data, info


def _row_cfg(cfg, opts):
    """cfg with a row's own side / channels / model / param overrides (e.g. a 128 px DDiF
    row in a 32 px suite)."""
    if not any(opts.get(k) for k in ("side", "channels", "model", "param_cfg")):
        return cfg
    cfg = cfg.copy_and_resolve_references()
    for k in ("side", "channels", "model"):
        if opts.get(k):
            cfg[k] = opts[k]
    if opts.get("param_cfg"):
        po = cfg.param_overrides.to_dict() if hasattr(cfg.param_overrides, "to_dict") else {}
        cur = dict(po.get(opts["param"], {}))
        cur.update(dict(opts["param_cfg"]))
        po[opts["param"]] = cur
        import ml_collections
        cfg.param_overrides = ml_collections.ConfigDict(po)
    return cfg


def tm_row(cfg, row, ceil):
    """One TM outer iteration row (see module docstring)."""
    import jax

    opts = _row_opts(cfg, row)
    cfg = _row_cfg(cfg, opts)
    step, state, data, info = tm_step_setup(cfg, opts)
    compiled, compile_s = compile_timed(step, state, data)
    out = {"workload": "tm_iteration", **{k: opts[k] for k in (
        "param", "ipc", "syn_steps", "remat", "conv_impl", "augment", "mode")},
        "model": cfg.model, "shape": [cfg.side, cfg.side, cfg.channels], **info,
        "compute_dtype": opts["compute_dtype"] or "float32",
        "microbatch": opts["microbatch"],
        **({"name": opts["name"]} if opts.get("name") else {}),
        "compile_s": compile_s, "xla_bytes": memory_bytes(compiled),
        "xla_flops": xla_flops(compiled)}
    if opts["mode"] == "time":
        box = {"s": state}

        def run():
            box["s"], m = compiled(box["s"], data)
            return m["loss"]

        r = measure(run, int(opts["repeats"] or cfg.repeats),
                    warmup=int(cfg.get("warmup", 1) if opts["warmup"] is None else opts["warmup"]))
        out.update(r)
        flops = 9 * info["forward_flops_per_step"] * int(opts["syn_steps"])
        out.update(_rate(flops, r["seconds_median"], ceil, r["cpu_seconds_median"]))
        loss = float(jax.device_get(run()))
        out["loss_finite"] = bool(loss == loss and abs(loss) != float("inf"))
    return out


# ----------------------------------------------------------------------------- PyTorch peer

def torch_row(cfg, threads):
    """Run jaxdd.bench.torch_reference in a subprocess; its JSON result (or a skip reason)."""
    base = {"workload": "tm_iteration_pytorch", "num_images": cfg.peer.num_images,
            "syn_steps": cfg.peer.syn_steps, "threads_requested": threads or os.cpu_count()}
    if importlib.util.find_spec("torch") is None:
        return {**base, "skipped": "torch not installed (pip install -e '.[bench]')"}
    cmd = [sys.executable, "-m", "jaxdd.bench.torch_reference",
           f"--num_images={cfg.peer.num_images}", f"--syn_steps={cfg.peer.syn_steps}",
           f"--side={cfg.side}", f"--channels={cfg.channels}",
           f"--num_classes={cfg.num_classes}", f"--width={cfg.peer.width}",
           f"--depth={cfg.peer.depth}", f"--repeats={cfg.peer.repeats}",
           f"--warmup={cfg.peer.warmup}", f"--threads={threads}",
           f"--max_seconds={cfg.peer.get('max_seconds', 0)}",
           f"--device={cfg.peer.get('torch_device', 'cpu')}"]
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no barrier spinning on a shared machine
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.peer.timeout_s,
                           env=env)
    except subprocess.TimeoutExpired:
        return {**base, "skipped": f"timed out after {cfg.peer.timeout_s} s"}
    for line in p.stdout.splitlines():
        if line.startswith("TORCH_RESULT "):
            r = json.loads(line[len("TORCH_RESULT "):])
            return {**base, **r, "load": loadavg()}
    return {**base, "skipped": f"torch_reference failed (rc {p.returncode}): {p.stderr[-500:]}"}


def peer_section(cfg, ceil):
    rows = []
    pr = cfg.peer
    for remat in pr.remat:
        r = tm_row(cfg, {"param": "pixel", "ipc": pr.ipc, "syn_steps": pr.syn_steps,
                         "remat": remat, "augment": "none", "batch_syn": pr.num_images,
                         "repeats": pr.repeats, "warmup": pr.get("jax_warmup", pr.warmup)},
                   ceil)
        r["workload"] = "tm_iteration_peer_jax"
        rows.append(r)
        _print_row(r)
    flops = rows[0].get("flops") if rows else None
    if flops is None and pr.torch_threads:  # same analytic count as the JAX rows
        import jax
        import jax.numpy as jnp

        from jaxdd.models import get_model
        m = get_model(cfg.model, cfg.num_classes)
        x = jax.ShapeDtypeStruct((pr.num_images, cfg.side, cfg.side, cfg.channels), jnp.float32)
        p = jax.eval_shape(m.init, jax.random.PRNGKey(0), x)["params"]
        flops = 9 * forward_flops(m, p, x) * pr.syn_steps
    for threads in pr.torch_threads:
        r = torch_row(cfg, threads)
        if "seconds_median" in r:
            r.update(_rate(flops, r["seconds_median"], ceil, r.get("cpu_seconds_median")))
        rows.append(r)
        _print_row(r)
    return rows


# ----------------------------------------------------------------------------- vs the authors

AUTHOR_PARAM = {"mtt": "pixel", "fred": "fred", "ddif": "ddif"}


def _authors_cfg(a):
    """The benchmark config a child process needs for one authors-comparison row."""
    import ml_collections

    cfg = ml_collections.ConfigDict()
    cfg.side, cfg.channels, cfg.num_classes = int(a["side"]), int(a["channels"]), int(
        a["num_classes"])
    cfg.model = a.get("model", "ConvNetD3")
    cfg.real_per_class = 0
    cfg.repeats, cfg.warmup = int(a.get("repeats", 1)), int(a.get("warmup", 1))
    cfg.param_overrides = ml_collections.ConfigDict({
        "fred": {"k": int(a.get("fred_k", 64))},
        "ddif": {"warmup_steps": 0, "width": int(a.get("ddif_width", 6)),
                 "num_layers": int(a.get("ddif_layers", 2))}})
    return cfg


def child_jax(a):
    """One jaxdd row of the authors comparison, in a fresh process (so its resident-set
    high-water mark is comparable with the PyTorch process's). ``a``: dict with method
    ('mtt' | 'fred' | 'ddif' | 'ddif_warmup'), side, channels, num_classes, ipc,
    syn_steps, dsa, remat, repeats, warmup (+ fred_k, ddif_width, ddif_layers,
    warmup_steps). Returns the result dict."""
    import jax
    import numpy as np

    cache = a.get("compile_cache")
    if cache:  # rounds after the first reuse the compiled step
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    cfg = _authors_cfg(a)
    if a["method"] == "ddif_warmup":
        from jaxdd.param import ddif

        pcfg = ddif.default_config()
        pcfg.ipc, pcfg.warmup_steps, pcfg.progress = int(a["ipc"]), 0, False
        pcfg.width, pcfg.num_layers = int(a.get("ddif_width", 6)), int(a.get("ddif_layers", 2))
        rng = np.random.default_rng(0)
        shape = (cfg.side, cfg.side, cfg.channels)
        real = [rng.normal(size=(8,) + shape).astype(np.float32) for _ in range(cfg.num_classes)]
        params, aux = ddif.init(jax.random.PRNGKey(0), real, pcfg)
        k = int(len(aux["labels"]))
        targets = rng.normal(size=(k,) + shape).astype(np.float32)
        n = int(a.get("warmup_steps", 100))
        t0 = time.perf_counter()
        jax.block_until_ready(ddif.warmup(None, params, aux, targets, n, progress=False)[0])
        first = time.perf_counter() - t0
        r = measure(lambda: ddif.warmup(None, params, aux, targets, n, progress=False)[0],
                    int(a.get("repeats", 1)))
        return {"workload": "authors_ddif_warmup", "impl": "jaxdd", "fields": k, "steps": n,
                "first_call_s": first, **r,
                "seconds_per_100_steps_all_fields": r["seconds_median"] * 100.0 / n,
                "rss_hwm_bytes": rss_bytes("VmHWM")}
    opts = _row_opts(cfg, {"param": AUTHOR_PARAM[a["method"]], "ipc": int(a["ipc"]),
                           "syn_steps": int(a["syn_steps"]), "remat": bool(a.get("remat", True)),
                           "augment": "dsa" if a.get("dsa", True) else "none",
                           "batch_syn": 10 ** 9,   # the authors' default: the whole set
                           "microbatch": a.get("microbatch", 0),
                           "repeats": int(a.get("repeats", 1)),
                           "warmup": int(a.get("warmup", 1))})
    r = tm_row(cfg, opts, {})
    r.update(workload=f"authors_{a['method']}", impl="jaxdd", method=a["method"],
             rss_hwm_bytes=rss_bytes("VmHWM"))
    return r


def _run_child(cmd, marker, timeout, env=None):
    """Run a benchmark child process; its JSON result line (after ``marker``) or a skip."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout} s"}
    for line in p.stdout.splitlines():
        if line.startswith(marker + " "):
            return json.loads(line[len(marker) + 1:])
    return {"skipped": f"child failed (rc {p.returncode}): {p.stderr[-800:]}"}


def authors_section(cfg, ceil):
    """jaxdd vs the authors' PyTorch steps (jaxdd.bench.torch_reference: MTT with its flat-
    parameter student and DSA, FreD, DDiF, DDiF's per-field warm-up), each side in its own
    fresh process, alternating jaxdd / PyTorch for ``rounds`` rounds; ratios of the
    medians over the rounds and of the peak resident sets (VmHWM)."""
    a = cfg.authors
    rows = []
    have_torch = importlib.util.find_spec("torch") is not None
    base = dict(side=a.side, channels=a.channels, num_classes=a.num_classes, ipc=a.ipc,
                model=cfg.model if a.get("model") is None else a.model,
                fred_k=a.fred_k, ddif_width=a.ddif_width, ddif_layers=a.ddif_layers,
                compile_cache=os.path.abspath(a.get("compile_cache") or tempfile.mkdtemp(
                    prefix=".jax_cache_", dir=os.path.dirname(os.path.abspath(cfg.out)))))
    # a fresh compilation cache per run unless one is given: round 0 of every method
    # compiles (its RSS high-water is the cold figure the memory ratio uses), later rounds
    # load the compiled step (recorded apart as jaxdd_rss_hwm_bytes_warm_cache)
    own_cache = not a.get("compile_cache")
    from jaxdd.models import get_model

    net = get_model(base["model"], int(a.num_classes))
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for method in a.methods:
        is_wu = method == "ddif_warmup"
        steps = int(a.syn_steps.get(method, 20)) if not is_wu else 0
        reps = int(a.repeats.get(method, 1))
        jrows, trows = [], []
        rounds = int(a.get("rounds_per_method", {}).get(method, a.rounds))
        for rnd in range(rounds):
            spec = dict(base, method=method, syn_steps=steps, dsa=bool(a.dsa),
                        microbatch=int(dict(a.get("microbatch") or {}).get(method, 0) or 0),
                        remat=bool(a.remat), repeats=reps, warmup=int(a.warmup),
                        warmup_steps=int(a.warmup_steps))
            jr = _run_child([sys.executable, "-m", "jaxdd.bench.suite", "--child",
                             json.dumps(spec)], "JAX_RESULT", a.timeout_s)
            jr.setdefault("workload", f"authors_{method}")
            jr.update(impl="jaxdd", round=rnd, load=loadavg())
            jrows.append(jr)
            _print_authors(jr)
            if not have_torch:
                trows.append({"workload": f"authors_{method}", "impl": "pytorch",
                              "skipped": "torch not installed (pip install -e '.[bench]')"})
                continue
            cmd = [sys.executable, "-m", "jaxdd.bench.torch_reference",
                   f"--side={a.side}", f"--channels={a.channels}",
                   f"--num_classes={a.num_classes}", f"--threads={a.torch_threads}",
                   f"--fred_k={a.fred_k}", f"--ddif_width={a.ddif_width}",
                   f"--ddif_layers={a.ddif_layers}", f"--width={net.width}",
                   f"--depth={net.depth}", f"--device={a.get('torch_device', 'cpu')}"]
            if is_wu:
                cmd += [f"--ddif_warmup={a.warmup_fields_torch}",
                        f"--warmup_steps={a.warmup_steps}"]
            else:
                cmd += [f"--method={method}", f"--ipc={a.ipc}", f"--syn_steps={steps}",
                        f"--dsa={int(bool(a.dsa))}", f"--repeats={reps}",
                        f"--warmup={a.warmup}"]
            tr = _run_child(cmd, "TORCH_RESULT", a.timeout_s, env)
            tr.update(workload=f"authors_{method}", impl="pytorch", round=rnd, load=loadavg())
            trows.append(tr)
            _print_authors(tr)
        rows += jrows + trows
        ok_j = [r for r in jrows if "seconds_median" in r]
        ok_t = [r for r in trows if "seconds_median" in r]
        if ok_j and ok_t:
            summ = {"workload": f"authors_{method}_ratio", "method": method,
                    "rounds": len(ok_j)}
            if is_wu:
                jt = statistics.median(r["seconds_per_100_steps_all_fields"] for r in ok_j)
                k = ok_j[0]["fields"]
                tt = statistics.median(r["seconds_per_field_per_100_steps"] for r in ok_t) * k
                summ.update(fields=k, jaxdd_s_per_100_steps=jt,
                            pytorch_s_per_100_steps_extrapolated=tt, speedup=tt / jt)
            else:
                jt = statistics.median(r["seconds_median"] for r in ok_j)
                tt = statistics.median(r["seconds_median"] for r in ok_t)
                jm = max(r.get("rss_hwm_bytes") or 0 for r in ok_j)
                warm = [r.get("rss_hwm_bytes") or 0 for r in ok_j if r.get("round", 0) > 0]
                if warm:
                    summ["jaxdd_rss_hwm_bytes_warm_cache"] = max(warm)
                tm_ = max(r.get("rss_hwm_bytes") or 0 for r in ok_t)
                jc = [r["cpu_seconds_median"] for r in ok_j if r.get("cpu_seconds_median")]
                tc = [r["cpu_seconds_median"] for r in ok_t if r.get("cpu_seconds_median")]
                if jc and tc:  # load-independent: CPU seconds each side used per iteration
                    summ.update(jaxdd_cpu_s=statistics.median(jc),
                                pytorch_cpu_s=statistics.median(tc),
                                cpu_speedup=statistics.median(tc) / statistics.median(jc))
                summ.update(syn_steps=steps, instances=ok_j[0].get("num_instances"),
                            jaxdd_s=jt, pytorch_s=tt, speedup=tt / jt,
                            jaxdd_rss_hwm_bytes=jm, pytorch_rss_hwm_bytes=tm_,
                            memory_ratio=(jm / tm_) if (jm and tm_) else None,
                            jaxdd_xla_bytes=ok_j[0].get("xla_bytes"),
                            pytorch_peak_delta_bytes=ok_t[0].get("peak_bytes"))
            rows.append(summ)
            _print_authors(summ)
    if own_cache:
        shutil.rmtree(base["compile_cache"], ignore_errors=True)
    return rows


def _print_authors(r):
    print(_fmt_authors(r), flush=True)


def _fmt_authors(r):
    w = r["workload"]
    if w.endswith("_ratio"):
        if "jaxdd_s_per_100_steps" in r:
            return (f"{'vs authors: DDiF warm-up ' + str(r['fields']) + ' fields':64s} jaxdd "
                    f"{r['jaxdd_s_per_100_steps']:.3f} s / PyTorch "
                    f"{r['pytorch_s_per_100_steps_extrapolated']:.2f} s per 100 steps -> "
                    f"x{r['speedup']:.1f}")
        mem = (f" | RSS {r['jaxdd_rss_hwm_bytes'] / 2**20:.0f} / "
               f"{r['pytorch_rss_hwm_bytes'] / 2**20:.0f} MiB (x{r['memory_ratio']:.2f})"
               if r.get("memory_ratio") else "")
        if r.get("jaxdd_rss_hwm_bytes_warm_cache"):
            mem += f"; jaxdd {r['jaxdd_rss_hwm_bytes_warm_cache'] / 2**20:.0f} MiB warm cache"
        cpu = (f" (CPU time x{r['cpu_speedup']:.2f})" if r.get("cpu_speedup") else "")
        return (f"{'vs authors: ' + r['method'] + ' TM, ' + str(r['instances']) + ' inst, s' + str(r['syn_steps']):64s} jaxdd "
                f"{r['jaxdd_s']:.2f} s / PyTorch {r['pytorch_s']:.2f} s -> x{r['speedup']:.2f}"
                + cpu + mem)
    desc = f"authors {w[len('authors_'):]} {r.get('impl')} round {r.get('round')}"
    if r.get("skipped"):
        return f"{desc:64s} skipped: {r['skipped']}"
    sec = r.get("seconds_median")
    out = f"{desc:64s} {sec:9.3f} s" if sec is not None else desc
    return (out + _piece(r, "rss_hwm_bytes", " | RSS hwm {:6.0f} MiB", lambda b: b / 2**20)
            + _piece(r, "compile_s", " | comp {:5.1f} s") + _load_piece(r))


# ----------------------------------------------------------------------------- training rows

def experts_section(cfg, ceil):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd import experts
    from jaxdd.models import get_model

    e = cfg.experts
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(e.num_examples, cfg.side, cfg.side, cfg.channels))
                    .astype(np.float32))
    y = jnp.asarray(rng.integers(0, cfg.num_classes, e.num_examples).astype(np.int32))
    model = get_model(cfg.model, cfg.num_classes)
    keys = experts.expert_keys(jax.random.PRNGKey(0), e.num_experts)
    params, k_train = experts._make_init_fn(model)(keys, x[:1])
    epoch_fn = experts.make_epoch_fn(model, e.batch_size, e.dsa_strategy)
    lr = jnp.float32(0.01)
    singles = [(jax.tree.map(lambda a: a[i:i + 1], params), k_train[i:i + 1])
               for i in range(e.num_experts)]
    t0 = time.perf_counter()
    jax.block_until_ready(epoch_fn(params, k_train, jnp.int32(0), x, y, lr))
    c_tog = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(epoch_fn(*singles[0], jnp.int32(0), x, y, lr))
    c_one = time.perf_counter() - t0
    tog = measure(lambda: epoch_fn(params, k_train, jnp.int32(0), x, y, lr)[0], e.repeats)
    one = measure(lambda: [epoch_fn(p, k, jnp.int32(0), x, y, lr)[0] for p, k in singles],
                  e.repeats)
    f_img = forward_flops(model, jax.tree.map(lambda a: a[0], params), x[:1])
    imgs = e.num_experts * e.num_examples
    rows = []
    for mode, r, c in (("together", tog, c_tog), ("one_at_a_time", one, c_one)):
        row = {"workload": "expert_training_epoch", "mode": mode, "num_experts": e.num_experts,
               "num_examples": e.num_examples, "batch_size": e.batch_size,
               "dsa": e.dsa_strategy, "first_call_s": c, **r,
               "images_per_s": imgs / r["seconds_median"],
               **_rate(3 * f_img * imgs, r["seconds_median"], ceil, r["cpu_seconds_median"])}
        rows.append(row)
        _print_row(row)
    rows[0]["speedup_vs_one_at_a_time"] = one["seconds_median"] / tog["seconds_median"]
    return rows


def eval_section(cfg, ceil):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd import evaluate
    from jaxdd.models import get_model

    ev = cfg.eval
    rows = []
    model = get_model(cfg.model, cfg.num_classes)
    for num_train in ev.num_train:
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(num_train, cfg.side, cfg.side, cfg.channels))
                        .astype(np.float32))
        y = jnp.asarray((np.arange(num_train) % cfg.num_classes).astype(np.int32))
        init_all, train_epochs, _ = evaluate.make_eval_fns(
            model, num_train=num_train, epochs=ev.schedule_epochs, batch_size=ev.batch_size,
            dsa_strategy=ev.dsa_strategy)
        k = ev.num_nets
        params, opt = init_all(jax.random.split(jax.random.PRNGKey(0), k), x[:1])
        keys = jax.random.split(jax.random.PRNGKey(1), k * ev.epochs).reshape(k, ev.epochs, -1)
        lr = jnp.float32(0.01)
        sl = lambda t, i: jax.tree.map(lambda a: a[i:i + 1], t)
        extra = ()
        if "op_keys" in inspect.signature(train_epochs).parameters:  # shared DSA op keys
            extra = (jax.random.split(jax.random.PRNGKey(2), ev.epochs),)

        def train(p, o, ks):
            return train_epochs(p, o, ks, *extra, x, y, lr, n_epochs=ev.epochs)[0]

        run_tog = lambda: train(params, opt, keys)
        run_one = lambda: [train(sl(params, i), sl(opt, i), keys[i:i + 1]) for i in range(k)]
        t0 = time.perf_counter()
        jax.block_until_ready(run_tog())
        c_tog = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(train(sl(params, 0), sl(opt, 0), keys[:1]))
        c_one = time.perf_counter() - t0
        tog = measure(run_tog, ev.repeats)
        one = measure(run_one, ev.repeats)
        bs = min(ev.batch_size, num_train)
        steps = -(-num_train // bs) * ev.epochs
        f_b = forward_flops(model, jax.tree.map(lambda a: a[0], params), x[:bs])
        imgs = k * num_train * ev.epochs
        pair = []
        for mode, r, c in (("together", tog, c_tog), ("one_at_a_time", one, c_one)):
            row = {"workload": "eval_training", "mode": mode, "num_nets": k,
                   "num_train": num_train, "epochs": ev.epochs, "batch_size": bs,
                   "dsa": ev.dsa_strategy, "first_call_s": c, **r,
                   "images_per_s": imgs / r["seconds_median"],
                   **_rate(3 * f_b * steps * k, r["seconds_median"], ceil,
                           r["cpu_seconds_median"])}
            pair.append(row)
            _print_row(row)
        pair[0]["speedup_vs_one_at_a_time"] = one["seconds_median"] / tog["seconds_median"]
        rows += pair
    return rows


# ----------------------------------------------------------------------------- DDiF / FreD

def ddif_section(cfg, ceil):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd.param import ddif

    d = cfg.ddif
    rows = []
    pcfg = ddif.default_config()
    for k, v in dict(cfg.param_overrides.get("ddif", {})).items():
        pcfg[k] = v
    pcfg.ipc, pcfg.warmup_steps, pcfg.progress = d.ipc, 0, False
    rng = np.random.default_rng(0)
    shape = (cfg.side, cfg.side, cfg.channels)
    real = [rng.normal(size=(8,) + shape).astype(np.float32) for _ in range(d.num_classes)]
    params, aux = ddif.init(jax.random.PRNGKey(0), real, pcfg)
    k_all = int(len(aux["labels"]))
    # warm-up, steady state: the warm-up step of ddif.warmup (sum over fields of the
    # per-field MSE, Adam) in a jitted fori_loop of `warmup_steps` steps, on all fields at
    # once vs on one field per call (K calls)
    import optax

    from jaxdd.param import siren

    kw = min(int(d.warmup_fields), k_all)
    sub = jax.tree.map(lambda a: a[:kw], params)
    fn = ddif._apply_fn(aux)
    coords = jnp.asarray(siren.make_grid(tuple(aux["grid_shape"])))
    targets = jnp.asarray(rng.normal(size=(kw, coords.shape[0], cfg.channels))
                          .astype(np.float32))
    tx = optax.adam(5e-4)
    n_steps = int(d.warmup_steps)

    @jax.jit
    def fit(p, t):
        def total(p):
            return jnp.sum(jax.vmap(lambda pi, ti: jnp.mean((fn(pi, coords) - ti) ** 2))(p, t))

        def body(i, c):
            p, s = c
            g = jax.grad(total)(p)
            upd, s = tx.update(g, s, p)
            return optax.apply_updates(p, upd), s
        return jax.lax.fori_loop(0, n_steps, body, (p, tx.init(p)))[0]

    ones = [jax.tree.map(lambda a: a[i:i + 1], sub) for i in range(kw)]
    jax.block_until_ready(fit(sub, targets))
    jax.block_until_ready(fit(ones[0], targets[:1]))
    per_step = {}
    for mode, run in (("all_at_once", lambda: fit(sub, targets)),
                      ("one_at_a_time", lambda: [fit(o, targets[i:i + 1])
                                                 for i, o in enumerate(ones)])):
        r = measure(run, d.repeats)
        s = r["seconds_median"] / n_steps
        per_step[mode] = s
        row = {"workload": "ddif_warmup", "mode": mode, "fields": kw,
               "params_per_field": int(aux["params_per_field"]), "steps": n_steps, **r,
               "seconds_per_step_all_fields": s, "seconds_per_field_step": s / kw,
               "extrapolated_5000_steps_all_fields_s": 5000 * s}
        rows.append(row)
        _print_row(row)
    rows[0]["speedup_vs_one_at_a_time"] = per_step["one_at_a_time"] / per_step["all_at_once"]
    if d.get("library_call", True):
        # end to end: the library call (its own compile included), all fields at once
        t0 = time.perf_counter()
        p, _ = ddif.warmup(None, sub, aux, np.asarray(targets).reshape((kw,) + shape),
                           n_steps, progress=False, chunk=n_steps)
        jax.block_until_ready(p)
        rows[0]["library_call_s_incl_compile"] = time.perf_counter() - t0
    for res in d.decode_resolutions:
        f = jax.jit(lambda p, res=res: ddif.decode(p, aux, resolution=res))
        compiled, cs = compile_timed(f, params)
        r = measure(lambda: compiled(params), d.repeats, warmup=1)
        row = {"workload": "ddif_decode", "resolution": res, "instances": k_all,
               "compile_s": cs, **r, "seconds_per_instance": r["seconds_median"] / k_all,
               **_rate(xla_flops(compiled), r["seconds_median"], ceil)}
        rows.append(row)
        _print_row(row)
    return rows


def fred_section(cfg, ceil):
    import jax
    import numpy as np

    from jaxdd.param import fred

    fr = cfg.fred
    rows = []
    rng = np.random.default_rng(0)
    for ipc in fr.ipcs:
        npc = fred.num_per_class(ipc, cfg.side, cfg.side, fr.k)
        coefs = [rng.normal(size=(npc, cfg.side, cfg.side, cfg.channels)).astype(np.float32)
                 for _ in range(cfg.num_classes)]
        r = measure(lambda: fred.build_masks(coefs, fr.k, fr.mask, jax.random.PRNGKey(0)),
                    fr.repeats)
        row = {"workload": "fred_masks", "mask": fr.mask, "ipc": ipc, "k": fr.k,
               "instances_per_class": npc, "classes": cfg.num_classes, **r}
        rows.append(row)
        _print_row(row)
    return rows


# ----------------------------------------------------------------------------- reporting

def _piece(r, key, fmt, get=None, shown=bool):
    """One optional part of a printed row: fmt.format(r[key], through `get`) when
    shown(r.get(key)) (default: the field is truthy), else ''."""
    v = r.get(key)
    return fmt.format(v if get is None else get(v)) if shown(v) else ""


def _is_set(v):
    return v is not None


def _load_piece(r):
    return _piece(r, "load", " | load {:.1f}", lambda a: a[0])


def _describe(r):
    w = r["workload"]
    if w.startswith("tm_iteration_pytorch"):
        return (f"PyTorch MTT step, {r.get('num_images')} img, {r.get('syn_steps')} steps, "
                f"{r.get('threads', r.get('threads_requested'))} thr")
    if w.startswith("tm_iteration"):
        tag = "JAX peer step" if w.endswith("peer_jax") else f"TM {r['param']}"
        extra = f" dec {r['decode_subset']}" if r.get("decode_subset") else ""
        return (f"{tag} ipc{r['ipc']} s{r['syn_steps']} {'remat' if r['remat'] else 'unroll'} "
                f"{r['conv_impl']} {r['augment']} ({r['num_instances']} inst, b{r['batch_syn']}"
                f"{extra})")
    if w == "expert_training_epoch":
        return f"experts x{r['num_experts']} {r['mode']} ({r['num_examples']} img/epoch)"
    if w == "eval_training":
        return f"eval K={r['num_nets']} {r['mode']} ({r['num_train']} img, {r['epochs']} ep)"
    if w == "ddif_warmup":
        return f"DDiF warm-up {r['fields']} fields {r['mode']} ({r['steps']} Adam steps)"
    if w == "ddif_decode":
        return f"DDiF decode {r['instances']} fields @ {r['resolution']}px"
    if w == "fred_masks":
        return f"FreD {r['mask']} masks ipc{r['ipc']} ({r['classes']}x{r['instances_per_class']})"
    return w


def _fmt_row(r):
    if r["workload"].startswith("authors_"):
        return _fmt_authors(r)
    desc = _describe(r)
    if r.get("skipped"):
        return f"{desc:64s} skipped: {r['skipped']}"
    sec = r.get("seconds_median")
    s = f"{desc:64s} {sec:9.3f} s" if sec is not None else f"{desc:64s} {'(compile only)':>11s}"
    s += (_piece(r, "cpu_seconds_median", " cpu {:8.2f}", shown=_is_set)
          + _piece(r, "compile_s", " | comp {:5.1f} s", shown=_is_set))
    mem = r.get("xla_bytes") or r.get("peak_bytes") or r.get("rss_peak_bytes")
    if mem:
        s += f" | mem {mem / 2 ** 20:6.1f} MiB"
    if r.get("gflops_per_s"):
        s += f" | {r['gflops_per_s']:6.1f} GF/s"
        if r.get("frac_conv_ceiling") is not None:
            s += f" {100 * r['frac_conv_ceiling']:4.0f}% conv"
        if r.get("frac_conv_ceiling_cpu") is not None:
            s += f" ({100 * r['frac_conv_ceiling_cpu']:3.0f}% per cpu-s)"
    return (s + _piece(r, "images_per_s", " | {:8.1f} img/s")
            + _piece(r, "speedup_vs_one_at_a_time", " | x{:.2f} vs one") + _load_piece(r))


def _print_row(r):
    print(_fmt_row(r), flush=True)


def targets(result):
    """The issue's targets, each with the achieved figure (None where not measured)."""
    rows = result["rows"]
    ceil = result.get("ceilings", {})
    out = []

    def pick(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    jax_peer = [r for r in pick(workload="tm_iteration_peer_jax") if "seconds_median" in r]
    torch_rows = [r for r in pick(workload="tm_iteration_pytorch") if "seconds_median" in r]
    if jax_peer and torch_rows:
        best_t = min(torch_rows, key=lambda r: r["seconds_median"])
        best_j = min(jax_peer, key=lambda r: r["seconds_median"])
        ratio = best_t["seconds_median"] / best_j["seconds_median"]
        cpu_ratio = None
        if best_t.get("cpu_seconds_median") and best_j.get("cpu_seconds_median"):
            cpu_ratio = best_t["cpu_seconds_median"] / best_j["cpu_seconds_median"]
        out.append({"target": "TM iteration >= 3x faster than the PyTorch reference",
                    "achieved": ratio, "met": ratio >= 3.0,
                    "detail": f"PyTorch best ({best_t.get('threads')} threads) "
                              f"{best_t['seconds_median']:.3f} s vs JAX best "
                              f"({'remat' if best_j['remat'] else 'unrolled'}) "
                              f"{best_j['seconds_median']:.3f} s; CPU-time ratio "
                              f"{cpu_ratio if cpu_ratio is None else round(cpu_ratio, 2)}"})
    ipc10 = [r for r in pick(workload="tm_iteration", ipc=10) if r.get("gflops_per_s")]
    if ipc10 and ceil.get("conv_gflops"):
        best = max(ipc10, key=lambda r: r["gflops_per_s"])
        out.append({"target": "TM iteration >= 50% of the measured conv ceiling (IPC=10)",
                    "achieved": best["frac_conv_ceiling"], "met": best["frac_conv_ceiling"] >= 0.5,
                    "detail": f"{best['gflops_per_s']:.1f} GFLOP/s ({best['param']}, s"
                              f"{best['syn_steps']}, {'remat' if best['remat'] else 'unrolled'})"
                              f" vs conv ceiling {ceil['conv_gflops']:.1f} GFLOP/s; per CPU-"
                              f"second {best.get('gflops_per_cpu_s', float('nan')):.1f} vs "
                              f"{ceil.get('conv_gflops_per_cpu_s', float('nan')):.1f} = "
                              f"{100 * best.get('frac_conv_ceiling_cpu', float('nan')):.0f}%"})
    for ipc in sorted({r["ipc"] for r in pick(workload="tm_iteration", syn_steps=50)}):
        a = [r for r in pick(workload="tm_iteration", syn_steps=50, ipc=ipc, remat=True,
                             param="pixel") if r.get("xla_bytes")]
        b = [r for r in pick(workload="tm_iteration", syn_steps=50, ipc=ipc, remat=False,
                             param="pixel") if r.get("xla_bytes")]
        if a and b:
            frac = a[0]["xla_bytes"] / b[0]["xla_bytes"]
            out.append({"target": f"peak memory with checkpointing < 1/4 of unrolled "
                                  f"(syn_steps 50, pixel IPC {ipc})",
                        "achieved": frac, "met": frac < 0.25,
                        "detail": f"{a[0]['xla_bytes'] / 2**20:.0f} MiB vs "
                                  f"{b[0]['xla_bytes'] / 2**20:.0f} MiB (XLA memory analysis)"})
    goal = {"mtt": 1.5, "fred": 3.0, "ddif": 3.0, "ddif_warmup": 50.0}
    for r in rows:
        w = r["workload"]
        if not (w.startswith("authors_") and w.endswith("_ratio")):
            continue
        m = r["method"]
        name = {"mtt": "pixel (MTT) TM", "fred": "FreD TM", "ddif": "DDiF TM",
                "ddif_warmup": "DDiF warm-up"}.get(m, m)
        out.append({"target": f"{name} >= {goal.get(m, 1.0):g}x the authors' code (same "
                              "machine, side by side)",
                    "achieved": r["speedup"], "met": r["speedup"] >= goal.get(m, 1.0),
                    "detail": _fmt_authors(r).split("  ")[-1].strip()})
        if r.get("memory_ratio"):
            out.append({"target": f"{name} peak memory <= 1/2 of the authors' (RSS high-water)",
                        "achieved": r["memory_ratio"], "met": r["memory_ratio"] <= 0.5,
                        "detail": f"{r['jaxdd_rss_hwm_bytes'] / 2**20:.0f} MiB vs "
                                  f"{r['pytorch_rss_hwm_bytes'] / 2**20:.0f} MiB"})
    for r in pick(workload="eval_training", mode="together"):
        if r.get("speedup_vs_one_at_a_time"):
            out.append({"target": f"K={r['num_nets']} evaluation networks together >= 3x one "
                                  f"at a time ({r['num_train']} images)",
                        "achieved": r["speedup_vs_one_at_a_time"],
                        "met": r["speedup_vs_one_at_a_time"] >= 3.0,
                        "detail": f"{r['images_per_s']:.0f} vs "
                                  f"{r['images_per_s'] / r['speedup_vs_one_at_a_time']:.0f} "
                                  f"images/s"})
    return out


def run(cfg, sections=None, out_path=None):
    """Run the suite described by `cfg` (configs/bench_tm.py); returns the result dict and
    writes it as JSON to `out_path` (default cfg.out)."""
    import jax

    out_path = out_path or cfg.out
    sections = list(sections or cfg.sections)
    for s in sections:
        if s not in SECTIONS:
            raise ValueError(f"unknown section {s!r}; choose from {SECTIONS}")
    t_start = time.time()
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "jax": jax.__version__, "backend": jax.default_backend(),
              "devices": [str(d) for d in jax.devices()],
              "machine": _machine(), "command": "python " + " ".join(sys.argv),
              "config": cfg.to_dict(), "sections": sections,
              "load_start": loadavg(), "rows": [], "ceilings": {}}
    print(f"jaxdd benchmark {result['date']} | jax {jax.__version__} "
          f"{jax.default_backend()} | {result['machine']} | load {result['load_start']}",
          flush=True)
    ceil = {}
    result["section_wall_s"] = walls = {}
    t_sec = time.time()
    if "ceilings" in sections:
        ceil = result["ceilings"] = ceilings(cfg)
        print(f"ceilings: matmul {ceil['matmul_gflops']:.1f} GFLOP/s (bf16 "
              f"{ceil['matmul_bf16_gflops']:.1f}), conv native {ceil['conv_native_gflops']:.1f}"
              f" / im2col {ceil['conv_im2col_gflops']:.1f} -> conv ceiling "
              f"{ceil['conv_gflops']:.1f} GFLOP/s | load {ceil['load'][0]:.1f}", flush=True)
        walls["ceilings"] = time.time() - t_sec

    def tm_section(cfg, ceil):
        rows = []
        budget = cfg.get("tm_max_wall_s")  # GPU script: stop starting rows past this
        t0 = time.time()
        for row in cfg.tm_rows:
            opts = _row_opts(cfg, row)
            if budget and time.time() - t0 > budget:
                rows.append({"workload": "tm_iteration", **{k: opts[k] for k in (
                    "param", "ipc", "syn_steps", "remat", "conv_impl", "augment", "mode")},
                    "num_instances": None, "batch_syn": opts["batch_syn"],
                    "skipped": f"tm section past its {budget} s budget"})
            else:
                try:
                    rows.append(tm_row(cfg, row, ceil))
                except Exception as e:  # e.g. out of device memory: record and go on
                    rows.append({"workload": "tm_iteration", **{k: opts[k] for k in (
                        "param", "ipc", "syn_steps", "remat", "conv_impl", "augment",
                        "mode")}, "num_instances": None, "batch_syn": opts["batch_syn"],
                        "skipped": f"{type(e).__name__}: {str(e)[:300]}"})
            _print_row(rows[-1])
        return rows

    for name, fn in (("peer", peer_section), ("authors", authors_section), ("tm", tm_section),
                     ("experts", experts_section), ("eval", eval_section),
                     ("ddif", ddif_section), ("fred", fred_section)):
        if name in sections:
            t_sec = time.time()
            result["rows"] += fn(cfg, ceil)
            walls[name] = time.time() - t_sec
            _write_json(result, out_path)  # partial results survive a timeout
    if "ceilings" in sections and cfg.get("ceilings_at_end", True):
        # the load of a shared machine drifts: measure again at the end and divide by the
        # best of the two (the conservative choice for "fraction of the ceiling")
        t_sec = time.time()
        end = ceilings(cfg)
        result["ceilings_start"], result["ceilings_end"] = dict(ceil), end
        for k in ("matmul_gflops", "matmul_bf16_gflops", "conv_native_gflops",
                  "conv_im2col_gflops", "conv_gflops", "matmul_gflops_per_cpu_s",
                  "conv_gflops_per_cpu_s"):
            ceil[k] = max(ceil[k], end[k])
        for r in result["rows"]:
            if r.get("gflops_per_s"):
                r["frac_conv_ceiling"] = r["gflops_per_s"] / ceil["conv_gflops"]
                r["frac_matmul_ceiling"] = r["gflops_per_s"] / ceil["matmul_gflops"]
            if r.get("gflops_per_cpu_s"):
                r["frac_conv_ceiling_cpu"] = r["gflops_per_cpu_s"] / ceil["conv_gflops_per_cpu_s"]
        walls["ceilings"] += time.time() - t_sec
    result["targets"] = targets(result)
    result["load_end"] = loadavg()
    result["wall_s"] = time.time() - t_start
    print("\n" + table(result))
    _write_json(result, out_path)
    print(f"wrote {out_path}")
    return result


def _write_json(result, out_path):
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2, default=str)
    os.replace(tmp, out_path)


def _machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()} {cpu} x{os.cpu_count()} cores".replace("  ", " ")


def table(result):
    """The whole run as text: header, ceilings, one line per row, targets."""
    cs, ce = result.get("ceilings_start"), result.get("ceilings_end")
    lines = [f"jaxdd benchmark | {result['date']} | jax {result['jax']} {result['backend']} | "
             f"{result['machine']}",
             f"command: {result['command']}",
             f"load average (1/5/15 min): start {result['load_start']}, end "
             f"{result.get('load_end')}; wall {result.get('wall_s', 0):.0f} s ("
             + ", ".join(f"{k} {v:.0f}" for k, v in result.get("section_wall_s", {}).items())
             + ")"]
    c = result.get("ceilings") or {}
    if c:
        lines.append(f"ceilings per CPU-second: matmul {c.get('matmul_gflops_per_cpu_s', 0):.1f},"
                     f" conv {c.get('conv_gflops_per_cpu_s', 0):.1f} GFLOP/cpu-s")
        lines.append(f"ceilings: matmul f32 {c['matmul_gflops']:.1f} GFLOP/s (n={c['matmul_n']}),"
                     f" bf16 {c['matmul_bf16_gflops']:.1f}; conv {c['conv_shape']}: native "
                     f"{c['conv_native_gflops']:.1f}, im2col {c['conv_im2col_gflops']:.1f} -> "
                     f"conv ceiling {c['conv_gflops']:.1f} GFLOP/s" + (
                         f" (best of start/end: conv {cs['conv_gflops']:.1f} / "
                         f"{ce['conv_gflops']:.1f}, matmul {cs['matmul_gflops']:.1f} / "
                         f"{ce['matmul_gflops']:.1f})" if cs and ce else ""))
    lines += [_fmt_row(r) for r in result["rows"]]
    if result.get("targets"):
        lines.append("targets:")
        for t in result["targets"]:
            lines.append(f"  [{'met ' if t['met'] else 'MISS'}] {t['target']}: achieved "
                         f"{t['achieved']:.2f} ({t['detail']})")
    return "\n".join(lines)


def main(argv=None):
    """``python -m jaxdd.bench.suite --child '<json>'``: one authors-comparison jaxdd row
    (see :func:`child_jax`), printed as one ``JAX_RESULT <json>`` line."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--child":
        raise SystemExit("usage: python -m jaxdd.bench.suite --child '<json spec>' (the "
                         "benchmark itself: python launch/benchmark.py --config=...)")
    r = child_jax(json.loads(argv[1]))
    print("JAX_RESULT " + json.dumps(r, default=str), flush=True)


if __name__ == "__main__":
    main()
