"""Evaluate a distilled set (or the random-real baseline) with the standard protocol.

    python launch/evaluate.py --synthetic=workdirs/tm_vanilla-default/synthetic.msgpack
    python launch/evaluate.py --synthetic=... --resolution=32 --model=ConvNetD3W32
    python launch/evaluate.py --random_real --dataset=digits --resolution=16 --ipc=1
    python launch/evaluate.py --synthetic=... --model=ResNet18BN   # any registry model

Protocol (REFERENCE.md): fresh networks, SGD momentum 0.9, wd 5e-4, E + 1 passes with lr x0.1
(and the momentum reset) after pass E // 2 + 1,
batch 256, DSA; the FINAL test accuracy, mean +- std over --num_nets networks trained
together. The learning rate defaults to the set's learned syn_lr. Every model of the
registry (jaxdd.models.get_model) works, BatchNorm ones included (statistics carried in
training by jaxdd.train, running statistics at test time).
"""
import json

from absl import app, flags, logging

_SYN = flags.DEFINE_string("synthetic", None, "synthetic.msgpack written by distill.py")
_RANDOM = flags.DEFINE_bool("random_real", False, "evaluate K random real images per class")
_DATASET = flags.DEFINE_string("dataset", None, "dataset (default: the set's own)")
_RES = flags.DEFINE_integer("resolution", None,
                            "decode/evaluate at this side length (DDiF/FreD decode natively)")
_MODEL = flags.DEFINE_string("model", None, "evaluation network (default: the set's own)")
_IPC = flags.DEFINE_integer("ipc", 1, "images per class for --random_real")
_NETS = flags.DEFINE_integer("num_nets", 5, "networks trained together")
_EPOCHS = flags.DEFINE_integer("epochs", 1000, "training epochs")
_LR = flags.DEFINE_float("lr", None, "learning rate (default: learned syn_lr, or 0.01)")
_ZCA = flags.DEFINE_bool("zca", None, "ZCA (default: the set's own)")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed")
_OUT = flags.DEFINE_string("out", None, "write the result JSON here")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    import jax
    from jaxdd import distill
    from jaxdd.data import load_dataset
    from jaxdd.evaluate import evaluate_random_real, evaluate_synthetic
    from jaxdd.models import get_model
    from jaxdd import validate

    key = jax.random.PRNGKey(_SEED.value)
    meta, syn = {}, None
    if not _SYN.value and not _RANDOM.value:
        raise app.UsageError("give --synthetic=PATH or --random_real")
    # one validation pass over the flags, the artifact and the data before any training
    rep = validate.evaluate_args(num_nets=_NETS.value, epochs=_EPOCHS.value,
                                 ipc=_IPC.value if _RANDOM.value else None,
                                 resolution=_RES.value, lr=_LR.value)
    if _SYN.value:
        try:
            syn = distill.load_synthetic(_SYN.value)
            meta = syn["meta"]
        except FileNotFoundError:
            rep.error(f"--synthetic={_SYN.value}: no such file")
        except Exception as e:  # noqa: BLE001 -- truncated / not a synthetic.msgpack
            rep.error(f"{_SYN.value} is damaged or not a synthetic.msgpack "
                      f"({type(e).__name__}: {str(e)[:200]}). Re-run the distill command "
                      f"on its workdir: a finished run rewrites synthetic.msgpack from its "
                      f"last checkpoint.")
    if rep.errors:
        raise SystemExit("[evaluate] " + _report_text(rep))
    dmeta = dict(meta.get("dataset", {}))
    name = _DATASET.value or dmeta.get("name", "digits")
    res = _RES.value or dmeta.get("resolution")
    zca = dmeta.get("zca", False) if _ZCA.value is None else _ZCA.value
    model_name = _MODEL.value or meta.get("model", {}).get("name", "ConvNetD3")
    overrides = {} if _MODEL.value else dict(meta.get("model", {}).get("overrides", {}) or {})
    try:
        train, test = load_dataset(name, resolution=res, zca=zca,
                                   zca_eps=dmeta.get("zca_eps", 0.1),
                                   data_dir=dmeta.get("data_dir"), resize=dmeta.get("resize"),
                                   normalize=dmeta.get("normalize"), stats=dmeta.get("stats"),
                                   download=bool(dmeta.get("download", False)))
    except Exception as e:  # noqa: BLE001
        rep.error(f"dataset {name!r}: {e}")
        raise SystemExit("[evaluate] " + _report_text(rep)) from None
    rep += validate.data(train if _RANDOM.value else None, test,
                         ipc=_IPC.value if _RANDOM.value else None, where=f"dataset {name}")
    # the set is decoded (or resized) to the data's resolution
    msg = validate.model_at_resolution(model_name, overrides, train.image_shape,
                                       train.num_classes)
    if msg:
        rep.error(msg)
    if rep.errors:
        raise SystemExit("[evaluate] " + _report_text(rep))
    rep.print_warnings()
    model = get_model(model_name, train.num_classes, **overrides)
    kw = dict(num_nets=_NETS.value, epochs=_EPOCHS.value)
    if _RANDOM.value:
        r = evaluate_random_real(key, model, train, test, _IPC.value, lr=_LR.value or 0.01, **kw)
        what = f"random real, IPC {_IPC.value}"
    else:
        images, labels, syn_lr = distill.decode_synthetic(syn, resolution=_RES.value)
        r = evaluate_synthetic(key, model, images, labels, test.images, test.labels,
                               lr=_LR.value or syn_lr, **kw)
        what = f"{_SYN.value} ({images.shape[0]} images of {tuple(images.shape[1:])})"
    print(f"{what} on {name}: {r}")
    out = {"what": what, "dataset": name, "resolution": res, "model": model_name, **r.to_dict()}
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(out, f, indent=2)


def _report_text(rep):
    return f"{len(rep.errors)} problem(s); nothing was trained:\n" + "\n".join(
        f"  - {e}" for e in rep.errors)


if __name__ == "__main__":
    app.run(main)
