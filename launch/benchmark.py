"""Benchmarks: TM outer iteration, machine ceilings; writes JSON and prints a table.

    python launch/benchmark.py --config=configs/bench_tm.py             # the full table
    python launch/benchmark.py --config=configs/bench_tm.py:tiny        # smoke test

Every timed workload is timed AFTER compilation (compile time reported separately), as the
median of `repeats` runs, with `block_until_ready`. Rows carry their FLOP count so the
achieved GFLOP/s and the fraction of the machine's measured ceilings (a large matmul and a
large convolution, timed in the same run) are printed next to the time.

FLOPs of a TM iteration are counted analytically from the network's forward FLOPs F(b)
at the synthetic batch b (multiply-add = 2 FLOPs, convolutions and dense layers only):
per student step the inner forward+backward is 3 F, and differentiating the unroll costs
about twice its forward again, so ~9 F per step, ~12 F with `jax.checkpoint` (one extra
forward+backward recomputation of the step). This is the useful work; XLA's own
cost_analysis is also recorded where it is available.
Peak memory: XLA's compiled memory analysis (arguments + outputs + temporaries) of the
jitted step, which on CPU is the allocation the executable needs.
"""
import datetime
import json
import os
import platform
import statistics
import sys
import time

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

_CONFIG = config_flags.DEFINE_config_file("config", "configs/bench_tm.py", "benchmark config")
_OUT = flags.DEFINE_string("out", None, "JSON output path (default: from the config)")


def _time(fn, repeats):
    import jax
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def _compile(jitted, *args):
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _memory_bytes(compiled):
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                   - getattr(m, "alias_size_in_bytes", 0))
    except Exception:  # pragma: no cover - backend without memory analysis
        return None


def _xla_flops(compiled):
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
                (lc, _), (lb, _) = eqn.params["dimension_numbers"]
                a = eqn.invars[0].aval.shape
                out = eqn.outvars[0].aval.shape
                k = int(np.prod([a[i] for i in lc])) if lc else 1
                total += 2 * int(np.prod(out)) * k
            elif eqn.primitive.name == "conv_general_dilated":
                out = eqn.outvars[0].aval.shape
                w = eqn.invars[1].aval.shape
                total += 2 * int(np.prod(out)) * int(np.prod(w)) // max(w[-1], 1)
            for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else []:
                walk(sub)
            for v in eqn.params.values():
                if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    walk(v.jaxpr)
                elif hasattr(v, "eqns"):
                    walk(v)
    walk(jaxpr.jaxpr)
    return total


def ceilings(cfg):
    """The machine's own ceilings in GFLOP/s: a large matmul and a large convolution."""
    import jax
    import jax.numpy as jnp

    n = cfg.ceiling_matmul
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    mm = jax.jit(lambda a: a @ a)
    jax.block_until_ready(mm(a))
    t, _ = _time(lambda: mm(a), cfg.repeats)
    out = {"matmul_n": n, "matmul_gflops": 2 * n ** 3 / t / 1e9}
    b, h, c = cfg.ceiling_conv
    x = jax.random.normal(jax.random.PRNGKey(1), (b, h, h, c))
    w = jax.random.normal(jax.random.PRNGKey(2), (3, 3, c, c))
    cv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    jax.block_until_ready(cv(x, w))
    t, _ = _time(lambda: cv(x, w), cfg.repeats)
    out.update(conv_shape=[b, h, h, c], conv_gflops=2 * b * h * h * c * c * 9 / t / 1e9)
    return out


def bench_tm_row(cfg, param_name, ipc, syn_steps, remat, conv_impl):
    """One TM outer iteration (decode + unroll + meta-gradient + update), jitted."""
    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np
    import optax

    from jaxdd import param as param_lib
    from jaxdd.augment import dsa
    from jaxdd.models import get_model
    from jaxdd.objective import tm

    h, c, nc = cfg.side, cfg.channels, cfg.num_classes
    model = get_model(cfg.model, nc, conv_impl=conv_impl)
    rng = np.random.default_rng(0)
    real = [rng.normal(size=(max(4 * ipc, 8), h, h, c)).astype(np.float32) for _ in range(nc)]
    pm = param_lib.get(param_name)
    pcfg = pm.default_config()
    pcfg.ipc = ipc
    for k, v in dict(cfg.param_overrides.get(param_name, {})).items():
        pcfg[k] = v
    syn_params, aux = pm.init(jax.random.PRNGKey(0), real, pcfg)
    labels = jnp.asarray(aux["labels"])
    x0 = jnp.zeros((1, h, h, c))
    theta0 = model.init(jax.random.PRNGKey(1), x0)["params"]
    target = jax.tree.map(lambda t: t + 0.01, theta0)
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=True)
    loss = tm.make_loss(apply_fn, syn_steps=syn_steps, batch_syn=0,
                        augment=lambda k, x: dsa(k, x), remat=remat)
    tx = optax.sgd(100.0, momentum=0.5)

    @jax.jit
    def step(syn_params, opt_state, syn_lr, key):
        def f(sp, lr):
            imgs = pm.decode(sp, aux)
            return loss(key, imgs, labels, tm.TMContext(theta0, target, lr))
        l, (g, glr) = jax.value_and_grad(f, argnums=(0, 1))(syn_params, syn_lr)
        upd, opt_state = tx.update(g, opt_state, syn_params)
        return optax.apply_updates(syn_params, upd), opt_state, syn_lr - 1e-5 * glr, l

    opt_state = tx.init(syn_params)
    args = (syn_params, opt_state, jnp.float32(0.01), jax.random.PRNGKey(2))
    compiled, compile_s = _compile(step, *args)
    jax.block_until_ready(compiled(*args))
    med, ts = _time(lambda: compiled(*args), cfg.repeats)
    n_img = int(labels.shape[0])
    f_fwd = forward_flops(model, theta0, jnp.zeros((n_img, h, h, c)))
    flops = f_fwd * syn_steps * (12 if remat else 9)
    return {
        "workload": "tm_iteration", "param": param_name, "ipc": ipc, "num_images": n_img,
        "syn_steps": syn_steps, "remat": remat, "conv_impl": conv_impl, "model": cfg.model,
        "shape": [h, h, c], "seconds_median": med, "seconds_all": ts, "compile_s": compile_s,
        "peak_bytes": _memory_bytes(compiled), "flops": flops, "xla_flops": _xla_flops(compiled),
        "gflops_per_s": flops / med / 1e9,
    }


def main(argv):
    del argv
    import jax

    cfg = _CONFIG.value
    out_path = _OUT.value or cfg.out
    result = {"date": datetime.date.today().isoformat(), "jax": jax.__version__,
              "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
              "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "command": " ".join(sys.argv), "ceilings": ceilings(cfg), "rows": []}
    ceil = result["ceilings"]
    print(f"ceilings: matmul {ceil['matmul_gflops']:.1f} GFLOP/s, conv {ceil['conv_gflops']:.1f} GFLOP/s")
    for row in cfg.tm_rows:
        r = bench_tm_row(cfg, *row)
        r["frac_conv_ceiling"] = r["gflops_per_s"] / ceil["conv_gflops"]
        r["frac_matmul_ceiling"] = r["gflops_per_s"] / ceil["matmul_gflops"]
        result["rows"].append(r)
        mem = f"{r['peak_bytes'] / 2**20:.0f} MiB" if r["peak_bytes"] else "n/a"
        print(f"TM {r['param']:6s} ipc={r['ipc']:3d} steps={r['syn_steps']:3d} "
              f"remat={str(r['remat']):5s} conv={r['conv_impl']:7s}: "
              f"{r['seconds_median']:.3f} s/it (compile {r['compile_s']:.1f} s), peak {mem}, "
              f"{r['gflops_per_s']:.1f} GFLOP/s = {100 * r['frac_conv_ceiling']:.0f}% of conv "
              f"ceiling", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    app.run(main)
