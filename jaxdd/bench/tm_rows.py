"""The suite's TM rows: one outer iteration of the library's own jitted step
(``jaxdd.outer_step.make_step``) per row of cfg.tm_rows (parameterization, IPC, syn_steps,
remat, conv implementation), compiled, then timed or only memory-analysed.
"""
from __future__ import annotations

import time

from jaxdd import outer_step
from jaxdd.bench.timing import (_rate, compile_timed, forward_flops, measure, memory_bytes,
                                xla_flops)


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
    """(compiled-able jitted step, state, data, info) for one TM row (outer_step.make_step)."""
    import jax
    import jax.numpy as jnp
    import ml_collections

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
    step, init_state = outer_step.make_step(pm, aux, objective, scfg)
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
