"""Cross-architecture table: evaluate distilled sets with several networks.

    python launch/cross_arch.py \
        --synthetic=pixel=DIR/pixel/synthetic.msgpack,fred=DIR/fred/synthetic.msgpack \
        --models=ConvNetD2W32,AlexNet,VGG11,ResNet18,ViT --out=DIR/cross_arch

Each (set, network) pair: --num_nets fresh networks trained together with the protocol the
set was made for (stored in its metadata; --protocol overrides; hard labels: the set's
learned syn_lr, DSA, --epochs; a CFM set: its teacher's soft labels), FINAL test accuracy, mean +- std
(`jaxdd.crossarch`; the same evaluation as `launch/evaluate.py --model=X`), on the set's own
dataset (its metadata). Every problem (a missing or damaged set, an unknown network or one of
another rank than a set, a count < 1, a bad --resolutions item, data with other classes or
shapes than a set, an --out that cannot be written or a resume file that is damaged or made
with other flags) is reported at once, before anything is evaluated. A network that
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


_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")


def _synthetics(items, rep):
    """--synthetic items -> {label: path}; a repeated label is a problem (one set would
    silently replace the other)."""
    import os
    syn = {}
    for it in items:
        label, sep, path = it.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.dirname(os.path.abspath(it))), it
        if not label or not path:
            rep.error(f"--synthetic: {it!r} is not label=path (or a bare path)")
        elif label in syn and syn[label] != path:
            rep.error(f"--synthetic: the label {label!r} is given twice ({syn[label]} and "
                      f"{path}); label them, e.g. --synthetic=a={syn[label]},b={path}")
        else:
            syn[label] = path
    return syn


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    from jaxdd import crossarch, evalcheck, validate

    if not _SYN.value:
        raise app.UsageError("give --synthetic=label=path[,label=path...]")
    rep = validate.Report()  # every problem of the command, reported at once by crossarch
    syn = _synthetics(_SYN.value, rep)
    res, problems = evalcheck.parse_resolutions(_RES.value)
    for msg in problems + evalcheck.output_problems(_OUT.value + ".md", "--out"):
        rep.error(msg)
    try:
        rows = crossarch.cross_arch(syn, _MODELS.value, seed=_SEED.value,
                                    num_nets=_NETS.value, epochs=_EPOCHS.value,
                                    resolutions=res, out=_OUT.value + ".json",
                                    progress=not _NO_PROGRESS.value, report=rep,
                                    dsa_strategy=_DSA.value, protocol=_PROTOCOL.value)
    except validate.ConfigError as e:
        raise SystemExit(f"[cross_arch] {e}") from None
    table = crossarch.markdown_table(rows, _MODELS.value)
    with open(_OUT.value + ".md", "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    app.run(main)
