"""Test-wide settings. Small CPU linear algebra is much faster single-threaded on the 2-core
CI machine (OpenBLAS thread start-up dominates 32x32 solves), so pin it before numpy loads."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The entry points turn on a persistent XLA compilation cache (jaxdd.runtime): the suite's
# subprocesses run without it, so no test depends on what an earlier one compiled
# (tests/test_runtime.py covers the cache itself).
os.environ.setdefault("JAXDD_COMPILE_CACHE", "off")

# Compile time is most of the suite's time (tiny shapes: XLA's LLVM passes take far longer
# than running the code). Cheap LLVM passes for every process of the suite, its subprocesses
# included (they inherit the environment; tests/test_sharding.py and test_multihost.py add
# the same flags to their own): the same HLO (XLA's own passes, fusion and buffer assignment
# are untouched, so memory analyses and shardings are what production compiles) lowered to
# less optimised machine code, which on these shapes costs nothing while compiling in about
# half the time. Set XLA_FLAGS with --xla_backend_optimization_level yourself to override.
_FAST_COMPILE = ("--xla_backend_optimization_level=0",
                 "--xla_llvm_disable_expensive_passes=true")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_backend_optimization_level" not in _flags:
    os.environ["XLA_FLAGS"] = " ".join([_flags, *_FAST_COMPILE]).strip()

