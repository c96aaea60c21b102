"""Cross-architecture table: evaluate distilled sets with several networks.

    python launch/cross_arch.py \
        --synthetic=pixel=DIR/pixel/synthetic.msgpack,fred=DIR/fred/synthetic.msgpack \
        --models=ConvNetD2W32,AlexNet,VGG11,ResNet18,ViT --out=DIR/cross_arch

Each (set, network) pair: --num_nets fresh networks trained together with the protocol the
set was made for (stored in its metadata; --protocol overrides; hard labels: the set's
learned syn_lr, DSA, --epochs; a CFM set: its teacher's soft labels), FINAL test accuracy, mean +- std
(`jaxdd.crossarch`; the same evaluation as `launch/evaluate.py --model=X`). A network that
cannot run at the set's resolution runs at the smallest multiple where it does (VGG11 on
16 px digits: 32 px), or at --resolutions=VGG11=32. Writes <out>.json after every pair (a
re-run resumes) and <out>.md (the markdown table).
"""
from absl import app, flags, logging

_SYN = flags.DEFINE_list("synthetic", None, "label=path/to/synthetic.msgpack, comma-separated "
                         "(a bare path is labelled by its parent directory)")
_MODELS = flags.DEFINE_list("models", "ConvNetD2W32,AlexNet,VGG11,ResNet18,ViT",
                            "evaluation networks (jaxdd.models registry names)")
_RES = flags.DEFINE_list("resolutions", [], "model=side overrides, e.g. VGG11=32")
_NETS = flags.DEFINE_integer("num_nets", 5, "networks per pair (K)")
_EPOCHS = flags.DEFINE_integer("epochs", 1000, "training epochs (the authors' E)")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed")
_DSA = flags.DEFINE_string("dsa_strategy", "color_crop_cutout_flip_scale_rotate",
                           "DSA of the evaluation training ('none' to switch it off)")
_OUT = flags.DEFINE_string("out", "cross_arch", "output prefix: <out>.json and <out>.md")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "disable progress bars")
_PROTOCOL = flags.DEFINE_enum("protocol", None, ["hard_label", "soft_label"],
                              "evaluation protocol (default: the one stored with each set)")


def _pairs(items, what):
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep:
            raise app.UsageError(f"--{what} wants name=value items, got {it!r}")
        out[k] = v
    return out

_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")


def main(argv):
    del argv
    import os

    logging.set_verbosity(logging.WARNING)
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    from jaxdd import crossarch

    if not _SYN.value:
        raise app.UsageError("give --synthetic=label=path[,label=path...]")
    syn = {}
    for it in _SYN.value:
        label, sep, path = it.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.dirname(os.path.abspath(it))), it
        if not os.path.exists(path):
            raise app.UsageError(f"{path} does not exist (a synthetic.msgpack of distill.py)")
        syn[label] = path
    res = {k: int(v) for k, v in _pairs(_RES.value, "resolutions").items()}
    rows = crossarch.cross_arch(syn, _MODELS.value, seed=_SEED.value, num_nets=_NETS.value,
                                epochs=_EPOCHS.value, resolutions=res, out=_OUT.value + ".json",
                                progress=not _NO_PROGRESS.value,
                                dsa_strategy=_DSA.value, protocol=_PROTOCOL.value)
    table = crossarch.markdown_table(rows, _MODELS.value)
    with open(_OUT.value + ".md", "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    app.run(main)
