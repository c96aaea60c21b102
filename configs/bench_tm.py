"""TM benchmark: ConvNetD3, 32x32x3 (CIFAR-10 shapes), random data.

    python launch/benchmark.py --config=configs/bench_tm.py        # full table (~10 min CPU)
    python launch/benchmark.py --config=configs/bench_tm.py:tiny   # smoke test (seconds)

Rows: (parameterization, ipc, syn_steps, remat, conv_impl).
"""
import ml_collections


def get_config(arg=None):
    cfg = ml_collections.ConfigDict()
    cfg.out = "bench_results/bench_tm.json"
    cfg.repeats = 3
    cfg.model = "ConvNetD3"
    cfg.side, cfg.channels, cfg.num_classes = 32, 3, 10
    cfg.ceiling_matmul = 1024
    cfg.ceiling_conv = (64, 32, 128)
    cfg.param_overrides = ml_collections.ConfigDict({"ddif": {"warmup_steps": 0}})
    cfg.tm_rows = [
        ("pixel", 1, 20, True, "auto"),
        ("pixel", 1, 20, False, "auto"),
        ("pixel", 1, 20, True, "native"),
        ("pixel", 1, 50, True, "auto"),
        ("pixel", 1, 50, False, "auto"),
        ("pixel", 10, 20, True, "auto"),
        ("pixel", 10, 20, False, "auto"),
    ]
    if arg == "tiny":
        cfg.out = "bench_results/bench_tm_tiny.json"
        cfg.repeats = 1
        cfg.model = "ConvNetD1W4"
        cfg.side, cfg.channels, cfg.num_classes = 8, 1, 3
        cfg.ceiling_matmul = 64
        cfg.ceiling_conv = (2, 8, 4)
        cfg.tm_rows = [("pixel", 1, 2, True, "auto"), ("pixel", 1, 2, False, "native")]
    return cfg
