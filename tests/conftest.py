"""Test-wide settings. Small CPU linear algebra is much faster single-threaded on the 2-core
CI machine (OpenBLAS thread start-up dominates 32x32 solves), so pin it before numpy loads."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The entry points turn on a persistent XLA compilation cache (jaxdd.runtime): the suite's
# subprocesses run without it, so no test depends on what an earlier one compiled
# (tests/test_runtime.py covers the cache itself).
os.environ.setdefault("JAXDD_COMPILE_CACHE", "off")
