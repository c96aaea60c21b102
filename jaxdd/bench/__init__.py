"""Benchmarks and diagnostics (library code behind launch/benchmark.py,
launch/bench_experts.py, launch/torch_reference.py, launch/spectral_diagnostic.py).

  suite            the benchmark suite (configs/bench_tm.py): ceilings, TM rows, the PyTorch
                   peer, expert / evaluation training, DDiF, FreD; `run` and the configs
    timing         how the suite measures (wall / CPU medians, memory, FLOPs, ceilings)
    tm_rows        the TM rows (the library's jitted outer step)
    comparisons    the peer and authors sections (jaxdd next to PyTorch)
    training_rows  the experts and eval sections
    param_rows     the ddif and fred sections
    report         printed rows, targets, the table
  torch_reference  the PyTorch peer of one TM step (torch imported inside functions only)
    torch_nets     its ConvNet (flat parameters) and FreD / DDiF decoders
    torch_dsa      its DSA
  experts          expert-training and trajectory-storage measurements
  spectral         the spectral diagnostic of a distilled set (UniDD view)
"""
