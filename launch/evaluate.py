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

    key = jax.random.PRNGKey(_SEED.value)
    meta, syn = {}, None
    if _SYN.value:
        syn = distill.load_synthetic(_SYN.value)
        meta = syn["meta"]
    elif not _RANDOM.value:
        raise app.UsageError("give --synthetic=PATH or --random_real")
    dmeta = dict(meta.get("dataset", {}))
    name = _DATASET.value or dmeta.get("name", "digits")
    res = _RES.value or dmeta.get("resolution")
    zca = dmeta.get("zca", False) if _ZCA.value is None else _ZCA.value
    train, test = load_dataset(name, resolution=res, zca=zca,
                               zca_eps=dmeta.get("zca_eps", 0.1),
                               data_dir=dmeta.get("data_dir"), resize=dmeta.get("resize"),
                               normalize=dmeta.get("normalize"), stats=dmeta.get("stats"))
    model_name = _MODEL.value or meta.get("model", {}).get("name", "ConvNetD3")
    overrides = {} if _MODEL.value else dict(meta.get("model", {}).get("overrides", {}) or {})
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


if __name__ == "__main__":
    app.run(main)
