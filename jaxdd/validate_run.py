"""The checks of `jaxdd.validate` that need more than one field: names from closed sets
(optimizers, schedules, DSA op groups, every parameterization's fields), model /
objective compatibility (trajectory-matching experts and students are stateless: no
BatchNorm), the mesh against the devices, the synthetic set against its batches, a memory
estimate that refuses what cannot fit, every output directory, and a finished run asked to
stop earlier. Each writes into a `validate.Report` (every problem at once, nothing run).
"""
from __future__ import annotations

import os

import numpy as np

from jaxdd.validate import _get, _num

__all__ = ["enums", "param_fields", "param_budget", "stateless_model", "mesh", "num_instances", "set_batches",
           "memory_estimate", "memory", "output_dirs", "finished_run"]

OPTIMIZERS = ("sgd", "adam")          # jaxdd.outer_step.make_optimizer
SCHEDULES = ("constant", "cosine")


def _choice(rep, cfg, dotted, known, *, hint=""):
    v = _get(cfg, dotted)
    if v is None:
        return
    if str(v).lower() not in known:
        rep.error(f"{dotted}={v!r} is not one of the known: {', '.join(known)}{hint}")


def enums(rep, cfg):
    """Optimizer names and schedules of every optimizer group; the DSA strategy's op groups
    (the data's modality is checked later, with the data)."""
    opt = _get(cfg, "opt") or {}
    for group in sorted(getattr(opt, "keys", lambda: [])()):
        _choice(rep, cfg, f"opt.{group}.name", OPTIMIZERS)
        _choice(rep, cfg, f"opt.{group}.schedule", SCHEDULES)
        if str(_get(cfg, f"opt.{group}.schedule", "")) == "cosine":
            _num(rep, cfg, f"opt.{group}.decay_steps", minimum=1, integer=True,
                 hint=" (updates over which the cosine schedule decays)")
    for dotted in ("dsa_strategy", "buffer.dsa_strategy"):
        s = _get(cfg, dotted)
        if s is None:
            continue
        from jaxdd.augment.strategy import parse_strategy
        try:
            parse_strategy(s)
        except (ValueError, AttributeError) as e:
            rep.error(f"{dotted}={s!r}: {e}")  # validate.data's words: reported once


# {param name: [(field, rule)]}; rule: ("int>=", m) | ("num>", 0) | ("num>=", 0) | names
_PARAM_FIELDS = {
    "pixel": [("init", ("real", "first", "noise"))],
    "fred": [("k", ("int>=", 1)), ("dwt_levels", ("int>=", 0)),
             ("transform", ("dct", "dft", "dwt")), ("norm", ("ortho", "none", "backward")),
             ("mask", ("evr", "lowpass", "random", "amplitude"))],
    "ddif": [("width", ("int>=", 1)), ("num_layers", ("int>=", 1)), ("w0", ("num>", 0)),
             ("w0_initial", ("num>", 0)), ("field", ("siren", "ffn")),
             ("ffn_mapping", ("gaussian", "positional", "basic")),
             ("ffn_num_features", ("int>=", 1)), ("ffn_scale", ("num>", 0)),
             ("warmup_steps", ("int>=", 0)), ("warmup_chunk", ("int>=", 1)),
             ("warmup_batch", ("int>=", 0)), ("fields_per_class", ("int>=", 0)),
             ("dim_in", ("int>=", 0)), ("dim_out", ("int>=", 0))],
    "nsd": [("init", ("random", "dct")), ("k1_init", ("auto", "pca", "dct")),
            ("init_std", ("num>=", 0)), ("dct_noise", ("num>=", 0))]
           + [(f, ("int>=", 1)) for f in ("n_k", "n_t", "t1", "t2", "t3", "t4", "t5", "u1")],
}


def param_fields(rep, cfg):
    """Every field of the parameterization's block against its rule (a width of 0 is a
    message here, not a ZeroDivisionError at init)."""
    name = str(_get(cfg, "param.name", "")).lower()
    for field, rule in _PARAM_FIELDS.get(name, []):
        dotted = f"param.{field}"
        if _get(cfg, dotted) is None:
            continue
        if rule[0] == "int>=":
            _num(rep, cfg, dotted, minimum=rule[1], integer=True, optional=True)
        elif rule[0] == "num>":
            _num(rep, cfg, dotted, positive=True, optional=True)
        elif rule[0] == "num>=":
            _num(rep, cfg, dotted, minimum=0, optional=True)
        else:
            _choice(rep, cfg, dotted, rule)
    if name == "ddif" and (_get(cfg, "param.warmup_steps", 0) or 0) > 0:
        _num(rep, cfg, "param.warmup_lr", positive=True)


def param_budget(rep, cfg, image_shape):
    """The parameterization's budget rule on the data's shape (a rank it does not take, a
    budget nothing fits in), as the loop will state it, with the other problems."""
    from jaxdd import param as param_lib
    try:
        pm = param_lib.get(str(_get(cfg, "param.name")))
    except Exception:  # noqa: BLE001 -- reported by distill_config
        return
    try:
        param_lib.budget_line(pm, cfg.param, tuple(image_shape))
    except Exception as e:  # noqa: BLE001
        if not any(m.startswith("param.") for m in rep.errors):  # a bad field says it
            rep.error(f"param ({_get(cfg, 'param.name')}): {type(e).__name__}: {e}")


def _model(cfg, prefix, num_classes):
    from jaxdd.models import get_model
    ov = _get(cfg, f"{prefix}.overrides") or {}
    ov = ov.to_dict() if hasattr(ov, "to_dict") else dict(ov)
    return get_model(str(_get(cfg, f"{prefix}.name")), int(num_classes), **ov)


def stateless_model(rep, cfg, image_shape, num_classes, *, why, prefix="model"):
    """Trajectory-matching experts and students carry only 'params' (MTT's networks use
    instance norm): a model with batch statistics is refused, naming the ones that work."""
    import jax
    import jax.numpy as jnp
    try:
        model = _model(cfg, prefix, num_classes)
        x = jnp.zeros((1,) + tuple(int(s) for s in image_shape), jnp.float32)
        shapes = jax.eval_shape(lambda k: model.init(k, x, train=False),
                                jax.random.PRNGKey(0))
    except Exception:  # noqa: BLE001 -- unbuildable / wrong rank: reported elsewhere
        return
    extra = sorted(c for c in shapes if c != "params")
    if extra:
        name = _get(cfg, f"{prefix}.name")
        rep.error(f"{prefix}.name={name!r} keeps {extra} (batch norm): {why} need a "
                  f"stateless network. Use the same network without BN (e.g. "
                  f"{str(name).replace('BN', '') or 'ConvNetD3'!r}: instance norm, MTT's "
                  f"default), or norm 'IN' / 'LN' / 'GN' / 'NN' (ConvNet[D<d>][W<w>]<norm>)")


def mesh(rep, cfg):
    """cfg.mesh.data against the devices this process sees (0 = all of them)."""
    n = _num(rep, cfg, "mesh.data", minimum=0, integer=True, optional=True,
             hint=" (0: every device)")
    if not n:
        return
    import jax
    have = jax.device_count()
    if n > have:
        rep.error(f"mesh.data={n}: this run sees {have} device(s) ({jax.default_backend()}); "
                  f"use 0 (all) or 1..{have}")
    elif jax.process_count() > 1 and n != have:
        rep.error(f"mesh.data={n}: a multi-process run ({jax.process_count()} processes) uses "
                  f"every device ({have}); set mesh.data=0")


def num_instances(cfg, image_shape, num_classes):
    """The number of synthetic instances the parameterization will hold (what
    decode_subset counts), None when it cannot be said before init."""
    p = _get(cfg, "param")
    name, ipc = str(_get(p, "name", "")).lower(), int(_get(p, "ipc", 1) or 1)
    shape = tuple(int(s) for s in image_shape)
    try:
        if name == "pixel":
            return ipc * int(num_classes)
        if name == "ddif":
            from jaxdd.param import ddif
            b = ddif.params_per_field(p, shape)
            fixed = int(_get(p, "fields_per_class", 0) or 0)
            return ddif.fields_per_class(ipc, shape, b, fixed) * int(num_classes)
        if name == "fred":
            from jaxdd.param import fred
            n = fred.instances_per_class(ipc, shape[:-1], int(_get(p, "k")))
            return n * int(num_classes)
    except Exception:  # noqa: BLE001 -- a bad field is reported by budget_line
        return None
    return None


def set_batches(rep, cfg, image_shape, num_classes):
    """decode_subset (instances) and TM's batch_syn (images) larger than the synthetic set:
    CLAMPED, with a one-line note. Both mean "at most this many": the loop already decodes
    the whole set when decode_subset >= its size and TM draws min(batch_syn, N), the
    authors' behaviour (MTT chunks a permutation of the set), and the shipped DDiF TM configs
    set decode_subset = syn_steps x batch_syn, which exceeds small sets by design; refusing
    would refuse the authors' own settings."""
    n = num_instances(cfg, image_shape, num_classes)
    if n is None or n < 1:  # NSD: known after init only
        return
    ds = _get(cfg, "decode_subset", 0) or 0
    if isinstance(ds, (int, np.integer)) and ds >= n:
        rep.warn(f"decode_subset={ds} >= the {n} synthetic instances: every instance is "
                 f"decoded each iteration (clamped to {n})")
    bs = _get(cfg, "objective.batch_syn", 0) or 0
    if (str(_get(cfg, "objective.name", "")).lower() == "tm"
            and isinstance(bs, (int, np.integer)) and bs > n):
        rep.warn(f"objective.batch_syn={bs} > the {n} synthetic images: each student step "
                 f"uses all {n} (clamped)")


# ----------------------------------------------------------------------------- memory

def _activation_floats(model, image_shape):
    """Floats per example of the outputs of the network's convolutions and matrix products
    (what a backward pass must keep or recompute): a shape-only trace, no compute."""
    import jax
    import jax.numpy as jnp
    x = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    variables = jax.eval_shape(lambda k: model.init(k, jnp.zeros(x.shape), train=False),
                               jax.random.PRNGKey(0))
    jaxpr = jax.make_jaxpr(lambda v, a: model.apply(v, a, train=False))(variables, x)
    total = [0]

    def walk(jx):
        for eqn in jx.eqns:
            if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
                total[0] += sum(int(np.prod(v.aval.shape)) for v in eqn.outvars)
            for p in eqn.params.values():
                for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        walk(inner)

    walk(jaxpr.jaxpr)
    nparams = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables))
    return total[0], nparams


def memory_estimate(cfg, image_shape, num_classes) -> dict:
    """A LOWER bound of the bytes a run holds (float32): the synthetic set (decoded size;
    the storage rules keep the parameters within it) as parameters, gradients, decoded
    images and the optimizer's slots; one forward pass of the largest batch of synthetic
    images (TM: a student step over min(batch_syn or all, microbatch) images, kept for the
    second-order pass; other objectives: one class); TM's expert trajectories on the host."""
    ipc, k = int(_get(cfg, "param.ipc", 1) or 1), int(num_classes)
    per_image = int(np.prod(image_shape))
    images = ipc * k
    s = 4 * images * per_image
    slots = 2 if str(_get(cfg, "opt.syn.name", "sgd")).lower() == "adam" else (
        1 if _get(cfg, "opt.syn.momentum", 0.5) else 0)
    out = {"synthetic_set": s, "set_states": s * (3 + slots), "activations": 0,
           "trajectories_host": 0, "images": images}
    try:
        act, nparams = _activation_floats(_model(cfg, "model", k), image_shape)
    except Exception:  # noqa: BLE001 -- an unbuildable model is reported elsewhere
        act, nparams = 0, 0
    tm = str(_get(cfg, "objective.name", "")).lower() == "tm"
    if tm:
        bs = int(_get(cfg, "objective.batch_syn", 0) or 0) or images
        mb = int(_get(cfg, "objective.microbatch", 0) or 0)
        batch = min(bs, images, mb) if mb > 0 else min(bs, images)
        epochs = (int(_get(cfg, "objective.max_start_epoch", 0) or 0)
                  + int(_get(cfg, "objective.expert_epochs", 0) or 0) + 1)
        out["trajectories_host"] = (4 * nparams * epochs
                                    * int(_get(cfg, "buffer.num_experts", 0) or 0))
    else:
        batch = ipc
    out["activations"] = 4 * act * batch
    out["batch"] = batch
    out["device"] = out["set_states"] + out["activations"]
    out["host"] = s + out["trajectories_host"]
    return out


def _host_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _device_limit():
    """(bytes per device, number of devices, backend); bytes None on CPU (host memory)."""
    import jax
    d = jax.local_devices()[0]
    try:
        stats = d.memory_stats() or {}
    except Exception:  # noqa: BLE001
        stats = {}
    return stats.get("bytes_limit"), jax.device_count(), jax.default_backend()


def _gib(b):
    return f"{b / 2**30:,.2f} GiB" if b >= 2**30 else f"{b / 2**20:,.1f} MiB"


def memory(rep, cfg, image_shape, num_classes, *, host=None, device=None):
    """Refuse (an error, not a warning) a run whose lower-bound estimate exceeds the
    machine's memory: the host's available memory (CPU devices share it) or one
    accelerator's (`host` / `device` bytes: for tests)."""
    est = memory_estimate(cfg, image_shape, num_classes)
    host = _host_available() if host is None else host
    limit, ndev, backend = _device_limit()
    limit = device if device is not None else limit
    parts = (f"synthetic set {_gib(est['synthetic_set'])} ({est['images']:,} images of "
             f"{'x'.join(map(str, image_shape))}) x parameters / gradients / decoded / "
             f"optimizer = {_gib(est['set_states'])}, + one forward pass over "
             f"{est['batch']:,} images {_gib(est['activations'])}")
    if est["trajectories_host"]:
        parts += f", + expert trajectories on the host {_gib(est['trajectories_host'])}"
    fix = ("lower param.ipc" + (", or set objective.batch_syn / objective.microbatch"
                                if str(_get(cfg, "objective.name", "")) == "tm" else "")
           + ", or run on a machine with more memory")
    if limit is None or backend == "cpu":
        need = est["device"] + est["host"]
        if host and need > host:
            rep.error(f"param.ipc={_get(cfg, 'param.ipc')}: the run needs at least "
                      f"{_gib(need)} ({parts}), this machine has {_gib(host)} of memory "
                      f"available; {fix}")
        return est
    per_dev = est["set_states"] + est["activations"] / max(ndev, 1)
    if per_dev > limit:
        rep.error(f"param.ipc={_get(cfg, 'param.ipc')}: the run needs at least "
                  f"{_gib(per_dev)} per {backend} device ({parts}; the forward pass split "
                  f"over {ndev} device(s)), a device has {_gib(limit)}; {fix}")
    if host and est["host"] > host:
        rep.error(f"the run holds at least {_gib(est['host'])} in host memory (synthetic "
                  f"set, expert trajectories), this machine has {_gib(host)} available; {fix}")
    return est


# ----------------------------------------------------------------------------- paths

def _writable(directory):
    """None when a file can be created in `directory` (os.access, then a probe file made
    and removed at once: root, read-only mounts and shared filesystems' ACLs answer only to
    a real attempt), else the reason."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable by this user"
    import tempfile
    try:
        fd, probe = tempfile.mkstemp(prefix=".jaxdd-write-probe-", dir=directory)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return f"is not writable ({type(e).__name__}: {e.strerror or e})"
    return None


def output_dirs(rep, dirs: dict):
    """Every directory an entry point will write ({what: path}), checked before any work:
    not empty, not a regular file, not under one, writable (an existing directory) or
    creatable (its nearest existing parent a writable directory). Nothing is created."""
    for what, path in dirs.items():
        if path is None:
            continue
        p = str(path)
        if not p.strip():
            rep.error(f"{what} is empty: give a directory (or leave the flag out for the "
                      f"default)")
            continue
        p = os.path.abspath(os.path.expanduser(p))
        if os.path.exists(p) and not os.path.isdir(p):
            rep.error(f"{what} {p} is a regular file, not a directory: give another path "
                      f"(or move the file)")
            continue
        if os.path.isdir(p):
            why = _writable(p)
            if why:
                rep.error(f"{what} {p} {why}: fix its permissions or give another path")
            continue
        parent = os.path.dirname(p)
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            rep.error(f"{what} {p} cannot be created: {parent} is a regular file, not a "
                      f"directory")
            continue
        why = _writable(parent)
        if why:
            rep.error(f"{what} {p} cannot be created: {parent} {why}; give another path")


def finished_run(rep, workdir, cfg):
    """A workdir whose latest checkpoint is past cfg.iterations: the run cannot stop
    earlier than where it is (the earlier states are not kept); say where it is and how
    to extend it."""
    ckpt = os.path.join(str(workdir), "checkpoints")
    try:
        steps = sorted(int(n) for n in os.listdir(ckpt) if n.isdigit())
    except OSError:
        return
    total = _get(cfg, "iterations")
    if not steps or not isinstance(total, (int, np.integer)) or steps[-1] <= total:
        return
    done = os.path.exists(os.path.join(str(workdir), "synthetic.msgpack"))
    where = os.path.join(str(workdir), "synthetic.msgpack") if done else "in checkpoints/"
    rep.error(f"iterations={total}, but the run in {workdir} is "
              f"{'finished' if done else 'already'} at iteration {steps[-1]} (checkpoints "
              f"{steps}): a run cannot go back to an earlier iteration. Its set is {where}"
              f"; to extend it pass --config.iterations=N with N >= {steps[-1]} (resumes "
              f"to N); for a {total}-iteration set use a new --workdir")
