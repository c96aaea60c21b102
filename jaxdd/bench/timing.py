"""How the benchmark suite measures (jaxdd.bench.suite's docstring, "Method"): wall and CPU
medians with the resident-set high-water (`measure`), compile time, XLA's memory and FLOP
analyses, analytic forward FLOPs, achieved rates against the ceilings, and the machine's
own ceilings (`ceilings`).
"""
from __future__ import annotations

import os
import resource
import statistics
import time

from jaxdd.bench.torch_reference import reset_peak_rss, rss_bytes  # torch: lazily


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
    """(compiled, seconds), compiled as `jaxdd.outer_step.Step` compiles its first call
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
