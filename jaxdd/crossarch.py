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


def _dataset_of(meta, resolution, *, name=None, zca=None):
    """The (train, test) data a saved set was distilled on (its meta.dataset, through the
    one dataset mapping `jaxdd.assemble.dataset_kwargs`), at `resolution`; `name` / `zca`
    override the recorded ones."""
    from jaxdd import assemble
    d = dict(meta.get("dataset", {}) or {})
    name = name or d.get("name")
    if not name:
        raise ValueError("the synthetic set has no dataset metadata (meta.dataset.name)")
    return assemble.data({**d, "name": name}, shard=None, resolution=resolution, zca=zca)


def evaluate_saved(key, synthetic=None, *, random_real=False, ipc=1, dataset=None,
                   resolution=None, model=None, zca=None, lr=None, num_nets=5,
                   epochs=1000, protocol=None) -> dict:
    """`launch/evaluate.py`: a saved set (path of a synthetic.msgpack), or the random-real
    baseline (`random_real`, `ipc` images per class of `dataset`), evaluated with the
    standard protocol by `model` (default: the set's own network and overrides, else
    ConvNetD3). `protocol` (hard_label / soft_label) defaults to the one the set was made
    for (`jaxdd.evaluators.stored_protocol`: a CFM set is scored with its teacher's soft
    labels). Every problem with the arguments, the file and the data is found before any
    training and raised at once (`jaxdd.validate.ConfigError`). Returns a JSON-able dict."""
    from jaxdd import evaluators, validate
    from jaxdd.evaluate import evaluate_random_real
    from jaxdd.io import decode_synthetic, load_synthetic
    from jaxdd.models import get_model

    rep = validate.evaluate_args(num_nets=num_nets, epochs=epochs,
                                 ipc=ipc if random_real else None, resolution=resolution,
                                 lr=lr)
    if not synthetic and not random_real:
        rep.error("give a synthetic set (--synthetic=PATH) or --random_real")
    meta, syn = {}, None
    if synthetic:
        try:
            syn = load_synthetic(synthetic)
            meta = syn.get("meta", {}) or {}
        except FileNotFoundError:
            rep.error(f"--synthetic={synthetic}: no such file")
        except Exception as e:  # noqa: BLE001 -- truncated / not a synthetic.msgpack
            rep.error(f"{synthetic} is damaged or not a synthetic.msgpack "
                      f"({type(e).__name__}: {str(e)[:200]}). Re-run the distill command "
                      f"on its workdir: a finished run rewrites synthetic.msgpack from its "
                      f"last checkpoint.")
    protocol = protocol or evaluators.stored_protocol(meta)
    if protocol not in ("hard_label", "soft_label"):
        rep.error(f"--protocol={protocol}: use hard_label or soft_label")
    if protocol == "soft_label" and random_real:
        rep.error("--random_real with --protocol=soft_label: the baseline needs a teacher; "
                  "the distill run reports it (result.json random_real)")
    teacher = ((meta.get("evaluation") or {}).get("teacher") or {}).get("path")
    if protocol == "soft_label" and synthetic and not (teacher and os.path.exists(teacher)):
        rep.error(f"{synthetic} is scored with soft labels (its protocol), but its teacher "
                  f"{teacher or '(none recorded)'} is missing: re-run its distill command, or "
                  f"pass --protocol=hard_label (not comparable)")
    rep.raise_if_errors("evaluation")
    dmeta = dict(meta.get("dataset", {}) or {})
    name = dataset or dmeta.get("name", "digits")
    res = resolution or dmeta.get("resolution")
    model_name = model or (meta.get("model", {}) or {}).get("name", "ConvNetD3")
    overrides = {} if model else dict((meta.get("model", {}) or {}).get("overrides") or {})
    try:
        train, test = _dataset_of({"dataset": dmeta}, res, name=name, zca=zca)
    except Exception as e:  # noqa: BLE001
        rep.error(f"dataset {name!r}: {e}")
        rep.raise_if_errors("evaluation")
    rep += validate.data(train if random_real else None, test,
                         ipc=ipc if random_real else None, where=f"dataset {name}")
    msg = validate.model_at_resolution(model_name, overrides, train.image_shape,
                                       train.num_classes)
    if msg:
        rep.error(msg)
    rep.raise_if_errors("evaluation")
    net = get_model(model_name, train.num_classes, **overrides)
    kw = dict(num_nets=int(num_nets), epochs=int(epochs))
    if random_real:
        r = evaluate_random_real(key, net, train, test, int(ipc), lr=lr or 0.01, **kw)
        what = f"random real, IPC {ipc}"
    else:
        images, labels, syn_lr = decode_synthetic(syn, resolution=resolution)
        r = evaluators.score_saved(protocol, meta, key, net, images, labels, lr or syn_lr,
                                   train, test, **kw)
        what = f"{synthetic} ({images.shape[0]} images of {tuple(images.shape[1:])})"
    return {"what": what, "dataset": name, "resolution": res, "model": model_name,
            "protocol": protocol, "summary": str(r), **r.to_dict()}


def evaluate_pair(key, synthetic, model_name, *, resolution=None, num_nets=5, epochs=1000,
                  lr=None, progress=False, protocol=None, **eval_kwargs) -> dict:
    """One cell: the set at `synthetic` (path) evaluated with `model_name` (key: a raw
    uint32 PRNGKey, as `evaluate_synthetic` takes).

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
    train, test = _dataset_of(meta, native)
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
        train, test = _dataset_of(meta, res)
    images, labels, syn_lr = decode_synthetic(d, resolution=None if res == native else res)
    r = evaluators.score_saved(protocol, meta, key, model, images, labels, lr or syn_lr,
                               train, test, num_nets=num_nets, epochs=epochs,
                               progress=progress, desc=model_name, **eval_kwargs)
    return {"model": model_name, "resolution": res, "native_resolution": native,
            "lr": float(lr or syn_lr), "param": d["param"], "protocol": protocol,
            **r.to_dict()}


def cross_arch(synthetics, models=DEFAULT_MODELS, *, seed=0, num_nets=5, epochs=1000,
               resolutions=None, out=None, progress=False, log=print, **eval_kwargs):
    """Evaluate every set of `synthetics` ({label: path}) with every network of `models`.

    resolutions: {model name: side length} to force one (default: `fitting_resolution`).
    out: JSON path, rewritten after every pair; pairs already in it are skipped (resume).
    Returns the list of row dicts (label, synthetic, model, mean, std, ...)."""
    rows = []
    if out and os.path.exists(out):
        with open(out) as f:
            rows = json.load(f)["rows"]
    done = {(r["label"], r["model"]) for r in rows}
    resolutions = dict(resolutions or {})
    for i, (label, path) in enumerate(synthetics.items()):
        for j, m in enumerate(models):
            if (label, m) in done:
                continue
            t0 = time.time()
            key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), i), j)
            r = evaluate_pair(key, path, m, resolution=resolutions.get(m), num_nets=num_nets,
                              epochs=epochs, progress=progress, **eval_kwargs)
            rows.append({"label": label, "synthetic": os.fspath(path), **r,
                         "wall_seconds": time.time() - t0})
            if log:
                log(f"[cross_arch] {label} x {m} @ {r['resolution']} px: "
                    f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} ({time.time() - t0:.0f} s)")
            if out:
                _write(out, rows, models, num_nets, epochs)
    return rows


def _write(out, rows, models, num_nets, epochs):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"models": list(models), "num_nets": int(num_nets), "epochs": int(epochs),
                   "rows": rows}, f, indent=2, default=_jsonable)
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
