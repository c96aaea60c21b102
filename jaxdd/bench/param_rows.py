"""The suite's parameterization sections: DDiF (``ddif``: the warm-up with all fields at once
vs one field at a time, decode time per instance) and FreD (``fred``: mask construction).
"""
from __future__ import annotations

import time

from jaxdd.bench.report import _print_row
from jaxdd.bench.timing import _rate, compile_timed, measure, xla_flops


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
