"""jaxdd next to PyTorch: the suite's ``peer`` section (the JAX TM step beside
``jaxdd.bench.torch_reference`` in a subprocess) and ``authors`` section (jaxdd vs the
authors' MTT / FreD / DDiF steps and DDiF's warm-up, each side in a fresh process, with the
jaxdd child `child_jax` that ``python -m jaxdd.bench.suite --child`` runs).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from jaxdd.bench.report import _print_authors, _print_row
from jaxdd.bench.timing import _rate, forward_flops, loadavg, measure
from jaxdd.bench.tm_rows import _row_opts, tm_row
from jaxdd.bench.torch_reference import rss_bytes  # torch: lazily


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
