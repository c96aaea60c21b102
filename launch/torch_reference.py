"""PyTorch peer of one TM (MTT) outer iteration (jaxdd.bench.torch_reference): prints one
JSON line with its timing.

    pip install -e ".[bench]"        # torch (CPU wheel)
    python launch/torch_reference.py --num_images=10 --syn_steps=20 --repeats=3
    python launch/torch_reference.py --method=fred --dsa --ipc=1 --side=28 --channels=1
    python launch/torch_reference.py --help       # every flag (jaxdd.bench.torch_reference)

What it computes and how it is timed: the docstring of jaxdd/bench/torch_reference.py.
The flags are that module's command line (one definition, also used by the benchmark
suite's subprocesses).
"""
from absl import app, flags


def _library_parses(argv):
    flags.FLAGS.mark_as_parsed()  # no absl flags: jaxdd.bench.torch_reference.main reads argv
    return argv


def main(argv):
    from jaxdd.bench import torch_reference

    torch_reference.main(argv[1:])


if __name__ == "__main__":
    app.run(main, flags_parser=_library_parses)
