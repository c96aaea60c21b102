"""Benchmarks and diagnostics (library code behind launch/benchmark.py,
launch/bench_experts.py, launch/torch_reference.py, launch/spectral_diagnostic.py).

  suite            the benchmark suite (configs/bench_tm.py): ceilings, TM rows, the PyTorch
                   peer, expert / evaluation training, DDiF, FreD
  torch_reference  the PyTorch peer of one TM step (torch imported inside functions only)
  experts          expert-training and trajectory-storage measurements
  spectral         the spectral diagnostic of a distilled set (UniDD view)
"""
