"""Benchmark suite config: ConvNetD3, 32x32x3 (CIFAR-10 shapes), random data.

    python launch/benchmark.py --config=configs/bench_tm.py        # default suite (~20 min, 2 quiet cores)
    python launch/benchmark.py --config=configs/bench_tm.py:grid   # + every TM row (param x IPC x steps x remat)
    python launch/benchmark.py --config=configs/bench_tm.py:tiny   # smoke test (tiny shapes, seconds)
    python launch/benchmark.py --config=configs/bench_tm.py:authors        # vs the authors' code only
    python launch/benchmark.py --config=configs/bench_tm.py:authors_quick  # same, FreD/DDiF 5 steps

TM rows: dicts (or tuples (param, ipc, syn_steps, remat, conv_impl, augment, mode)).
  param: pixel | fred | ddif | nsd; ipc: CIFAR-10 budget (1, 10); syn_steps; remat
  (jax.checkpoint); conv_impl: auto | native | im2col; augment: dsa | none;
  mode: 'time' (compile + run) | 'memory' (compile only: XLA memory analysis);
  batch_syn: images per student step (default ipc x classes, the pixel set size, so every
  parameterization does the same network work per step; the decoded set is larger for
  FreD/DDiF/NSD); decode_subset: 'auto' = syn_steps x batch_syn random fields for DDiF
  (authors' code), all instances otherwise.
"""
import ml_collections

from jaxdd.bench import suite
from jaxdd.bench.suite import tm_spec as _tm


def get_config(arg=None):
    # shared fields, experts / eval / ddif / fred sections: jaxdd.bench.suite.base_config
    cfg = suite.base_config("bench_results/bench_tm.json",
                            ["ceilings", "peer", "authors", "tm", "experts", "eval", "ddif",
                             "fred"])

    # PyTorch peer (jaxdd.bench.torch_reference) and the same JAX step, side by side
    cfg.peer = ml_collections.ConfigDict(dict(
        ipc=1, num_images=10, syn_steps=20, width=128, depth=3, repeats=2, warmup=1,
        jax_warmup=0,           # JAX's first call after the (separately timed) compile is steady
        torch_threads=[1, 0],   # 0 = torch default (all cores), run with OMP_WAIT_POLICY=PASSIVE
        remat=[False, True], max_seconds=60, timeout_s=400))

    # jaxdd vs the authors' code (issue 17's config: MNIST-like 28x28x1, ConvNetD3 with the
    # authors' gray padding, IPC 1, DSA on, the whole set per student step), each side in a
    # fresh process, alternating for `rounds` rounds; PyTorch with `torch_threads` threads.
    # FreD decodes 120 and DDiF 110 instances per step (12x / 11x the pixel work).
    cfg.authors = ml_collections.ConfigDict(dict(
        side=28, channels=1, num_classes=10, ipc=1, model=None, dsa=True, remat=True,
        methods=["mtt", "fred", "ddif", "ddif_warmup"],
        syn_steps={"mtt": 20, "fred": 20, "ddif": 20},
        repeats={"mtt": 2, "fred": 1, "ddif": 1, "ddif_warmup": 1},
        rounds=2, warmup=1, torch_threads=2, fred_k=64, ddif_width=6, ddif_layers=2,
        warmup_steps=100, warmup_fields_torch=10, timeout_s=900, compile_cache=None,
        rounds_per_method={"mtt": 4, "fred": 1, "ddif": 1, "ddif_warmup": 3},
        # jaxdd's objective.microbatch (at most this many images per gradient chunk of a
        # student step; same gradient, the second-order pass's memory bounded by the chunk):
        # FreD's 120 and DDiF's 110 decoded images per step run as 2 chunks (60 / 55)
        microbatch={"mtt": 0, "fred": 64, "ddif": 64}))

    cfg.tm_rows = [
        # pixel, IPC 1 with DSA (the published TM step; the DSA-free twins are the peer rows)
        _tm("pixel", 1, 20, True, repeats=2, warmup=0),
        # syn_steps 50, remat on / off (the memory target)
        _tm("pixel", 1, 50, True, repeats=1, warmup=0),
        _tm("pixel", 1, 50, False, repeats=1, warmup=0),
        # XLA's native conv vs the im2col path inside the scan, same shape (2 steps: native
        # is slow there)
        _tm("pixel", 1, 2, True, "native", "none", repeats=1, warmup=0),
        _tm("pixel", 1, 2, True, "im2col", "none", repeats=2, warmup=0),
        # the other parameterizations, IPC 1 (decode + the same per-step network work)
        _tm("fred", 1, 20, True, repeats=2, warmup=0),
        _tm("ddif", 1, 20, True, repeats=2, warmup=0),
        _tm("nsd", 1, 20, True, repeats=2, warmup=0),
        # IPC 10: 100 images per student step
        _tm("pixel", 10, 20, True, repeats=1, warmup=0),
        _tm("pixel", 10, 50, True, mode="memory"),
        _tm("pixel", 10, 50, False, mode="memory"),
    ]

    if arg == "grid":
        cfg.out = "bench_results/bench_tm_grid.json"
        cfg.tm_rows = [_tm(p, ipc, s, r, repeats=1 if ipc == 10 else 2,
                           warmup=0 if ipc == 10 else 1,
                           mode="memory" if (ipc == 10 and s == 50 and not r) else "time")
                       for p in ("pixel", "fred", "ddif", "nsd") for ipc in (1, 10)
                       for s in (20, 50) for r in (True, False)]
    elif arg == "tiny":
        cfg.out = "bench_results/bench_tm_tiny.json"
        # the authors section starts fresh processes (compiles again): its own test runs the
        # jaxdd child in-process (tests/test_benchmark.py)
        cfg.sections = [s for s in cfg.sections if s != "authors"]
        suite.tiny_shapes(cfg)  # no JAX peer row: the TM row below exercises the same path
        cfg.param_overrides = ml_collections.ConfigDict({
            "ddif": {"warmup_steps": 0, "width": 2, "num_layers": 1},
            "fred": {"k": 16},
            "nsd": {"t3": 2, "t4": 2}})
        cfg.tm_rows = [_tm("ddif", 1, 2, True, augment="none")]
        cfg.authors.update(methods=["mtt", "ddif_warmup"], rounds=1, timeout_s=300)
    elif arg in ("authors", "authors_quick"):
        # only the comparison with the authors' code (issue 17's table); 'authors_quick'
        # unrolls FreD and DDiF 5 student steps instead of 20 and runs them one round (for a
        # heavily shared machine: their PyTorch iterations take minutes there)
        cfg.out = f"bench_results/bench_{arg}.json"
        cfg.sections = ["authors"]
        if arg == "authors_quick":
            cfg.authors.syn_steps = {"mtt": 20, "fred": 5, "ddif": 5}
            cfg.authors.repeats = {"mtt": 2, "fred": 1, "ddif": 1, "ddif_warmup": 1}
    elif arg:
        raise ValueError(f"unknown bench_tm variant {arg!r} (use '', 'grid', 'tiny', "
                         "'authors' or 'authors_quick')")
    return cfg
