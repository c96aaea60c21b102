"""The suite's reporting: one printed line per row (`_fmt_row`, the authors rows
`_fmt_authors`), the issue's targets with what was achieved (`targets`) and the whole run as
text (`table`).
"""
from __future__ import annotations


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
