"""Test-wide settings. Small CPU linear algebra is much faster single-threaded on the 2-core
CI machine (OpenBLAS thread start-up dominates 32x32 solves), so pin it before numpy loads."""
import os

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The entry points turn on a persistent XLA compilation cache (jaxdd.runtime): the suite's
# subprocesses run without it, so no test depends on what an earlier one compiled
# (tests/test_runtime.py covers the cache itself).
os.environ.setdefault("JAXDD_COMPILE_CACHE", "off")

# Compile time is most of the suite's time: tiny shapes compile far longer than they run.
# Two XLA CPU settings cut it to about a quarter (the README command: 8.3 -> 3.3 min on 2
# idle cores): no LLVM optimisation of the generated code (--xla_backend_optimization_level
# =0) and XLA's elemental fusion emitters instead of its MLIR ones, which at O0 are the
# larger part of a compile (test_pairs + test_augment, CPU seconds: defaults 155, O0 77,
# emitters alone 106, both 40). The computation is the same (the jaxpr, XLA's HLO passes,
# shardings); what changes is how fused ops are lowered to machine code: results agree to
# float rounding (no fused multiply-add contraction, other loop code) and XLA's memory
# analyses to a few hundred bytes (test_tm_microbatch's step: 29,604,744 vs 29,604,552
# temporary bytes). Set for every process of the suite, subprocesses included (they
# inherit the environment), for each flag the installed jaxlib knows (XLA aborts on an
# unknown one) and XLA_FLAGS does not set already; JAXDD_TEST_XLA_DEFAULTS=1 runs the
# suite with XLA's defaults instead.
_FAST_COMPILE = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}


def _jaxlib_knows(flag):
    """Whether the installed jaxlib registers the XLA flag `flag` (its name as a C string in
    jaxlib's shared objects), without importing jax (XLA reads XLA_FLAGS once, at start)."""
    import glob
    import importlib.util
    import mmap

    spec = importlib.util.find_spec("jaxlib")
    if spec is None or not spec.origin:
        return False
    needle = b"\0" + flag.encode() + b"\0"
    for path in glob.glob(os.path.join(os.path.dirname(spec.origin), "*.so")):
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m.find(needle) >= 0:
                return True
    return False


# XLA_FLAGS as the user set it, kept for the xdist workers (which inherit the changed one)
os.environ.setdefault("JAXDD_TEST_USER_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
if os.environ.get("JAXDD_TEST_XLA_DEFAULTS", "") in ("", "0"):
    _flags = os.environ.get("XLA_FLAGS", "")
    _add = [f"--{k}={v}" for k, v in _FAST_COMPILE.items()
            if k not in _flags and _jaxlib_knows(k)]
    if _add:
        os.environ["XLA_FLAGS"] = " ".join([_flags, *_add]).strip()


@pytest.fixture
def xla_default_flags(monkeypatch):
    """The subprocesses a test starts compile with XLA's defaults (XLA_FLAGS as the user set
    it), not the suite's fast-compile flags: for tests whose assertion is about compile time
    itself (a cached executable loads faster than a fresh compile)."""
    user = os.environ.get("JAXDD_TEST_USER_XLA_FLAGS", "")
    if user:
        monkeypatch.setenv("XLA_FLAGS", user)
    else:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
