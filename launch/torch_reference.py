"""PyTorch peer of one TM (MTT) outer iteration (jaxdd.bench.torch_reference): prints one
JSON line with its timing.

    pip install -e ".[bench]"        # torch (CPU wheel)
    python launch/torch_reference.py --num_images=10 --syn_steps=20 --repeats=3
    python launch/torch_reference.py --method=fred --dsa --ipc=1 --side=28 --channels=1

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
_METHOD = flags.DEFINE_enum("method", "mtt", ["mtt", "fred", "ddif"], "the authors' step")
_DSA = flags.DEFINE_bool("dsa", False, "DSA on (the authors' TM default)")
_IPC = flags.DEFINE_integer("ipc", 0, ">0: set size from the method's budget (else num_images)")
_FRED_K = flags.DEFINE_integer("fred_k", 64, "FreD coefficients per channel")
_DDIF_W = flags.DEFINE_integer("ddif_width", 6, "DDiF field width")
_DDIF_L = flags.DEFINE_integer("ddif_layers", 2, "DDiF sine layers")
_DEVICE = flags.DEFINE_string("device", "cpu", "cpu | cuda")


def main(argv):
    del argv
    from jaxdd.bench import torch_reference as tr
    r = tr.bench(_N.value, _STEPS.value, _BATCH.value, _REPEATS.value, _WARMUP.value,
                 _THREADS.value or None, max_seconds=_MAX_S.value or None, side=_SIDE.value,
                 channels=_CH.value, num_classes=_NC.value, width=_WIDTH.value,
                 depth=_DEPTH.value, method=_METHOD.value, dsa=_DSA.value,
                 ipc=_IPC.value or None, fred_k=_FRED_K.value, ddif_width=_DDIF_W.value,
                 ddif_layers=_DDIF_L.value, device=_DEVICE.value)
    print("TORCH_RESULT " + json.dumps(r), flush=True)


if __name__ == "__main__":
    app.run(main)
