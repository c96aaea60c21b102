"""Test-wide settings. Small CPU linear algebra is much faster single-threaded on the 2-core
CI machine (OpenBLAS thread start-up dominates 32x32 solves), so pin it before numpy loads."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
