"""Cross-architecture evaluation: distilled sets x evaluation networks.

Every (set, network) pair is evaluated with the protocol the set was made for
(`jaxdd.evaluators`; hard labels: `jaxdd.evaluate.evaluate_synthetic`, K fresh networks
trained together, the set's learned syn_lr, DSA; a CFM set: its teacher's soft labels), the
FINAL test accuracy, mean +- std over the K networks, as `launch/evaluate.py --model=X`
does for one pair. A network that cannot run at the set's resolution (VGG11's five 2x2
poolings need 32 px) is evaluated at the smallest multiple of it where it runs
(`fitting_resolution`; FreD/DDiF decode natively there, pixels and NSD are resized) and the
table says so. Results are written after every pair (JSON) and a re-run skips the pairs
already in it.

    rows = cross_arch({"pixel": "a/synthetic.msgpack"}, ["ConvNetD2W32", "ViT"], out=...)
    print(markdown_table(rows))
"""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_MODELS = ("ConvNetD2W32", "AlexNet", "VGG11", "ResNet18", "ViT")


def runs_at(model, image_shape) -> bool:
    """Whether `model` can init and apply on (1, *image_shape) inputs (shapes only)."""
    x = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    try:
        v = jax.eval_shape(lambda z: model.init(jax.random.key(0), z, train=False), x)
        jax.eval_shape(lambda vv, z: model.apply(vv, z, train=False), v, x)
    except Exception:  # noqa: BLE001 -- any shape error means "not at this size"
        return False
    return True


def fitting_resolution(model, resolution, channels, factors=(1, 2, 4, 8)) -> int:
    """The smallest resolution * f (f in factors) at which `model` runs."""
    for f in factors:
        if runs_at(model, (resolution * f, resolution * f, channels)):
            return resolution * f
    raise ValueError(f"{type(model).__name__} runs at none of the resolutions "
                     f"{[resolution * f for f in factors]}")


def _dataset_of(meta, resolution, *, name=None, zca=None, cache=None):
    """The (train, test) data a saved set was distilled on (its meta.dataset, through the
    one dataset mapping `jaxdd.assemble.dataset_kwargs`), at `resolution`; `name` / `zca`
    override the recorded ones. `cache`: a dict reused across calls (one load per data)."""
    from jaxdd import assemble
    d = dict(meta.get("dataset", {}) or {})
    name = name or d.get("name")
    if not name:
        raise ValueError("the synthetic set has no dataset metadata (meta.dataset.name)")
    key = json.dumps([d, name, resolution, zca], sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    out = assemble.data({**d, "name": name}, shard=None, resolution=resolution, zca=zca)
    if cache is not None:
        cache[key] = out
    return out


def _set_protocol(rep, what, meta, protocol):
    """The protocol a set is scored with (`protocol`, else its stored one), its teacher
    checked when soft labels need one."""
    from jaxdd import evaluators
    protocol = protocol or evaluators.stored_protocol(meta)
    if protocol not in ("hard_label", "soft_label"):
        rep.error(f"{what}: protocol {protocol!r}: use hard_label or soft_label")
    teacher = ((meta.get("evaluation") or {}).get("teacher") or {}).get("path")
    if protocol == "soft_label" and not (teacher and os.path.exists(teacher)):
        rep.error(f"{what} is scored with soft labels (its protocol), but its teacher "
                  f"{teacher or '(none recorded)'} is missing: re-run its distill command, or "
                  f"pass --protocol=hard_label (not comparable)")
    return protocol


def evaluate_saved(key, synthetic=None, *, random_real=False, ipc=1, dataset=None,
                   resolution=None, model=None, zca=None, lr=None, num_nets=5,
                   epochs=1000, protocol=None, out=None) -> dict:
    """`launch/evaluate.py`: a saved set (path of a synthetic.msgpack), or the random-real
    baseline (`random_real`, `ipc` images per class of `dataset`), evaluated with the
    standard protocol by `model` (default: the set's own network and overrides, else
    ConvNetD3). The set is scored on its own dataset (meta.dataset: name, resolution and
    preprocessing) with its own protocol (`jaxdd.evaluators.stored_protocol`: a CFM set with
    its teacher's soft labels) unless `dataset` / `protocol` override them explicitly; data
    of another class count, rank, channel count or modality than the set's is an error
    (`jaxdd.evalcheck`). Every problem with the arguments, the file, the data and `out` (the
    result path) is found before any training and raised at once
    (`jaxdd.validate.ConfigError`). Returns a JSON-able dict."""
    from jaxdd import evalcheck, evaluators, validate
    from jaxdd.evaluate import evaluate_random_real
    from jaxdd.io import decode_synthetic
    from jaxdd.models import get_model

    rep = validate.evaluate_args(num_nets=num_nets, epochs=epochs,
                                 ipc=ipc if random_real else None, resolution=resolution,
                                 lr=lr)
    for msg in ((evalcheck.output_problems(out) if out is not None else []) +
                (evalcheck.model_problems([model], "--model") if model else [])):
        rep.error(msg)
    if not synthetic and not random_real:
        rep.error("give a synthetic set (--synthetic=PATH) or --random_real")
    meta, syn, facts = {}, None, None
    if synthetic:
        syn, problems = evalcheck.load_set(synthetic)
        for msg in problems:
            rep.error(msg)
        if syn is not None:
            meta, facts = syn["meta"], evalcheck.set_facts(syn)
    if protocol == "soft_label" and random_real:
        rep.error("--random_real with --protocol=soft_label: the baseline needs a teacher; "
                  "the distill run reports it (result.json random_real)")
    if syn is not None and not random_real:
        protocol = _set_protocol(rep, synthetic, meta, protocol)
    protocol = protocol or "hard_label"
    dmeta = dict(meta.get("dataset", {}) or {})
    own = dmeta.get("name")
    override = syn is not None and dataset is not None and dataset != own
    name = dataset or own or (None if syn is not None else "digits")
    if syn is not None and not name:
        rep.error(f"{synthetic} records no dataset (meta.dataset.name): pass --dataset=NAME "
                  f"(and --resolution) explicitly")
    if facts and resolution and facts["grid_rank"] == 3:
        rep.error(f"{synthetic}: a {facts['shape'][:-1]} set is evaluated at its own size; "
                  f"--resolution applies to 2-D images only")
    if rep.errors:
        rep.raise_if_errors("evaluation")
    if override:  # another dataset: the set's grid and ZCA, that dataset's own statistics
        dmeta = {k: dmeta[k] for k in ("data_dir", "resolution", "zca", "zca_eps")
                 if k in dmeta}
        if facts and facts["grid_rank"] == 2 and not dmeta.get("resolution"):
            dmeta["resolution"] = facts["shape"][0]
        rep.warn(f"{synthetic} is evaluated on --dataset={name}, not on its own dataset "
                 f"{own!r} (explicit override; its preprocessing is that dataset's own)")
    res = resolution or dmeta.get("resolution")
    model_name = model or (meta.get("model", {}) or {}).get("name", "ConvNetD3")
    overrides = {} if model else dict((meta.get("model", {}) or {}).get("overrides") or {})
    try:
        train, test = _dataset_of({"dataset": dmeta}, res, name=name, zca=zca)
    except Exception as e:  # noqa: BLE001
        rep.error(f"dataset {name!r}: {e}")
        rep.raise_if_errors("evaluation")
    if facts and not random_real:
        for msg in evalcheck.data_problems(synthetic, facts, train, test, name,
                                           own=not override, resolution=resolution):
            rep.error(msg)
    rep += validate.data(train if random_real else None, test,
                         ipc=ipc if random_real else None, where=f"dataset {name}")
    msg = validate.model_at_resolution(model_name, overrides, train.image_shape,
                                       train.num_classes)
    if msg:
        rep.error(msg)
    if not rep.errors and syn is not None and not random_real:
        try:
            images, labels, syn_lr = decode_synthetic(syn, resolution=resolution)
        except Exception as e:  # noqa: BLE001 -- parameters that do not decode
            rep.error(f"{synthetic} does not decode ({type(e).__name__}: {str(e)[:200]})")
    rep.raise_if_errors("evaluation")
    net = get_model(model_name, train.num_classes, **overrides)
    kw = dict(num_nets=int(num_nets), epochs=int(epochs))
    if random_real:
        r = evaluate_random_real(key, net, train, test, int(ipc), lr=lr or 0.01, **kw)
        what = f"random real, IPC {ipc}"
    else:
        r = evaluators.score_saved(protocol, meta, key, net, images, labels, lr or syn_lr,
                                   train, test, **kw)
        what = f"{synthetic} ({images.shape[0]} images of {tuple(images.shape[1:])})"
    extra = {"own_dataset": own} if override else {}
    return {"what": what, "dataset": name, "resolution": res, "model": model_name,
            "protocol": protocol, **extra, "summary": str(r), **r.to_dict()}


def evaluate_pair(key, synthetic, model_name, *, resolution=None, num_nets=5, epochs=1000,
                  lr=None, progress=False, protocol=None, cache=None, **eval_kwargs) -> dict:
    """One cell: the set at `synthetic` (path) evaluated with `model_name` (key: a raw
    uint32 PRNGKey, as `evaluate_synthetic` takes). `cross_arch` checks every pair first
    (`plan`); called alone, a pair that cannot run raises ValueError.

    resolution None: the set's own, or the smallest multiple where the network runs.
    protocol: default the one the set was made for (`jaxdd.evaluators.stored_protocol`).
    Returns a JSON-able dict (mean, std, accs, resolution, seconds, ...)."""
    from jaxdd import evaluators
    from jaxdd.io import decode_synthetic, load_synthetic
    from jaxdd.models import get_model

    from jaxdd.models.layers import rank_mismatch

    d = load_synthetic(synthetic)
    meta = d.get("meta", {}) or {}
    shape = tuple(int(s) for s in d["aux"]["image_shape"])
    grid3 = len(shape) == 4   # video (T, H, W, C) / voxels (D, H, W, C)
    native = int((meta.get("dataset", {}) or {}).get("resolution") or
                 shape[1 if grid3 else 0])
    channels = int(shape[-1])
    protocol = protocol or evaluators.stored_protocol(meta)
    train, test = _dataset_of(meta, native, cache=cache)
    model = get_model(model_name, test.num_classes)
    msg = rank_mismatch(model_name, getattr(model, "layout", "NHWC"), shape, example=True)
    if msg:
        raise ValueError(f"{synthetic}: {msg}")
    if grid3:  # 3-D grids are evaluated at their own size (no resizing of clips / volumes)
        if resolution and int(resolution) != native:
            raise ValueError(f"{synthetic}: a {shape[:-1]} set is evaluated at its own size; "
                             f"--resolution={resolution} applies to 2-D images only")
        if not runs_at(model, shape):
            raise ValueError(f"{model_name} cannot run on {synthetic}'s {shape[:-1]} grid; "
                             f"pick a network (or depth) for that size")
    res = int(resolution or (native if grid3 else fitting_resolution(model, native, channels)))
    if res != native:
        train, test = _dataset_of(meta, res, cache=cache)
    images, labels, syn_lr = decode_synthetic(d, resolution=None if res == native else res)
    r = evaluators.score_saved(protocol, meta, key, model, images, labels, lr or syn_lr,
                               train, test, num_nets=num_nets, epochs=epochs,
                               progress=progress, desc=model_name, **eval_kwargs)
    return {"model": model_name, "resolution": res, "native_resolution": native,
            "lr": float(lr or syn_lr), "param": d["param"], "protocol": protocol,
            **r.to_dict()}


def _pair_problem(what, facts, model, model_name, native, forced):
    """Why `model_name` cannot score the set at `forced` (or any fitting) resolution."""
    shape = facts["shape"]
    if facts["grid_rank"] == 3:
        if forced and int(forced) != native:
            return (f"--resolutions={model_name}={forced}: {what} is a {shape[:-1]} set, "
                    f"evaluated at its own size (resolutions apply to 2-D images only)")
        return None if runs_at(model, shape) else (
            f"{model_name} cannot run on {what}'s {shape[:-1]} grid; pick a network (or "
            f"depth) for that size")
    if forced:
        return None if runs_at(model, (int(forced), int(forced), shape[-1])) else (
            f"--resolutions={model_name}={forced}: {model_name} does not run on "
            f"{forced} x {forced} inputs; give a larger side (or none: the smallest "
            f"multiple of {native} where it runs)")
    try:
        fitting_resolution(model, native, shape[-1])
    except ValueError as e:
        return f"{what}: {e}"
    return None


def plan(synthetics, models, *, resolutions=None, num_nets=5, epochs=1000, seed=0,
         out=None, protocol=None, dsa_strategy="color_crop_cutout_flip_scale_rotate",
         report=None, cache=None):
    """Every check of a cross_arch command, before anything is evaluated: the counts, the
    networks (all known, of the sets' rank, each runs at its resolution), every set (loads,
    records its dataset, its data has the set's classes / shape / modality, its protocol's
    teacher exists, the DSA is defined on it), `out` (writable; a resume file valid and made
    with the same settings). Raises `jaxdd.validate.ConfigError` listing every problem (with
    those already in `report`); returns the rows already in `out` (resume)."""
    from jaxdd import evalcheck, validate
    from jaxdd.models import get_model

    rep = validate.Report() if report is None else report
    models = [str(m) for m in models]
    resolutions = dict(resolutions or {})
    for msg in (evalcheck.count_problems(num_nets=num_nets, epochs=epochs) +
                evalcheck.model_problems(models)):
        rep.error(msg)
    stray = sorted(set(resolutions) - set(models))
    if stray:
        rep.error(f"--resolutions names {', '.join(stray)}, not in --models "
                  f"({', '.join(models)})")
    for m, side in resolutions.items():
        if not isinstance(side, int) or side < 1:
            rep.error(f"--resolutions={m}={side}: the side must be a positive integer")
    rows = []
    if out:
        for msg in evalcheck.output_problems(out):
            rep.error(msg)
        settings = {"num_nets": int(num_nets), "epochs": int(epochs), "seed": int(seed),
                    "dsa_strategy": dsa_strategy, "protocol": protocol}
        rows, problems = evalcheck.resume_rows(out, settings)
        for msg in problems:
            rep.error(msg)
        for r in rows:
            path = synthetics.get(r["label"])
            if path and r.get("synthetic") and os.path.abspath(r["synthetic"]) != \
                    os.path.abspath(path):
                rep.error(f"{out}: the row {r['label']} x {r['model']} was made from "
                          f"{r['synthetic']}, but --synthetic now gives {r['label']}={path}: "
                          f"use another label or another --out")
    if not synthetics:
        rep.error("give --synthetic=label=path[,label=path...]")
    for label, path in synthetics.items():
        what = f"set {label} ({path})"
        d, problems = evalcheck.load_set(path)
        for msg in problems:
            rep.error(f"set {label}: {msg}")
        if d is None:
            continue
        meta, facts = d["meta"], evalcheck.set_facts(d)
        _set_protocol(rep, what, meta, protocol)
        if not facts["name"]:
            rep.error(f"{what} records no dataset (meta.dataset.name) to be scored on")
            continue
        rank_msg = evalcheck.rank_problem(what, facts, models)
        if rank_msg:
            rep.error(rank_msg)
        grid3 = facts["grid_rank"] == 3
        native = int(facts["dataset"].get("resolution") or facts["shape"][1 if grid3 else 0])
        try:
            train, test = _dataset_of(meta, native, cache=cache)
        except Exception as e:  # noqa: BLE001
            rep.error(f"{what}: its dataset {facts['name']!r} does not load: {e}")
            continue
        for msg in evalcheck.data_problems(what, facts, train, test, facts["name"]):
            rep.error(msg)
        rep += validate.data(train, test, where=f"{what}: dataset {facts['name']}")
        if dsa_strategy and dsa_strategy != "none":
            from jaxdd.augment import check_modality
            try:
                check_modality(np.ndim(train.images), dsa_strategy,
                               getattr(train, "modality", None))
            except ValueError as e:
                rep.error(f"--dsa_strategy={dsa_strategy} on {what}: {e}")
        if rank_msg:  # networks of another rank: nothing more to say about them
            continue
        for m in models:
            try:
                net = get_model(m, max(int(test.num_classes), 2))
            except Exception:  # noqa: BLE001 -- reported above
                continue
            problem = _pair_problem(what, facts, net, m, native, resolutions.get(m))
            if problem:
                rep.error(problem)
    rep.raise_if_errors("cross_arch command")
    return rows


def cross_arch(synthetics, models=DEFAULT_MODELS, *, seed=0, num_nets=5, epochs=1000,
               resolutions=None, out=None, progress=False, log=print, report=None,
               protocol=None, dsa_strategy="color_crop_cutout_flip_scale_rotate",
               **eval_kwargs):
    """Evaluate every set of `synthetics` ({label: path}) with every network of `models`.

    Everything is checked first (`plan`: every problem at once, ConfigError, nothing
    evaluated or written). resolutions: {model name: side length} to force one (default:
    `fitting_resolution`). out: JSON path, rewritten after every pair; pairs already in it
    are skipped (resume; it must be made with the same settings).
    Returns the list of row dicts (label, synthetic, model, mean, std, ...)."""
    cache = {}
    resolutions = dict(resolutions or {})
    rows = plan(synthetics, models, resolutions=resolutions, num_nets=num_nets,
                epochs=epochs, seed=seed, out=out, protocol=protocol,
                dsa_strategy=dsa_strategy, report=report, cache=cache)
    settings = {"num_nets": int(num_nets), "epochs": int(epochs), "seed": int(seed),
                "dsa_strategy": dsa_strategy, "protocol": protocol}
    done = {(r["label"], r["model"]) for r in rows}
    for i, (label, path) in enumerate(synthetics.items()):
        for j, m in enumerate(models):
            if (label, m) in done:
                continue
            t0 = time.time()
            key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), i), j)
            r = evaluate_pair(key, path, m, resolution=resolutions.get(m), num_nets=num_nets,
                              epochs=epochs, progress=progress, protocol=protocol,
                              dsa_strategy=dsa_strategy, cache=cache, **eval_kwargs)
            rows.append({"label": label, "synthetic": os.fspath(path), **r,
                         "wall_seconds": time.time() - t0})
            if log:
                log(f"[cross_arch] {label} x {m} @ {r['resolution']} px: "
                    f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} ({time.time() - t0:.0f} s)")
            if out:
                _write(out, rows, models, settings)
    return rows


def _write(out, rows, models, settings):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"models": list(models), **settings, "rows": rows}, f, indent=2,
                  default=_jsonable)
    os.replace(tmp, out)


def _jsonable(o):
    if isinstance(o, (np.ndarray, np.generic)):
        return o.tolist()
    raise TypeError(type(o).__name__)


def markdown_table(rows, models=None) -> str:
    """Rows = sets, columns = networks; cells 'mean ± std' in %, '(@32 px)' where the network
    ran at another resolution than the set's."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    models = list(models or dict.fromkeys(r["model"] for r in rows))
    cell = {(r["label"], r["model"]): r for r in rows}
    lines = ["| set | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for lab in labels:
        out = []
        for m in models:
            r = cell.get((lab, m))
            if r is None:
                out.append("–")
                continue
            s = f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"
            if r["resolution"] != r["native_resolution"]:
                s += f" (@{r['resolution']} px)"
            out.append(s)
        lines.append(f"| {lab} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"
