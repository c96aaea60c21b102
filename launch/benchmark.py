"""The jaxdd benchmark suite (jaxdd.bench.suite): JSON + a printed table.

    python launch/benchmark.py --config=configs/bench_tm.py             # full suite (< 15 min, 2 cores)
    python launch/benchmark.py --config=configs/bench_tm.py:tiny        # smoke test (seconds)
    python launch/benchmark.py --config=configs/bench_tm.py:grid        # every TM row (long)
    python launch/benchmark.py --config=configs/bench_tm.py --sections=ceilings,peer

Sections, method and FLOP accounting: the docstring of jaxdd/bench/suite.py.
"""
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/bench_tm.py", "benchmark config")
_OUT = flags.DEFINE_string("out", None, "JSON output path (default: from the config)")
_SECTIONS = flags.DEFINE_list("sections", None, "run only these sections (default: config)")
_METHODS = flags.DEFINE_list("authors_methods", None, "authors section: only these of "
                             "mtt,fred,ddif,ddif_warmup (default: config)")


def main(argv):
    del argv
    from jaxdd.bench import suite
    cfg = _CONFIG.value
    if _METHODS.value:
        bad = sorted(set(_METHODS.value) - {"mtt", "fred", "ddif", "ddif_warmup"})
        if bad:
            raise app.UsageError(f"--authors_methods: unknown {bad}; use mtt, fred, ddif, "
                                 "ddif_warmup")
        cfg.authors.methods = list(_METHODS.value)
    suite.run(cfg, _SECTIONS.value, _OUT.value)


if __name__ == "__main__":
    app.run(main)
