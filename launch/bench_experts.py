"""Benchmark expert training and storage: vmapped experts vs one at a time, bytes per expert
(jaxdd.bench.experts; what is measured: its docstring). Writes JSON to --out, prints a table.

    python launch/bench_experts.py                        # ConvNetD3, 32x32x3 random data
    python launch/bench_experts.py --num_examples=1024 --num_experts=8 --repeats=5
"""
import json
import os
import shlex
import sys

from absl import app, flags, logging

_MODEL = flags.DEFINE_string("model", "ConvNetD3", "Model name.")
_N = flags.DEFINE_integer("num_examples", 256, "Random training examples per epoch.")
_RES = flags.DEFINE_integer("resolution", 32, "Image side.")
_CH = flags.DEFINE_integer("channels", 3, "Image channels.")
_NC = flags.DEFINE_integer("num_classes", 10, "Classes.")
_E = flags.DEFINE_integer("num_experts", 4, "Experts trained together (vs one at a time).")
_BS = flags.DEFINE_integer("batch_size", 256, "Minibatch.")
_DSA = flags.DEFINE_string("dsa_strategy", "color_crop_cutout_flip_scale_rotate",
                           "DSA strategy ('none' = off).")
_LOOP = flags.DEFINE_enum("augment_loop", "auto", ["auto", "map", "vmap"],
                          "How DSA runs over the experts (see jaxdd.experts.make_epoch_fn).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats (median reported).")
_SNAP = flags.DEFINE_integer("snapshots", 51, "Snapshots in the stored expert (storage).")
_OUT = flags.DEFINE_string("out", "bench_results/experts.json", "JSON output path.")


def main(argv):
    del argv
    from jaxdd.bench import experts as bench_experts

    logging.set_verbosity(logging.WARNING)
    result = bench_experts.run(
        model=_MODEL.value, num_examples=_N.value, resolution=_RES.value, channels=_CH.value,
        num_classes=_NC.value, num_experts=_E.value, batch_size=_BS.value,
        dsa_strategy=_DSA.value, augment_loop=_LOOP.value, repeats=_REPEATS.value,
        snapshots=_SNAP.value, command="python " + " ".join(shlex.quote(a) for a in sys.argv))
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, "w") as f:
        json.dump(result, f, indent=2)
    print(bench_experts.table(result))
    print(f"-> {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
