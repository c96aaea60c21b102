"""PyTorch peer of one TM (MTT) outer iteration (jaxdd.bench.torch_reference): prints one
JSON line with its timing.

    pip install -e ".[bench]"        # torch (CPU wheel)
    python launch/torch_reference.py --num_images=10 --syn_steps=20 --repeats=3

What it computes and how it is timed: the docstring of jaxdd/bench/torch_reference.py.
"""
import json

from absl import app, flags

_N = flags.DEFINE_integer("num_images", 10, "synthetic images")
_STEPS = flags.DEFINE_integer("syn_steps", 20, "student steps unrolled")
_BATCH = flags.DEFINE_integer("batch_syn", 0, "images per student step (0: all)")
_SIDE = flags.DEFINE_integer("side", 32, "image side")
_CH = flags.DEFINE_integer("channels", 3, "image channels")
_NC = flags.DEFINE_integer("num_classes", 10, "classes")
_WIDTH = flags.DEFINE_integer("width", 128, "ConvNet width")
_DEPTH = flags.DEFINE_integer("depth", 3, "ConvNet depth")
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed calls")
_WARMUP = flags.DEFINE_integer("warmup", 1, "untimed calls first")
_THREADS = flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default)")
_MAX_S = flags.DEFINE_float("max_seconds", 0.0, "stop repeating after this long (0: never)")


def main(argv):
    del argv
    from jaxdd.bench import torch_reference as tr
    r = tr.bench(_N.value, _STEPS.value, _BATCH.value, _REPEATS.value, _WARMUP.value,
                 _THREADS.value or None, max_seconds=_MAX_S.value or None, side=_SIDE.value,
                 channels=_CH.value, num_classes=_NC.value, width=_WIDTH.value,
                 depth=_DEPTH.value)
    print("TORCH_RESULT " + json.dumps(r), flush=True)


if __name__ == "__main__":
    app.run(main)
