"""Evaluate a distilled set (or the random-real baseline) with the standard protocol.

    python launch/evaluate.py --synthetic=workdirs/tm_pixel-default/synthetic.msgpack
    python launch/evaluate.py --synthetic=... --resolution=32 --model=ConvNetD3W32
    python launch/evaluate.py --random_real --dataset=digits --resolution=16 --ipc=1
    python launch/evaluate.py --synthetic=... --model=ResNet18BN   # any registry model

Data: the set's own dataset (name, resolution, preprocessing: its metadata); `--dataset`
evaluates it on another one explicitly. Data with another class count, rank, channel count or
modality than the set's is an error naming both, as is an --out that cannot be written:
everything is checked before any training.

Protocol: the one the set was made for (stored in its metadata; `--protocol` overrides):
hard_label for TM/DM/DC sets, soft_label (the run's teacher relabels, `jaxdd.evaluators`)
for CFM sets. hard_label (docs/methods.md "Evaluation protocol", `jaxdd.evaluate`): fresh networks, SGD momentum 0.9, wd 5e-4, E + 1
passes with lr x0.1 (and the momentum reset) after pass E // 2 + 1, batch 256, DSA; the FINAL
test accuracy, mean +- std over --num_nets networks trained together. The learning rate
defaults to the set's learned syn_lr. Every model of the registry works, BatchNorm ones
included. The work is `jaxdd.crossarch.evaluate_saved`, which reports every problem with the
flags, the file and the data before any training.
"""
import json

from absl import app, flags, logging

_SYN = flags.DEFINE_string("synthetic", None, "synthetic.msgpack written by distill.py")
_RANDOM = flags.DEFINE_bool("random_real", False, "evaluate K random real images per class")
_DATASET = flags.DEFINE_string("dataset", None, "dataset (default: the set's own, with its "
                                "preprocessing; another one is an explicit override and must "
                                "have the set's classes and shape)")
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
_PROTOCOL = flags.DEFINE_enum("protocol", None, ["hard_label", "soft_label"],
                              "evaluation protocol (default: the one stored with the set)")

_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    import jax
    from jaxdd.crossarch import evaluate_saved
    from jaxdd.validate import ConfigError

    try:
        out = evaluate_saved(jax.random.PRNGKey(_SEED.value), _SYN.value,
                             random_real=_RANDOM.value, ipc=_IPC.value, dataset=_DATASET.value,
                             resolution=_RES.value, model=_MODEL.value, zca=_ZCA.value,
                             lr=_LR.value, num_nets=_NETS.value, epochs=_EPOCHS.value,
                             protocol=_PROTOCOL.value, out=_OUT.value)
    except ConfigError as e:
        raise SystemExit(f"[evaluate] {e}") from None
    print(f"{out['what']} on {out['dataset']} ({out.get('protocol', 'hard_label')}): "
          f"{out.pop('summary')}")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    app.run(main)
