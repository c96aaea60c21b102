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
            (``jaxdd.outer_step.make_step``: decode -> unroll -> meta-gradient -> optimizer),
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

Modules: this one holds the config builders (`base_config`, `tm_spec`, `tiny_shapes`), `run`
and the ``--child`` entry point; the measuring is in ``jaxdd.bench.timing``, the sections in
``tm_rows`` (tm), ``comparisons`` (peer, authors), ``training_rows`` (experts, eval) and
``param_rows`` (ddif, fred), the printed lines, targets and table in ``report``.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time

from jaxdd.bench.comparisons import (  # noqa: F401 -- re-exported (tests, callers)
    AUTHOR_PARAM, authors_section, child_jax, peer_section, torch_row)
from jaxdd.bench.param_rows import ddif_section, fred_section
from jaxdd.bench.report import _print_row, table, targets
from jaxdd.bench.timing import (  # noqa: F401 -- re-exported (tests, callers)
    ceilings, compile_timed, forward_flops, loadavg, measure, memory_bytes, xla_flops)
from jaxdd.bench.tm_rows import _row_opts, tm_row, tm_step_setup  # noqa: F401 -- re-exported
from jaxdd.bench.training_rows import eval_section, experts_section

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


# ----------------------------------------------------------------------------- run

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
